"""TFMOT bridge: the kerasinit pruning API over ``tensorflow_model_optimization``.

For legacy tf_keras models (TFMOT cannot prune Keras 3 models; use the native
:class:`kerasinit.pruning.Pruner` there). Needs the ``[tfmot]`` extra; this module is imported
only when used (``import kerasinit.pruning`` never imports TFMOT or tf_keras). Note that
importing TFMOT sets ``TF_USE_LEGACY_KERAS=1`` in the process environment; this module restores
the caller's setting afterwards, so ``tf.keras`` keeps meaning what it meant.

What the bridge adds to TFMOT:

- :func:`to_tfmot_schedule`: a kerasinit schedule as TFMOT's own ``ConstantSparsity`` /
  ``PolynomialDecay`` (same arguments, TFMOT's semantics).
- :class:`KerasinitSchedule`: what :func:`prune_low_magnitude` installs instead. It is a TFMOT
  schedule with kerasinit's semantics (no NaN when ``begin_step == end_step``; ``end_step`` is
  always an update step) and aligned on the optimizer step: TFMOT increments its
  ``pruning_step`` *before* it updates the masks, so at the batch where the optimizer has done
  ``s`` steps TFMOT sees ``s + 1``. Shifted by one, the same kerasinit schedule updates the masks
  at the same batches natively and through TFMOT.
- ``layers=`` selection (names, regexes, classes, predicates) and per-layer ``overrides``
  (a layer's schedule scaled by its factor), as in the native API. ``scope="global"`` is native
  only (TFMOT thresholds each tensor on its own).
- :func:`get_masks` (uint8, keyed ``"layer/weight"`` like the native pruner),
  :func:`sparsity_report` (same columns as the native one), :func:`strip`, :func:`load_model`.

TFMOT keeps a float32 mask per weight (4 bytes per weight, against 1 natively), keeps every
weight tied with the threshold (so possibly more than ``k``; native keeps exactly ``k``), and
masks in the forward pass, so between its end-of-epoch re-masking the stored weights of pruned
positions drift with the optimizer's momentum (the report counts the effective ``weight·mask``).
"""

# ruff: noqa: E402, I001 -- imports are ordered on purpose: tf.keras resolves before TFMOT is imported.
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import os

import numpy as np
import tensorflow as tf

# Importing TFMOT sets TF_USE_LEGACY_KERAS=1 for the whole process, which would silently turn the
# caller's later `tf.keras` into tf_keras. Resolve `tf.keras` under the caller's setting first
# (TensorFlow caches it), let TFMOT import, then put the variable back as it was.
_LEGACY_ENV = os.environ.get("TF_USE_LEGACY_KERAS")
getattr(tf.keras, "__name__", None)
import tensorflow_model_optimization as _tfmot
import tf_keras

if _LEGACY_ENV is None:
    os.environ.pop("TF_USE_LEGACY_KERAS", None)
else:
    os.environ["TF_USE_LEGACY_KERAS"] = _LEGACY_ENV
from tensorflow_model_optimization.python.core.sparsity.keras import (
    prune_registry as _prune_registry,
)
from tensorflow_model_optimization.python.core.sparsity.keras import (
    pruning_schedule as _pruning_schedule,
)
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper as _wrapper

from kerasinit._validation import check_choice, check_real
from kerasinit.compat.tf_keras import register_all
from kerasinit.pruning.blocks import check_block, exclusive
from kerasinit.pruning.patterns import parse_pattern
from kerasinit.pruning.schedules import ConstantSparsity, PolynomialDecay, PruningSchedule
from kerasinit.pruning.selection import Selector, matches

_sp = _tfmot.sparsity.keras
_TFMOTSchedule = _pruning_schedule.PruningSchedule

register_all()  # kerasinit initializers load in tf_keras models


def _check_schedule(schedule: Any, owner: str) -> PruningSchedule:
    if not isinstance(schedule, PruningSchedule):
        raise TypeError(f"{owner}: argument `schedule` must be a kerasinit PruningSchedule; received {schedule!r}.")
    return schedule


def to_tfmot_schedule(schedule: PruningSchedule) -> Any:
    """TFMOT's own schedule with the same arguments (and TFMOT's semantics, flaws included)."""
    schedule = _check_schedule(schedule, "to_tfmot_schedule")
    if isinstance(schedule, ConstantSparsity):
        return _sp.ConstantSparsity(schedule.target_sparsity, schedule.begin_step, schedule.end_step, schedule.frequency)
    return _sp.PolynomialDecay(schedule.initial_sparsity, schedule.final_sparsity, schedule.begin_step,
                               schedule.end_step, power=schedule.power, frequency=schedule.frequency)


def _scaled(schedule: PruningSchedule, factor: float) -> PruningSchedule:
    """The same schedule with its sparsities multiplied by ``factor`` (a per-layer override)."""
    config = schedule.get_config()
    for key in ("target_sparsity", "initial_sparsity", "final_sparsity"):
        if key in config:
            config[key] = config[key] * factor
    return type(schedule).from_config(config)


class KerasinitSchedule(_TFMOTSchedule):
    """A kerasinit schedule run by TFMOT: kerasinit semantics, at TFMOT step ``s + offset``.

    ``offset=1`` (the default) aligns TFMOT's ``pruning_step`` with the optimizer's iterations
    (see the module docstring).
    """

    def __init__(self, schedule: Mapping[str, Any] | PruningSchedule, offset: int = 1) -> None:
        if isinstance(schedule, Mapping):
            kinds = {"ConstantSparsity": ConstantSparsity, "PolynomialDecay": PolynomialDecay}
            schedule = kinds[schedule["class_name"]].from_config(dict(schedule["config"]))
        self.schedule = _check_schedule(schedule, "KerasinitSchedule")
        self.offset = int(offset)

    def __call__(self, step: Any) -> tuple[Any, Any]:
        s = self.schedule
        t = tf.cast(step, tf.int64) - self.offset
        due = tf.logical_and(t >= s.begin_step, tf.equal(tf.math.floormod(t - s.begin_step, s.frequency), 0))
        if s.end_step >= 0:
            due = tf.logical_or(due, tf.equal(t, s.end_step))
            due = tf.logical_and(due, tf.logical_and(t >= s.begin_step, t <= s.end_step))
        if isinstance(s, ConstantSparsity):
            return due, tf.constant(s.target_sparsity, tf.float32)
        span = s.end_step - s.begin_step
        if span == 0:
            p = tf.where(t >= s.end_step, 1.0, 0.0)
        else:
            p = tf.clip_by_value(tf.cast(t - s.begin_step, tf.float32) / float(span), 0.0, 1.0)
        sparsity = s.final_sparsity + (s.initial_sparsity - s.final_sparsity) * tf.pow(1.0 - p, float(s.power))
        return due, sparsity

    def get_config(self) -> dict[str, Any]:
        inner = {"class_name": type(self.schedule).__name__, "config": self.schedule.get_config()}
        return {"class_name": type(self).__name__, "config": {"schedule": inner, "offset": self.offset}}


# TFMOT's wrapper deserializes schedules by plain class name: make ours resolvable.
tf_keras.utils.get_custom_objects()[KerasinitSchedule.__name__] = KerasinitSchedule


_registry = _prune_registry.PruneRegistry


def _plain_weight_names(layer: Any) -> list[str]:
    """The prunable weight attributes TFMOT's registry lists for a (non-RNN) layer class."""
    return list(_registry._LAYERS_WEIGHTS_MAP.get(layer.__class__, []))  # noqa: SLF001


def _is_prunable(layer: Any) -> bool:
    if isinstance(layer, _sp.PrunableLayer):
        return True
    if not _registry.supports(layer):
        return False
    return _registry._is_rnn_layer(layer) or bool(_plain_weight_names(layer))  # noqa: SLF001


def prune_low_magnitude(
    model: Any,
    schedule: PruningSchedule,
    layers: Iterable[Selector] | Selector | None = None,
    scope: str = "layer",
    overrides: Mapping[str, float] | None = None,
    *,
    pattern: str | None = None,
    sparsity_m_by_n: tuple[int, int] | None = None,
    block_size: tuple[int, int] = (1, 1),
    block_pooling_type: str = "AVG",
    policy: str | None = None,
) -> Any:
    """A copy of the tf_keras ``model`` with the selected layers wrapped by TFMOT's pruning.

    Same arguments as :class:`kerasinit.pruning.Pruner` (``scope`` must be ``"layer"``). Train it
    with ``callbacks=kerasinit.pruning.tfmot.callbacks()``. Sequential and functional models only
    (TFMOT's limit; subclassed models prune natively in Keras 3).

    N:M sparsity: ``pattern="2:4"`` (kerasinit's spelling: N *kept* of every M) or TFMOT's own
    ``sparsity_m_by_n=(2, 4)`` (m *zeros* of every n); ``pattern="N:M"`` is ``sparsity_m_by_n=(M − N, M)``.
    Either one, or both if they agree. TFMOT fixes the N:M mask at its first step and accepts rank-2
    and rank-4 kernels (Dense, Conv2D), grouping along the input channels as the native pruner does.

    ``block_size=(r, c)`` and ``block_pooling_type`` (``"AVG"``/``"MAX"``) are TFMOT's own (the native
    semantics are the same, :mod:`kerasinit.pruning.blocks`); TFMOT takes blocks on 2-D weights only
    (Dense, RNN kernels), so a selected layer with another weight rank is refused here, naming it.
    ``policy="xnnpack"`` is TFMOT's ``PruneForLatencyOnXNNPack()``: only 1×1 ``Conv2D`` layers are
    wrapped and TFMOT's check of the sparse subgraph runs on the pruned model (its ValueError as is).
    """
    if not isinstance(model, tf_keras.Model):
        raise TypeError(f"prune_low_magnitude: argument `model` must be a tf_keras.Model (for Keras 3 models use "
                        f"kerasinit.pruning.Pruner); received {type(model).__name__}.")
    schedule = _check_schedule(schedule, "prune_low_magnitude")
    if check_choice("scope", scope, ("layer", "global"), owner="prune_low_magnitude") == "global":
        raise ValueError("prune_low_magnitude: argument `scope` must be 'layer' through TFMOT (it thresholds each "
                         "tensor on its own); scope='global' is available natively in kerasinit.pruning.Pruner.")
    if not isinstance(model, tf_keras.Sequential) and not getattr(model, "_is_graph_network", False):
        raise ValueError("prune_low_magnitude: TFMOT prunes Sequential and functional tf_keras models only; "
                         "subclassed models prune natively in Keras 3 (kerasinit.pruning.Pruner).")
    m_by_n = _m_by_n(pattern, sparsity_m_by_n)
    block, pooling = check_block(block_size, block_pooling_type, "prune_low_magnitude")
    exclusive(block, "prune_low_magnitude", pattern=m_by_n)
    if policy is not None and policy != "xnnpack":
        raise ValueError(f"prune_low_magnitude: argument `policy` must be None or 'xnnpack' through TFMOT "
                         f"(PruneForLatencyOnXNNPack); received {policy!r}.")
    tfmot_policy = _sp.PruneForLatencyOnXNNPack() if policy == "xnnpack" else None
    if m_by_n is not None and overrides:
        raise ValueError("prune_low_magnitude: an N:M pattern fixes every layer's sparsity: argument `overrides` must be empty.")
    all_layers = list(model.layers)
    names = {layer.name for layer in all_layers}
    if layers is None:
        chosen = [layer for layer in all_layers if _is_prunable(layer)]
    else:
        selectors = [layers] if isinstance(layers, str | re.Pattern | type) or callable(layers) else list(layers)
        unknown = [s for s in selectors if isinstance(s, str) and s not in names]
        if unknown:
            raise ValueError(f"prune_low_magnitude: argument `layers` names unknown layers {unknown}; "
                             f"the model's layers: {sorted(names)}.")
        chosen = [layer for layer in all_layers if any(matches(layer, s) for s in selectors) and _is_prunable(layer)]
    if tfmot_policy is not None:
        dropped = [layer.name for layer in chosen if not tfmot_policy.allow_pruning(layer)]
        if layers is not None and dropped:
            raise ValueError(f"prune_low_magnitude: policy 'xnnpack' prunes 1×1 Conv2D layers only; `layers` chose {dropped}.")
        chosen = [layer for layer in chosen if tfmot_policy.allow_pruning(layer)]
    if not chosen:
        raise ValueError("prune_low_magnitude: nothing to prune: no selected layer is prunable by TFMOT"
                         + (" under policy 'xnnpack' (1×1 Conv2D layers)." if tfmot_policy is not None else "."))
    if block != (1, 1):
        for layer in chosen:
            if isinstance(layer, _sp.PrunableLayer):
                ranks = {_weight_attr(v): len(v.shape) for v in layer.get_prunable_weights()}
            else:
                ranks = {attr: len(getattr(layer, attr).shape) for attr in _plain_weight_names(layer)
                         if getattr(layer, attr, None) is not None}
            if any(r != 2 for r in ranks.values()):
                raise ValueError(f"prune_low_magnitude: TFMOT prunes blocks ({block}) of 2-D weights only; layer "
                                 f"{layer.name!r} ({type(layer).__name__}) has weights of rank {ranks or 'unknown'}. "
                                 "Leave it out with `layers` (the native Pruner takes blocks of any kernel).")
    factors: dict[str, float] = {}
    chosen_names = {layer.name for layer in chosen}
    for name, factor in dict(overrides or {}).items():
        if name not in chosen_names:
            raise ValueError(f"prune_low_magnitude: argument `overrides` names {name!r}, not a pruned layer; "
                             f"pruned layers: {sorted(chosen_names)}.")
        factors[name] = check_real(f"overrides[{name!r}]", factor, owner="prune_low_magnitude", nonnegative=True)
        if not factors[name] * schedule.target < 1.0:
            raise ValueError(f"prune_low_magnitude: overrides[{name!r}] × target sparsity is outside [0, 1).")
    chosen_ids = {id(layer) for layer in chosen}

    def wrap(layer: Any) -> Any:
        clone = layer.__class__.from_config(layer.get_config())
        if id(layer) not in chosen_ids:
            return clone
        own = _scaled(schedule, factors[layer.name]) if layer.name in factors else schedule
        if m_by_n is not None:
            return _sp.prune_low_magnitude(clone, pruning_schedule=KerasinitSchedule(own), sparsity_m_by_n=m_by_n)
        return _sp.prune_low_magnitude(clone, pruning_schedule=KerasinitSchedule(own), block_size=block,
                                       block_pooling_type=pooling)

    with _sp.prune_scope():
        pruned = tf_keras.models.clone_model(model, clone_function=wrap)
    pruned.set_weights(_weights_for(pruned, model))
    if tfmot_policy is not None:
        tfmot_policy.ensure_model_supports_pruning(pruned)  # TFMOT's own check of XNNPack's subgraph rule
    return pruned


def _m_by_n(pattern: str | None, sparsity_m_by_n: Any) -> tuple[int, int] | None:
    """TFMOT's ``(zeros, block)`` from kerasinit's ``"kept:block"`` and/or TFMOT's own spelling."""
    owner = "prune_low_magnitude"
    tfmot_form = None
    if sparsity_m_by_n is not None:
        ok = (isinstance(sparsity_m_by_n, tuple | list) and len(sparsity_m_by_n) == 2
              and all(isinstance(v, int) and not isinstance(v, bool) for v in sparsity_m_by_n))
        if not ok or not 0 < sparsity_m_by_n[0] < sparsity_m_by_n[1]:
            raise ValueError(f"{owner}: argument `sparsity_m_by_n` must be a pair of ints (m, n) with 0 < m < n "
                             f"(m zeros in every n weights, TFMOT's spelling; e.g. (2, 4)); received {sparsity_m_by_n!r}.")
        tfmot_form = (int(sparsity_m_by_n[0]), int(sparsity_m_by_n[1]))
    if pattern is None:
        return tfmot_form
    kept, block = parse_pattern(pattern, owner)
    if kept == block:
        raise ValueError(f"{owner}: argument `pattern` {pattern!r} prunes nothing (N = M); TFMOT needs N < M.")
    native_form = (block - kept, block)
    if tfmot_form is not None and tfmot_form != native_form:
        raise ValueError(f"{owner}: arguments `pattern` ({pattern!r}: {kept} kept of {block}) and `sparsity_m_by_n` "
                         f"({sparsity_m_by_n!r}: {tfmot_form[0]} zeros of {tfmot_form[1]}) disagree; "
                         f"pattern={pattern!r} is sparsity_m_by_n={native_form}.")
    return native_form


def _weights_for(pruned: Any, original: Any) -> list[np.ndarray]:
    """The original weights in the pruned model's order (masks all ones, step -1)."""
    values = []
    for new, old in zip(pruned.layers, original.layers, strict=True):
        if isinstance(new, _wrapper.PruneLowMagnitude):
            old_values = iter(old.get_weights())
            wrapped = {id(v) for v in new.layer.weights}
            for v in new.weights:
                values.append(next(old_values) if id(v) in wrapped else v.numpy())
        else:
            values.extend(old.get_weights())
    return values


def callbacks() -> list[Any]:
    """The callbacks a TFMOT-pruned model trains with (``UpdatePruningStep``)."""
    return [_sp.UpdatePruningStep()]


def _wrappers(model: Any) -> list[Any]:
    return [layer for layer in model.submodules if isinstance(layer, _wrapper.PruneLowMagnitude)]


def _weight_attr(variable: Any) -> str:
    return variable.name.split("/")[-1].split(":")[0]


def get_masks(model: Any) -> dict[str, np.ndarray]:
    """TFMOT's masks as uint8 arrays, keyed ``"layer/weight"`` (as ``Pruner.get_masks``)."""
    return {f"{w.layer.name}/{_weight_attr(weight)}": mask.numpy().astype("uint8")
            for w in _wrappers(model) for weight, mask, _ in w.pruning_vars}


def sparsity_report(model: Any) -> Any:
    """Like :func:`kerasinit.pruning.sparsity_report` for a tf_keras model, wrapped or stripped.

    Wrapped layers count the weights the model computes with (``weight·mask``).
    """
    import pandas as pd

    rows = []
    wrapped = set()
    for w in _wrappers(model):
        wrapped.add(id(w.layer))
        for weight, mask, _ in w.pruning_vars:
            rows.append(_row(w.layer.name, _weight_attr(weight), weight.numpy() * mask.numpy(), mask.numpy() != 0))
    for layer in model.submodules:
        if id(layer) in wrapped or isinstance(layer, _wrapper.PruneLowMagnitude | tf_keras.Model):
            continue
        if isinstance(layer, tf_keras.layers.Layer):
            for attr in _plain_weight_names(layer):
                if isinstance(getattr(layer, attr, None), tf.Variable):
                    rows.append(_row(layer.name, attr, getattr(layer, attr).numpy(), None))
    if not rows:
        raise ValueError("sparsity_report: argument `model` has no prunable weights.")
    size = sum(r["size"] for r in rows)
    nonzeros = sum(r["nonzeros"] for r in rows)
    rows.append({"layer": "total", "weight": "", "shape": (), "size": size, "nonzeros": nonzeros,
                 "sparsity": 1.0 - nonzeros / size, "collapsed": any(r["collapsed"] for r in rows),
                 "unmasked_zeros": sum(r["unmasked_zeros"] for r in rows), "masked": all(r["masked"] for r in rows)})
    return pd.DataFrame(rows, columns=["layer", "weight", "shape", "size", "nonzeros", "sparsity", "collapsed",
                                       "unmasked_zeros", "masked"])


def _row(layer: str, attr: str, values: np.ndarray, kept: np.ndarray | None) -> dict[str, Any]:
    """One report row; ``kept``: the TFMOT mask (True = kept) of a wrapped weight, None for a plain one."""
    nonzeros = int(np.count_nonzero(values))
    zeros = values == 0
    unmasked = int(np.count_nonzero(zeros if kept is None else zeros & kept))
    return {"layer": layer, "weight": attr, "shape": tuple(values.shape), "size": values.size,
            "nonzeros": nonzeros, "sparsity": 1.0 - nonzeros / values.size, "collapsed": bool(values.size) and nonzeros == 0,
            "unmasked_zeros": unmasked, "masked": kept is not None and unmasked == 0}


def strip(model: Any) -> Any:
    """TFMOT's ``strip_pruning``: a plain tf_keras model with the masked weights baked in."""
    for w in _wrappers(model):
        w.pruning_obj.weight_mask_op()  # TFMOT strips the stored weights: bake the masks in first
    return _sp.strip_pruning(model)


def load_model(path: str, **kwargs: Any) -> Any:
    """Load a TFMOT-pruned tf_keras model (``.keras``, ``.h5`` or SavedModel) saved with this bridge."""
    from kerasinit import tf_keras_custom_objects

    custom = {**tf_keras_custom_objects(), KerasinitSchedule.__name__: KerasinitSchedule,
              **kwargs.pop("custom_objects", {})}
    with _sp.prune_scope():
        return tf_keras.models.load_model(path, custom_objects=custom, **kwargs)


__all__ = ["KerasinitSchedule", "callbacks", "get_masks", "load_model", "prune_low_magnitude", "sparsity_report",
           "strip", "to_tfmot_schedule"]
