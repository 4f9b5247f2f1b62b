"""Channel granularity: whole output channels (filters, units) kept or pruned together.

A channel's score is the L1 or L2 norm (``norm``) of its weights' scores, as
``torch.nn.utils.prune.ln_structured`` ranks filters by the norm of their weights (the magnitude
method's scores are |w|, so its channel scores are exactly the weights' Ln norms). Scores that can
be negative (GraSP's) are summed instead of normed. The output axis per layer type:

* ``Dense`` ``(n_in, n_out)``, ``Conv1D/2D/3D`` and ``SeparableConv`` pointwise ``(k…, c_in, c_out)``,
  RNN cells ``(n_in, k·units)``: axis −1.
* ``Conv*Transpose`` ``(k…, c_out, c_in)``: axis −2.
* ``EinsumDense``: the last kernel axis that appears in the output spec.

Other weights (Embedding, depthwise kernels) are an error; leave them out with ``layers``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from kerasinit.pruning.selection import PrunableWeight

NORMS = ("l1", "l2")
_L = keras.layers


def output_axis(weight: PrunableWeight) -> int:
    """The kernel axis indexing the weight's output channels, non-negative."""
    layer, ndim = weight.layer, len(weight.variable.shape)
    if isinstance(layer, _L.EinsumDense):
        _, rest = layer.equation.split(",")
        kernel, output = rest.split("->")
        axes = [i for i, c in enumerate(kernel) if c in output]
        if axes:
            return axes[-1]
    elif isinstance(layer, _L.Conv1DTranspose | _L.Conv2DTranspose | _L.Conv3DTranspose):
        return ndim - 2
    elif isinstance(layer, _L.SeparableConv1D | _L.SeparableConv2D):
        if weight.attr == "pointwise_kernel":
            return ndim - 1
    elif isinstance(layer, _L.DepthwiseConv1D | _L.DepthwiseConv2D):
        pass
    elif isinstance(layer, _L.Dense | _L.Conv1D | _L.Conv2D | _L.Conv3D | _L.SimpleRNNCell | _L.LSTMCell | _L.GRUCell):
        return ndim - 1
    raise ValueError(f"granularity 'channel': weight {weight.name!r} of a {type(layer).__name__} has no output-channel "
                     "axis here (supported: Dense, EinsumDense, Conv*, Conv*Transpose, SeparableConv pointwise kernels, "
                     "RNN cells); leave it out with `layers`.")


def channel_scores(importance: np.ndarray, axis: int, norm: str = "l2") -> np.ndarray:
    """One score per channel along ``axis``: the L1/L2 norm of its scores (their sum if any is negative)."""
    moved = np.moveaxis(np.asarray(importance, dtype="float64"), axis, 0).reshape(importance.shape[axis], -1)
    if (moved < 0).any():
        return moved.sum(axis=1)
    return np.abs(moved).sum(axis=1) if norm == "l1" else np.sqrt((moved * moved).sum(axis=1))


def expand(keep: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """uint8 mask of ``shape`` keeping the channels where ``keep`` (1-D, along ``axis``) is true."""
    index = [1] * len(shape)
    index[axis] = len(keep)
    return np.ascontiguousarray(np.broadcast_to(np.asarray(keep, bool).reshape(index), shape)).view(np.uint8)


def kept_channels(mask: Any, axis: int) -> np.ndarray:
    """Boolean vector: the channels of ``mask`` along ``axis`` holding any kept weight."""
    moved = np.moveaxis(np.asarray(mask), axis, 0)
    return moved.reshape(moved.shape[0], -1).any(axis=1)
