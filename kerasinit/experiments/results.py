"""Persistence of experiments: JSON-safe values, atomic writes, ``.npz`` arrays, aligned text tables
and the resumable run folder.

A run folder holds ``results.json`` (settings and finished rows), written atomically *after* the
arrays of a finished unit of work: whatever is listed there is complete, and a rerun with the same
settings continues after it (:class:`RunFolder`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
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


class RunFolder:
    """A resumable experiment folder (``out=None``: nothing is written, nothing resumes).

    ``keys``: settings that must match a saved run to resume it; a mismatch raises ValueError
    naming them. ``rows`` holds the finished rows read back; :meth:`commit` appends one and rewrites
    ``results.json`` atomically (call it after the row's arrays are saved).
    """

    def __init__(self, out: str | os.PathLike[str] | None, config: dict[str, Any], keys: Sequence[str],
                 resume: bool = True) -> None:
        self.out = None if out is None else os.fspath(out)
        self.config = config
        self.rows: list[dict[str, Any]] = []
        if self.out is None:
            return
        os.makedirs(self.out, exist_ok=True)
        path = self.path(RESULTS_FILE)
        if resume and os.path.exists(path):
            with open(path) as fh:
                saved = json.load(fh)
            diff = [k for k in keys if saved["config"].get(k) != finite(config.get(k))]
            if diff:
                raise ValueError(f"argument `out`: {self.out!r} holds a run with other settings ({', '.join(diff)}); "
                                 "use another folder or resume=False (--fresh on the command line).")
            self.rows = saved["rows"]

    def path(self, *parts: str) -> str:
        assert self.out is not None
        return os.path.join(self.out, *parts)

    def commit(self, row: dict[str, Any], rows: list[dict[str, Any]] | None = None) -> None:
        """Record a finished row; ``rows`` (default: the rows so far plus ``row``) is what gets written."""
        self.rows.append(row)
        if self.out is not None:
            atomic_write(self.path(RESULTS_FILE), json.dumps(finite({"config": self.config,
                                                                       "rows": rows or self.rows}), indent=2))


__all__ = ["RESULTS_FILE", "RunFolder", "atomic_write", "finite", "load_arrays", "mean_std", "save_arrays",
           "text_table"]
