"""``strip(model)``: a plain Keras model with the pruned zeros baked in; ``shrink(model)``: without dead channels.

Stripping hands every place holding a mask constraint back its inner constraint (the weight, its
layer's attribute, the parent attribute a shared constraint sits in) after writing the masked
values; the result loads with plain Keras. Shrinking is :mod:`kerasinit.pruning.shrink`.
"""

from __future__ import annotations

import contextlib
from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit.backend.select import keep_where
from kerasinit.pruning.constraint import MaskConstraint
from kerasinit.pruning.persistence import masked_weights, parents
from kerasinit.pruning.shrink import check_shrinkable, shrink_unmasked


def _unmask(model: keras.layers.Layer) -> list[tuple[Any, Any, MaskConstraint]]:
    """Bake masks into the weights and put the original constraints back; return what to restore.

    Every place holding a mask constraint goes back to that constraint's ``inner``: the weight,
    its layer's attribute, and the parent attribute a shared constraint sits in.
    """
    parent_of = parents(model)
    undo: list[tuple[Any, Any, MaskConstraint]] = []
    for w, mask in masked_weights(model):
        constraint = w.variable.constraint
        w.variable.assign(keep_where(mask.variable, w.variable))
        undo.append((w.variable, "constraint", constraint))
        w.variable.constraint = constraint.inner
        holders = [w.layer, parent_of.get(id(w.layer))]
        for holder in holders:
            for attr in (w.constraint_attr, "_" + (w.constraint_attr or "")):
                if attr and holder is not None and getattr(holder, attr, None) is constraint:
                    undo.append((holder, attr, constraint))
                    setattr(holder, attr, constraint.inner)
        held = getattr(w.layer, "kerasinit_prune_masks", None)
        if isinstance(held, dict) and any(v is constraint for v in held.values()):
            undo.append((w.layer, "kerasinit_prune_masks", held))
            w.layer.kerasinit_prune_masks = {k: v for k, v in held.items() if v is not constraint}
    return undo


def _restore(undo: list[tuple[Any, Any, Any]]) -> None:
    for obj, attr, value in reversed(undo):
        setattr(obj, attr, value)


def _zeros_like_build(build_config: dict[str, Any]) -> Any:
    """A zero batch (batch size 1) of the input shape(s) a model was built with."""

    def zeros(shape: Any) -> Any:
        return np.zeros(tuple(1 if d is None else d for d in shape), "float32")

    if "input_shape" in build_config:
        return keras.tree.map_shape_structure(zeros, build_config["input_shape"])
    shapes = build_config.get("shapes_dict") or {}
    if len(shapes) == 1:
        return keras.tree.map_shape_structure(zeros, next(iter(shapes.values())))
    raise ValueError(f"several build inputs {list(shapes)}")


def _built_copy(model: keras.Model) -> keras.Model:
    """``type(model).from_config(model.get_config())``, built like ``model`` (subclassed ones included).

    A subclassed model comes back from its config without weights: it is called on a zero batch
    (batch size 1) of the input shape ``model`` was built with, else built as Keras's loader
    builds it (``build_from_config(model.get_build_config())``).
    """
    cls = type(model).__name__
    advice = (f"strip the model in place with strip(model, copy=False) (the masks are removed from `model` itself), "
              f"or give {cls} a get_config() returning its constructor arguments (and a build() if it is not built "
              f"by calling it) so that {cls}.from_config(model.get_config()) rebuilds it")
    try:
        clone = type(model).from_config(model.get_config())
    except (NotImplementedError, TypeError, ValueError) as exc:
        raise ValueError(f"strip: cannot copy model {model.name!r}: {cls}.from_config(model.get_config()) failed "
                         f"({type(exc).__name__}: {exc}). To strip it, {advice}.") from exc
    if len(clone.weights) != len(model.weights):
        build_config = model.get_build_config() or {}
        for build in (lambda: clone(_zeros_like_build(build_config)), lambda: clone.build_from_config(build_config)):
            if len(clone.weights) == len(model.weights):
                break
            with contextlib.suppress(Exception):  # any failure to build leads to the error below
                build()
    theirs = [tuple(v.shape) for v in clone.weights]
    ours = [tuple(v.shape) for v in model.weights]
    if theirs != ours:
        raise ValueError(f"strip: cannot copy model {model.name!r}: {cls}.from_config(model.get_config()), built with "
                         f"{model.get_build_config()}, has weights of shapes {theirs}, the model {ours}. To strip it, "
                         f"{advice}.")
    return clone


def strip(model: keras.Model, copy: bool = True, shrink: bool = False) -> keras.Model:
    """A plain Keras model with the pruned zeros baked in and no masks (loads without kerasinit).

    ``copy=True`` returns a new model and leaves ``model`` pruned: Sequential and functional
    models are rebuilt from their config; a subclassed model from its config too (its class needs
    a ``get_config`` returning its constructor arguments), then called on a zero batch of the
    input shape it was built with (else built as Keras's loader builds it). When that cannot be done
    a ValueError says what to do; ``copy=False`` strips ``model`` itself (any model).
    ``shrink=True`` (needs ``copy=True``) also removes the dead channels (all-zero kernel
    slices) where the next layer allows it, with identical outputs: see
    :func:`kerasinit.pruning.shrink`.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"strip: argument `model` must be a keras.Model; received {type(model).__name__}.")
    if not isinstance(shrink, (bool, np.bool_)):
        raise TypeError(f"strip: argument `shrink` must be True or False; received {shrink!r}.")
    if shrink and not copy:
        raise ValueError("strip: `shrink=True` builds a new, smaller model and needs `copy=True`; received copy=False.")
    if shrink:
        check_shrinkable(model, "strip")
    undo = _unmask(model)
    if not copy:
        if getattr(model, "train_function", None) is not None:
            model.make_train_function(force=True)
        return model
    try:
        if shrink:
            return shrink_unmasked(model)
        clone = _built_copy(model)
    finally:
        _restore(undo)  # re-install the masks on the original
    clone.set_weights([to_numpy(v) for v in model.weights])
    return clone


def shrink(model: keras.Model) -> keras.Model:
    """A new model without the dead channels (see :mod:`kerasinit.pruning.shrink`); ``model`` is unchanged.

    Sequential and functional models; a model with pruning masks is stripped first (the same as
    ``strip(model, shrink=True)``). The result is a plain Keras model: the same layers and names,
    fewer ``units``/``filters`` where dead channels could be removed with identical outputs.
    Shrinking across residual additions (``Add``) and concatenations is not attempted.
    """
    check_shrinkable(model, "shrink")
    return strip(model, shrink=True) if masked_weights(model) else shrink_unmasked(model)
