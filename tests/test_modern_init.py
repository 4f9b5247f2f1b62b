"""Initialization for modern networks (issue 14): ZerO, residual-branch policies, Transformer schemes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import to_np
from keras import layers

import kerasinit
from kerasinit.initializers.zero import hadamard, zero_matrix


# --------------------------------------------------------------------------- ZerO
def test_zero_is_deterministic_whatever_the_global_seed():
    draws = []
    for seed in (0, 1, 2):
        keras.utils.set_random_seed(seed)
        draws.append(to_np(keras.layers.Dense(24, kernel_initializer="zero_init")(np.ones((1, 8), "float32"))))
        draws.append(to_np(kerasinit.ZerO()((3, 3, 8, 24))))
    for a, b in zip(draws[0::2], draws[2::2], strict=False):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(draws[1::2], draws[3::2], strict=False):
        np.testing.assert_array_equal(a, b)


def test_zero_matrix_cases_of_the_paper():
    np.testing.assert_array_equal(to_np(kerasinit.ZerO()((6, 6))), np.eye(6))  # equal dims: identity
    np.testing.assert_array_equal(to_np(kerasinit.ZerO()((6, 4))), np.eye(6, 4))  # shrinking: partial identity
    w = to_np(kerasinit.ZerO()((5, 12))).astype("float64")  # widening: scaled Hadamard, m = ceil(log2 12) = 4
    c = 2.0 ** (-(4 - 1) / 2)
    np.testing.assert_allclose(np.abs(w), c, rtol=1e-6)
    h = hadamard(16, 16)
    np.testing.assert_array_equal(h @ h.T, 16 * np.eye(16))  # a Hadamard matrix
    np.testing.assert_allclose(w, c * h[:5, :12], rtol=1e-6)
    np.testing.assert_allclose(w[:, 0], c, rtol=1e-6)  # the first Hadamard column is all ones
    # rows of a widening ZerO kernel are orthogonal when n_out is a power of two: the map is injective
    w = zero_matrix(4, 16)
    np.testing.assert_allclose(w @ w.T, 2.0 ** (-3) * 16 * np.eye(4), atol=1e-12)


def test_zero_conv_kernel_is_the_matrix_at_the_centre():
    w = to_np(kerasinit.ZerO()((3, 5, 4, 4)))
    np.testing.assert_array_equal(w[1, 2], np.eye(4))
    w[1, 2] = 0.0
    assert not w.any()
    x = np.random.default_rng(0).normal(size=(2, 7, 7, 4)).astype("float32")
    conv = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, kernel_initializer=kerasinit.ZerO())
    np.testing.assert_allclose(to_np(conv(x)), x, atol=1e-6)  # equal channels: the identity map
    d = kerasinit.describe(kerasinit.ZerO(), (3, 3, 2, 8))
    assert d.distribution == "deterministic" and d.bounds == (-0.5, 0.5)  # m = 3, c = 1/2


def test_zero_errors_and_names():
    assert type(kerasinit.get("zero_init")) is kerasinit.ZerO and type(kerasinit.get("zer_o")) is kerasinit.ZerO
    assert type(kerasinit.get("zero")) is kerasinit.Zeros  # Keras's alias keeps its meaning
    with pytest.raises(ValueError, match="rank 2 to 5"):
        kerasinit.ZerO()((4,))
    with pytest.raises(TypeError, match="dtype"):
        kerasinit.ZerO()((4, 4), dtype="int32")


def test_zero_trains_a_20_layer_mlp():
    """A 20-layer ReLU MLP initialized with ZerO (and zero biases) fits a small nonlinear task."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 8)).astype("float32")
    y = (np.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2] > 0).astype("int32")
    model = keras.Sequential([keras.Input((8,))] + [
        layers.Dense(32, activation="relu", kernel_initializer="zero_init") for _ in range(19)
    ] + [layers.Dense(2, kernel_initializer="zero_init")])
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    before = model.evaluate(x, y, verbose=0)[0]
    model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    loss, acc = model.evaluate(x, y, verbose=0)
    print(f"ZerO 20-layer MLP: loss {before:.3f} -> {loss:.3f}, accuracy {acc:.3f}")
    assert loss < 0.6 * before and acc > 0.8  # seed 0: 0.75 -> 0.25, accuracy 0.91
