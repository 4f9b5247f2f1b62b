"""TensorFlow: gradients, Hessian-vector products, the monitor's probe, the mask select and XLA fusion.

Imported on first use, only when TensorFlow is Keras's backend (see :mod:`kerasinit.backend`).

* ``gradient``: one ``tf.GradientTape``. ``hessian_vector``: H·v by double backprop, a tape inside
  a tape: the inner gradient g(w) is dotted with the constant v and differentiated again,
  ∂(g(w)·v)/∂w = H v. Both are ``tf.function``s traced once per (model, objective), of callable
  objects rather than closures: tf.function keys its retracing statistics by a function's code,
  and a closure re-created per ``prune_at_init`` call would count as retracing.
* ``build_probe_function``: ONE forward pass of the monitor's multi-output probe model under one
  tape and ONE ``tape.gradient`` call for all targets at once (the tracked kernels and, optionally,
  the tracked layer outputs: dL/dy_l of Glorot & Bengio 2010, Fig. 7). A target the loss does not
  depend on gets ``None`` (e.g. a softmax output whose logits Keras's cross-entropy reads) and the
  monitor records nothing for it. Sparse gradients (an ``Embedding``'s ``tf.IndexedSlices``) come back
  dense, as on JAX and PyTorch.
* ``keep_where``: ``keras.ops.where`` lowers to ``SelectV2``, whose broadcasting kernel takes ~1.6x
  as long as the plain ``Select`` kernel on equal shapes (136 vs 85 µs for a 784x300 float32
  tensor on 2 CPU cores; benchmarks/RESULTS.md), so masks use ``Select`` with a same-shape zero.
* ``fuse``: a function of tensors as one XLA computation (``jit_compile=True``), for the in-step
  mask updates, whose few dozen small ops would otherwise each run as a kernel of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from kerasinit.backend.functional import ModelFunction, ProbeFunction, ProbeSpec

HESSIAN = "double-backprop"

#: How many times the probe's ``tape.gradient`` ran in Python (i.e. during tracing) since import;
#: with a fixed probe the function traces once, so this grows by one per monitor.
GRADIENT_CALLS = 0


def _dense(g: Any) -> Any:
    """A gradient as a dense tensor: an Embedding's gradient is ``tf.IndexedSlices`` (the rows it read)."""
    return tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g


def _zeros_for_none(grads: list[Any], like: list[Any]) -> list[Any]:
    return [tf.zeros_like(w) if g is None else _dense(g) for g, w in zip(grads, like, strict=True)]


class _Gradient:
    def __init__(self, fn: ModelFunction) -> None:
        self.fn = fn

    def __call__(self, targets: list[Any], values: Any, x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(targets)
            out = self.fn(targets, values, x, y)
        return out, _zeros_for_none(tape.gradient(out, targets), targets)


class _HessianVector:
    def __init__(self, fn: ModelFunction) -> None:
        self.fn = fn

    def __call__(self, targets: list[Any], values: Any, x: Any, y: Any, v: list[Any]) -> Any:
        with tf.GradientTape() as outer:
            outer.watch(targets)
            with tf.GradientTape() as inner:
                inner.watch(targets)
                out = self.fn(targets, values, x, y)
            g = _zeros_for_none(inner.gradient(out, targets), targets)
            dot = tf.add_n([tf.reduce_sum(a * tf.stop_gradient(b)) for a, b in zip(g, v, strict=True)])
        return _zeros_for_none(outer.gradient(dot, targets), targets)


def gradient(fn: ModelFunction) -> Any:
    """``(targets, values, x, y) -> (objective, [∂objective/∂target])``."""
    return tf.function(_Gradient(fn), reduce_retracing=True)


def hessian_vector(fn: ModelFunction) -> Any:
    """``(targets, values, x, y, v) -> [H v]`` with H the Hessian of the objective in the targets."""
    return tf.function(_HessianVector(fn), reduce_retracing=True)


class _ProbeStep:
    """A callable object rather than a closure: tf.function keys its retracing statistics by a
    function's code, and each monitor traces its own step exactly once."""

    def __init__(self, spec: ProbeSpec) -> None:
        self.spec = spec
        self.kernels = list(spec.kernels)

    def __call__(self, x: Any, y: Any, sample_weight: Any) -> tuple[list[Any], list[Any], list[Any]]:
        global GRADIENT_CALLS
        spec = self.spec
        with tf.GradientTape() as tape:
            y_pred, acts = spec.split(spec.net(x, training=False))
            acts = list(acts)
            loss = spec.data_loss(y, y_pred, sample_weight)
            extra = spec.net.losses if spec.add_model_losses else []
            if extra:
                loss = loss + tf.add_n([tf.cast(v, loss.dtype) for v in extra])
        targets = self.kernels + (acts if spec.output_gradients else [])
        GRADIENT_CALLS += 1
        grads = [None if g is None else _dense(g) for g in tape.gradient(loss, targets)]
        return acts, grads[: len(self.kernels)], grads[len(self.kernels) :]


def build_probe_function(spec: ProbeSpec) -> ProbeFunction:
    """Compile ``(x, y, sample_weight) -> (activations, kernel_grads, output_grads)``."""
    return tf.function(_ProbeStep(spec), reduce_retracing=True)


def keep_where(mask: Any, w: Any) -> Any:
    """``w`` where ``mask``, +0.0 elsewhere (the same-shape ``Select`` kernel)."""
    return tf.raw_ops.Select(condition=mask, x=w, y=tf.zeros_like(w))


def fuse(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a function of tensors, or of lists of them) compiled as one XLA computation; variables
    are read as tensors."""
    compiled = tf.function(fn, jit_compile=True, autograph=False)

    def read(a: Any) -> Any:
        return [tf.convert_to_tensor(x) for x in a] if isinstance(a, list | tuple) else tf.convert_to_tensor(a)

    return lambda *args: compiled(*(read(a) for a in args))
