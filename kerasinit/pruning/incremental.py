"""Frequent magnitude updates inside the compiled train step: prune the few smallest survivors.

At a small schedule ``frequency`` (1 = a mask update every step) the host path of
:meth:`Pruner.update_masks` (read the weights back, select, write masks and weights) costs about a
step of its own. Between two updates the sparsity rises a little, pruned weights are exact zeros and
masks only shrink, so the new mask of a weight is its old mask minus the ``d`` smallest survivors,
``d = kept − k(step)`` (``k`` the schedule's keep count, :func:`~kerasinit.pruning.masks.keep_count`).
This module computes that inside the step, in the weight's :class:`MaskConstraint`, with
``keras.ops`` only:

1. ``k`` comes from a table of the schedule's update steps (``searchsorted``) at the optimizer's next
   step; nothing happens unless ``0 < d <= D`` (``D`` the largest decrement the table allows here).
2. The host keeps, per weight, a *candidate* set: the indices of the ``C`` smallest survivors,
   refreshed every ``refresh`` steps. The step takes the ``d`` smallest candidates (``top_k`` over
   ``C`` values, not over the whole tensor).
3. That is exact when exactly ``d`` survivors of the whole tensor are ``<=`` the largest value taken
   (one pass, counting). Otherwise (a tie at the threshold, weights that drifted past the set) the step finds the exact answer by bisection on the magnitudes' bit patterns
   (non-negative floats order as their bits), pruning the highest flat indices among ties: the
   same masks as ``update_masks`` (which keeps the lowest indices among ties) in every case.

All weights are updated together (:class:`JointUpdate`): the weights' survivors are concatenated,
their candidate sets padded into one ``[weights, C]`` matrix (one batched ``top_k``), the counting and
the bisection run per weight over the concatenation (segment sums by ``cumsum``). The step's first
mask constraint computes every mask (Keras applies constraints after updating every variable), the
others take theirs. So the compiled step holds one update whatever the number of pruned weights: a
53-kernel MobileNetV2 used to compile 53 (~0.9 s each under XLA on TensorFlow; JAX's step grew alike).
On TensorFlow, whose train step is a graph of separate kernels, the update and the masking run as
one XLA computation (:func:`~kerasinit.backend.select.fused`): LeNet-300-100 at frequency 1 went from
~2.3x to ~1.25x dense step time in one A/B run.

Updates larger than ``D`` (a first jump to the target, ``ConstantSparsity``) and the first step of
each ``fit`` stay on the host. ``PruningCallback`` uses this for ``scope="layer"`` unstructured
pruning at ``frequency <= 10`` without a distribution on TensorFlow and JAX (PyTorch's eager step
gains nothing from it), unless another callback of the fit observes batches: the step prepares
step t+1's mask inside step t, so at step t's end such a callback would see it a step early
(``callback.path_reason`` says which; ``in_graph=`` overrides); see
``benchmarks/bench_pruning.py`` for what it saves.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from kerasinit._arrays import to_numpy
from kerasinit.backend.select import fused, keep_where
from kerasinit.pruning.constraint import Mask
from kerasinit.pruning.schedules import PruningSchedule
from kerasinit.pruning.selection import PrunableWeight

#: largest per-update decrement handled inside the step; larger updates go to the host
MAX_STEP_DECREMENT = 2048


class WeightPlan:
    """The in-step update of one weight: its keep-count table, candidate set and kept count."""

    def __init__(self, weight: PrunableWeight, mask: Mask, steps: np.ndarray, counts: np.ndarray,
                 optimizer: Any, refresh: int, until: Any) -> None:
        self.weight, self.mask, self.optimizer, self.until = weight, mask, optimizer, until
        self.size = mask.size
        self.steps = steps.astype("int32")  # update steps, ascending
        self.counts = counts.astype("int32")  # keep count from each update step on
        drops = -np.diff(np.concatenate([[self.size], self.counts]))
        small = drops[drops <= MAX_STEP_DECREMENT]
        self.limit = int(max(small.max(initial=0), 1))  # D: static size of the step's top_k
        self.big = set(int(s) for s in self.steps[drops > MAX_STEP_DECREMENT])
        per_refresh = int(np.sort(drops[drops <= MAX_STEP_DECREMENT])[::-1][:refresh].sum()) if small.size else 0
        self.candidates = int(min(self.size, max(2 * per_refresh + self.limit + 1, 64)))  # C
        self.kept = keras.Variable(np.int32(self.size), dtype="int32", trainable=False, name="prune_kept")
        self.cand = keras.Variable(np.zeros(self.candidates, "int32"), dtype="int32", trainable=False, name="prune_candidates")

    @property
    def variables(self) -> list[Any]:
        return [self.kept, self.cand]

    def refresh(self) -> None:
        """Host: the kept count and the ``C`` smallest survivors from the current weight and mask."""
        mask = self.mask.numpy().reshape(-1).astype(bool)
        magnitudes = np.abs(to_numpy(self.weight.variable).reshape(-1).astype("float32"))
        magnitudes = np.where(mask, magnitudes, np.inf)
        c = self.candidates
        index = np.argpartition(magnitudes, c - 1)[:c] if c < self.size else np.arange(self.size)
        self.cand.assign(index.astype("int32"))
        self.kept.assign(np.int32(mask.sum()))

    def __call__(self, w: Any, mask: Any) -> tuple[Any, Any]:
        """``(new mask, masked w)`` for the step's updated ``w`` (computed with every other weight's, see
        :class:`JointUpdate`); the caller assigns the new mask to the mask variable."""
        return self.joint.result(self, w)


def _spread(seg: Any, per_weight: Any) -> Any:
    """A value per weight over that weight's entries of the concatenation (``seg``: each entry's weight)."""
    return ops.take(per_weight, seg)


def _segment_sums(values: Any, bounds: np.ndarray) -> Any:
    """Per-weight sums of a concatenated int vector: ``bounds`` holds each weight's start and, last, the total."""
    total = ops.concatenate([ops.zeros((1,), "int32"), ops.cumsum(values)])
    return ops.take(total, bounds[1:]) - ops.take(total, bounds[:-1])


class JointUpdate:
    """The in-step update of every planned weight at once: one computation per step, whatever the count.

    Keras applies the constraints after it has updated every variable, so the first constrained weight
    of a step sees all of them updated: its call computes every weight's new mask (a batched ``top_k``
    per group of weights with candidate sets of similar size, padded into one ``[members, C]`` matrix;
    one pass counting the survivors under each weight's threshold; the bisection only when some weight
    needs it), the other weights' calls take their share.
    One XLA computation on TensorFlow (``fused``) and one piece of JAX's step instead of one per weight:
    a 53-kernel MobileNetV2 compiled 53 of them (~0.9 s each on TensorFlow).
    """

    def __init__(self, plans: list[WeightPlan], steps: np.ndarray, optimizer: Any, until: Any) -> None:
        self.plans, self.optimizer, self.until = plans, optimizer, until
        for i, plan in enumerate(plans):
            plan.index, plan.joint = i, self
        self.steps = steps.astype("int32")
        self.sizes = np.array([p.size for p in plans], "int32")
        self.bounds = np.concatenate([[0], np.cumsum(self.sizes)]).astype("int32")  # starts, then the total
        self.counts = np.stack([p.counts for p in plans]).astype("int32") if len(steps) else np.zeros((len(plans), 0), "int32")
        self.limits = np.array([p.limit for p in plans], "int32")
        # candidate matrices: weights grouped by candidate count (up to the next power of 2), each group
        # one [members, C] matrix (shorter sets padded) and one top_k of its largest decrement
        buckets: dict[int, list[int]] = {}
        for i, p in enumerate(plans):
            buckets.setdefault(1 << max(p.candidates - 1, 1).bit_length(), []).append(i)
        self.groups = []
        for members in buckets.values():
            width = max(plans[i].candidates for i in members)
            self.groups.append((np.array(members, "int32"), width, min(max(plans[i].limit for i in members), width)))
        self.k = np.zeros(len(plans), "int32")  # the decrement the fast path can take per weight
        for members, _, k in self.groups:
            self.k[members] = k
        self._compute = fused(self._step)
        self._cache: dict[int, tuple[Any, Any, Any]] = {}

    def result(self, plan: WeightPlan, w: Any) -> tuple[Any, Any]:
        if plan.index == 0 or plan.index not in self._cache:  # the step's first call: compute every weight's
            values = [w if p is plan else p.weight.variable for p in self.plans]
            new_w, new_mask, kept = self._compute(values, [p.mask.variable for p in self.plans],
                                                  [p.kept for p in self.plans], [p.cand for p in self.plans],
                                                  self.optimizer.iterations, self.until)
            self._cache = {i: (new_mask[i], new_w[i], kept[i]) for i in range(len(self.plans))}
        new_mask, new_w, kept = self._cache.pop(plan.index)
        plan.kept.assign(kept)
        return new_mask, new_w

    def _step(self, ws: list[Any], masks: list[Any], kepts: list[Any], cands: list[Any], iterations: Any,
              until: Any) -> tuple[list[Any], list[Any], list[Any]]:
        """Every weight's (masked w, new mask, kept count), as a function of tensors only."""
        step = ops.cast(iterations, "int32") + 1  # constraints run before iterations += 1
        kept = ops.stack([ops.reshape(ops.cast(k, "int32"), ()) for k in kepts])
        if self.counts.shape[1]:
            position = ops.searchsorted(ops.convert_to_tensor(self.steps), ops.reshape(step, (1,)), side="right")[0] - 1
            target = ops.where(position < 0, ops.convert_to_tensor(self.sizes),
                               ops.take(ops.convert_to_tensor(self.counts), ops.maximum(position, 0), axis=1))
        else:
            target = ops.convert_to_tensor(self.sizes)
        d = kept - target
        due = ops.logical_and(ops.logical_and(d > 0, ops.less_equal(d, ops.convert_to_tensor(self.limits))), step < until)
        flat = ops.concatenate([ops.reshape(m, (-1,)) for m in masks])
        new = ops.cond(ops.any(due), lambda: self._pruned(ws, flat, cands, d, due, self._segments()), lambda: flat)
        out_w, out_m = [], []
        for i, (w, m) in enumerate(zip(ws, masks, strict=True)):
            mask = ops.reshape(new[int(self.bounds[i]):int(self.bounds[i + 1])], ops.shape(m))
            out_m.append(mask)
            out_w.append(keep_where(mask, w))
        new_kept = ops.where(due, target, kept)
        return out_w, out_m, [new_kept[i] for i in range(len(self.plans))]

    def _segments(self) -> Any:
        """The weight index of every entry of the concatenation (``searchsorted`` on the bounds: ``repeat``
        with per-weight counts has no static shape under XLA, and a constant would weigh 4 bytes a weight)."""
        inner = ops.convert_to_tensor(self.bounds[1:-1])
        return ops.searchsorted(inner, ops.arange(int(self.bounds[-1]), dtype="int32"), side="right")

    def _pruned(self, ws: list[Any], flat: Any, cands: list[Any], d: Any, due: Any, seg: Any) -> Any:
        """``flat`` (every mask, concatenated) minus each due weight's ``d`` smallest survivors."""
        total = int(self.bounds[-1])
        magnitude = ops.concatenate([ops.reshape(ops.abs(ops.cast(w, "float32")), (-1,)) for w in ws])
        survivors = ops.where(flat, magnitude, np.inf)
        # per group, a candidate matrix [members, C]: each weight's candidate indices shifted to the
        # concatenation, padded with the index of an extra +inf (never chosen, never written back)
        padded = ops.concatenate([survivors, ops.convert_to_tensor(np.array([np.inf], "float32"))])
        lasts, picks, choices = [], [], []
        for members, width, k in self.groups:
            index = ops.stack([ops.pad(ops.cast(cands[i], "int32") + int(self.bounds[i]),
                                       [[0, width - self.plans[i].candidates]], constant_values=total)
                               for i in members])
            smallest, order = ops.top_k(-ops.take(padded, index), k)  # per weight, its k smallest candidates
            chosen = ops.arange(k, dtype="int32")[None, :] < ops.take(d, members)[:, None]
            lasts.append(ops.max(ops.where(chosen, -smallest, -1.0), axis=1))  # the largest magnitude pruned
            picks.append(ops.take_along_axis(index, order, axis=1))
            choices.append(chosen)
        order = np.argsort(np.concatenate([members for members, _, _ in self.groups]))
        last = ops.take(ops.concatenate(lasts), order)
        # exact iff exactly d survivors of the whole weight are <= last (a tie or a drifted survivor: more)
        under = ops.cast(survivors <= _spread(seg, last), "int32")
        exact = ops.logical_and(_segment_sums(under, self.bounds) == d, d <= ops.convert_to_tensor(self.k))
        taken = ops.logical_and(due, exact)
        picked = ops.concatenate([ops.reshape(p, (-1,)) for p in picks])
        keep = ops.logical_not(ops.concatenate([
            ops.reshape(ops.logical_and(chosen, ops.take(taken, members)[:, None]), (-1,))
            for chosen, (members, _, _) in zip(choices, self.groups, strict=True)]))
        padded_mask = ops.concatenate([flat, ops.zeros((1,), "bool")])
        updates = ops.logical_and(ops.take(padded_mask, picked), keep)
        fast = ops.scatter_update(padded_mask, ops.reshape(picked, (-1, 1)), updates)[:total]
        inexact = ops.logical_and(due, ops.logical_not(exact))
        exactly = ops.cond(ops.any(inexact), lambda: self._exact(survivors, flat, d, seg), lambda: flat)
        return ops.where(_spread(seg, inexact), exactly, fast)

    def _exact(self, survivors: Any, flat: Any, d: Any, seg: Any) -> Any:
        """``flat`` minus each weight's ``d`` smallest ``survivors`` (highest flat index first among ties), exactly.

        Non-negative float32 values order as their int32 bit patterns; a bisection per weight over the
        bits (all weights at once) finds its ``d``-th smallest value ``t``; everything below it goes,
        and of the entries equal to it the ones of highest index until ``d``.
        """
        bits = ops.view(survivors, "int32")  # +inf (pruned) is 0x7f800000, above every finite magnitude
        n = len(self.plans)

        def body(_: Any, bounds: Any) -> Any:
            low, high = bounds[0], bounds[1]  # count(bits <= high) >= d > count(bits <= low - 1), per weight
            middle = low + (high - low) // 2
            counted = _segment_sums(ops.cast(bits <= _spread(seg, middle), "int32"), self.bounds)
            enough = counted >= d
            return ops.stack([ops.where(enough, low, middle + 1), ops.where(enough, middle, high)])

        start = ops.convert_to_tensor(np.stack([np.zeros(n, "int32"), np.full(n, 0x7F800000, "int32")]))
        threshold = _spread(seg, ops.fori_loop(0, 32, body, start)[1])
        below = bits < threshold
        ties = ops.cast(bits == threshold, "int32")
        remaining = _spread(seg, d - _segment_sums(ops.cast(below, "int32"), self.bounds))
        after = ops.flip(ops.cumsum(ops.flip(ties, 0)), 0)  # ties at this index or after, to the very end
        tail = ops.concatenate([after, ops.zeros((1,), "int32")])
        from_end = after - _spread(seg, ops.take(tail, self.bounds[1:]))  # ... within the weight
        pruned = ops.logical_or(below, ops.logical_and(ties > 0, from_end <= remaining))
        return ops.logical_and(flat, ops.logical_not(pruned))


class IncrementalPlan:
    """Every weight's :class:`WeightPlan` for ``pruner`` under ``schedule``, installed on their masks."""

    def __init__(self, pruner: Any, schedule: PruningSchedule, optimizer: Any, refresh: int = 16) -> None:
        self.pruner, self.schedule, self.refresh_every, self.optimizer = pruner, schedule, refresh, optimizer
        last = schedule.end_step if schedule.end_step >= 0 else schedule.begin_step
        steps = np.asarray(schedule.update_steps(schedule.begin_step, last + 1), dtype="int64")
        self.plans: list[WeightPlan] = []
        #: the step prepares the masks of the steps before ``until`` only: the end of the epoch its callback
        #: trains (an epoch ends at its last step's mask, as on the host); 0 outside that callback's fit
        self.until = keras.Variable(np.int32(0), dtype="int32", trainable=False, name="prune_in_step_until")
        for w in pruner.weights:
            mask = pruner.masks[w.name]
            counts = np.array([pruner.kept_count(w, schedule.sparsity(int(s))) for s in steps], dtype="int64")
            plan = WeightPlan(w, mask, steps, counts, optimizer, refresh, self.until)
            mask.updater = plan
            self.plans.append(plan)
        order = {id(v): i for i, v in enumerate(getattr(optimizer, "_trainable_variables", None) or [])}
        self.plans.sort(key=lambda p: order.get(id(p.weight.variable), len(order)))  # Keras's constraint order
        self.joint = JointUpdate(self.plans, steps, optimizer, self.until) if self.plans else None
        self.big = set().union(*(p.big for p in self.plans)) if self.plans else set()

    @property
    def variables(self) -> list[Any]:
        return [self.until] + [v for p in self.plans for v in p.variables]

    def refresh(self) -> None:
        for plan in self.plans:
            plan.refresh()

    def install(self) -> IncrementalPlan:
        """Put (back) every weight's plan on its mask, so that the train step runs the updates; returns self."""
        for plan in self.plans:
            plan.mask.updater = plan
        return self

    def remove(self) -> None:
        for plan in self.plans:
            if plan.mask.updater is plan:
                plan.mask.updater = None
