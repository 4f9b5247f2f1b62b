"""Magnitude masks: keep the ``k`` largest |w|, prune the rest (deterministic ties).

``k = max(round(n · (1 − sparsity)), 1)`` as in TFMOT (round half to even), per tensor
(``scope="layer"``) or over the concatenation of all tensors (``scope="global"``).

Ties: TFMOT keeps every weight equal to the threshold (so it may keep more than k); here exactly
k are kept, and among weights of equal magnitude at the threshold the ones with the lower flat
index (C order; tensors in selection order for the global scope) are kept. Already-pruned
weights are 0 and go first, so sparsity never decreases. O(n): a ``numpy.partition`` over the
nonzero magnitudes only.

Layer collapse: a global threshold (magnitude or a score) can empty a whole weight, which then
carries no signal (a plain chain is disconnected). Every pruning entry point warns naming the
weights it empties (:class:`LayerCollapseWarning`) and takes ``min_density``: each jointly
pruned weight keeps at least ``max(1, ⌈min_density · n⌉)`` of its own largest entries, and the
rest of the budget still goes by one threshold, so the total kept count is unchanged.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np


class LayerCollapseWarning(UserWarning):
    """Pruning emptied whole weights (every entry masked): they carry no signal any more."""


def check_min_density(value: Any, owner: str) -> float:
    """``min_density`` as a float in [0, 1] (0: no floor)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) \
            or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{owner}: argument `min_density` must be a number in [0, 1] (the least fraction of each "
                         f"weight kept; 0: no floor); received {value!r}.")
    return float(value)


def floor_count(n: int, min_density: float) -> int:
    """Entries of an ``n``-entry weight kept by the floor: ``max(1, ⌈min_density · n⌉)``, 0 without a floor."""
    if not n or min_density <= 0:
        return 0
    return min(n, max(1, math.ceil(min_density * n - 1e-9)))


def check_floors(sizes: Sequence[int], min_density: float, kept: int, sparsity: float, owner: str) -> list[int]:
    """The floor of each weight; a ValueError if together they exceed the ``kept`` budget at ``sparsity``."""
    floors = [floor_count(n, min_density) for n in sizes]
    if sum(floors) > kept:
        raise ValueError(f"{owner}: argument `min_density`={min_density:g} keeps at least {sum(floors)} weights, more "
                         f"than the {kept} kept at sparsity {sparsity:g}; lower it (at most about {1 - sparsity:.3g}).")
    return floors


def floored(values: Sequence[np.ndarray], floors: Sequence[int],
            top: Callable[[np.ndarray, int], np.ndarray]) -> list[np.ndarray]:
    """Flat copies of ``values`` with each one's ``floor`` largest entries (by ``top``) raised to +inf.

    A single threshold over the result then keeps every floor first and spends the rest of the
    budget on the largest remaining entries: the total kept count is the one asked for.
    """
    out = []
    for v, f in zip(values, floors, strict=True):
        flat = np.asarray(v, dtype=np.result_type(np.asarray(v).dtype, np.float32)).ravel().copy()
        if f:
            flat[top(flat, f)] = np.inf
        out.append(flat)
    return out


def empty_weights(masks: Mapping[str, np.ndarray]) -> list[str]:
    """The names of the masks that keep nothing (of a nonempty weight)."""
    return [name for name, m in masks.items() if np.size(m) and not np.any(m)]


def warn_collapse(owner: str, names: Iterable[str], total: int, stacklevel: int = 3) -> None:
    """A :class:`LayerCollapseWarning` naming the emptied weights."""
    names = list(names)
    warnings.warn(
        f"{owner}: pruning emptied {len(names)} of {total} pruned weights (layer collapse: every entry masked, "
        f"no signal passes through them; a chain through them is disconnected, a residual branch falls back to its skip): {names}. Pass `min_density` (e.g. "
        "min_density=0.01: each weight keeps at least 1% of its entries, the total sparsity unchanged) or prune "
        "less; sparsity_report(model) marks them in its `collapsed` column.",
        LayerCollapseWarning, stacklevel=stacklevel)


def keep_count(n: int, sparsity: float) -> int:
    """How many of ``n`` weights survive at ``sparsity`` (at least one).

    Computed in float32 and rounded half to even exactly as TFMOT does (``round(n · (1 − s))`` in
    float32), so native and TFMOT masks keep the same count even where n·(1 − s) is near x.5.
    """
    if not n:
        return 0
    kept = np.float32(n) * (np.float32(1.0) - np.float32(sparsity))
    return max(int(np.round(kept)), 1)


def keep_largest(magnitudes: np.ndarray, k: int, bound: float | None = None) -> tuple[np.ndarray, float]:
    """Boolean vector keeping exactly the ``k`` largest entries, lowest index first among ties; and the threshold.

    ``bound`` (optional, e.g. the previous update's threshold): a magnitude expected to lie at or
    above the new threshold. If more nonzero magnitudes than needed are ``<= bound``, the
    threshold is searched among those only (exact: every magnitude below the threshold is among
    them), which is what makes frequent updates cheap; otherwise among all nonzero ones.
    """
    n = magnitudes.size
    if k >= n or k <= 0:
        return np.full(n, k > 0), 0.0
    # The k-th largest value, found among the nonzero entries only: pruned weights are exact zeros,
    # and numpy's introselect slows ~25x on that many ties (5 ms vs 0.2 ms for 235k weights at 80%).
    # If fewer than k entries are nonzero, every one is kept and the threshold is 0.
    nonzero = magnitudes != 0  # NaN stays a candidate
    j = int(np.count_nonzero(nonzero)) - k  # the threshold's rank (ascending) among the nonzero magnitudes
    if j >= 0:
        candidates = None
        if bound is not None and bound > 0:
            below = nonzero & (magnitudes <= bound)
            if np.count_nonzero(below) > j:
                candidates = np.compress(below, magnitudes)
        if candidates is None:
            candidates = np.compress(nonzero, magnitudes)  # 4x faster than [bool]
        candidates.partition(j)  # in place: candidates is a fresh copy
        threshold = candidates[j]
    else:
        threshold = magnitudes.dtype.type(0)
    keep = magnitudes > threshold
    need = k - np.count_nonzero(keep)
    if need > 0:
        keep[np.flatnonzero(magnitudes == threshold)[:need]] = True
    return keep, float(threshold)


def _magnitudes(values: np.ndarray) -> np.ndarray:
    """|values| flattened, as float32 or wider (exact: no rounding of any input magnitude)."""
    values = np.asarray(values)
    return np.abs(values.astype(np.result_type(values.dtype, np.float32), copy=False)).ravel()


def magnitude_mask(values: np.ndarray, sparsity: float) -> np.ndarray:
    """uint8 mask (1 = keep) of ``values``'s shape at ``sparsity``."""
    return magnitude_selection(values, sparsity)[0]


def magnitude_selection(values: np.ndarray, sparsity: float, bound: float | None = None) -> tuple[np.ndarray, float]:
    """:func:`magnitude_mask` and its threshold; ``bound`` speeds the search up (see ``keep_largest``)."""
    values = np.asarray(values)
    flat = _magnitudes(values)
    keep, threshold = keep_largest(flat, keep_count(flat.size, sparsity), bound)
    return keep.reshape(values.shape).view(np.uint8), threshold


def global_masks(values: Sequence[np.ndarray], sparsity: float, min_density: float = 0.0,
                 owner: str = "global_masks") -> list[np.ndarray]:
    """One threshold over all tensors: uint8 masks, one per tensor.

    ``min_density`` > 0: each tensor keeps at least ``max(1, ⌈min_density · n⌉)`` of its largest
    magnitudes (see :func:`floored`); the total kept count is the same.
    """
    arrays = [np.asarray(v) for v in values]
    magnitudes = [_magnitudes(a) for a in arrays]
    total = sum(m.size for m in magnitudes)
    k = keep_count(total, sparsity)
    if min_density > 0:
        floors = check_floors([m.size for m in magnitudes], min_density, k, sparsity, owner)
        magnitudes = floored(magnitudes, floors, lambda flat, f: keep_largest(flat, f)[0])
    flat = np.concatenate(magnitudes) if arrays else np.zeros(0)
    keep, _ = keep_largest(flat, k)
    out, start = [], 0
    for a in arrays:
        out.append(keep[start : start + a.size].reshape(a.shape).astype("uint8"))
        start += a.size
    return out


def random_mask(shape: Sequence[int], sparsity: float, rng: np.random.Generator) -> np.ndarray:
    """A uint8 mask keeping ``keep_count`` weights at uniformly random positions."""
    n = int(np.prod(shape))
    keep = np.zeros(n, dtype="uint8")
    keep[rng.choice(n, size=keep_count(n, sparsity), replace=False)] = 1
    return keep.reshape(tuple(shape))
