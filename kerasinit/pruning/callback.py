"""``PruningCallback``: run a pruning schedule during ``fit``.

Masks update at the start of every update step of the schedule (the step is the optimizer's
``iterations``, read once at ``on_train_begin`` and counted in Python afterwards, so no device
sync per batch and a resumed run continues from its saved step). Between updates nothing runs
in Python: the masks are applied inside the compiled train step by the weight constraints. The
callback only hooks batch *begins*, so Keras keeps its asynchronous batch dispatch.

On JAX, ``fit`` keeps the variables in a state of its own during each epoch: the callback binds
the masks to the optimizer's state for the epoch (see ``optimizer_state``; no re-tracing per
update), syncs that state to the variables before an update (``model.jax_state_sync()``), and
Keras picks the updated variables up for the next step. The masks are unbound as soon as the
epoch's state is synced back (at validation or ``on_epoch_end``), so a ``ModelCheckpoint``
listed after this callback saves the optimizer exactly as Keras built it.

Which path updates the masks (``callback.path``, why in ``callback.path_reason``): the in-step path
(:mod:`~kerasinit.pruning.incremental`) prepares step t+1's mask inside step t, so between two steps
it shows the next step's mask where the host path shows the current one. The automatic choice
therefore takes the host path when another callback of the same ``fit`` can look between steps
(:func:`batch_observers`), so that what every callback sees is the host path's, bit for bit.
"""

from __future__ import annotations

import os
import sys
import warnings
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit.pruning.blocks import NO_BLOCK, check_block, exclusive
from kerasinit.pruning.break_even import worth_compiling
from kerasinit.pruning.incremental import IncrementalPlan
from kerasinit.pruning.optimizer_state import bind, unbind
from kerasinit.pruning.policy import PruningPolicy, get_policy
from kerasinit.pruning.pruner import Pruner
from kerasinit.pruning.schedules import PruningSchedule
from kerasinit.pruning.selection import Selector
from kerasinit.pruning.summaries import PruningSummaries

#: largest schedule frequency at which masks are updated inside the train step by default (TensorFlow, JAX)
IN_GRAPH_FREQUENCY = 10
#: model -> the train function built (under a distribution) with its masks bound
_MASKED_STEPS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
#: the hooks through which a callback sees the weights between two steps (begins: only listed before this one)
END_HOOKS = ("on_train_batch_end", "on_batch_end")
BEGIN_HOOKS = ("on_train_batch_begin", "on_batch_begin")
#: Keras callbacks whose batch hooks read the logs only, never the weights
LOGS_ONLY = ("ProgbarLogger", "TerminateOnNaN", "TensorBoard")
#: Keras callbacks that save the model at batch ends unless their ``save_freq`` is ``"epoch"``
SAVERS = ("ModelCheckpoint", "BackupAndRestore")


class PruningCallback(keras.callbacks.Callback):
    """Prune ``self.model`` by ``schedule`` while it trains.

    Either give a ``schedule`` (and optionally ``layers``, ``scope``, ``overrides``, ``pattern``,
    ``granularity``, ``norm``, ``min_density``, ``block_size``, ``block_pooling_type``, ``policy``, as
    for :class:`Pruner`; the pruner is built at
    ``on_train_begin``; an update that empties a weight warns, :class:`LayerCollapseWarning`)
    or a ready ``pruner``. A pruner
    without a schedule keeps its masks fixed (a lottery ticket, a mask pruned at initialization):
    the callback then updates nothing; on JAX it binds the masks to the compiled step's state, so
    that new masks installed between two ``fit`` calls need no re-tracing. (Fixed masks hold
    through ``fit`` without it on every backend; on JAX each new mask then costs a re-trace.)

    ``in_graph``: None (automatic) updates the masks inside the train step at schedule frequency
    <= 10 on TensorFlow and JAX for unstructured ``scope="layer"`` pruning (blocks, N:M and channels
    update on the host), unless another callback of the fit observes batches (see
    :func:`batch_observers`; it would see step t+1's mask at step t's end): then on the host, so
    every callback sees what the host path shows. True forces the in-step path (a warning names the
    observers), False the host path. ``path`` (``"in_step"`` or ``"host"``) and ``path_reason`` say
    which path the last ``fit`` took and why.

    ``log_dir``: a directory for TensorBoard event files: each pruned weight's sparsity and threshold
    (least kept ``|w|``), :mod:`kerasinit.pruning.summaries`; the TensorBoard step is an optimizer step.
    ``log_every="update"`` (default): at each mask update u, under step u, its masks and the least
    kept ``|w|`` of the weights step u starts from, read at step u's batch begin. On the host path
    the masks were just computed there; on the in-step path each write reads them back from the
    device (JAX: syncs fit's state), one host sync per update, which costs part of that path's
    speed. With ``steps_per_execution`` > 1 only a block's first step is seen: an update inside a
    block is written if its masks are still in force there. ``log_every="epoch"``: once per epoch,
    at its end, under the epoch's last step: the masks that step trained with and the least kept
    ``|w|`` after it (no sync but the epoch's own). The masks written under step s keep the counts of
    the schedule's last update <= s (checked for unstructured ``scope="layer"`` pruning; otherwise
    nothing is written, with a warning).
    """

    def __init__(
        self,
        schedule: PruningSchedule | None = None,
        layers: Iterable[Selector] | Selector | None = None,
        scope: str = "layer",
        overrides: Mapping[str, float] | None = None,
        pruner: Pruner | None = None,
        *,
        pattern: str | None = None,
        granularity: str = "weight",
        norm: str = "l2",
        in_graph: bool | None = None,
        min_density: float = 0.0,
        block_size: tuple[int, int] = NO_BLOCK,
        block_pooling_type: str = "AVG",
        policy: str | PruningPolicy | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        log_every: str = "update",
    ) -> None:
        super().__init__()
        if (schedule is None) == (pruner is None):
            raise ValueError("PruningCallback: give exactly one of arguments `schedule` or `pruner`.")
        if schedule is not None and not isinstance(schedule, PruningSchedule):
            raise TypeError(f"PruningCallback: argument `schedule` must be a kerasinit PruningSchedule; received {schedule!r}.")
        self.pruner = pruner
        self._spec = {"schedule": schedule, "layers": layers, "scope": scope, "overrides": overrides,
                      "pattern": pattern, "granularity": granularity, "norm": norm, "min_density": min_density,
                      "block_size": block_size, "block_pooling_type": block_pooling_type, "policy": policy}
        if schedule is not None:  # bad arguments fail here, not at the first fit
            block = check_block(block_size, block_pooling_type, "PruningCallback")[0]
            exclusive(block, "PruningCallback", pattern=pattern, granularity=granularity)
            get_policy(policy, "PruningCallback")
            if in_graph and block != NO_BLOCK:
                raise ValueError(f"PruningCallback: in_graph=True cannot be used with block_size={block}: the in-step "
                                 "updates prune single weights; blocks update on the host (in_graph=None or False).")
        if in_graph is not None and not isinstance(in_graph, bool):
            raise TypeError(f"PruningCallback: argument `in_graph` must be None (automatic), True or False; received {in_graph!r}.")
        self.in_graph = in_graph
        self._plan: IncrementalPlan | None = None
        self._candidate: IncrementalPlan | None = None  # built to be weighed, not installed
        self._refreshed: int | None = None
        self._step = 0
        self._jax = False
        self._span = 1
        self.updates: list[tuple[int, float]] = []
        #: TensorBoard summaries (None without ``log_dir``)
        self.summaries = None if log_dir is None else PruningSummaries(log_dir, log_every)
        #: ``"in_step"`` or ``"host"``: the path the last fit took, and why (None before a fit)
        self.path: str | None = None
        self.path_reason: str | None = None
        self._in_force: int | None = None  # the update step whose masks are in force
        self._warned: set[str] = set()

    def on_train_begin(self, logs: Any = None) -> None:
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise ValueError("PruningCallback: the model has no optimizer; compile it before fit().")
        if self.pruner is not None and self.pruner.schedule is None and self.pruner.model is not self.model:
            raise ValueError("PruningCallback: argument `pruner` (fixed masks, no schedule) prunes another model "
                             "than the one being trained; build the Pruner on the model passed to fit().")
        if self.pruner is None or self.pruner.model is not self.model:
            self.pruner = Pruner(self.model, **self._spec)
        self._jax = keras.backend.backend() == "jax"
        self._setup_in_graph(optimizer, _fit_callbacks(self))
        if self._jax:  # the masks join the state of JAX's compiled step
            bind(optimizer, self._state_variables)
            # jit re-traces by itself for the longer state (once: its cache keeps both); only a step
            # compiled for a distribution fixed its output shardings, so it is rebuilt once for the masks
            if keras.distribution.distribution() is not None and _MASKED_STEPS.get(self.model) is not self.model.train_function:
                self.model.make_train_function(force=True)
                _MASKED_STEPS[self.model] = self.model.train_function
        self._step = int(to_numpy(optimizer.iterations))
        self._span = int(getattr(self.model, "steps_per_execution", 1) or 1)
        if self.pruner.schedule is not None:
            self._warn_if_idle()

    @property
    def _state_variables(self) -> list[Any]:
        return self.pruner.mask_variables + (self._plan.variables if self._plan is not None else [])

    def _setup_in_graph(self, optimizer: Any, callbacks: list[Any] | None = None) -> None:
        """Install (or keep) the in-step updates of :mod:`kerasinit.pruning.incremental` when they apply."""
        pruner, schedule = self.pruner, self.pruner.schedule
        reasons = []
        if schedule is None:
            reasons.append("the pruner has no schedule (fixed masks)")
        if pruner.scope != "layer" or pruner.pattern is not None or pruner.granularity != "weight" \
                or getattr(pruner, "block_size", NO_BLOCK) != NO_BLOCK:
            reasons.append("only scope='layer' unstructured pruning (no pattern, channels or blocks) updates inside the step")
        if keras.distribution.distribution() is not None or _tf_strategy(self.model):
            reasons.append("a distribution is active")
        # PyTorch runs the step eagerly: some 30 small ops per weight cost more there than the host's update
        automatic = not reasons and schedule.frequency <= IN_GRAPH_FREQUENCY and keras.backend.backend() != "torch"
        if self.in_graph and reasons:
            raise ValueError(f"PruningCallback: in_graph=True cannot be used here: {'; '.join(reasons)}.")
        observers = batch_observers(callbacks or [], self)
        seen = (f"other callbacks observe batches ({', '.join(observers)}) and would see step t+1's mask at "
                f"step t's end") if observers else ""
        if self.in_graph is not None:
            wanted, why = self.in_graph, f"in_graph={self.in_graph}" + (f"; {seen}" if self.in_graph and seen else "")
            if self.in_graph and observers and set(observers) - self._warned:
                self._warned |= set(observers)
                warnings.warn(f"PruningCallback: in_graph=True: {seen} (the host path shows step t's, as every "
                              "callback expects). Leave in_graph=None to let those fits run on the host, or declare "
                              "`reads_batch_weights = False` on callbacks that read the logs only.", UserWarning, stacklevel=3)
        elif not automatic:
            wanted, why = False, "; ".join(reasons) or (
                "PyTorch runs the step eagerly" if keras.backend.backend() == "torch"
                else f"schedule frequency {schedule.frequency} > {IN_GRAPH_FREQUENCY}")
        else:
            wanted = not observers
            why = seen or f"schedule frequency {schedule.frequency} <= {IN_GRAPH_FREQUENCY}, no other callback observes batches"
            if callbacks is None and wanted:
                why += " (callback list unknown: not called from fit)"
            if wanted and (self._plan is None or self._plan.pruner is not pruner):  # not compiled yet: worth it?
                wanted, cost = self._worth_compiling(optimizer)
                why = f"{why}; {cost}"
        self.path, self.path_reason = ("in_step" if wanted else "host"), why
        plan = self._plan
        if wanted and (plan is None or plan.pruner is not pruner):
            if plan is not None:
                plan.remove()
            candidate, self._candidate = self._candidate, None
            self._plan = candidate.install() if candidate is not None and candidate.pruner is pruner \
                else IncrementalPlan(pruner, schedule, optimizer)
            pruner.reset_compiled_step()  # the step must now run the updates
        elif not wanted and plan is not None:
            plan.remove()
            self._plan = None
            pruner.reset_compiled_step()
        if self._plan is not None:
            self._refreshed = None  # the first batch of every fit is done on the host

    def _worth_compiling(self, optimizer: Any) -> tuple[bool, str]:
        """Whether this fit's in-step updates repay their compilation (:mod:`kerasinit.pruning.break_even`)."""
        params = self.params or {}
        steps, epochs = params.get("steps"), params.get("epochs") or 1
        first = int(to_numpy(optimizer.iterations))
        schedule = self.pruner.schedule
        end = schedule.end_step if schedule.end_step >= 0 else schedule.begin_step
        last = first + steps * epochs - 1 if steps else end
        if self._candidate is None or self._candidate.pruner is not self.pruner or self._candidate.optimizer is not optimizer:
            self._candidate = IncrementalPlan(self.pruner, schedule, optimizer)
        self._candidate.remove()  # a candidate only: installed below if it pays
        current = schedule.update_steps(schedule.begin_step, first + 1)
        sparsity = schedule.sparsity(current[-1]) if current else 0.0
        wanted, why = worth_compiling(self._candidate, self.pruner, sparsity, first, last, epochs)
        return wanted, why

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        if self._jax:
            bind(self.pruner.model.optimizer, self._state_variables)

    def _unbind(self, logs: Any = None) -> None:
        if getattr(self, "_jax", False) and self.pruner is not None:
            unbind(self.pruner.model.optimizer, self._state_variables)

    on_test_begin = _unbind  # validation inside fit starts after Keras synced the epoch's state

    def on_train_end(self, logs: Any = None) -> None:
        self._unbind()
        if self.summaries is not None:
            self.summaries.close()
        if self._plan is not None:
            self._plan.until.assign(0)  # a later fit without this callback leaves the masks alone

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.summaries is not None and self.summaries.log_every == "epoch" and self.pruner.schedule is not None:
            self._summarize(self._step - 1, last_update(self.pruner.schedule, self._step - 1))  # its masks: step's
        self._unbind()

    def _warn_if_idle(self) -> None:
        schedule = self.pruner.schedule
        steps, epochs = self.params.get("steps"), self.params.get("epochs")
        if not steps or not epochs:
            return
        stop = self._step + steps * epochs
        updates = schedule.update_steps(self._step, stop)
        if not updates:
            warnings.warn(
                f"PruningCallback: {schedule!r} never updates the masks during this training (optimizer steps "
                f"{self._step} to {stop - 1}; updates from step {schedule.begin_step}"
                + (f" to {schedule.end_step}" if schedule.end_step >= 0 else "") + f", every {schedule.frequency}).",
                UserWarning,
                stacklevel=2,
            )
        elif schedule.sparsity(updates[-1]) < schedule.target - 5e-5:  # below the 4-digit precision shown
            warnings.warn(
                f"PruningCallback: the last mask update of this training (step {updates[-1]}) reaches sparsity "
                f"{schedule.sparsity(updates[-1]):.4f}, short of the schedule's target {schedule.target:.4f} "
                f"(reached at step {schedule.end_step}; training ends at step {stop - 1}).",
                UserWarning,
                stacklevel=2,
            )

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        # `self.model` syncs JAX's whole training state into the variables at every access (Keras's
        # Callback.model), which would also make fit re-gather it at every step: per batch, read the
        # model through `self.pruner.model` and sync only before an update.
        span = self._span
        schedule = self.pruner.schedule
        if schedule is None:  # fixed masks
            return
        due = schedule.update_steps(self._step, self._step + span)
        plan = self._plan
        if plan is None:
            if due:
                self._host_update(due[-1])
        else:  # the step updates the masks itself, but for big jumps, the first batch and candidate refreshes
            steps = (self.params or {}).get("steps")
            last = bool(steps) and batch + span >= steps
            first = self._refreshed is None
            big = [s for s in due if s in plan.big]  # too large for the step: done here (within a block, early)
            if first or big or self._step - self._refreshed >= plan.refresh_every:
                if self._jax:
                    self.pruner.model.jax_state_sync()
                start = big[-1] if big else last_update(schedule, self._step)
                if start is not None and (first or big):
                    self.pruner.forget_counts()  # the step changed masks behind the pruner's back
                    self.pruner.update_masks(schedule.sparsity(start))
                    self._in_force = start
                if first:  # a step prepares the next step's mask (its constraint runs after the update): not past
                    # the epoch's last step, which ends at its own mask as on the host path
                    plan.until.assign(np.int32(self._step - batch + steps if steps else np.iinfo(np.int32).max))
                plan.refresh()
                self._refreshed = self._step
            if last:
                self._refreshed = None  # the next epoch's first block is updated here, like a fit's first
            if due:
                self.updates.append((due[-1], schedule.sparsity(due[-1])))
            if self.summaries is not None:  # the step set the masks of the last update so far, unless done here
                self._in_force = _later(self._in_force, last_update(schedule, self._step))
        if self.summaries is not None and self.summaries.log_every == "update":
            self._summarize(self._in_force, self._in_force)
        self._step += span

    def _host_update(self, step: int) -> None:
        sparsity = self.pruner.schedule.sparsity(step)
        if self._jax:  # the variables hold the epoch's start; fit's state holds the present
            self.pruner.model.jax_state_sync()
        self.pruner.update_masks(sparsity)
        self.updates.append((step, sparsity))
        self._in_force = step

    def _summarize(self, step: int | None, update: int | None) -> None:
        """Write the summaries of the masks in force under ``step`` (once per step); they must keep the counts
        of ``update``'s sparsity (None: no update yet, all kept)."""
        summaries, pruner = self.summaries, self.pruner
        if summaries is None or step is None or step == summaries.last:
            return
        if self._jax:  # fit's state holds the present (a no-op when Keras or an update synced it already)
            pruner.model.jax_state_sync()
        expected = None
        if pruner.scope == "layer" and pruner.granularity == "weight" and pruner.pattern is None \
                and getattr(pruner, "block_size", NO_BLOCK) == NO_BLOCK:
            sparsity = 0.0 if update is None else pruner.schedule.sparsity(update)
            expected = {w.name: pruner.kept_count(w, sparsity) for w in pruner.weights}
        summaries.write(step, pruner, expected)


def _later(a: int | None, b: int | None) -> int | None:
    return a if b is None else b if a is None else max(a, b)


def last_update(schedule: PruningSchedule, step: int) -> int | None:
    """The last update step of ``schedule`` at or before ``step`` (None before the first)."""
    if 0 <= schedule.end_step <= step and schedule.end_step >= schedule.begin_step:
        return schedule.end_step
    found = schedule.update_steps(max(schedule.begin_step, step - schedule.frequency + 1), step + 1)
    return found[-1] if found else None


def batch_observers(callbacks: Iterable[Any], me: Any) -> list[str]:
    """``"Class.hook"`` for each callback of ``callbacks`` (but ``me``) that can see the weights between two steps.

    That is one overriding ``on_train_batch_end``/``on_batch_end``, or ``on_train_batch_begin``/``on_batch_begin``
    while listed before ``me`` (it runs before ``me`` updates the masks). Not counted: Keras's hooks that
    read the logs only (``ProgbarLogger``, ``TerminateOnNaN``, ``TensorBoard``; ``History`` has none),
    ``ModelCheckpoint``/``BackupAndRestore`` with ``save_freq="epoch"``, and callbacks that declare
    ``reads_batch_weights = False``.
    """
    found, before = [], True
    for callback in callbacks:
        if callback is me:
            before = False
            continue
        if getattr(callback, "reads_batch_weights", True) is False:
            continue
        for hook in END_HOOKS + (BEGIN_HOOKS if before else ()):
            if _observes(callback, hook):
                found.append(f"{type(callback).__name__}.{hook}")
    return found


def _observes(callback: Any, hook: str) -> bool:
    method = getattr(callback, hook, None)
    if method is None or getattr(method, "_is_default", False):  # Keras marks the base class's no-ops
        return False
    if hook in getattr(callback, "__dict__", {}):  # set on the instance (LambdaCallback, VarianceMonitor(every_n_batches=...))
        return True
    owner = next(k for k in type(callback).__mro__ if hook in vars(k))
    if owner.__module__.startswith("keras.") and owner.__name__ in LOGS_ONLY:
        return False
    return not (owner.__module__.startswith("keras.") and owner.__name__ in SAVERS
                and getattr(callback, "save_freq", None) == "epoch")


def _fit_callbacks(me: Any) -> list[Any] | None:
    """The callbacks of the ``fit`` calling ``me`` (its ``CallbackList``, found on the call stack), or None."""
    frame = sys._getframe(1)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, keras.callbacks.CallbackList) and any(c is me for c in owner.callbacks):
            return list(owner.callbacks)
        frame = frame.f_back
    return None


def _tf_strategy(model: Any) -> bool:
    """Whether ``model`` trains under a non-default ``tf.distribute`` strategy (TensorFlow backend)."""
    strategy = getattr(model, "distribute_strategy", None)
    return strategy is not None and "Default" not in type(strategy).__name__
