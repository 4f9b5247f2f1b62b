"""Mirrors of Keras's whole initializer catalogue.

Each class subclasses the Keras built-in of the same name, so with the same integer seed it
returns exactly Keras's tensor; it adds argument validation, a dtype check for random
draws, ``describe(shape)``, and registration under package ``kerasinit``. Every variance-scaling
scheme subclasses ``keras.initializers.VarianceScaling`` (EinsumDense and MultiHeadAttention give
axis-aware fans only to those).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import initializers as ki

from kerasinit._arrays import to_numpy
from kerasinit._validation import (
    check_axes,
    check_choice,
    check_float_dtype,
    check_real,
    check_shape,
    keras_error_first,
)
from kerasinit.initializers.base import (
    TRUNCATED_STD_FACTOR,
    Description,
    FloatOnly,
    KerasinitInitializer,
    keras_first,
    seed_argument,
    uniform_moments,
)
from kerasinit.initializers.fans import check_nonzero_fans, fan_for_mode
from kerasinit.initializers.registry import register

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform", "normal")


#: Keras's classes whose methods the mirrors call by name, bound once at import: a codebase that
#: swaps them globally (``keras.initializers.VarianceScaling = kerasinit.VarianceScaling``) must not
#: make a mirror call itself.
_KERAS_IDENTITY, _KERAS_VARIANCE_SCALING, _KERAS_ORTHOGONAL = ki.Identity, ki.VarianceScaling, ki.Orthogonal


def _check_constant(value: Any) -> None:
    """Keras's Constant takes a scalar or anything ``ops.cast`` turns into a broadcastable real tensor.

    Non-finite values are kept, as Keras keeps them (``Constant(-inf)`` is a mask bias, not a slip).
    """
    try:
        array = to_numpy(value) if hasattr(value, "shape") else np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"Constant: argument `value` must be a real number or array; received {value!r}.") from exc
    if array.dtype.kind not in "iufb":
        raise TypeError(f"Constant: argument `value` must be a real number or array; received {value!r}.")


# --------------------------------------------------------------------------- constants
@register("zero")
class Zeros(KerasinitInitializer, ki.Zeros):
    """All zeros. Keeps every hidden unit identical: use for biases, never for kernels."""

    formula = "W = 0"

    def describe(self, shape: Any) -> Description:
        return self._record(shape, family="constant", distribution="constant", mean=0.0, std=0.0, bounds=(0.0, 0.0))


@register("one")
class Ones(KerasinitInitializer, ki.Ones):
    """All ones (a common bias or scale initializer; like zeros, it keeps units identical)."""

    formula = "W = 1"

    def describe(self, shape: Any) -> Description:
        return self._record(shape, family="constant", distribution="constant", mean=1.0, std=0.0, bounds=(1.0, 1.0))


@register()
class Constant(KerasinitInitializer, ki.Constant):
    """Every entry equals ``value``: a real scalar, or (as Keras allows) an array broadcastable to the shape."""

    formula = "W = value"

    def __init__(self, value: Any = 0.0) -> None:
        keras_first("Constant", lambda: super(Constant, self).__init__(value=value), lambda: _check_constant(value))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constant:
        config = dict(config)
        if isinstance(config.get("value"), dict):  # a serialized NumPy scalar or tensor
            try:
                config["value"] = keras.saving.deserialize_keras_object(config["value"])
            except Exception as exc:  # noqa: BLE001 - any failure means a malformed value
                raise TypeError(f"Constant: config['value'] is not a serialized number: {config['value']!r}.") from exc
        return cls(**config)

    def describe(self, shape: Any) -> Description:
        shape = check_shape(shape, owner="Constant")
        values = np.broadcast_to(to_numpy(self.value).astype("float64"), shape)
        if values.size == 0:
            values = np.zeros(1)
        lo, hi = float(values.min()), float(values.max())
        params = {"value": lo} if lo == hi else {"value": f"array of shape {np.shape(self.value)}"}
        return self._record(shape, family="constant", distribution="constant", mean=float(values.mean()),
                            std=float(values.std()), bounds=(lo, hi), params=params)


@register("IdentityInitializer")
class Identity(KerasinitInitializer, FloatOnly, ki.Identity):
    """``gain * I`` for 2-D shapes (rectangular allowed). Unlike Keras 3.15, ``gain`` is kept in the config."""

    formula = "W = gain * I (2-D only)"

    def __init__(self, gain: float = 1.0) -> None:
        keras_first("Identity", lambda: super(Identity, self).__init__(gain=gain), lambda: check_real("gain", gain, owner="Identity"))

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        shape = check_shape(shape, owner="Identity")
        if len(shape) != 2:
            raise keras_error_first(lambda: _KERAS_IDENTITY.__call__(self, shape, dtype=dtype), ValueError(
                f"Identity: argument `shape` must be 2-D (rows, cols); received {shape} of rank {len(shape)}. "
                "For convolution kernels use an orthogonal or Dirac initializer."
            ))
        return super().__call__(shape, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain}

    def describe(self, shape: Any) -> Description:
        shape = check_shape(shape, owner="Identity")
        if len(shape) != 2:
            raise ValueError(f"Identity: argument `shape` must be 2-D; received {shape}.")
        n = shape[0] * shape[1]
        k = min(shape)
        g = float(self.gain)
        mean = g * k / n if n else 0.0
        var = (g * g * k / n - mean**2) if n else 0.0
        return self._record(
            shape, family="identity", distribution="deterministic", mean=mean, std=math.sqrt(max(var, 0.0)),
            bounds=(min(0.0, g), max(0.0, g)), params={"gain": g},
        )


@register("STFTInitializer")
class STFT(KerasinitInitializer, FloatOnly, ki.STFT):
    """Windowed DFT basis for ``keras.layers.STFTSpectrogram`` kernels of shape (frame, channels, bins)."""

    formula = "W[t, 0, f] = window[t] * cos|sin(-2*pi*t*f / (2*(bins-1))) / scaling"
    example_shape = (16, 1, 9)

    def __init__(self, side: str = "real", window: Any = "hann", scaling: str | None = "density", periodic: bool = False) -> None:
        def check_window() -> None:
            if window is not None and not isinstance(window, str):
                arr = np.asarray(window) if isinstance(window, list | tuple | np.ndarray) else None
                if arr is None or arr.ndim != 1 or arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr)):
                    raise TypeError(
                        f"STFT: argument `window` must be None, a scipy.signal window name or a 1-D array of "
                        f"finite reals; received {window!r}."
                    )
            if isinstance(window, str):
                import scipy.signal

                try:
                    scipy.signal.get_window(window, 1)
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"STFT: argument `window` {window!r} is not a scipy.signal window name.") from exc

        def check_periodic() -> None:
            if not isinstance(periodic, bool):
                raise TypeError(f"STFT: argument `periodic` must be a bool; received {periodic!r}.")

        keras_first(
            "STFT", lambda: super(STFT, self).__init__(side=side, window=window, scaling=scaling, periodic=periodic),
            lambda: check_choice("side", side, ("real", "imag"), owner="STFT"),
            lambda: None if scaling is None else check_choice("scaling", scaling, ("density", "spectrum"), owner="STFT"),
            check_periodic, check_window,
        )

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        shape = check_shape(shape, owner="STFT")
        if len(shape) != 3 or shape[1] != 1 or shape[2] < 2:
            raise ValueError(
                f"STFT: argument `shape` must be (frame_length, 1, fft_bins) with fft_bins >= 2; received {shape}."
            )
        return super().__call__(shape, dtype=dtype)

    def describe(self, shape: Any) -> Description:
        w = to_numpy(self(shape, dtype="float32")).astype("float64")  # float64 is not on every backend (JAX)
        return self._record(
            shape, family="stft", distribution="deterministic", mean=float(w.mean()), std=float(w.std()),
            bounds=(float(w.min()), float(w.max())), params=self.get_config(),
        )


# --------------------------------------------------------------------------- plain random
@register("normal")
class RandomNormal(KerasinitInitializer, FloatOnly, ki.RandomNormal):
    """N(mean, stddev²), untruncated."""

    formula = "N(mean, stddev^2)"
    is_random = True

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: Any = None) -> None:
        owner = type(self).__name__
        keras_first(owner, lambda: super(RandomNormal, self).__init__(mean=mean, stddev=stddev, seed=seed),
                    lambda: seed_argument(seed, owner), lambda: check_real("mean", mean, owner=owner),
                    lambda: check_real("stddev", stddev, owner=owner, positive=True))

    def describe(self, shape: Any) -> Description:
        return self._record(
            shape, family="random", distribution="normal", mean=float(self.mean), std=float(self.stddev),
            bounds=None, params={"mean": self.mean, "stddev": self.stddev},
        )


@register()
class TruncatedNormal(KerasinitInitializer, FloatOnly, ki.TruncatedNormal):
    """N(mean, stddev²) truncated to mean ± 2·stddev (so the actual std is 0.8796·stddev)."""

    formula = "N(mean, stddev^2) truncated to mean +- 2*stddev"
    is_random = True

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: Any = None) -> None:
        keras_first("TruncatedNormal", lambda: super(TruncatedNormal, self).__init__(mean=mean, stddev=stddev, seed=seed),
                    lambda: seed_argument(seed, "TruncatedNormal"), lambda: check_real("mean", mean, owner="TruncatedNormal"),
                    lambda: check_real("stddev", stddev, owner="TruncatedNormal", positive=True))

    def describe(self, shape: Any) -> Description:
        m, s = float(self.mean), float(self.stddev)
        return self._record(
            shape, family="random", distribution="truncated_normal", mean=m, std=s * TRUNCATED_STD_FACTOR,
            bounds=(m - 2 * s, m + 2 * s), params={"mean": m, "stddev": s},
        )


@register("uniform")
class RandomUniform(KerasinitInitializer, FloatOnly, ki.RandomUniform):
    """U[minval, maxval): mean (minval + maxval)/2, std (maxval - minval)/√12."""

    formula = "U[minval, maxval)"
    is_random = True

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: Any = None) -> None:
        def ordered() -> None:
            lo = check_real("minval", minval, owner="RandomUniform")
            hi = check_real("maxval", maxval, owner="RandomUniform")
            if not lo < hi:
                raise ValueError(f"RandomUniform: arguments must satisfy minval < maxval; received minval={minval!r}, maxval={maxval!r}.")

        keras_first("RandomUniform", lambda: super(RandomUniform, self).__init__(minval=minval, maxval=maxval, seed=seed),
                    lambda: seed_argument(seed, "RandomUniform"), ordered)

    def describe(self, shape: Any) -> Description:
        lo, hi = float(self.minval), float(self.maxval)
        mean, std = uniform_moments(lo, hi)
        return self._record(shape, family="random", distribution="uniform", mean=mean, std=std, bounds=(lo, hi),
                            params={"minval": lo, "maxval": hi})


# --------------------------------------------------------------------------- variance scaling
@register()
class VarianceScaling(KerasinitInitializer, FloatOnly, ki.VarianceScaling):
    """Var(W) = scale / n, n = fan_in, fan_out or (fan_in + fan_out)/2 (``mode``).

    ``uniform``: U[-r, r], r = √(3·scale/n); ``truncated_normal``: std √(scale/n) after truncation at
    ±2σ' (σ' = √(scale/n)/0.8796); ``untruncated_normal``: N(0, scale/n). Base of every
    fan-dependent scheme in kerasinit. A fan of 0 is an error (Keras silently uses 1).
    """

    formula = "Var(W) = scale / n,  n = fan_in | fan_out | (fan_in + fan_out)/2"
    is_random = True

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: Any = None,
        input_axes: list[int] | None = None,
        output_axes: list[int] | None = None,
    ) -> None:
        owner = type(self).__name__
        keras_first(
            owner,
            lambda: _KERAS_VARIANCE_SCALING.__init__(self, scale=scale, mode=mode, distribution=distribution, seed=seed,
                                                input_axes=input_axes, output_axes=output_axes),
            lambda: check_real("scale", scale, owner=owner, positive=True),
            lambda: check_choice("mode", mode, MODES, owner=owner),
            lambda: check_choice("distribution", distribution, DISTRIBUTIONS, owner=owner)
            if not isinstance(distribution, str) else check_choice("distribution", distribution.lower(), DISTRIBUTIONS, owner=owner),
            lambda: seed_argument(seed, owner),
            lambda: check_axes("input_axes", input_axes, owner=owner),
            lambda: check_axes("output_axes", output_axes, owner=owner),
        )

    def _checked_fans(self, shape: Any, empty_ok: bool = False) -> tuple[tuple[int, ...], int, int]:
        """Shape and fans; a zero fan is refused unless ``empty_ok`` and the tensor is empty (Keras draws it)."""
        shape, fan_in, fan_out = self._fans(shape)
        if not (empty_ok and math.prod(shape) == 0):
            check_nonzero_fans(shape, fan_in, fan_out, self.mode, type(self).__name__)
        return shape, fan_in, fan_out

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        try:  # a zero fan means a zero dimension: an empty kernel, which Keras returns as it is
            shape, _, _ = self._checked_fans(shape, empty_ok=True)
        except IndexError as exc:
            raise ValueError(
                f"{type(self).__name__}: input_axes={self.input_axes}/output_axes={self.output_axes} "
                f"do not fit argument `shape`={shape}."
            ) from exc
        return super().__call__(shape, dtype=dtype)

    def formula_text(self) -> str:
        if type(self).formula != VarianceScaling.formula:
            return type(self).formula
        n = {"fan_in": "fan_in", "fan_out": "fan_out", "fan_avg": "(fan_in + fan_out)/2"}[self.mode]
        if self.distribution == "uniform":
            return f"U[-r, r], r = sqrt(3 * {self.scale:g} / {n})"
        kind = "N(0, s^2)" if self.distribution == "untruncated_normal" else "truncated N (at +-2 s/0.8796)"
        return f"{kind}, s = sqrt({self.scale:g} / {n})"

    def describe(self, shape: Any) -> Description:
        shape, fan_in, fan_out = self._checked_fans(shape)
        var = float(self.scale) / fan_for_mode(fan_in, fan_out, self.mode)
        std = math.sqrt(var)
        if self.distribution == "uniform":
            bounds: tuple[float, float] | None = (-math.sqrt(3.0 * var), math.sqrt(3.0 * var))
        elif self.distribution == "truncated_normal":
            t = 2.0 * std / TRUNCATED_STD_FACTOR
            bounds = (-t, t)
        else:
            bounds = None
        return self._record(
            shape, family="variance_scaling",
            distribution="normal" if self.distribution == "untruncated_normal" else self.distribution,
            mean=0.0, std=std, bounds=bounds, mode=self.mode, scale=float(self.scale),
        )


@register()
class GlorotUniform(ki.GlorotUniform, VarianceScaling):
    """Glorot & Bengio (2010): U[-r, r], r = √(6/(fan_in + fan_out)). Also "normalized Xavier"."""

    formula = "U[-r, r], r = sqrt(6 / (fan_in + fan_out))"
    reference = "Glorot & Bengio, AISTATS 2010"


@register()
class GlorotNormal(ki.GlorotNormal, VarianceScaling):
    """Glorot & Bengio (2010), truncated normal with std √(2/(fan_in + fan_out)) after truncation."""

    formula = "truncated N, std = sqrt(2 / (fan_in + fan_out))"
    reference = "Glorot & Bengio, AISTATS 2010"


@register()
class LecunUniform(ki.LecunUniform, VarianceScaling):
    """LeCun et al. (1998): U[-r, r], r = √(3/fan_in)."""

    formula = "U[-r, r], r = sqrt(3 / fan_in)"
    reference = "LeCun et al., Efficient BackProp, 1998"


@register()
class LecunNormal(ki.LecunNormal, VarianceScaling):
    """LeCun et al. (1998): truncated normal with std √(1/fan_in) (the SELU initializer)."""

    formula = "truncated N, std = sqrt(1 / fan_in)"
    reference = "LeCun et al., Efficient BackProp, 1998; Klambauer et al. 2017"


@register()
class HeUniform(ki.HeUniform, VarianceScaling):
    """He et al. (2015): U[-r, r], r = √(6/fan_in)."""

    formula = "U[-r, r], r = sqrt(6 / fan_in)"
    reference = "He et al., ICCV 2015"


@register()
class HeNormal(ki.HeNormal, VarianceScaling):
    """He et al. (2015): normal with std √(2/fan_in).

    Keras draws it truncated at ±2σ' (std √(2/fan_in) after truncation); ``truncated=False`` draws
    the plain Gaussian N(0, 2/fan_in) of the paper and the classic tutorials. The ``truncated`` key
    appears in the config only when False, so the default config equals Keras's.
    """

    formula = "truncated N, std = sqrt(2 / fan_in)"
    reference = "He et al., ICCV 2015"

    def __init__(
        self, seed: Any = None, input_axes: list[int] | None = None, output_axes: list[int] | None = None,
        truncated: bool = True,
    ) -> None:
        if not isinstance(truncated, bool):
            raise TypeError(f"{type(self).__name__}: argument `truncated` must be a bool; received {truncated!r}.")
        super().__init__(seed=seed, input_axes=input_axes, output_axes=output_axes)
        self.truncated = truncated
        if not truncated:
            self.distribution = "untruncated_normal"

    def formula_text(self) -> str:
        return self.formula if self.truncated else "N(0, s^2), s = sqrt(2 / fan_in)"

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if not self.truncated:
            config["truncated"] = False
        return config


@register("OrthogonalInitializer")
class Orthogonal(KerasinitInitializer, FloatOnly, ki.Orthogonal):
    """Saxe et al. (2014): a (semi-)orthogonal matrix times ``gain``, from the QR of a Gaussian.

    The shape is flattened to (prod(shape[:-1]), shape[-1]); entries have mean 0 and
    std gain/√max(rows, cols).
    """

    formula = "gain * Q, Q from QR of a Gaussian matrix (rows = prod(shape[:-1]), cols = shape[-1])"
    reference = "Saxe et al., ICLR 2014"
    is_random = True

    def __init__(self, gain: float = 1.0, seed: Any = None) -> None:
        owner = type(self).__name__
        keras_first(owner, lambda: super(Orthogonal, self).__init__(gain=gain, seed=seed),
                    lambda: seed_argument(seed, owner), lambda: check_real("gain", gain, owner=owner, positive=True))

    @staticmethod
    def _rows_cols(shape: tuple[int, ...], owner: str) -> tuple[int, int]:
        if len(shape) < 2 or 0 in shape:
            raise ValueError(
                f"{owner}: argument `shape` must have rank >= 2 and no zero dimension; received {shape}."
            )
        return int(np.prod(shape[:-1])), int(shape[-1])

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        shape = check_shape(shape, owner=type(self).__name__)
        if len(shape) < 2:  # Keras's wording first; an empty kernel (a zero dimension) is Keras's to draw
            raise keras_error_first(lambda: _KERAS_ORTHOGONAL.__call__(self, shape, dtype=dtype), ValueError(
                f"{type(self).__name__}: argument `shape` must have rank >= 2; received {shape}."))
        if check_float_dtype(dtype, owner=type(self).__name__) == "bfloat16":
            # TensorFlow's QR has no bfloat16 kernel (Keras's Orthogonal fails): factor in float32.
            return keras.ops.cast(super().__call__(shape, dtype="float32"), "bfloat16")
        return super().__call__(shape, dtype=dtype)

    def describe(self, shape: Any) -> Description:
        shape = check_shape(shape, owner=type(self).__name__)
        rows, cols = self._rows_cols(shape, type(self).__name__)
        g = float(self.gain)
        return self._record(
            shape, family="orthogonal", distribution="orthogonal", mean=0.0, std=g / math.sqrt(max(rows, cols)),
            bounds=(-g, g), params={"gain": g},
        )
