"""N:M structured sparsity: in every group of M consecutive weights along the reduction axis, N kept.

``pattern="2:4"`` keeps 2 of every 4 (50% sparsity, NVIDIA's sparse tensor cores). The groups run
along the axis the layer sums over (its input axis), one group per position of the other axes:

* ``Dense`` kernel ``(n_in, n_out)`` and RNN cells' kernels ``(n_in, k·units)``: axis 0.
* ``Conv1D/2D/3D`` and ``SeparableConv`` pointwise kernels ``(k…, c_in, c_out)``: axis −2 (input
  channels).
* ``Conv*Transpose`` kernels ``(k…, c_out, c_in)``: axis −1 (input channels).
* ``EinsumDense``: the last kernel axis that is contracted with the input (its letter is in the
  input and kernel specs but not in the output spec), e.g. axis 0 of ``"ab,bc->ac"``.

Other weights (Embedding, depthwise kernels) have no such axis and are an error. The axis length
must be a multiple of M. TFMOT's ``sparsity_m_by_n=(2, 4)`` counts *zeros* (2 zeros in every 4);
here ``"N:M"`` counts the weights *kept*: TFMOT's ``(m, n)`` is ``pattern=f"{n - m}:{n}"``.
"""

from __future__ import annotations

import re
from typing import Any

import keras
import numpy as np

from kerasinit.pruning.schedules import check_sparsity
from kerasinit.pruning.selection import PrunableWeight

_L = keras.layers


def parse_pattern(pattern: Any, owner: str = "prune_at_init") -> tuple[int, int]:
    """``"N:M"`` -> (N, M) with 1 <= N <= M."""
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", pattern) if isinstance(pattern, str) else None
    if match is None:
        raise ValueError(f"{owner}: argument `pattern` must be a string 'N:M' (N kept of every M weights), e.g. '2:4'; "
                         f"received {pattern!r}.")
    n, m = int(match.group(1)), int(match.group(2))
    if not 1 <= n <= m:
        raise ValueError(f"{owner}: argument `pattern` {pattern!r} needs 1 <= N <= M.")
    return n, m


def pattern_sparsity(sparsity: Any, pattern: Any, owner: str) -> tuple[float, tuple[int, int] | None]:
    """The checked sparsity and parsed ``(N, M)`` of a ``sparsity``/``pattern`` argument pair.

    Without a pattern ``sparsity`` is required; with one it is 1 − N/M and ``sparsity`` must be None
    or equal to that.
    """
    if pattern is None:
        if sparsity is None:
            raise ValueError(f"{owner}: argument `sparsity` is required (a float in [0, 1)) unless a `pattern` is given.")
        return check_sparsity("sparsity", sparsity, owner), None
    n, m = parse_pattern(pattern, owner)
    implied = 1.0 - n / m
    if sparsity is not None and abs(check_sparsity("sparsity", sparsity, owner) - implied) > 1e-9:
        raise ValueError(f"{owner}: argument `sparsity` ({sparsity!r}) contradicts pattern {pattern!r} "
                         f"(sparsity {implied:g}); pass sparsity=None.")
    return implied, (n, m)


def _einsum_axis(layer: Any) -> int:
    inputs, rest = layer.equation.split(",")
    kernel, output = rest.split("->")
    contracted = [i for i, c in enumerate(kernel) if c in inputs and c not in output]
    if not contracted:
        raise ValueError(f"pattern: EinsumDense {layer.name!r} ({layer.equation!r}) contracts no kernel axis.")
    return contracted[-1]


def reduction_axis(weight: PrunableWeight) -> int:
    """The kernel axis the N:M groups run along (see the module docstring), non-negative."""
    layer, ndim = weight.layer, len(weight.variable.shape)
    if isinstance(layer, _L.EinsumDense):
        return _einsum_axis(layer)
    if isinstance(layer, _L.SeparableConv1D | _L.SeparableConv2D):
        if weight.attr == "pointwise_kernel":
            return ndim - 2
    elif isinstance(layer, _L.Conv1DTranspose | _L.Conv2DTranspose | _L.Conv3DTranspose):
        return ndim - 1
    elif isinstance(layer, _L.DepthwiseConv1D | _L.DepthwiseConv2D):
        pass
    elif isinstance(layer, _L.Conv1D | _L.Conv2D | _L.Conv3D):
        return ndim - 2
    elif isinstance(layer, _L.Dense | _L.SimpleRNNCell | _L.LSTMCell | _L.GRUCell):
        return 0
    raise ValueError(f"pattern: weight {weight.name!r} of a {type(layer).__name__} has no input axis for N:M groups "
                     "(supported: Dense, EinsumDense, Conv*, Conv*Transpose, SeparableConv pointwise kernels, RNN cells); "
                     "leave it out with `layers`.")


def n_m_mask(importance: np.ndarray, n: int, m: int, axis: int, name: str = "weight") -> np.ndarray:
    """uint8 mask keeping the ``n`` largest of every ``m`` consecutive entries along ``axis`` (lower index on ties)."""
    length = importance.shape[axis]
    if length % m:
        raise ValueError(f"pattern {n}:{m}: {name!r} has {length} entries along its input axis {axis} "
                         f"(shape {importance.shape}), not a multiple of M={m}.")
    moved = np.moveaxis(importance, axis, -1)
    groups = moved.reshape(*moved.shape[:-1], length // m, m)
    order = np.argsort(-groups, axis=-1, kind="stable")[..., :n]
    keep = np.zeros(groups.shape, bool)
    np.put_along_axis(keep, order, True, axis=-1)
    return np.ascontiguousarray(np.moveaxis(keep.reshape(moved.shape), -1, axis)).view(np.uint8)
