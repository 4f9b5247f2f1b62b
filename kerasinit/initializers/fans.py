"""Fans and gains.

Fans are Keras's own (``keras.src.initializers.random_initializers.compute_fans``): for a kernel of
shape ``(*receptive_field, in_channels, out_channels)``, ``fan_in = in_channels * prod(receptive_field)``
and ``fan_out = out_channels * prod(receptive_field)``; a 1-D shape ``(n,)`` has ``fan_in = fan_out = n``.
Unlike Keras (which silently divides by ``max(1, fan)``) a fan of 0 is an error here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from keras.src.initializers.random_initializers import compute_fans as _keras_compute_fans

from kerasinit._validation import check_real, check_shape

#: Default negative slope of ``leaky_relu``: Keras's ``keras.activations.leaky_relu`` default.
DEFAULT_NEGATIVE_SLOPE = 0.2


def compute_fans(
    shape: Any, input_axes: list[int] | None = None, output_axes: list[int] | None = None
) -> tuple[int, int]:
    """``(fan_in, fan_out)`` exactly as Keras computes them, with the shape validated."""
    shape = check_shape(shape)
    return _keras_compute_fans(shape, input_axes=input_axes, output_axes=output_axes)


def fan_for_mode(fan_in: int, fan_out: int, mode: str) -> float:
    """The ``n`` of ``Var(W) = scale / n`` for ``mode`` in ``fan_in``, ``fan_out``, ``fan_avg``."""
    if mode == "fan_in":
        return float(fan_in)
    if mode == "fan_out":
        return float(fan_out)
    return (fan_in + fan_out) / 2.0


def check_nonzero_fans(shape: tuple[int, ...], fan_in: int, fan_out: int, mode: str, owner: str) -> None:
    """A zero fan (any zero dimension) is an error; Keras silently divides by ``max(1, fan)``."""
    if min(fan_in, fan_out) <= 0 or fan_for_mode(fan_in, fan_out, mode) <= 0:
        raise ValueError(
            f"{owner}: argument `shape`={shape} gives fan_in={fan_in}, fan_out={fan_out}; "
            f"variance scaling (mode={mode!r}) needs fans of at least 1 (every dimension must be >= 1)."
        )


_GAINS: dict[str, Callable[[float], float]] = {
    "linear": lambda a: 1.0,
    "identity": lambda a: 1.0,
    "conv1d": lambda a: 1.0,
    "conv2d": lambda a: 1.0,
    "conv3d": lambda a: 1.0,
    "conv_transpose1d": lambda a: 1.0,
    "conv_transpose2d": lambda a: 1.0,
    "conv_transpose3d": lambda a: 1.0,
    "sigmoid": lambda a: 1.0,
    "tanh": lambda a: 5.0 / 3.0,
    "relu": lambda a: math.sqrt(2.0),
    "leaky_relu": lambda a: math.sqrt(2.0 / (1.0 + a * a)),
    "selu": lambda a: 3.0 / 4.0,
}
_ALIASES = {"logistic": "sigmoid", "none": "linear", "leakyrelu": "leaky_relu", "LeakyReLU": "leaky_relu"}

#: Activation names :func:`gain` accepts.
GAIN_ACTIVATIONS = tuple(sorted(_GAINS))


def activation_name(activation: Any) -> str:
    """Normalize a Keras activation (name, callable or ``None``) to its lower-case name."""
    if activation is None:
        return "linear"
    if callable(activation) and not isinstance(activation, str):
        name = getattr(activation, "__name__", None) or type(activation).__name__
    elif isinstance(activation, str):
        name = activation
    else:
        raise TypeError(
            f"argument `activation` must be a string or a callable; received {activation!r} "
            f"(type {type(activation).__name__})."
        )
    name = _ALIASES.get(name, name)
    return _ALIASES.get(name.lower(), name.lower())


def gain(activation: Any, param: float | None = None) -> float:
    """Recommended gain for ``activation`` (PyTorch's ``calculate_gain`` table, Keras names).

    ``linear``/``conv*``/``sigmoid`` 1, ``tanh`` 5/3, ``relu`` √2, ``leaky_relu`` √(2/(1+a²)) with
    ``a = param`` (default :data:`DEFAULT_NEGATIVE_SLOPE`), ``selu`` 3/4 (Klambauer et al. 2017
    suggest LeCun normal, i.e. gain 1, for self-normalization; 3/4 is PyTorch's value for SELU nets
    initialized with ``kaiming``-style schemes). ``activation`` may be a name or a Keras callable
    such as ``keras.activations.tanh``.
    """
    name = activation_name(activation)
    if name not in _GAINS:
        raise ValueError(f"argument `activation` must be one of {list(GAIN_ACTIVATIONS)}; received {activation!r}.")
    if param is not None and name != "leaky_relu":
        raise ValueError(f"argument `param` is only used with activation='leaky_relu'; received param={param!r}.")
    slope = DEFAULT_NEGATIVE_SLOPE if param is None else check_real("param", param)
    return _GAINS[name](slope)
