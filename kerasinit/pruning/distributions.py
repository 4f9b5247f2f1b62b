"""How a model-wide sparsity is spread over the pruned weights, and masks from scores.

``distribution`` (argument of ``prune_at_init``):

* ``"global"``: one score threshold across all weights (the layers' sparsities follow the scores).
* ``"uniform"``: every weight pruned to the same sparsity.
* ``"erk"``: Erdős–Rényi-Kernel (Evci, Gale, Menick, Castro & Elsen, "Rigging the lottery",
  ICML 2020): the density of a weight of shape (k_h, k_w, n_in, n_out) is ``ε · Σ dims / Π dims``
  = ε (n_in + n_out + k_h + k_w)/(n_in n_out k_h k_w) (a Dense kernel: (n_in + n_out)/(n_in n_out)),
  with ε chosen so that the kept weights total ``(1 − sparsity) · N``. A weight whose density
  would exceed 1 is kept dense and ε is solved again for the others, until none exceeds 1.
* ``{name: sparsity}``: per layer (a layer name or a ``"layer/attr"`` weight name); weights
  not named get the model-wide ``sparsity``.

Counts per weight use :func:`kerasinit.pruning.masks.keep_count` (at least one weight kept), so
only ``"global"`` can empty a whole weight (layer collapse): ``min_density`` then gives each
weight a floor of its own largest scores (:func:`kerasinit.pruning.masks.floored`).
Selection keeps the ``k`` largest scores; among equal scores the lower flat index (C order)
is kept, as the magnitude masks do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kerasinit._validation import check_real
from kerasinit.pruning.masks import check_floors, floored, keep_count
from kerasinit.pruning.selection import PrunableWeight

DISTRIBUTIONS = ("global", "uniform", "erk")


def erk_densities(shapes: Sequence[Sequence[int]], density: float) -> list[float]:
    """ERK densities (each in (0, 1]) for weights of ``shapes`` whose kept total is ``density · N``."""
    sizes = np.array([float(np.prod(s)) for s in shapes])
    raw = np.array([float(np.sum(s)) / float(np.prod(s)) if np.prod(s) else 0.0 for s in shapes])
    dense = np.zeros(len(shapes), bool)
    budget = density * sizes.sum()
    while True:
        rest = ~dense
        denominator = float((raw[rest] * sizes[rest]).sum())
        if denominator <= 0:
            break
        eps = (budget - sizes[dense].sum()) / denominator
        over = rest & (eps * raw > 1.0)
        if not over.any():
            break
        dense |= over  # dense layers free budget, so eps only grows: every layer over 1 stays over
    return [1.0 if d else float(eps * r) for d, r in zip(dense, raw, strict=True)]


def layer_sparsities(weights: Sequence[PrunableWeight], sparsity: float, distribution: Any,
                     owner: str = "prune_at_init") -> dict[str, float] | None:
    """``{weight name: sparsity}`` for ``distribution``, or None for ``"global"`` (one threshold)."""
    if isinstance(distribution, Mapping):
        by_weight = {w.name: w for w in weights}
        layers = {w.layer.name for w in weights}
        unknown = [k for k in distribution if k not in by_weight and k not in layers]
        if unknown:
            raise ValueError(f"{owner}: argument `distribution` names {unknown}, which are not pruned; pruned layers: "
                             f"{sorted(layers)} (or weights {sorted(by_weight)}).")
        out = {}
        for w in weights:
            key = w.name if w.name in distribution else w.layer.name
            s = check_real(f"distribution[{key!r}]", distribution.get(key, sparsity), owner=owner)
            if not 0.0 <= s < 1.0:
                raise ValueError(f"{owner}: argument `distribution[{key!r}]` must be in [0, 1); received {s!r}.")
            out[w.name] = s
        return out
    if not isinstance(distribution, str) or distribution not in DISTRIBUTIONS:
        raise ValueError(f"{owner}: argument `distribution` must be one of {list(DISTRIBUTIONS)} or a "
                         f"{{layer name: sparsity}} dict; received {distribution!r}.")
    if distribution == "global":
        return None
    if distribution == "uniform":
        return {w.name: sparsity for w in weights}
    densities = erk_densities([tuple(w.variable.shape) for w in weights], 1.0 - sparsity)
    return {w.name: max(0.0, 1.0 - d) for w, d in zip(weights, densities, strict=True)}


def _top(flat: np.ndarray, k: int) -> np.ndarray:
    """Boolean vector keeping the ``k`` largest of ``flat`` (lower index first among ties); O(n)."""
    n = flat.size
    if k >= n or k <= 0:
        return np.full(n, k > 0)
    live = np.flatnonzero(flat > -np.inf)  # masked entries score -inf: rank only the others when k allows
    if k <= live.size < n:
        keep = np.zeros(n, dtype=bool)
        keep[live[_top(flat[live], k)]] = True
        return keep
    threshold = np.partition(flat, n - k)[n - k]  # the k-th largest
    keep = flat > threshold
    need = k - int(np.count_nonzero(keep))
    if need > 0:
        keep[np.flatnonzero(flat == threshold)[:need]] = True
    return keep


def score_masks(importance: Mapping[str, np.ndarray], sparsity: float,
                sparsities: Mapping[str, float] | None, min_density: float = 0.0,
                owner: str = "prune_at_init") -> dict[str, np.ndarray]:
    """uint8 masks keeping the largest ``importance``: per weight at ``sparsities``, or globally if None.

    Globally, ``min_density`` > 0 keeps at least ``max(1, ⌈min_density · n⌉)`` of each weight's own
    largest scores, the rest by the one threshold (same total).
    """
    if sparsities is not None:
        return {name: _top(v.ravel(), keep_count(v.size, sparsities[name])).reshape(v.shape).view(np.uint8)
                for name, v in importance.items()}
    values = [v.ravel() for v in importance.values()]
    k = keep_count(sum(v.size for v in values), sparsity)
    if min_density > 0:
        values = floored(values, check_floors([v.size for v in values], min_density, k, sparsity, owner), _top)
    flat = np.concatenate(values)
    keep = _top(flat, k)
    out, start = {}, 0
    for name, v in importance.items():
        out[name] = keep[start:start + v.size].reshape(v.shape).view(np.uint8)
        start += v.size
    return out
