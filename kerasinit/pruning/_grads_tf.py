"""TensorFlow gradients for the pruning scores (imported lazily, TensorFlow backend only).

``gradient``: one ``tf.GradientTape``. ``hessian_vector``: H·v by double backprop, a tape inside
a tape: the inner gradient g(w) is dotted with the constant v and differentiated again,
∂(g(w)·v)/∂w = H v. Both are ``tf.function``s traced once per (model, objective), of callable
objects rather than closures: tf.function keys its retracing statistics by a function's code,
and a closure re-created per ``prune_at_init`` call would count as retracing.
"""

from __future__ import annotations

from typing import Any

from kerasinit.pruning._functional import ModelFunction

HESSIAN = "double-backprop"


def _zeros_for_none(grads: list[Any], like: list[Any]) -> list[Any]:
    import tensorflow as tf

    return [tf.zeros_like(w) if g is None else g for g, w in zip(grads, like, strict=True)]


class _Gradient:
    def __init__(self, fn: ModelFunction) -> None:
        self.fn = fn

    def __call__(self, targets: list[Any], values: Any, x: Any, y: Any) -> Any:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(targets)
            out = self.fn(targets, values, x, y)
        return out, _zeros_for_none(tape.gradient(out, targets), targets)


class _HessianVector:
    def __init__(self, fn: ModelFunction) -> None:
        self.fn = fn

    def __call__(self, targets: list[Any], values: Any, x: Any, y: Any, v: list[Any]) -> Any:
        import tensorflow as tf

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
    import tensorflow as tf

    return tf.function(_Gradient(fn), reduce_retracing=True)


def hessian_vector(fn: ModelFunction) -> Any:
    """``(targets, values, x, y, v) -> [H v]`` with H the Hessian of the objective in the targets."""
    import tensorflow as tf

    return tf.function(_HessianVector(fn), reduce_retracing=True)
