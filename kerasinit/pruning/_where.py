"""``keep_where(mask, w)``: ``w`` where ``mask`` is true, exact 0 elsewhere, as cheap as the backend allows.

The pruning masks run this once per pruned tensor after every optimizer step, so it is on the
hot path.

* TensorFlow: ``keras.ops.where`` lowers to ``SelectV2``, whose broadcasting kernel takes ~1.6x as
  long as the plain ``Select`` kernel on equal shapes (136 vs 85 µs for a 784x300 float32 tensor on
  2 CPU cores; benchmarks/RESULTS.md), so TensorFlow gets ``Select`` with a same-shape zero tensor.
* PyTorch (eager): ``torch.where`` takes ~4x as long as multiplying the weight's bit pattern (its
  float bits viewed as integers) by the boolean mask, 650 vs 165 µs for LeNet-300-100's three
  kernels. That is the same select, exactly: a pruned weight gets all bits 0 (+0.0, whatever it
  held: inf, NaN, -0.0) and a kept one keeps its bits. ``keep_where_in_place`` writes it into the
  variable's own storage, for the constraint whose result Keras assigns back to that variable.
* JAX: ``keras.ops.where`` (XLA fuses it).

``fused`` compiles the in-step mask updates as one XLA computation on TensorFlow. ``is_traced``
tells, on JAX, whether a mask reaches a compiled step as state or was baked into it as a constant.
TensorFlow and PyTorch are imported only when they are Keras's backend (loaded already), so the
core stays backend-neutral.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import keras


@cache
def _kernel(backend: str) -> Callable[[Any, Any], Any]:
    if backend == "tensorflow":
        import tensorflow as tf

        return lambda mask, w: tf.raw_ops.Select(condition=mask, x=w, y=tf.zeros_like(w))
    if backend == "torch":
        return lambda mask, w: _torch_keep(mask, w, in_place=False)
    return lambda mask, w: keras.ops.where(mask, w, keras.ops.zeros((), w.dtype))


@cache
def _torch_bits() -> dict[Any, Any]:
    import torch  # loaded already: it is Keras's backend

    return {torch.float64: torch.int64, torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}


def _torch_keep(mask: Any, w: Any, in_place: bool) -> Any:
    """PyTorch: ``w``'s bits times ``mask`` (a pruned weight's bits all 0: +0.0); in ``w``'s storage if ``in_place``."""
    import torch

    bits = _torch_bits().get(w.dtype)
    if bits is None:
        return torch.where(mask, w, 0)
    data = w.detach()  # masks are assigned, never differentiated: a bit view needs no autograd
    if in_place:
        data.view(bits).mul_(mask)
        return w
    return (data.view(bits) * mask).view(w.dtype)


@cache
def _compiler(backend: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    if backend == "tensorflow":
        import tensorflow as tf

        def compile_xla(fn: Callable[..., Any]) -> Callable[..., Any]:
            compiled = tf.function(fn, jit_compile=True, autograph=False)
            return lambda *args: compiled(*(tf.convert_to_tensor(a) for a in args))  # variables read as tensors

        return compile_xla
    # JAX compiles the whole step already; PyTorch runs it eagerly
    return lambda fn: lambda *args: fn(*(keras.ops.convert_to_tensor(a) for a in args))


def fused(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a function of tensors; called with variables, it reads them) as one XLA computation on TensorFlow.

    Inside TensorFlow's (not XLA-compiled) train step, each of a few dozen small ops would run as a
    kernel of its own, several of them over the whole tensor; XLA fuses them into a few loops.
    JAX compiles the whole step already and PyTorch runs it eagerly: there ``fn`` runs as it is.
    """
    return _compiler(keras.backend.backend())(fn)


def is_traced(value: Any) -> bool:
    """Whether ``value`` is a JAX tracer (a value the compiled step reads from its state), not a constant."""
    if keras.backend.backend() != "jax":
        return False
    import jax  # loaded already: it is Keras's backend

    return isinstance(value, jax.core.Tracer)


def keep_where(mask: Any, w: Any) -> Any:
    """``where(mask, w, 0)`` for a boolean ``mask`` of ``w``'s shape."""
    return _kernel(keras.backend.backend())(keras.ops.convert_to_tensor(mask), keras.ops.convert_to_tensor(w))


def keep_where_in_place(mask: Any, variable: Any) -> Any:
    """``keep_where(mask, variable)``, written into ``variable``'s own storage on PyTorch; returns its value.

    For a constraint whose result Keras assigns straight back to ``variable``: on PyTorch that
    assignment then copies nothing (the value *is* the variable's tensor), which takes the masking
    of LeNet-300-100's three kernels from ~330 to ~210 µs per eager step. Elsewhere it is
    ``keep_where`` (TensorFlow and JAX compile the step; the variable is not written here).
    """
    if keras.backend.backend() == "torch" and isinstance(variable, keras.Variable):
        return _torch_keep(keras.ops.convert_to_tensor(mask), variable.value, in_place=True)
    return keep_where(mask, variable)
