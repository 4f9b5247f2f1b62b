"""The mask of one pruned weight: a Keras constraint that is saved with the model.

``MaskConstraint`` holds a boolean ``keras.Variable`` (1 byte per weight; TFMOT keeps a float32
copy) and selects the weight where it is true, 0 elsewhere (one select kernel per step, see
``_where``). Installed as the weight's ``constraint``, it runs inside the compiled train step
right after every optimizer update (Keras applies constraints there), so pruned weights are
exactly 0 after every step whatever the optimizer's momentum or Adam moments hold. Installed
also as the layer's ``*_constraint`` attribute, it is part of the layer config and a
``KerasSaveable``: ``model.save``/``load_model`` and weight checkpoints store and restore the mask
values (under ``.../kernel_constraint`` in the weights archive) with no wrapper layers.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras.src.saving.keras_saveable import KerasSaveable

from kerasinit.pruning._where import keep_where


@keras.saving.register_keras_serializable(package="kerasinit")
class MaskConstraint(keras.constraints.Constraint, KerasSaveable):
    """``w -> where(mask, inner(w), 0)``; ``inner`` is the constraint the weight had before pruning."""

    def __init__(self, shape: Any, inner: Any = None) -> None:
        self.shape = tuple(int(d) for d in shape)
        self.inner = keras.constraints.get(inner)
        self.mask = keras.Variable(np.ones(self.shape, bool), dtype="bool", trainable=False, name="prune_mask")

    def _obj_type(self) -> str:
        return "Loss"  # a Keras saving category with no attributes to skip; only the mask is stored

    def __call__(self, w: Any) -> Any:
        if self.inner is not None:
            w = self.inner(w)
        return keep_where(self.mask, w)  # Keras passes the variable itself

    def numpy(self) -> np.ndarray:
        """The mask as a uint8 NumPy array (1 = kept)."""
        return np.asarray(keras.ops.convert_to_numpy(self.mask)).astype("uint8")

    def assign(self, mask: np.ndarray) -> None:
        mask = np.asarray(mask).astype(bool)
        if mask.shape != self.shape:
            raise ValueError(f"MaskConstraint: mask shape {mask.shape} does not match the weight shape {self.shape}.")
        self.mask.assign(mask)

    def get_config(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "inner": keras.constraints.serialize(self.inner) if self.inner is not None else None}

    def save_own_variables(self, store: Any) -> None:
        store["0"] = self.numpy()  # uint8 on disk: every weights format stores it

    def load_own_variables(self, store: Any) -> None:
        self.assign(np.asarray(store["0"]))
