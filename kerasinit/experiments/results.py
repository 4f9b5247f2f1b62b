"""Persistence of experiments: JSON-safe values, atomic writes, ``.npz`` arrays, aligned text tables
and the resumable run folder.

A run folder holds ``results.json`` (settings and finished rows), written atomically *after* the
arrays of a finished unit of work: whatever is listed there is complete, and a rerun with the same
settings continues after it (:class:`RunFolder`).
"""

from __future__ import annotations

import glob
import json
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

RESULTS_FILE = "results.json"


def finite(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``None`` (strict JSON has no NaN), recursively."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def atomic_write(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace`` (never half a file)."""
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def save_arrays(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    """Compressed ``.npz``, written atomically; key order is kept (weights are matched by position)."""
    tmp = f"{os.fspath(path)}.tmp.npz"
    np.savez_compressed(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
    os.replace(tmp, path)


def load_arrays(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def text_table(rows: Sequence[Mapping[str, str]], head: Sequence[str] | None = None, right: bool = True) -> str:
    """Rows of strings as aligned plain text (right-aligned numbers by default)."""
    head = list(rows[0]) if rows else list(head or [])
    widths = [max(len(h), *(len(r[h]) for r in rows)) for h in head]
    pad = (lambda s, w: s.rjust(w)) if right else (lambda s, w: s.ljust(w))
    lines = ["  ".join(pad(h, w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(pad(r[h], w) for h, w in zip(head, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population std of the finite values (NaN, NaN when there are none)."""
    arr = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    return (float(arr.mean()), float(arr.std())) if arr.size else (math.nan, math.nan)


class RunFolderConflict(ValueError):
    """``out`` holds a run whose settings differ from the requested ones (so it cannot be resumed).

    ``out``: the folder; ``differences``: ``{argument: (saved, requested)}`` keyed by the library
    argument names (``"epochs"``, ``"learning_rate"``, ... and ``"experiment"`` when the folder holds
    another experiment's results).
    """

    def __init__(self, out: str, differences: Mapping[str, tuple[Any, Any]]) -> None:
        self.out = out
        self.differences = dict(differences)
        what = "; ".join(f"{k}={saved!r} there, {now!r} requested" for k, (saved, now) in self.differences.items())
        super().__init__(f"argument `out`: {out!r} holds a run with other settings ({what}); rerun with its settings "
                         "to resume it, pass resume=False to start over there, or choose another `out`.")


def check_out(out: str | os.PathLike[str] | None) -> str | None:
    """``out`` as a string, created and proven writable (a probe file), or a ValueError naming ``out``.

    Called before any training so that an unusable folder never costs a finished experiment.
    """
    if out is None:
        return None
    if not isinstance(out, str | os.PathLike):
        raise TypeError(f"argument `out` must be a folder path (str or os.PathLike) or None; received {out!r}.")
    path = os.fspath(out)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"argument `out`: {path!r} exists and is not a folder; choose a folder path.")
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".kerasinit-write-test-", dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise ValueError(f"argument `out`: cannot create or write the folder {path!r} "
                         f"({exc.strerror or exc}); choose a writable folder.") from None
    return path


class RunFolder:
    """A resumable experiment folder (``out=None``: nothing is written, nothing resumes).

    ``out`` is checked first (:func:`check_out`). ``keys``: settings that must match a saved run
    to resume it, or a function of the saved rows that returns them (settings that only some rows
    depend on); a mismatch raises :class:`RunFolderConflict`. ``experiment``: the experiment's
    name, saved in ``results.json`` (a folder of another experiment is a conflict on
    ``"experiment"``). ``rows_key``: where ``results.json`` lists the finished rows. ``resume=False``
    starts over: ``results.json`` and the files matching ``outputs`` (glob patterns relative to
    ``out``, what the experiment writes) are deleted, emptied sub-folders too; nothing else is
    touched. ``rows`` holds the finished rows read back; :meth:`commit` appends one and rewrites
    ``results.json`` atomically (call it after the row's arrays are saved).
    """

    def __init__(self, out: str | os.PathLike[str] | None, config: dict[str, Any],
                 keys: Sequence[str] | Callable[[list[dict[str, Any]]], Sequence[str]],
                 resume: bool = True, *, experiment: str | None = None, rows_key: str = "rows",
                 outputs: Sequence[str] = ()) -> None:
        self.out = check_out(out)
        self.config = config
        self.experiment = experiment
        self.rows_key = rows_key
        self.rows: list[dict[str, Any]] = []
        if self.out is None:
            return
        path = self.path(RESULTS_FILE)
        if not resume:
            self.clear(outputs)
            return
        if not os.path.exists(path):
            return
        try:
            with open(path) as fh:
                saved = json.load(fh)
        except (OSError, ValueError) as exc:
            raise ValueError(f"argument `out`: cannot read {path!r} ({exc}); pass resume=False to start over there "
                             "or choose another `out`.") from None
        found = saved.get("experiment") if isinstance(saved, dict) else None
        if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict) or rows_key not in saved or (
                experiment is not None and found is not None and found != experiment):
            raise RunFolderConflict(self.out, {"experiment": (found or "another experiment", experiment)})
        before = saved["config"]
        if callable(keys):
            keys = keys(list(saved[rows_key]))
        diff = {k: (before.get(k), finite(config.get(k))) for k in keys if before.get(k) != finite(config.get(k))}
        if diff:
            raise RunFolderConflict(self.out, diff)
        self.rows = list(saved[rows_key])

    def clear(self, outputs: Sequence[str] = ()) -> None:
        """Delete ``results.json`` and the files matching ``outputs``, then the sub-folders left empty."""
        assert self.out is not None
        folders = set()
        for pattern in (RESULTS_FILE, *outputs):
            for name in glob.glob(os.path.join(glob.escape(self.out), pattern)):
                if os.path.isfile(name):
                    os.remove(name)
                    folders.add(os.path.dirname(name))
        for folder in sorted(folders, key=len, reverse=True):
            if os.path.normpath(folder) != os.path.normpath(self.out) and not os.listdir(folder):
                os.rmdir(folder)

    def path(self, *parts: str) -> str:
        assert self.out is not None
        return os.path.join(self.out, *parts)

    def commit(self, row: dict[str, Any], rows: list[dict[str, Any]] | None = None,
               document: Mapping[str, Any] | None = None) -> None:
        """Record a finished row; ``rows`` (default: the rows so far plus ``row``) is what gets written,
        or the whole ``document`` when given (it must list the rows under ``rows_key``)."""
        self.rows.append(row)
        if self.out is not None:
            if document is None:
                document = {"config": self.config, self.rows_key: rows or self.rows}
            if self.experiment is not None:
                document = {"experiment": self.experiment, **document}
            atomic_write(self.path(RESULTS_FILE), json.dumps(finite(dict(document)), indent=2))


def pm(mean: float, std: float, fmt: str = ".4f", several: bool = True) -> str:
    """``"0.9120 ± 0.0100"`` over several seeds, the value alone over one (never a ``± 0`` of one run)."""
    if not math.isfinite(mean):
        return "-"
    if not several or not math.isfinite(std):
        return f"{mean:{fmt}}"
    return f"{mean:{fmt}} ± {std:{fmt}}"


def status_label(statuses: Sequence[str]) -> str:
    """``"ok"``, or each other status with how many of the seeds had it: ``"stalled in 1 of 3 seeds"``
    (the bare status when every seed had it: ``"symmetric"``); several are joined by ``"; "``."""
    statuses = list(statuses)
    n = len(statuses)
    parts = [s if statuses.count(s) == n else f"{s} in {statuses.count(s)} of {n} seeds"
             for s in dict.fromkeys(statuses) if s != "ok"]
    return "; ".join(parts) or "ok"


def status_notes(statuses: Sequence[str]) -> list[str]:
    """What each status other than ``"ok"`` among ``statuses`` means (one line each, for table footnotes)."""
    from kerasinit.experiments.training import STATUS_NOTES

    notes = []
    for s in dict.fromkeys(statuses):
        text = STATUS_NOTES.get(s)
        if text is not None:
            meaning = text[len(s):].strip().removeprefix("(").removesuffix(")")
            notes.append(f"{s}: {meaning}")
    return notes


def save_outputs(writers: Sequence[tuple[str, Any]]) -> list[str]:
    """Call each ``(path, write)`` in turn; an ``OSError`` (disk full, folder removed) warns naming the
    file instead of raising, so a finished experiment's other files are still written. Returns the
    paths written."""
    written = []
    for path, write in writers:
        try:
            write(path)
        except OSError as exc:
            warnings.warn(f"could not write {path}: {exc}", RuntimeWarning, stacklevel=3)
            continue
        written.append(path)
    return written


__all__ = ["RESULTS_FILE", "RunFolder", "RunFolderConflict", "atomic_write", "check_out", "finite", "load_arrays",
           "mean_std", "pm", "save_arrays", "save_outputs", "status_label", "status_notes", "text_table"]
