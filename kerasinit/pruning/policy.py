"""Pruning policies: which layers a deployment target can run sparse, and whether the model fits it.

A policy (TFMOT's ``PruningPolicy``) is an object with ``check(model) -> notes`` (a ValueError
naming the layer and the reason when the model cannot be run sparse by the target; notes for
what may keep the target from running it sparse without changing which layers are pruned) and
``select(model, weights) -> weights`` (the prunable weights the target runs sparse). Policies are
registered by name (:func:`register_pruning_policy`) and picked with ``policy="name"`` in
:func:`~kerasinit.pruning.prune`, :class:`~kerasinit.pruning.Pruner`,
:class:`~kerasinit.pruning.PruningCallback` and :func:`~kerasinit.pruning.prune_at_init`; an
instance of a :class:`PruningPolicy` subclass is accepted as well.

``"xnnpack"`` (:class:`XNNPackPolicy`, TFMOT's ``PruneForLatencyOnXNNPack``): XNNPack's sparse
inference (Elsen, Dukhan, Gale & Simonyan, "Fast Sparse ConvNets", CVPR 2020; the TFLite XNNPack
delegate's README, "Sparse Inference") runs in NCHW a subgraph that

* starts with a 3×3 stride-2 ``Conv2D`` over 3 input channels (no dilation, one group), the first
  layer with weights after each input (weightless preprocessing such as ``Rescaling`` or
  ``ZeroPadding2D`` may come before it);
* ends with a spatial mean (``GlobalAveragePooling2D``) on every path to an output;
* holds in between only 1×1 ``Conv2D`` (stride 1, no dilation, one group), 3×3 or 5×5
  ``DepthwiseConv2D`` (stride 1 or 2, depth multiplier 1, no dilation), ``BatchNormalization``
  over the channels, ``Add``/``Multiply``, ``ZeroPadding2D``, ``Dropout``, bilinear
  ``UpSampling2D``, ``ReLU``/``LeakyReLU``/``ELU`` and ``Activation`` relu, relu6, leaky_relu, elu,
  sigmoid, hard_sigmoid, hard_silu (hard_swish);
* every layer channels-last (TFLite's NHWC).

Only the 1×1 convolutions inside that subgraph are pruned (XNNPack's sparse kernels are 1×1
convolutions; the stem, the depthwise convolutions and a classifier after the pooling stay dense).
TFMOT's ``allow_pruning`` takes every 1×1 ``Conv2D`` of the model, also after the pooling; here
those stay dense, since XNNPack runs them dense.

XNNPack also needs padding 1 on each side of the stem and of the stride-2 depthwise convolutions
(``ZeroPadding2D(1)`` then ``padding="valid"``, as TFMOT requires); ``padding="same"`` at stride 2
pads (0, 1) on even input sizes, as ``keras.applications.MobileNetV2`` does. Those models are
accepted (the layers pruned are the same) with a note: warned (:class:`PolicyWarning`) and listed in
``pruner.policy_notes``, since XNNPack may then run the subgraph dense. So is a target sparsity below
2/3: XNNPack needs at least 2/3 of the 1×1 weights to be zeros.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import keras

from kerasinit.layers import functional_graph
from kerasinit.pruning.selection import PrunableWeight

_L = keras.layers


class PolicyWarning(UserWarning):
    """The model passes a pruning policy's check, but the target may not run it sparse (the note says why)."""


class PruningPolicy:
    """Base class: which layers a deployment target runs sparse (subclass and :func:`register_pruning_policy`)."""

    name: ClassVar[str] = ""

    def check(self, model: keras.layers.Layer) -> list[str]:
        """Raise ValueError (naming the layer and why) if the target cannot run ``model`` sparse; return notes."""
        return []

    def select(self, model: keras.layers.Layer, weights: Sequence[PrunableWeight]) -> list[PrunableWeight]:
        """The weights of ``weights`` the target runs sparse."""
        return list(weights)

    def sparsity_notes(self, sparsity: float) -> list[str]:
        """Notes on a target sparsity the target would not exploit."""
        return []


#: name -> registered :class:`PruningPolicy` subclass.
POLICIES: dict[str, type[PruningPolicy]] = {}


def register_pruning_policy(name: str) -> Callable[[type[PruningPolicy]], type[PruningPolicy]]:
    """Class decorator: register a :class:`PruningPolicy` subclass under ``name`` (``policy="name"``)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"register_pruning_policy: argument `name` must be an identifier string; received {name!r}.")

    def decorate(cls: type[PruningPolicy]) -> type[PruningPolicy]:
        if not (isinstance(cls, type) and issubclass(cls, PruningPolicy)):
            raise TypeError(f"register_pruning_policy({name!r}): expected a PruningPolicy subclass; received {cls!r}.")
        if name in POLICIES and POLICIES[name] is not cls:
            raise ValueError(f"register_pruning_policy: a policy named {name!r} is registered already.")
        cls.name = name
        POLICIES[name] = cls
        return cls

    return decorate


def get_policy(policy: Any, owner: str) -> PruningPolicy | None:
    """``policy`` (None, a registered name or a :class:`PruningPolicy`) as an instance, or None."""
    if policy is None or isinstance(policy, PruningPolicy):
        return policy
    if isinstance(policy, str) and policy in POLICIES:
        return POLICIES[policy]()
    raise ValueError(f"{owner}: argument `policy` must be None, one of {sorted(POLICIES)} or a "
                     f"kerasinit.pruning.policy.PruningPolicy; received {policy!r}.")


def apply_policy(policy: PruningPolicy, model: keras.layers.Layer, weights: Sequence[PrunableWeight],
                 explicit: bool, owner: str) -> tuple[list[PrunableWeight], list[str]]:
    """The weights ``policy`` keeps of ``weights`` and its notes (warned, :class:`PolicyWarning`).

    ``explicit``: the weights were chosen with ``layers``; then leaving one out is an error, not a
    silent drop.
    """
    notes = list(policy.check(model))
    kept = policy.select(model, weights)
    if explicit:
        dropped = [w.name for w in weights if w not in kept]
        if dropped:
            raise ValueError(f"{owner}: policy {policy.name!r} does not prune {dropped} (chosen with `layers`); "
                             f"it prunes {[w.name for w in kept] or 'none of them'}.")
    if not kept:
        raise ValueError(f"{owner}: policy {policy.name!r} selects no weight of the model to prune.")
    warn_notes(owner, policy, notes, stacklevel=4)
    return kept, notes


def warn_notes(owner: str, policy: PruningPolicy, notes: Sequence[str], stacklevel: int = 3) -> None:
    """One :class:`PolicyWarning` listing ``notes``."""
    if notes:
        warnings.warn(f"{owner}: policy {policy.name!r}: " + " ".join(notes), PolicyWarning, stacklevel=stacklevel)


# ---------------------------------------------------------------------------------------------- XNNPack
_ACTIVATIONS = ("relu", "relu6", "leaky_relu", "elu", "sigmoid", "hard_sigmoid", "hard_silu", "hard_swish")
_OPS = ("Add", "Subtract", "Multiply")  # keras.ops called on symbolic tensors (x + y in a functional model)
#: the sparsity XNNPack needs in its subgraph's 1×1 convolutions before it runs them sparse
XNNPACK_MIN_SPARSITY = 2.0 / 3.0


def _describe(layer: Any) -> str:
    return f"layer {layer.name!r} ({type(layer).__name__})"


class _Graph:
    """Producers and consumers of every operation of a functional model's graph."""

    def __init__(self, model: Any) -> None:
        graph = functional_graph(model)
        if graph is None:
            raise ValueError(f"policy 'xnnpack': model {model.name!r} is subclassed; the policy reads a Sequential or "
                             "functional model's graph (XNNPack's subgraph rule is about how layers connect).")
        self.producers: dict[int, list[Any]] = {}
        self.consumers: dict[int, list[Any]] = {}
        self.ops: dict[int, Any] = {}
        for nodes in graph._nodes_by_depth.values():
            for node in nodes:
                op = node.operation
                self.ops[id(op)] = op
                self.producers.setdefault(id(op), [])
                self.consumers.setdefault(id(op), [])
                for parent in node.parent_nodes:
                    self.ops[id(parent.operation)] = parent.operation
                    self.producers[id(op)].append(parent.operation)
                    self.consumers.setdefault(id(parent.operation), []).append(op)
        self.inputs = [t._keras_history.operation for t in graph.inputs]
        self.outputs = {id(t._keras_history.operation) for t in graph.outputs}


def _has_weights(layer: Any) -> bool:
    return bool(getattr(layer, "trainable_weights", None))


def _channels_last(layer: Any) -> bool:
    return getattr(layer, "data_format", "channels_last") == "channels_last"


def _pad(graph: _Graph, layer: Any) -> Any:
    """The ``ZeroPadding2D`` feeding ``layer`` (its only producer), or None."""
    producers = graph.producers.get(id(layer), [])
    return producers[0] if len(producers) == 1 and isinstance(producers[0], _L.ZeroPadding2D) else None


def _padding_note(graph: _Graph, layer: Any, k: int) -> str | None:
    """A note if ``layer`` (a k×k convolution) is not padded ``k // 2`` on each side, as XNNPack needs."""
    p = k // 2
    stride = tuple(layer.strides)
    if layer.padding == "same" and stride == (1, 1):
        return None  # TFLite pads SAME at stride 1 by k // 2 on each side
    pad = _pad(graph, layer)
    if layer.padding == "valid" and pad is not None and tuple(map(tuple, pad.padding)) == ((p, p), (p, p)):
        return None
    how = (f"padding='same' at stride {stride} (TFLite pads SAME (0, 1) on even input sizes)" if layer.padding == "same"
           else f"padding='valid' after {'no ZeroPadding2D' if pad is None else f'ZeroPadding2D({pad.padding})'}")
    return (f"{_describe(layer)} has {how}, where XNNPack's sparse subgraph needs padding {p} on each side "
            f"(ZeroPadding2D({p}) then padding='valid').")


def _support(graph: _Graph, layer: Any) -> tuple[str | None, str | None]:
    """(why ``layer`` cannot be inside XNNPack's sparse subgraph, or None; a padding note, or None)."""
    if isinstance(layer, keras.Model):
        return "a nested model: the policy reads a flat graph (build the model from its layers)", None
    if not _channels_last(layer):
        return "data_format='channels_first': TFLite and XNNPack run channels-last (NHWC)", None
    if isinstance(layer, _L.DepthwiseConv2D):
        k, s = tuple(layer.kernel_size), tuple(layer.strides)
        if k not in ((3, 3), (5, 5)) or s not in ((1, 1), (2, 2)) or layer.depth_multiplier != 1 \
                or tuple(layer.dilation_rate) != (1, 1):
            return (f"a DepthwiseConv2D of kernel {k}, strides {s}, depth_multiplier {layer.depth_multiplier}, "
                    f"dilation {tuple(layer.dilation_rate)}; XNNPack's sparse subgraph takes 3×3 or 5×5, stride 1 or 2, "
                    "depth multiplier 1, no dilation"), None
        return None, _padding_note(graph, layer, k[0])
    if isinstance(layer, _L.Conv2D) and type(layer).__name__ != "Conv2DTranspose":
        k, s = tuple(layer.kernel_size), tuple(layer.strides)
        if k != (1, 1) or s != (1, 1) or tuple(layer.dilation_rate) != (1, 1) or layer.groups != 1:
            return (f"a Conv2D of kernel {k}, strides {s}, dilation {tuple(layer.dilation_rate)}, groups {layer.groups}; "
                    "after its first convolution XNNPack's sparse subgraph takes 1×1 Conv2D only (stride 1, no "
                    "dilation, one group)"), None
        return None, None
    if isinstance(layer, _L.BatchNormalization):
        axis = layer.axis if isinstance(layer.axis, int) else list(layer.axis)
        return (None, None) if axis in (-1, 3, [-1], [3]) else (f"a BatchNormalization over axis {axis}, not the channels", None)
    if isinstance(layer, _L.UpSampling2D):
        return (None, None) if layer.interpolation == "bilinear" else (
            f"an UpSampling2D with interpolation={layer.interpolation!r}; XNNPack's sparse subgraph takes 'bilinear'", None)
    if isinstance(layer, _L.Activation):
        name = getattr(layer.activation, "__name__", str(layer.activation))
        return (None, None) if name in _ACTIVATIONS else (
            f"activation {name!r}; XNNPack's sparse subgraph takes {list(_ACTIVATIONS)}", None)
    if isinstance(layer, _L.Add | _L.Multiply | _L.ZeroPadding2D | _L.ReLU | _L.LeakyReLU | _L.ELU | _L.Dropout):
        return None, None
    if type(layer).__module__.startswith("keras.src.ops") and type(layer).__name__ in _OPS:
        return None, None
    return ("not an operation XNNPack's sparse subgraph holds (1×1 Conv2D, DepthwiseConv2D 3×3/5×5, "
            "BatchNormalization, Add, Multiply, ZeroPadding2D, Dropout, bilinear UpSampling2D, ReLU, LeakyReLU, ELU, "
            "Activation), before its GlobalAveragePooling2D"), None


def _start_issue(layer: Any) -> str | None:
    """Why ``layer`` cannot start XNNPack's sparse subgraph, or None."""
    if not isinstance(layer, _L.Conv2D) or type(layer).__name__ == "Conv2DTranspose":
        return "it is not a Conv2D"
    k, s = tuple(layer.kernel_size), tuple(layer.strides)
    c_in = int(layer.kernel.shape[-2]) if getattr(layer, "kernel", None) is not None else None
    bad = [f"kernel {k}" if k != (3, 3) else "", f"strides {s}" if s != (2, 2) else "",
           f"{c_in} input channels" if c_in != 3 else "",
           f"dilation {tuple(layer.dilation_rate)}" if tuple(layer.dilation_rate) != (1, 1) else "",
           f"groups {layer.groups}" if layer.groups != 1 else "",
           "data_format='channels_first'" if not _channels_last(layer) else ""]
    bad = [b for b in bad if b]
    return f"it is a Conv2D with {', '.join(bad)}" if bad else None


@register_pruning_policy("xnnpack")
class XNNPackPolicy(PruningPolicy):
    """TFMOT's ``PruneForLatencyOnXNNPack``: prune the 1×1 convolutions of XNNPack's sparse subgraph.

    See the module docstring for the subgraph rule. ``check`` raises a ValueError naming the first
    layer that breaks it and why.
    """

    def _analyse(self, model: Any) -> tuple[list[Any], list[str]]:
        """(the subgraph's layers in visiting order, the notes)."""
        graph = _Graph(model)
        notes: list[str] = []
        starts: list[Any] = []
        for inp in graph.inputs:  # forward through weightless preprocessing to the first layer with weights
            todo, seen = [inp], {id(inp)}
            while todo:
                layer = todo.pop(0)
                if layer is not inp and _has_weights(layer):
                    issue = _start_issue(layer)
                    if issue is not None:
                        raise ValueError(
                            f"policy 'xnnpack': {_describe(layer)} is the first layer with weights after input "
                            f"{inp.name!r}, but {issue}. XNNPack's sparse subgraph must start with a 3×3 stride-2 "
                            "Conv2D over 3 input channels (no dilation, one group, channels-last).")
                    if layer not in starts:
                        starts.append(layer)
                    continue
                if id(layer) in graph.outputs or not graph.consumers.get(id(layer)):
                    raise ValueError(f"policy 'xnnpack': input {inp.name!r} reaches output {layer.name!r} without a "
                                     "convolution; XNNPack's sparse subgraph must start with a 3×3 stride-2 Conv2D.")
                for nxt in graph.consumers[id(layer)]:
                    if id(nxt) not in seen:
                        seen.add(id(nxt))
                        todo.append(nxt)
        for start in starts:
            note = _padding_note(graph, start, 3)
            if note:
                notes.append(note)
        inside: list[Any] = []
        seen = {id(s) for s in starts}
        todo = [c for s in starts for c in graph.consumers.get(id(s), [])]
        while todo:
            layer = todo.pop(0)
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            if isinstance(layer, _L.GlobalAveragePooling2D):
                continue  # the end of the subgraph on this path
            why, note = _support(graph, layer)
            if why is not None:
                raise ValueError(f"policy 'xnnpack': {_describe(layer)} is {why}." if why.startswith(("a ", "an ", "not "))
                                 else f"policy 'xnnpack': {_describe(layer)} has {why}.")
            if note:
                notes.append(note)
            if id(layer) in graph.outputs or not graph.consumers.get(id(layer)):
                raise ValueError(f"policy 'xnnpack': {_describe(layer)} is a model output reached from the first "
                                 "convolution without a GlobalAveragePooling2D; XNNPack's sparse subgraph must end with "
                                 "a spatial mean on every path to an output.")
            inside.append(layer)
            todo.extend(graph.consumers[id(layer)])
        return inside, notes

    def check(self, model: keras.layers.Layer) -> list[str]:
        return self._analyse(model)[1]

    def select(self, model: keras.layers.Layer, weights: Sequence[PrunableWeight]) -> list[PrunableWeight]:
        inside = {id(layer) for layer in self._analyse(model)[0]
                  if isinstance(layer, _L.Conv2D) and tuple(layer.kernel_size) == (1, 1)}
        return [w for w in weights if id(w.layer) in inside and w.attr == "kernel"]

    def sparsity_notes(self, sparsity: float) -> list[str]:
        if sparsity < XNNPACK_MIN_SPARSITY - 1e-9:
            return [f"target sparsity {sparsity:g} is below 2/3: XNNPack runs the 1×1 convolutions sparse only when at "
                    "least 2/3 of their weights are zeros."]
        return []


def layer_names(weights: Iterable[PrunableWeight]) -> list[str]:
    """The layer names of ``weights``, in order, once each."""
    out: list[str] = []
    for w in weights:
        if w.layer.name not in out:
            out.append(w.layer.name)
    return out
