"""``to_numpy``: a NumPy copy of a tensor or Keras variable, without NumPy 2's ``__array__`` warning.

``keras.ops.convert_to_numpy`` ends in ``np.array(x)``, and the ``__array__`` of a Keras variable,
a TensorFlow variable or a torch tensor takes no ``copy`` keyword: NumPy 2 emits a
DeprecationWarning per call. Asking the backend value for its own NumPy copy avoids it.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np


def to_numpy(x: Any) -> np.ndarray:
    """``x`` (backend tensor, Keras variable or array-like) as a NumPy array."""
    value = x.value if isinstance(x, keras.Variable) else x
    if hasattr(value, "detach"):  # torch
        value = value.detach().cpu()
        return (value.float() if str(value.dtype) == "torch.bfloat16" else value).numpy()
    if hasattr(value, "numpy"):  # TensorFlow tensors and variables
        return np.asarray(value.numpy())
    return np.asarray(value)  # JAX arrays, NumPy, lists
