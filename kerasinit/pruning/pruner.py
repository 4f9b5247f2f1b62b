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
from kerasinit.backend.select import keep_where
from kerasinit.pruning.blocks import (
    NO_BLOCK,
    block_count,
    block_selection,
    check_block,
    exclusive,
    pool,
)
from kerasinit.pruning.blocks import expand as expand_blocks
from kerasinit.pruning.channels import NORMS, channel_scores, expand, output_axis
from kerasinit.pruning.constraint import Mask
from kerasinit.pruning.masks import (
    check_floors,
    check_min_density,
    empty_weights,
    global_masks,
    keep_count,
    keep_largest,
    magnitude_selection,
    warn_collapse,
)
from kerasinit.pruning.optimizer_state import is_bound
from kerasinit.pruning.patterns import n_m_mask, parse_pattern, pattern_sparsity, reduction_axis
from kerasinit.pruning.persistence import attach_masks
from kerasinit.pruning.policy import PruningPolicy, apply_policy, get_policy, warn_notes
from kerasinit.pruning.schedules import PruningSchedule, check_sparsity
from kerasinit.pruning.selection import PrunableWeight, Selector, check_maskable, select

SCOPES = ("layer", "global")
GRANULARITIES = ("weight", "channel")


def _reset_compiled_step(model: keras.layers.Layer) -> None:
    """A train function traced before the masks existed does not apply them: retrace it."""
    if getattr(model, "train_function", None) is not None:
        model.make_train_function(force=True)  # fit may already hold it: rebuild, never leave None


class Pruner:
    """Magnitude pruning of the prunable weights of ``model``.

    Args:
        model: a built Keras 3 model (Sequential, functional or subclassed) or layer.
        schedule: a :class:`PruningSchedule` (needed for ``step``/``callback``; not for one-shot use).
        layers: which layers (see :func:`kerasinit.pruning.selection.select`); default all prunable.
        scope: ``"layer"`` (each tensor pruned to the sparsity) or ``"global"`` (one magnitude
            threshold across all selected tensors).
        overrides: ``{layer name: factor}``; that layer is pruned on its own to ``factor ×``
            the sparsity (e.g. ``{"output": 0.5}``: the output layer at half the rate).
        pattern: ``"N:M"`` (e.g. ``"2:4"``): every update keeps the N largest |w| of each group of M
            consecutive weights along the kernel's input axis (:mod:`kerasinit.pruning.patterns`);
            the sparsity is 1 − N/M whatever the schedule says (the schedule only says *when*, as
            with TFMOT's ``sparsity_m_by_n``). Needs ``scope="layer"`` and no ``overrides``.
        granularity: ``"weight"`` (default) or ``"channel"``: whole output channels (units,
            filters) are pruned, the ones of smallest ``norm`` (``"l1"`` or ``"l2"``) of their
            weights, as ``torch.nn.utils.prune.ln_structured`` does (:mod:`kerasinit.pruning.channels`);
            each layer keeps ``round(channels · (1 − sparsity))`` of them. Needs ``scope="layer"``.
        min_density: ``scope="global"`` only: each jointly pruned weight keeps at least
            ``max(1, ⌈min_density · n⌉)`` of its largest |w| (its floor), the rest of the budget
            going by the one threshold, so the total sparsity is still the one asked for (a
            ValueError if the floors alone exceed it). Default 0: TFMOT's global threshold, which
            can empty a whole weight (layer collapse); every update that empties one warns
            (:class:`~kerasinit.pruning.masks.LayerCollapseWarning`, naming it) and ``collapsed``
            lists them. ``scope="layer"`` keeps at least one weight of each tensor already.
            With blocks the floor counts blocks.
        block_size: ``(r, c)``: whole ``r × c`` blocks of each weight's matrix view are kept or pruned,
            ranked by their pooled ``|w|`` (TFMOT's ``block_size``; :mod:`kerasinit.pruning.blocks`); the
            sparsity is met in blocks. Default ``(1, 1)``: unstructured. Works with both scopes and
            ``overrides``; excludes ``pattern`` and ``granularity="channel"``.
        block_pooling_type: ``"AVG"`` (default) or ``"MAX"``: how a block's ``|w|`` are pooled.
        policy: None, ``"xnnpack"`` or a :class:`~kerasinit.pruning.policy.PruningPolicy`: prune only
            the layers a deployment target runs sparse (``"xnnpack"``: the 1×1 convolutions of XNNPack's
            sparse subgraph, TFMOT's ``PruneForLatencyOnXNNPack``; :mod:`kerasinit.pruning.policy`). A
            model that breaks the target's rule is refused (ValueError naming the layer and why).

    Attributes:
        collapsed: the names of the weights whose mask keeps nothing, in selection order.
        policy_notes: what may keep the policy's target from running the model sparse (also warned).
    """

    def __init__(
        self,
        model: keras.layers.Layer,
        schedule: PruningSchedule | None = None,
        layers: Iterable[Selector] | Selector | None = None,
        scope: str = "layer",
        overrides: Mapping[str, float] | None = None,
        pattern: str | None = None,
        granularity: str = "weight",
        norm: str = "l2",
        min_density: float = 0.0,
        block_size: tuple[int, int] = NO_BLOCK,
        block_pooling_type: str = "AVG",
        policy: str | PruningPolicy | None = None,
    ) -> None:
        if not isinstance(model, keras.layers.Layer):
            raise TypeError(f"Pruner: argument `model` must be a Keras 3 model or layer; received {type(model).__name__}.")
        if schedule is not None and not isinstance(schedule, PruningSchedule):
            raise TypeError(f"Pruner: argument `schedule` must be a kerasinit PruningSchedule; received {schedule!r}.")
        self.scope = check_choice("scope", scope, SCOPES, owner="Pruner")
        self.model = model
        self.schedule = schedule
        self.block_size, self.block_pooling_type = check_block(block_size, block_pooling_type, "Pruner")
        self.policy = get_policy(policy, "Pruner")
        self.weights = select(model, layers)
        #: what may keep the policy's target from running the model sparse (warned as well)
        self.policy_notes: list[str] = []
        if self.policy is not None:
            self.weights, self.policy_notes = apply_policy(self.policy, model, self.weights, layers is not None, "Pruner")
            if schedule is not None:
                target_notes = self.policy.sparsity_notes(schedule.target)
                warn_notes("Pruner", self.policy, target_notes)
                self.policy_notes += target_notes
        for weight in self.weights:
            check_maskable(weight)
        names = {w.layer.name for w in self.weights}
        self.overrides: dict[str, float] = {}
        for name, factor in dict(overrides or {}).items():
            if name not in names:
                raise ValueError(f"Pruner: argument `overrides` names {name!r}, not a pruned layer; pruned layers: {sorted(names)}.")
            self.overrides[name] = check_real(f"overrides[{name!r}]", factor, owner="Pruner", nonnegative=True)
        self.min_density = check_min_density(min_density, "Pruner")
        if self.min_density > 0 and self.scope != "global":
            raise ValueError(f"Pruner: argument `min_density` applies to scope='global' (the jointly pruned weights); "
                             f"scope={self.scope!r} prunes each weight to the sparsity given and keeps at least one of each.")
        self.granularity = check_choice("granularity", granularity, GRANULARITIES, owner="Pruner")
        self.norm = check_choice("norm", norm, NORMS, owner="Pruner")
        self.pattern = pattern
        self._n_m = None if pattern is None else parse_pattern(pattern, "Pruner")
        structured = "pattern" if pattern is not None else "granularity='channel'" if self.granularity == "channel" else None
        if structured and pattern is not None and self.granularity == "channel":
            raise ValueError("Pruner: arguments `pattern` and granularity='channel' exclude each other.")
        if structured and self.scope != "layer":
            raise ValueError(f"Pruner: {structured} prunes each layer on its own: argument `scope` must be 'layer'; "
                             f"received {self.scope!r}.")
        if pattern is not None and self.overrides:
            raise ValueError("Pruner: a `pattern` fixes every layer's sparsity at 1 - N/M: argument `overrides` must be empty.")
        exclusive(self.block_size, "Pruner", pattern=pattern, granularity=self.granularity)
        #: whether whole blocks are the unit (``block_size`` != (1, 1))
        self._blocks = self.block_size != NO_BLOCK
        for w in self.weights if self._blocks else ():
            if len(w.variable.shape) < 2:
                raise ValueError(f"Pruner: argument `block_size`={self.block_size} needs weights of rank >= 2; "
                                 f"{w.name!r} has shape {tuple(w.variable.shape)}. Leave it out with `layers`.")
        #: the axis each weight's N:M groups / channels run along (checked before any mask is attached)
        self._axes = {w.name: reduction_axis(w) if self._n_m else output_axis(w) for w in self.weights} if structured else {}
        for w in self.weights if self._n_m else ():
            length = int(w.variable.shape[self._axes[w.name]])
            if length % self._n_m[1]:
                raise ValueError(f"Pruner: argument `pattern` {pattern!r} needs each weight's input axis to be a multiple "
                                 f"of M={self._n_m[1]}; {w.name!r} (shape {tuple(w.variable.shape)}) has {length} along "
                                 f"axis {self._axes[w.name]}. Leave it out with `layers`.")
        if self.min_density > 0 and schedule is not None:  # the floors must fit the schedule's final sparsity
            joint = [self._units(w) for w in self.weights if w.layer.name not in self.overrides]
            check_floors(joint, self.min_density, keep_count(sum(joint), schedule.target), schedule.target, "Pruner")
        self.masks: dict[str, Mask] = attach_masks(model, self.weights)
        #: the weights whose mask keeps nothing (layer collapse), in selection order
        self.collapsed: list[str] = []
        #: who the collapse warnings speak for (``prune``, ``prune_at_init``; default ``Pruner.<method>``)
        self.owner: str | None = None
        self._thresholds: dict[str, float] = {}
        #: per weight, (its mask's version, kept count) when this pruner last set it; the global scope's count
        self._counts: dict[str, tuple[int, int | None]] = {}
        self._joint_count = -1
        _reset_compiled_step(model)

    @staticmethod
    def _size(weight: PrunableWeight) -> int:
        return int(np.prod(tuple(weight.variable.shape)))

    def _units(self, weight: PrunableWeight) -> int:
        """What a mask of ``weight`` counts: its blocks (``block_size`` != (1, 1)) or its entries."""
        shape = tuple(weight.variable.shape)
        return block_count(shape, self.block_size) if self._blocks else int(np.prod(shape))

    def _note_collapse(self, masks: Mapping[str, np.ndarray], method: str) -> None:
        """Update ``collapsed`` for the masks just set; warn naming the weights newly emptied."""
        emptied = set(empty_weights(masks))
        before = set(self.collapsed)
        now = (before - set(masks)) | emptied
        self.collapsed = [w.name for w in self.weights if w.name in now]
        new = [name for name in self.collapsed if name not in before]
        if new:
            # the caller: of update_masks/set_masks (4), or of prune/prune_at_init, which set `owner` (5)
            warn_collapse(self.owner or f"Pruner.{method}", new, len(self.weights), stacklevel=4 if self.owner is None else 5)

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
        """Recompute every mask by magnitude for ``sparsity`` and zero the newly pruned weights.

        A weight whose kept count is unchanged since its mask was last set keeps that mask (its
        pruned weights are the zeros, so the magnitude ranking would give it back), untouched: at
        frequency 1 most updates change only the large tensors, and none is read back from the device.
        """
        sparsity = check_sparsity("sparsity", sparsity, "Pruner.update_masks")
        joint = [w for w in self.weights if self.scope == "global" and w.layer.name not in self.overrides]
        counts = {w.name: self.kept_count(w, sparsity) for w in self.weights if w not in joint}
        changed = [w for w in self.weights if w not in joint and not self._current(w.name, counts[w.name])]
        joint_count = keep_count(sum(self._units(w) for w in joint), sparsity)
        if joint and (self._joint_count != joint_count or not all(self._current(w.name, None) for w in joint)):
            changed += joint
        if not changed:
            return
        values = {w.name: to_numpy(w.variable) for w in changed}
        new: dict[str, np.ndarray] = {}
        for w in changed:
            if self._axes:
                new[w.name] = self._structured_mask(w, values[w.name], counts[w.name])
            elif w not in joint:  # the last threshold bounds the search (exact either way; see masks.keep_largest)
                last = self._thresholds.get(w.name)
                select_mask = self._block_selection if self._blocks else magnitude_selection
                new[w.name], self._thresholds[w.name] = select_mask(
                    values[w.name], self.layer_sparsity(w, sparsity), None if last is None else 1.5 * last)
        if joint and joint[0] in changed:
            if self._blocks:  # one threshold over every weight's pooled block scores
                grids = global_masks([pool(np.abs(values[w.name].astype("float32")), self.block_size,
                                           self.block_pooling_type) for w in joint], sparsity, self.min_density, "Pruner")
                masks = [expand_blocks(g, values[w.name].shape, self.block_size) for w, g in zip(joint, grids, strict=True)]
            else:
                masks = global_masks([values[w.name] for w in joint], sparsity, self.min_density, "Pruner")
            new.update(zip([w.name for w in joint], masks, strict=True))
            self._joint_count = joint_count
        for w in changed:
            mask = self.masks[w.name]
            mask.assign(new[w.name])
            self._counts[w.name] = (mask.version, counts.get(w.name))
            # zero the newly pruned weights on the device: writing the host copy back instead made every
            # later TensorFlow step ~10% slower (LeNet, frequency 100: 1.23 vs 1.08 x dense in one run)
            w.variable.assign(keep_where(mask.variable, w.variable))
        self._masks_changed()
        self._note_collapse(new, "update_masks")

    def _block_selection(self, value: np.ndarray, sparsity: float, bound: float | None) -> tuple[np.ndarray, float]:
        return block_selection(value, sparsity, self.block_size, self.block_pooling_type, bound)

    def _structured_mask(self, weight: PrunableWeight, value: np.ndarray, count: int) -> np.ndarray:
        """The N:M mask, or the mask keeping the ``count`` channels of largest norm, of ``value``."""
        axis = self._axes[weight.name]
        magnitudes = np.abs(value.astype(np.result_type(value.dtype, np.float32), copy=False))
        if self._n_m is not None:
            return n_m_mask(magnitudes, *self._n_m, axis, weight.name)
        keep, _ = keep_largest(channel_scores(magnitudes, axis, self.norm), count)
        return expand(keep, value.shape, axis)

    def kept_count(self, weight: PrunableWeight, sparsity: float) -> int:
        """How many weights (channels with ``granularity="channel"``, blocks with a ``block_size``) of ``weight``
        are kept at ``sparsity``."""
        size = self._units(weight)
        if self._n_m is not None:
            return size // self._n_m[1] * self._n_m[0]
        if self._axes:
            size = int(weight.variable.shape[self._axes[weight.name]])
        return keep_count(size, self.layer_sparsity(weight, sparsity))

    def forget_counts(self) -> None:
        """Recompute every mask at the next ``update_masks`` (its masks were changed by other means)."""
        self._counts.clear()
        self._joint_count = -1

    def reset_compiled_step(self) -> None:
        """Retrace the model's train step (it must pick up a change in what the mask constraints run)."""
        _reset_compiled_step(self.model)

    def _current(self, name: str, count: int | None) -> bool:
        """Whether the mask of ``name`` was set by this pruner, untouched since, for ``count`` kept weights."""
        return self._counts.get(name) == (self.masks[name].version, count)

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
        self._note_collapse(masks, "set_masks")

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
    sparsity: float | None,
    scope: str = "layer",
    layers: Iterable[Selector] | Selector | None = None,
    overrides: Mapping[str, float] | None = None,
    *,
    pattern: str | None = None,
    granularity: str = "weight",
    norm: str = "l2",
    min_density: float = 0.0,
    block_size: tuple[int, int] = NO_BLOCK,
    block_pooling_type: str = "AVG",
    policy: str | PruningPolicy | None = None,
) -> Pruner:
    """One-shot magnitude pruning of ``model`` to ``sparsity``; masks stay on for further training.

    With a ``pattern`` (``"N:M"``) pass ``sparsity=None`` (or 1 − N/M); ``granularity="channel"``
    prunes whole output channels; ``block_size=(1, 4)`` whole 1×4 blocks; ``policy="xnnpack"`` only
    the layers XNNPack runs sparse. ``scope="global"`` may empty whole weights (a
    ``LayerCollapseWarning`` names them; ``pruner.collapsed`` lists them) unless ``min_density``
    keeps a floor per weight. See :class:`Pruner` for the arguments.
    """
    sparsity, _ = pattern_sparsity(sparsity, pattern, "prune")
    pruner = Pruner(model, None, layers=layers, scope=scope, overrides=overrides, pattern=pattern,
                    granularity=granularity, norm=norm, min_density=min_density, block_size=block_size,
                    block_pooling_type=block_pooling_type, policy=policy)
    pruner.owner = "prune"
    if pruner.policy is not None:
        notes = pruner.policy.sparsity_notes(sparsity)
        warn_notes("prune", pruner.policy, notes)
        pruner.policy_notes += notes
    pruner.update_masks(sparsity)
    return pruner
