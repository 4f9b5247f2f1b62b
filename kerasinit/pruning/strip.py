"""``strip(model)``: a plain Keras model with the pruned zeros baked in; ``shrink(model)``: without dead channels.

Stripping hands every place holding a mask constraint back its inner constraint (the weight, its
layer's attribute, the parent attribute a shared constraint sits in) after writing the masked
values; the result loads with plain Keras. Shrinking is :mod:`kerasinit.pruning.shrink`.
"""

from __future__ import annotations

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


def strip(model: keras.Model, copy: bool = True, shrink: bool = False) -> keras.Model:
    """A plain Keras model with the pruned zeros baked in and no masks (loads without kerasinit).

    ``copy=True`` (Sequential and functional models) returns a new model and leaves ``model``
    pruned; ``copy=False`` strips ``model`` itself (any model, subclassed included).
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
        clone = type(model).from_config(model.get_config())
    except (NotImplementedError, TypeError, ValueError) as exc:
        if shrink:
            raise
        raise ValueError("strip: this model cannot be rebuilt from its config (subclassed?); use strip(model, copy=False).") from exc
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
