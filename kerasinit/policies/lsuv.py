"""Layer-sequential unit-variance initialization (Mishkin & Matas, "All you need is a good init",
ICLR 2016).

1. Pre-initialize every Dense/Conv kernel with an orthonormal matrix (Saxe et al. 2014) and zero
   its bias.
2. For each such layer in forward order: feed the batch, measure the std of the layer's output
   *before its activation* (the paper's conv/fc output blob; Keras layers that fuse an activation
   are measured with it switched off), and divide the kernel by std/target_std, until
   |std − target_std| ≤ tol or ``max_iter`` scalings.

Nested Sequential/functional models (a keras.applications backbone) are entered: their layers
are reached by running the batch through the outer graph up to the nested model, then through
its own graph. What LSUV does not apply to is listed with the reason and a warning: embeddings
(lookups), MultiHeadAttention and recurrent layers (not one fc/conv output), frozen layers,
subclassed nested models (no graph), shared layers. A layer whose input signal has vanished
(std ≤ 1e-6 × the batch's, e.g. behind BatchNormalization in inference mode with untrained moving
statistics) is refused, not rescaled by 1e10: a warning, ``converged=False``, weights unchanged.

Cost: the batch goes once through the sub-model that ends at the layer's input (earlier layers
are final by then), and each iteration runs only the layer itself — never the whole model. On JAX,
where every eager op is compiled for each new shape (~370 small XLA compilations for MobileNetV2),
each layer call runs instead as ONE ``jax.jit`` program of a weightless clone of the layer, called
statelessly with the input and the layer's weights as arguments, compiled once per distinct
computation (layer class, config, input and weight shapes) and kept for the process (at most 256,
holding no weights): rescaling a kernel re-runs the same program, and layers with the same
computation share it. The orthonormal draws take their Gaussian as the prefix of a draw of one of
three sizes (JAX's counter-based generator makes it the same Gaussian Keras's ``Orthogonal`` draws)
and factor it on the host: 3 compiled draws for MobileNetV2's 20 kernel shapes instead of 20 draws and
QRs. TensorFlow and PyTorch run the layers eagerly (no per-shape compilation there). The numbers are
the same either way (within float rounding of the QR).
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit._validation import check_real
from kerasinit.backend import module
from kerasinit.initializers.mirrors import Orthogonal
from kerasinit.layers import (
    DEPTHWISE,
    EMBEDDING,
    KERNEL,
    POINTWISE,
    functional_graph,
    iter_layers,
    layer_weights,
    main_weight,
    run_graph,
)

_L = keras.layers
#: The layers LSUV rescales: one fc/conv output computed from one input.
SUPPORTED: tuple[type, ...] = (
    _L.Dense, _L.EinsumDense, _L.Conv1D, _L.Conv2D, _L.Conv3D, _L.Conv1DTranspose, _L.Conv2DTranspose,
    _L.Conv3DTranspose, _L.DepthwiseConv1D, _L.DepthwiseConv2D, _L.SeparableConv1D, _L.SeparableConv2D,
)
#: A layer input with std at most this times the batch's is a vanished signal (LSUV refuses it).
VANISHED = 1e-6

_COLUMNS = ["layer", "class", "iterations", "initial_std", "final_std", "converged", "note"]

#: Backends whose eager ops compile per shape: there each layer call runs as one compiled program.
COMPILED_BACKENDS = frozenset({"jax"})
#: At most this many compiled programs are kept (least recently used dropped first).
_MAX_PROGRAMS = 256
#: Compiled programs by computation: ("layer", class, config, input specs, weight specs) or
#: -> program, or None when that computation runs eagerly.
_PROGRAMS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
#: Config keys that do not change a layer's forward computation (left out of its program's key).
_NOT_COMPUTATION = ("_initializer", "_regularizer", "_constraint")


def _specs(x: Any) -> Any:
    return keras.tree.map_structure(lambda a: (tuple(a.shape), keras.backend.standardize_dtype(a.dtype)), x)


class _LayerProgram:
    """One layer's forward pass as a compiled program of (input, weights): a clone of the layer (same
    class and config; its variables never materialised) called statelessly inside one ``jax.jit``
    (:func:`kerasinit.backend.jax.compile_function`). Every layer with the same computation (class,
    config, input and weight shapes) runs through it with its own weights as arguments; nothing is
    copied."""

    def __init__(self, layer: keras.layers.Layer, x: Any) -> None:
        clone = type(layer).from_config(layer.get_config())
        with keras.StatelessScope():  # variables declared, not initialised: no memory, nothing compiled
            clone.build(keras.tree.map_structure(lambda a: tuple(a.shape), x))
        if _specs(clone.trainable_variables) != _specs(layer.trainable_variables) or _specs(
                clone.non_trainable_variables) != _specs(layer.non_trainable_variables):
            raise ValueError(f"a clone of {layer.name!r} has other weights")
        kwargs = {"training": False} if getattr(clone, "_call_has_training_arg", False) else {}

        def run(leaves: list[Any], trainable: list[Any], non_trainable: list[Any]) -> Any:
            args = keras.tree.pack_sequence_as(x, leaves)
            return clone.stateless_call(trainable, non_trainable, args, **kwargs)[0]

        self.run = module("LSUV's compiled layer programs").compile_function(run, run_few_times=True)

    def __call__(self, layer: keras.layers.Layer, x: Any) -> Any:
        return self.run(keras.tree.flatten(x), [v.value for v in layer.trainable_variables],
                        [v.value for v in layer.non_trainable_variables])


#: Gaussian draws for orthonormal kernels on :data:`COMPILED_BACKENDS` are prefixes of draws of
#: 4096, 65536 or 2^20 values: one compiled draw (~0.2 s) per size class, not per kernel shape
#: (drawing 2^20 values costs ~15 ms); a larger kernel is drawn at its own size.
_DRAW_SIZES = (4096, 65536, 1 << 20)


def _draw_size(n: int) -> int:
    return next((size for size in _DRAW_SIZES if size >= n), n)


def _host_orthonormal(rows: int, cols: int, seed: int, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """``Orthogonal(seed=seed)(shape)`` with the Gaussian drawn as the prefix of a larger draw and the QR on
    the host: the same Gaussian as Keras's (JAX's partitionable threefry draws value i from counter i, so
    a draw of ``n`` values is the first ``n`` of any larger draw with the same seed, checked at first use),
    QR by LAPACK (the same routine as ``jnp.linalg.qr`` on the CPU, within float rounding), sign fix,
    transpose and reshape as Keras does. No XLA compilation per kernel shape."""
    n = rows * cols
    flat = to_numpy(keras.random.normal((_draw_size(n),), seed=seed, dtype=dtype))[:n]
    q, r = np.linalg.qr(flat.reshape(rows, cols))
    q = q * np.sign(np.diag(r))
    return np.reshape(q.T if int(np.prod(shape[:-1])) < shape[-1] else q, shape).astype(dtype, copy=False)


_PREFIX_CHECKED: dict[str, bool] = {}


def _draws_are_prefixes(dtype: str) -> bool:
    """Whether this backend's Gaussian of ``(a, b)`` is the prefix of a longer draw with the same seed."""
    if dtype not in _PREFIX_CHECKED:
        small = to_numpy(keras.random.normal((3, 5), seed=11, dtype=dtype)).reshape(-1)
        large = to_numpy(keras.random.normal((_DRAW_SIZES[0],), seed=11, dtype=dtype))[:15]
        _PREFIX_CHECKED[dtype] = bool(np.array_equal(small, large))
    return _PREFIX_CHECKED[dtype]


def _cached(key: tuple[Any, ...], build: Any) -> Any:
    """The program under ``key``, built by ``build()`` on first use (None if it cannot be: run eagerly)."""
    if key in _PROGRAMS:
        _PROGRAMS.move_to_end(key)
        return _PROGRAMS[key]
    try:
        program = build()
    except Exception:  # noqa: BLE001 - any layer Keras cannot clone or compile runs eagerly, as before
        program = None
    _PROGRAMS[key] = program
    while len(_PROGRAMS) > _MAX_PROGRAMS:
        _PROGRAMS.popitem(last=False)
    return program


def _compiles(layer: keras.layers.Layer) -> bool:
    """Whether ``layer`` (and each sublayer) is a Keras layer whose config fixes its computation."""
    for sub in (layer, *iter_layers(layer)):
        module = type(sub).__module__
        if (not module.startswith("keras.src.layers.") or ".preprocessing." in module
                or isinstance(sub, _L.Lambda | _L.InputLayer | keras.Model)):
            return False
    return True


def _layer_program(op: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The compiled program running ``op(*args, **kwargs)``, or None (run it eagerly)."""
    if keras.backend.backend() not in COMPILED_BACKENDS or len(args) != 1 or not isinstance(op, keras.layers.Layer):
        return None
    if any(k != "training" and v is not None for k, v in kwargs.items()) or kwargs.get("training") not in (None, False):
        return None
    leaves = keras.tree.flatten(args[0])
    if not leaves or not all(hasattr(a, "shape") and hasattr(a, "dtype") for a in leaves):
        return None
    if any(getattr(a, "_keras_mask", None) is not None for a in leaves):
        return None
    if not _compiles(op):
        return None
    try:
        if op.compute_mask(args[0], None) is not None:  # Embedding(mask_zero=True), Masking: a mask to carry on
            return None
        config = {k: v for k, v in op.get_config().items() if k != "name" and not k.endswith(_NOT_COMPUTATION)}
        key = ("layer", type(op), json.dumps(config, sort_keys=True, default=repr), repr(_specs(args[0])),
               tuple((tuple(v.shape), v.dtype, v.trainable) for v in op.variables))
    except Exception:  # noqa: BLE001 - no mask or config to read: run eagerly
        return None
    return _cached(key, lambda: _LayerProgram(op, args[0]))


def _call(op: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``op(*args, **kwargs)``, through its compiled program on :data:`COMPILED_BACKENDS`."""
    program = _layer_program(op, args, kwargs)
    return op(*args, **kwargs) if program is None else program(op, args[0])


def _host_math(variable: Any) -> bool:
    """Whether to compute ``variable``'s new value in NumPy (on :data:`COMPILED_BACKENDS`, NumPy dtypes)."""
    return (keras.backend.backend() in COMPILED_BACKENDS
            and keras.backend.standardize_dtype(variable.dtype) in ("float16", "float32", "float64"))


def _orthonormal(kernel: Any, seed: int | None) -> Any:
    """``Orthogonal(seed=seed)(kernel.shape)``: on :data:`COMPILED_BACKENDS` the Gaussian is a prefix of a
    draw of a few fixed sizes and the QR runs on the host (:func:`_host_orthonormal`); Keras's eager
    ops elsewhere (the same distribution and, on JAX, the same numbers within float rounding)."""
    init = Orthogonal(seed=seed)
    shape, dtype = tuple(kernel.shape), keras.backend.standardize_dtype(kernel.dtype)
    s = getattr(init, "seed", None)
    if (_host_math(kernel) and len(shape) >= 2 and 0 not in shape and isinstance(s, int)
            and not isinstance(s, bool) and 0 <= s < 2**32 and _draws_are_prefixes(dtype)):
        rows, cols = sorted((int(np.prod(shape[:-1])), int(shape[-1])), reverse=True)
        return _host_orthonormal(rows, cols, s, shape, dtype)
    return init(shape, dtype=kernel.dtype)


@contextlib.contextmanager
def _linear(layer: keras.layers.Layer) -> Iterator[None]:
    """Temporarily switch off a layer's fused activation."""
    act = getattr(layer, "activation", None)
    if act is None:
        yield
        return
    layer.activation = keras.activations.linear
    try:
        yield
    finally:
        layer.activation = act


def _kernel(layer: keras.layers.Layer) -> Any:
    """The kernel LSUV rescales: the one that produces the layer's output (pointwise before depthwise)."""
    weight = main_weight(layer, (KERNEL, POINTWISE, DEPTHWISE))
    return None if weight is None else weight.variable


def _std(x: Any) -> float:
    return float(np.std(to_numpy(x)))


def _has_kernels(layer: keras.layers.Layer) -> bool:
    return any(layer_weights(sub) for sub in (layer, *iter_layers(layer)))


def _why_not(layer: keras.layers.Layer) -> str | None:
    """Why LSUV does not apply to a layer with kernels, or None if it does."""
    if isinstance(layer, SUPPORTED):
        return None
    if isinstance(layer, _L.Embedding) or layer_weights(layer, (EMBEDDING,)):
        return ("Embedding is a lookup, not a weighted sum of its input: LSUV's rescaling (conv/fc layers) does not "
                "apply (reinitialize(model) draws embeddings)")
    if isinstance(layer, _L.MultiHeadAttention):
        return ("MultiHeadAttention computes its query/key/value/output projections inside the layer from several "
                "inputs; LSUV (conv/fc layers) has no per-projection output to measure: use "
                "reinitialize(model, policy='auto' | 't_fixup' | 'mimetic')")
    if isinstance(layer, _L.RNN | _L.Bidirectional):
        return ("recurrent layer: its output mixes the input kernel, the recurrent kernel and the gates over time "
                "steps, so no single kernel scale sets its variance (LSUV covers conv/fc layers); Keras's Glorot + "
                "orthogonal recurrent kernels are kept")
    return (f"{type(layer).__name__} not supported (LSUV rescales "
            f"{', '.join(sorted({c.__name__ for c in SUPPORTED}))})")


def _float_std(batch: Any) -> float | None:
    """The std of the batch's float arrays (the scale a vanished signal is measured against)."""
    arrays = [np.asarray(to_numpy(x)) for x in keras.tree.flatten(batch)]
    floats = [a.ravel() for a in arrays if np.issubdtype(a.dtype, np.floating)]
    return float(np.std(np.concatenate(floats))) if floats else None


def lsuv(
    model: keras.Model,
    batch: Any,
    tol: float = 0.1,
    max_iter: int = 10,
    target_std: float = 1.0,
    seed: int | None = None,
    verbose: bool = True,
) -> Any:
    """Initialize ``model`` in place by LSUV on ``batch`` (an array, or a list for multi-input models).

    Returns a pandas DataFrame, one row per layer: layer (``outer/inner`` inside a nested model),
    class, iterations, initial_std, final_std, converged, note. Layers LSUV does not rescale are
    listed with ``skipped: <reason>``; a layer whose input std is ≤ 1e-6 × the batch's, or whose
    orthonormal output std is ≤ 1e-6 × ``target_std``, is ``refused`` (``converged=False``,
    weights unchanged). Both are also warned about. ``model`` must be Sequential or functional (a
    graph is needed to run up to a layer); nested Sequential/functional models are entered,
    frozen (``trainable=False``) layers are left alone.
    """
    import pandas as pd

    tol = check_real("tol", tol, owner="lsuv", positive=True)
    target_std = check_real("target_std", target_std, owner="lsuv", positive=True)
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"lsuv: argument `max_iter` must be a positive int; received {max_iter!r}.")
    if not isinstance(model, keras.Model):
        raise TypeError(f"lsuv: argument `model` must be a keras.Model; received {type(model).__name__}.")
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    graph = functional_graph(model)
    if not inputs or graph is None:
        raise ValueError(
            "lsuv: argument `model` must be a Sequential (with an Input) or functional model: LSUV runs the batch "
            "up to each layer, which needs the model's graph. Subclassed models have none."
        )
    reference = _float_std(batch)
    scale = reference if reference else target_std
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    counter = [0]

    def row(name: str, layer: keras.layers.Layer, note: str, **values: Any) -> None:
        rows.append({"layer": name, "class": type(layer).__name__, "iterations": 0, "initial_std": np.nan,
                     "final_std": np.nan, "converged": None, "note": note, **values})

    def skip(name: str, layer: keras.layers.Layer, reason: str) -> None:
        row(name, layer, f"skipped: {reason}")
        skipped.append(name)

    def rescale(name: str, layer: keras.layers.Layer, x_in: Any) -> None:
        kernel = _kernel(layer)
        bias = getattr(layer, "bias", None)
        bias = bias if isinstance(bias, keras.Variable) else None
        saved = [(v, to_numpy(v).copy()) for v in (kernel, bias) if v is not None]
        index = counter[0]
        counter[0] += 1
        std_in = max((_std(x) for x in keras.tree.flatten(x_in)), default=0.0)
        kernel.assign(_orthonormal(kernel, None if seed is None else seed + index))
        if bias is not None:
            bias.assign(keras.ops.zeros(bias.shape, dtype=bias.dtype) if not _host_math(bias) else
                        np.zeros(tuple(bias.shape), dtype=keras.backend.standardize_dtype(bias.dtype)))
        with _linear(layer):
            std = initial = _std(_call(layer, (x_in,), {"training": False}))
            refusal = None
            if not np.isfinite(std_in) or std_in <= VANISHED * scale:
                refusal = (f"input std {std_in:.2g} is ≤ {VANISHED:g} × the batch's std ({scale:.3g}): the signal has "
                           f"vanished before this layer (e.g. BatchNormalization in inference mode with untrained "
                           f"moving statistics, or a frozen backbone)")
            elif not np.isfinite(initial) or initial <= VANISHED * target_std:
                refusal = (f"input std {std_in:.2g} gives an output std of {initial:.2g} with an orthonormal kernel: "
                           f"the signal has vanished in this layer (dead or constant inputs)")
            if refusal is not None:
                factor = target_std / initial if initial > 0 else np.inf
                for var, values in saved:
                    var.assign(values)
                note = f"refused: {refusal}; rescaling would multiply the kernel by {factor:.2g}. Weights left as they were."
                warnings.warn(f"lsuv: layer {name!r}: {note}", UserWarning, stacklevel=3)
                row(name, layer, note, initial_std=initial, converged=False)
                if verbose:
                    print(f"lsuv: {name:24s} {note}")
                return
            iterations = 0
            while abs(std - target_std) > tol and iterations < max_iter and std > 0.0:
                if _host_math(kernel):  # the same float32 product, with no multiply compiled per shape
                    kernel.assign(to_numpy(kernel) * (target_std / std))
                else:
                    kernel.assign(kernel * (target_std / std))
                iterations += 1
                std = _std(_call(layer, (x_in,), {"training": False}))
        converged = abs(std - target_std) <= tol
        note = "" if converged else f"not within tol after {max_iter} iterations"
        row(name, layer, note, iterations=iterations, initial_std=initial, final_std=std, converged=converged)
        if verbose:
            print(f"lsuv: {name:24s} std {initial:9.4f} -> {std:.4f} in {iterations} iteration(s) {note}")

    def walk(graph: Any, inputs: Any, prefix: str) -> Any:
        """Run ``inputs`` through ``graph`` as Functional.call does, LSUV-ing each layer just before it runs."""
        calls: dict[int, int] = {}
        for nodes in graph._nodes_by_depth.values():
            for node in nodes:
                calls[id(node.operation)] = calls.get(id(node.operation), 0) + 1
        seen: set[int] = set()

        def operation_fn(op: Any) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                if "training" in getattr(op, "_call_context_args", ()):
                    kwargs["training"] = False
                if id(op) in seen:
                    return _call(op, args, kwargs)
                seen.add(id(op))
                name = prefix + op.name
                if not _has_kernels(op):
                    row(name, op, "skipped: no kernel")
                    return _call(op, args, kwargs)
                if not op.trainable:
                    skip(name, op, "not trainable (frozen weights are left as they are)")
                    return _call(op, args, kwargs)
                nested = functional_graph(op) if isinstance(op, keras.Model) else None
                if isinstance(op, keras.Model) and nested is None:
                    skip(name, op, "subclassed model: it has no graph to run the batch up to its layers "
                                   "(its kernels are left as they are)")
                    return _call(op, args, kwargs)
                reason = None if nested is not None else _why_not(op)
                if reason is None and calls.get(id(op), 0) > 1:
                    reason = f"shared layer called {calls[id(op)]} times: LSUV needs one input per layer"
                if reason is not None:
                    skip(name, op, reason)
                    return _call(op, args, kwargs)
                if nested is not None:
                    row(name, op, f"nested model: its layers follow as '{name}/…'")
                    return walk(nested, args[0], f"{name}/")
                rescale(name, op, args[0])
                return _call(op, args, kwargs)

            return call

        outputs = run_graph(graph, inputs, operation_fn)
        return outputs[0] if isinstance(outputs, list | tuple) and len(outputs) == 1 else outputs

    for layer in model.layers:
        if isinstance(layer, _L.InputLayer):
            row(layer.name, layer, "skipped: no kernel")
    walk(graph, batch, "")
    ran = {r["layer"] for r in rows}
    for layer in model.layers:
        if layer.name not in ran and _has_kernels(layer):
            skip(layer.name, layer, "not called in the model's graph")
    if skipped:
        warnings.warn(f"lsuv: {len(skipped)} layer{'s' if len(skipped) != 1 else ''} with kernels were not rescaled: {', '.join(skipped)} (the "
                      f"report's note column says why).", UserWarning, stacklevel=2)
    return pd.DataFrame(rows, columns=_COLUMNS)
