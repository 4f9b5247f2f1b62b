"""Argument checks shared by every public entry point.

Each check raises ``ValueError`` or ``TypeError`` whose message names the argument, what was
received and what is allowed. Nothing is clamped or coerced silently.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import keras

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _describe_type(value: Any) -> str:
    return f"{value!r} (type {type(value).__name__})"


def with_detail(theirs: BaseException, ours: BaseException | str | None) -> BaseException:
    """``theirs`` (Keras's exception) again, same type, with kerasinit's detail after Keras's wording."""
    detail = f" [kerasinit: {ours}]" if ours else ""
    out = type(theirs)(f"{theirs}{detail}")
    out.__cause__ = theirs
    return out


def keras_error_first(keras_call: Callable[[], Any], ours: BaseException) -> BaseException:
    """The exception to raise for an input kerasinit refuses: Keras's own (its type and wording first,
    ``ours`` after) when ``keras_call`` (Keras doing the same thing) refuses it too, else ``ours``."""
    try:
        keras_call()
    except (TypeError, ValueError) as theirs:
        return with_detail(theirs, ours)
    return ours


def check_real(
    name: str,
    value: Any,
    *,
    owner: str = "",
    positive: bool = False,
    nonnegative: bool = False,
) -> float:
    """Return ``value`` as a finite float, or raise naming ``name``.

    Accepts Python and NumPy real numbers and 0-d arrays/tensors; rejects ``bool``.
    """
    where = f"{owner}: " if owner else ""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"{where}argument `{name}` must be a real number; received {_describe_type(value)}.")
    if not isinstance(value, numbers.Real):
        shape = getattr(value, "shape", None)
        if shape is None or tuple(shape) != ():
            raise TypeError(
                f"{where}argument `{name}` must be a real number; received {_describe_type(value)}."
            )
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:  # e.g. complex 0-d arrays
        raise TypeError(f"{where}argument `{name}` must be a real number; received {value!r}.") from exc
    if not math.isfinite(out):
        raise ValueError(f"{where}argument `{name}` must be finite; received {value!r}.")
    if positive and out <= 0.0:
        raise ValueError(f"{where}argument `{name}` must be > 0; received {value!r}.")
    if nonnegative and out < 0.0:
        raise ValueError(f"{where}argument `{name}` must be >= 0; received {value!r}.")
    return out


def check_choice(name: str, value: Any, allowed: Iterable[str], *, owner: str = "") -> str:
    """Return ``value`` if it is one of ``allowed`` (strings), else raise naming ``name``."""
    allowed = tuple(allowed)
    where = f"{owner}: " if owner else ""
    if not isinstance(value, str):
        raise TypeError(
            f"{where}argument `{name}` must be a string, one of {list(allowed)}; "
            f"received {_describe_type(value)}."
        )
    if value not in allowed:
        raise ValueError(f"{where}argument `{name}` must be one of {list(allowed)}; received {value!r}.")
    return value


def check_seed(seed: Any, *, owner: str = "") -> Any:
    """Seeds follow Keras: ``None``, an ``int``, a ``keras.random.SeedGenerator`` or its config dict."""
    if seed is None or isinstance(seed, keras.random.SeedGenerator | dict):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        where = f"{owner}: " if owner else ""
        raise TypeError(
            f"{where}argument `seed` must be None, an int or a keras.random.SeedGenerator; "
            f"received {_describe_type(seed)}."
        )
    return int(seed)


def check_axes(name: str, axes: Any, *, owner: str = "") -> list[int] | None:
    """``input_axes``/``output_axes`` as Keras's VarianceScaling takes them: None or a list of ints."""
    if axes is None:
        return None
    where = f"{owner}: " if owner else ""
    if isinstance(axes, str | bytes) or not isinstance(axes, Sequence):
        raise TypeError(f"{where}argument `{name}` must be None or a list of ints; received {axes!r}.")
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise TypeError(f"{where}argument `{name}` must be None or a list of ints; received {axes!r}.")
        out.append(int(a))
    return out


def check_shape(shape: Any, *, owner: str = "") -> tuple[int, ...]:
    """A shape is a sequence of non-negative ints (``None`` entries are not allowed here)."""
    where = f"{owner}: " if owner else ""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError as exc:
        raise TypeError(f"{where}argument `shape` must be a tuple of ints; received {shape!r}.") from exc
    out = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise TypeError(f"{where}argument `shape` must be a tuple of ints; received {shape!r}.")
        if d < 0:
            raise ValueError(f"{where}argument `shape` must have non-negative sizes; received {shape!r}.")
        out.append(int(d))
    return tuple(out)


def check_float_dtype(dtype: Any, *, owner: str = "") -> str:
    """Standardize ``dtype`` (``None`` means ``keras.config.floatx()``) and require a float type."""
    where = f"{owner}: " if owner else ""
    try:
        std = keras.backend.standardize_dtype(dtype)
    except (ValueError, TypeError, AttributeError) as exc:
        raise TypeError(f"{where}argument `dtype` must be one of {list(FLOAT_DTYPES)}; received {dtype!r}.") from exc
    if std not in FLOAT_DTYPES:
        raise TypeError(
            f"{where}argument `dtype` must be a floating dtype, one of {list(FLOAT_DTYPES)}; "
            f"received {std!r}. Random initializers draw real numbers: initialize in float and "
            "cast explicitly if you really want integers."
        )
    return std


def check_int(name: str, value: Any, low: int, *, owner: str = "") -> int:
    """Return ``value`` as an int ``>= low`` (Python or NumPy integers, never bool), else raise naming ``name``."""
    where = f"{owner}: " if owner else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where}argument `{name}` must be an int >= {low}; received {_describe_type(value)}.")
    if value < low:
        raise ValueError(f"{where}argument `{name}` must be an int >= {low}; received {value!r}.")
    return int(value)
