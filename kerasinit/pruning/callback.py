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
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit.pruning.incremental import IncrementalPlan
from kerasinit.pruning.optimizer_state import bind, unbind
from kerasinit.pruning.pruner import Pruner
from kerasinit.pruning.schedules import PruningSchedule
from kerasinit.pruning.selection import Selector

#: largest schedule frequency at which masks are updated inside the train step by default (TensorFlow, JAX)
IN_GRAPH_FREQUENCY = 10
#: model -> the train function built (under a distribution) with its masks bound
_MASKED_STEPS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


class PruningCallback(keras.callbacks.Callback):
    """Prune ``self.model`` by ``schedule`` while it trains.

    Either give a ``schedule`` (and optionally ``layers``, ``scope``, ``overrides``, ``pattern``,
    ``granularity``, ``norm``, ``min_density``, as for :class:`Pruner`; the pruner is built at
    ``on_train_begin``; an update that empties a weight warns, :class:`LayerCollapseWarning`)
    or a ready ``pruner``. A pruner
    without a schedule keeps its masks fixed (a lottery ticket, a mask pruned at initialization):
    the callback then updates nothing; on JAX it binds the masks to the compiled step's state, so
    that new masks installed between two ``fit`` calls need no re-tracing. (Fixed masks hold
    through ``fit`` without it on every backend; on JAX each new mask then costs a re-trace.)
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
    ) -> None:
        super().__init__()
        if (schedule is None) == (pruner is None):
            raise ValueError("PruningCallback: give exactly one of arguments `schedule` or `pruner`.")
        if schedule is not None and not isinstance(schedule, PruningSchedule):
            raise TypeError(f"PruningCallback: argument `schedule` must be a kerasinit PruningSchedule; received {schedule!r}.")
        self.pruner = pruner
        self._spec = {"schedule": schedule, "layers": layers, "scope": scope, "overrides": overrides,
                      "pattern": pattern, "granularity": granularity, "norm": norm, "min_density": min_density}
        if in_graph is not None and not isinstance(in_graph, bool):
            raise TypeError(f"PruningCallback: argument `in_graph` must be None (automatic), True or False; received {in_graph!r}.")
        self.in_graph = in_graph
        self._plan: IncrementalPlan | None = None
        self._refreshed: int | None = None
        self._step = 0
        self._jax = False
        self._span = 1
        self.updates: list[tuple[int, float]] = []

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
        self._setup_in_graph(optimizer)
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

    def _setup_in_graph(self, optimizer: Any) -> None:
        """Install (or keep) the in-step updates of :mod:`kerasinit.pruning.incremental` when they apply."""
        pruner, schedule = self.pruner, self.pruner.schedule
        reasons = []
        if schedule is None:
            reasons.append("the pruner has no schedule (fixed masks)")
        if pruner.scope != "layer" or pruner.pattern is not None or pruner.granularity != "weight":
            reasons.append("only scope='layer' unstructured pruning updates inside the step")
        if keras.distribution.distribution() is not None or _tf_strategy(self.model):
            reasons.append("a distribution is active")
        # PyTorch runs the step eagerly: some 30 small ops per weight cost more there than the host's update
        automatic = not reasons and schedule.frequency <= IN_GRAPH_FREQUENCY and keras.backend.backend() != "torch"
        wanted = self.in_graph if self.in_graph is not None else automatic
        if self.in_graph and reasons:
            raise ValueError(f"PruningCallback: in_graph=True cannot be used here: {'; '.join(reasons)}.")
        plan = self._plan
        if wanted and (plan is None or plan.pruner is not pruner):
            if plan is not None:
                plan.remove()
            self._plan = IncrementalPlan(pruner, schedule, optimizer)
            pruner.reset_compiled_step()  # the step must now run the updates
        elif not wanted and plan is not None:
            plan.remove()
            self._plan = None
            pruner.reset_compiled_step()
        if self._plan is not None:
            self._refreshed = None  # the first batch of every fit is done on the host

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        if self._jax:
            bind(self.pruner.model.optimizer, self._state_variables)

    def _unbind(self, logs: Any = None) -> None:
        if getattr(self, "_jax", False) and self.pruner is not None:
            unbind(self.pruner.model.optimizer, self._state_variables)

    on_test_begin = _unbind  # validation inside fit starts after Keras synced the epoch's state

    def on_train_end(self, logs: Any = None) -> None:
        self._unbind()
        if self._plan is not None:
            self._plan.until.assign(0)  # a later fit without this callback leaves the masks alone

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
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
                start = big[-1] if big else (schedule.update_steps(schedule.begin_step, self._step + 1) or [None])[-1]
                if start is not None and (first or big):
                    self.pruner.forget_counts()  # the step changed masks behind the pruner's back
                    self.pruner.update_masks(schedule.sparsity(start))
                if first:  # a step prepares the next step's mask (its constraint runs after the update): not past
                    # the epoch's last step, which ends at its own mask as on the host path
                    plan.until.assign(np.int32(self._step - batch + steps if steps else np.iinfo(np.int32).max))
                plan.refresh()
                self._refreshed = self._step
            if last:
                self._refreshed = None  # the next epoch's first block is updated here, like a fit's first
            if due:
                self.updates.append((due[-1], schedule.sparsity(due[-1])))
        self._step += span

    def _host_update(self, step: int) -> None:
        sparsity = self.pruner.schedule.sparsity(step)
        if self._jax:  # the variables hold the epoch's start; fit's state holds the present
            self.pruner.model.jax_state_sync()
        self.pruner.update_masks(sparsity)
        self.updates.append((step, sparsity))


def _tf_strategy(model: Any) -> bool:
    """Whether ``model`` trains under a non-default ``tf.distribute`` strategy (TensorFlow backend)."""
    strategy = getattr(model, "distribute_strategy", None)
    return strategy is not None and "Default" not in type(strategy).__name__
