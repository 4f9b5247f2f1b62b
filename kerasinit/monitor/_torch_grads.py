"""PyTorch implementation of the probe evaluation (imported lazily, PyTorch backend only).

Keras's torch variables are ``torch.nn.Parameter``s, so autograd sees the kernels directly: ONE
forward pass of the multi-output probe model with gradients enabled and ONE
``torch.autograd.grad`` call for all targets at once, the kernels of every tracked layer and,
optionally, the tracked layer outputs (dL/dy_l, Glorot & Bengio 2010, Fig. 7). A target the loss
does not depend on gets ``None`` and the monitor records nothing for it.
"""

from __future__ import annotations

from typing import Any

from kerasinit.monitor._backend import ProbeFunction, ProbeSpec

#: How many backward passes ran since import (one per probe evaluation with gradients).
GRADIENT_CALLS = 0


def build_probe_function(spec: ProbeSpec) -> ProbeFunction:
    """``(x, y, sample_weight) -> (activations, kernel_grads, output_grads)``, eager."""
    import torch

    kernels = list(spec.kernels)

    def run(x: Any, y: Any, sample_weight: Any) -> tuple[list[Any], list[Any], list[Any]]:
        global GRADIENT_CALLS
        with torch.enable_grad():
            y_pred, acts = spec.split(spec.net(x, training=False))
            acts = list(acts)
            loss = spec.data_loss(y, y_pred, sample_weight)
            extra = spec.net.losses if spec.add_model_losses else []
            if extra:
                loss = loss + sum(torch.as_tensor(v, dtype=loss.dtype) for v in extra)
            targets = [k.value for k in kernels] + (acts if spec.output_gradients else [])
            wanted = [t for t in targets if isinstance(t, torch.Tensor) and t.requires_grad]
            GRADIENT_CALLS += 1
            found = torch.autograd.grad(loss, wanted, allow_unused=True) if wanted else ()
        by_id = {id(t): g for t, g in zip(wanted, found, strict=True)}
        grads = [None if g is None else g.detach() for g in (by_id.get(id(t)) for t in targets)]
        return [a.detach() for a in acts], grads[: len(kernels)], grads[len(kernels) :]

    return run
