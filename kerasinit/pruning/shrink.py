"""``shrink``: a smaller dense Sequential model without the dead output channels of its layers.

A channel (Dense unit, Conv filter) is *dead* when its whole kernel slice is 0 (after
``prune_at_init(..., granularity="channel")`` or any pruning): its output is the constant
``activation(bias)``. It is removed from its layer (kernel column, bias) and from the layers up to
the next Dense/Conv (BatchNormalization's four vectors; element-wise layers, pooling and Flatten
pass it through), and the next layer's matching input slice is dropped, so the outputs are
unchanged:

* where the constant reaching the next layer is exactly 0 (a bias-free or zero-bias channel
  through ReLU/tanh/linear and an initial BatchNorm), for any next Dense or Conv;
* otherwise only when the next layer is a Dense, whose bias absorbs ``constant · W[c, :]``
  (a Conv's zero padding makes a constant input position-dependent, so the channel is kept).

Supported: ``keras.Sequential`` models of Dense and channels-last Conv1D/2D/3D (groups 1), with
BatchNormalization (last axis), Activation/ReLU/LeakyReLU/ELU, Dropout, pooling, global pooling
and Flatten between them. Any other layer stops shrinking across it. The model's output layer
keeps all its outputs.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy

_L = keras.layers
PRODUCERS = (_L.Dense, _L.Conv1D, _L.Conv2D, _L.Conv3D)
ELEMENTWISE = (_L.Activation, _L.ReLU, _L.LeakyReLU, _L.ELU, _L.Dropout, _L.BatchNormalization)
PASS_THROUGH = (_L.MaxPooling1D, _L.MaxPooling2D, _L.MaxPooling3D, _L.AveragePooling1D, _L.AveragePooling2D,
                _L.AveragePooling3D, _L.GlobalAveragePooling1D, _L.GlobalAveragePooling2D, _L.GlobalAveragePooling3D,
                _L.GlobalMaxPooling1D, _L.GlobalMaxPooling2D, _L.GlobalMaxPooling3D)


def _is_producer(layer: Any) -> bool:
    if type(layer) not in PRODUCERS:
        return False  # subclasses (Conv*Transpose, SeparableConv, Depthwise) are not shrunk
    return getattr(layer, "data_format", "channels_last") == "channels_last" and getattr(layer, "groups", 1) == 1


def _constants(layer: Any) -> np.ndarray:
    """The output of each channel of ``layer`` if its kernel were all 0: ``activation(bias)``."""
    units = int(layer.kernel.shape[-1])
    bias = to_numpy(layer.bias) if layer.use_bias else np.zeros(units, "float32")
    return to_numpy(layer.activation(keras.ops.convert_to_tensor(bias[None]))).reshape(-1)


def _elementwise(layer: Any, values: np.ndarray) -> np.ndarray:
    """``layer`` (element-wise per channel, inference mode) applied to one value per channel."""
    if isinstance(layer, _L.BatchNormalization):
        gamma = to_numpy(layer.gamma) if layer.scale else 1.0
        beta = to_numpy(layer.beta) if layer.center else 0.0
        mean, var = to_numpy(layer.moving_mean), to_numpy(layer.moving_variance)
        return (gamma * (values - mean) / np.sqrt(var + layer.epsilon) + beta).astype("float32")
    return to_numpy(layer(keras.ops.convert_to_tensor(values[None].astype("float32")), training=False)).reshape(-1)


def _plan(model: keras.Sequential) -> dict[int, np.ndarray]:
    """``{index of a producer: boolean vector of the output channels kept}`` for the producers that lose some."""
    layers = model.layers
    keep: dict[int, np.ndarray] = {}
    for i, layer in enumerate(layers):
        if not _is_producer(layer):
            continue
        kernel = to_numpy(layer.kernel)
        dead = ~kernel.reshape(-1, kernel.shape[-1]).any(axis=0)
        constant = _constants(layer)
        nxt = None
        for j in range(i + 1, len(layers)):
            after = layers[j]
            if _is_producer(after):
                nxt = after
                break
            if isinstance(after, ELEMENTWISE):
                constant = _elementwise(after, constant)
            elif not isinstance(after, (*PASS_THROUGH, _L.Flatten)):
                break  # an unsupported layer: do not shrink across it
        if nxt is None:
            continue  # the output layer, or a barrier: every channel stays
        removable = dead & ((constant == 0) | (isinstance(nxt, _L.Dense) and nxt.use_bias))
        if removable.any():
            keep[i] = ~removable
    return keep


def shrink(model: keras.Sequential) -> keras.Sequential:
    """A new Sequential model without the dead channels (see the module docstring); ``model`` is unchanged."""
    if not isinstance(model, keras.Sequential):
        raise TypeError(f"shrink: argument `model` must be a keras.Sequential model; received {type(model).__name__}.")
    if not model.built:
        raise ValueError("shrink: argument `model` is not built yet.")
    layers = model.layers
    plan = _plan(model)
    weights = {i: [to_numpy(w) for w in layer.weights] for i, layer in enumerate(layers)}
    configs = {i: layer.get_config() for i, layer in enumerate(layers)}
    flow: np.ndarray | None = None  # channels kept of the tensor flowing into the current layer
    constant: np.ndarray | None = None  # the removed channels' constants (folded into the next Dense's bias)
    for i, layer in enumerate(layers):
        if _is_producer(layer):
            w = weights[i]
            if flow is not None and not flow.all():
                if constant is not None and isinstance(layer, _L.Dense) and layer.use_bias:
                    w[1] = w[1] + constant[~flow] @ w[0][~flow]
                w[0] = np.take(w[0], np.flatnonzero(flow), axis=-2)
            flow = plan.get(i)
            if flow is not None:
                w[0] = w[0][..., flow]
                if layer.use_bias:
                    constant = _constants(layer)
                    w[1] = w[1][flow]
                else:
                    constant = np.zeros(len(flow), "float32")
                configs[i]["units" if isinstance(layer, _L.Dense) else "filters"] = int(flow.sum())
            continue
        if flow is None:
            continue
        if isinstance(layer, _L.BatchNormalization):
            constant = _elementwise(layer, constant) if constant is not None else None
            weights[i] = [v[flow] for v in weights[i]]
        elif isinstance(layer, ELEMENTWISE):
            constant = _elementwise(layer, constant) if constant is not None else None
        elif isinstance(layer, _L.Flatten):
            positions = int(np.prod(layers[i - 1].output.shape[1:-1])) if i else 1
            flow = np.tile(flow, positions)
            constant = np.tile(constant, positions) if constant is not None else None
        elif not isinstance(layer, PASS_THROUGH):
            flow, constant = None, None
    new = keras.Sequential([keras.Input(model.input_shape[1:])] +
                           [type(layer).from_config(configs[i]) for i, layer in enumerate(layers)], name=model.name)
    for i, layer in enumerate(new.layers):
        layer.set_weights(weights[i])
    return new
