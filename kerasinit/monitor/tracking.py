"""What :class:`~kerasinit.monitor.VarianceMonitor` tracks in a model, and the probe network that reads it.

:func:`plan` walks a model once and returns its :class:`Entry` list: one entry per recorded name
(the ``layer`` column of a record), each with the weight it describes (from the one weight table,
:func:`kerasinit.layers.layer_weights`) and whether its layer's output is recorded:

* a layer with weights of its own (Dense, Conv, Embedding, ...): its main weight
  (:func:`kerasinit.layers.main_weight`) and its output under its name; its other weights under
  ``name/attr`` (a SeparableConv's ``pointwise_kernel``);
* a layer whose weights live in sublayers (``LSTM``/``GRU`` and their cell, ``MultiHeadAttention``
  and its four ``EinsumDense`` projections, ``Bidirectional``, a custom block): when a single
  sublayer holds them (an RNN's cell), they are the layer's own (``lstm``,
  ``lstm/recurrent_kernel``); otherwise each sublayer's under ``name/sublayer`` (``mha/query``,
  ``mha/key``, ``mha/value``, ``mha/attention_output``) and the layer's output under ``name``;
* a nested model (a ``keras.applications`` backbone inside a transfer model): its layers, named
  by path (``"mobilenetv2_0.35_32/Conv1"``); their outputs are read inside the nested model's own
  graph while the outer graph runs (:class:`ProbeNet`).

An output that cannot be read (subclassed models have no graph; a shared layer or nested model
called more than once has no single output) is listed with its reason in ``skipped``; its weights
are still recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras

from kerasinit.layers import LayerWeight, functional_graph, graph_nodes, layer_weights, main_weight

SUBCLASSED = (
    "subclassed model: its layer outputs are not reachable without a functional graph "
    "(weights and kernel gradients are still recorded)"
)


@dataclass
class Site:
    """One layer at its place in the model: ``path`` names it, ``graph`` is the chain of graph
    models from the root to the graph holding its (single) call, ``tensor`` its symbolic output
    there (None with ``reason`` when it cannot be read)."""

    path: str
    layer: Any
    graph: tuple[Any, ...] | None
    tensor: Any = None
    first_output: bool = False
    reason: str | None = None
    is_output: bool = False


@dataclass
class Entry:
    """One recorded name: the weight it describes (or None) and whether its site's output is recorded."""

    name: str
    site: Site
    weight: LayerWeight | None
    activation: bool

    @property
    def layer(self) -> Any:
        return self.site.layer


def is_graph_model(model: Any) -> bool:
    """Sequential and functional models have a symbolic graph whose layer outputs can be reached."""
    if not isinstance(model, keras.Model):
        return False
    if isinstance(model, keras.Sequential) and getattr(model, "_functional", None) is None:
        return False
    try:
        return bool(getattr(model, "inputs", None)) and bool(getattr(model, "outputs", None))
    except (AttributeError, ValueError):
        return False


def _single(outputs: Any) -> Any:
    return outputs[0] if isinstance(outputs, list | tuple) and len(outputs) == 1 else outputs


def _children(layer: Any) -> list[Any]:
    """A layer's direct sublayers (a model's layers), Input layers left out."""
    if isinstance(layer, keras.Model):
        children = list(layer.layers)
    else:
        children = list(layer._flatten_layers(include_self=False, recursive=False))
    return [c for c in children if not isinstance(c, keras.layers.InputLayer)]


def _reach(graph_model: Any, layer: Any) -> tuple[Any, bool, str | None]:
    """``(symbolic output, first of several, None)`` of ``layer``'s single call in ``graph_model``,
    or ``(None, False, reason)``. An RNN with ``return_state`` has its sequence/last output read."""
    nodes = graph_nodes(graph_model, layer)
    if nodes is not None and len(nodes) != 1:
        if nodes:
            return None, False, f"shared layer called {len(nodes)} times in the graph; its output is ambiguous"
        return None, False, "layer is not part of the model's graph"
    try:
        tensor = _single(nodes[0].outputs) if nodes is not None else layer.output
    except (AttributeError, ValueError, RuntimeError) as err:
        return None, False, f"output not reachable ({err})"
    if isinstance(tensor, list | tuple) and isinstance(layer, keras.layers.RNN | keras.layers.Bidirectional):
        return tensor[0], True, None
    if isinstance(tensor, list | tuple | dict):
        return None, False, "layer has several outputs"
    return tensor, False, None


def sites(model: Any) -> list[Site]:
    """Every layer of ``model`` once, depth first in model order, with where its output can be read.

    A nested model is a site itself (its output) and so are its layers, named ``"model/layer"``.
    """
    found: list[Site] = []
    seen: set[int] = set()

    def walk(container: Any, prefix: str, chain: tuple[Any, ...] | None, reason: str | None,
             container_out: bool) -> None:
        outputs = {id(t) for t in keras.tree.flatten(functional_graph(container).outputs)} if chain is not None else set()
        for layer in _children(container):
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            path = prefix + layer.name
            site = Site(path, layer, chain, reason=reason)
            if chain is not None:
                site.tensor, site.first_output, site.reason = _reach(container, layer)
                site.is_output = container_out and site.tensor is not None and id(site.tensor) in outputs
            found.append(site)
            if isinstance(layer, keras.Model):
                if site.tensor is not None and is_graph_model(layer):
                    walk(layer, path + "/", chain + (layer,), None, site.is_output)
                elif chain is None:
                    walk(layer, path + "/", None, reason, False)
                elif not is_graph_model(layer):
                    walk(layer, path + "/", None, f"inside '{path}', a {SUBCLASSED}", False)
                else:
                    walk(layer, path + "/", None, f"inside the nested model '{path}', whose output is not "
                         f"readable: {site.reason}", False)

    graph = is_graph_model(model)
    walk(model, "", (model,) if graph else None, None if graph else SUBCLASSED, True)
    return found


def weights_of(layer: Any, name: str) -> list[tuple[str, LayerWeight]]:
    """``[(name, weight)]`` of a layer and its sublayers, named as the module docstring says."""
    own = layer_weights(layer)
    main = main_weight(layer)
    ordered = ([main] + [w for w in own if w.variable is not main.variable]) if main is not None else own
    out = [(name if i == 0 else f"{name}/{w.attr}", w) for i, w in enumerate(ordered)]
    kids = [(child, weights_of(child, f"{name}/{child.name}")) for child in _children(layer)]
    kids = [(child, found) for child, found in kids if found]
    if not own and len(kids) == 1:  # a wrapper (an RNN and its cell): its only weighted sublayer's weights are its own
        child, found = kids[0]
        prefix = f"{name}/{child.name}"
        return [(name + n[len(prefix):], w) for n, w in found]
    for _, found in kids:
        out.extend(found)
    return out


def entries_of(site: Site, whole_model: bool = False) -> list[Entry]:
    """The entries of one site; ``whole_model``: a nested model chosen by name is recorded as its output."""
    if isinstance(site.layer, keras.Model) and whole_model:
        return [Entry(site.path, site, None, True)]
    named = weights_of(site.layer, site.path)
    entries = [Entry(n, site, w, n == site.path) for n, w in named]
    if not any(e.activation for e in entries):
        entries.append(Entry(site.path, site, None, True))
    return entries


def plan(model: Any, chosen: Sequence[str | keras.layers.Layer] | None = None) -> list[Entry]:
    """The entries to record: by default every layer (at any depth) with a weight in the table and
    the layers that hold such weights in sublayers; else the chosen layers (names or paths, or
    layer objects), in model order."""
    all_sites = sites(model)
    if chosen is None:
        entries: list[Entry] = []
        for site in all_sites:
            if isinstance(site.layer, keras.Model):
                continue  # its layers are sites of their own
            if weights_of(site.layer, site.path):
                entries.extend(entries_of(site))
        return _unique(entries)
    by_path = {site.path: site for site in all_sites}
    picked: dict[int, Site] = {}
    unknown = []
    for item in chosen:
        if isinstance(item, str):
            site = by_path.get(item)
        else:
            site = next((s for s in all_sites if s.layer is item), None)
        if site is None:
            unknown.append(item if isinstance(item, str) else item.name)
        else:
            picked[id(site)] = site
    if unknown:
        top = sorted(s.path for s in all_sites if "/" not in s.path)
        raise ValueError(f"layers: unknown layer names {unknown}; the model's layers are {top} "
                         "(layers of nested models by path, e.g. 'backbone/conv')")
    order = [site for site in all_sites if id(site) in picked]
    return _unique([e for site in order for e in entries_of(site, whole_model=True)])


def _unique(entries: list[Entry]) -> list[Entry]:
    """Rename a repeated name ``name#2``, ``name#3``...: a record's key must not collide."""
    seen: dict[str, int] = {}
    for entry in entries:
        count = seen.get(entry.name, 0) + 1
        seen[entry.name] = count
        if count > 1:
            entry.name = f"{entry.name}#{count}"
    return entries


def _with_training(op: Any, training: bool | None) -> Callable[..., Any]:
    """``op`` called as a functional model calls it: ``training`` passed to layers whose ``call`` takes it."""

    def call(*args: Any, **kwargs: Any) -> Any:
        if training is not None and "training" in getattr(op, "_call_context_args", ()):
            kwargs["training"] = training
        return op(*args, **kwargs)

    return call


class _Holder:
    """Keeps objects out of Keras's attribute tracking (the nested runners' models are the model's own)."""

    def __init__(self, **items: Any) -> None:
        self.__dict__.update(items)


class GraphRun(keras.layers.Layer):
    """Runs a graph model as ``Functional.call`` does, returning ``(outputs, [captured outputs])``.

    The captured outputs are those of ``captures`` (layer id -> entry name, first of several
    outputs) in this graph and, through a nested :class:`GraphRun` standing in for each nested
    model, those inside nested models; :attr:`keys` names them in order.
    """

    def __init__(self, model: Any, captures: dict[int, tuple[str, bool]], nested: dict[int, GraphRun]) -> None:
        super().__init__(name=f"kerasinit_probe_{model.name}", dtype=model.dtype_policy)
        self.model = model
        self.supports_masking = True
        self._state = _Holder(captures=dict(captures), nested=dict(nested))
        self.keys: list[str] = [name for name, _ in captures.values()]
        for run in nested.values():
            self.keys.extend(run.keys)
        self.built = True

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> tuple[Any, list[Any]]:
        graph = functional_graph(self.model)
        captures, nested = self._state.captures, self._state.nested
        found: dict[str, Any] = {}

        def operation_fn(op: Any) -> Callable[..., Any]:
            runner = nested.get(id(op))
            call = _with_training(op if runner is None else runner, training)

            def run(*args: Any, **kwargs: Any) -> Any:
                out = call(*args, **kwargs)
                if runner is not None:
                    out, acts = out
                    found.update(zip(runner.keys, acts, strict=True))
                capture = captures.get(id(op))
                if capture is not None:
                    name, first = capture
                    found[name] = out[0] if first else out
                return out

            return run

        inputs = graph._standardize_inputs(inputs)
        if mask is not None:
            for x, m in zip(inputs, keras.tree.flatten(mask), strict=False):
                if m is not None:
                    keras.backend.set_keras_mask(x, m)
        outputs = graph._run_through_graph(inputs, operation_fn=operation_fn)
        return _single(outputs), [found[key] for key in self.keys]


def graph_runner(model: Any, entries: Sequence[Entry]) -> GraphRun:
    """The :class:`GraphRun` of graph ``model`` capturing the output of every activation entry."""
    wanted: dict[int, dict[int, tuple[str, bool]]] = {}
    chains: dict[int, tuple[Any, ...]] = {}
    for entry in entries:
        site = entry.site
        graph = site.graph
        wanted.setdefault(id(graph[-1]), {})[id(site.layer)] = (entry.name, site.first_output)
        for i in range(1, len(graph) + 1):
            chains[id(graph[i - 1])] = graph[:i]
    runners: dict[int, GraphRun] = {}

    def build(chain: tuple[Any, ...]) -> GraphRun:
        here = chain[-1]
        below = [c for c in chains.values() if len(c) == len(chain) + 1 and c[: len(chain)] == chain]
        nested = {id(c[-1]): build(c) for c in below}
        runners[id(here)] = GraphRun(here, wanted.get(id(here), {}), nested)
        return runners[id(here)]

    return build((model,))


class ProbeNet(keras.layers.Layer):
    """``(y_pred, [tracked layer outputs])`` of ``model`` in a fixed mode, whatever ``training`` the
    caller passes (the backends' probe functions call ``net(x, training=False)``)."""

    def __init__(self, model: Any, entries: Sequence[Entry], training: bool) -> None:
        super().__init__(name="kerasinit_probe", dtype=model.dtype_policy)
        self.probe_training = bool(training)
        self.graph = is_graph_model(model)
        self.runner = graph_runner(model, entries) if self.graph else model
        self.names: list[str] = [entry.name for entry in entries]
        self.built = True

    def call(self, inputs: Any, training: Any = None) -> tuple[Any, list[Any]]:
        """``(y_pred, [output of each entry, in the order of the entries given])``."""
        del training
        if not self.graph:
            return self.runner(inputs, training=self.probe_training), []
        out, acts = self.runner(inputs, training=self.probe_training)
        by_name = dict(zip(self.runner.keys, acts, strict=True))
        return out, [by_name[name] for name in self.names]
