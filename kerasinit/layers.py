"""Walking a model, and ONE table of what each layer's weights are.

:func:`iter_layers` visits every layer of a model once (nested models and the sublayers of
subclassed models and layers included). :func:`layer_weights` says which variables of a layer are
its weight matrices and what role each plays, so that pruning, the monitor, ``reinitialize``,
LSUV, μP and the residual policies agree on what a layer's kernels are:

===================================================  ====================================  =========
layer classes                                        weights (role)                        prunable
===================================================  ====================================  =========
Dense, EinsumDense, Conv1D/2D/3D, Conv*Transpose     ``kernel`` (kernel)                    yes
DepthwiseConv1D/2D                                   ``kernel`` (depthwise)                 yes
SeparableConv1D/2D                                   ``depthwise_kernel`` (depthwise),      yes
                                                     ``pointwise_kernel`` (pointwise)
Embedding                                            ``embeddings`` (embedding)             yes
SimpleRNNCell, LSTMCell, GRUCell                     ``kernel`` (kernel),                   yes
                                                     ``recurrent_kernel`` (recurrent)
a class given to :func:`register_prunable`           the attributes it names                yes
a layer with ``get_prunable_weights()``              the variables it returns               yes
any other layer                                      Keras's attribute names above          no
===================================================  ====================================  =========

Biases and normalization weights are never in the table. ``MultiHeadAttention`` holds its four
projections as ``EinsumDense`` sublayers (:func:`attention_projections`). The table is also
TFMOT's ``PruneRegistry`` for Keras 3: :func:`register_prunable` declares the weights of a layer
class kerasinit does not know.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import keras

KERNEL, DEPTHWISE, POINTWISE, RECURRENT, EMBEDDING = "kernel", "depthwise", "pointwise", "recurrent", "embedding"
#: Every role a weight can play.
ROLES = (KERNEL, DEPTHWISE, POINTWISE, RECURRENT, EMBEDDING)

#: Keras's attribute names for weight matrices -> (role, attribute holding the constraint).
CONVENTION: dict[str, tuple[str, str]] = {
    "kernel": (KERNEL, "kernel_constraint"),
    "depthwise_kernel": (DEPTHWISE, "depthwise_constraint"),
    "pointwise_kernel": (POINTWISE, "pointwise_constraint"),
    "recurrent_kernel": (RECURRENT, "recurrent_constraint"),
    "embeddings": (EMBEDDING, "embeddings_constraint"),
}


@dataclass(frozen=True)
class WeightSpec:
    """One weight of a layer class: the attribute naming it, its role and its constraint's attribute."""

    attr: str
    role: str = KERNEL
    constraint: str | None = None


@dataclass(frozen=True)
class LayerWeight:
    """One weight of one layer: its spec, the variable, and whether it is prunable."""

    layer: keras.layers.Layer
    attr: str
    role: str
    variable: Any
    constraint: str | None
    prunable: bool


def iter_layers(model: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """Every layer inside ``model`` (nested models and sublayers of subclassed models included), once.

    Uses Keras's own recursive layer walk (``Layer._flatten_layers``), which sees sublayers that
    subclassed models and layers assign as attributes.
    """
    seen: set[int] = set()
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if id(layer) not in seen:
            seen.add(id(layer))
            yield layer


def _spec(attr: str, role: str | None = None, constraint: str | None = None) -> WeightSpec:
    conv_role, conv_constraint = CONVENTION.get(attr, (KERNEL, f"{attr}_constraint"))
    return WeightSpec(attr, role or conv_role, constraint or conv_constraint)


_L = keras.layers
#: The prunable-layer registry: layer classes -> their prunable weights. Later registrations are
#: looked up first (a user's subclass of Dense overrides Dense's entry).
_REGISTRY: list[tuple[tuple[type, ...], tuple[WeightSpec, ...]]] = [
    ((_L.SeparableConv1D, _L.SeparableConv2D), (_spec("depthwise_kernel"), _spec("pointwise_kernel"))),
    ((_L.DepthwiseConv1D, _L.DepthwiseConv2D), (_spec("kernel", DEPTHWISE, "depthwise_constraint"),)),
    ((_L.Dense, _L.EinsumDense, _L.Conv1D, _L.Conv2D, _L.Conv3D, _L.Conv1DTranspose, _L.Conv2DTranspose,
      _L.Conv3DTranspose), (_spec("kernel"),)),
    ((_L.Embedding,), (_spec("embeddings"),)),
    ((_L.SimpleRNNCell, _L.LSTMCell, _L.GRUCell), (_spec("kernel"), _spec("recurrent_kernel"))),
]


def register_prunable(layer_class: type, weights: Sequence[str] = ("kernel",),
                      roles: Sequence[str] | None = None) -> type:
    """Declare the prunable weights of ``layer_class`` (TFMOT's ``PrunableLayer``/``PruneRegistry`` parity).

    ``weights``: the attribute names of the layer's weight variables (``"kernel"``, ``"w"``...).
    ``roles``: one role per weight (default from Keras's naming, else ``"kernel"``). A weight ``w``
    whose layer has a ``w_constraint`` attribute keeps its mask through ``load_model``. Pruning, the
    monitor, ``reinitialize`` and LSUV then treat those weights as the layer's kernels. Returns
    ``layer_class``, so it can decorate a class definition.
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)):
        raise TypeError(f"register_prunable: argument `layer_class` must be a keras.layers.Layer subclass; "
                        f"received {layer_class!r}.")
    names = [weights] if isinstance(weights, str) else list(weights)
    if not names or not all(isinstance(n, str) and n.isidentifier() for n in names):
        raise ValueError(f"register_prunable: argument `weights` must be one or more attribute names; received {weights!r}.")
    chosen = [None] * len(names) if roles is None else list(roles)
    if len(chosen) != len(names) or not all(r is None or r in ROLES for r in chosen):
        raise ValueError(f"register_prunable: argument `roles` must give one of {list(ROLES)} per weight "
                         f"({len(names)}); received {roles!r}.")
    specs = tuple(_spec(n, r) for n, r in zip(names, chosen, strict=True))
    _REGISTRY[:] = [entry for entry in _REGISTRY if entry[0] != (layer_class,)]
    _REGISTRY.insert(0, ((layer_class,), specs))
    return layer_class


def registered_specs(layer: Any) -> tuple[WeightSpec, ...] | None:
    """The registered weight specs of ``layer``'s class, or None if it is not registered."""
    for types, specs in _REGISTRY:
        if isinstance(layer, types):
            return specs
    return None


def _variable(layer: Any, attr: str) -> Any:
    try:
        var = getattr(layer, attr, None)
    except (AttributeError, ValueError):  # a property of an unbuilt layer
        var = None
    if not isinstance(var, keras.Variable):  # LoRA: `kernel` is a sum; the variable is `_kernel`
        var = getattr(layer, "_" + attr, None)
    return var if isinstance(var, keras.Variable) else None


def layer_weights(layer: Any, roles: Sequence[str] | None = None, *, prunable: bool | None = None) -> list[LayerWeight]:
    """The weight matrices of ``layer`` itself (not its sublayers), per the table above.

    ``roles``: keep only these roles, in the layer's own order. ``prunable``: True for the
    prunable ones only (registered classes and ``get_prunable_weights()``), False for the others.
    Models have no weights of their own here.
    """
    out: list[LayerWeight] = []
    custom = getattr(layer, "get_prunable_weights", None)
    specs = registered_specs(layer)
    if callable(custom):
        for var in custom():
            attr = next((a for a in dir(layer) if not a.startswith("_") and getattr(layer, a, None) is var), var.name)
            spec = _spec(attr)
            constraint = spec.constraint if spec.constraint and hasattr(layer, spec.constraint) else None
            out.append(LayerWeight(layer, attr, spec.role, var, constraint, True))
    elif isinstance(layer, keras.Model):
        return []
    elif specs is not None:
        for spec in specs:
            var = _variable(layer, spec.attr)
            if var is not None:
                constraint = spec.constraint if spec.constraint and hasattr(layer, spec.constraint) else None
                out.append(LayerWeight(layer, spec.attr, spec.role, var, constraint, True))
    else:
        for attr, (role, constraint) in CONVENTION.items():
            var = _variable(layer, attr)
            if var is not None:
                out.append(LayerWeight(layer, attr, role, var, constraint if hasattr(layer, constraint) else None, False))
    if roles is not None:
        out = [w for w in out if w.role in roles]
    if prunable is not None:
        out = [w for w in out if w.prunable == prunable]
    return out


def main_weight(layer: Any, preference: Sequence[str] = (KERNEL, DEPTHWISE, EMBEDDING)) -> LayerWeight | None:
    """The first weight of ``layer`` by role ``preference`` (the weight a per-layer statistic describes)."""
    found = layer_weights(layer, preference)
    for role in preference:
        for w in found:
            if w.role == role:
                return w
    return None


def functional_graph(model: Any) -> Any:
    """The Functional object holding ``model``'s graph (a Sequential keeps one inside), or None (subclassed).

    The one place kerasinit reads Keras's graph internals (``_functional``, ``_nodes_by_depth``,
    ``_run_through_graph``): monitor probes and LSUV run a batch through a model layer by layer.
    """
    if hasattr(model, "_nodes_by_depth"):
        return model
    inner = getattr(model, "_functional", None)
    return inner if hasattr(inner, "_nodes_by_depth") else None


def graph_nodes(model: Any, layer: Any) -> list[Any] | None:
    """The nodes (calls) of ``layer`` in ``model``'s graph, or None if the graph cannot be read.

    ``layer.output`` is not enough: it is the layer's first call ever, which for a reloaded
    Sequential model is a call outside the model's graph, and it hides shared layers.
    """
    graph = functional_graph(model)
    if graph is None:
        return None
    return [node for nodes in graph._nodes_by_depth.values() for node in nodes if getattr(node, "operation", None) is layer]


def run_graph(graph: Any, inputs: Any, operation_fn: Any) -> Any:
    """Run ``inputs`` through a :func:`functional_graph` as Keras does, each layer ``op`` called as
    ``operation_fn(op)(*args, **kwargs)`` (a hook that may record or change what the layer does)."""
    return graph._run_through_graph(graph._standardize_inputs(inputs), operation_fn=operation_fn)


#: MultiHeadAttention's projections, in data order.
ATTENTION_PARTS = ("query", "key", "value", "output")


def attention_projections(layer: keras.layers.MultiHeadAttention) -> dict[str, keras.layers.Layer]:
    """``{"query" | "key" | "value" | "output": EinsumDense}`` of a built ``MultiHeadAttention``."""
    return {part: getattr(layer, f"_{part}_dense") for part in ATTENTION_PARTS}
