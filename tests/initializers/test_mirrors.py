"""Mirrors of the Keras catalogue: same arguments, configs and bit-identical draws (SPEC §2.1)."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest
from conftest import example, to_np

import kerasinit
from kerasinit.initializers import KERAS_MIRRORS

SHAPES = [(7, 5), (3, 3, 4, 6), (11,), (16, 1, 9), (4, 4)]
MIRRORED = [getattr(kerasinit, n) for n in KERAS_MIRRORS]


def _keras_public_initializers() -> set[str]:
    out = set()
    for name in dir(keras.initializers):
        obj = getattr(keras.initializers, name)
        if inspect.isclass(obj) and issubclass(obj, keras.initializers.Initializer) and obj is not keras.initializers.Initializer:
            out.add(obj.__name__)
    return out


def test_every_public_keras_initializer_is_mirrored():
    assert _keras_public_initializers() == set(KERAS_MIRRORS)


@pytest.mark.parametrize("cls", MIRRORED, ids=lambda c: c.__name__)
def test_mirror_subclasses_the_keras_builtin(cls):
    keras_cls = getattr(keras.initializers, cls.__name__)
    assert issubclass(cls, keras_cls)
    ours = inspect.signature(cls.__init__).parameters
    theirs = inspect.signature(keras_cls.__init__).parameters
    for name, param in theirs.items():  # same arguments, same defaults (ours may add keyword args)
        assert name in ours, name
        assert ours[name].default == param.default, name


@pytest.mark.parametrize("cls", MIRRORED, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bit_identical_draws(cls, dtype):
    from conftest import supports

    keras_cls = getattr(keras.initializers, cls.__name__)
    checked = 0
    for shape in SHAPES:
        if not supports(cls, shape):
            continue
        for seed in (0, 7, 123456):
            kwargs = {"seed": seed} if cls.is_random else {}
            a = to_np(cls(**kwargs)(shape, dtype=dtype))
            b = to_np(keras_cls(**kwargs)(shape, dtype=dtype))
            assert a.dtype == b.dtype == np.dtype(dtype)
            assert a.shape == shape
            np.testing.assert_array_equal(a, b)
            checked += 1
            if not cls.is_random:
                break
    assert checked > 0


@pytest.mark.parametrize("cls", MIRRORED, ids=lambda c: c.__name__)
def test_default_config_equals_keras(cls):
    keras_cls = getattr(keras.initializers, cls.__name__)
    kwargs = {"seed": 3} if cls.is_random else {}
    ours, theirs = cls(**kwargs).get_config(), keras_cls(**kwargs).get_config()
    if cls.__name__ == "Identity":  # Keras 3.15 drops `gain`; we keep it (SPEC §2.1)
        assert ours == {"gain": 1.0} and theirs == {}
    else:
        assert ours == theirs


def test_identity_keeps_gain_unlike_keras():
    restored = kerasinit.Identity.from_config(kerasinit.Identity(gain=2.5).get_config())
    np.testing.assert_array_equal(to_np(restored((3, 3))), 2.5 * np.eye(3, dtype="float32"))
    keras_restored = keras.initializers.Identity.from_config(keras.initializers.Identity(gain=2.5).get_config())
    assert keras_restored.gain == 1.0  # the Keras behaviour this mirror fixes


def test_variance_scaling_family_is_keras_variance_scaling():
    vs = [c for c in kerasinit.CATALOGUE.values() if issubclass(c, kerasinit.VarianceScaling)]
    names = {c.__name__ for c in vs}
    assert {"GlorotUniform", "HeNormal", "XavierUniform", "KwonTanhUniform", "LeakyHeNormal", "PlainHeNormal"} <= names
    for c in vs:
        assert issubclass(c, keras.initializers.VarianceScaling), c


@pytest.mark.parametrize(
    "ours, keras_equivalent",
    [
        (kerasinit.KwonTanhUniform(seed=5), keras.initializers.VarianceScaling(16.0, "fan_avg", "uniform", seed=5)),
        (kerasinit.GlorotUniform(seed=5), keras.initializers.GlorotUniform(seed=5)),
        (kerasinit.LeakyHeNormal(0.2, seed=5), keras.initializers.VarianceScaling(2 / 1.04, "fan_in", "untruncated_normal", seed=5)),
    ],
    ids=["kwon_tanh", "glorot", "leaky_he"],
)
def test_einsum_dense_gives_axis_aware_fans(ours, keras_equivalent):
    """EinsumDense clones VarianceScaling initializers with input/output axes (SPEC §2.1)."""

    def kernel(init):
        layer = keras.layers.EinsumDense("abc,cde->abde", output_shape=(None, 6, 5), kernel_initializer=init)
        layer.build((None, 4, 3))
        return to_np(layer.kernel)

    k = kernel(ours)
    assert k.shape == (3, 6, 5)
    np.testing.assert_array_equal(k, kernel(keras_equivalent))


def test_multi_head_attention_accepts_kerasinit_initializers():
    layer = keras.layers.MultiHeadAttention(2, 4, kernel_initializer=kerasinit.XavierUniform(seed=1))
    x = np.ones((1, 3, 8), "float32")
    assert tuple(layer(x, x).shape) == (1, 3, 8)
    q = to_np(layer._query_dense.kernel)  # (8, 2, 4): fan_in 8 along the input axis
    assert np.abs(q).max() <= 1 / np.sqrt(8) + 1e-7


@pytest.mark.parametrize("cls", [c for c in kerasinit.CATALOGUE.values() if c.is_random], ids=lambda c: c.__name__)
def test_random_initializers_refuse_integer_dtypes(cls):
    with pytest.raises(TypeError, match="dtype"):
        cls(seed=1)(cls.example_shape, dtype="int32")


def test_constant_initializers_allow_integer_dtypes():
    assert to_np(kerasinit.Zeros()((2, 3), dtype="int32")).dtype == np.int32
    assert to_np(kerasinit.Constant(3)((2,), dtype="int64")).tolist() == [3, 3]


def test_no_attribute_set_lazily_in_call():
    for cls in kerasinit.CATALOGUE.values():
        init = example(cls)
        before = set(dir(init))
        init(cls.example_shape)
        assert set(dir(init)) == before, cls


@pytest.mark.parametrize("cls", list(kerasinit.CATALOGUE.values()), ids=lambda c: c.__name__)
def test_every_floating_dtype(cls):
    """float16, bfloat16 and float64 too (Keras's own Orthogonal fails on bfloat16; ours factors in float32)."""
    for dtype in ("float16", "bfloat16", "float64"):
        out = example(cls)(cls.example_shape, dtype=dtype)
        assert keras.backend.standardize_dtype(out.dtype) == dtype
        assert tuple(out.shape) == cls.example_shape
        assert np.all(np.isfinite(to_np(keras.ops.cast(out, "float32"))))
