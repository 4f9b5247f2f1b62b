"""ZerO (Zhao et al. 2022): deterministic initialization with only zeros, ones and a Hadamard matrix.

For a Dense kernel ``W`` of shape ``(n_in, n_out)`` (Keras layout; the paper writes the transpose):

- ``n_in == n_out``: ``W = I`` (identity);
- ``n_in > n_out``:  ``W = I*`` (partial identity: ``W[i, j] = 1`` if ``i == j``, else 0);
- ``n_in < n_out``:  ``W = c · H_m[:n_in, :n_out]`` with ``H_m`` the 2^m x 2^m Sylvester-Hadamard
  matrix (``H[i, j] = (-1)^popcount(i & j)``), ``m = ceil(log2(n_out))`` and ``c = 2^(-(m-1)/2)``.

A convolution kernel ``(*kernel_size, in_channels, out_channels)`` gets that matrix at its
spatial centre ``k // 2`` and zeros elsewhere (the paper's convolutional variant). No seed: every
call returns the same tensor. The Hadamard part breaks the symmetry that a plain partial identity
would keep when a layer widens.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from kerasinit._validation import check_float_dtype, check_shape
from kerasinit.initializers.base import Description, KerasinitInitializer
from kerasinit.initializers.registry import register


def hadamard(n_rows: int, n_cols: int) -> np.ndarray:
    """The top-left ``n_rows x n_cols`` block of the Sylvester-Hadamard matrix of order 2^m ≥ both."""
    rows = np.arange(n_rows)[:, None]
    cols = np.arange(n_cols)[None, :]
    bits = np.bitwise_and(rows, cols)
    parity = np.zeros_like(bits)
    while bits.any():  # popcount mod 2, bit by bit
        parity ^= bits & 1
        bits = bits >> 1
    return 1.0 - 2.0 * parity.astype("float64")


def zero_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The ZerO matrix for a ``(n_in, n_out)`` kernel (Zhao et al. 2022, Algorithm 1), float64."""
    if n_in >= n_out:
        return np.eye(n_in, n_out)
    m = math.ceil(math.log2(n_out))
    return 2.0 ** (-(m - 1) / 2.0) * hadamard(n_in, n_out)


@register("zero_init", "zero_initializer")
class ZerO(KerasinitInitializer, keras.initializers.Initializer):
    """Zhao, Schäfer and Anandkumar (2022), "ZerO initialization: initializing neural networks with
    only zeros and ones".

    ``W = I`` when ``n_in == n_out``; partial identity when ``n_in > n_out``;
    ``c · H_m[:n_in, :n_out]`` with ``m = ceil(log2 n_out)``, ``c = 2^(-(m-1)/2)`` when
    ``n_in < n_out``. Convolution kernels: that matrix at the spatial centre, 0 elsewhere.
    Deterministic (no seed). Named ``"zero_init"`` (``"zer_o"`` still accepted; Keras's ``"zero"`` and
    ``"zeros"`` stay :class:`Zeros`). In residual networks the paper also zeroes the last layer
    of every branch: ``reinitialize(model, policy="skipinit")`` does that.
    """

    formula = "I (n_in = n_out) | partial I (n_in > n_out) | 2^(-(m-1)/2) H_m[:n_in, :n_out] (n_in < n_out); conv: at the centre"
    reference = "Zhao et al., ICLR 2022 (arXiv:2110.12661)"
    example_shape = (8, 16)

    def _pattern(self, shape: Any) -> np.ndarray:
        shape = check_shape(shape, owner="ZerO")
        if not 2 <= len(shape) <= 5 or 0 in shape:
            raise ValueError(
                "ZerO: argument `shape` must be a Dense kernel (n_in, n_out) or a Conv1D/2D/3D kernel "
                f"(*kernel_size, in_channels, out_channels), rank 2 to 5 with no zero dimension; received {shape}."
            )
        w = np.zeros(shape, dtype="float64")
        centre = tuple(k // 2 for k in shape[:-2])
        w[centre] = zero_matrix(shape[-2], shape[-1])
        return w

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        dtype = check_float_dtype(dtype, owner="ZerO")
        return ops.convert_to_tensor(self._pattern(shape), dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {}

    def describe(self, shape: Any) -> Description:
        w = self._pattern(shape)
        return self._record(shape, family="identity", distribution="deterministic", mean=float(w.mean()),
                            std=float(w.std()), bounds=(float(w.min()), float(w.max())), params={})
