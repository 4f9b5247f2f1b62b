"""TensorFlow implementation of the probe evaluation (imported lazily, TensorFlow backend only).

One compiled function runs ONE forward pass of the multi-output probe model under one
``tf.GradientTape`` and ONE ``tape.gradient`` call for all targets at once: the kernels of every
tracked layer and, optionally, the tracked layer outputs (the back-propagated gradient
dL/dy_l of Glorot & Bengio 2010, Fig. 7). The cost is one forward and one backward pass whatever
the number of layers. A target the loss does not depend on gets ``None`` (e.g. the output of a
softmax layer when Keras's cross-entropy reads the logits behind it), and the monitor records
nothing for it.
"""

from __future__ import annotations

from typing import Any

from kerasinit.monitor._backend import ProbeFunction, ProbeSpec

#: How many times ``tape.gradient`` ran in Python (i.e. during tracing) since import; with a
#: fixed probe the function traces once, so this grows by one per monitor.
GRADIENT_CALLS = 0


def build_probe_function(spec: ProbeSpec) -> ProbeFunction:
    """Compile ``(x, y, sample_weight) -> (activations, kernel_grads, output_grads)``."""
    import tensorflow as tf

    kernels = list(spec.kernels)

    class ProbeStep:
        """A callable object rather than a closure: tf.function keys its retracing statistics by
        a function's code, and each monitor traces its own step exactly once."""

        def __call__(self, x: Any, y: Any, sample_weight: Any) -> tuple[list[Any], list[Any], list[Any]]:
            global GRADIENT_CALLS
            with tf.GradientTape() as tape:
                y_pred, acts = spec.split(spec.net(x, training=False))
                acts = list(acts)
                loss = spec.data_loss(y, y_pred, sample_weight)
                extra = spec.net.losses if spec.add_model_losses else []
                if extra:
                    loss = loss + tf.add_n([tf.cast(v, loss.dtype) for v in extra])
            targets = kernels + (acts if spec.output_gradients else [])
            GRADIENT_CALLS += 1
            grads = tape.gradient(loss, targets)
            return acts, list(grads[: len(kernels)]), list(grads[len(kernels) :])

    return tf.function(ProbeStep(), reduce_retracing=True)
