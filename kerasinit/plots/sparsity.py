"""Figure for :func:`kerasinit.experiments.sparsity.run_prune_at_init`: test accuracy against the percentage
of weights remaining (log x-axis, dense on the left), one line per pruning-at-initialization method, as in
Tanaka et al. (2020), Figure 6, and Frankle et al. (2021). The sparse-training methods (family
``"dynamic"``: RigL, SET, static; Evci et al. 2020) are dashed with square markers, labelled
``"<method> (dynamic)"``; the pruning-at-initialization scores solid with circles."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from kerasinit.plots._common import finish, pyplot, readable_log_axis


def plot_accuracy_vs_sparsity(results: Any, out: str | os.PathLike[str] | None = None) -> Any:
    """``results``: an :class:`~kerasinit.experiments.sparsity.AtInitResults`; with several seeds the mean
    with a ±1 std band. The log x-axis is labelled in plain numbers (2, 5, 10, 20, 50, 100)."""
    summary = results.summary()
    if not summary:
        raise ValueError("argument `results` holds no runs.")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    several = len({r["seed"] for r in results.rows}) > 1
    for i, method in enumerate(dict.fromkeys(s["method"] for s in summary)):
        rows = sorted((s for s in summary if s["method"] == method), key=lambda s: s["sparsity"])
        remaining = 100 * (1 - np.array([s["sparsity"] for s in rows]))
        mean = np.array([s["test_accuracy_mean"] for s in rows], float)
        std = np.array([s["test_accuracy_std"] for s in rows], float)
        dynamic = rows[0].get("family") == "dynamic"
        ax.plot(remaining, mean, "s--" if dynamic else "o-", color=f"C{i}", ms=4,
                label=f"{method} (dynamic)" if dynamic else method)
        if several:
            ax.fill_between(remaining, mean - std, mean + std, color=f"C{i}", alpha=0.2, lw=0)
    if results.lottery:  # IMP's winning tickets (run_lottery), the reference
        rows = sorted(results.lottery, key=lambda r: r["sparsity"])
        ax.plot(100 * (1 - np.array([r["sparsity"] for r in rows])), [r["test_accuracy_mean"] for r in rows], "k--",
                label="IMP ticket (run_lottery)")
    ax.set_xscale("log")
    ax.invert_xaxis()  # dense on the left, sparser to the right
    readable_log_axis(ax, "x")
    ax.set_xlabel("weights remaining (%, log scale)")
    ax.set_ylabel("test accuracy" + (" (mean ± std over seeds)" if several else ""))
    dynamic = any(s.get("family") == "dynamic" for s in summary)
    what = "pruning at initialization" + (" and sparse training" if dynamic else "")
    ax.set_title(f"{what}: {results.config['model']} on {results.config['dataset']}")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return finish(fig, out)
