"""``"snip"``: connection sensitivity ``|g ⊙ w|`` with ``g = ∂L/∂w`` on mini-batches.

Lee, Ajanthan & Torr, "SNIP: Single-shot network pruning based on connection sensitivity", ICLR
2019. With several batches g is their mean gradient. The loss is ``loss`` or the compiled
model's (:func:`~kerasinit.pruning.scores.objectives.loss_objective`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from kerasinit import backend
from kerasinit.backend.functional import ModelFunction, Objective
from kerasinit.pruning.scores.base import Score, Scores, batches, mean_gradient, register_score
from kerasinit.pruning.scores.objectives import linear_outputs, loss_objective
from kerasinit.pruning.selection import PrunableWeight

#: What the scores that differentiate need from the backend, for the error on other backends.
PURPOSE = "pruning scores with gradients"
HINT = " Use method 'magnitude' or 'random' on this backend."


@register_score("snip", needs_data=True)
class Snip(Score):
    """``|g ⊙ w|``; also the base of the scores that differentiate a loss on data (GraSP)."""

    def __init__(self, model: keras.layers.Layer, weights: Sequence[PrunableWeight], data: Any = None, *,
                 loss: Any = None, seed: int | None = None, **options: Any) -> None:
        super().__init__(model, weights, data, loss=loss, seed=seed, **options)
        self.backend = backend.module(PURPOSE, hint=HINT)
        self.batches = batches(data)
        objective, self.logits = loss_objective(model, loss)
        self.fn = ModelFunction(model, [w.variable for w in self.weights], self.objective(objective))
        self.values = self.fn.values()
        self.grad = self.backend.gradient(self.fn)

    def objective(self, objective: Objective) -> Objective:
        """The objective differentiated (GraSP divides the logits by its temperature here)."""
        return objective

    def scoring(self) -> contextlib.AbstractContextManager[None]:
        """While scoring, the output activations are linear if the loss is read from the logits."""
        return linear_outputs(self.model) if self.logits else contextlib.nullcontext()

    def gradient(self, targets: list[Any]) -> list[np.ndarray]:
        """The mean gradient of the objective at ``targets`` (the masked weights as tensors)."""
        return mean_gradient(self.grad, targets, self.values, self.batches)

    def __call__(self, masks: Mapping[str, np.ndarray] | None = None) -> Scores:
        masked = self.masked(masks)
        targets = [keras.ops.convert_to_tensor(v) for v in masked]
        with self.scoring():
            g = self.gradient(targets)
        return Scores(self.name, {n: np.abs(a * v) for n, a, v in zip(self.names, g, masked, strict=True)},
                      batches=len(self.batches))
