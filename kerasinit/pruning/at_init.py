"""``prune_at_init``: fixed masks chosen before training (SNIP, GraSP, SynFlow, magnitude, random).

The masks come from the scores of :mod:`kerasinit.pruning.scores`, spread over the layers by
:mod:`kerasinit.pruning.distributions` (or by an N:M ``pattern``, :mod:`kerasinit.pruning.patterns`),
and are installed by a :class:`~kerasinit.pruning.pruner.Pruner`: its weight constraints zero the
pruned weights after every optimizer step of ``fit`` on TensorFlow, JAX and PyTorch, so plain
``model.fit`` keeps them exactly 0 with no callback (``PruningCallback`` is for schedules). On
JAX the compiled step holds the masks as constants of its trace; the pruner retraces a step
compiled before the masks were set, and fixed masks need nothing more.

Iterative pruning (``iterations`` k = 1…n, SynFlow's default n = 100): the scores are recomputed
with the current masks and the density of iteration k is ``d^(k/n)``, ``d = 1 − sparsity``
(Tanaka et al. 2020's exponential schedule; per weight for the non-global distributions).

Controls of Frankle, Dziugaite, Roy & Carbin, "Pruning neural networks at initialization: why
are we missing the mark?", ICLR 2021 (``ablation``): ``"shuffle"`` permutes each weight's mask
at random (same per-layer sparsity), ``"reinit"`` draws the kept weights again from the layer's
initializer, ``"invert"`` keeps the lowest-scoring weights instead of the highest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit._validation import check_choice, check_int, check_seed
from kerasinit.pruning.blocks import (
    NO_BLOCK,
    block_count,
    check_block,
    exclusive,
    kept_blocks,
    matrix_shape,
    pool,
)
from kerasinit.pruning.blocks import expand as expand_blocks
from kerasinit.pruning.channels import NORMS, channel_scores, expand, kept_channels, output_axis
from kerasinit.pruning.distributions import layer_sparsities, score_masks
from kerasinit.pruning.masks import check_floors, check_min_density, keep_count
from kerasinit.pruning.patterns import n_m_mask, pattern_sparsity, reduction_axis
from kerasinit.pruning.policy import PruningPolicy, apply_policy, get_policy, warn_notes
from kerasinit.pruning.pruner import GRANULARITIES, Pruner
from kerasinit.pruning.scores import Score, Scorer, Scores, score_class
from kerasinit.pruning.selection import PrunableWeight, Selector, select

ABLATIONS = ("shuffle", "reinit", "invert")
OWNER = "prune_at_init"


class AtInitPruner(Pruner):
    """The :class:`Pruner` returned by :func:`prune_at_init`, with what chose its masks.

    Attributes:
        method, ablation, iterations, pattern, granularity, block_size, block_pooling_type, policy: the
            arguments used (``policy_notes``: what may keep the policy's target from running it sparse).
        scores: the last :class:`~kerasinit.pruning.scores.Scores` computed (GraSP: ``scores.hessian``
            says whether H g came from double backprop or finite differences).
        targets: ``{"layer/attr": target sparsity}`` (None for the global distribution).
        min_density: the floor used; ``collapsed``: the weights left empty (a warning named them).
    """

    method: str
    ablation: tuple[str, ...]
    iterations: int
    pattern: str | None
    granularity: str
    scores: Scores
    targets: dict[str, float] | None


def _ablations(ablation: Any) -> tuple[str, ...]:
    items = [ablation] if isinstance(ablation, str) else list(ablation or ())
    for a in items:
        if a not in ABLATIONS:
            raise ValueError(f"{OWNER}: argument `ablation` must be None or one or more of {list(ABLATIONS)}; received {ablation!r}.")
    return tuple(items)


def _initializer(weight: PrunableWeight) -> Any:
    layer = weight.layer
    for attr in (f"{weight.attr}_initializer", "depthwise_initializer"):
        init = getattr(layer, attr, None)
        if init is not None:
            return init
    raise ValueError(f"{OWNER}: ablation 'reinit' found no initializer for {weight.name!r} "
                     f"(expected attribute {weight.attr}_initializer on {type(layer).__name__}).")


def _redraw(weight: PrunableWeight, rng: np.random.Generator) -> np.ndarray:
    """New values from the weight's initializer, with a fresh seed (an int seed would repeat the old draw)."""
    init = _initializer(weight)
    config = init.get_config()
    if "seed" in config:
        init = type(init).from_config({**config, "seed": int(rng.integers(2**31 - 1))})
    return to_numpy(init(tuple(weight.variable.shape), dtype=weight.variable.dtype))


def _scheduled(sparsity: float, fraction: float) -> float:
    """The sparsity of an iteration ``fraction`` = k/n of the way: density ``(1 − sparsity)^(k/n)``."""
    return 1.0 - (1.0 - sparsity) ** fraction


def _iterations(score: type[Score], iterations: Any, pattern: str | None) -> int:
    """Rounds of score-and-prune: the score's default (SynFlow 100, else 1), 1 with a ``pattern``."""
    if iterations is None:
        return score.iterations if pattern is None else 1
    n = check_int("iterations", iterations, 1, owner=OWNER)
    if n > 1 and not score.iterative:
        raise ValueError(f"{OWNER}: argument `iterations` must be 1 for method {score.name!r}; received {n}.")
    if n > 1 and pattern is not None:
        raise ValueError(f"{OWNER}: argument `iterations` must be 1 for a `pattern`; received {n}.")
    return n


def prune_at_init(
    model: keras.layers.Layer,
    sparsity: float | None,
    method: str,
    data: Any = None,
    *,
    distribution: str | Mapping[str, float] = "global",
    iterations: int | None = None,
    seed: int | None = None,
    layers: Iterable[Selector] | Selector | None = None,
    ablation: str | Sequence[str] | None = None,
    pattern: str | None = None,
    loss: Any = None,
    hessian: str = "auto",
    granularity: str = "weight",
    norm: str = "l2",
    temperature: float = 1.0,
    min_density: float = 0.0,
    block_size: tuple[int, int] = NO_BLOCK,
    block_pooling_type: str = "AVG",
    policy: str | PruningPolicy | None = None,
) -> AtInitPruner:
    """Prune ``model`` before training by ``method`` and install fixed masks; train with ``fit`` afterwards.

    Args:
        model: a built Keras 3 model.
        sparsity: fraction of the selected weights removed, in [0, 1) (None with a ``pattern``).
        method: a registered score: ``"magnitude"``, ``"random"``, ``"snip"``, ``"grasp"``, ``"synflow"`` or one
            added with :func:`~kerasinit.pruning.register_score` (formulas and papers in :mod:`kerasinit.pruning.scores`).
        data: SNIP/GraSP: an ``(x, y)`` batch or an iterable of batches (averaged); SynFlow: optional,
            only to give the input shape of a model without symbolic inputs.
        distribution: ``"global"``, ``"uniform"``, ``"erk"`` or ``{layer name: sparsity}``
            (:mod:`kerasinit.pruning.distributions`).
        iterations: score-and-prune rounds at densities ``(1 − sparsity)^(k/n)``; default the score's own
            (100 for SynFlow, 1 otherwise).
        seed: for ``"random"`` and the ablations' draws.
        layers: which layers to prune (as for :class:`Pruner`); default every prunable one.
        ablation: None or one or more of ``"shuffle"``, ``"reinit"``, ``"invert"`` (Frankle et al. 2021).
        pattern: ``"N:M"``: N kept in every M consecutive weights along each weight's input axis
            (:mod:`kerasinit.pruning.patterns`), by score; replaces ``distribution``.
        loss: SNIP/GraSP objective (default: the compiled model's loss).
        hessian: GraSP's H g: ``"auto"`` (double backprop), ``"double-backprop"`` or ``"finite-difference"``.
        temperature: GraSP only: the loss sees the logits divided by T (Wang et al.'s code: T = 200);
            default 1, the paper's formula. T ≠ 1 needs a cross-entropy on logits (see
            :mod:`kerasinit.pruning.scores`).
        granularity: ``"weight"`` or ``"channel"`` (whole output channels, ranked by the ``norm``, ``"l1"``
            or ``"l2"``, of their scores; :mod:`kerasinit.pruning.channels`). Channels are pruned per
            layer: ``distribution`` must then be ``"uniform"``, ``"erk"`` or a mapping; ``"shuffle"``
            permutes whole channels.
        min_density: the least fraction of each weight kept (0, the default: no floor). With the
            global distribution each weight keeps at least ``max(1, ⌈min_density · n⌉)`` of its own
            largest scores in every round, the rest of the budget by the one threshold (the total
            sparsity unchanged); the other distributions and patterns keep at least one weight of
            each and must give every weight a density ≥ ``min_density`` (a ValueError otherwise).
            Whatever it is, weights left empty are named by a
            :class:`~kerasinit.pruning.masks.LayerCollapseWarning` and listed in ``pruner.collapsed``.
            With blocks the floor and the densities count blocks.
        block_size: ``(r, c)``: whole ``r × c`` blocks of each weight's matrix view kept or pruned, each
            scored by its weights' scores pooled (``block_pooling_type``: ``"AVG"`` or ``"MAX"``), as
            TFMOT pools ``|w|`` (:mod:`kerasinit.pruning.blocks`); every distribution applies to the
            blocks. Excludes ``pattern`` and ``granularity="channel"``; ``"shuffle"`` permutes whole blocks.
        policy: None or ``"xnnpack"`` (or a :class:`~kerasinit.pruning.policy.PruningPolicy`): prune
            only the layers the target runs sparse (:mod:`kerasinit.pruning.policy`).

    Returns:
        The installed :class:`AtInitPruner` (masks fixed: no ``PruningCallback`` needed in ``fit``).
    """
    seed = check_seed(seed, owner=OWNER)
    if isinstance(seed, keras.random.SeedGenerator | dict):
        raise TypeError(f"{OWNER}: argument `seed` must be None or an int; received {seed!r}.")
    ablations = _ablations(ablation)
    sparsity, nm = pattern_sparsity(sparsity, pattern, OWNER)
    if nm is not None and not (isinstance(distribution, str) and distribution == "global"):
        raise ValueError(f"{OWNER}: arguments `pattern` and `distribution` exclude each other; received distribution={distribution!r}.")
    granularity = check_choice("granularity", granularity, GRANULARITIES, owner=OWNER)
    norm = check_choice("norm", norm, NORMS, owner=OWNER)
    channels = granularity == "channel"
    if channels and (nm is not None or (isinstance(distribution, str) and distribution == "global")):
        raise ValueError(f"{OWNER}: granularity 'channel' prunes each layer's channels: give `distribution` as "
                         "'uniform', 'erk' or a {layer: sparsity} dict (not 'global'), and no `pattern`.")
    block, pooling = check_block(block_size, block_pooling_type, OWNER)
    exclusive(block, OWNER, pattern=pattern, granularity=granularity)
    blocks = block != NO_BLOCK
    chosen_policy = get_policy(policy, OWNER)
    weights = select(model, layers)  # everything is checked before the pruner attaches its masks
    notes: list[str] = []
    if chosen_policy is not None:
        weights, notes = apply_policy(chosen_policy, model, weights, layers is not None, OWNER)
        target_notes = chosen_policy.sparsity_notes(sparsity)
        warn_notes(OWNER, chosen_policy, target_notes)
        notes += target_notes
        kept_layers = {id(w.layer) for w in weights}
        layers = [lambda layer: id(layer) in kept_layers]
    for w in weights if blocks else ():
        matrix_shape(tuple(w.variable.shape), w.name)  # rank >= 2
    axes = {w.name: reduction_axis(w) for w in weights} if nm is not None else {}
    out_axes = {w.name: output_axis(w) for w in weights} if channels else {}
    targets = None if nm is not None else layer_sparsities(weights, sparsity, distribution, OWNER)
    shapes = {w.name: tuple(w.variable.shape) for w in weights}
    min_density = check_min_density(min_density, OWNER)
    if min_density > 0:
        densities = ({w.name: nm[0] / nm[1] for w in weights} if nm is not None
                     else None if targets is None else {n: 1.0 - s for n, s in targets.items()})
        if densities is None:
            sizes = [block_count(shapes[w.name], block) if blocks else int(np.prod(shapes[w.name])) for w in weights]
            check_floors(sizes, min_density, keep_count(sum(sizes), sparsity), sparsity, OWNER)
        else:
            low = {n: round(d, 6) for n, d in densities.items() if d < min_density - 1e-12}
            if low:
                raise ValueError(f"{OWNER}: argument `min_density`={min_density:g} exceeds the density the distribution "
                                 f"or pattern gives to {low}; lower it or change the distribution.")
    n_iter = _iterations(score_class(method), iterations, pattern)
    scorer = Scorer(model, weights, method, data, loss=loss, seed=seed, hessian=hessian, temperature=temperature)
    pruner = AtInitPruner(model, None, layers=layers)
    assert [w.name for w in pruner.weights] == [w.name for w in weights]
    rng = np.random.default_rng(None if seed is None else seed + 1)
    masks: dict[str, np.ndarray] | None = None
    for k in range(1, n_iter + 1):
        scores = scorer(masks)
        importance = scores.importance()
        if channels:  # one score per channel, as a 1-D "weight"; pruned channels stay pruned
            importance = {n: channel_scores(v, out_axes[n], norm) for n, v in importance.items()}
            if masks is not None:
                masks = {n: kept_channels(m, out_axes[n]).view(np.uint8) for n, m in masks.items()}
        elif blocks:  # one score per block, as a 2-D "weight" (the block grid); pruned blocks stay pruned
            importance = {n: pool(v, block, pooling) for n, v in importance.items()}
            if masks is not None:
                masks = {n: kept_blocks(m, block).view(np.uint8) for n, m in masks.items()}
        if "invert" in ablations:
            importance = {name: -v for name, v in importance.items()}
        if masks is not None:  # what is pruned stays pruned
            importance = {name: np.where(masks[name] != 0, v, -np.inf) for name, v in importance.items()}
        if nm is not None:
            masks = {name: n_m_mask(v, nm[0], nm[1], axes[name], name) for name, v in importance.items()}
            continue
        fraction = k / n_iter
        per_weight = None if targets is None else {n: _scheduled(s, fraction) for n, s in targets.items()}
        masks = score_masks(importance, _scheduled(sparsity, fraction), per_weight, min_density, OWNER)
        if channels:
            masks = {n: expand(m.astype(bool), shapes[n], out_axes[n]) for n, m in masks.items()}
        elif blocks:
            masks = {n: expand_blocks(m, shapes[n], block) for n, m in masks.items()}
    assert masks is not None
    if "shuffle" in ablations and channels:
        masks = {n: expand(rng.permutation(kept_channels(m, out_axes[n])), m.shape, out_axes[n]) for n, m in masks.items()}
    elif "shuffle" in ablations and blocks:
        masks = {n: expand_blocks(rng.permutation(kept_blocks(m, block).ravel()), m.shape, block) for n, m in masks.items()}
    elif "shuffle" in ablations:
        masks = {name: rng.permutation(m.ravel()).reshape(m.shape) for name, m in masks.items()}
    if "reinit" in ablations:
        for w in weights:
            w.variable.assign(_redraw(w, rng))
    pruner.owner = OWNER
    pruner.set_masks(masks)
    pruner.min_density = min_density
    pruner.method, pruner.ablation, pruner.iterations, pruner.pattern = scorer.method, ablations, n_iter, pattern
    pruner.scores, pruner.targets, pruner.granularity = scores, targets, granularity
    pruner.block_size, pruner.block_pooling_type, pruner._blocks = block, pooling, blocks
    pruner.policy, pruner.policy_notes = chosen_policy, notes
    return pruner
