"""Structured initializers: delta-orthogonal, Dirac and sparse.

- :class:`DeltaOrthogonal` (Xiao et al. 2018): an orthogonal matrix at the spatial centre of a
  convolution kernel, zeros elsewhere; with it a deep tanh CNN is dynamically isometric at init.
- :class:`Dirac` (PyTorch's ``torch.nn.init.dirac_``): a convolution that copies its inputs.
- :class:`SparseNormal` (Martens 2010): each output unit has exactly ``k`` nonzero incoming
  weights drawn from N(0, stddev²).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import keras
import numpy as np
from keras import ops

from kerasinit._validation import check_float_dtype, check_real, check_shape
from kerasinit.initializers.base import Description, FloatOnly, KerasinitInitializer, seed_argument
from kerasinit.initializers.mirrors import Orthogonal
from kerasinit.initializers.registry import register


def _conv_shape(shape: Any, owner: str) -> tuple[int, ...]:
    shape = check_shape(shape, owner=owner)
    if not 3 <= len(shape) <= 5 or 0 in shape:
        raise ValueError(
            f"{owner}: argument `shape` must be a Conv1D/2D/3D kernel (*kernel_size, in_channels, out_channels), "
            f"rank 3 to 5 with no zero dimension; received {shape}."
        )
    return shape


def _centre_pads(spatial: tuple[int, ...]) -> list[tuple[int, int]]:
    """Pads that put a size-1 slice at index k // 2 of every spatial axis."""
    return [(k // 2, k - 1 - k // 2) for k in spatial]


@register("delta_orthogonal_initializer")
class DeltaOrthogonal(Orthogonal):
    """Xiao et al. (2018), "Dynamical isometry and a mean field theory of CNNs".

    ``W[c_1, ..., c_d, :, :] = gain * H`` at the spatial centre ``c_i = k_i // 2`` and 0 elsewhere,
    with ``H`` (in_channels x out_channels) having orthonormal rows (drawn as Keras's
    ``Orthogonal``). Needs ``in_channels <= out_channels``. Entries have mean 0 and
    std gain / √(prod(kernel_size) · out_channels).
    """

    formula = "W[centre] = gain * H (H: in x out with orthonormal rows), 0 elsewhere"
    reference = "Xiao et al., ICML 2018"
    example_shape = (3, 3, 4, 8)

    def _check(self, shape: Any) -> tuple[int, ...]:
        shape = _conv_shape(shape, type(self).__name__)
        if shape[-2] > shape[-1]:
            raise ValueError(
                f"DeltaOrthogonal: argument `shape`={shape} has in_channels={shape[-2]} > out_channels={shape[-1]}; "
                "a delta-orthogonal kernel needs in_channels <= out_channels (use Orthogonal otherwise)."
            )
        return shape

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        shape = self._check(shape)
        dtype = check_float_dtype(dtype, owner="DeltaOrthogonal")
        centre = super().__call__((shape[-2], shape[-1]), dtype=dtype)  # gain * H
        centre = ops.reshape(centre, (1,) * (len(shape) - 2) + shape[-2:])
        return ops.pad(centre, [*_centre_pads(shape[:-2]), (0, 0), (0, 0)])

    def describe(self, shape: Any) -> Description:
        shape = self._check(shape)
        g = float(self.gain)
        k = math.prod(shape[:-2])
        return self._record(shape, family="orthogonal", distribution="delta_orthogonal", mean=0.0,
                            std=g / math.sqrt(k * shape[-1]), bounds=(-g, g), params={"gain": g})


@register("dirac_initializer", "conv_identity")
class Dirac(KerasinitInitializer, keras.initializers.Initializer):
    """PyTorch's ``dirac_``: a convolution kernel that preserves the identity of its inputs.

    For a kernel (*kernel_size, in_channels/groups, out_channels) and ``groups`` groups of
    ``out_channels/groups`` filters: ``W[centre, d, g·(out/groups) + d] = 1`` for every group g and
    d < min(in_channels/groups, out_channels/groups); 0 elsewhere. (Keras kernels put channels
    last; PyTorch's layout is (out, in/groups, *kernel_size).)
    """

    formula = "W[centre, d, g*out_per_group + d] = 1, 0 elsewhere"
    reference = "PyTorch torch.nn.init.dirac_; Zagoruyko & Komodakis, DiracNets 2017"
    example_shape = (3, 3, 4, 4)

    def __init__(self, groups: int = 1) -> None:
        if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
            raise ValueError(f"Dirac: argument `groups` must be a positive int; received {groups!r}.")
        self.groups = int(groups)

    def _pattern(self, shape: Any) -> np.ndarray:
        shape = _conv_shape(shape, "Dirac")
        if shape[-1] % self.groups:
            raise ValueError(
                f"Dirac: out_channels={shape[-1]} of argument `shape`={shape} must be divisible by groups={self.groups}."
            )
        out_per_group = shape[-1] // self.groups
        w = np.zeros(shape, dtype="float64")
        centre = tuple(k // 2 for k in shape[:-2])
        for g in range(self.groups):
            for d in range(min(shape[-2], out_per_group)):
                w[(*centre, d, g * out_per_group + d)] = 1.0
        return w

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        dtype = check_float_dtype(dtype, owner="Dirac")
        return ops.convert_to_tensor(self._pattern(shape), dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"groups": self.groups}

    def describe(self, shape: Any) -> Description:
        w = self._pattern(shape)
        return self._record(shape, family="identity", distribution="deterministic", mean=float(w.mean()),
                            std=float(w.std()), bounds=(0.0, 1.0), params={"groups": self.groups})


@register("sparse_initializer", "martens_sparse")
class SparseNormal(KerasinitInitializer, FloatOnly, keras.initializers.RandomNormal):
    """Martens (2010), "Deep learning via Hessian-free optimization", sparse initialization.

    Each output unit (column of the kernel flattened to (fan_in, out_channels)) gets exactly
    ``k`` nonzero incoming weights, at positions drawn uniformly without replacement, valued
    N(0, stddev²); the rest are 0. Give ``nonzero_per_unit=k`` (Martens: 15, the default) or
    ``sparsity=s`` (k = fan_in − ceil(s · fan_in), PyTorch ``sparse_``'s convention), not both.
    Var(W) = stddev² · k / fan_in. ``stddev=1`` is Martens's unit Gaussian; He-like scaling is
    ``stddev = √(2/k)``.
    """

    formula = "k nonzero N(0, stddev^2) inputs per output unit, 0 elsewhere"
    reference = "Martens, ICML 2010"
    example_shape = (30, 10)
    is_random = True

    def __init__(
        self, nonzero_per_unit: int | None = None, sparsity: float | None = None, stddev: float = 1.0, seed: Any = None
    ) -> None:
        if nonzero_per_unit is not None and sparsity is not None:
            raise ValueError(
                "SparseNormal: give one of arguments `nonzero_per_unit` or `sparsity`, not both; "
                f"received nonzero_per_unit={nonzero_per_unit!r}, sparsity={sparsity!r}."
            )
        if nonzero_per_unit is not None and (
            isinstance(nonzero_per_unit, bool) or not isinstance(nonzero_per_unit, numbers.Integral) or nonzero_per_unit < 1
        ):
            raise ValueError(f"SparseNormal: argument `nonzero_per_unit` must be a positive int; received {nonzero_per_unit!r}.")
        if sparsity is not None:
            s = check_real("sparsity", sparsity, owner="SparseNormal")
            if not 0.0 <= s < 1.0:
                raise ValueError(f"SparseNormal: argument `sparsity` must be in [0, 1); received {sparsity!r}.")
        self.nonzero_per_unit = nonzero_per_unit
        self.sparsity = sparsity
        check_real("stddev", stddev, owner="SparseNormal", positive=True)
        super().__init__(mean=0.0, stddev=stddev, seed=seed_argument(seed, "SparseNormal"))

    def nonzeros(self, fan_in: int) -> int:
        """k for a layer with ``fan_in`` inputs."""
        if self.sparsity is not None:
            return fan_in - math.ceil(float(self.sparsity) * fan_in)
        k = 15 if self.nonzero_per_unit is None else int(self.nonzero_per_unit)
        if k > fan_in:
            raise ValueError(
                f"SparseNormal: argument `nonzero_per_unit`={k} exceeds the fan_in={fan_in} of the shape; "
                "pass nonzero_per_unit <= fan_in or use `sparsity`."
            )
        return k

    def _rows_cols(self, shape: Any) -> tuple[tuple[int, ...], int, int]:
        shape = check_shape(shape, owner="SparseNormal")
        if len(shape) < 2 or 0 in shape:
            raise ValueError(f"SparseNormal: argument `shape` must have rank >= 2 and no zero dimension; received {shape}.")
        return shape, math.prod(shape[:-1]), shape[-1]

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        shape, rows, cols = self._rows_cols(shape)
        dtype = check_float_dtype(dtype, owner="SparseNormal")
        k = self.nonzeros(rows)
        if isinstance(self.seed, int):
            seed_values, seed_positions = self.seed, self.seed + 1
        else:
            seed_values = seed_positions = self.seed  # a SeedGenerator advances between the two draws
        values = keras.random.normal((rows, cols), stddev=self.stddev, seed=seed_values, dtype=dtype)
        scores = keras.random.uniform((cols, rows), seed=seed_positions)
        _, chosen = ops.top_k(scores, k=k, sorted=False)  # k distinct random rows per column
        mask = ops.sum(ops.one_hot(chosen, rows, dtype=dtype), axis=1)  # (cols, rows) of 0/1
        return ops.reshape(values * ops.transpose(mask), shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        return {"nonzero_per_unit": self.nonzero_per_unit, "sparsity": self.sparsity,
                "stddev": self.stddev, "seed": config["seed"]}

    def describe(self, shape: Any) -> Description:
        shape, rows, _ = self._rows_cols(shape)
        k = self.nonzeros(rows)
        s = float(self.stddev)
        return self._record(shape, family="sparse", distribution="sparse_normal", mean=0.0,
                            std=s * math.sqrt(k / rows), bounds=None,
                            params={"nonzero_per_unit": k, "stddev": s, "density": k / rows})
