"""Figure for :func:`kerasinit.lottery.run_lottery`: test accuracy and early-stop step against the
percentage of weights remaining (log x-axis, dense on the left), ticket vs controls, as in Frankle &
Carbin (ICLR 2019), Figure 3."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from kerasinit.plots._common import finish, pyplot

STYLE = {"ticket": ("C0", "o-", "winning ticket (rewound)"), "reinit": ("C3", "s--", "random reinit"),
         "random": ("C2", "^:", "random pruning")}


def plot_lottery(results: Any | Sequence[Any], out: str | os.PathLike[str] | None = None) -> Any:
    """``results``: one :class:`~kerasinit.lottery.LotteryResults` or a list (e.g. one per seed, same
    settings): then the mean with min-max error bars over them."""
    runs = list(results) if isinstance(results, Sequence) else [results]
    if not runs:
        raise ValueError("argument `results` must hold at least one LotteryResults.")
    plt = pyplot()
    fig, (ax_acc, ax_stop) = plt.subplots(1, 2, figsize=(11, 4.2))
    n_rows = min(len(r.rows) for r in runs)
    remaining = 100 * np.array([runs[0].rows[i]["remaining"] for i in range(n_rows)])
    for kind in ("ticket", *runs[0].config["controls"]):
        color, fmt, label = STYLE[kind]
        for ax, key in ((ax_acc, "test_accuracy"), (ax_stop, "early_stop_step")):
            vals = np.array([[r.rows[i][kind][key] if r.rows[i].get(kind) else math.nan for i in range(n_rows)]
                             for r in runs], dtype=float)
            ok = ~np.isnan(vals).all(axis=0)
            if not ok.any():
                continue
            mean = np.nanmean(vals[:, ok], axis=0)
            err = np.vstack([mean - np.nanmin(vals[:, ok], axis=0), np.nanmax(vals[:, ok], axis=0) - mean])
            ax.errorbar(remaining[ok], mean, yerr=err if len(runs) > 1 else None, fmt=fmt, color=color, label=label,
                        capsize=3, ms=4)
    for ax in (ax_acc, ax_stop):
        ax.set_xscale("log")
        ax.set_xlim(remaining.max() * 1.15, remaining.min() / 1.15)  # dense on the left, sparser to the right
        ax.set_xticks(remaining, [f"{v:.3g}" for v in remaining], fontsize=8)
        ax.minorticks_off()
        ax.set_xlabel("% of weights remaining (log)")
        ax.grid(True, which="both", alpha=0.3)
    ax_acc.set(ylabel="test accuracy at early stop", title="accuracy")
    ax_stop.set(ylabel="early-stop step (min val loss)", title="early-stopping iteration")
    ax_acc.legend(fontsize=8)
    c = runs[0].config
    seeds = sorted({r.config["seed"] for r in runs})
    fig.suptitle(f"IMP on {c['dataset']}: {'-'.join(map(str, c['arch']))} {c['activation']}, rate {c['rate']:g} "
                 f"(output {c['output_rate']:g}), {c['scope']} scope, rewind {c['rewind']}, seeds {seeds}", fontsize=10)
    fig.tight_layout()
    return finish(fig, out)


__all__ = ["plot_lottery"]
