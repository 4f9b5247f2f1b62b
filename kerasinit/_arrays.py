"""``to_numpy``: a NumPy copy of a tensor or Keras variable, without NumPy 2's ``__array__`` warning.

``keras.ops.convert_to_numpy`` ends in ``np.array(x)``, and the ``__array__`` of a Keras variable,
a TensorFlow variable or a torch tensor takes no ``copy`` keyword: NumPy 2 emits a
DeprecationWarning per call. Asking the backend value for its own NumPy copy avoids it.

On PyTorch, ``Tensor.numpy()`` of a CPU tensor shares the tensor's storage, and Keras and its
optimizers write variables in place (``copy_``, ``_foreach_*_``): the array would follow every
later update, so it is copied here.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np


def to_numpy(x: Any) -> np.ndarray:
    """``x`` (backend tensor, Keras variable or array-like) as a NumPy array that no later update changes."""
    value = x.value if isinstance(x, keras.Variable) else x
    if hasattr(value, "detach"):  # torch: .cpu() of a CPU tensor and .numpy() share its storage
        source = value.detach()
        value = source.cpu()
        if str(value.dtype) == "torch.bfloat16":
            return value.float().numpy()  # a new tensor already
        array = value.numpy()
        return array.copy() if value.data_ptr() == source.data_ptr() else array
    if hasattr(value, "numpy"):  # TensorFlow tensors and variables
        return np.asarray(value.numpy())
    return np.asarray(value)  # JAX arrays, NumPy, lists
