"""The baselines: ``"magnitude"`` (``|w|``) and ``"random"`` (i.i.d. uniform scores: a random mask at
the chosen densities)."""

from __future__ import annotations

import numpy as np

from kerasinit.pruning.scores.base import Score, register_score


@register_score("magnitude", needs_data=False)
class Magnitude(Score):
    """``|w|``: keep the largest weights."""

    baseline = True

    def compute(self, masked: list[np.ndarray]) -> dict[str, np.ndarray]:
        return {n: np.abs(v) for n, v in zip(self.names, masked, strict=True)}


@register_score("random", needs_data=False, iterative=False)
class Random(Score):
    """Uniform random numbers (seeded by ``seed``): a random mask at each weight's density."""

    baseline = True

    def compute(self, masked: list[np.ndarray]) -> dict[str, np.ndarray]:
        return {n: self.rng.random(v.shape) for n, v in zip(self.names, masked, strict=True)}
