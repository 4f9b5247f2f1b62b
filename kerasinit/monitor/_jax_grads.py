"""JAX implementation of the probe evaluation (imported lazily, JAX backend only).

JAX differentiates functions, not tapes: the probe model runs through ``Model.stateless_call``
with the kernels passed as arguments, and ONE ``jax.value_and_grad`` (jit-compiled) returns the
loss, the tracked layer outputs (as auxiliary data) and the gradients of every kernel from one
forward and one backward pass. Gradients w.r.t. layer outputs are not offered on JAX (they would
need the graph cut at every tracked layer).
"""

from __future__ import annotations

from typing import Any

from kerasinit.monitor._backend import ProbeFunction, ProbeSpec

#: How many times the differentiated function was traced since import (one per monitor).
GRADIENT_CALLS = 0


def build_probe_function(spec: ProbeSpec) -> ProbeFunction:
    """Compile ``(x, y, sample_weight) -> (activations, kernel_grads, [])``."""
    import jax
    import jax.numpy as jnp

    net = spec.net
    trainable = list(net.trainable_variables)
    non_trainable = list(net.non_trainable_variables)
    slots: list[tuple[int, int]] = []  # (0: trainable / 1: non-trainable, index) of each kernel
    for kernel in spec.kernels:
        for group, variables in enumerate((trainable, non_trainable)):
            index = next((i for i, v in enumerate(variables) if v is kernel), None)
            if index is not None:
                slots.append((group, index))
                break
        else:
            raise ValueError(f"kernel {kernel.path} is not a variable of the probe model")

    def loss_of(kernel_values: list[Any], values: tuple[list[Any], list[Any]], x: Any, y: Any, sample_weight: Any) -> tuple[Any, list[Any]]:
        global GRADIENT_CALLS
        GRADIENT_CALLS += 1
        groups = (list(values[0]), list(values[1]))
        for (group, index), value in zip(slots, kernel_values, strict=True):
            groups[group][index] = value
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
