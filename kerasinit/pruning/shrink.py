"""``shrink``: a smaller dense model without the dead output channels of its layers.

A channel (Dense unit, Conv filter) is *dead* when its whole kernel slice is 0 (after
``prune_at_init(..., granularity="channel")`` or any pruning): for every input its output is the
constant ``activation(bias)``. It is removed from its layer (kernel column, bias), from the layers
between it and the next Dense/Conv (BatchNormalization's four vectors; element-wise layers,
pooling and Flatten pass it through), and the next layer's matching input slice is dropped, so the
outputs are unchanged:

* where the constant reaching the next layer is exactly 0 (a zero-bias channel through
  ReLU/tanh/linear and an initial BatchNorm), for any next Dense or Conv;
* otherwise only where the next layer's bias can absorb the constant's contribution: a Dense
  (``b' = b + Σ_c k_c · W[c, :]``) or a Conv with ``padding="valid"`` or a 1×1 kernel
  (``b' = b + Σ_c k_c · Σ_taps W[..., c, :]``); a layer without a bias is given one
  (``use_bias=True``). Zero padding makes a constant input position-dependent for a
  ``"same"``/``"causal"`` Conv with a larger kernel, so such channels are kept (after training,
  Conv → BatchNorm → 3×3 Conv usually has nonzero constants: ``β − γ·μ/√(σ²+ε)``).

Where: a *chain* runs from a Dense/Conv1D/2D/3D (exact types, channels-last, ``groups=1``, an
element-wise activation) through layers used once that act on each channel separately —
BatchNormalization over the last axis, Activation (element-wise functions; not softmax), ReLU,
LeakyReLU, ELU, Dropout, Identity, channels-last pooling and global pooling, Flatten, ZeroPadding and
DepthwiseConv (``depth_multiplier=1``: the channel's filter and bias go with it) — to the next
Dense/Conv. Zero padding (a ZeroPadding layer, or a padded depthwise tap) makes a nonzero constant
position-dependent, so behind one only channels whose constant is exactly 0 are removed (MobileNetV2's
expand → BN → ReLU6 → depthwise → BN → ReLU6 → project at initialization: all of them). Each tensor of the chain must have exactly one consumer and not be a model output.
Where a tensor fans out (a residual branch point) or meets an ``Add``/``Concatenate``/any other
layer, every channel is kept there: shrinking across residual additions is not attempted, but the
chains elsewhere in the model (e.g. inside a residual branch) are shrunk. Layers called more than
once (shared) are left alone. The model's outputs keep all their channels.

Sequential and functional models are rebuilt by Keras from their own config with the new
``units``/``filters`` and the sliced weights; subclassed models are refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy

_L = keras.layers
PRODUCERS = (_L.Dense, _L.Conv1D, _L.Conv2D, _L.Conv3D)
ELEMENTWISE = (_L.Activation, _L.ReLU, _L.LeakyReLU, _L.ELU, _L.Dropout, _L.Identity, _L.BatchNormalization)
PASS_THROUGH = (_L.MaxPooling1D, _L.MaxPooling2D, _L.MaxPooling3D, _L.AveragePooling1D, _L.AveragePooling2D,
                _L.AveragePooling3D, _L.GlobalAveragePooling1D, _L.GlobalAveragePooling2D, _L.GlobalAveragePooling3D,
                _L.GlobalMaxPooling1D, _L.GlobalMaxPooling2D, _L.GlobalMaxPooling3D)
#: channel-wise layers whose output is position-dependent for a nonzero constant input (zero padding)
PADDING = (_L.ZeroPadding1D, _L.ZeroPadding2D, _L.ZeroPadding3D)
#: one filter per channel (``depth_multiplier=1``): a dead channel's constant k becomes ``act(k · Σ taps + b)``
DEPTHWISE = (_L.DepthwiseConv1D, _L.DepthwiseConv2D)
# Keras activations applied to each element on its own (softmax, log_softmax, sparsemax and glu mix channels).
ELEMENTWISE_ACTIVATIONS = frozenset({
    "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "swish", "mish", "tanh",
    "sigmoid", "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh", "hard_shrink", "soft_shrink", "tanh_shrink",
    "softplus", "softsign", "exponential", "log_sigmoid", "sparse_plus", "sparse_sigmoid", "squareplus"})

Tensor = tuple[str, int, int]  # keras_history: (layer name, node index, output index)


def _elementwise_activation(fn: Any) -> bool:
    try:
        name = keras.activations.serialize(fn)
    except (TypeError, ValueError):
        return False
    return isinstance(name, str) and name in ELEMENTWISE_ACTIVATIONS


def _linear_ok(layer: Any) -> bool:
    """A Dense/Conv whose kernel's last two axes are (input channels, output channels)."""
    if type(layer) not in PRODUCERS:
        return False  # subclasses (Conv*Transpose, SeparableConv, Depthwise) are not shrunk
    if getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode", None) is not None:
        return False
    return getattr(layer, "data_format", "channels_last") == "channels_last" and getattr(layer, "groups", 1) == 1


def _mid_ok(layer: Any, shape: tuple | None) -> bool:
    """``layer`` acts on each channel (last axis) separately and keeps it last."""
    kind = type(layer)
    if kind in PASS_THROUGH:
        return getattr(layer, "data_format", "channels_last") == "channels_last"
    if kind is _L.Flatten:
        return layer.data_format == "channels_last" and shape is not None and None not in tuple(shape)[1:]
    if kind is _L.Activation:
        return _elementwise_activation(layer.activation)
    if kind is _L.BatchNormalization:
        return shape is not None and layer.axis in (-1, len(shape) - 1)
    if kind in PADDING:
        return getattr(layer, "data_format", "channels_last") == "channels_last"
    if kind in DEPTHWISE:
        return (layer.data_format == "channels_last" and int(layer.depth_multiplier) == 1
                and _elementwise_activation(layer.activation) and not getattr(layer, "lora_enabled", False)
                and getattr(layer, "quantization_mode", None) is None)
    return kind in ELEMENTWISE


def _unpadded(conv: Any) -> bool:
    """Every output position of ``conv`` sees every kernel tap on a real input position."""
    return conv.padding == "valid" or all(int(k) == 1 for k in conv.kernel_size)


def _constants(layer: Any) -> np.ndarray:
    """The output of each channel of ``layer`` if its kernel were all 0: ``activation(bias)``."""
    units = int(layer.kernel.shape[-1])
    bias = to_numpy(layer.bias) if layer.use_bias else np.zeros(units, "float32")
    return to_numpy(layer.activation(keras.ops.convert_to_tensor(bias[None]))).reshape(-1)


def _elementwise(layer: Any, values: np.ndarray, rank: int) -> np.ndarray:
    """``layer`` (inference mode) applied to one value per feature, as a rank-``rank`` tensor."""
    x = keras.ops.convert_to_tensor(values.reshape((1,) * (rank - 1) + (-1,)).astype("float32"))
    return to_numpy(layer(x, training=False)).reshape(values.shape)


def _through(layer: Any, shape: tuple | None, constant: np.ndarray, uniform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The dead channels' values after ``layer`` (a chain's middle layer), and which channels are still
    the same constant at every position (zero padding and padded depthwise taps break that for k != 0)."""
    kind = type(layer)
    if kind is _L.Flatten:
        return np.tile(constant, (int(np.prod(shape[1:-1])), 1)), uniform
    if kind in ELEMENTWISE:
        rank = len(shape) if shape is not None and constant.shape[0] == 1 else 2
        return _elementwise(layer, constant, rank), uniform
    if kind in PADDING:
        return constant, uniform & (constant == 0).all(axis=0)
    if kind in DEPTHWISE:  # (taps..., channels, 1) kernel: a uniform input k gives k · Σ taps + b where no tap is padding
        kernel = to_numpy(layer.kernel)
        taps = kernel.reshape(-1, kernel.shape[-2]).sum(axis=0)
        bias = to_numpy(layer.bias) if layer.use_bias else np.zeros_like(taps)
        if not (layer.padding == "valid" or all(int(k) == 1 for k in layer.kernel_size)):
            uniform = uniform & (constant == 0).all(axis=0)
        value = constant * taps[None] + bias[None]
        activated = to_numpy(layer.activation(keras.ops.convert_to_tensor(value.astype("float32"))))
        return activated.reshape(value.shape), uniform
    return constant, uniform


@dataclass
class _Graph:
    """The model's calls read from its config: one entry per layer called exactly once."""

    entries: dict[str, dict]  # layer name -> its config entry (modified in place by the plan)
    inputs: dict[str, list[Tensor]] = field(default_factory=dict)
    shapes: dict[str, tuple | None] = field(default_factory=dict)
    plain_call: dict[str, bool] = field(default_factory=dict)  # call kwargs all None (training may be False)
    consumers: dict[Tensor, list[str]] = field(default_factory=dict)
    outputs: set[Tensor] = field(default_factory=set)


def _histories(obj: Any) -> Iterator[tuple[Tensor, tuple | None]]:
    """Every keras tensor (history, shape) referenced in a serialized node argument."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            cfg = obj["config"]
            name, node, index = cfg["keras_history"]
            yield (name, int(node), int(index)), tuple(cfg.get("shape") or ()) or None
            return
        for value in obj.values():
            yield from _histories(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _histories(value)


def _output_histories(obj: Any) -> Iterator[Tensor]:
    if isinstance(obj, (list, tuple)) and len(obj) == 3 and isinstance(obj[0], str):
        yield (obj[0], int(obj[1]), int(obj[2]))
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _output_histories(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _output_histories(value)


def _graph(model: keras.Model, config: dict) -> _Graph:
    entries = [e for e in config["layers"] if e.get("class_name") != "InputLayer"]
    graph = _Graph(entries={})
    if isinstance(model, keras.Sequential):
        previous: Tensor = ("__input__", 0, 0)
        for e in entries:
            name = e["config"]["name"]
            graph.entries[name] = e
            graph.inputs[name] = [previous]
            graph.consumers.setdefault(previous, []).append(name)
            shape = (e.get("build_config") or {}).get("input_shape")
            graph.shapes[name] = tuple(shape) if shape is not None else None
            graph.plain_call[name] = True
            previous = (name, 0, 0)
        graph.outputs.add(previous)
        return graph
    for e in entries:
        name = e["name"]
        nodes = e.get("inbound_nodes") or []
        for node in nodes:
            for tensor, _ in _histories(node):
                graph.consumers.setdefault(tensor, []).append(name)
        if len(nodes) != 1:
            continue  # shared layer (or not called): never part of a chain
        graph.entries[name] = e
        found = list(_histories(nodes[0].get("args", [])))
        graph.inputs[name] = [t for t, _ in found] + [t for t, _ in _histories(nodes[0].get("kwargs", {}))]
        graph.shapes[name] = found[0][1] if found else None
        kwargs = nodes[0].get("kwargs") or {}
        graph.plain_call[name] = all(v is None or (k == "training" and v is False) for k, v in kwargs.items())
    graph.outputs.update(_output_histories(config.get("output_layers", [])))
    return graph


@dataclass
class _Chain:
    producer: str
    mids: list[str]
    consumer: str
    keep: np.ndarray  # output channels of the producer kept


def _chain(model: keras.Model, graph: _Graph, name: str, structure_only: bool = False) -> _Chain | None:
    """The chain from producer ``name`` to the next Dense/Conv and the channels it may lose, or None.
    ``structure_only``: whether the chain exists at all (every channel taken as dead with constant 0)."""
    layer = model.get_layer(name)
    if not (_linear_ok(layer) and _elementwise_activation(layer.activation) and graph.plain_call[name]):
        return None
    kernel = to_numpy(layer.kernel)
    dead = np.ones(kernel.shape[-1], bool) if structure_only else ~kernel.reshape(-1, kernel.shape[-1]).any(axis=0)
    if not dead.any():
        return None
    # (positions, channels): the dead channels' values, per position
    constant = np.zeros((1, kernel.shape[-1]), "float32") if structure_only else _constants(layer)[None]
    uniform = np.ones(constant.shape[1], bool)  # channels whose value is the same at every position
    mids: list[str] = []
    tensor: Tensor = (name, 0, 0)
    while True:
        users = graph.consumers.get(tensor, [])
        if tensor in graph.outputs or len(users) != 1:
            return None  # fan-out, or a model output: every channel stays
        user = users[0]
        if user not in graph.entries or graph.inputs[user] != [tensor] or not graph.plain_call[user]:
            return None  # shared layer, a merge (Add, Concatenate, ...) or an unusual call
        nxt, shape = model.get_layer(user), graph.shapes[user]
        if _linear_ok(nxt):
            break
        if not _mid_ok(nxt, shape):
            return None
        constant, uniform = _through(nxt, shape, constant, uniform)
        mids.append(user)
        tensor = (user, 0, 0)
    foldable = type(nxt) is _L.Dense or (constant.shape[0] == 1 and _unpadded(nxt))
    fine = (constant == 0) | (foldable & np.isfinite(constant))
    removable = dead & fine.all(axis=0) & uniform
    if not removable.any():
        return None
    keep = ~removable
    if not keep.any():
        keep[0] = True  # a layer keeps at least one unit
    return _Chain(name, mids, user, keep)


def _apply(model: keras.Model, graph: _Graph, chain: _Chain, weights: dict[str, list[np.ndarray]]) -> None:
    """Slice the chain's weights in ``weights`` and set the new sizes in the config entries."""
    producer = model.get_layer(chain.producer)
    keep = chain.keep
    w = weights[chain.producer]
    constant = _constants(producer)[None]
    uniform = np.ones(constant.shape[1], bool)
    w[0] = w[0][..., keep]
    if len(w) > 1:  # its bias (possibly added by a fold into it)
        w[1] = w[1][keep]
    graph.entries[chain.producer]["config"]["units" if type(producer) is _L.Dense else "filters"] = int(keep.sum())
    for name in chain.mids:
        layer, shape = model.get_layer(name), graph.shapes[name]
        graph.entries[name].pop("build_config", None)
        constant, uniform = _through(layer, shape, constant, uniform)
        if type(layer) in DEPTHWISE:  # its (taps..., channels, 1) kernel and its bias
            weights[name] = [v[..., keep, :] if v.ndim > 1 else v[keep] for v in weights[name]]
        if type(layer) is _L.BatchNormalization:
            flow = np.tile(keep, constant.shape[0])
            weights[name] = [v[flow] for v in weights[name]]
    graph.entries[chain.consumer].pop("build_config", None)
    w = weights[chain.consumer]
    flow = np.tile(keep, constant.shape[0])
    values = constant.reshape(-1)[~flow]
    removed = np.take(w[0], np.flatnonzero(~flow), axis=-2)
    if values.size and values.any():  # fold the constants into the bias (given one if it had none)
        contribution = (removed * values[:, None]).reshape(-1, removed.shape[-1]).sum(axis=0).astype(w[0].dtype)
        if len(w) == 1:
            graph.entries[chain.consumer]["config"]["use_bias"] = True
            w.append(contribution)
        else:
            w[1] = (w[1] + contribution).astype(w[1].dtype)
    w[0] = np.take(w[0], np.flatnonzero(flow), axis=-2)


def shrinkable_layers(model: keras.Model) -> list[str]:
    """The layers whose dead output channels :func:`~kerasinit.pruning.shrink` can remove (a chain leads from
    them to the next Dense/Conv without a fan-out, a merge or a model output): the ``layers=`` to give
    channel pruning when the goal is a smaller model (MobileNetV2: its stem, expand convolutions and last
    1×1 convolution; not the projections feeding residual additions). Channels whose constant output is
    nonzero behind zero padding stay (see the module's rules)."""
    check_shrinkable(model, "shrinkable_layers")
    graph = _graph(model, model.get_config())
    return [name for name in graph.entries if _chain(model, graph, name, structure_only=True) is not None]


def shrink_unmasked(model: keras.Model) -> keras.Model:
    """:func:`kerasinit.pruning.shrink` on a model without masks."""
    config = model.get_config()
    graph = _graph(model, config)
    chains = [c for c in (_chain(model, graph, name) for name in graph.entries) if c is not None]
    weights = {name: [to_numpy(v) for v in model.get_layer(name).weights] for name in graph.entries}
    for chain in chains:
        _apply(model, graph, chain, weights)
    if isinstance(model, keras.Sequential):
        new = keras.Sequential.from_config(config)
    else:
        new = type(model).from_config(config)
    for layer in new.layers:
        if layer.name in weights:
            layer.set_weights(weights[layer.name])
        elif layer.weights:
            layer.set_weights([to_numpy(v) for v in model.get_layer(layer.name).weights])
    return new


def check_shrinkable(model: Any, owner: str) -> None:
    """Raise TypeError/ValueError unless ``model`` is a built Sequential or functional model (``owner`` names the caller)."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"{owner}: argument `model` must be a keras.Model (Sequential or functional); "
                        f"received {type(model).__name__}.")
    if not model.built:
        raise ValueError(f"{owner}: argument `model` is not built yet; build or call it first.")
    if not isinstance(model, keras.Sequential):
        try:
            config = model.get_config()
        except NotImplementedError:
            config = {}
        if not isinstance(config, dict) or "layers" not in config or "output_layers" not in config:
            raise TypeError(f"{owner}: argument `model` must be a Sequential or functional keras.Model to shrink; "
                            f"received a subclassed {type(model).__name__}, which cannot be rebuilt from its config.")
