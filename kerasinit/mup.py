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
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit._validation import check_choice, check_int, check_real
from kerasinit.initializers.mirrors import VarianceScaling
from kerasinit.initializers.residual import weight_layers_in_order

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
        if isinstance(layer, keras.layers.MultiHeadAttention):
            raise ValueError(f"mup: layer {layer.name!r} is a MultiHeadAttention; μP's attention scaling (1/d "
                             "logits) is not implemented here.")
        kinds[layer.name] = "input" if i == 0 or isinstance(layer, keras.layers.Embedding) else (
            "output" if i == len(found) - 1 else "hidden")
    return kinds


def _kernel(layer: keras.layers.Layer) -> keras.Variable:
    return layer.embeddings if isinstance(layer, keras.layers.Embedding) else layer.kernel


def _multipliers(kind: str, shape: tuple[int, ...], base_width: int, embedding: bool) -> tuple[float, float]:
    """(r of the kernel's growing dimension, r of the layer's outputs)."""
    n_in, n_out = (shape[0], shape[1]) if embedding else (shape[-2], shape[-1])
    r_out = 1.0 if kind == "output" else n_out / base_width  # a readout's outputs do not grow with width
    return (r_out if kind == "input" else n_in / base_width), r_out


def plan(model: keras.layers.Layer, base_width: int, optimizer: str = "adam") -> Any:
    """The μP table for ``model``: one row per trainable weight (layer, weight, kind, r,
    init std, learning-rate multiplier) for ``optimizer`` ``"adam"`` (also AdamW) or ``"sgd"``."""
    import pandas as pd

    base_width = check_int("base_width", base_width, 1, owner="mup")
    family = check_choice("optimizer", optimizer, ("adam", "sgd"), owner="mup")
    kinds = layer_kinds(model)
    rows = []
    for layer in weight_layers_in_order(model):
        kind = kinds[layer.name]
        kernel = _kernel(layer)
        embedding = isinstance(layer, keras.layers.Embedding)
        r, r_out = _multipliers(kind, tuple(kernel.shape), base_width, embedding)
        fan_in = 1 if embedding else int(np.prod(kernel.shape[:-1]))
        var = 1.0 / fan_in / (r if kind == "output" else 1.0)
        if family == "adam":
            lr = {"input": 1.0, "hidden": 1.0 / r, "output": 1.0 / r}[kind]
        else:
            lr = {"input": r, "hidden": 1.0, "output": 1.0 / r}[kind]
        rows.append({"layer": layer.name, "weight": kernel.path, "kind": kind, "r": r, "var_per_scale": var,
                     "lr_multiplier": lr})
        bias = getattr(layer, "bias", None)
        if isinstance(bias, keras.Variable):
            rows.append({"layer": layer.name, "weight": bias.path, "kind": f"{kind} bias", "r": r_out,
                         "var_per_scale": 0.0, "lr_multiplier": 1.0 if family == "adam" else r_out})
    return pd.DataFrame(rows, columns=["layer", "weight", "kind", "r", "var_per_scale", "lr_multiplier"])


def initialize(model: keras.layers.Layer, base_width: int, scale: float = 1.0, seed: int | None = None,
               zero_output: bool = False) -> Any:
    """Re-draw ``model``'s kernels with μP variances (table above; ``scale`` is the variance numerator:
    1 LeCun, 2 He) and zero its biases; ``zero_output=True`` starts the readout at 0 (allowed by μP).
    Returns :func:`plan` with the measured std of each kernel."""
    scale = check_real("scale", scale, owner="mup", positive=True)
    table = plan(model, base_width)
    layers = {la.name: la for la in weight_layers_in_order(model)}
    stds = []
    for i, row in enumerate(table.itertuples()):
        layer = layers[row.layer]
        var = _kernel(layer) if not row.kind.endswith("bias") else layer.bias
        shape, draw_seed = tuple(var.shape), None if seed is None else seed + i
        if row.kind.endswith("bias") or (zero_output and row.kind == "output"):
            values = np.zeros(shape, dtype=var.dtype)
        elif isinstance(layer, keras.layers.Embedding):  # one-hot inputs: fan_in = 1
            values = keras.random.normal(shape, stddev=scale**0.5, seed=draw_seed, dtype=var.dtype)
        else:
            numerator = scale / (row.r if row.kind == "output" else 1.0)
            values = VarianceScaling(numerator, "fan_in", "untruncated_normal", seed=draw_seed)(shape, dtype=var.dtype)
        var.assign(values)
        stds.append(float(np.std(to_numpy(var))))
    return table.assign(std=stds)


def optimizer(model: keras.layers.Layer, base_width: int, optimizer: Any = "adam", learning_rate: float = 1e-3,
              **kwargs: Any) -> keras.optimizers.Optimizer:
    """A Keras optimizer whose learning rate for each of ``model``'s weights is ``learning_rate`` times
    its μP multiplier (``plan(model, base_width, ...).lr_multiplier``).

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
    table = plan(model, base_width, family)
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


__all__ = ["KINDS", "initialize", "layer_kinds", "optimizer", "plan"]
