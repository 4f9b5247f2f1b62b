"""Backend dispatch for the probe evaluation.

Activations alone need only a forward pass and run through Keras on any backend; gradients need
the backend's autodiff, implemented per backend in a module imported on first use
(``_tf_grads`` for TensorFlow). Adding JAX or torch means adding a module with the same
``build_probe_function`` signature and an entry in :data:`GRADIENT_MODULES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import keras

#: backend name -> module providing ``build_probe_function``.
GRADIENT_MODULES: dict[str, str] = {"tensorflow": "kerasinit.monitor._tf_grads"}

ProbeFunction = Callable[[Any, Any, Any], tuple[list[Any], list[Any], list[Any]]]


def gradients_supported(backend: str | None = None) -> bool:
    return (backend or keras.backend.backend()) in GRADIENT_MODULES


def build_probe_function(
    forward: Callable[[Any], tuple[Any, list[Any]]],
    loss_fn: Callable[[Any, Any, Any], Any] | None,
    kernels: Sequence[Any],
    output_gradients: bool,
    backend: str | None = None,
) -> ProbeFunction:
    """The probe evaluation for ``backend`` (default: the running Keras backend)."""
    backend = backend or keras.backend.backend()
    if backend in GRADIENT_MODULES:
        module = importlib.import_module(GRADIENT_MODULES[backend])
        return module.build_probe_function(forward, loss_fn, kernels, output_gradients)
    if kernels or output_gradients:
        raise ValueError(
            f"track: gradients are implemented for the backends {sorted(GRADIENT_MODULES)}, not {backend!r}; "
            "track only 'weights' and 'activations' on this backend"
        )

    def run(x: Any, y: Any, sample_weight: Any) -> tuple[list[Any], list[Any], list[Any]]:
        del y, sample_weight
        _, acts = forward(x)
        return list(acts), [], []

    return run
