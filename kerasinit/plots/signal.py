"""Figures of the signal through depth from :class:`kerasinit.monitor.VarianceMonitor` records.

Every function accepts the monitor itself, its ``history``, a ``pandas.DataFrame`` of records, a
list of record dicts or a path to a CSV/JSONL file the monitor wrote; saves to ``out`` when given
and returns the matplotlib Figure.

* :func:`plot_std_vs_depth` - a statistic per layer against depth, one line per chosen epoch
  (the "activation std shrinks layer by layer" picture);
* :func:`plot_std_over_training` - a statistic per layer over training (heatmap or lines);
* :func:`plot_activation_histograms` - per-layer histograms at one step, overlaid as densities
  (Glorot & Bengio 2010, Fig. 6 for activations and Fig. 7 for back-propagated gradients);
* :func:`plot_gradient_norms` - the gradient norm per layer against depth.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from kerasinit.plots._common import finish, pyplot, readable_log_axis

PathLike = str | os.PathLike[str]


def _frame(history: Any) -> Any:
    """Records as a DataFrame, whatever form they come in."""
    import pandas as pd

    from kerasinit.monitor.writers import MonitorHistory, load_history

    if isinstance(history, str | os.PathLike):
        history = load_history(history)
    if hasattr(history, "history") and isinstance(history.history, MonitorHistory):
        history = history.history
    if isinstance(history, MonitorHistory):
        return history.to_pandas()
    if isinstance(history, pd.DataFrame):
        return history
    if isinstance(history, list):
        return MonitorHistory(history).to_pandas()
    raise TypeError(
        "history must be a VarianceMonitor, a MonitorHistory, a DataFrame, a list of records or a "
        f"path to a .csv/.jsonl file; got {type(history).__name__}"
    )


def _select(frame: Any, kind: str, stat: str) -> Any:
    if stat not in frame.columns:
        raise ValueError(f"stat must be one of {list(frame.columns[5:])}; got {stat!r}")
    rows = frame[(frame["kind"] == kind) & frame[stat].notna()]
    if rows.empty:
        kinds = sorted(frame.loc[frame[stat].notna(), "kind"].unique())
        raise ValueError(f"kind: no {kind!r} records with a {stat!r} value; kinds with it: {kinds}")
    return rows


def _axes(ax: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    plt = pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def plot_std_vs_depth(
    history: Any,
    epochs: Sequence[int] | None = None,
    kind: str = "activations",
    stat: str = "std",
    log: bool = True,
    out: PathLike | None = None,
    ax: Any = None,
) -> Any:
    """``stat`` of each tracked layer against its depth, one line per epoch in ``epochs``.

    For each epoch the first record taken at that epoch count is used, i.e. the state right after
    that many epochs (``0`` is the initial state, before any training). Default: every recorded epoch (at most 8, evenly spread).
    """
    rows = _select(_frame(history), kind, stat)
    available = sorted(rows["epoch"].unique())
    if epochs is None:
        epochs = [available[int(i)] for i in np.unique(np.linspace(0, len(available) - 1, min(8, len(available))).round())]
    missing = [e for e in epochs if e not in available]
    if missing:
        raise ValueError(f"epochs {missing} have no {kind!r} records; recorded epochs: {[int(e) for e in available]}")
    fig, ax = _axes(ax, (7, 4.5))
    cmap = pyplot().get_cmap("viridis")
    for i, epoch in enumerate(epochs):
        at_epoch = rows[rows["epoch"] == epoch]
        step = at_epoch["step"].min()
        line = at_epoch[at_epoch["step"] == step].sort_values("depth")
        color = cmap(i / max(1, len(epochs) - 1))
        ax.plot(line["depth"], line[stat], "o-", ms=3, color=color, label=f"epoch {int(epoch)} (step {int(step)})")
    if log:
        ax.set_yscale("log")
        readable_log_axis(ax, "y")
    ax.set_xlabel("layer depth (index among tracked layers)")
    ax.set_ylabel(f"{kind} {stat}")
    ax.set_title(f"{kind} {stat} per layer")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return finish(fig, out)


def plot_std_over_training(
    history: Any,
    kind: str = "activations",
    stat: str = "std",
    style: str = "heatmap",
    log: bool = True,
    out: PathLike | None = None,
    ax: Any = None,
) -> Any:
    """``stat`` of each layer over training steps: a depth x record heatmap (log10 colour scale
    when ``log``) or one line per layer (``style="lines"``)."""
    if style not in ("heatmap", "lines"):
        raise ValueError(f"style must be 'heatmap' or 'lines'; got {style!r}")
    rows = _select(_frame(history), kind, stat)
    table = rows.pivot_table(index="depth", columns="step", values=stat, aggfunc="last").sort_index()
    names = rows.drop_duplicates("depth").set_index("depth")["layer"].reindex(table.index)
    fig, ax = _axes(ax, (8, 4.5))
    if style == "heatmap":
        values = table.to_numpy(dtype=float)
        if log:
            with np.errstate(divide="ignore", invalid="ignore"):
                values = np.log10(np.abs(values))
        image = ax.imshow(values, aspect="auto", origin="lower", cmap="magma", interpolation="nearest")
        steps = list(table.columns)
        ticks = np.unique(np.linspace(0, len(steps) - 1, min(10, len(steps))).round().astype(int))
        ax.set_xticks(ticks, [str(steps[t]) for t in ticks])
        ax.set_yticks(range(len(names)), list(names), fontsize=7 if len(names) > 12 else 9)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("layer")
        fig.colorbar(image, ax=ax, label=f"log10 {stat}" if log else stat)
    else:
        cmap = pyplot().get_cmap("viridis")
        for i, depth in enumerate(table.index):
            ax.plot(table.columns, table.loc[depth], "-", color=cmap(i / max(1, len(table.index) - 1)), label=str(names[depth]))
        if log:
            ax.set_yscale("log")
            readable_log_axis(ax, "y")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(f"{kind} {stat}")
        if len(table.index) <= 12:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    ax.set_title(f"{kind} {stat} over training")
    return finish(fig, out)


def plot_activation_histograms(
    histograms: Any,
    step: int | None = None,
    kind: str = "activations",
    layers: Sequence[str] | None = None,
    out: PathLike | None = None,
    ax: Any = None,
) -> Any:
    """Normalized histograms (densities) of each layer's values at one ``step``, overlaid:
    Glorot & Bengio 2010, Fig. 6 (activations) and Fig. 7 (``kind="output_gradients"``).

    ``histograms`` is a monitor created with ``histograms=True`` or its ``histograms`` list;
    ``step`` defaults to the last recorded one.
    """
    entries = getattr(histograms, "histograms", histograms)
    if not isinstance(entries, list):
        raise TypeError(f"histograms must be a VarianceMonitor(histograms=True) or a list of HistogramEntry; got {type(entries).__name__}")
    entries = [e for e in entries if e.kind == kind]
    if not entries:
        raise ValueError(f"kind: no {kind!r} histograms recorded (was the monitor created with histograms=True?)")
    steps = sorted({e.step for e in entries})
    step = steps[-1] if step is None else step
    if step not in steps:
        raise ValueError(f"step {step} has no {kind!r} histograms; recorded steps: {steps}")
    chosen = sorted((e for e in entries if e.step == step), key=lambda e: e.depth)
    if layers is not None:
        unknown = sorted(set(layers) - {e.layer for e in chosen})
        if unknown:
            raise ValueError(f"layers: no histograms for {unknown}; available: {[e.layer for e in chosen]}")
        chosen = [e for e in chosen if e.layer in set(layers)]
    fig, ax = _axes(ax, (7, 4.5))
    cmap = pyplot().get_cmap("viridis")
    for i, entry in enumerate(chosen):
        edges = np.asarray(entry.edges, dtype=float)
        counts = np.asarray(entry.counts, dtype=float)
        widths = np.diff(edges)
        density = counts / max(1.0, counts.sum()) / np.where(widths > 0, widths, 1.0)
        centers = (edges[:-1] + edges[1:]) / 2
        ax.plot(centers, density, "-", color=cmap(i / max(1, len(chosen) - 1)), label=f"{entry.layer} (depth {entry.depth})")
    ax.set_xlabel("activation value" if kind == "activations" else f"{kind} value")
    ax.set_ylabel("density")
    ax.set_title(f"{kind} histograms at step {step}")
    if len(chosen) <= 12:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return finish(fig, out)


def plot_gradient_norms(
    history: Any,
    epochs: Sequence[int] | None = None,
    kind: str = "gradients",
    out: PathLike | None = None,
    ax: Any = None,
) -> Any:
    """The L2 norm of dL/dW (or of dL/dy with ``kind="output_gradients"``) per layer against depth."""
    fig = plot_std_vs_depth(history, epochs=epochs, kind=kind, stat="norm", log=True, out=None, ax=ax)
    fig.axes[0].set_title(f"{kind} norm per layer")
    return finish(fig, out)


__all__ = ["plot_activation_histograms", "plot_gradient_norms", "plot_std_over_training", "plot_std_vs_depth"]
