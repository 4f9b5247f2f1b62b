"""TensorFlow implementation of the probe evaluation (imported lazily, TensorFlow backend only).

One compiled function runs ONE forward pass of the multi-output probe model under one
``tf.GradientTape`` and ONE ``tape.gradient`` call for all targets at once: the kernels of every
tracked layer and, optionally, the tracked layer outputs (the back-propagated gradient
dL/dy_l of Glorot & Bengio 2010, Fig. 7). The cost is one forward and one backward pass whatever
the number of layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

#: How many times ``tape.gradient`` ran in Python (i.e. during tracing) since import; with a
#: fixed probe the function traces once, so this stays at one per monitor.
GRADIENT_CALLS = 0


def build_probe_function(
    forward: Callable[[Any], tuple[Any, list[Any]]],
    loss_fn: Callable[[Any, Any, Any], Any] | None,
    kernels: Sequence[Any],
    output_gradients: bool,
) -> Callable[[Any, Any, Any], tuple[list[Any], list[Any], list[Any]]]:
    """Compile ``(x, y, sample_weight) -> (activations, kernel_grads, output_grads)``.

    ``forward(x)`` returns ``(y_pred, [layer outputs])``; ``loss_fn(y, y_pred, sample_weight)`` is
    the scalar training loss. With no kernels and ``output_gradients=False`` no tape is recorded.
    A target the loss does not depend on gets ``None`` (e.g. the output of a softmax layer when
    Keras's cross-entropy reads the logits behind it), and the monitor records nothing for it.
    """
    import tensorflow as tf

    kernels = list(kernels)
    need_tape = bool(kernels) or output_gradients

    class ProbeStep:
        """A callable object rather than a closure: tf.function keys its retracing statistics by
        a function's code, and each monitor traces its own step exactly once."""

        def __call__(self, x: Any, y: Any, sample_weight: Any) -> tuple[list[Any], list[Any], list[Any]]:
            global GRADIENT_CALLS
            if not need_tape:
                _, acts = forward(x)
                return list(acts), [], []
            with tf.GradientTape() as tape:
                y_pred, acts = forward(x)
                acts = list(acts)
                loss = loss_fn(y, y_pred, sample_weight)
            targets = kernels + (acts if output_gradients else [])
            GRADIENT_CALLS += 1
            grads = tape.gradient(loss, targets)
            return acts, list(grads[: len(kernels)]), list(grads[len(kernels) :])

    run = tf.function(ProbeStep(), reduce_retracing=True)
    return run
