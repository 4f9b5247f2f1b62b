"""The masks of pruned weights: a Keras constraint that is saved with the model.

A :class:`Mask` is one weight's boolean ``keras.Variable`` (1 byte per weight; TFMOT keeps a
float32 copy). :class:`MaskConstraint` holds the mask of one weight, or the masks of several
weights that share one constraint object, and selects each weight where its mask is true, 0
elsewhere (one select kernel per step, see ``_where``).

Installed as the weight's ``constraint``, it runs inside the compiled train step right after
every optimizer update (Keras applies constraints there), so pruned weights are exactly 0 after
every step whatever the optimizer's momentum or Adam moments hold. Installed also where the
model's config keeps the weight's constraint, it is a ``KerasSaveable`` in that config:
``model.save``/``load_model`` and weight checkpoints store and restore the mask values with no
wrapper layers. That place is the layer's own ``*_constraint`` attribute, or, for sublayers a
layer builds itself (``MultiHeadAttention``'s query/key/value/output ``EinsumDense``), the
parent's constraint argument, which the parent hands to every sublayer it builds: one shared
constraint then keeps the masks of all of them, keyed by each weight's path below the parent
(``"query/kernel"``).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
from keras.src.saving.keras_saveable import KerasSaveable

from kerasinit._arrays import to_numpy
from kerasinit.backend.select import is_traced, keep_where, keep_where_in_place


class Mask:
    """One weight's mask: a boolean, non-trainable ``keras.Variable`` of the weight's shape."""

    def __init__(self, shape: Any) -> None:
        self.shape = tuple(int(d) for d in shape)
        self.variable = keras.Variable(np.ones(self.shape, bool), dtype="bool", trainable=False, name="prune_mask")
        #: JAX: a step was traced with this mask as a constant (not bound to its state); a new mask
        #: value must then retrace that step (``Pruner`` does), else it would keep the old one
        self.baked = False
        #: bumped by every ``assign`` (a load included): tells a pruner whether its count is current
        self.version = 0
        #: a callable ``(w, mask) -> (new mask, masked w)`` run inside the train step (``incremental.WeightPlan``)
        self.updater: Any = None

    def numpy(self) -> np.ndarray:
        """The mask as a uint8 NumPy array (1 = kept)."""
        return to_numpy(self.variable).astype("uint8")

    def assign(self, mask: np.ndarray) -> None:
        mask = np.asarray(mask)
        mask = mask.view(bool) if mask.dtype == np.uint8 and mask.flags.c_contiguous else mask.astype(bool)
        if mask.shape != self.shape:
            raise ValueError(f"MaskConstraint: mask shape {mask.shape} does not match the weight shape {self.shape}.")
        self.variable.assign(mask)
        self.version += 1

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


def path_key(path: str, key: str) -> bool:
    """Whether the variable path ``path`` names the weight ``key`` (a path suffix)."""
    return path == key or path.endswith("/" + key)


#: Why a mask constraint refuses to be saved in Keras's legacy HDF5 model format.
LEGACY_H5 = ("cannot save pruning masks in the legacy HDF5 format (.h5): it stores the model's config and its "
             "layers' weights only, so the masks would load as all ones and the pruned weights would regrow in "
             "training. Save the pruned model as .keras (model.save('model.keras')), or bake the zeros in and drop "
             "the masks first (kerasinit.pruning.strip(model).save('model.h5')).")
#: What a mask rebuilt from a config alone says when it is used or reported.
UNKNOWN_MASKS = ("the pruning mask of {what} holds no saved values: the model was rebuilt from its config alone "
                 "(a legacy .h5 file keeps no masks; so does keras.models.clone_model), so the mask is all ones and "
                 "pruned weights will regrow. Load the .keras file the pruned model was saved to with "
                 "kerasinit.pruning.load_model, or prune again.")


def _saving_legacy_h5() -> bool:
    """Whether Keras's legacy HDF5 model saver is on the call stack (it asks for every config)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "save_model_to_hdf5" and "legacy" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


@keras.saving.register_keras_serializable(package="kerasinit")
class MaskConstraint(keras.constraints.Constraint, KerasSaveable):
    """``w -> where(mask, inner(w), 0)``; ``inner`` is the constraint the weight had before pruning.

    Args:
        shape: the shape of the one weight this constraint masks; or
        masks: ``{key: shape}`` for a constraint shared by several weights (each weight is
            matched by the end of its variable path, e.g. ``"query/kernel"``); a weight that
            matches no key passes through ``inner`` only.
        inner: the weight's previous constraint (config or instance), applied first.
    """

    def __init__(self, shape: Any = None, inner: Any = None, masks: Mapping[str, Any] | None = None) -> None:
        if (shape is None) == (masks is None):
            raise ValueError("MaskConstraint: give exactly one of arguments `shape` (one weight) or `masks` ({key: shape}).")
        self.inner = keras.constraints.get(inner)
        self.shared = masks is not None
        self.masks: dict[str, Mask] = {}
        if shape is not None:
            self.masks[""] = Mask(shape)
        for key, key_shape in dict(masks or {}).items():
            self.add(key, key_shape)
        self._by_variable: dict[int, Mask | None] = {}
        self._warned = False
        #: False when the masks came from a config alone (``from_config``) and no saved values were loaded
        #: into them since (a legacy ``.h5`` file, ``clone_model``, a load that found none): see :attr:`known`
        self.restored = True

    def add(self, key: str, shape: Any) -> Mask:
        """A shared constraint's mask for the weight ``key`` (created if absent)."""
        if not self.shared:
            raise ValueError("MaskConstraint.add: this constraint masks one weight; build it with `masks` to share it.")
        if key not in self.masks:
            self.masks[key] = Mask(shape)
            self._by_variable = {}
        return self.masks[key]

    def for_variable(self, variable: Any) -> Mask | None:
        """The mask of ``variable`` (None if this shared constraint has none for it)."""
        if not self.shared:
            return self.masks[""]
        cached = self._by_variable.get(id(variable), False)
        if cached is not False:
            return cached
        path = getattr(variable, "path", "")
        found = [self.masks[k] for k in self.masks if path_key(path, k)]
        mask = found[0] if len(found) == 1 and tuple(variable.shape) == found[0].shape else None
        self._by_variable[id(variable)] = mask
        return mask

    # one-weight conveniences (the usual case)
    @property
    def shape(self) -> tuple[int, ...]:
        return self._single().shape

    @property
    def mask(self) -> Any:
        """The boolean mask variable of a one-weight constraint."""
        return self._single().variable

    def numpy(self) -> np.ndarray:
        return self._single().numpy()

    def assign(self, mask: np.ndarray) -> None:
        self._single().assign(mask)

    def _single(self) -> Mask:
        if self.shared:
            raise ValueError(f"MaskConstraint: this constraint is shared by weights {sorted(self.masks)}; use for_variable().")
        return self.masks[""]

    @property
    def known(self) -> bool:
        """Whether the masks hold real values: built by a pruner, loaded from a save, or assigned since."""
        return self.restored or any(m.version > 0 for m in self.masks.values())

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MaskConstraint:
        """A constraint rebuilt from its config: all-ones masks until saved values are loaded (:attr:`known`)."""
        constraint = cls(**config)
        constraint.restored = False
        return constraint

    def _obj_type(self) -> str:
        return "Loss"  # a Keras saving category with no attributes to skip; only the masks are stored

    def __call__(self, w: Any) -> Any:
        mask = self.for_variable(w)  # Keras passes the variable itself
        if not self.known and not self._warned:  # traced once per step function: a warning, not a per-step cost
            self._warned = True
            warnings.warn(UNKNOWN_MASKS.format(what=f"the weight {getattr(w, 'path', '?')!r}"), UserWarning, stacklevel=2)
        if self.inner is not None:
            w = self.inner(w)
        if mask is None:
            return w
        value = mask.variable.value
        if keras.backend.backend() == "jax" and not is_traced(value):
            mask.baked = True
        if mask.updater is not None:  # frequent schedule updates, computed in the step (see ``incremental``)
            value, w = mask.updater(w, value)
            mask.variable.assign(value)
            return w
        if self.inner is None:  # ``w`` is the variable Keras assigns the result to: PyTorch masks it in place
            return keep_where_in_place(value, w)
        return keep_where(value, w)

    def get_config(self) -> dict[str, Any]:
        if _saving_legacy_h5():
            raise ValueError(LEGACY_H5)
        inner = keras.constraints.serialize(self.inner) if self.inner is not None else None
        if self.shared:
            return {"masks": {k: list(m.shape) for k, m in self.masks.items()}, "inner": inner}
        return {"shape": list(self.shape), "inner": inner}

    def save_own_variables(self, store: Any) -> None:
        for i, key in enumerate(sorted(self.masks)):
            store[str(i)] = self.masks[key].numpy()  # uint8 on disk: every weights format stores it

    def load_own_variables(self, store: Any) -> None:
        keys = sorted(self.masks)
        self.restored = len(store.keys()) > 0
        if not self.restored:  # nothing saved here (a mask attached to look for one): keep it as it is
            return
        if len(store.keys()) != len(keys):
            raise ValueError(f"MaskConstraint: the checkpoint holds {len(store.keys())} masks, this constraint {len(keys)} ({keys}).")
        for i, key in enumerate(keys):
            self.masks[key].assign(np.asarray(store[str(i)]))
