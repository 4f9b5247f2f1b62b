"""``Pruner``: magnitude pruning of a Keras 3 model, with or without ``fit``.

The pruner installs a :class:`~kerasinit.pruning.constraint.MaskConstraint` on every selected
weight (see that module for why masked weights stay exactly 0 and how masks are saved), and
recomputes masks by magnitude when asked (``update_masks``) or when its schedule says so
(``step``). In ``fit``, pass ``PruningCallback(pruner=pruner)``; in a custom training loop call
``pruner.step(step)`` once per optimizer step (``optimizer.apply`` already applies the masks;
``apply_masks()`` re-zeroes weights written by other means). On JAX, a custom loop that calls
``optimizer.stateless_apply`` binds the masks to the optimizer first (``optimizer_state.bind``)
so that they are part of the state it passes around; see ``examples/prune_jax_custom_loop.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit._validation import check_choice, check_real
from kerasinit.pruning._where import keep_where
from kerasinit.pruning.constraint import Mask
from kerasinit.pruning.masks import global_masks, magnitude_selection
from kerasinit.pruning.optimizer_state import is_bound
from kerasinit.pruning.persistence import attach_masks
from kerasinit.pruning.schedules import PruningSchedule, check_sparsity
from kerasinit.pruning.selection import PrunableWeight, Selector, check_maskable, select

SCOPES = ("layer", "global")


def _reset_compiled_step(model: keras.layers.Layer) -> None:
    """A train function traced before the masks existed does not apply them: retrace it."""
    if getattr(model, "train_function", None) is not None:
        model.make_train_function(force=True)  # fit may already hold it: rebuild, never leave None


class Pruner:
    """Magnitude pruning of the prunable weights of ``model`` (SPEC §4.2).

    Args:
        model: a built Keras 3 model (Sequential, functional or subclassed) or layer.
        schedule: a :class:`PruningSchedule` (needed for ``step``/``callback``; not for one-shot use).
        layers: which layers (see :func:`kerasinit.pruning.selection.select`); default all prunable.
        scope: ``"layer"`` (each tensor pruned to the sparsity) or ``"global"`` (one magnitude
            threshold across all selected tensors).
        overrides: ``{layer name: factor}``; that layer is pruned on its own to ``factor ×``
            the sparsity (e.g. ``{"output": 0.5}``: the output layer at half the rate).
    """

    def __init__(
        self,
        model: keras.layers.Layer,
        schedule: PruningSchedule | None = None,
        layers: Iterable[Selector] | Selector | None = None,
        scope: str = "layer",
        overrides: Mapping[str, float] | None = None,
    ) -> None:
        if not isinstance(model, keras.layers.Layer):
            raise TypeError(f"Pruner: argument `model` must be a Keras 3 model or layer; received {type(model).__name__}.")
        if schedule is not None and not isinstance(schedule, PruningSchedule):
            raise TypeError(f"Pruner: argument `schedule` must be a kerasinit PruningSchedule; received {schedule!r}.")
        self.scope = check_choice("scope", scope, SCOPES, owner="Pruner")
        self.model = model
        self.schedule = schedule
        self.weights = select(model, layers)
        for weight in self.weights:
            check_maskable(weight)
        names = {w.layer.name for w in self.weights}
        self.overrides: dict[str, float] = {}
        for name, factor in dict(overrides or {}).items():
            if name not in names:
                raise ValueError(f"Pruner: argument `overrides` names {name!r}, not a pruned layer; pruned layers: {sorted(names)}.")
            self.overrides[name] = check_real(f"overrides[{name!r}]", factor, owner="Pruner", nonnegative=True)
        self.masks: dict[str, Mask] = attach_masks(model, self.weights)
        self._thresholds: dict[str, float] = {}
        _reset_compiled_step(model)

    # ------------------------------------------------------------------ masks
    def layer_sparsity(self, weight: PrunableWeight, sparsity: float) -> float:
        """The sparsity a weight is pruned to when the model-wide target is ``sparsity``."""
        s = sparsity * self.overrides.get(weight.layer.name, 1.0)
        if not 0.0 <= s < 1.0:
            raise ValueError(
                f"Pruner: overrides[{weight.layer.name!r}] × sparsity = {s:.4g} is outside [0, 1); lower the factor."
            )
        return s

    def update_masks(self, sparsity: float) -> None:
        """Recompute every mask by magnitude for ``sparsity`` and zero the pruned weights."""
        sparsity = check_sparsity("sparsity", sparsity, "Pruner.update_masks")
        values = {w.name: to_numpy(w.variable) for w in self.weights}
        joint = [w for w in self.weights if self.scope == "global" and w.layer.name not in self.overrides]
        new: dict[str, np.ndarray] = {}
        for w in self.weights:
            if w not in joint:  # the last threshold bounds the search (exact either way; see masks._keep_largest)
                last = self._thresholds.get(w.name)
                new[w.name], self._thresholds[w.name] = magnitude_selection(
                    values[w.name], self.layer_sparsity(w, sparsity), None if last is None else 1.5 * last)
        if joint:
            new.update(zip([w.name for w in joint], global_masks([values[w.name] for w in joint], sparsity), strict=True))
        for w in self.weights:
            self.masks[w.name].assign(new[w.name])
        self.apply_masks()  # on the device: the bool mask goes over, the weights stay where they are
        self._masks_changed()

    def apply_masks(self) -> None:
        """Zero every pruned weight now (fit and ``optimizer.apply`` already do it after each step)."""
        for w in self.weights:
            w.variable.assign(keep_where(self.masks[w.name].variable, w.variable))  # exact +0, even for inf/NaN

    def set_masks(self, masks: Mapping[str, np.ndarray]) -> None:
        """Install given masks (``{"layer/attr": uint8 array}``), e.g. a lottery ticket's, and apply them."""
        unknown = [k for k in masks if k not in self.masks]
        if unknown:
            raise ValueError(f"Pruner.set_masks: unknown weights {unknown}; known: {sorted(self.masks)}.")
        for name, m in masks.items():
            self.masks[name].assign(m)
        self.apply_masks()
        self._masks_changed()

    @property
    def mask_variables(self) -> list[keras.Variable]:
        """The boolean mask variables, in ``masks`` order (state of the compiled step on JAX)."""
        return [m.variable for m in self.masks.values()]

    def _masks_changed(self) -> None:
        """On JAX, a train step traced while the masks were not part of its state holds them as constants:
        retrace it (a step that reads them from its state, as ``PruningCallback`` binds them, needs nothing)."""
        if keras.backend.backend() != "jax" or is_bound(getattr(self.model, "optimizer", None), self.mask_variables):
            return
        if any(m.baked for m in self.masks.values()):
            _reset_compiled_step(self.model)
            for m in self.masks.values():
                m.baked = False

    def get_masks(self) -> dict[str, np.ndarray]:
        """Every mask as a uint8 NumPy array, keyed ``"layer/attr"``."""
        return {name: m.numpy() for name, m in self.masks.items()}

    # ------------------------------------------------------------------ schedule
    def step(self, step: int | None = None) -> bool:
        """Apply the schedule at optimizer step ``step`` (default: ``model.optimizer.iterations``).

        Returns whether the masks were updated. Call once per step in custom training loops.
        """
        if self.schedule is None:
            raise ValueError("Pruner.step: this pruner has no `schedule`; pass one to Pruner(...) or use update_masks().")
        if step is None:
            optimizer = getattr(self.model, "optimizer", None)
            if optimizer is None:
                raise ValueError("Pruner.step: pass `step` (the model has no optimizer to read iterations from).")
            step = int(to_numpy(optimizer.iterations))
        if self.schedule.should_prune(step):
            self.update_masks(self.schedule.sparsity(step))
            return True
        return False

    @property
    def sparsity(self) -> float:
        """Fraction of masked-out weights over all pruned tensors."""
        total = sum(m.size for m in self.masks.values())
        kept = sum(int(m.numpy().sum()) for m in self.masks.values())
        return 1.0 - kept / total

    @property
    def mask_bytes(self) -> int:
        """Memory held by the masks (bool: one byte per pruned-tensor weight)."""
        return sum(m.size * np.dtype(m.variable.dtype).itemsize for m in self.masks.values())


def prune(
    model: keras.layers.Layer,
    sparsity: float,
    scope: str = "layer",
    layers: Iterable[Selector] | Selector | None = None,
    overrides: Mapping[str, float] | None = None,
) -> Pruner:
    """One-shot magnitude pruning of ``model`` to ``sparsity``; masks stay on for further training."""
    check_sparsity("sparsity", sparsity, "prune")
    pruner = Pruner(model, None, layers=layers, scope=scope, overrides=overrides)
    pruner.update_masks(sparsity)
    return pruner
