"""JAX: gradients, Hessian-vector products, the monitor's probe, tracer detection.

Imported on first use, only when JAX is Keras's backend (see :mod:`kerasinit.backend`). JAX
differentiates functions, not tapes: every model runs through ``Model.stateless_call`` with the
differentiated weights passed as arguments (:mod:`kerasinit.backend.functional`).

* ``gradient``: ``jax.value_and_grad`` of the model function, jit-compiled. ``hessian_vector``:
  forward-over-reverse, ``jax.jvp`` of ``jax.grad`` in the direction v, which is exactly H v
  (double backprop without a second tape).
* ``build_probe_function``: ONE ``jax.value_and_grad`` (jit-compiled) returns the loss, the tracked
  layer outputs (as auxiliary data) and the gradients of every kernel from one forward and one
  backward pass. Gradients w.r.t. layer outputs are not offered (they would need the graph cut at
  every tracked layer).
* ``is_traced``: whether a value reaches a compiled step as state (a tracer) or was baked into it.
* ``compile_function``: ``jax.jit`` of a function of arrays (LSUV's per-layer programs, compiled without
  LLVM's optimisation passes: they run a few times each).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from kerasinit.backend.functional import (
    ModelFunction,
    ProbeFunction,
    ProbeSpec,
    substitute,
    variable_slots,
)

HESSIAN = "double-backprop"

#: How many times the probe's differentiated function was traced since import (one per monitor).
GRADIENT_CALLS = 0


def gradient(fn: ModelFunction) -> Any:
    """``(targets, values, x, y) -> (objective, [∂objective/∂target])``."""
    return jax.jit(jax.value_and_grad(fn))


def hessian_vector(fn: ModelFunction) -> Any:
    """``(targets, values, x, y, v) -> [H v]`` with H the Hessian of the objective in the targets."""

    def run(targets: list[Any], values: Any, x: Any, y: Any, v: list[Any]) -> Any:
        grad = jax.grad(lambda t: fn(t, values, x, y))
        return jax.jvp(grad, (list(targets),), (list(v),))[1]

    return jax.jit(run)


def build_probe_function(spec: ProbeSpec) -> ProbeFunction:
    """Compile ``(x, y, sample_weight) -> (activations, kernel_grads, [])``."""
    net = spec.net
    trainable = list(net.trainable_variables)
    non_trainable = list(net.non_trainable_variables)
    slots = variable_slots(net, spec.kernels, what="kernel")

    def loss_of(kernel_values: list[Any], values: tuple[list[Any], list[Any]], x: Any, y: Any,
                sample_weight: Any) -> tuple[Any, list[Any]]:
        global GRADIENT_CALLS
        GRADIENT_CALLS += 1
        groups = substitute(slots, values, kernel_values)
        outputs, _, losses = net.stateless_call(groups[0], groups[1], x, training=False, return_losses=True)
        y_pred, acts = spec.split(outputs)
        loss = spec.data_loss(y, y_pred, sample_weight)
        if spec.add_model_losses and losses:
            loss = loss + sum(jnp.asarray(v, loss.dtype) for v in losses)
        return loss, list(acts)

    step = jax.jit(jax.value_and_grad(loss_of, has_aux=True))

    def run(x: Any, y: Any, sample_weight: Any) -> tuple[list[Any], list[Any], list[Any]]:
        values = ([v.value for v in trainable], [v.value for v in non_trainable])
        kernel_values = [values[group][index] for group, index in slots]
        (_, acts), grads = step(kernel_values, values, x, y, sample_weight)
        return list(acts), list(grads), []

    return run


def is_traced(value: Any) -> bool:
    """Whether ``value`` is a JAX tracer (a value the compiled step reads from its state), not a constant."""
    return isinstance(value, jax.core.Tracer)


#: XLA options for programs that run a handful of times (LSUV's layer programs): the CPU backend's code
#: generation without LLVM's optimisation passes, ~18 ms a program instead of ~30-40 ms on this project's
#: 2-core benchmark machine (convolutions and matmuls call the same runtime kernels either way)
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def compile_function(fn: Any, run_few_times: bool = False) -> Any:
    """``fn`` (arrays and lists of arrays in, arrays out) as one jit-compiled program; ``run_few_times``
    compiles it faster and runs it slower (:data:`FAST_COMPILE`)."""
    if run_few_times:
        try:
            return jax.jit(fn, compiler_options=FAST_COMPILE)
        except TypeError:  # a JAX without per-program compiler options
            pass
    return jax.jit(fn)
