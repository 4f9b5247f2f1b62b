"""Saliency scores for pruning at initialization: a registry of :class:`Score` classes.

=============  =========================================================  ==========  ==========
name           score (keep the largest unless noted)                      data        paper
=============  =========================================================  ==========  ==========
``magnitude``  ``|w|``                                                    no          baseline
``random``     i.i.d. uniform (a random mask at the chosen densities)     no          baseline
``snip``       ``|g ⊙ w|``, g = ∂L/∂w                                     (x, y)      Lee et al. 2019
``grasp``      ``−w ⊙ (H g)``, the largest removed                        (x, y)      Wang et al. 2020
``synflow``    ``w ⊙ ∂R/∂w``, R = Σ model(1) on ``|w|``; 100 rounds       no          Tanaka et al. 2020
=============  =========================================================  ==========  ==========

Each is a file of this package (formulas and details in its docstring) registered with
:func:`register_score`; :data:`SCORES` is what ``prune_at_init``, ``run_prune_at_init``, the
``kerasinit prune-at-init --methods`` choices and ``docs/pruning_at_init.md`` offer. A new score is
one file: see :mod:`kerasinit.pruning.scores.base`. Gradients come from :mod:`kerasinit.backend`;
this package uses ``keras.ops`` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from kerasinit._validation import check_choice
from kerasinit.pruning.scores import magnitude  # registered first: the baselines lead the registry

# isort: split
from kerasinit.pruning.scores import grasp, snip, synflow
from kerasinit.pruning.scores.base import (
    SCORES,
    Score,
    Scores,
    batches,
    data_methods,
    default_methods,
    register_score,
)
from kerasinit.pruning.scores.grasp import HESSIANS
from kerasinit.pruning.scores.objectives import (
    check_temperature,
    linear_outputs,
    loss_objective,
    output_layers,
)
from kerasinit.pruning.selection import PrunableWeight

BUILT_IN = (magnitude.Magnitude, magnitude.Random, snip.Snip, grasp.Grasp, synflow.SynFlow)
#: The keyword options ``prune_at_init`` passes to the scores that declare them, with their defaults.
OPTIONS: dict[str, Any] = {"hessian": "auto", "temperature": 1.0}


def score_class(method: Any, owner: str = "prune_at_init") -> type[Score]:
    """The registered :class:`Score` class named ``method`` (a ValueError lists the names)."""
    return SCORES[check_choice("method", method, tuple(SCORES), owner=owner)]


class Scorer:
    """Scores of ``weights`` (from ``select(model, ...)``) by ``method``, recomputed on each call with given masks.

    The gradient function is built (and on TensorFlow/JAX compiled) once, so iterating, as SynFlow
    does, traces once. ``data``: SNIP/GraSP: an ``(x, y)`` batch or an iterable of batches
    (gradients averaged); SynFlow: optional, an input batch giving the input shape. ``loss``:
    the SNIP/GraSP objective (default: the compiled model's loss). ``hessian``: how GraSP gets
    H g, one of :data:`HESSIANS`. ``temperature``: GraSP's logit temperature T (the loss sees
    z / T; see :mod:`kerasinit.pruning.scores.grasp`). ``seed``: the random scores.
    """

    def __init__(self, model: keras.layers.Layer, weights: Sequence[PrunableWeight], method: str, data: Any = None, *,
                 loss: Any = None, seed: int | None = None, hessian: str = "auto", temperature: float = 1.0) -> None:
        cls = score_class(method)
        self.method = cls.name
        self.hessian = check_choice("hessian", hessian, HESSIANS, owner="prune_at_init")
        self.temperature = check_temperature(temperature)
        given = {"hessian": self.hessian, "temperature": self.temperature}
        for option, value in given.items():
            if option not in cls.options and option == "temperature" and value != OPTIONS[option]:
                accepting = [name for name, c in SCORES.items() if option in c.options]
                raise ValueError(f"prune_at_init: argument `{option}` applies to method "
                                 f"{' or '.join(repr(n) for n in accepting)} only; received {option}={value!r} "
                                 f"with method {self.method!r}.")
        if cls.needs_data and data is None:
            batches(None)  # the error naming the methods that need data
        self.score = cls(model, weights, data, loss=loss, seed=seed,
                         **{k: v for k, v in given.items() if k in cls.options})

    def __call__(self, masks: Mapping[str, np.ndarray] | None = None) -> Scores:
        """The scores with ``masks`` (``{"layer/attr": uint8}``) applied to the weights first."""
        return self.score(masks)


def compute_scores(model: keras.layers.Layer, weights: Sequence[PrunableWeight], method: str, data: Any = None, *,
                   loss: Any = None, masks: Mapping[str, np.ndarray] | None = None, seed: int | None = None,
                   hessian: str = "auto", temperature: float = 1.0) -> Scores:
    """One evaluation of :class:`Scorer` (``masks`` applied to the weights first)."""
    return Scorer(model, weights, method, data, loss=loss, seed=seed, hessian=hessian, temperature=temperature)(masks)


__all__ = ["BUILT_IN", "HESSIANS", "SCORES", "Score", "Scorer", "Scores", "batches", "check_temperature",
           "compute_scores", "data_methods", "default_methods", "linear_outputs", "loss_objective", "output_layers", "register_score",
           "score_class"]
