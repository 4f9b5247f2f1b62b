"""Figures for :func:`kerasinit.experiments.compare.run_compare`: loss curves, activation std per layer,
decision boundaries (2-D datasets)."""

from __future__ import annotations

import math
import os
from typing import Any

import keras
import numpy as np

from kerasinit.plots._common import finish, pyplot, readable_log_axis


def plot_loss_curves(results: Any, out: str | os.PathLike[str] | None = None) -> Any:
    """Training loss (solid) and validation loss (dashed) per epoch, mean over seeds, one colour per
    initializer; validation accuracy on the right."""
    plt = pyplot()
    hist = results.history()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    status = dict(zip(results.summary()["init"], results.summary()["status"], strict=True))  # counts seeds
    several = len({r.seed for r in results.runs}) > 1
    for i, init in enumerate(results.inits):
        label = init if status[init] == "ok" else f"{init} ({status[init]})"
        mean = hist[hist["init"] == init].groupby("epoch")[["loss", "val_loss", "val_accuracy"]].mean()
        color = f"C{i % 10}"
        ax_loss.plot(mean.index, mean["loss"], "-", color=color, label=label)
        ax_loss.plot(mean.index, mean["val_loss"], "--", color=color)
        ax_acc.plot(mean.index, mean["val_accuracy"], "-", color=color, label=init)
    ax_loss.set(xlabel="epoch", ylabel="loss (train solid, val dashed)",
                title="loss, mean over seeds" if several else "loss")
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1.02), title="validation accuracy")
    ax_acc.axhline(results.config["target"], color="grey", lw=0.8, ls=":")
    ax_acc.axhline(results.dataset.chance, color="grey", lw=0.8, ls="--")
    ax_loss.legend(fontsize=8)
    fig.suptitle(_title(results), fontsize=10)
    fig.tight_layout()
    return finish(fig, out)


def plot_activation_std(results: Any, out: str | os.PathLike[str] | None = None) -> Any:
    """Std of each hidden layer's output at step 0 (mean over seeds), log scale; initializers whose
    activations are all zero are listed in the legend."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, init in enumerate(results.inits):
        stds = np.mean([r.act_std for r in results.runs if r.init == init], axis=0)
        layers = np.arange(1, len(stds) + 1)
        positive = stds > 0
        label = init if positive.any() else f"{init} (all zero)"
        ax.plot(layers[positive], stds[positive], "o-", color=f"C{i % 10}", label=label)
    ax.set_yscale("log")
    ax.set(xlabel="hidden layer", ylabel="activation std at step 0 (log scale)",
           title="signal through depth before training")
    ax.set_xticks(np.arange(1, max(len(r.act_std) for r in results.runs) + 1))
    if ax.lines and any(len(line.get_xdata()) for line in ax.lines):
        readable_log_axis(ax, "y")
    ax.legend(fontsize=8)
    fig.suptitle(_title(results), fontsize=10)
    fig.tight_layout()
    return finish(fig, out)


def plot_decision_boundaries(results: Any, out: str | os.PathLike[str] | None = None, resolution: int = 150) -> Any:
    """Predicted class over the plane (first seed's model per initializer) with the test points."""
    ds = results.dataset
    if not ds.is_2d:
        raise ValueError(f"decision boundaries need a 2-D dataset; {ds.name} has {ds.n_features} features.")
    if not results.models:
        raise ValueError("no trained models kept: run_compare keeps the first seed's model for 2-D datasets.")
    plt = pyplot()
    x = np.concatenate([ds.x_train, ds.x_test])
    lo, hi = x.min(axis=0) - 0.5, x.max(axis=0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    n = len(results.models)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.8 * rows), squeeze=False)
    acc = {r.init: r.test_accuracy for r in results.runs if r.seed == results.config["seeds"][0]}
    for ax, (init, model) in zip(axes.ravel(), results.models.items(), strict=False):
        probs = np.asarray(keras.ops.convert_to_numpy(model(grid, training=False)))  # eager: no retracing
        pred = np.nan_to_num(probs, nan=0.0).argmax(axis=1).reshape(gx.shape)
        ax.contourf(gx, gy, pred, levels=np.arange(ds.n_classes + 1) - 0.5, cmap="coolwarm", alpha=0.35)
        ax.scatter(ds.x_test[:, 0], ds.x_test[:, 1], c=ds.y_test, cmap="coolwarm", s=8, edgecolors="k", linewidths=0.2)
        ax.set_title(f"{init}: test acc {acc.get(init, math.nan):.3f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.suptitle(_title(results), fontsize=10)
    fig.tight_layout()
    return finish(fig, out)


def _title(results: Any) -> str:
    c = results.config
    arch = f"{c['depth']}x{c['width']} {c['activation']} MLP" if c["model"] == "mlp" else c["model"]
    return f"{c['dataset']}: {arch}, {c['optimizer']} lr {c['learning_rate']:g}, {c['epochs']} epochs, seeds {c['seeds']}"


__all__ = ["plot_activation_std", "plot_decision_boundaries", "plot_loss_curves"]
