"""Per-layer statistics, computed with NumPy on arrays already copied off the device.

Every function returns a flat ``dict[str, float | None]`` with the keys of :data:`STAT_COLUMNS`
that apply to its kind; the others are absent (written as empty/``null``).

Definitions (``x`` is the flattened tensor, ``N`` its size):

* ``mean``, ``var = mean((x - mean)^2)`` (population variance), ``std = sqrt(var)``, ``min``, ``max``;
* ``zero_fraction`` = #{x == 0} / N (exact zeros: pruned or dead weights);
* ``p98_abs`` = 98th percentile of |x| (Glorot & Bengio 2010, Fig. 3 plots it per layer);
* ``dead_fraction`` (ReLU family) = fraction of units (last axis) whose output is <= 0 for every
  example (and position) of the probe batch;
* ``saturated_fraction`` (sigmoid/tanh family) = fraction of entries within 1% of an asymptote
  (0.01 x the largest |asymptote|): |y| >= 0.99 for tanh, y <= 0.01 or y >= 0.99 for the
  logistic sigmoid (the saturation Glorot & Bengio 2010 show in Fig. 2 and 4);
* ``norm`` = ||x||_2;
* ``grad_weight_rms_ratio`` = rms(g) / rms(w) with rms(x) = sqrt(mean(x^2)): the relative size of
  one SGD step per unit learning rate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: Columns of a record, in the order writers use.
KEY_COLUMNS: tuple[str, ...] = ("epoch", "step", "layer", "depth", "kind")
STAT_COLUMNS: tuple[str, ...] = (
    "mean",
    "std",
    "var",
    "min",
    "max",
    "zero_fraction",
    "p98_abs",
    "dead_fraction",
    "saturated_fraction",
    "norm",
    "grad_weight_rms_ratio",
)
#: What a record says about how it was taken: ``probe_training`` = whether the probe pass ran the
#: model in training mode (BatchNormalization on the probe batch's statistics, dropout active with
#: fixed masks) or in inference mode (see ``VarianceMonitor(training=...)``). Files written before
#: this column existed load without it.
INFO_COLUMNS: tuple[str, ...] = ("probe_training",)
COLUMNS: tuple[str, ...] = KEY_COLUMNS + STAT_COLUMNS + INFO_COLUMNS

#: The kinds of record, in the order they are taken at one step.
KINDS: tuple[str, ...] = ("weights", "activations", "gradients", "output_gradients")

#: Activations whose "dead units" are counted (output <= 0 on the whole probe batch).
RELU_FAMILY: frozenset[str] = frozenset(
    {"relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "swish", "hard_silu", "hard_swish", "mish", "ReLU", "LeakyReLU", "ELU", "PReLU"}
)
#: Saturating activations and their (lower, upper) asymptotes.
SATURATING: dict[str, tuple[float, float]] = {
    "sigmoid": (0.0, 1.0),
    "hard_sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "hard_tanh": (-1.0, 1.0),
    "softsign": (-1.0, 1.0),
}
#: "Within 1% of the asymptote", relative to the largest |asymptote| (1 for all of the above).
SATURATION_TOLERANCE = 0.01


def activation_name(layer: Any) -> str | None:
    """The name of the nonlinearity applied last by ``layer`` (``"relu"``, ``"tanh"``, ...) or None.

    Reads ``layer.activation`` (Dense, Conv, Activation layers) or the layer class for the ReLU
    family layers (ReLU, LeakyReLU, ELU, PReLU).
    """
    cls = type(layer).__name__
    if cls in ("ReLU", "LeakyReLU", "ELU", "PReLU"):
        return {"ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu", "PReLU": "leaky_relu"}[cls]
    fn = getattr(layer, "activation", None)
    if fn is None:
        return None
    if isinstance(fn, str):
        return fn
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) else None


def _moments(x: np.ndarray) -> dict[str, float]:
    x64 = x.astype(np.float64, copy=False)
    mean = float(np.mean(x64)) if x64.size else float("nan")
    var = float(np.mean((x64 - mean) ** 2)) if x64.size else float("nan")
    return {
        "mean": mean,
        "std": float(np.sqrt(var)),
        "var": var,
        "min": float(np.min(x64)) if x64.size else float("nan"),
        "max": float(np.max(x64)) if x64.size else float("nan"),
    }


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x.astype(np.float64, copy=False))))) if x.size else float("nan")


def weight_stats(w: np.ndarray) -> dict[str, float | None]:
    """mean, std, var, min, max and the fraction of exact zeros of a weight tensor."""
    w = np.asarray(w)
    out: dict[str, float | None] = dict(_moments(w))
    out["zero_fraction"] = float(np.mean(w == 0)) if w.size else float("nan")
    return out


def dead_fraction(y: np.ndarray) -> float:
    """Fraction of units (last axis) with output <= 0 for every example and position."""
    y = np.asarray(y)
    if y.ndim < 2:
        return float(np.all(y <= 0))
    flat = y.reshape(-1, y.shape[-1])
    return float(np.mean(np.all(flat <= 0, axis=0)))


def saturated_fraction(y: np.ndarray, low: float, high: float) -> float:
    """Fraction of entries within 1% (of the largest |asymptote|) of ``low`` or ``high``."""
    y = np.asarray(y)
    tol = SATURATION_TOLERANCE * max(abs(low), abs(high))
    return float(np.mean((y <= low + tol) | (y >= high - tol)))


def activation_stats(y: np.ndarray, activation: str | None = None) -> dict[str, float | None]:
    """Statistics of a layer output on the probe batch.

    ``dead_fraction`` is filled for the ReLU family, ``saturated_fraction`` for sigmoid/tanh-like
    activations (see :data:`RELU_FAMILY` and :data:`SATURATING`), both None otherwise.
    """
    y = np.asarray(y)
    out: dict[str, float | None] = dict(_moments(y))
    out["p98_abs"] = float(np.percentile(np.abs(y), 98)) if y.size else float("nan")
    out["dead_fraction"] = dead_fraction(y) if activation in RELU_FAMILY else None
    if activation in SATURATING:
        out["saturated_fraction"] = saturated_fraction(y, *SATURATING[activation])
    else:
        out["saturated_fraction"] = None
    return out


def gradient_stats(g: np.ndarray, w: np.ndarray | None = None) -> dict[str, float | None]:
    """mean, std, var, min, max, L2 norm of a gradient and, given the weight ``w``, rms(g)/rms(w)."""
    g = np.asarray(g)
    out: dict[str, float | None] = dict(_moments(g))
    out["norm"] = float(np.linalg.norm(g.astype(np.float64, copy=False).ravel()))
    if w is not None:
        rms_w = _rms(np.asarray(w))
        out["grad_weight_rms_ratio"] = _rms(g) / rms_w if rms_w > 0 else float("inf") if _rms(g) > 0 else float("nan")
    return out


def is_finite_record(record: dict[str, Any]) -> bool:
    """Whether every statistic present in ``record`` is finite (no NaN/Inf)."""
    for key in ("mean", "std", "min", "max", "norm"):
        value = record.get(key)
        if value is not None and not np.isfinite(value):
            return False
    return True


STATS_BY_KIND: dict[str, Callable[..., dict[str, float | None]]] = {
    "weights": weight_stats,
    "activations": activation_stats,
    "gradients": gradient_stats,
    "output_gradients": gradient_stats,
}
