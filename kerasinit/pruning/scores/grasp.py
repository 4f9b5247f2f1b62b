"""``"grasp"``: gradient signal preservation, ``S = −w ⊙ (H g)``; the weights with the largest S are removed.

Wang, Zhang & Grosse, "Picking winning tickets before training by preserving gradient flow", ICLR
2020. H is the Hessian of the loss and g its gradient (both averaged over the batches), taken over
the pruned weights only, the other weights held fixed (as the authors' code does: the Hessian block
of the prunable kernels).

``hessian``: H g comes from double backprop on TensorFlow, JAX and PyTorch (``"double-backprop"``);
``"finite-difference"`` uses the central difference ``(∇L(w + εg) − ∇L(w − εg)) / 2ε`` instead, and
``"auto"`` falls back to it when an operation has no second derivative on the backend (PyTorch's
fused CPU attention kernel in ``MultiHeadAttention``, for one). :attr:`Scores.hessian` says which
was used, :attr:`Scores.notes` why.

``temperature=T`` divides the logits z by T inside the loss, ``L(softmax(z / T), y)``, for g and H g
alike, as Wang et al.'s code does with T = 200 (the paper's equations have no T). The default T = 1
is the formula as printed and applies to any loss; T ≠ 1 is refused unless the objective is a
cross-entropy on logits, i.e. where z / T is exact: a probability cross-entropy behind softmax/sigmoid
output layers, whose pre-activations are used (:func:`~kerasinit.pruning.scores.objectives.linear_outputs`),
or a cross-entropy with ``from_logits=True``. A large T flattens the softmax (p ≈ 1/K once T ≫ |z|);
g shrinks like 1/T and H g like 1/T², so only the ranking, not the scale, is comparable across
temperatures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit._validation import check_choice
from kerasinit.backend.functional import ModelFunction, Objective
from kerasinit.pruning.scores.base import Batch, Scores, mean_gradient, register_score
from kerasinit.pruning.scores.objectives import check_temperature, logits_loss
from kerasinit.pruning.scores.snip import Snip
from kerasinit.pruning.selection import PrunableWeight

HESSIANS = ("auto", "double-backprop", "finite-difference")


def _double_backprop(module: Any, fn: ModelFunction, targets: list[Any], values: Any, data: list[Batch],
                     v: list[Any]) -> list[np.ndarray]:
    hvp = module.hessian_vector(fn)
    total: list[np.ndarray] | None = None
    for x, y in data:
        h = [to_numpy(a).astype("float64") for a in hvp(targets, values, x, y, v)]
        total = h if total is None else [a + b for a, b in zip(total, h, strict=True)]
    assert total is not None
    return [a / len(data) for a in total]


def _finite_difference(grad: Any, targets: list[Any], values: Any, data: list[Batch], g: list[np.ndarray],
                       dtype: list[str]) -> list[np.ndarray]:
    """Central difference of the gradient along g, the step ε·g being 1e-3 of the weights' norm."""
    w = [to_numpy(t).astype("float64") for t in targets]
    g_norm = float(np.sqrt(sum(float((a * a).sum()) for a in g))) or 1.0
    w_norm = float(np.sqrt(sum(float((a * a).sum()) for a in w))) or 1.0
    eps = 1e-3 * w_norm / g_norm
    plus = [keras.ops.convert_to_tensor((a + eps * b).astype(d)) for a, b, d in zip(w, g, dtype, strict=True)]
    minus = [keras.ops.convert_to_tensor((a - eps * b).astype(d)) for a, b, d in zip(w, g, dtype, strict=True)]
    gp = mean_gradient(grad, plus, values, data)
    gm = mean_gradient(grad, minus, values, data)
    return [(a - b) / (2 * eps) for a, b in zip(gp, gm, strict=True)]


def _hessian_gradient(module: Any, fn: ModelFunction, grad: Any, targets: list[Any], values: Any, data: list[Batch],
                      g: list[np.ndarray], hessian: str, notes: list[str]) -> tuple[list[np.ndarray], str]:
    """Mean over batches of H_b g and how it was computed.

    ``"auto"``: double backprop where the backend module offers it, and finite differences if an
    operation of the model has no second derivative there (e.g. PyTorch's fused CPU attention
    kernel); the reason goes to ``notes``. ``"double-backprop"`` raises instead of falling back.
    """
    dtype = [keras.backend.standardize_dtype(t.dtype) for t in targets]
    if hessian != "finite-difference" and getattr(module, "HESSIAN", None) == "double-backprop":
        v = [keras.ops.convert_to_tensor(a.astype(d)) for a, d in zip(g, dtype, strict=True)]
        try:
            return _double_backprop(module, fn, targets, values, data, v), "double-backprop"
        except (RuntimeError, NotImplementedError, LookupError) as exc:  # torch / TF: no second derivative of an op
            if hessian == "double-backprop":
                raise ValueError(f"grasp: double backprop failed on this model and backend ({exc}); "
                                 "use hessian='finite-difference' or 'auto'.") from exc
            notes.append(f"H g by finite differences: double backprop failed ({type(exc).__name__}: {str(exc)[:200]})")
    elif hessian == "double-backprop":
        raise ValueError(f"grasp: the {keras.backend.backend()!r} backend offers no double backprop; "
                         "use hessian='finite-difference' or 'auto'.")
    return _finite_difference(grad, targets, values, data, g, dtype), "finite-difference"



@register_score("grasp", needs_data=True, options=("hessian", "temperature"))
class Grasp(Snip):
    """``−w ⊙ (H g)``, the largest removed; ``hessian`` one of :data:`HESSIANS`, ``temperature`` T > 0."""

    keep_largest = False

    def __init__(self, model: keras.layers.Layer, weights: Sequence[PrunableWeight], data: Any = None, *,
                 loss: Any = None, seed: int | None = None, hessian: str = "auto", temperature: float = 1.0,
                 **options: Any) -> None:
        self.hessian = check_choice("hessian", hessian, HESSIANS, owner="prune_at_init")
        self.temperature = check_temperature(temperature)
        super().__init__(model, weights, data, loss=loss, seed=seed, **options)

    def objective(self, objective: Objective) -> Objective:
        """``objective`` on ``y_pred / T``, where ``y_pred`` are logits (else a ValueError)."""
        if self.temperature == 1.0:
            return objective
        loss = self.loss
        fn = keras.losses.get(loss if loss is not None else getattr(self.model, "loss", None))
        if not (self.logits or logits_loss(fn)):
            raise ValueError(
                f"grasp: argument `temperature` ({self.temperature:g}) divides the logits, so the loss must be a "
                "cross-entropy on logits: a probability cross-entropy ('sparse_categorical_crossentropy', "
                "'categorical_crossentropy', 'binary_crossentropy') with softmax/sigmoid output layers (their "
                "pre-activations are used), or such a loss with from_logits=True on a logits output; received "
                f"loss={loss!r}. A separate Softmax layer at the output is not seen through. Use temperature=1.")
        t = self.temperature
        return lambda y, y_pred: objective(y, keras.ops.divide(y_pred, t))

    def __call__(self, masks: Mapping[str, np.ndarray] | None = None) -> Scores:
        masked = self.masked(masks)
        targets = [keras.ops.convert_to_tensor(v) for v in masked]
        notes: list[str] = []
        with self.scoring():
            g = self.gradient(targets)
            hg, how = _hessian_gradient(self.backend, self.fn, self.grad, targets, self.values, self.batches, g,
                                        self.hessian, notes)
        out = {n: -v.astype("float64") * a for n, a, v in zip(self.names, hg, masked, strict=True)}
        if self.temperature != 1.0:
            notes.append(f"logits divided by temperature {self.temperature:g}")
        return Scores(self.name, out, keep_largest=False, hessian=how, batches=len(self.batches), notes=notes)
