"""``"synflow"``: data-free iterative synaptic flow, ``S = w ⊙ ∂R/∂w``.

Tanaka, Kunin, Yamins & Ganguli, "Pruning neural networks without any data by iteratively
conserving synaptic flow", NeurIPS 2020. The score is that of the linearized network,
``R = 1ᵀ(∏_l |W^[l]|)1``: every weight and bias is replaced by its absolute value (BatchNorm's
statistics too, BatchNorm in inference mode, as the authors' code does with ``model.eval()`` and
``abs_()`` on the whole ``state_dict``), the input is all ones and ``R = Σ model(1)``. The model's
variables are never assigned: the absolute values go through ``stateless_call``, so the signed
weights are untouched. One call is one SynFlow iteration; ``prune_at_init`` iterates (100 rounds
by default, densities ``(1 − sparsity)^(k/n)``).

The linearization: the paper's R is the product of |W| because a positive network of ReLUs is
linear (ReLU is the identity on nonnegative inputs). An activation that is not the identity on
[0, ∞) breaks that, so while scoring every such activation is the identity (:func:`linearized`):

* ReLU6 (``ReLU(max_value=6)``, ``"relu6"``: MobileNetV2, MobileNetV3, EfficientNet-lite) clips the
  positive activations at 6, and with |w| and an all-ones input they exceed 6 from MobileNetV2's
  second block on: every clipped unit has zero gradient, so every score but the classifier's was
  exactly 0, the global ranking fell back to index order and 100 rounds emptied the last 23 of 53
  kernels (blocks 10 to 16, ``Conv_1``, the classifier: output constant over inputs). Without the
  clip the scores are the paper's and no kernel every input crosses is emptied at 90%.
* sigmoid, tanh, GELU, SiLU, softplus, ... saturate or bend the flow the same way; ``ReLU``,
  leaky ReLU, ELU and PReLU are the identity on [0, ∞) and are left alone (scores unchanged).
* The output layers' activations (softmax, sigmoid, ...) are the identity too: R is the sum of the
  logits, as for the paper's logit-output models (a softmax output sums to 1 whatever the weights,
  and ∂R/∂w would vanish). A separate ``Softmax`` layer at the output is not seen through: give such
  a model a logits output.

What is not linearized: ``keras.ops`` calls written in a functional graph, a ``Softmax`` layer
inside (attention: with an all-ones input every token is equal, the attention weights are uniform
whatever the query and key kernels, so those get zero flow), normalization that centers its input
(LayerNorm of a constant vector is its β). ``prune_at_init`` warns naming any weight it empties
(``LayerCollapseWarning``); ``min_density`` keeps a floor per weight.

Residual branches: the paper's algorithm can empty a branch whose input is also added to its output
by a parameter-free identity skip. Conservation (Tanaka et al.'s Theorem 1) holds across a cut of the
network, and the skip belongs to every cut through a block: a branch gets only its share of R, and
pruning the branch's (here three) kernels lowers that share while the skip, which has no weights, keeps
its flow. Iterating compounds it; the network stays connected through the skip (R > 0), which is all
the paper's maximal-critical-compression guarantee covers. MobileNetV2 (alpha 0.35, 32x32, seed 0)
at 90%, 100 rounds, global: blocks 14 and 15 carry 61.5% and 61.0% of R before pruning; at round 70
they keep 1.6% and 1.7% of their ``project`` kernels (``Conv_1``: 4.0%) with 6.4% and 6.7% of R; at
round 80 all six of their kernels are empty (the rest of the network 0 empty, the logits still depend
on the input). Not precision: the same model in float64 throughout gives the same masks (0 of 394,848
entries differ). An exact float64 NumPy reference of the algorithm drains a small residual MLP's
branch the same way (``tests/pruning/test_synflow_mobilenet.py``). ``min_density=0.01`` keeps every
kernel non-empty at the same total sparsity.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from kerasinit import backend
from kerasinit._arrays import to_numpy
from kerasinit.backend.functional import ModelFunction
from kerasinit.layers import iter_layers
from kerasinit.pruning.scores.base import Score, Scores, register_score
from kerasinit.pruning.scores.objectives import linear_outputs
from kerasinit.pruning.scores.snip import HINT, PURPOSE
from kerasinit.pruning.selection import PrunableWeight

#: nonnegative probe values: an activation equal to the identity on all of them is left alone while scoring
_PROBE = np.array([0.0, 0.25, 1.0, 3.0, 5.9, 6.0, 6.5, 20.0, 1e3, 1e5], dtype="float32")


def _identity_on_nonnegatives(fn: Any) -> bool:
    """Whether ``fn(x) == x`` for x ≥ 0 (ReLU, leaky ReLU, ELU: yes; ReLU6, sigmoid, tanh, GELU: no)."""
    try:
        out = to_numpy(fn(keras.ops.convert_to_tensor(_PROBE)))
    except Exception:  # an activation that needs more than a vector: treat it as nonlinear
        return False
    return out.shape == _PROBE.shape and bool(np.allclose(out, _PROBE, rtol=1e-6, atol=0.0))


@contextlib.contextmanager
def linearized(model: keras.layers.Layer) -> Iterator[list[str]]:
    """Meanwhile, every activation of ``model`` that is not the identity on [0, ∞) is the identity.

    A layer's ``activation`` attribute (Dense, Conv*, Activation, ...) becomes ``linear``; a ``ReLU``
    layer loses its ``max_value`` (ReLU6) and ``threshold``. Yields the names of the layers changed.
    Tanaka et al.'s ``R = 1ᵀ(∏|W|)1`` is the flow of the positive linear network; a positive ReLU
    network is that network, a clipped or saturating one is not.
    """
    swapped: list[tuple[keras.layers.Layer, str, Any]] = []
    for layer in iter_layers(model):
        if isinstance(layer, keras.layers.ReLU):
            for attr, neutral in (("max_value", None), ("threshold", 0.0)):
                value = getattr(layer, attr, neutral)
                if value is not None and value != neutral:
                    swapped.append((layer, attr, value))
                    setattr(layer, attr, neutral)
            continue
        act = getattr(layer, "activation", None)
        if callable(act) and act is not keras.activations.linear and not _identity_on_nonnegatives(act):
            swapped.append((layer, "activation", act))
            layer.activation = keras.activations.linear
    try:
        yield sorted({layer.name for layer, _, _ in swapped})
    finally:
        for layer, attr, value in reversed(swapped):
            setattr(layer, attr, value)


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
    """``|w| ⊙ ∂R/∂|w|``, ``R = Σ model(1)`` on absolute weights through the linearized network (:func:`linearized`);
    ``data`` only gives the input shape."""

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
        with linear_outputs(self.model), linearized(self.model):
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
