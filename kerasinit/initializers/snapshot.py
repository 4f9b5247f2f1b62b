"""Start a layer from saved values: transfer learning and lottery-ticket rewinding.

``FromArray(values)`` returns exactly ``values`` (cast to the requested dtype). Its config holds
only the array's shape, dtype and SHA-256 fingerprint, never the numbers: a model that uses it
stores the values where Keras stores every weight, in the ``.keras`` file's weights archive
(``model.weights.h5``), and ``keras.models.load_model`` restores them from there.

How reloading works: while ``load_model`` rebuilds the model, the restored ``FromArray`` is a
*placeholder* (shape and fingerprint, no values) that hands Keras zeros of the right shape, which
the saved weights then overwrite. Called anywhere else without values (e.g. after
``model_from_json`` with no weights to load), it warns that the layer starts at zeros until
weights are loaded. ``verify(values)`` checks that an array matches the recorded fingerprint.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import keras
import numpy as np
from keras import ops

from kerasinit._arrays import to_numpy
from kerasinit._validation import check_float_dtype, check_shape
from kerasinit.initializers.base import Description, KerasinitInitializer
from kerasinit.initializers.registry import register


def _fingerprint(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()


def _inside_keras_load() -> bool:
    """True while ``keras.models.load_model`` rebuilds a model (its object-sharing scope is open)."""
    from keras.src.backend.common import global_state

    return global_state.get_global_attribute("shared_objects/id_to_obj_map") is not None


@register("snapshot", "from_array")
class FromArray(KerasinitInitializer, keras.initializers.Initializer):
    """Exactly ``values`` (a NumPy array, tensor or Keras variable), cast to the requested dtype.

    ``FromArray(layer.kernel)`` snapshots a weight (a copy is taken at construction); the shape
    asked for must equal the array's. Config: ``shape``, ``dtype``, ``sha256`` (the values live in
    the model's weights file, see the module docstring).
    """

    formula = "W = values (a fixed array)"
    reference = "transfer learning; Frankle & Carbin 2019 (rewinding)"
    example_shape = (8, 8)

    def __init__(
        self, values: Any = None, shape: Any = None, dtype: str | None = None, sha256: str | None = None
    ) -> None:
        if values is None:
            if shape is None:
                raise ValueError("FromArray: argument `values` is required (an array of the weight's values).")
            self.values = None
            self.shape = check_shape(shape, owner="FromArray")
            self.dtype = check_float_dtype(dtype or "float32", owner="FromArray")
            if sha256 is not None and not isinstance(sha256, str):
                raise TypeError(f"FromArray: argument `sha256` must be a hex string; received {sha256!r}.")
            self.sha256 = sha256
            return
        if not (isinstance(values, np.ndarray | list | tuple) or hasattr(values, "shape")):
            raise TypeError(f"FromArray: argument `values` must be an array, tensor or variable; received {values!r}.")
        try:
            arr = np.array(values if isinstance(values, np.ndarray | list | tuple) else to_numpy(values))
        except (ValueError, TypeError) as exc:  # ragged lists and the like
            raise TypeError(f"FromArray: argument `values` is not a rectangular numeric array: {exc}") from exc
        if arr.dtype.kind not in "iuf" or arr.ndim == 0:
            raise TypeError(f"FromArray: argument `values` must be a numeric array with at least one dimension; received {values!r}.")
        if not np.all(np.isfinite(arr)):
            raise ValueError("FromArray: argument `values` contains NaN or infinite entries.")
        self.values = arr
        self.shape = tuple(arr.shape)
        self.dtype = check_float_dtype(str(arr.dtype) if arr.dtype.kind == "f" else "float32", owner="FromArray")
        self.sha256 = _fingerprint(arr)
        if sha256 is not None and sha256 != self.sha256:
            raise ValueError("FromArray: argument `sha256` does not match the fingerprint of `values`.")

    @classmethod
    def example(cls) -> FromArray:
        return cls(np.linspace(-1.0, 1.0, 64, dtype="float32").reshape(cls.example_shape))

    @property
    def is_placeholder(self) -> bool:
        """True when restored from a config: the values are in the model's weights, not here."""
        return self.values is None

    def verify(self, values: Any) -> bool:
        """Whether ``values`` (e.g. a reloaded layer's kernel) match the recorded fingerprint."""
        arr = to_numpy(values).astype(self.dtype)
        return self.sha256 is not None and arr.shape == self.shape and _fingerprint(arr) == self.sha256

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        shape = check_shape(shape, owner="FromArray")
        dtype = check_float_dtype(dtype, owner="FromArray")
        if shape != self.shape:
            raise ValueError(f"FromArray: argument `shape`={shape} must equal the shape of the values, {self.shape}.")
        if self.values is None:
            if not _inside_keras_load():
                warnings.warn(
                    f"FromArray placeholder (shape {self.shape}, sha256 {str(self.sha256)[:12]}…) has no values: the "
                    "weight starts at zeros until its saved weights are loaded (load_model / load_weights).",
                    UserWarning,
                    stacklevel=2,
                )
            return ops.zeros(shape, dtype=dtype)
        return ops.convert_to_tensor(self.values, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype, "sha256": self.sha256}

    def describe(self, shape: Any) -> Description:
        shape = check_shape(shape, owner="FromArray")
        if self.values is None:
            raise ValueError("FromArray: a placeholder restored from a config has no values to describe.")
        if shape != self.shape:
            raise ValueError(f"FromArray: argument `shape`={shape} must equal the shape of the values, {self.shape}.")
        v = self.values.astype("float64")
        return self._record(shape, family="fixed", distribution="fixed array", mean=float(v.mean()),
                            std=float(v.std()), bounds=(float(v.min()), float(v.max())),
                            params={"sha256": self.sha256})
