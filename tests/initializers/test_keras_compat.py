"""Drop-in: every mirror accepts what the installed Keras's class accepts and raises what it raises.

Parametrized over Keras's own public initializer classes, and the expectations are computed from
the installed Keras at test time: for each argument variant the Keras class is built and called
first, then the mirror. Where Keras accepts, the mirror must accept and draw exactly the same
tensor; where Keras raises, the mirror must raise the same exception type with a message that
starts with Keras's own (kerasinit's detail may follow). A Keras upgrade that changes either side
fails here.
"""

from __future__ import annotations

import copy
import inspect
import re

import keras
import numpy as np
import pytest

import kerasinit
from kerasinit.initializers import KERAS_MIRRORS

KERAS_CLASSES = sorted(
    name for name in dir(keras.initializers)
    if inspect.isclass(getattr(keras.initializers, name))
    and issubclass(getattr(keras.initializers, name), keras.initializers.Initializer)
    and name != "Initializer" and getattr(keras.initializers, name).__name__ == name  # not the aliases
)

#: the same number in every type a Keras user may pass
def _numbers(x: float) -> list:
    return [x, np.float32(x), np.float64(x), np.array(x)] + ([int(x), np.int64(int(x))] if float(x).is_integer() else [])


#: argument -> variants to try (valid and invalid alike; Keras decides which is which)
VARIANTS: dict[str, list] = {
    "value": [*_numbers(2.0), *_numbers(0.5), np.array([1.0, 2.0, 3.0]), [1.0, 2.0, 3.0], np.ones((1, 3), "float32"),
              True, -np.inf, np.float32(np.inf), [[0.0], [-np.inf]], keras.ops.ones((3,))],
    "gain": [*_numbers(2.0), *_numbers(0.5)],
    "mean": [*_numbers(0.1), *_numbers(1.0)],
    "stddev": [*_numbers(0.2), *_numbers(1.0)],
    "minval": [*_numbers(-0.3), *_numbers(-1.0)],
    "maxval": [*_numbers(0.3), *_numbers(1.0)],
    "scale": [*_numbers(2.0), *_numbers(0.5), -1.0, 0.0, np.float32(-2.0)],
    "mode": ["fan_in", "fan_out", "fan_avg", "fan_x", "FAN_IN"],
    "distribution": ["uniform", "normal", "truncated_normal", "untruncated_normal", "Uniform", "NORMAL", "cauchy", 5],
    "seed": [3, "abc", 1.5, [1, 2]],
    "side": ["real", "imag", "both"],
    "scaling": ["density", "spectrum", None, "power"],
    "periodic": [True, False],
    "window": ["hann", "hamming", None, np.hanning(16)],
}
#: what Keras is known to refuse (so that the comparisons above are not vacuous)
KERAS_REFUSES = [
    ("VarianceScaling", {"scale": -1.0}, ValueError, "Argument `scale` must be positive float."),
    ("VarianceScaling", {"mode": "fan_x"}, ValueError, "Invalid `mode` argument:"),
    ("VarianceScaling", {"distribution": "cauchy"}, ValueError, "Invalid `distribution` argument:"),
    ("GlorotUniform", {"seed": "abc"}, ValueError, "`seed` argument should be an instance of"),
]


def _shape(name: str) -> tuple[int, ...]:
    return getattr(kerasinit, name).example_shape if hasattr(getattr(kerasinit, name), "example_shape") else (4, 3)


def _outcome(cls: type, kwargs: dict, shape: tuple[int, ...]):
    """("ok", tensor) or ("raised", exception), constructing then calling once."""
    try:  # a fresh copy: Keras's VarianceScaling divides a 0-d array `scale` in place when it draws
        out = cls(**copy.deepcopy(kwargs))(shape)
    except Exception as exc:  # noqa: BLE001 - the comparison is over whatever Keras does
        return "raised", exc
    return "ok", np.asarray(keras.ops.convert_to_numpy(out))


def _cases() -> list:
    cases = []
    for name in KERAS_CLASSES:
        params = [p for p in inspect.signature(getattr(keras.initializers, name).__init__).parameters if p != "self"]
        base = {"seed": 3} if "seed" in params else {}
        cases.append(pytest.param(name, dict(base), id=f"{name}-defaults"))
        for param in params:
            for i, value in enumerate(VARIANTS.get(param, [])):
                cases.append(pytest.param(name, {**base, param: value}, id=f"{name}-{param}-{i}"))
    return cases


def test_every_public_keras_initializer_has_a_mirror():
    assert [n for n in KERAS_CLASSES if n not in KERAS_MIRRORS] == []


@pytest.mark.parametrize("name, kwargs", _cases())
def test_mirror_accepts_and_raises_what_keras_does(name, kwargs):
    shape = _shape(name)
    theirs = _outcome(getattr(keras.initializers, name), kwargs, shape)
    ours = _outcome(getattr(kerasinit, name), kwargs, shape)
    if theirs[0] == "ok":
        if ours[0] == "raised":  # Keras draws from these; kerasinit may refuse a nonsense *value*, never a type
            assert isinstance(ours[1], ValueError) and "must be" in str(ours[1]), ours[1]
            pytest.skip(f"kerasinit refuses a value Keras accepts: {ours[1]}")
        np.testing.assert_array_equal(ours[1], theirs[1])
    else:
        assert ours[0] == "raised", f"Keras raises {theirs[1]!r}; kerasinit accepted"
        assert type(ours[1]) is type(theirs[1]), (ours[1], theirs[1])
        assert re.match(re.escape(str(theirs[1])), str(ours[1])), (str(ours[1]), str(theirs[1]))


@pytest.mark.parametrize("name, kwargs, exc, message", KERAS_REFUSES, ids=[c[0] + "-" + next(iter(c[1])) for c in KERAS_REFUSES])
def test_keras_wording_comes_first(name, kwargs, exc, message):
    with pytest.raises(exc, match=re.escape(message)):
        getattr(keras.initializers, name)(**kwargs)
    with pytest.raises(exc, match="^" + re.escape(message) + r".*\[kerasinit: .*argument `" + next(iter(kwargs))):
        getattr(kerasinit, name)(**kwargs)


@pytest.mark.parametrize("value", [np.array([1.0, 2.0, 3.0]), [1.0, 2.0, 3.0], np.float32(2.5), 3])
def test_constant_takes_arrays_and_round_trips_them_like_keras(value):
    ours, theirs = kerasinit.Constant(value=value), keras.initializers.Constant(value=value)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours((2, 3))), keras.ops.convert_to_numpy(theirs((2, 3))))
    assert ours.get_config() == theirs.get_config()  # e.g. {"class_name": "__numpy__", ...} for arrays
    again = kerasinit.deserialize(kerasinit.serialize(ours))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again((2, 3))), keras.ops.convert_to_numpy(ours((2, 3))))
    record = ours.describe((2, 3))
    assert record.mean == pytest.approx(float(np.mean(np.broadcast_to(np.asarray(value, "float64"), (2, 3)))))


# ----------------------------------------------------------------------------- calls and get()


def _raised_by_keras_itself(exc: BaseException) -> bool:
    """Whether a ``raise`` statement of Keras's initializer code raised ``exc`` (not an unpacking,
    backend or Python error on the way)."""
    import linecache

    tb, where, line = exc.__traceback__, "", ""
    while tb is not None:
        where, line = tb.tb_frame.f_code.co_filename, linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return "keras/src/initializers/" in where.replace("\\", "/") and line.strip().startswith("raise ")


CALL_SHAPES = [(3,), (), (2, 3, 4), (0, 3), (3, 0), (2, 2, 2, 2)]


def _call_cases() -> list:
    return [pytest.param(name, shape, id=f"{name}-{'x'.join(map(str, shape)) or 'scalar'}")
            for name in KERAS_CLASSES for shape in CALL_SHAPES]


@pytest.mark.parametrize("name, shape", _call_cases())
def test_mirror_calls_accept_and_raise_what_keras_does(name, shape):
    params = inspect.signature(getattr(keras.initializers, name).__init__).parameters
    kwargs = {"seed": 3} if "seed" in params else {}
    theirs = _outcome(getattr(keras.initializers, name), kwargs, shape)
    ours = _outcome(getattr(kerasinit, name), kwargs, shape)
    if theirs[0] == "ok" and theirs[1].shape != shape:  # e.g. Keras's STFT on 3 channels: a (2, 1, 4) tensor
        assert ours[0] == "raised" and isinstance(ours[1], ValueError) and "shape" in str(ours[1]), ours
    elif theirs[0] == "ok":
        assert ours[0] == "ok", f"Keras draws a {shape} tensor; kerasinit raised {ours[1]!r}"
        np.testing.assert_array_equal(ours[1], theirs[1])
    elif _raised_by_keras_itself(theirs[1]):  # Keras's own check: its type and wording come first
        assert ours[0] == "raised" and type(ours[1]) is type(theirs[1]), (ours, theirs)
        assert str(ours[1]).startswith(str(theirs[1])), (str(ours[1]), str(theirs[1]))
    else:  # Keras fails on the way (unpacking, a backend op): kerasinit refuses with its own clear error
        assert ours[0] == "raised" and isinstance(ours[1], ValueError | TypeError), (ours, theirs)


def _callable_outcome(get, identifier):
    try:
        init = get(identifier)
        out = init((2, 2)) if callable(init) else init
    except Exception as exc:  # noqa: BLE001 - the comparison is over whatever Keras does
        return "raised", exc
    return "ok", np.asarray(keras.ops.convert_to_numpy(out)) if out is not None else None


@keras.saving.register_keras_serializable(package="compat_test")
class _UsersOwn(keras.initializers.Initializer):
    """An initializer registered with Keras by user code (not kerasinit's)."""

    def __call__(self, shape, dtype=None):
        return keras.ops.full(shape, 7.0, dtype=dtype)


GET_IDENTIFIERS = {
    "None": None, "name": "ones", "class-name": "Ones", "config": {"class_name": "Ones", "config": {}},
    "array": np.full((2, 2), 3.0, "float32"), "numpy-scalar": np.float32(2.0), "list": [[1.0, 2.0], [3.0, 4.0]],
    "callable": lambda shape, dtype=None: keras.ops.zeros(shape, dtype), "users-registered": "compat_test>_UsersOwn",
    "typo": "glorot_unifrom", "unknown": "no_such_initializer", "int": 5, "float": 1.5, "object": object(),
}


@pytest.mark.parametrize("identifier", list(GET_IDENTIFIERS.values()), ids=list(GET_IDENTIFIERS))
def test_get_accepts_and_raises_what_keras_get_does(identifier):
    theirs = _callable_outcome(keras.initializers.get, identifier)
    ours = _callable_outcome(kerasinit.get, identifier)
    if theirs[0] == "ok":
        assert ours[0] == "ok", f"keras.initializers.get accepts {identifier!r}; kerasinit.get raised {ours[1]!r}"
        np.testing.assert_array_equal(ours[1], theirs[1])
    else:
        assert ours[0] == "raised", f"Keras raises {theirs[1]!r}; kerasinit accepted"
        assert type(ours[1]) is type(theirs[1]), (ours[1], theirs[1])
        assert str(ours[1]).startswith(str(theirs[1])), (str(ours[1]), str(theirs[1]))


def test_get_keeps_its_own_detail_after_keras_wording():
    with pytest.raises(ValueError, match=r"^Could not interpret initializer identifier: glorot_unifrom .*Did you mean 'glorot_uniform'"):
        kerasinit.get("glorot_unifrom")
    assert isinstance(kerasinit.get("glorot_uniform"), kerasinit.GlorotUniform)  # Keras's names still give mirrors
