"""The classic error-bar figure: each initializer's range (or ±σ) against fan-in."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from kerasinit.initializers.describe import bounds_table
from kerasinit.plots._common import finish, pyplot


def plot_bounds(
    initializers: Any,
    fan_in: Iterable[int] = range(1, 101),
    fan_out: int | None = None,
    out: str | os.PathLike[str] | None = None,
    ax: Any = None,
) -> Any:
    """One band per initializer from ``low`` to ``high`` (uniform limit, truncation points, or
    mean ± σ for untruncated normals, drawn dashed) against fan-in, with error bars at a few
    fan-ins. Returns the Figure; saves it to ``out`` when given.
    """
    table = bounds_table(initializers, fan_in=fan_in, fan_out=fan_out)
    plt = pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
    else:
        fig = ax.figure
    for i, (label, rows) in enumerate(table.groupby("initializer", sort=False)):
        color = f"C{i % 10}"
        bounded = bool(rows["bounded"].iloc[0])
        style = "-" if bounded else "--"
        what = "range" if bounded else "±σ"
        ax.plot(rows["fan_in"], rows["high"], style, color=color, label=f"{label} ({what})")
        ax.plot(rows["fan_in"], rows["low"], style, color=color)
        ax.fill_between(rows["fan_in"], rows["low"], rows["high"], color=color, alpha=0.12)
        step = max(1, len(rows) // 10)
        sub = rows.iloc[i % step :: step]
        mid = (sub["high"] + sub["low"]) / 2
        ax.errorbar(sub["fan_in"], mid, yerr=(sub["high"] - sub["low"]) / 2, fmt="none", ecolor=color, capsize=3)
    fo = "fan_in (square layers)" if fan_out is None else str(fan_out)
    ax.set_xlabel("fan-in")
    ax.set_ylabel("weight value")
    ax.set_title(f"Initializer ranges against fan-in (fan-out = {fo})")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return finish(fig, out)
