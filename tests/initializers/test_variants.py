"""Tutorial (SPEC §2.2) and Kwon (SPEC §2.3) variants: known answers and equivalences."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from conftest import ALL_CLASSES, example, to_np

import kerasinit


def bound(init, shape):
    return kerasinit.describe(init, shape).bounds[1]


def std(init, shape):
    return kerasinit.describe(init, shape).std


def test_tutorial_numbers():
    assert bound("xavier_uniform", (10, 10)) == pytest.approx(0.316228, abs=5e-7)
    assert bound("xavier_uniform", (10, 99)) == pytest.approx(1 / math.sqrt(10))  # fan_out plays no part
    assert bound("normalized_xavier_uniform", (10, 20)) == pytest.approx(0.447214, abs=5e-7)
    assert std("plain_he_normal", (10, 10)) == pytest.approx(0.447214, abs=5e-7)
    assert kerasinit.describe("plain_he_normal", (10, 10)).bounds is None  # untruncated
    assert std("xavier_normal", (10, 30)) == pytest.approx(math.sqrt(2 / 40))
    assert std("alexnet", (300, 7)) == pytest.approx(0.01)
    a = 0.2
    assert std(kerasinit.LeakyHeNormal(a), (50, 3)) == pytest.approx(math.sqrt(2 / ((1 + a * a) * 50)))
    assert bound(kerasinit.LeakyHeUniform(a), (50, 3)) == pytest.approx(math.sqrt(6 / ((1 + a * a) * 50)))
    assert std(kerasinit.LeakyHeNormal(0.0), (50, 3)) == pytest.approx(std("he_normal", (50, 3)))


@pytest.mark.parametrize(
    "name, factor",
    [("logistic", 1.0), ("tanh", 4.0), ("relu", math.sqrt(2.0))],
)
def test_kwon_table(name, factor):
    n_in, n_out = 30, 70
    cls_u = getattr(kerasinit, f"Kwon{name.capitalize()}Uniform")
    cls_n = getattr(kerasinit, f"Kwon{name.capitalize()}Normal")
    r = factor * math.sqrt(6 / (n_in + n_out))
    s = factor * math.sqrt(2 / (n_in + n_out))
    assert bound(cls_u(), (n_in, n_out)) == pytest.approx(r)
    assert bound(kerasinit.KwonUniform(name), (n_in, n_out)) == pytest.approx(r)
    assert std(cls_n(), (n_in, n_out)) == pytest.approx(s)
    assert std(kerasinit.KwonNormal(name), (n_in, n_out)) == pytest.approx(s)
    assert kerasinit.describe(cls_n(), (n_in, n_out)).bounds is None  # normal, not truncated
    # `factor` overrides the table (e.g. the Theano tutorials' factor 4 on the logistic sigmoid)
    assert bound(cls_u(factor=4.0), (n_in, n_out)) == pytest.approx(4 * math.sqrt(6 / (n_in + n_out)))


def test_kwon_activation_aliases_and_docstrings():
    assert kerasinit.KwonUniform("sigmoid").scale == pytest.approx(1.0)
    assert kerasinit.KwonUniform("leaky_relu").scale == pytest.approx(2.0)
    import kerasinit.initializers.kwon as kwon

    doc = kwon.__doc__
    assert "Theano" in doc and "factor 4" in doc and "Glorot" in doc and "Table 11-1" in doc


@pytest.mark.parametrize(
    "ours, equivalent",
    [
        (kerasinit.NormalizedXavierUniform, lambda s: keras.initializers.GlorotUniform(seed=s)),
        (kerasinit.XavierUniform, lambda s: keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform", seed=s)),
        (kerasinit.XavierNormal, lambda s: keras.initializers.VarianceScaling(1.0, "fan_avg", "untruncated_normal", seed=s)),
        (kerasinit.PlainHeNormal, lambda s: keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal", seed=s)),
        (lambda seed: kerasinit.HeNormal(seed=seed, truncated=False), lambda s: kerasinit.PlainHeNormal(seed=s)),
        (kerasinit.AlexNetNormal, lambda s: keras.initializers.RandomNormal(0.0, 0.01, seed=s)),
        (kerasinit.KwonReluNormal, lambda s: keras.initializers.VarianceScaling(2.0, "fan_avg", "untruncated_normal", seed=s)),
    ],
)
def test_variants_draw_what_their_formula_says(ours, equivalent):
    for shape in [(13, 9), (3, 3, 8, 4)]:
        np.testing.assert_array_equal(to_np(ours(seed=11)(shape)), to_np(equivalent(11)(shape)))


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_config_round_trip(cls):
    init = example(cls)
    config = init.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config
    shape = cls.example_shape
    if cls is kerasinit.FromArray:  # by design the values are not in the config (they live in the weights)
        assert clone.is_placeholder and clone.verify(init.values) and config["shape"] == list(shape)
        return
    np.testing.assert_array_equal(to_np(init(shape)), to_np(clone(shape)))


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_docstring_and_formula(cls):
    assert cls.__doc__ and len(cls.__doc__) > 20
    assert cls.example().formula_text()
    if issubclass(cls, kerasinit.VarianceScaling) and cls is not kerasinit.VarianceScaling:
        assert cls.reference, f"{cls.__name__} should cite its paper"


@pytest.mark.parametrize(
    "activation, expected",
    [
        ("linear", 1.0), (None, 1.0), ("sigmoid", 1.0), ("tanh", 5 / 3), ("relu", math.sqrt(2)),
        ("selu", 0.75), ("leaky_relu", math.sqrt(2 / (1 + 0.2**2))), (keras.activations.tanh, 5 / 3),
        (keras.activations.relu, math.sqrt(2)), ("conv2d", 1.0),
    ],
)
def test_gain(activation, expected):
    assert kerasinit.gain(activation) == pytest.approx(expected)


def test_gain_leaky_param_and_errors():
    assert kerasinit.gain("leaky_relu", 0.01) == pytest.approx(math.sqrt(2 / 1.0001))
    with pytest.raises(ValueError, match="activation.*tanh"):
        kerasinit.gain("softplus")
    with pytest.raises(ValueError, match="param"):
        kerasinit.gain("relu", 0.1)
    with pytest.raises(TypeError, match="param"):
        kerasinit.gain("leaky_relu", "big")
    with pytest.raises(TypeError, match="activation"):
        kerasinit.gain(3)
