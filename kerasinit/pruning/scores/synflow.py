"""``"synflow"``: data-free iterative synaptic flow, ``S = w ⊙ ∂R/∂w``.

Tanaka, Kunin, Yamins & Ganguli, "Pruning neural networks without any data by iteratively
conserving synaptic flow", NeurIPS 2020. Every weight and bias is replaced by its absolute value
(BatchNorm's statistics too, BatchNorm in inference mode), the input is all ones and
``R = Σ model(1)``. The model's variables are never assigned: the absolute values go through
``stateless_call``, so the signed weights are untouched. The output layers' activations (softmax,
sigmoid, ...) are the identity while scoring: R is the sum of the logits, as for the paper's
logit-output models (a softmax output sums to 1 whatever the weights, and ∂R/∂w would vanish). A
separate ``Softmax`` layer at the output is not seen through: give such a model a logits output.
One call is one SynFlow iteration; ``prune_at_init`` iterates (100 rounds by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from kerasinit import backend
from kerasinit._arrays import to_numpy
from kerasinit.backend.functional import ModelFunction
from kerasinit.pruning.scores.base import Score, Scores, register_score
from kerasinit.pruning.scores.objectives import linear_outputs
from kerasinit.pruning.scores.snip import HINT, PURPOSE
from kerasinit.pruning.selection import PrunableWeight


def _synflow_input(model: keras.layers.Layer, data: Any) -> Any:
    """All-ones input of batch size 1, shaped like the model's inputs (or like ``data``'s x)."""
    if data is not None:
        x = data[0] if isinstance(data, tuple | list) and len(data) == 2 else data
        return keras.tree.map_structure(lambda a: keras.ops.ones((1, *tuple(a.shape)[1:]), dtype="float32"), x)
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError("synflow: the model has no symbolic inputs (subclassed?); pass `data` (an input batch) "
                         "so that its shape is known.")
    ones = [keras.ops.ones((1, *tuple(i.shape)[1:]), dtype=i.dtype) for i in inputs]
    return ones[0] if len(ones) == 1 else ones


@register_score("synflow", needs_data=False, iterations=100)
class SynFlow(Score):
    """``|w| ⊙ ∂R/∂|w|`` with ``R = Σ model(1)`` on absolute weights; ``data`` only gives the input shape."""

    def __init__(self, model: keras.layers.Layer, weights: Sequence[PrunableWeight], data: Any = None, *,
                 loss: Any = None, seed: int | None = None, **options: Any) -> None:
        super().__init__(model, weights, data, loss=loss, seed=seed, **options)
        module = backend.module(PURPOSE, hint=HINT)
        self.fn = ModelFunction(model, [w.variable for w in self.weights],
                                lambda y, y_pred: keras.ops.sum(keras.ops.sum(y_pred)))
        # every float weight, bias and BatchNorm statistic by its absolute value (Tanaka et al.'s linearization)
        self.values = tuple([keras.ops.abs(v) if "float" in keras.backend.standardize_dtype(v.dtype) else v
                             for v in group] for group in self.fn.values())
        self.ones = _synflow_input(model, data)
        self.grad = module.gradient(self.fn)

    def __call__(self, masks: Mapping[str, np.ndarray] | None = None) -> Scores:
        masked = self.masked(masks)
        targets = [keras.ops.convert_to_tensor(np.abs(v)) for v in masked]
        with linear_outputs(self.model):
            r, g = self.grad(targets, self.values, self.ones, None)
        out = {n: to_numpy(a).astype("float64") * np.abs(v) for n, a, v in zip(self.names, g, masked, strict=True)}
        if not np.isfinite(float(to_numpy(r))) or not all(np.isfinite(a).all() for a in out.values()):
            raise ValueError("synflow: R = Σ model(1) overflowed float32 with |w| (a very deep model?); scale the "
                             "initial weights down (scores are invariant to a per-layer scale) or prune fewer layers.")
        # the flow through the kernels is about R per layer (exactly R without biases, conservation)
        if masks is None and sum(float(a.sum()) for a in out.values()) <= 1e-4 * abs(float(to_numpy(r))):
            raise ValueError("synflow: R = Σ model(1) does not depend on the weights (an output normalized by a "
                             "Softmax layer?); give the model a logits output for scoring.")
        return Scores(self.name, out)
