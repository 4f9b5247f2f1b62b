"""Where monitor records go: the in-memory table, CSV, JSON lines (and TensorBoard, lazily).

A record is a flat dict with the columns of :data:`kerasinit.monitor.stats.COLUMNS`; its key is
``(epoch, step, layer, kind)`` where ``step`` is the optimizer's iteration count (it survives
checkpoints) and ``epoch`` the number of completed epochs when the record was taken. Its
``probe_training`` column says in which mode the probe ran (files written before that column
existed load without it; a CSV file with the older header is appended to in its own layout, with
a warning).

Resume rule: a file writer opened on an existing file reads the keys already in it and appends
only records whose key is absent, so a resumed run (``initial_epoch=k`` after restoring weights and
optimizer) neither duplicates records already written nor loses the ones it adds. A last line cut
short by a crash (no trailing newline) is dropped before appending; its record is written again if
the resumed run produces it.
"""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from kerasinit.monitor.stats import COLUMNS, INFO_COLUMNS, KEY_COLUMNS, STAT_COLUMNS

#: The CSV header of files written before :data:`INFO_COLUMNS` existed.
LEGACY_COLUMNS: tuple[str, ...] = KEY_COLUMNS + STAT_COLUMNS

Key = tuple[int, int, str, str]


def record_key(record: dict[str, Any]) -> Key:
    """The identity of a record: ``(epoch, step, layer, kind)``."""
    return (int(record["epoch"]), int(record["step"]), str(record["layer"]), str(record["kind"]))


@dataclass
class HistogramEntry:
    """A histogram of one tensor at one step: ``counts[i]`` values in ``[edges[i], edges[i+1])``
    (the last bin closed), over the finite values of the tensor."""

    epoch: int
    step: int
    layer: str
    depth: int
    kind: str
    edges: np.ndarray
    counts: np.ndarray

    def key(self) -> Key:
        return (self.epoch, self.step, self.layer, self.kind)


class MonitorHistory:
    """The in-memory table of records (one row per (epoch, step, layer, kind))."""

    def __init__(self, records: Iterable[dict[str, Any]] = ()) -> None:
        self.records: list[dict[str, Any]] = []
        self._keys: set[Key] = set()
        self.extend(records)

    def extend(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add records whose key is new; return the ones added."""
        added = []
        for record in records:
            key = record_key(record)
            if key not in self._keys:
                self._keys.add(key)
                self.records.append(record)
                added.append(record)
        return added

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` with one column per :data:`COLUMNS` entry (missing stats NaN;
        ``probe_training`` a nullable boolean, missing for records loaded from older files)."""
        import pandas as pd

        frame = pd.DataFrame.from_records(self.records, columns=list(COLUMNS))
        for column in STAT_COLUMNS:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
        for column in INFO_COLUMNS:
            frame[column] = frame[column].astype("boolean")
        return frame


class Writer:
    """Base class: ``open()`` once before the first write, ``write(records)``, ``close()``."""

    def open(self) -> None:
        """Prepare the destination (read existing keys on resume)."""

    def write(self, records: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def write_histograms(self, entries: list[HistogramEntry]) -> None:
        """Histograms are optional for a writer; the default ignores them."""

    def close(self) -> None:
        """Flush and release the destination."""


def _drop_partial_last_line(path: str) -> None:
    """Truncate a last line without its newline (a write interrupted by a crash)."""
    with open(path, "rb+") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        data = fh.read()
        cut = data.rfind(b"\n") + 1
        fh.truncate(cut)


class _FileWriter(Writer):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or os.PathLike; got {type(path).__name__}")
        self.path = os.fspath(path)
        self._fh: Any = None
        self._keys: set[Key] = set()
        #: Records skipped because their key was already in the file (resume).
        self.skipped = 0

    def _existing(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _start(self, fresh: bool) -> None:
        raise NotImplementedError

    def _emit(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def open(self) -> None:
        if self._fh is not None:
            return
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        fresh = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        if not fresh:
            _drop_partial_last_line(self.path)
            self._keys = {record_key(r) for r in self._existing()}
            fresh = os.path.getsize(self.path) == 0
        self._fh = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115 (kept open across callbacks)
        self._start(fresh)

    def write(self, records: list[dict[str, Any]]) -> None:
        if self._fh is None:
            self.open()
        for record in records:
            key = record_key(record)
            if key in self._keys:
                self.skipped += 1
                continue
            self._keys.add(key)
            self._emit(record)
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _clean(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        value = float(value)
        return None if math.isnan(value) else value if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, np.integer):
        return int(value)
    return value


class CSVWriter(_FileWriter):
    """Comma-separated values, one row per record, header :data:`COLUMNS`; missing stats empty.

    NaN is written as ``nan`` and infinities as ``inf``/``-inf`` so anomalies survive the file.
    """

    columns: tuple[str, ...] = COLUMNS

    def _existing(self) -> list[dict[str, Any]]:
        with open(self.path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = None if reader.fieldnames is None else tuple(reader.fieldnames)
            if header == LEGACY_COLUMNS:
                self.columns = LEGACY_COLUMNS
                warnings.warn(
                    f"{self.path}: appending to a monitor CSV written without the columns {list(INFO_COLUMNS)}; "
                    "the appended rows keep that file's layout and do not say in which mode the probe ran",
                    UserWarning,
                    stacklevel=4,
                )
            elif header is not None and header != COLUMNS:
                raise ValueError(
                    f"{self.path}: existing CSV header {list(header)} does not match the monitor's columns {list(COLUMNS)}"
                )
            return list(reader)

    def _start(self, fresh: bool) -> None:
        self._csv = csv.writer(self._fh)
        if fresh:
            self.columns = COLUMNS
            self._csv.writerow(COLUMNS)

    def _emit(self, record: dict[str, Any]) -> None:
        row = []
        for column in self.columns:
            value = record.get(column)
            if isinstance(value, float | np.floating):
                value = repr(float(value))
            row.append("" if value is None else value)
        self._csv.writerow(row)


class JSONLinesWriter(_FileWriter):
    """One JSON object per line; missing stats and NaN are ``null``, infinities ``"inf"``/``"-inf"``."""

    def _existing(self) -> list[dict[str, Any]]:
        with open(self.path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def _start(self, fresh: bool) -> None:
        del fresh

    def _emit(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps({c: _clean(record.get(c)) for c in COLUMNS}) + "\n")


def _parse(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return float(value)
    return float(value)


def _parse_flag(value: Any, column: str, path: str) -> bool | None:
    """A boolean column: ``True``/``False`` in CSV, ``true``/``false`` in JSON, empty/null if unknown."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if value in ("True", "true", "1"):
        return True
    if value in ("False", "false", "0"):
        return False
    raise ValueError(f"{path}: column {column!r} must be True/False or empty; got {value!r}")


def load_history(path: str | os.PathLike[str]) -> MonitorHistory:
    """Read a CSV (``.csv``) or JSON lines file written by the monitor back into a history."""
    path = os.fspath(path)
    if path.endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    else:
        with open(path, encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    records = []
    for row in rows:
        record: dict[str, Any] = {
            "epoch": int(row["epoch"]),
            "step": int(row["step"]),
            "layer": str(row["layer"]),
            "depth": int(row["depth"]),
            "kind": str(row["kind"]),
        }
        for column in STAT_COLUMNS:
            value = _parse(row.get(column))
            if value is not None:
                record[column] = value
        for column in INFO_COLUMNS:
            flag = _parse_flag(row.get(column), column, path)
            if flag is not None:
                record[column] = flag
        records.append(record)
    return MonitorHistory(records)


def make_writer(spec: Any) -> Writer:
    """A writer from an instance or a path: ``*.csv`` → CSV, ``*.jsonl``/``*.json`` → JSON lines."""
    if isinstance(spec, Writer):
        return spec
    if isinstance(spec, str | os.PathLike):
        path = os.fspath(spec)
        if path.endswith(".csv"):
            return CSVWriter(path)
        if path.endswith((".jsonl", ".json")):
            return JSONLinesWriter(path)
        raise ValueError(
            f"writers: cannot tell the format of {path!r}; use a path ending in .csv or .jsonl, "
            "or a writer object (CSVWriter, JSONLinesWriter, TensorBoardWriter)"
        )
    raise TypeError(
        "writers must be a list of writer objects (CSVWriter, JSONLinesWriter, TensorBoardWriter) "
        f"or paths ending in .csv/.jsonl; got {type(spec).__name__}"
    )
