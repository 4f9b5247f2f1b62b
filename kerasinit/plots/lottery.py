"""Figure for :func:`kerasinit.experiments.lottery.run_lottery`: test accuracy and early-stop step against the
percentage of weights remaining (log x-axis, dense on the left), ticket vs controls, as in Frankle &
Carbin (ICLR 2019), Figure 3."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from kerasinit.plots._common import finish, pyplot, readable_log_axis

STYLE = {"ticket": ("C0", "o-", "winning ticket (rewound)"), "reinit": ("C3", "s--", "random reinit"),
         "random": ("C2", "^:", "random pruning")}


def plot_lottery(results: Any, out: str | os.PathLike[str] | None = None) -> Any:
    """``results``: a :class:`~kerasinit.experiments.lottery.LotteryResults`; with several seeds the
    mean over seeds with a ±1 std band (Frankle & Carbin's error bars). The early-stop panel marks the last
    training step: a line lying on it means the validation loss was still falling when training ended."""
    summary = results.summary()
    if summary.empty:
        raise ValueError("argument `results` holds no rounds.")
    plt = pyplot()
    fig, (ax_acc, ax_stop) = plt.subplots(1, 2, figsize=(11, 4.2))
    remaining = 100 * summary["remaining"].to_numpy()
    several = len(results.seeds) > 1
    for kind in ("ticket", *results.config["controls"]):
        color, fmt, label = STYLE[kind]
        for ax, key in ((ax_acc, "test_accuracy"), (ax_stop, "early_stop_step")):
            mean = summary[f"{kind}_{key}_mean"].to_numpy(dtype=float)
            std = summary[f"{kind}_{key}_std"].to_numpy(dtype=float)
            ok = np.isfinite(mean)
            if not ok.any():
                continue
            ax.plot(remaining[ok], mean[ok], fmt, color=color, label=label, ms=4)
            if several:
                ax.fill_between(remaining[ok], (mean - std)[ok], (mean + std)[ok], color=color, alpha=0.2, lw=0)
    for ax in (ax_acc, ax_stop):
        ax.set_xscale("log")
        ax.set_xlim(remaining.max() * 1.15, remaining.min() / 1.15)  # dense on the left, sparser to the right
        readable_log_axis(ax, "x")
        ax.set_xlabel("% of weights remaining (log scale)")
        ax.grid(True, which="both", alpha=0.3)
    ax_acc.set(ylabel="test accuracy at early stop", title="accuracy" + (" (mean ± std over seeds)" if several else ""))
    last = results.config.get("steps")
    if last:
        ax_stop.axhline(last, color="grey", ls=":", lw=1, label=f"last step ({last}): still improving at the end")
        ax_stop.legend(fontsize=8)
    ax_stop.set(ylabel="early-stop step (min val loss)", title="early-stopping iteration"
                + (" (mean ± std over seeds)" if several else ""))
    ax_acc.legend(fontsize=8)
    c = results.config
    fig.suptitle(f"IMP: {c['model']} on {c['dataset']}, rate {c['rate']:g}, {c['scope']} scope, rewind {c['rewind']}, "
                 f"{c['optimizer']} lr {c['learning_rate']:g}, seeds {results.seeds}", fontsize=10)
    fig.tight_layout()
    return finish(fig, out)


__all__ = ["plot_lottery"]
