"""Finding residual blocks in a Keras model: ``find_residual_blocks(model)``.

A residual block is an addition ``y = s + f(x)`` (a ``keras.layers.Add`` layer or ``x + y`` on
symbolic tensors) whose two inputs meet at a common tensor ``x``: the *shortcut* side carries no
weight layer (identity) or fewer weight layers than the other (a projection), the *branch* side
``f`` carries m ≥ 1 weight layers. Found in functional models, Sequential models (of blocks), nested
models, and subclassed layers and models whose ``call`` can be traced on symbolic inputs (it uses
Keras layers and ``keras.ops`` / tensor operators only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras

from kerasinit.layers import DEPTHWISE, EMBEDDING, KERNEL, POINTWISE, iter_layers, layer_weights

#: Roles of the weights that make a layer a "weight layer" of a branch (:mod:`kerasinit.layers`).
WEIGHT_ROLES = (KERNEL, DEPTHWISE, POINTWISE, EMBEDDING)


@dataclass(frozen=True)
class ResidualBlock:
    """One residual block: ``output = shortcut(x) + branch(x)``.

    ``branch`` holds the branch's weight layers from input to output (a ``MultiHeadAttention``
    counts as one layer), ``norms`` its normalization layers (those with a ``gamma``), ``order``
    both kinds in the order data flows through them, ``shortcut`` the weight layers of a projection
    shortcut (empty for identity) and ``name`` the path of the addition (``"block_3/add"``).
    ``stack`` is ``"decoder"`` for the blocks of a Transformer decoder (see :func:`find_residual_blocks`),
    else ``"encoder"``.
    """

    index: int
    name: str
    branch: tuple[keras.layers.Layer, ...]
    norms: tuple[keras.layers.Layer, ...]
    order: tuple[keras.layers.Layer, ...]
    shortcut: tuple[keras.layers.Layer, ...]
    stack: str = "encoder"
    cross_attention: tuple[keras.layers.Layer, ...] = ()

    @property
    def depth(self) -> int:
        """m, the number of weight layers on the branch."""
        return len(self.branch)

    @property
    def attention(self) -> keras.layers.MultiHeadAttention | None:
        """The branch's first ``MultiHeadAttention`` layer, if any."""
        return next((la for la in self.branch if isinstance(la, keras.layers.MultiHeadAttention)), None)


def is_weight_layer(layer: keras.layers.Layer) -> bool:
    """A layer with a kernel (Dense, Conv*, EinsumDense, Embedding...) or a ``MultiHeadAttention``."""
    if isinstance(layer, keras.layers.MultiHeadAttention):
        return True
    return bool(layer_weights(layer, WEIGHT_ROLES))


def is_norm_layer(layer: keras.layers.Layer) -> bool:
    """A normalization layer with a scale ``gamma`` (BatchNormalization, LayerNormalization, ...)."""
    return isinstance(getattr(layer, "gamma", None), keras.Variable)


def _is_container(layer: Any) -> bool:
    """A layer whose own sublayers hold the structure (models, user blocks), not a Keras building block."""
    if not isinstance(layer, keras.layers.Layer) or isinstance(layer, keras.layers.MultiHeadAttention):
        return False
    if isinstance(layer, keras.Model):
        return True
    return bool(layer._layers) and not type(layer).__module__.startswith("keras.")


def _leaves(layer: Any) -> list[keras.layers.Layer]:
    """The weight and normalization layers of ``layer`` in order (itself, or its sublayers)."""
    if not isinstance(layer, keras.layers.Layer):
        return []
    if _is_container(layer):
        inner = list(iter_layers(layer))
        in_attention = {id(s) for mha in inner if isinstance(mha, keras.layers.MultiHeadAttention) for s in iter_layers(mha)}
        return [la for la in inner if (is_weight_layer(la) or is_norm_layer(la)) and not _is_container(la)
                and id(la) not in in_attention]
    return [layer] if is_weight_layer(layer) or is_norm_layer(layer) else []


def _producer(tensor: Any) -> Any:
    """The node that produced a symbolic tensor, or None for graph inputs."""
    history = getattr(tensor, "_keras_history", None)
    if history is None or history.operation is None:
        return None
    node = history.operation._inbound_nodes[history.node_index]
    return None if node.is_input else node


class _Graph:
    """The symbolic graph behind ``outputs``: nodes in topological order and each tensor's ancestors."""

    def __init__(self, outputs: list[Any]) -> None:
        self.nodes: list[Any] = []
        self.topo: dict[int, int] = {}
        self.ancestors: dict[int, frozenset[int]] = {}
        self.producer: dict[int, Any] = {}
        for t in outputs:
            self._visit(t)

    def _visit(self, tensor: Any) -> frozenset[int]:
        key = id(tensor)
        if key in self.ancestors:
            return self.ancestors[key]
        node = _producer(tensor)
        found = {key}
        if node is not None:
            for parent in node.input_tensors:
                found |= self._visit(parent)
            if all(n is not node for n in self.nodes):
                self.nodes.append(node)
        self.producer[key] = node
        self.topo[key] = len(self.topo)
        self.ancestors[key] = frozenset(found)
        return self.ancestors[key]

    def side(self, tensor: Any, start: int) -> list[Any]:
        """Operations strictly between the tensor ``start`` and ``tensor``, in topological order: those on
        a path from ``start`` (a side input joining the path, such as a cross-attention's memory, is not)."""
        keys = sorted((k for k in self.ancestors[id(tensor)] - self.ancestors[start] if start in self.ancestors[k]),
                      key=self.topo.__getitem__)
        return [self.producer[k].operation for k in keys if self.producer[k] is not None]


def _is_add(op: Any) -> bool:
    return type(op).__name__ == "Add" and type(op).__module__.startswith("keras.")


@contextlib.contextmanager
def _restoring_nodes(layer: keras.layers.Layer) -> Iterator[None]:
    """Tracing calls sublayers on symbolic tensors, which appends inbound nodes: drop them afterwards."""
    ops = [layer, *iter_layers(layer)]
    counts = [len(op._inbound_nodes) for op in ops]
    try:
        yield
    finally:
        for op, n in zip(ops, counts, strict=True):
            del op._inbound_nodes[n:]


def _traced_outputs(layer: keras.layers.Layer) -> list[Any] | None:
    """Output tensors of ``layer.call`` run on symbolic inputs of its build shape (None if untraceable).

    Must run inside :func:`_restoring_nodes`.
    """
    shapes = getattr(layer, "_build_shapes_dict", None)
    if not shapes or len(shapes) != 1:
        return None
    shape = next(iter(shapes.values()))
    if not isinstance(shape, tuple | list) or not all(d is None or isinstance(d, int) for d in shape):
        return None
    try:
        out = layer.call(keras.KerasTensor(tuple(shape)))
    except Exception:  # noqa: BLE001 - a call that needs real values cannot be traced: no blocks there
        return None
    return [t for t in keras.tree.flatten(out) if hasattr(t, "_keras_history")]


def _attention_inputs(node: Any) -> tuple[Any, list[Any]]:
    """(query, [value, key]) tensors of a MultiHeadAttention call, positional or by keyword."""
    args, kwargs = node.arguments.args, node.arguments.kwargs
    named = dict(zip(("query", "value", "key"), args, strict=False)) | kwargs
    memory = [t for t in (named.get("value"), named.get("key")) if hasattr(t, "_keras_history")]
    return named.get("query"), memory


def _cross_attentions(graph: _Graph) -> list[tuple[Any, Any, list[Any]]]:
    """(node, query, memory) of every cross-attention call: key/value another tensor than the query."""
    out = []
    for node in graph.nodes:
        if isinstance(node.operation, keras.layers.MultiHeadAttention):
            query, memory = _attention_inputs(node)
            if query is not None and any(t is not query for t in memory):
                out.append((node, query, memory))
    return out


def _stack(graph: _Graph, add_node: Any, branch: list[Any], cross: list[tuple[Any, Any, list[Any]]]) -> str:
    """``"decoder"`` when the block holds a cross-attention (or two attentions), feeds a cross-attention's
    query but not its memory, or comes after a cross-attention; else ``"encoder"``."""
    attentions = [la for la in branch if isinstance(la, keras.layers.MultiHeadAttention)]
    crossing = {id(node.operation) for node, _, _ in cross}
    if len(attentions) >= 2 or any(id(la) in crossing for la in attentions):
        return "decoder"
    out = id(add_node.outputs[0])
    for node, query, memory in cross:
        feeds_query = out in graph.ancestors[id(query)]
        feeds_memory = any(out in graph.ancestors[id(t)] for t in memory)
        after = any(id(t) in graph.ancestors.get(out, ()) for t in node.outputs)
        if (feeds_query and not feeds_memory) or after:
            return "decoder"
    return "encoder"


def _blocks_in(outputs: list[Any], path: str, found: list[ResidualBlock], seen: set[int]) -> None:
    graph = _Graph(outputs)
    cross = _cross_attentions(graph)
    cross_layers = {id(node.operation) for node, _, _ in cross}
    for node in graph.nodes:
        op = node.operation
        if _is_container(op) and id(op) not in seen:
            seen.add(id(op))
            _blocks_of(op, f"{path}{op.name}/", found, seen)
        if not _is_add(op) or len(node.input_tensors) != 2:
            continue
        a, b = node.input_tensors
        common = graph.ancestors[id(a)] & graph.ancestors[id(b)]
        if not common:
            continue
        start = max(common, key=graph.topo.__getitem__)
        sides = []
        for t in (a, b):
            layers = [la for op_ in graph.side(t, start) for la in _leaves(op_)]
            sides.append((sum(is_weight_layer(la) for la in layers), layers))
        (n_a, side_a), (n_b, side_b) = sides
        if n_a == n_b:
            continue  # two equal paths (or none): a sum, not a residual connection
        branch, shortcut = (side_a, side_b) if n_a > n_b else (side_b, side_a)
        weights = [la for la in branch if is_weight_layer(la)]
        found.append(ResidualBlock(
            index=len(found), name=f"{path}{op.name}",
            branch=tuple(weights),
            norms=tuple(la for la in branch if is_norm_layer(la) and not is_weight_layer(la)),
            order=tuple(branch), shortcut=tuple(la for la in shortcut if is_weight_layer(la)),
            stack=_stack(graph, node, weights, cross),
            cross_attention=tuple(la for la in weights if id(la) in cross_layers),
        ))


def _blocks_of(layer: keras.layers.Layer, path: str, found: list[ResidualBlock], seen: set[int]) -> None:
    functional = getattr(layer, "_functional", None) if isinstance(layer, keras.Sequential) else layer
    outputs = getattr(functional, "outputs", None) if isinstance(functional, keras.Model) else None
    if outputs and all(hasattr(t, "_keras_history") for t in keras.tree.flatten(outputs)):
        _blocks_in(list(keras.tree.flatten(outputs)), path, found, seen)
        return
    if isinstance(layer, keras.Sequential):  # no symbolic graph (built without an Input): its layers in turn
        for sub in layer.layers:
            if _is_container(sub) and id(sub) not in seen:
                seen.add(id(sub))
                _blocks_of(sub, f"{path}{sub.name}/", found, seen)
        return
    with _restoring_nodes(layer):
        traced = _traced_outputs(layer)
        if traced:
            _blocks_in(traced, path, found, seen)
            return
    for sub in layer._layers:  # untraceable: look for blocks inside its sublayers
        if _is_container(sub) and id(sub) not in seen:
            seen.add(id(sub))
            _blocks_of(sub, f"{path}{sub.name}/", found, seen)


def find_residual_blocks(model: keras.layers.Layer) -> list[ResidualBlock]:
    """The residual blocks of ``model`` in the order data flows through them.

    ``model`` must be built. Works on functional, Sequential, nested and subclassed models (the
    latter traced through ``call`` on symbolic inputs of their build shape). A block is in a
    Transformer **decoder** stack (``block.stack == "decoder"``) when its branch holds a
    cross-attention (a ``MultiHeadAttention`` called with key/value other than its query) or two
    attentions, or when, in a graph with cross-attention, it feeds a cross-attention's query but
    not its key/value (the decoder's self-attention and MLP blocks), or comes after one. Other
    blocks, self-attention-only stacks (decoder-only language models included) among them, are
    ``"encoder"`` blocks.
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"find_residual_blocks: argument `model` must be a Keras model or layer; received {type(model).__name__}.")
    if not model.built:
        raise ValueError("find_residual_blocks: argument `model` is not built yet; call it on data or build it first.")
    found: list[ResidualBlock] = []
    _blocks_of(model, "", found, {id(model)})
    return found


def weight_layers_in_order(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    """Every weight layer of ``model`` (MultiHeadAttention as one), outermost containers expanded."""
    return [la for la in _leaves(model) if is_weight_layer(la)] if _is_container(model) else _leaves(model)
