"""Where a weight's mask is installed, so that ``model.save``/``load_model`` keep it.

Keras rebuilds a saved model from its config, then loads the weights archive into what it
rebuilt. A mask survives only if the rebuilt model has a :class:`MaskConstraint` at the same
place, so the mask goes where the config records the weight's constraint:

1. the layer's own ``*_constraint`` attribute, for layers the model config rebuilds (the layers
   of Sequential/functional models, nested ones included; an RNN's cell, rebuilt from the RNN's
   arguments; a wrapper's inner layers);
2. the parent's constraint argument, for sublayers a config-rebuilt layer builds itself from
   that argument (``MultiHeadAttention`` hands its ``kernel_constraint`` to its four
   ``EinsumDense``): one shared constraint keyed by weight path (``"query/kernel"``);
3. otherwise (sublayers of subclassed models and of custom layers, such as KerasHub's
   ``TransformerEncoder``, that build them without a constraint from their config) the mask is
   an attribute of the sublayer, saved in the weights archive at the sublayer's path, but
   ``keras.models.load_model`` rebuilds the sublayer without it. :func:`load_model` (or
   :func:`restore_masks` after ``keras.models.load_model``/for ``load_weights``) attaches a mask
   to each such weight, lets Keras load the archive again so that every mask saved at that path
   comes back, and drops the masks the archive did not hold. :func:`attach_masks` warns at
   pruning time which weights need it.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterable

import keras

from kerasinit.layers import iter_layers
from kerasinit.pruning.constraint import UNKNOWN_MASKS, Mask, MaskConstraint
from kerasinit.pruning.selection import PrunableWeight, select


def _is_graph_model(layer: keras.layers.Layer) -> bool:
    """A plain Sequential or functional model: Keras rebuilds each of its layers from its own config.

    Subclasses (a KerasHub backbone is a ``Functional`` subclass) rebuild their graph in ``__init__``.
    """
    from keras.src.models.functional import Functional

    return type(layer) in (keras.Sequential, Functional)


def config_rebuilt_layers(model: keras.layers.Layer) -> set[int]:
    """ids of the layers whose own config is part of ``model``'s saved config."""
    out: set[int] = set()

    def visit(layer: keras.layers.Layer) -> None:
        out.add(id(layer))
        children: list[keras.layers.Layer] = []
        if _is_graph_model(layer):
            children += list(layer.layers)
        if isinstance(layer, keras.layers.RNN) and isinstance(getattr(layer, "cell", None), keras.layers.Layer):
            children.append(layer.cell)
        if isinstance(layer, keras.layers.Wrapper):
            children += [getattr(layer, a, None) for a in ("layer", "forward_layer", "backward_layer")]
        for child in children:
            if isinstance(child, keras.layers.Layer) and id(child) not in out:
                visit(child)

    if _is_graph_model(model) or not isinstance(model, keras.Model):
        visit(model)  # a lone layer's config is whatever saves it; a subclassed model's rebuilds nothing
    return out


def parents(model: keras.layers.Layer) -> dict[int, keras.layers.Layer]:
    """``id(sublayer) -> the layer that holds it`` for every layer inside ``model``."""
    out: dict[int, keras.layers.Layer] = {}
    for layer in [model, *iter_layers(model)]:
        for child in layer._flatten_layers(include_self=False, recursive=False):
            out.setdefault(id(child), layer)
    return out


def _config_keys(layer: keras.layers.Layer) -> set[str]:
    """The constructor arguments of ``layer``'s class: what Keras's config convention round-trips.

    (Read from the signature, not ``get_config()``, which imports TensorFlow whenever it is installed.)
    """
    try:
        return set(inspect.signature(type(layer).__init__).parameters)
    except (TypeError, ValueError):
        return set()


def _parent_slot(weight: PrunableWeight, parent: keras.layers.Layer | None, rebuilt: set[int]) -> str | None:
    """The parent attribute that hands ``weight``'s constraint to its layer and is in the parent's config."""
    attr = weight.constraint_attr
    if parent is None or attr is None or id(parent) not in rebuilt or not hasattr(weight.layer, attr):
        return None
    held = getattr(weight.layer, attr)
    for slot in (attr, "_" + attr):
        given = getattr(parent, slot, False)
        if given is held or (isinstance(given, MaskConstraint) and given.shared and given.inner is held):
            return slot if attr in _config_keys(parent) else None
    return None


def _key(variable: keras.Variable, parent: keras.layers.Layer, layer: keras.layers.Layer) -> str:
    prefix = getattr(parent, "path", parent.name) + "/"
    path = variable.path
    return path[len(prefix):] if path.startswith(prefix) else f"{layer.name}/{variable.name}"


def attach_mask(weight: PrunableWeight, rebuilt: set[int], parent: keras.layers.Layer | None) -> tuple[Mask, bool]:
    """The weight's mask, installed if absent; and whether ``load_model`` will restore it."""
    var, layer, attr = weight.variable, weight.layer, weight.constraint_attr
    if isinstance(var.constraint, MaskConstraint) and var.constraint.for_variable(var) is not None:
        return var.constraint.for_variable(var), True  # a reloaded model already has its masks
    held = getattr(layer, attr, None) if attr else None
    if isinstance(held, MaskConstraint) and held.for_variable(var) is not None:
        var.constraint = held  # config-restored layer: the mask object exists, link the variable
        return held.for_variable(var), True
    slot = None if id(layer) in rebuilt else _parent_slot(weight, parent, rebuilt)
    if slot is not None:  # a sublayer built from its parent's constraint argument: share one constraint there
        shared = getattr(parent, slot)
        if not (isinstance(shared, MaskConstraint) and shared.shared):
            shared = MaskConstraint(masks={}, inner=shared)
            setattr(parent, slot, shared)
        mask = shared.add(_key(var, parent, layer), var.shape)
        setattr(layer, attr, shared)
        var.constraint = shared
        return mask, True
    constraint = MaskConstraint(tuple(var.shape), inner=var.constraint)
    var.constraint = constraint
    if attr is not None and hasattr(layer, attr):
        setattr(layer, attr, constraint)  # part of the layer config (saved with the model when that config is)
    else:  # custom layer: keep it walkable for weight checkpoints
        masks = dict(getattr(layer, "kerasinit_prune_masks", {}))
        masks[weight.attr] = constraint
        layer.kerasinit_prune_masks = masks
    kept = id(layer) in rebuilt and attr is not None and hasattr(layer, attr) and attr in _config_keys(layer)
    return constraint.masks[""], kept


def attach_masks(model: keras.layers.Layer, weights: Iterable[PrunableWeight]) -> dict[str, Mask]:
    """Install a mask on every weight (see the module docstring); warn for masks ``load_model`` loses."""
    rebuilt, parent_of = config_rebuilt_layers(model), parents(model)
    masks: dict[str, Mask] = {}
    lost: list[str] = []
    for w in weights:
        masks[w.name], kept = attach_mask(w, rebuilt, parent_of.get(id(w.layer)))
        if not kept:
            lost.append(w.name)
    if lost:
        warnings.warn(
            f"Pruner: the masks of {lost} are saved with the model, but keras.models.load_model alone cannot restore "
            "them: their layers are rebuilt by code (a subclassed model or a custom layer) that does not take a "
            "constraint from its config. Load with kerasinit.pruning.load_model(path) (or call "
            "kerasinit.pruning.restore_masks(model, path) after keras.models.load_model / load_weights).",
            UserWarning,
            stacklevel=3,
        )
    return masks


def masked_weights(model: keras.layers.Layer) -> list[tuple[PrunableWeight, Mask]]:
    """Every (weight, mask) pair already installed in ``model``."""
    try:
        weights = select(model)
    except ValueError:
        return []
    out = []
    for w in weights:
        constraint = w.variable.constraint
        if isinstance(constraint, MaskConstraint) and constraint.for_variable(w.variable) is not None:
            out.append((w, constraint.for_variable(w.variable)))
    return out


def restore_masks(model: keras.layers.Layer, path: str) -> list[str]:
    """Bring back from the archive at ``path`` the masks that loading could not rebuild; return their names.

    ``path`` is the ``.keras`` file (or ``.weights.h5``) the model was loaded from. Every prunable
    weight without a mask gets one where the pruned model kept it (see the module docstring); Keras
    then loads the archive into the model again (same values), which fills every mask saved at that
    place; the masks it held nothing for are removed again.
    """
    candidates = [w for w in select(model) if not isinstance(w.variable.constraint, MaskConstraint)]
    if not candidates:
        return []
    before = {id(w.variable): (w.variable.constraint, getattr(w.layer, w.constraint_attr or "", None)) for w in candidates}
    attach_masks_quietly(model, candidates)
    model.load_weights(path)
    restored = []
    for w in candidates:
        constraint = w.variable.constraint
        if isinstance(constraint, MaskConstraint) and constraint.restored:
            restored.append(w.name)
            continue
        inner, held = before[id(w.variable)]  # nothing saved for this weight: as it was
        w.variable.constraint = inner
        if w.constraint_attr and hasattr(w.layer, w.constraint_attr):
            setattr(w.layer, w.constraint_attr, held)
        extra = getattr(w.layer, "kerasinit_prune_masks", None)
        if isinstance(extra, dict):
            w.layer.kerasinit_prune_masks = {k: v for k, v in extra.items() if k != w.attr}
    if getattr(model, "train_function", None) is not None:
        model.make_train_function(force=True)
    return restored


def attach_masks_quietly(model: keras.layers.Layer, weights: Iterable[PrunableWeight]) -> dict[str, Mask]:
    """:func:`attach_masks` without its warning (used where the masks are being restored)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Pruner: the masks of")
        return attach_masks(model, weights)


def unknown_masks(model: keras.layers.Layer) -> list[str]:
    """The masked weights of ``model`` whose masks hold no saved values (see ``MaskConstraint.known``)."""
    return [w.name for w, _ in masked_weights(model) if not w.variable.constraint.known]


def load_model(path: str, **kwargs: object) -> keras.Model:
    """``keras.models.load_model(path, **kwargs)`` with every saved mask restored (see :func:`restore_masks`).

    A file whose masks cannot be restored (a legacy ``.h5`` model keeps none) is refused: loading it
    would hand back all-ones masks under pruned weights that regrow in training.
    """
    model = keras.models.load_model(path, **kwargs)
    restore_masks(model, path)
    lost = unknown_masks(model)
    if lost:
        raise ValueError(f"pruning.load_model: {path!r} holds no values for the masks of {lost[:5]}"
                         f"{' and more' if len(lost) > 5 else ''}; " + UNKNOWN_MASKS.format(what="these weights"))
    return model
