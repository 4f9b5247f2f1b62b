"""Everything kerasinit does differently per Keras backend, behind ONE dispatch.

The rest of kerasinit is written with ``keras.ops``, ``keras.random`` and Keras variables; what
those cannot express lives in one module per backend, imported on first use by backend name (so
``import kerasinit`` imports no framework):

=================  ==========================================================================
``tensorflow.py``  ``tf.GradientTape`` (gradients, double-backprop H·v, probe), XLA-fused in-step
                   mask updates, the ``Select`` kernel
``jax.py``         ``jax.value_and_grad`` / forward-over-reverse H·v over ``stateless_call``,
                   tracer detection
``torch.py``       ``torch.autograd.grad`` (gradients, double backprop, probe), the bit-pattern
                   mask select
=================  ==========================================================================

A backend module offers ``gradient(fn)``, ``hessian_vector(fn)`` and ``HESSIAN`` for a
:class:`~kerasinit.backend.functional.ModelFunction` (pruning scores), ``build_probe_function(spec)``
for a :class:`~kerasinit.backend.functional.ProbeSpec` (the monitor). Adding a backend is one
module and one entry in :data:`MODULES` (and :data:`OUTPUT_GRADIENT_BACKENDS` if it can do dL/dy). The mask select and fused updates are in :mod:`kerasinit.backend.select`.
"""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType
from typing import Any

import keras

from kerasinit.backend.functional import ModelFunction, ProbeFunction, ProbeSpec

#: Keras backend name -> the module implementing kerasinit's backend-specific pieces.
MODULES: dict[str, str] = {
    "tensorflow": "kerasinit.backend.tensorflow",
    "jax": "kerasinit.backend.jax",
    "torch": "kerasinit.backend.torch",
}
#: Backends whose module also computes gradients w.r.t. layer outputs (JAX would need the graph cut
#: at every tracked layer).
OUTPUT_GRADIENT_BACKENDS: frozenset[str] = frozenset({"tensorflow", "torch"})


def module(purpose: str, backend: str | None = None, hint: str = "") -> ModuleType:
    """The backend module of ``backend`` (default: Keras's), or a ValueError saying what ``purpose`` needs."""
    backend = backend or keras.backend.backend()
    if backend not in MODULES:
        raise ValueError(f"{purpose} need one of the backends {sorted(MODULES)}; running {backend!r}.{hint}")
    return _load(backend)


@cache
def _load(backend: str) -> ModuleType:
    return importlib.import_module(MODULES[backend])


def check_probe(gradients: bool, output_gradients: bool, backend: str | None = None) -> None:
    """Raise ValueError if ``backend`` cannot compute what a monitor's ``track`` asks for."""
    backend = backend or keras.backend.backend()
    if gradients and backend not in MODULES:
        raise ValueError(
            f"track: 'gradients' need one of the backends {sorted(MODULES)}, not {backend!r}; "
            "track only 'weights' and 'activations' on this backend"
        )
    if output_gradients and backend not in OUTPUT_GRADIENT_BACKENDS:
        raise ValueError(
            f"track: 'output_gradients' need the backend(s) {sorted(OUTPUT_GRADIENT_BACKENDS)}, not {backend!r}"
        )


def gradient(fn: ModelFunction, purpose: str = "gradients") -> Any:
    """``(targets, values, x, y) -> (objective, [∂objective/∂target])`` for ``fn`` on Keras's backend."""
    return module(purpose).gradient(fn)


def build_probe_function(spec: ProbeSpec, backend: str | None = None) -> ProbeFunction:
    """``(x, y, sample_weight) -> (activations, kernel_grads, output_grads)``: one forward pass and, when
    gradients are asked for, one backward pass for all layers together."""
    if spec.needs_gradients:
        check_probe(bool(spec.kernels), spec.output_gradients, backend)
        return module("track: 'gradients'", backend).build_probe_function(spec)

    def run(x: Any, y: Any, sample_weight: Any) -> tuple[list[Any], list[Any], list[Any]]:
        del y, sample_weight
        _, acts = spec.split(spec.net(x, training=False))
        return list(acts), [], []

    return run


__all__ = ["MODULES", "ModelFunction", "ProbeFunction", "ProbeSpec", "OUTPUT_GRADIENT_BACKENDS", "build_probe_function", "check_probe",
           "gradient", "module"]
