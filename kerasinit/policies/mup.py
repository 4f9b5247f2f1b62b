"""μP, the Maximal Update Parametrization (Yang et al. 2021, "Tensor Programs V"): tune at a small
width, train at a large one with the same hyperparameters.

Every weight layer is one of three kinds (its position in the model decides):

- **input** (the first weight layer, or an Embedding): fan_in fixed, fan_out grows with width;
- **hidden** (every other weight layer): both fans grow;
- **output** (the last weight layer, the readout): fan_in grows, fan_out fixed.

With ``r`` the width multiplier (the growing dimension over ``base_width``; the kernel's input
channels for hidden and output layers, its output channels for input layers), μP (Table 3 of the
paper, anchored so that width = base_width is standard parametrization) sets

====================  ==================  ====================  ===============
kind                  init variance       Adam LR multiplier    SGD LR multiplier
====================  ==================  ====================  ===============
input                 scale / fan_in      1                     r
hidden                scale / fan_in      1 / r                 1
output                scale / (fan_in·r)  1 / r                 1 / r
biases                (zero)              1                     r (of the layer's outputs)
====================  ==================  ====================  ===============

:func:`initialize` re-draws the kernels, :func:`optimizer` returns a Keras optimizer that multiplies
the learning rate of each variable by its multiplier (on every backend: the per-variable
``update_step`` is the one place all three backends' optimizers share).

**MultiHeadAttention** (Tensor Programs V, μP's attention-logit rule): its query, key, value and
output projections are four **hidden** weights (fans: model width d for query/key/value, heads·value
width for the output). μP also replaces the logit scale 1/√d_head by 1/d_head, since trained
queries and keys become correlated and ``q·k`` grows like d_head. Keras hard-codes 1/√key_dim, so
the missing factor ``c = √(base_key_dim / key_dim)`` (1 at the base width) is folded into the query
projection, which is what multiplies the logits: the query kernel is drawn ``c`` times smaller
(variance × c²) and its learning rate (kernel and bias) is multiplied by ``c`` for Adam (update
size does not depend on the gradient's scale) and by ``c²`` for SGD. With ``W̃_q = c·W_q`` the
forward pass and these updates are exactly those of μP's ``1/d_head`` logits (up to Adam's ε).
Not μP-exact: AdamW's decoupled weight decay (Keras applies it with the global learning rate),
and a saved model keeps working but its optimizer state (the multipliers) must be rebuilt with
:func:`optimizer`. ``zero_query=True`` starts the query at 0 (uniform attention at init), as
Yang et al. recommend. ``base_key_dim`` defaults to ``key_dim · base_width / d`` (a fixed number
of heads whose width grows with the model); when heads are added at a fixed head width, pass
``base_key_dim=key_dim`` (then c = 1: 1/√d_head is a constant).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit._validation import check_choice, check_int, check_real
from kerasinit.layers import EMBEDDING, KERNEL, attention_projections, main_weight
from kerasinit.policies.residual import weight_layers_in_order

KINDS = ("input", "hidden", "output")
OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}
#: Adam-like optimizers (update size independent of the gradient's scale) follow the Adam column.
_ADAM_LIKE = ("Adam", "AdamW")


def layer_kinds(model: keras.layers.Layer) -> dict[str, str]:
    """Layer name -> ``"input"``, ``"hidden"`` or ``"output"`` for every weight layer of ``model``."""
    if not isinstance(model, keras.layers.Layer) or not model.built:
        raise ValueError(f"mup: argument `model` must be a built Keras model; received {model!r}.")
    found = weight_layers_in_order(model)
    if len(found) < 2:
        raise ValueError(f"mup: argument `model` needs at least an input and an output weight layer; found {len(found)}.")
    kinds = {}
    for i, layer in enumerate(found):
        if isinstance(layer, keras.layers.MultiHeadAttention) and i in (0, len(found) - 1):
            raise ValueError(f"mup: MultiHeadAttention {layer.name!r} is the model's {'first' if i == 0 else 'last'} "
                             "weight layer; μP needs an input layer (Embedding/Dense) before attention and a readout "
                             "after it, so that its projections are hidden weights.")
        kinds[layer.name] = "input" if i == 0 or isinstance(layer, keras.layers.Embedding) else (
            "output" if i == len(found) - 1 else "hidden")
    return kinds


def _kernel(layer: keras.layers.Layer) -> keras.Variable:
    weight = main_weight(layer, (KERNEL, EMBEDDING))
    if weight is None:
        raise ValueError(f"mup: layer {layer.name!r} ({type(layer).__name__}) has no kernel or embeddings.")
    return weight.variable


def _units(model: keras.layers.Layer, kinds: dict[str, str]) -> list[tuple[str, keras.layers.Layer, str, str]]:
    """``(label, layer holding the kernel, kind, attention part or "")`` per weight layer; a
    MultiHeadAttention gives its four projections (``"mha/query"``...), all hidden."""
    out = []
    for layer in weight_layers_in_order(model):
        if isinstance(layer, keras.layers.MultiHeadAttention):
            out.extend((f"{layer.name}/{part}", sub, "hidden", part) for part, sub in attention_projections(layer).items())
        else:
            out.append((layer.name, layer, kinds[layer.name], ""))
    return out


def _fans(layer: keras.layers.Layer, part: str) -> tuple[int, int]:
    """(n_in, n_out) of a kernel: the dimensions that grow with width (attention projections by their axes)."""
    shape = tuple(_kernel(layer).shape)
    if isinstance(layer, keras.layers.Embedding):
        return shape[0], shape[1]
    if part == "output":  # (heads, value_dim, d)
        return int(np.prod(shape[:-1])), shape[-1]
    if part:  # (d, heads, key_dim)
        return shape[0], int(np.prod(shape[1:]))
    return int(np.prod(shape[:-1])), shape[-1]


def _multipliers(kind: str, n_in: int, n_out: int, base_width: int, embedding: bool) -> tuple[float, float]:
    """(r of the kernel's growing dimension, r of the layer's outputs)."""
    r_out = 1.0 if kind == "output" else n_out / base_width  # a readout's outputs do not grow with width
    if embedding:  # (vocabulary, d): the kernel's growing dimension is its width
        return r_out, r_out
    return (r_out if kind == "input" else n_in / base_width), r_out


def logit_factor(mha: keras.layers.MultiHeadAttention, base_width: int, base_key_dim: float | None = None) -> float:
    """``c = √(base_key_dim / key_dim)``: μP's 1/d_head logits over Keras's 1/√d_head, folded into the query.

    ``base_key_dim`` defaults to ``key_dim · base_width / d`` (d: the query's input width, heads fixed)."""
    query = attention_projections(mha)["query"].kernel
    key_dim = query.shape[-1]
    if base_key_dim is None:
        base_key_dim = key_dim * base_width / query.shape[0]
    base_key_dim = check_real("base_key_dim", base_key_dim, owner="mup", positive=True)
    return float(np.sqrt(base_key_dim / key_dim))


def plan(model: keras.layers.Layer, base_width: int, optimizer: str = "adam", base_key_dim: float | None = None) -> Any:
    """The μP table for ``model``: one row per trainable weight (layer, weight, kind, attention part,
    r, init variance per unit of ``scale``, learning-rate multiplier) for ``optimizer`` ``"adam"``
    (also AdamW) or ``"sgd"``. Query rows of attention layers include the logit factor c (variance
    × c², Adam LR × c, SGD LR × c²); see the module docstring and :func:`logit_factor`."""
    import pandas as pd

    base_width = check_int("base_width", base_width, 1, owner="mup")
    family = check_choice("optimizer", optimizer, ("adam", "sgd"), owner="mup")
    kinds = layer_kinds(model)
    mhas = {id(sub): la for la in weight_layers_in_order(model) if isinstance(la, keras.layers.MultiHeadAttention)
            for sub in attention_projections(la).values()}
    rows = []
    for label, layer, kind, part in _units(model, kinds):
        kernel = _kernel(layer)
        embedding = isinstance(layer, keras.layers.Embedding)
        n_in, n_out = _fans(layer, part)
        r, r_out = _multipliers(kind, n_in, n_out, base_width, embedding)
        c = logit_factor(mhas[id(layer)], base_width, base_key_dim) if part == "query" else 1.0
        fan_in = 1 if embedding else n_in
        var = c**2 / fan_in / (r if kind == "output" else 1.0)
        if family == "adam":
            lr = {"input": 1.0, "hidden": 1.0 / r, "output": 1.0 / r}[kind] * c
        else:
            lr = {"input": r, "hidden": 1.0, "output": 1.0 / r}[kind] * c**2
        rows.append({"layer": label, "weight": kernel.path, "kind": kind, "part": part, "r": r, "var_per_scale": var,
                     "lr_multiplier": lr})
        bias = getattr(layer, "bias", None)
        if isinstance(bias, keras.Variable):
            rows.append({"layer": label, "weight": bias.path, "kind": f"{kind} bias", "part": part, "r": r_out,
                         "var_per_scale": 0.0, "lr_multiplier": c if family == "adam" else r_out * c**2})
    return pd.DataFrame(rows, columns=["layer", "weight", "kind", "part", "r", "var_per_scale", "lr_multiplier"])


def initialize(model: keras.layers.Layer, base_width: int, scale: float = 1.0, seed: int | None = None,
               zero_output: bool = False, zero_query: bool = False, base_key_dim: float | None = None) -> Any:
    """Re-draw ``model``'s kernels with μP variances (table above; ``scale`` is the variance numerator:
    1 LeCun, 2 He) and zero its biases; ``zero_output=True`` starts the readout at 0 and
    ``zero_query=True`` every attention query at 0 (both allowed by μP; Yang et al. recommend the
    latter). Attention query kernels are drawn with the logit factor c folded in (:func:`plan`).
    Returns :func:`plan` with the measured std of each kernel."""
    scale = check_real("scale", scale, owner="mup", positive=True)
    for name, flag in (("zero_output", zero_output), ("zero_query", zero_query)):
        if not isinstance(flag, bool):
            raise TypeError(f"mup: argument `{name}` must be True or False; received {flag!r}.")
    table = plan(model, base_width, base_key_dim=base_key_dim)
    holders = {label: layer for label, layer, _, _ in _units(model, layer_kinds(model))}
    stds = []
    for i, row in enumerate(table.itertuples()):
        layer = holders[row.layer]
        var = _kernel(layer) if not row.kind.endswith("bias") else layer.bias
        shape, draw_seed = tuple(var.shape), None if seed is None else seed + i
        zero = (zero_output and row.kind == "output") or (zero_query and row.part == "query")
        if row.kind.endswith("bias") or zero:
            values = np.zeros(shape, dtype=var.dtype)
        elif isinstance(layer, keras.layers.Embedding):  # one-hot inputs: fan_in = 1
            values = keras.random.normal(shape, stddev=scale**0.5, seed=draw_seed, dtype=var.dtype)
        else:
            values = keras.random.normal(shape, stddev=float(np.sqrt(scale * row.var_per_scale)), seed=draw_seed,
                                         dtype=var.dtype)
        var.assign(values)
        stds.append(float(np.std(to_numpy(var))))
    return table.assign(std=stds)


def optimizer(model: keras.layers.Layer, base_width: int, optimizer: Any = "adam", learning_rate: float = 1e-3,
              base_key_dim: float | None = None, **kwargs: Any) -> keras.optimizers.Optimizer:
    """A Keras optimizer whose learning rate for each of ``model``'s weights is ``learning_rate`` times
    its μP multiplier (``plan(model, base_width, ..., base_key_dim).lr_multiplier``).

    ``optimizer``: ``"adam"``, ``"adamw"``, ``"sgd"``, or one of those Keras classes; ``kwargs`` go to
    its constructor (``momentum=0.9``, ``weight_decay=...``). Works on TensorFlow, JAX and PyTorch: the
    multiplier is applied in ``update_step``, which every backend calls per variable.
    """
    if isinstance(optimizer, str):
        name = OPTIMIZERS.get(check_choice("optimizer", optimizer.lower(), OPTIMIZERS, owner="mup"))
        base_cls = getattr(keras.optimizers, name)
    elif isinstance(optimizer, type) and optimizer.__name__ in (*_ADAM_LIKE, "SGD") and issubclass(optimizer, keras.optimizers.Optimizer):
        base_cls = optimizer
    else:
        raise TypeError(f"mup: argument `optimizer` must be one of {list(OPTIMIZERS)} or keras.optimizers.Adam/AdamW/SGD; "
                        f"received {optimizer!r}.")
    family = "adam" if base_cls.__name__ in _ADAM_LIKE else "sgd"
    table = plan(model, base_width, family, base_key_dim)
    by_path = dict(zip(table.weight, table.lr_multiplier, strict=True))
    variables = [v for v in model.trainable_variables if v.path in by_path]
    return _mup_class(base_cls)(variables, [by_path[v.path] for v in variables], learning_rate=learning_rate, **kwargs)


_CLASSES: dict[type, type] = {}


def _mup_class(base_cls: type) -> type:
    """``base_cls`` with per-variable learning-rate multipliers (one subclass per optimizer class)."""
    if base_cls in _CLASSES:
        return _CLASSES[base_cls]

    def __init__(self: Any, variables: list[keras.Variable], multipliers: list[float], **kwargs: Any) -> None:
        base_cls.__init__(self, **kwargs)
        #: variable path -> learning-rate multiplier (what the optimizer applies, by the backend's variable key).
        self.lr_multipliers = {v.path: float(m) for v, m in zip(variables, multipliers, strict=True)}
        self._mup_by_key = {self._var_key(v): float(m) for v, m in zip(variables, multipliers, strict=True)}

    def update_step(self: Any, gradient: Any, variable: Any, learning_rate: Any) -> Any:
        factor = self._mup_by_key.get(self._var_key(variable), 1.0)
        return base_cls.update_step(self, gradient, variable, learning_rate * factor if factor != 1.0 else learning_rate)

    cls = type(f"Mup{base_cls.__name__}", (base_cls,), {"__init__": __init__, "update_step": update_step,
                                                        "__doc__": f"{base_cls.__name__} with μP learning-rate multipliers."})
    _CLASSES[base_cls] = cls
    return cls


__all__ = ["KINDS", "initialize", "layer_kinds", "logit_factor", "optimizer", "plan"]
