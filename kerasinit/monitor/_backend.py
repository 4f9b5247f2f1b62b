"""Backend dispatch for the probe evaluation.

A :class:`ProbeSpec` describes what to evaluate in backend-neutral terms (a Keras model, how to
split its outputs, the loss, the kernels); a backend module turns it into a function
``(x, y, sample_weight) -> (activations, kernel_gradients, output_gradients)`` that runs ONE
forward pass and, when gradients are asked for, ONE backward pass for all layers together.

* TensorFlow (``_tf_grads``): ``tf.GradientTape``; kernel and layer-output gradients.
* JAX (``_jax_grads``): ``jax.value_and_grad`` over ``Model.stateless_call``; kernel gradients.
* PyTorch (``_torch_grads``): ``torch.autograd.grad``; kernel and layer-output gradients.
* Any backend, activations only: a plain Keras forward pass.

The backend modules are imported on first use, so ``import kerasinit.monitor`` imports no
framework. Another backend means a module with a ``build_probe_function(spec)`` and an entry in
:data:`GRADIENT_MODULES` (and :data:`OUTPUT_GRADIENT_BACKENDS` if it can do dL/dy).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras

#: backend name -> module providing ``build_probe_function(spec)`` for kernel gradients.
GRADIENT_MODULES: dict[str, str] = {
    "tensorflow": "kerasinit.monitor._tf_grads",
    "jax": "kerasinit.monitor._jax_grads",
    "torch": "kerasinit.monitor._torch_grads",
}
#: Backends whose module also computes gradients w.r.t. layer outputs.
OUTPUT_GRADIENT_BACKENDS: frozenset[str] = frozenset({"tensorflow", "torch"})

ProbeFunction = Callable[[Any, Any, Any], tuple[list[Any], list[Any], list[Any]]]


@dataclass
class ProbeSpec:
    """What one probe evaluation computes.

    Attributes:
        net: a Keras model/layer called as ``net(x, training=False)``.
        split: maps ``net``'s output to ``(y_pred, [tracked layer outputs])``.
        data_loss: ``(y, y_pred, sample_weight) -> scalar`` without the model's added losses
            (None when no gradient is asked for).
        add_model_losses: add the regularization/activity losses of ``net``'s layers.
        kernels: the variables whose gradients are wanted, in order.
        output_gradients: also return dL/d(each tracked layer output).
    """

    net: Any
    split: Callable[[Any], tuple[Any, list[Any]]]
    data_loss: Callable[[Any, Any, Any], Any] | None = None
    add_model_losses: bool = True
    kernels: list[Any] = field(default_factory=list)
    output_gradients: bool = False

    @property
    def needs_gradients(self) -> bool:
        return bool(self.kernels) or self.output_gradients


def check_backend(gradients: bool, output_gradients: bool, backend: str | None = None) -> None:
    """Raise ValueError if ``backend`` cannot compute what ``track`` asks for."""
    backend = backend or keras.backend.backend()
    if gradients and backend not in GRADIENT_MODULES:
        raise ValueError(
            f"track: 'gradients' need one of the backends {sorted(GRADIENT_MODULES)}, not {backend!r}; "
            "track only 'weights' and 'activations' on this backend"
        )
    if output_gradients and backend not in OUTPUT_GRADIENT_BACKENDS:
        raise ValueError(
            f"track: 'output_gradients' need the backend(s) {sorted(OUTPUT_GRADIENT_BACKENDS)}, not {backend!r}"
        )


def build_probe_function(spec: ProbeSpec, backend: str | None = None) -> ProbeFunction:
    """The probe evaluation of ``spec`` for ``backend`` (default: the running Keras backend)."""
    backend = backend or keras.backend.backend()
    if spec.needs_gradients:
        check_backend(bool(spec.kernels), spec.output_gradients, backend)
        module = importlib.import_module(GRADIENT_MODULES[backend])
        return module.build_probe_function(spec)

    def run(x: Any, y: Any, sample_weight: Any) -> tuple[list[Any], list[Any], list[Any]]:
        del y, sample_weight
        _, acts = spec.split(spec.net(x, training=False))
        return list(acts), [], []

    return run
