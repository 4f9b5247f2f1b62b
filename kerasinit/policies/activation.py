"""Activation-aware policies: ``recommend(activation)`` and ``reinitialize(model, policy)``.

The auto policy follows the derivations: Glorot & Bengio (2010) for activations that are linear
around 0 (sigmoid, tanh, softmax, linear) -> Glorot uniform; He et al. (2015) for the ReLU family,
ELU, GELU, swish/SiLU -> He normal (leaky ReLU: He with its slope, √(2/((1+a²)·fan_in)));
Klambauer et al. (2017) for SELU -> LeCun normal.

A layer's activation is its own, or, when that is linear, the activation its output reaches
through layers that do not change which nonlinearity follows (normalization, dropout, pooling,
padding, reshaping, ``Add``/``Average``/``Concatenate``): Conv -> BatchNorm -> ReLU is a ReLU layer
(He et al. 2015 initialize ResNets that way). Embeddings are lookups, not weighted sums: under
``"auto"`` they are drawn from N(0, 1), PyTorch's ``nn.Embedding`` default, so that a token's
vector has unit variance per coordinate like standardized inputs (LeCun et al. 1998, "Efficient
BackProp"), the input scale Glorot and He assume. EinsumDense kernels (and so MultiHeadAttention's
projections) are drawn with the axis-aware fans Keras itself uses for them.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit.initializers.fans import DEFAULT_NEGATIVE_SLOPE, activation_name
from kerasinit.initializers.registry import REGISTERED, canonical_alias, get
from kerasinit.layers import (
    DEPTHWISE,
    EMBEDDING,
    KERNEL,
    POINTWISE,
    RECURRENT,
    iter_layers,
    layer_weights,
)
from kerasinit.policies.registry import POLICIES

GLOROT = ("sigmoid", "hard_sigmoid", "tanh", "softmax", "linear", "softsign", "log_softmax")
HE = ("relu", "relu6", "elu", "gelu", "swish", "silu", "mish", "softplus", "celu", "hard_silu", "hard_swish")
LEAKY = ("leaky_relu",)
LECUN = ("selu",)
#: Activation names :func:`recommend` knows.
KNOWN_ACTIVATIONS = GLOROT + HE + LEAKY + LECUN

_ACTIVATION_LAYERS = {"ReLU": "relu", "ELU": "elu", "Softmax": "softmax", "LeakyReLU": "leaky_relu", "PReLU": "leaky_relu"}


def recommend(activation: Any, negative_slope: float | None = None, seed: Any = None) -> keras.initializers.Initializer:
    """The initializer the theory recommends for ``activation`` (name, callable or None).

    Unknown activations give a warning and Glorot uniform (Keras's default), never an error.
    """
    from kerasinit.initializers.mirrors import GlorotUniform, HeNormal, LecunNormal
    from kerasinit.initializers.tutorial import LeakyHeNormal

    try:
        name = activation_name(activation)
    except TypeError:
        name = repr(activation)
    if name in GLOROT:
        return GlorotUniform(seed=seed)
    if name in HE:
        return HeNormal(seed=seed)
    if name in LEAKY:
        return LeakyHeNormal(negative_slope=DEFAULT_NEGATIVE_SLOPE if negative_slope is None else negative_slope, seed=seed)
    if name in LECUN:
        return LecunNormal(seed=seed)
    warnings.warn(
        f"recommend: unknown activation {activation!r}; using Glorot uniform (Keras's default). "
        f"Known activations: {', '.join(KNOWN_ACTIVATIONS)}.",
        UserWarning,
        stacklevel=2,
    )
    return GlorotUniform(seed=seed)


_L = keras.layers
#: Layers that do not change which nonlinearity a kernel's output meets: the activation after
#: them is the kernel's (normalization, dropout, pooling, padding, reshaping, linear merges).
_LOOK_THROUGH: tuple[type, ...] = (
    _L.BatchNormalization, _L.LayerNormalization, _L.GroupNormalization,
    _L.Dropout, _L.SpatialDropout1D, _L.SpatialDropout2D, _L.SpatialDropout3D, _L.GaussianDropout,
    _L.GaussianNoise, _L.AlphaDropout,
    _L.MaxPooling1D, _L.MaxPooling2D, _L.MaxPooling3D, _L.AveragePooling1D, _L.AveragePooling2D,
    _L.AveragePooling3D, _L.GlobalAveragePooling1D, _L.GlobalAveragePooling2D, _L.GlobalAveragePooling3D,
    _L.GlobalMaxPooling1D, _L.GlobalMaxPooling2D, _L.GlobalMaxPooling3D,
    _L.ZeroPadding1D, _L.ZeroPadding2D, _L.ZeroPadding3D, _L.Cropping1D, _L.Cropping2D, _L.Cropping3D,
    _L.Flatten, _L.Reshape, _L.Permute, _L.Identity, _L.Add, _L.Average, _L.Concatenate,
)


def _own_activation(layer: Any) -> str:
    act = getattr(layer, "activation", None)
    return activation_name(act) if act is not None else "linear"


def _as_activation(layer: Any) -> tuple[str, float | None] | None:
    """The activation an activation layer applies, or None if ``layer`` is not one."""
    cls = type(layer).__name__
    if cls in _ACTIVATION_LAYERS:
        slope = getattr(layer, "negative_slope", None)
        return _ACTIVATION_LAYERS[cls], float(slope) if slope is not None else None
    if cls == "Activation":
        return activation_name(layer.activation), None
    return None


class _Graph:
    """Who consumes each layer's output: Keras's graph where there is one, else sibling order.

    Functional and Sequential models (nested ones included) record their calls as nodes, so the
    consumers of a layer are the operations of its outbound nodes; a layer producing a nested
    model's output is consumed by that model's consumers. A subclassed model has no graph: the
    layer assigned after this one is taken as its consumer (the order ``call`` usually follows).
    Sublayers of a plain layer (MultiHeadAttention's projections, RNN cells) are called inside its
    ``call``: only their own activation counts.
    """

    def __init__(self, model: keras.layers.Layer) -> None:
        self.output_of: dict[int, keras.layers.Layer] = {}
        self.siblings: dict[int, list[keras.layers.Layer]] = {}
        self.parent: dict[int, keras.layers.Layer] = {}
        for container in [model, *iter_layers(model)]:
            children = list(container._flatten_layers(include_self=False, recursive=False))
            for child in children:
                self.parent.setdefault(id(child), container)
            self.siblings[id(container)] = children
            if isinstance(container, keras.Model) and self._in_graph(container):
                try:
                    outputs = keras.tree.flatten(container.outputs)
                except (AttributeError, ValueError):
                    outputs = []
                for out in outputs:
                    history = getattr(out, "_keras_history", None)
                    if history is not None:
                        self.output_of.setdefault(id(history[0]), container)

    @staticmethod
    def _in_graph(layer: Any) -> bool:
        return bool(getattr(layer, "_inbound_nodes", None)) or bool(getattr(layer, "_outbound_nodes", None))

    def consumers(self, layer: keras.layers.Layer) -> Iterator[keras.layers.Layer] | None:
        """The layers receiving ``layer``'s output, or None when nothing can say."""
        if self._in_graph(layer):
            nodes = list(getattr(layer, "_outbound_nodes", []))
            if nodes:
                return (node.operation for node in nodes)
            outer = self.output_of.get(id(layer))
            return self.consumers(outer) if outer is not None else iter(())
        parent = self.parent.get(id(layer))
        if parent is None or not isinstance(parent, keras.Model):
            return None  # a sublayer of a plain layer: its parent's call decides
        siblings = self.siblings[id(parent)]
        i = next(k for k, s in enumerate(siblings) if s is layer)
        return iter(siblings[i + 1 : i + 2])

    def owners(self, layer: keras.layers.Layer) -> list[keras.layers.Layer]:
        """``layer`` and, for an RNN cell, the RNN (and Bidirectional) layers around it."""
        out = [layer]
        parent = self.parent.get(id(layer))
        while isinstance(parent, keras.layers.RNN | keras.layers.Bidirectional):
            out.append(parent)
            parent = self.parent.get(id(parent))
        return out

    def activation_after(self, layer: keras.layers.Layer) -> tuple[str, float | None]:
        """The activation ``layer``'s output meets, looking through :data:`_LOOK_THROUGH` layers."""
        found: list[tuple[str, float | None]] = []
        seen: set[int] = set()
        stack = [layer]
        while stack:
            consumers = self.consumers(stack.pop())
            for nxt in consumers or ():
                if id(nxt) in seen:
                    continue
                seen.add(id(nxt))
                act = _as_activation(nxt)
                if act is not None and act[0] == "linear":
                    stack.append(nxt)
                elif act is not None:
                    found.append(act)
                elif isinstance(nxt, _LOOK_THROUGH):
                    stack.append(nxt)
                else:
                    found.append(("linear", None))  # a weight layer or anything else: nothing to look through
        names = {name for name, _ in found}
        if len(names) == 1:
            return found[0]
        if len(names) > 1:
            warnings.warn(f"reinitialize: layer {layer.name!r} feeds several activations {sorted(names)}; treating it as "
                          f"linear (Glorot uniform). Pass a mapping policy to choose.", UserWarning, stacklevel=4)
        return "linear", None

    def activation_of(self, layer: keras.layers.Layer) -> tuple[str, float | None]:
        """The layer's own activation, or, when it is linear, the one its output reaches."""
        name = _own_activation(layer)
        if name != "linear":
            return name, None
        return self.activation_after(layer)


#: Roles of the weights ``reinitialize`` re-draws (:mod:`kerasinit.layers`).
REDRAWN_ROLES = (KERNEL, DEPTHWISE, POINTWISE, RECURRENT, EMBEDDING)

#: The ``"auto"`` draw for embeddings: N(0, 1) (PyTorch's ``nn.Embedding``; unit-variance inputs).
EMBEDDING_STDDEV = 1.0


def _kernel_variables(layer: keras.layers.Layer) -> list[tuple[str, str, Any]]:
    """(attribute, role, variable) of the weights a layer exposes (RNN cells: kernel + recurrent)."""
    return [(w.attr, w.role, w.variable) for w in layer_weights(layer, REDRAWN_ROLES)]


def einsum_axes(layer: keras.layers.EinsumDense) -> tuple[list[int], list[int]]:
    """(input_axes, output_axes) of an EinsumDense kernel, as Keras computes them at build time.

    A kernel axis whose letter is in the output is an output axis, else (its letter is contracted
    with the input) an input axis (``keras.src.layers.core.einsum_dense._analyze_split_string``).
    """
    lhs, out = layer.equation.replace(" ", "").replace("...", "").split("->")
    inp, kernel = lhs.split(",")
    return ([i for i, c in enumerate(kernel) if c not in out and c in inp], [i for i, c in enumerate(kernel) if c in out])


def _with_layer_fans(init: Any, layer: keras.layers.Layer) -> Any:
    """``init`` with the axis-aware fans Keras gives an EinsumDense kernel (VarianceScaling only).

    Keras's EinsumDense.build clones a VarianceScaling initializer without axes with
    ``input_axes``/``output_axes`` from its equation (MultiHeadAttention's projections included),
    so a (d, heads, dim) query kernel has fan_in d and fan_out heads·dim, not conv-style fans.
    """
    if not (isinstance(layer, keras.layers.EinsumDense) and isinstance(init, keras.initializers.VarianceScaling)):
        return init
    if init.input_axes is not None and init.output_axes is not None:
        return init
    input_axes, output_axes = einsum_axes(layer)
    config = {**init.get_config(), "input_axes": input_axes, "output_axes": output_axes}
    try:
        return type(init).from_config(config)
    except TypeError as exc:
        raise ValueError(
            f"reinitialize: layer {layer.name!r} is an EinsumDense, whose kernel Keras draws with axis-aware fans "
            f"(input_axes={input_axes}, output_axes={output_axes}), but {type(init).__name__} does not accept "
            f"`input_axes`/`output_axes` in its config: give it those arguments (as keras.initializers.VarianceScaling "
            f"does) or choose another initializer for this layer."
        ) from exc


def _unknown_policy(policy: str) -> ValueError:
    """The error for a string that is neither a policy nor an initializer: both lists, close matches first."""
    policies = ["auto", *POLICIES]
    initializers = sorted(canonical_alias(c) for c in REGISTERED.values())
    close = difflib.get_close_matches(policy.lower(), [*policies, *initializers], n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(
        f"reinitialize: argument `policy` {policy!r} is neither a policy nor an initializer name "
        f"(Unknown initializer {policy!r}).{hint} Policies: {', '.join(repr(p) for p in policies)}. "
        f"Initializers: {', '.join(initializers)} (also their class names and Keras's aliases)."
    )


def _fresh(init: Any, seed: int | None, index: int) -> Any:
    """A per-kernel clone of ``init``.

    Keras initializers with ``seed=None`` fix a random seed at construction, so reusing one
    instance would give equal-shaped layers identical weights: every kernel gets its own clone,
    seeded ``seed + index`` (or the initializer's own int seed + index, or fresh when unseeded).
    """
    if not isinstance(init, keras.initializers.Initializer):
        return init
    config = init.get_config()
    if "seed" not in config:
        return init
    own = config["seed"]
    if seed is not None:
        new_seed: int | None = seed + index
    elif isinstance(own, int) and not isinstance(own, bool):
        new_seed = own + index
    else:
        new_seed = None
    return type(init).from_config({**config, "seed": new_seed})


def _mapped(policy: Mapping, owners: list[keras.layers.Layer]) -> Any:
    """The mapping's entry for the first of ``owners`` it names (by name, class name, then class)."""
    for owner in owners:
        for key in (owner.name, type(owner).__name__):
            if key in policy:
                return policy[key]
        for key, value in policy.items():
            if isinstance(key, type) and isinstance(owner, key):
                return value
    return None


def _resolve_policy(policy: Any, layer: keras.layers.Layer, activation: str, slope: float | None,
                    seed: int | None, index: int, role: str = KERNEL,
                    owners: list[keras.layers.Layer] | None = None) -> Any:
    """The initializer for one weight; None leaves it alone (a mapping that names neither the layer
    nor, for an RNN cell, its RNN layer)."""
    if isinstance(policy, Mapping):
        chosen = _mapped(policy, owners or [layer])
        if chosen is None:
            return None
        if role == RECURRENT:
            from kerasinit.initializers.mirrors import Orthogonal

            return _fresh(Orthogonal(), seed, index)
        return _fresh(get(chosen), seed, index)
    if policy == "auto" and role == EMBEDDING:
        from kerasinit.initializers.mirrors import RandomNormal

        return RandomNormal(mean=0.0, stddev=EMBEDDING_STDDEV, seed=None if seed is None else seed + index)
    if policy == "auto":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            init = recommend(activation, negative_slope=slope, seed=None if seed is None else seed + index)
        for w in caught:
            warnings.warn(f"reinitialize: layer {layer.name!r}: {w.message}", UserWarning, stacklevel=4)
        return init
    return _fresh(get(policy), seed, index)


def _reset_bias(layer: keras.layers.Layer) -> None:
    """Zero the bias; LSTM cells with ``unit_forget_bias`` keep Keras's forget-gate bias of 1."""
    bias = getattr(layer, "bias", None)
    if not isinstance(bias, keras.Variable):
        return
    values = np.zeros(tuple(bias.shape), dtype=bias.dtype)
    if getattr(layer, "unit_forget_bias", False) and getattr(layer, "units", None):
        values[layer.units : 2 * layer.units] = 1.0
    bias.assign(values)


def reinitialize(model: keras.layers.Layer, policy: Any = "auto", seed: int | None = None, verbose: bool = False) -> Any:
    """Re-draw every kernel of ``model`` in place and zero its biases; return a per-layer report.

    ``policy``:

    - ``"auto"``: by each layer's activation (:func:`recommend`); a linear layer takes the
      activation its output reaches through normalization, dropout, pooling, reshaping and
      Add/Average/Concatenate layers (Conv -> BatchNorm -> ReLU is He); embeddings N(0, 1);
    - an initializer (instance, class or name) for every kernel and embedding;
    - a mapping ``{layer name | layer class name | layer class: initializer}``: layers not in the
      mapping are left alone; an RNN cell follows its RNN layer's entry;
    - a structure-aware policy that finds residual blocks and attention layers itself and changes
      only what its paper names: ``"fixup"``, ``"skipinit"``, ``"gpt2"``, ``"t_fixup"``,
      ``"mimetic"`` (see :mod:`kerasinit.policies.structural`; their reports add the columns
      block, role, scale and reason).

    A string that is neither a policy nor an initializer raises a ValueError listing both,
    closest names first. Recurrent kernels always get ``Orthogonal`` (Keras's default).
    EinsumDense kernels (MultiHeadAttention's projections) drawn by a VarianceScaling initializer
    get the axis-aware fans Keras gives them (:func:`einsum_axes`).
    With an int ``seed`` the i-th kernel is drawn with seed ``seed + i`` (reproducible, distinct).
    Works for Sequential, functional, subclassed and nested models. The report (a pandas
    DataFrame) has one row per re-drawn weight: layer, class, weight, shape, activation,
    initializer, std before and after.
    """
    import pandas as pd

    from kerasinit.initializers.mirrors import Orthogonal

    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"reinitialize: argument `model` must be a Keras model or layer; received {type(model).__name__}.")
    if not model.built:
        raise ValueError("reinitialize: argument `model` is not built yet; call it on data or build it first.")
    if not isinstance(policy, Mapping | str | keras.initializers.Initializer | type):
        raise TypeError(
            "reinitialize: argument `policy` must be 'auto', an initializer (instance, class or name) or a mapping "
            f"{{layer name | class name | class: initializer}}; received {policy!r}."
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"reinitialize: argument `seed` must be None or an int; received {seed!r}.")
    if isinstance(policy, str) and policy != "auto" and policy not in POLICIES:
        try:
            get(policy)
        except ValueError as exc:
            raise _unknown_policy(policy) from exc
    if isinstance(policy, str) and policy in POLICIES:
        report = POLICIES[policy](model, seed=seed)
        if verbose:
            print(report.to_string(index=False))
        return report
    if isinstance(policy, Mapping):
        names = {layer.name for layer in iter_layers(model)} | {type(layer).__name__ for layer in iter_layers(model)}
        unknown = [k for k in policy if isinstance(k, str) and k not in names]
        if unknown:
            raise ValueError(f"reinitialize: argument `policy` names unknown layers {unknown}; layers: {sorted(names)}.")
    graph = _Graph(model)
    rows = []
    done: set[int] = set()
    index = 0
    for layer in iter_layers(model):
        weights = _kernel_variables(layer)
        if not weights:
            continue
        activation, slope = graph.activation_of(layer)
        redrawn = False
        for attr, role, var in weights:
            if id(var) in done:
                continue
            done.add(id(var))
            if role == RECURRENT and not isinstance(policy, Mapping):
                init = _fresh(Orthogonal(), seed, index)
            else:
                init = _resolve_policy(policy, layer, activation, slope, seed, index, role, graph.owners(layer))
            index += 1
            if init is None:
                continue
            init = _with_layer_fans(init, layer)
            before = float(np.std(to_numpy(var)))
            var.assign(init(tuple(var.shape), dtype=var.dtype))
            redrawn = True
            rows.append({"layer": layer.name, "class": type(layer).__name__, "weight": attr, "shape": tuple(var.shape),
                         "activation": "lookup" if role == EMBEDDING else activation, "initializer": type(init).__name__, "std_before": before,
                         "std_after": float(np.std(to_numpy(var)))})
        if redrawn:
            _reset_bias(layer)
    report = pd.DataFrame(rows, columns=["layer", "class", "weight", "shape", "activation", "initializer", "std_before", "std_after"])
    if verbose:
        print(report.to_string(index=False))
    return report
