"""Layer-sequential unit-variance initialization (Mishkin & Matas, "All you need is a good init",
ICLR 2016).

1. Pre-initialize every Dense/Conv kernel with an orthonormal matrix (Saxe et al. 2014) and zero
   its bias.
2. For each such layer in forward order: feed the batch, measure the std of the layer's output
   *before its activation* (the paper's conv/fc output blob; Keras layers that fuse an activation
   are measured with it switched off), and divide the kernel by std/target_std, until
   |std − target_std| ≤ tol or ``max_iter`` scalings.

Cost: the batch goes once through the sub-model that ends at the layer's input (earlier layers
are final by then), and each iteration runs only the layer itself — never the whole model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit._validation import check_real
from kerasinit.initializers.mirrors import Orthogonal
from kerasinit.layers import DEPTHWISE, KERNEL, POINTWISE, main_weight

_SUPPORTED = ("Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
              "EinsumDense", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D")


@contextlib.contextmanager
def _linear(layer: keras.layers.Layer) -> Iterator[None]:
    """Temporarily switch off a layer's fused activation."""
    act = getattr(layer, "activation", None)
    if act is None:
        yield
        return
    layer.activation = keras.activations.linear
    try:
        yield
    finally:
        layer.activation = act


def _kernel(layer: keras.layers.Layer) -> Any:
    """The kernel LSUV rescales: the one that produces the layer's output (pointwise before depthwise)."""
    weight = main_weight(layer, (KERNEL, POINTWISE, DEPTHWISE))
    return None if weight is None else weight.variable


def _std(x: Any) -> float:
    return float(np.std(to_numpy(x)))


def lsuv(
    model: keras.Model,
    batch: Any,
    tol: float = 0.1,
    max_iter: int = 10,
    target_std: float = 1.0,
    seed: int | None = None,
    verbose: bool = True,
) -> Any:
    """Initialize ``model`` in place by LSUV on ``batch`` (an array, or a list for multi-input models).

    Returns a pandas DataFrame, one row per layer: layer, class, iterations, initial_std,
    final_std, converged, note (layers without kernels are listed with a note and skipped).
    ``model`` must be Sequential or functional (a graph is needed to run up to a layer).
    """
    import pandas as pd

    tol = check_real("tol", tol, owner="lsuv", positive=True)
    target_std = check_real("target_std", target_std, owner="lsuv", positive=True)
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"lsuv: argument `max_iter` must be a positive int; received {max_iter!r}.")
    if not isinstance(model, keras.Model):
        raise TypeError(f"lsuv: argument `model` must be a keras.Model; received {type(model).__name__}.")
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(
            "lsuv: argument `model` must be a Sequential (with an Input) or functional model: LSUV runs the batch "
            "up to each layer, which needs the model's graph. Subclassed models have none."
        )
    inputs = inputs[0] if len(inputs) == 1 else inputs  # same structure as the batch

    def up_to_input(layer: keras.layers.Layer) -> keras.Model:
        return keras.Model(inputs, layer.input)

    rows: list[dict[str, Any]] = []
    index = 0
    for layer in model.layers:
        kernel = _kernel(layer)
        if kernel is None or type(layer).__name__ not in _SUPPORTED:
            note = "no kernel" if kernel is None else f"{type(layer).__name__} not supported"
            rows.append({"layer": layer.name, "class": type(layer).__name__, "iterations": 0, "initial_std": np.nan,
                         "final_std": np.nan, "converged": None, "note": f"skipped: {note}"})
            continue
        kernel.assign(Orthogonal(seed=None if seed is None else seed + index)(tuple(kernel.shape), dtype=kernel.dtype))
        index += 1
        bias = getattr(layer, "bias", None)
        if isinstance(bias, keras.Variable):
            bias.assign(keras.ops.zeros(bias.shape, dtype=bias.dtype))
        x_in = up_to_input(layer)(batch, training=False)  # one pass up to the layer
        with _linear(layer):
            std = initial = _std(layer(x_in, training=False))
            iterations = 0
            while abs(std - target_std) > tol and iterations < max_iter and std > 0.0:
                kernel.assign(kernel * (target_std / std))
                iterations += 1
                std = _std(layer(x_in, training=False))
        converged = abs(std - target_std) <= tol
        note = "" if converged else ("output std is 0 (dead inputs)" if std == 0.0 else f"not within tol after {max_iter} iterations")
        rows.append({"layer": layer.name, "class": type(layer).__name__, "iterations": iterations, "initial_std": initial,
                     "final_std": std, "converged": converged, "note": note})
        if verbose:
            print(f"lsuv: {layer.name:24s} std {initial:9.4f} -> {std:.4f} in {iterations} iteration(s) {note}")
    return pd.DataFrame(rows, columns=["layer", "class", "iterations", "initial_std", "final_std", "converged", "note"])
