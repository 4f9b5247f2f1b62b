"""Which weights are prunable, and which layers a user selected.

Prunable: the weights of the table in :mod:`kerasinit.layers` (the kernels of Dense, EinsumDense,
Conv*, DepthwiseConv*, SeparableConv*, Embedding and RNN cells; never biases or normalization
weights), of a layer class declared with :func:`kerasinit.layers.register_prunable`, or returned by
a layer's own ``get_prunable_weights()``. A weight ``w`` whose layer has a ``w_constraint``
attribute (Keras's convention, passed to ``add_weight`` and returned by ``get_config``) keeps its
mask through ``load_model``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import keras

from kerasinit.layers import iter_layers, layer_weights


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
    """The prunable weights of one layer (its own, not its sublayers'), from :func:`kerasinit.layers.layer_weights`."""
    return [PrunableWeight(w.layer, w.attr, w.variable, w.constraint) for w in layer_weights(layer, prunable=True)]


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
            "SeparableConv*, Embedding, RNN cells, a class given to register_prunable, or a layer with "
            "get_prunable_weights())."
        )
    return out
