"""``keep_where(mask, w)``: ``w`` where ``mask`` is true, exact +0.0 elsewhere, as cheap as the backend allows.

The pruning masks run this once per pruned tensor after every optimizer step, so it is on the
hot path: TensorFlow uses the same-shape ``Select`` kernel and PyTorch a bit-pattern product
(:mod:`kerasinit.backend.tensorflow`, :mod:`kerasinit.backend.torch`, with the measurements); JAX
uses ``keras.ops.where`` (XLA fuses it).

``fused`` compiles the in-step mask updates as one XLA computation on TensorFlow. ``is_traced``
tells, on JAX, whether a mask reaches a compiled step as state or was baked into it as a constant.
A backend module is imported only when it is Keras's backend (its framework is loaded already).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import keras

from kerasinit.backend import module


def _where(mask: Any, w: Any) -> Any:
    return keras.ops.where(mask, w, keras.ops.zeros((), w.dtype))


@cache
def _select(backend: str) -> Callable[[Any, Any], Any]:
    if backend in ("tensorflow", "torch"):
        return module("masks", backend).keep_where
    return _where


def _eager(fn: Callable[..., Any]) -> Callable[..., Any]:
    def read(a: Any) -> Any:
        return [keras.ops.convert_to_tensor(x) for x in a] if isinstance(a, list | tuple) else keras.ops.convert_to_tensor(a)

    return lambda *args: fn(*(read(a) for a in args))


@cache
def _compiler(backend: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    if backend == "tensorflow":
        return module("fused mask updates", backend).fuse
    return _eager  # JAX compiles the whole step already; PyTorch runs it eagerly


def fused(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a function of tensors or lists of them; called with variables, it reads them) as one XLA
    computation on TensorFlow.

    Inside TensorFlow's (not XLA-compiled) train step, each of a few dozen small ops would run as a
    kernel of its own, several of them over the whole tensor; XLA fuses them into a few loops.
    JAX compiles the whole step already and PyTorch runs it eagerly: there ``fn`` runs as it is.
    """
    return _compiler(keras.backend.backend())(fn)


def is_traced(value: Any) -> bool:
    """Whether ``value`` is a JAX tracer (a value the compiled step reads from its state), not a constant."""
    return keras.backend.backend() == "jax" and module("tracing", "jax").is_traced(value)


def keep_where(mask: Any, w: Any) -> Any:
    """``where(mask, w, 0)`` for a boolean ``mask`` of ``w``'s shape."""
    return _select(keras.backend.backend())(keras.ops.convert_to_tensor(mask), keras.ops.convert_to_tensor(w))


def keep_where_in_place(mask: Any, variable: Any) -> Any:
    """``keep_where(mask, variable)``, written into ``variable``'s own storage on PyTorch; returns its value.

    For a constraint whose result Keras assigns straight back to ``variable``: on PyTorch that
    assignment then copies nothing (the value *is* the variable's tensor), which takes the masking
    of LeNet-300-100's three kernels from ~330 to ~210 µs per eager step. Elsewhere it is
    ``keep_where`` (TensorFlow and JAX compile the step; the variable is not written here).
    """
    if keras.backend.backend() == "torch" and isinstance(variable, keras.Variable):
        return module("masks", "torch").keep_where(keras.ops.convert_to_tensor(mask), variable.value, in_place=True)
    return keep_where(mask, variable)
