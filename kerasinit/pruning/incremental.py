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
   refreshed every ``refresh`` steps. The step takes the ``d``-th smallest candidate, ``last``
   (``top_k`` over ``C`` values, not over the whole tensor).
3. That is exact when exactly ``d`` survivors of the whole tensor are ``<= last`` (one counting pass):
   the update prunes them all, in one elementwise pass that writes the new mask. Otherwise (a tie at
   the threshold, or weights that drifted below it from outside the set: 10% of LeNet-300-100's
   updates in the first 200 steps at frequency 1 with Adam, none after 400) one ``top_k`` of the
   whole tensor gives the exact threshold and, for ties, the flat index from which they go. Either way
   the update is two scalars and the same elementwise pass, and the masks are those of
   ``update_masks`` (which keeps the lowest indices among ties) in every case.

On TensorFlow, whose train step is a graph of separate kernels, the whole update and the masking
of the weight run as one XLA computation (:func:`~kerasinit.backend.select.fused`): LeNet-300-100 at
frequency 1 went from ~2.3x to ~1.25x dense step time in one A/B run. Weights of one shape under one
schedule share that computation (``WeightPlan.key``). Whether compiling pays for itself in a fit is
:mod:`kerasinit.pruning.break_even`'s call. (One computation for all weights at once was tried: it
compiled faster, ~7 s for MobileNetV2's 53 kernels, but cost ~25 ms a step more than these 53, which
skip their work whenever their own update is not due.)

Updates larger than ``D`` (a first jump to the target, ``ConstantSparsity``) and the first step of
each ``fit`` stay on the host. ``PruningCallback`` uses this for ``scope="layer"`` unstructured
pruning at ``frequency <= 10`` without a distribution on TensorFlow and JAX (PyTorch's eager step
gains nothing from it), unless another callback of the fit observes batches: the step prepares
step t+1's mask inside step t, so at step t's end such a callback would see it a step early
(``callback.path_reason`` says which; ``in_graph=`` overrides); see
``benchmarks/bench_pruning.py`` for what it saves.
"""

from __future__ import annotations

from collections import OrderedDict
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


#: compiled in-step updates by their tables (see ``WeightPlan.key``), shared by every weight that has them
_UPDATES: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
#: at most this many kept (least recently used dropped): each holds the plan that built it
_MAX_UPDATES = 256


def _shared(key: tuple[Any, ...], build: Any) -> Any:
    """The compiled update for ``key``, built once: a compiled function reads nothing of its weight but its
    arguments and the tables in ``key``, so MobileNetV2's 53 kernels compile as many updates as they have
    distinct shapes (under XLA on TensorFlow, ~0.9 s each on a 2-core CPU)."""
    if key in _UPDATES:
        _UPDATES.move_to_end(key)
    else:
        _UPDATES[key] = build()
        while len(_UPDATES) > _MAX_UPDATES:
            _UPDATES.popitem(last=False)
    return _UPDATES[key]


class WeightPlan:
    """The in-step update of one weight: its keep-count table, candidate set and kept count."""

    def __init__(self, weight: PrunableWeight, mask: Mask, steps: np.ndarray, counts: np.ndarray,
                 optimizer: Any, refresh: int, until: Any) -> None:
        self.weight, self.mask, self.optimizer, self.until = weight, mask, optimizer, until
        self.size = mask.size
        self.weight_shape = tuple(mask.shape)
        self.steps = steps.astype("int32")  # update steps, ascending
        self.counts = counts.astype("int32")  # keep count from each update step on
        drops = -np.diff(np.concatenate([[self.size], self.counts]))
        small = drops[drops <= MAX_STEP_DECREMENT]
        self.limit = int(max(small.max(initial=0), 1))  # D: static size of the step's top_k
        self.big = set(int(s) for s in self.steps[drops > MAX_STEP_DECREMENT])
        per_refresh = int(np.sort(drops[drops <= MAX_STEP_DECREMENT])[::-1][:refresh].sum()) if small.size else 0
        self.candidates = int(min(self.size, max(2 * per_refresh + self.limit + 1, 64)))  # C
        #: weights of one shape under one schedule have the same tables: they share one compiled update
        self.key = (self.weight_shape, str(weight.variable.dtype), self.limit, self.candidates,
                    self.steps.tobytes(), self.counts.tobytes())
        self._update = _shared(self.key, lambda: fused(self._step))
        self.kept = keras.Variable(np.int32(self.size), dtype="int32", trainable=False, name="prune_kept")
        self.cand = keras.Variable(np.zeros(self.candidates, "int32"), dtype="int32", trainable=False, name="prune_candidates")

    @property
    def variables(self) -> list[Any]:
        return [self.kept, self.cand]

    def refresh(self) -> None:
        """Host: the kept count and the ``C`` smallest survivors from the current weight and mask.

        The set is found among the survivors under a cut-off: the magnitude 1.25 ``C`` survivors deep in a
        strided sample of ~4,096 of them, then one partition of those below it (the whole survivors' when the
        cut-off falls short). 0.34 ms instead of 3.0 ms (a partition of the whole tensor, pruned entries as
        +inf) for LeNet-300-100's first kernel at 46% sparsity; the same set. A set longer than the survivors
        is filled with pruned entries (they read as +inf in the step).
        """
        mask = to_numpy(self.mask.variable).reshape(-1).astype(bool, copy=False)
        survivors = np.flatnonzero(mask)
        c = self.candidates
        if c < survivors.size:
            magnitudes = np.abs(to_numpy(self.weight.variable).reshape(-1).astype("float32", copy=False))
            stride = max(1, survivors.size // 4096)
            sample = magnitudes[survivors[::stride]]
            j = min(sample.size - 1, int(np.ceil(1.25 * c / stride)))
            below = np.flatnonzero(mask & (magnitudes <= np.partition(sample, j)[j]))
            pool = below if below.size >= c else survivors
            index = pool[np.argpartition(magnitudes[pool], c - 1)[:c]]
        else:
            index = np.concatenate([survivors, np.flatnonzero(~mask)[: c - survivors.size]])
        self.cand.assign(index.astype("int32"))
        self.kept.assign(np.int32(survivors.size))

    # ------------------------------------------------------------------ inside the step
    def __call__(self, w: Any, mask: Any) -> tuple[Any, Any]:
        """``(new mask, masked w)`` for the step's updated ``w``; the new mask is assigned to the mask variable."""
        values = (w, mask, self.kept, self.cand, self.optimizer.iterations, self.until)  # w: Keras passes the variable
        new_w, new_mask, kept = self._update(*values)
        self.kept.assign(kept)
        return new_mask, new_w

    def _step(self, w: Any, mask: Any, kept: Any, cand: Any, iterations: Any, until: Any) -> tuple[Any, Any, Any]:
        """The update as a function of tensors only (one XLA computation on TensorFlow: ``_where.fused``).

        A due update chooses two scalars, a threshold ``t`` and a flat index ``b``; the survivors pruned
        are those below ``t`` and those equal to it at an index ``>= b`` (one elementwise pass). Otherwise
        the mask passes through untouched (no pass over it: JAX's step donates its state).
        """
        step = ops.cast(iterations, "int32") + 1  # constraints run before iterations += 1
        position = ops.searchsorted(self.steps, ops.reshape(step, (1,)), side="right")[0] - 1
        target = ops.where(position < 0, self.size, ops.take(self.counts, ops.maximum(position, 0)))
        d = kept - target
        due = ops.logical_and(ops.logical_and(d > 0, d <= self.limit), step < until)
        new_mask = ops.cond(due, lambda: self._pruned(w, mask, cand, d), lambda: mask)
        return keep_where(new_mask, w), new_mask, ops.where(due, target, kept)

    def _pruned(self, w: Any, mask: Any, cand: Any, d: Any) -> Any:
        """``mask`` minus the ``d`` smallest survivors of ``w``: one elementwise pass once ``(t, b)`` is chosen."""
        t, b = self._threshold(ops.reshape(w, (-1,)), ops.reshape(mask, (-1,)), cand, d)
        magnitude = ops.abs(ops.cast(w, "float32"))
        index = ops.reshape(ops.arange(self.size, dtype="int32"), self.weight_shape)
        pruned = ops.logical_or(magnitude < t, ops.logical_and(magnitude == t, index >= b))
        return ops.logical_and(mask, ops.logical_not(pruned))

    def _threshold(self, flat_w: Any, flat_mask: Any, cand: Any, d: Any) -> tuple[Any, Any]:
        """``(t, b)`` such that the ``d`` smallest survivors are those ``< t`` and those ``== t`` at index ``>= b``."""
        values = ops.where(ops.take(flat_mask, cand), ops.abs(ops.cast(ops.take(flat_w, cand), "float32")), np.inf)
        k = min(self.limit, self.candidates)
        smallest, _ = ops.top_k(-values, k)  # the k smallest candidates, ascending
        last = -ops.take(smallest, ops.clip(d - 1, 0, k - 1))  # the d-th smallest candidate
        # exact iff no other survivor, in the set or not (a tie, a weight that drifted past the set), is <= last
        below = ops.logical_and(flat_mask, ops.abs(ops.cast(flat_w, "float32")) <= last)
        count = ops.sum(ops.where(below, 1.0, 0.0)) if self.size < 2**24 else ops.sum(ops.cast(below, "int32"))
        exact = ops.logical_and(count == ops.cast(d, count.dtype), d <= k)
        return ops.cond(exact, lambda: (last, ops.convert_to_tensor(0, "int32")),
                        lambda: _exact_threshold(flat_w, flat_mask, d, self.limit))


def _exact_threshold(flat_w: Any, flat_mask: Any, d: Any, k: int) -> tuple[Any, Any]:
    """``(t, b)`` for the ``d`` (≤ ``k``) smallest survivors, highest flat index first among ties, exactly.

    One ``top_k`` of the whole tensor gives the ``d``-th smallest magnitude ``t``; the ``r`` survivors equal
    to ``t`` that go are those with the highest indices (``update_masks`` keeps the lowest among ties), so
    ``b`` is the ``r``-th highest index among them: 0 when all of them go (one count), else from a ``top_k``
    of their indices (``top_k``'s order among equal values differs between backends; indices have none).
    A bisection on the magnitudes' bit patterns gave the same masks in 32 passes over the tensor (~6 ms a
    call for LeNet-300-100's first kernel against ~0.6 ms); 10% of LeNet-300-100's updates at frequency 1
    under Adam land here in its first 200 steps, none after 400 (survivors outside the candidate set
    drift below the threshold between refreshes).
    """
    survivors = ops.where(flat_mask, ops.abs(ops.cast(flat_w, "float32")), np.inf)
    n = survivors.shape[0]
    k = min(k, n)
    smallest = -ops.top_k(-survivors, k)[0]  # the k smallest magnitudes, ascending
    t = ops.take(smallest, ops.clip(d - 1, 0, k - 1))
    r = d - ops.sum(ops.cast(smallest < t, "int32"))  # survivors equal to t that go (all below t go)
    tied = survivors == t
    index = ops.arange(n, dtype="int32")

    def highest() -> Any:  # the r-th highest index among the ties
        return ops.take(ops.top_k(ops.where(tied, index, -1), k)[0], ops.clip(r - 1, 0, k - 1))

    b = ops.cond(ops.sum(ops.cast(tied, "int32")) == r, lambda: ops.convert_to_tensor(0, "int32"), highest)
    return t, ops.cast(b, "int32")


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
        self.big = set().union(*(p.big for p in self.plans)) if self.plans else set()

    @property
    def variables(self) -> list[Any]:
        return [self.until] + [v for p in self.plans for v in p.variables]

    def refresh(self) -> None:
        for plan in self.plans:
            plan.refresh()

    @property
    def computations(self) -> int:
        """How many distinct compiled updates the plan's weights need (weights of one shape share one)."""
        return len({p.key for p in self.plans})

    def install(self) -> IncrementalPlan:
        """Put (back) every weight's plan on its mask, so that the train step runs the updates; returns self."""
        for plan in self.plans:
            plan.mask.updater = plan
        return self

    def remove(self) -> None:
        for plan in self.plans:
            if plan.mask.updater is plan:
                plan.mask.updater = None
