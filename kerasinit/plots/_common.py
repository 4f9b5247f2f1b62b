"""Shared figure plumbing: a non-interactive backend and saving."""

from __future__ import annotations

import os
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend unless the user chose one (no display needed)."""
    import matplotlib

    if "MPLBACKEND" not in os.environ and matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def finish(fig: Any, out: str | os.PathLike[str] | None) -> Any:
    """Save ``fig`` to ``out`` (parent folders created) when given; return it."""
    if out is not None:
        path = os.fspath(out)
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def plain_number(value: float) -> str:
    """A tick label without exponent notation where it reads well: ``0.02``, ``5``, ``100``, ``2e-05``."""
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e5:
        return f"{value:.6g}"
    return f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")


def log_ticks(low: float, high: float, max_ticks: int = 8) -> list[float]:
    """Readable major ticks of a log axis spanning ``[low, high]``: the 1-2-5 sequence (1, 2, 5, 10, 20, ...),
    then 1-3 (1, 3, 10, 30, ...), then powers of ten, then every n-th power, whichever first gives at most
    ``max_ticks``; a span holding fewer than two of them gets 1, 2, ..., 9 steps (or its rounded ends)."""
    import math

    low, high = sorted((float(low), float(high)))
    if not (low > 0 and math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"a log axis needs positive finite limits; received {low!r}, {high!r}.")
    eps = 1e-9 * high
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    for subs in ((1, 2, 5), (1, 3), (1,)):
        ticks = [m * 10.0 ** k for k in range(first, last + 1) for m in subs if low - eps <= m * 10.0 ** k <= high + eps]
        if len(ticks) < 2:  # a span shorter than one 1-2-5 step: 1, 2, ..., 9 steps, else the rounded ends
            ticks = [m * 10.0 ** k for k in range(first, last + 1) for m in range(1, 10)
                     if low - eps <= m * 10.0 ** k <= high + eps]
            ticks = ticks if len(ticks) >= 2 else [float(f"{low:.2g}"), float(f"{high:.2g}")]
            return sorted({float(f"{t:.12g}") for t in ticks})[:: max(1, math.ceil(len(ticks) / max_ticks))]
        if len(ticks) <= max_ticks:
            return [float(f"{t:.12g}") for t in ticks]
    stride = math.ceil((last - first + 1) / max_ticks)
    return [10.0 ** k for k in range(first, last + 1) if k % stride == 0 and low - eps <= 10.0 ** k <= high + eps]


def readable_log_axis(ax: Any, which: str = "x", suffix: str = "") -> None:
    """Put :func:`log_ticks` on ``ax``'s log-scaled ``which`` axis for its current limits, labelled as plain
    numbers (:func:`plain_number` plus ``suffix``), minor ticks kept unlabelled: no ``4×10⁰`` minor labels
    running into each other. Call after the limits are final."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    low, high = ax.get_xlim() if which == "x" else ax.get_ylim()
    if not (min(low, high) > 0 and max(low, high) < float("inf")):  # nothing plotted: matplotlib's default
        return
    axis.set_major_locator(FixedLocator(log_ticks(low, high)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: plain_number(v) + suffix))
    axis.set_minor_formatter(NullFormatter())
