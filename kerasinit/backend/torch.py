"""PyTorch: gradients, Hessian-vector products, the monitor's probe, the bit-pattern mask select.

Imported on first use, only when PyTorch is Keras's backend (see :mod:`kerasinit.backend`). Eager.

* ``gradient``: ``torch.autograd.grad`` through ``stateless_call`` with the targets as leaf
  tensors. ``hessian_vector``: double backprop, the first ``autograd.grad`` with
  ``create_graph=True``, dotted with the constant v and differentiated again (H v).
* ``build_probe_function``: Keras's torch variables are ``torch.nn.Parameter``s, so autograd sees
  the kernels directly: ONE forward pass of the monitor's probe model with gradients enabled and
  ONE ``torch.autograd.grad`` call for all targets (kernels and, optionally, the tracked layer
  outputs, dL/dy_l of Glorot & Bengio 2010, Fig. 7). A target the loss does not depend on gets
  ``None`` and the monitor records nothing for it.
* ``keep_where``: ``torch.where`` takes ~4x as long on the CPU as multiplying the weight's bit
  pattern (its float bits viewed as integers) by the boolean mask, 650 vs 165 µs for
  LeNet-300-100's three kernels. That is the same select, exactly: a pruned weight gets all bits 0
  (+0.0, whatever it held: inf, NaN, -0.0) and a kept one keeps its bits. ``in_place=True`` writes
  it into the tensor's own storage (for a constraint whose result Keras assigns back to the same
  variable: the assignment then copies nothing).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import torch

from kerasinit.backend.functional import ModelFunction, ProbeFunction, ProbeSpec

HESSIAN = "double-backprop"

#: How many backward passes the probe ran since import (one per probe evaluation with gradients).
GRADIENT_CALLS = 0


def _leaves(targets: list[Any]) -> list[Any]:
    return [t.detach().clone().requires_grad_(True) for t in targets]


def _grad(out: Any, leaves: list[Any], create_graph: bool) -> list[Any]:
    found = torch.autograd.grad(out, leaves, allow_unused=True, create_graph=create_graph)
    return [torch.zeros_like(w) if g is None else g for g, w in zip(found, leaves, strict=True)]


def gradient(fn: ModelFunction) -> Any:
    """``(targets, values, x, y) -> (objective, [∂objective/∂target])``."""

    def run(targets: list[Any], values: Any, x: Any, y: Any) -> Any:
        with torch.enable_grad():
            leaves = _leaves(targets)
            out = fn(leaves, values, x, y)
            grads = _grad(out, leaves, create_graph=False)
        return out.detach(), [g.detach() for g in grads]

    return run


def hessian_vector(fn: ModelFunction) -> Any:
    """``(targets, values, x, y, v) -> [H v]`` with H the Hessian of the objective in the targets."""

    def run(targets: list[Any], values: Any, x: Any, y: Any, v: list[Any]) -> Any:
        with torch.enable_grad():
            leaves = _leaves(targets)
            g = _grad(fn(leaves, values, x, y), leaves, create_graph=True)
            dot = sum((a * b.detach()).sum() for a, b in zip(g, v, strict=True))
            if not dot.requires_grad:  # the objective is linear in the targets: H = 0
                return [torch.zeros_like(w) for w in leaves]
            return [h.detach() for h in _grad(dot, leaves, create_graph=False)]

    return run


def build_probe_function(spec: ProbeSpec) -> ProbeFunction:
    """``(x, y, sample_weight) -> (activations, kernel_grads, output_grads)``, eager."""
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


@cache
def _bits() -> dict[Any, Any]:
    return {torch.float64: torch.int64, torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}


def keep_where(mask: Any, w: Any, in_place: bool = False) -> Any:
    """``w``'s bits times ``mask`` (a pruned weight's bits all 0: +0.0); in ``w``'s storage if ``in_place``."""
    bits = _bits().get(w.dtype)
    if bits is None:
        return torch.where(mask, w, 0)
    data = w.detach()  # masks are assigned, never differentiated: a bit view needs no autograd
    if in_place:
        data.view(bits).mul_(mask)
        return w
    return (data.view(bits) * mask).view(w.dtype)
