"""``recommend`` and ``reinitialize`` (SPEC §2.4): activation-aware re-drawing of whole models."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import pytest
from conftest import to_np
from keras import layers

import kerasinit


@pytest.mark.parametrize(
    "activation, cls",
    [
        ("sigmoid", kerasinit.GlorotUniform), ("tanh", kerasinit.GlorotUniform), ("softmax", kerasinit.GlorotUniform),
        (None, kerasinit.GlorotUniform), ("linear", kerasinit.GlorotUniform), ("relu", kerasinit.HeNormal),
        ("elu", kerasinit.HeNormal), ("gelu", kerasinit.HeNormal), ("swish", kerasinit.HeNormal),
        ("silu", kerasinit.HeNormal), (keras.activations.relu, kerasinit.HeNormal),
        ("leaky_relu", kerasinit.LeakyHeNormal), ("selu", kerasinit.LecunNormal),
    ],
)
def test_recommend(activation, cls):
    assert type(kerasinit.recommend(activation)) is cls


def test_recommend_unknown_warns_and_defaults():
    with pytest.warns(UserWarning, match="unknown activation 'wobble'.*Glorot uniform"):
        init = kerasinit.recommend("wobble")
    assert type(init) is kerasinit.GlorotUniform
    assert kerasinit.recommend("leaky_relu", negative_slope=0.1).negative_slope == 0.1


def _mlp() -> keras.Model:
    return keras.Sequential([
        keras.Input((256,)),
        layers.Dense(256, activation="tanh", name="t"),
        layers.Dense(256, activation="relu", name="r"),
        layers.Dense(256, name="lin_then_leaky"),
        layers.LeakyReLU(negative_slope=0.1),
        layers.Dense(256, activation="selu", name="s"),
        layers.Dense(10, activation="softmax", name="out"),
    ])


def test_reinitialize_auto_picks_by_activation_and_draws_the_right_scale():
    model = _mlp()
    for layer in model.layers:
        if hasattr(layer, "bias"):
            layer.bias.assign(np.ones(layer.bias.shape))
    report = kerasinit.reinitialize(model, seed=0)
    chosen = dict(zip(report.layer, report.initializer, strict=True))
    assert chosen == {"t": "GlorotUniform", "r": "HeNormal", "lin_then_leaky": "LeakyHeNormal",
                      "s": "LecunNormal", "out": "GlorotUniform"}
    assert report.set_index("layer").loc["lin_then_leaky", "activation"] == "leaky_relu"
    n = 256 * 256
    expected = {"t": math.sqrt(2 / 512), "r": math.sqrt(2 / 256), "lin_then_leaky": math.sqrt(2 / (1.01 * 256)),
                "s": math.sqrt(1 / 256)}
    for name, std in expected.items():
        w = to_np(model.get_layer(name).kernel)
        se = std * math.sqrt(2 / n)  # standard error of a sample std
        assert abs(w.std() - std) < 5 * se, (name, w.std(), std)
        assert not to_np(model.get_layer(name).bias).any()  # biases reset to zero
    again = _mlp()
    kerasinit.reinitialize(again, seed=0)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # same seed, same weights


@pytest.mark.parametrize("seed", [None, 5])
def test_equal_shaped_layers_get_different_weights(seed):
    model = keras.Sequential([keras.Input((32,))] + [layers.Dense(32, activation="relu") for _ in range(3)])
    kerasinit.reinitialize(model, policy=kerasinit.HeNormal(seed=1) if seed is None else "he_normal", seed=seed)
    k = [to_np(layer.kernel) for layer in model.layers]
    assert not np.array_equal(k[0], k[1]) and not np.array_equal(k[1], k[2])


class Block(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.d1 = layers.Dense(64, activation="relu")
        self.d2 = layers.Dense(64, activation="tanh")

    def call(self, x):
        return self.d2(self.d1(x))


def test_reinitialize_functional_subclassed_and_nested():
    inner = keras.Sequential([layers.Dense(64, activation="relu", name="inner_dense")], name="inner")
    x = keras.Input((64,))
    y = Block()(inner(x))
    y = layers.Conv1D(4, 3, activation="relu", name="conv")(layers.Reshape((64, 1))(y))
    model = keras.Model(x, y)
    before = [to_np(w).copy() for w in model.weights]
    report = kerasinit.reinitialize(model, policy="auto")
    assert len(report) == 4 and {"inner_dense", "conv"} <= set(report.layer)  # + the Block's two Dense
    assert sorted(zip(report.activation, report.initializer, strict=True)) == [
        ("relu", "HeNormal"), ("relu", "HeNormal"), ("relu", "HeNormal"), ("tanh", "GlorotUniform")]
    assert all(not np.array_equal(b, to_np(w)) for b, w in zip(before, model.weights, strict=True) if b.ndim > 1)


def test_reinitialize_mapping_policy_leaves_other_layers_alone():
    model = _mlp()
    untouched = to_np(model.get_layer("t").kernel).copy()
    report = kerasinit.reinitialize(model, policy={"r": "zeros", "Dense": "lecun_uniform", "out": kerasinit.Orthogonal()})
    assert dict(zip(report.layer, report.initializer, strict=True))["r"] == "Zeros"
    assert not to_np(model.get_layer("r").kernel).any()
    assert dict(zip(report.layer, report.initializer, strict=True))["t"] == "LecunUniform"  # by class name
    assert not np.array_equal(untouched, to_np(model.get_layer("t").kernel))
    only = kerasinit.reinitialize(_mlp(), policy={"out": "zeros"})
    assert list(only.layer) == ["out"]
    with pytest.raises(ValueError, match="unknown layers \\['nope'\\]"):
        kerasinit.reinitialize(_mlp(), policy={"nope": "zeros"})


def test_reinitialize_lstm_and_unknown_activation():
    def wobble(x):
        return keras.ops.tanh(x) * 1.5

    model = keras.Sequential([keras.Input((5, 8)), layers.LSTM(16, name="lstm"), layers.Dense(4, activation=wobble, name="w")])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = kerasinit.reinitialize(model, seed=1)
    assert any("layer 'w'" in str(w.message) and "wobble" in str(w.message) for w in caught)
    assert set(report.weight) == {"kernel", "recurrent_kernel"}
    cell = model.get_layer("lstm").cell
    r = to_np(cell.recurrent_kernel)  # (16, 64): orthonormal rows
    np.testing.assert_allclose(r @ r.T, np.eye(16), atol=1e-5)
    bias = to_np(cell.bias)
    assert (bias[16:32] == 1).all() and not bias[:16].any() and not bias[32:].any()  # forget gate keeps 1


def test_reinitialize_bad_input():
    with pytest.raises(TypeError, match="model"):
        kerasinit.reinitialize("model")
    with pytest.raises(ValueError, match="not built"):
        kerasinit.reinitialize(keras.Sequential([layers.Dense(3)]))
    with pytest.raises(ValueError, match="Unknown initializer"):
        kerasinit.reinitialize(_mlp(), policy="nope")
    with pytest.raises(TypeError, match="seed"):
        kerasinit.reinitialize(_mlp(), seed="x")
