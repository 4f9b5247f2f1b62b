"""JAX gradients for the pruning scores (imported lazily, JAX backend only).

``gradient``: ``jax.value_and_grad`` of the model function, jit-compiled. ``hessian_vector``:
forward-over-reverse, ``jax.jvp`` of ``jax.grad`` in the direction v, which is exactly H v
(double backprop without a second tape).
"""

from __future__ import annotations

from typing import Any

from kerasinit.pruning._functional import ModelFunction

HESSIAN = "double-backprop"


def gradient(fn: ModelFunction) -> Any:
    """``(targets, values, x, y) -> (objective, [∂objective/∂target])``."""
    import jax

    return jax.jit(jax.value_and_grad(fn))


def hessian_vector(fn: ModelFunction) -> Any:
    """``(targets, values, x, y, v) -> [H v]`` with H the Hessian of the objective in the targets."""
    import jax

    def run(targets: list[Any], values: Any, x: Any, y: Any, v: list[Any]) -> Any:
        grad = jax.grad(lambda t: fn(t, values, x, y))
        return jax.jvp(grad, (list(targets),), (list(v),))[1]

    return jax.jit(run)
