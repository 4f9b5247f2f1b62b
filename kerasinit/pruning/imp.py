"""Iterative magnitude pruning (IMP): the mask of each round of a lottery-ticket run.

Frankle & Carbin, "The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks", ICLR
2019. Round k keeps, among the survivors of round k − 1, the largest-magnitude weights of the
*trained* network, so that a tensor pruned at rate p per round keeps ``keep_count(n, 1 − (1 − p)^k)``
of its n weights; with ``scope="global"`` the tensors listed in ``joint`` share one threshold. A
pruned weight never returns. The experiment (training, rewinding, controls) is
:func:`kerasinit.experiments.lottery.run_lottery`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from kerasinit.pruning.masks import global_masks, magnitude_mask


def next_masks(trained: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray], rates: Mapping[str, float],
               round_: int, scope: str, joint: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Masks of round ``round_``: among the survivors of ``masks``, keep the largest |trained| weights,
    ``keep_count(n, 1 − (1 − rates[name])^round_)`` per tensor; with ``scope="global"`` the tensors in
    ``joint`` share one threshold (their joint count follows the formula). A pruned weight never returns."""
    values = {n: trained[n] * masks[n] for n in masks}  # pruned weights are 0: they go first
    joint = [n for n in joint if n in masks] if scope == "global" else []
    out: dict[str, np.ndarray] = {}
    if joint:
        out.update(zip(joint, global_masks([values[n] for n in joint], 1.0 - (1.0 - rates[joint[0]]) ** round_),
                       strict=True))
    for n in masks:
        if n not in out:
            out[n] = magnitude_mask(values[n], 1.0 - (1.0 - rates[n]) ** round_)
    # a surviving weight trained to exactly 0.0 could tie with pruned ones: never revive a pruned weight
    return {n: out[n] & masks[n] for n in masks}


def remaining(masks: Mapping[str, np.ndarray], layer_of: Mapping[str, str]) -> tuple[float, dict[str, float]]:
    """Fraction of prunable weights unmasked, overall and per weight (keyed by ``layer_of[name]``)."""
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.size for m in masks.values())
    return kept / total, {layer_of[n]: float(m.sum() / m.size) for n, m in masks.items()}


__all__ = ["next_masks", "remaining"]
