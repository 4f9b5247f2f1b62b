"""Which weights are prunable, and which layers a user selected.

Prunable by default: the kernels of Dense, EinsumDense, Conv1D/2D/3D, Conv*Transpose; the
depthwise kernel of DepthwiseConv; both kernels of SeparableConv; Embedding's embeddings; the
kernel and recurrent kernel of SimpleRNN/LSTM/GRU cells. Never biases or normalization weights.
A custom layer declares its own with a ``get_prunable_weights()`` method returning variables; a
weight ``w`` whose layer has a ``w_constraint`` attribute (Keras's convention, passed to
``add_weight`` and returned by ``get_config``) keeps its mask through ``load_model``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import keras

from kerasinit._layers import iter_layers

_L = keras.layers
#: layer types -> (weight attribute, layer attribute and constructor argument holding its constraint)
_BY_TYPE: list[tuple[tuple[type, ...], tuple[tuple[str, str], ...]]] = [
    ((_L.SeparableConv1D, _L.SeparableConv2D),
     (("depthwise_kernel", "depthwise_constraint"), ("pointwise_kernel", "pointwise_constraint"))),
    ((_L.DepthwiseConv1D, _L.DepthwiseConv2D), (("kernel", "depthwise_constraint"),)),
    ((_L.Dense, _L.EinsumDense, _L.Conv1D, _L.Conv2D, _L.Conv3D, _L.Conv1DTranspose, _L.Conv2DTranspose,
      _L.Conv3DTranspose), (("kernel", "kernel_constraint"),)),
    ((_L.Embedding,), (("embeddings", "embeddings_constraint"),)),
    ((_L.SimpleRNNCell, _L.LSTMCell, _L.GRUCell), (("kernel", "kernel_constraint"), ("recurrent_kernel", "recurrent_constraint"))),
]


@dataclass(frozen=True)
class PrunableWeight:
    """One prunable variable: its layer, the attribute naming it, and the variable."""

    layer: keras.layers.Layer
    attr: str
    variable: Any
    #: the layer attribute (and config key) holding the weight's constraint, if the layer has one
    constraint_attr: str | None = None
    #: set by :func:`select` when two layers share a name (two MultiHeadAttention's "query"): the variable path
    label: str | None = None

    @property
    def name(self) -> str:
        """``"layer/attr"``, or the variable path where that would be ambiguous."""
        return self.label or f"{self.layer.name}/{self.attr}"


def prunable_weights(layer: keras.layers.Layer) -> list[PrunableWeight]:
    """The prunable weights of one layer (its own, not its sublayers')."""
    custom = getattr(layer, "get_prunable_weights", None)
    if callable(custom):
        out = []
        for var in custom():
            attr = next((a for a in dir(layer) if not a.startswith("_") and getattr(layer, a, None) is var), var.name)
            slot = f"{attr}_constraint"  # Keras's convention: `kernel` is constrained by `kernel_constraint`
            out.append(PrunableWeight(layer, attr, var, slot if hasattr(layer, slot) else None))
        return out
    for types, attrs in _BY_TYPE:
        if isinstance(layer, types):
            out = []
            for a, c in attrs:
                var = getattr(layer, a, None)
                if not isinstance(var, keras.Variable):  # LoRA: `kernel` is a sum; the variable is `_kernel`
                    var = getattr(layer, "_" + a, None)
                if isinstance(var, keras.Variable):
                    out.append(PrunableWeight(layer, a, var, c))
            return out
    return []


def check_maskable(weight: PrunableWeight) -> None:
    """Raise ValueError if a mask on ``weight`` could not keep what it promises (exact zeros that stay)."""
    layer = weight.layer
    if getattr(layer, "lora_enabled", False):
        raise ValueError(
            f"cannot prune {weight.name!r}: layer {layer.name!r} has LoRA enabled, so its effective kernel is "
            "kernel + lora_a @ lora_b, not a variable a mask can zero. Prune before enable_lora(), or merge the "
            "LoRA weights into the kernel first."
        )
    if getattr(layer, "quantization_mode", None):
        raise ValueError(
            f"cannot prune {weight.name!r}: layer {layer.name!r} is quantized ({layer.quantization_mode!r}); "
            "prune the float model, then quantize it."
        )
    dtype = keras.backend.standardize_dtype(weight.variable.dtype)
    if "float" not in dtype:
        raise ValueError(f"cannot prune {weight.name!r}: its dtype is {dtype!r}; masks apply to floating-point weights only.")


Selector = str | re.Pattern[str] | type | Callable[[keras.layers.Layer], bool]


def matches(layer: Any, selector: Selector) -> bool:
    """Whether ``layer`` is chosen by ``selector`` (name, compiled regex, class or predicate)."""
    if isinstance(selector, str):
        return layer.name == selector
    if isinstance(selector, re.Pattern):
        return selector.fullmatch(layer.name) is not None
    if isinstance(selector, type):
        return isinstance(layer, selector)
    return bool(selector(layer))


def select(model: keras.layers.Layer, layers: Iterable[Selector] | Selector | None = None) -> list[PrunableWeight]:
    """Prunable weights of ``model`` in the layers chosen by ``layers``.

    ``layers``: None (every prunable layer) or selectors, each a layer name, a compiled regex
    (``re.compile("dense_.*")``, full match on the name), a layer class, or a predicate. A layer
    chosen by name that has nothing prunable, or a name that matches no layer, is an error.
    An RNN layer selects its cell.
    """
    if not model.built:
        raise ValueError("argument `model` is not built yet; build it (or call it on data) before pruning.")
    all_layers = list(iter_layers(model))
    if layers is None:
        chosen = all_layers
    else:
        selectors = [layers] if isinstance(layers, str | re.Pattern | type) or callable(layers) else list(layers)
        for sel in selectors:
            if not isinstance(sel, str | re.Pattern | type) and not callable(sel):
                raise TypeError(f"argument `layers` items must be names, regexes, classes or callables; received {sel!r}.")
        names = {layer.name for layer in all_layers}
        unknown = [s for s in selectors if isinstance(s, str) and s not in names]
        if unknown:
            raise ValueError(f"argument `layers` names unknown layers {unknown}; the model's layers: {sorted(names)}.")
        chosen = [layer for layer in all_layers if any(matches(layer, s) for s in selectors)]
        cells = [cell for layer in chosen if isinstance(getattr(layer, "cell", None), keras.layers.Layer)
                 for cell in [layer.cell]]
        chosen += [c for c in cells if c not in chosen]
    out: list[PrunableWeight] = []
    seen: set[int] = set()
    for layer in chosen:
        for w in prunable_weights(layer):
            if id(w.variable) not in seen:
                seen.add(id(w.variable))
                out.append(w)
    names = [w.name for w in out]
    out = [w if names.count(w.name) == 1 else dataclasses.replace(w, label=w.variable.path) for w in out]
    if not out:
        raise ValueError(
            "nothing to prune: no selected layer has prunable weights (Dense, EinsumDense, Conv*, DepthwiseConv*, "
            "SeparableConv*, Embedding, RNN cells, or a layer with get_prunable_weights())."
        )
    return out
