"""Activation-aware policies: ``recommend(activation)`` and ``reinitialize(model, policy)``.

The auto policy follows the derivations: Glorot & Bengio (2010) for activations that are linear
around 0 (sigmoid, tanh, softmax, linear) -> Glorot uniform; He et al. (2015) for the ReLU family,
ELU, GELU, swish/SiLU -> He normal (leaky ReLU: He with its slope, √(2/((1+a²)·fan_in)));
Klambauer et al. (2017) for SELU -> LeCun normal.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit.initializers.fans import DEFAULT_NEGATIVE_SLOPE, activation_name
from kerasinit.initializers.registry import get
from kerasinit.layers import DEPTHWISE, KERNEL, POINTWISE, RECURRENT, iter_layers, layer_weights
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


def _activation_of(layer: keras.layers.Layer, following: keras.layers.Layer | None) -> tuple[str, float | None]:
    """The layer's own activation, or that of a following activation layer when its own is linear."""
    act = getattr(layer, "activation", None)
    name = activation_name(act) if act is not None else "linear"
    if name == "linear" and following is not None:
        cls = type(following).__name__
        if cls in _ACTIVATION_LAYERS:
            slope = getattr(following, "negative_slope", None)
            return _ACTIVATION_LAYERS[cls], float(slope) if slope is not None else None
        if cls == "Activation":
            return activation_name(following.activation), None
    return name, None


#: Roles of the weights ``reinitialize`` re-draws (:mod:`kerasinit.layers`); embeddings keep theirs.
REDRAWN_ROLES = (KERNEL, DEPTHWISE, POINTWISE, RECURRENT)


def _kernel_variables(layer: keras.layers.Layer) -> list[tuple[str, Any]]:
    """(attribute, variable) pairs of the kernels a layer exposes (RNN cells: kernel + recurrent)."""
    return [(w.attr, w.variable) for w in layer_weights(layer, REDRAWN_ROLES)]


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


def _resolve_policy(policy: Any, layer: keras.layers.Layer, activation: str, slope: float | None,
                    seed: int | None, index: int) -> Any:
    if isinstance(policy, Mapping):
        chosen = None
        for key in (layer.name, type(layer).__name__):
            if key in policy:
                chosen = policy[key]
                break
        else:
            for key, value in policy.items():
                if isinstance(key, type) and isinstance(layer, key):
                    chosen = value
                    break
        return None if chosen is None else _fresh(get(chosen), seed, index)  # None: leave the layer alone
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

    ``policy``: ``"auto"`` (by each layer's activation, see :func:`recommend`; a linear layer
    followed by an activation layer takes that activation), an initializer or its name for every
    kernel, or a mapping ``{layer name | layer class name | layer class: initializer}`` (layers not
    in the mapping are left alone), or a structure-aware policy that finds residual blocks and
    attention layers itself and changes only what its paper names: ``"fixup"``, ``"skipinit"``,
    ``"gpt2"``, ``"t_fixup"``, ``"mimetic"`` (see :mod:`kerasinit.policies.structural`; their
    reports add the columns block, role, scale and reason). Recurrent kernels always get ``Orthogonal`` (Keras's default).
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
    layers = list(iter_layers(model))
    rows = []
    done: set[int] = set()
    index = 0
    for i, layer in enumerate(layers):
        following = layers[i + 1] if i + 1 < len(layers) else None
        activation, slope = _activation_of(layer, following)
        redrawn = False
        for attr, var in _kernel_variables(layer):
            if id(var) in done:
                continue
            done.add(id(var))
            if attr == "recurrent_kernel":
                init = _fresh(Orthogonal(), seed, index)
            else:
                init = _resolve_policy(policy, layer, activation, slope, seed, index)
            index += 1
            if init is None:
                continue
            before = float(np.std(to_numpy(var)))
            var.assign(init(tuple(var.shape), dtype=var.dtype))
            redrawn = True
            rows.append({"layer": layer.name, "class": type(layer).__name__, "weight": attr, "shape": tuple(var.shape),
                         "activation": activation, "initializer": type(init).__name__, "std_before": before,
                         "std_after": float(np.std(to_numpy(var)))})
        if redrawn:
            _reset_bias(layer)
    report = pd.DataFrame(rows, columns=["layer", "class", "weight", "shape", "activation", "initializer", "std_before", "std_after"])
    if verbose:
        print(report.to_string(index=False))
    return report
