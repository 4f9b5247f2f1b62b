"""PyTorch gradients for the pruning scores (imported lazily, PyTorch backend only).

``gradient``: ``torch.autograd.grad`` through ``stateless_call`` with the targets as leaf
tensors. ``hessian_vector``: double backprop, the first ``autograd.grad`` with
``create_graph=True``, dotted with the constant v and differentiated again (H v). Eager.
"""

from __future__ import annotations

from typing import Any

from kerasinit.pruning._functional import ModelFunction

HESSIAN = "double-backprop"


def _leaves(targets: list[Any]) -> list[Any]:
    return [t.detach().clone().requires_grad_(True) for t in targets]


def _grad(out: Any, leaves: list[Any], create_graph: bool) -> list[Any]:
    import torch

    found = torch.autograd.grad(out, leaves, allow_unused=True, create_graph=create_graph)
    return [torch.zeros_like(w) if g is None else g for g, w in zip(found, leaves, strict=True)]


def gradient(fn: ModelFunction) -> Any:
    """``(targets, values, x, y) -> (objective, [∂objective/∂target])``."""
    import torch

    def run(targets: list[Any], values: Any, x: Any, y: Any) -> Any:
        with torch.enable_grad():
            leaves = _leaves(targets)
            out = fn(leaves, values, x, y)
            grads = _grad(out, leaves, create_graph=False)
        return out.detach(), [g.detach() for g in grads]

    return run


def hessian_vector(fn: ModelFunction) -> Any:
    """``(targets, values, x, y, v) -> [H v]`` with H the Hessian of the objective in the targets."""
    import torch

    def run(targets: list[Any], values: Any, x: Any, y: Any, v: list[Any]) -> Any:
        with torch.enable_grad():
            leaves = _leaves(targets)
            g = _grad(fn(leaves, values, x, y), leaves, create_graph=True)
            dot = sum((a * b.detach()).sum() for a, b in zip(g, v, strict=True))
            if not dot.requires_grad:  # the objective is linear in the targets: H = 0
                return [torch.zeros_like(w) for w in leaves]
            return [h.detach() for h in _grad(dot, leaves, create_graph=False)]

    return run
