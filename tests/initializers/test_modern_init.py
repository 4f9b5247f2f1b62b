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


# --------------------------------------------------------------------------- mimetic initializer pair
def test_mimetic_pair_products_are_the_papers_targets():
    """Trockman & Kolter 2023: per head, W_q W_kᵀ = rank-k part of 0.7 Z + 0.7 I and W_v W_o of 0.4 Z − 0.4 I."""
    d, heads = 32, 2
    inits = kerasinit.mimetic_initializers(seed=5)
    assert [inits[p].seed for p in ("query", "key", "value", "output")] == [5, 5, 6, 6]
    q, k = to_np(inits["query"]((d, heads, d))), to_np(inits["key"]((d, heads, d)))  # full rank: k = d
    v, o = to_np(inits["value"]((d, heads, d))), to_np(inits["output"]((heads, d, d)))
    z_qk = to_np(keras.random.normal((heads, d, d), stddev=d**-0.5, seed=5))
    z_vo = to_np(keras.random.normal((heads, d, d), stddev=d**-0.5, seed=6))
    for h in range(heads):
        np.testing.assert_allclose(q[:, h] @ k[:, h].T, 0.7 * z_qk[h] + 0.7 * np.eye(d), atol=2e-5)
        np.testing.assert_allclose(v[:, h] @ o[h], 0.4 * z_vo[h] - 0.4 * np.eye(d), atol=2e-5)
    # low rank (k = 8 < d = 32): the product is the best rank-8 approximation (Eckart-Young) of the target
    q8, k8 = to_np(inits["query"]((d, 4, 8))), to_np(inits["key"]((d, 4, 8)))
    z4 = to_np(keras.random.normal((4, d, d), stddev=d**-0.5, seed=5)).astype("float64")
    for h in range(4):
        target = 0.7 * z4[h] + 0.7 * np.eye(d)
        u, s, vt = np.linalg.svd(target)
        np.testing.assert_allclose(q8[:, h] @ k8[:, h].T, (u[:, :8] * s[:8]) @ vt[:8], atol=2e-5)
        assert np.trace(q8[:, h] @ k8[:, h].T) > 0  # identity-like: queries attend to keys like themselves
    # Dense kernels are one head; k > d pads with zero columns and stays exact
    qd, kd = to_np(inits["query"]((6, 10))), to_np(inits["key"]((6, 10)))
    z6 = to_np(keras.random.normal((1, 6, 6), stddev=6**-0.5, seed=5))[0]
    np.testing.assert_allclose(qd @ kd.T, 0.7 * z6 + 0.7 * np.eye(6), atol=2e-5)
    assert not qd[:, 6:].any()


def test_mimetic_initializers_are_deterministic_and_serializable():
    a = kerasinit.MimeticValueOutput("output", alpha=0.3, beta=0.5, seed=11)
    assert np.array_equal(to_np(a((2, 8, 16))), to_np(a((2, 8, 16))))  # two calls
    assert np.array_equal(to_np(a((2, 8, 16))), to_np(kerasinit.MimeticValueOutput("output", 0.3, 0.5, seed=11)((2, 8, 16))))
    assert not np.array_equal(to_np(a((2, 8, 16))), to_np(kerasinit.MimeticValueOutput("output", 0.3, 0.5, seed=12)((2, 8, 16))))
    config = a.get_config()
    assert config == {"part": "output", "alpha": 0.3, "beta": 0.5, "seed": 11}
    clone = kerasinit.MimeticValueOutput.from_config(config)
    np.testing.assert_array_equal(to_np(clone((2, 8, 16))), to_np(a((2, 8, 16))))
    saved = keras.initializers.serialize(a)
    assert saved["registered_name"] == "kerasinit>MimeticValueOutput" and saved["module"] == "kerasinit"
    assert type(keras.initializers.deserialize(saved)) is kerasinit.MimeticValueOutput
    for name, cls in (("mimetic_query_key", kerasinit.MimeticQueryKey), ("mimetic_qk", kerasinit.MimeticQueryKey),
                      ("kerasinit>MimeticValueOutput", kerasinit.MimeticValueOutput), ("mimetic_vo", kerasinit.MimeticValueOutput)):
        assert type(keras.initializers.get(name)) is cls and type(kerasinit.get(name)) is cls
    assert kerasinit.get("mimetic_query_key").part == "query" and kerasinit.get("mimetic_vo").part == "value"
    assert "MimeticQueryKey" not in kerasinit.CATALOGUE  # structured halves: not i.i.d. draws for any shape
    # in a layer (a Dense kernel is one head), saved and loaded with the model
    x = keras.Input((8,))
    model = keras.Model(x, layers.Dense(4, kernel_initializer=kerasinit.MimeticQueryKey("key", seed=1), name="k")(x))
    clone = keras.Model.from_config(model.get_config())
    np.testing.assert_array_equal(to_np(clone.get_layer("k").kernel), to_np(model.get_layer("k").kernel))
    for dtype in ("float16", "bfloat16", "float64"):
        assert keras.backend.standardize_dtype(a((2, 8, 16), dtype=dtype).dtype) == dtype
    d = kerasinit.describe(kerasinit.MimeticQueryKey(seed=0), (32, 1, 32))
    w = to_np(kerasinit.MimeticQueryKey(seed=0)((32, 1, 32)))
    assert (d.fan_in, d.fan_out, d.mean) == (32, 32, 0.0) and d.std == pytest.approx(w.std(), rel=0.1)


def test_mimetic_initializers_reject_bad_arguments():
    with pytest.raises(ValueError, match="`part` must be one of \\['query', 'key'\\]"):
        kerasinit.MimeticQueryKey("value")
    with pytest.raises(ValueError, match="`beta` must be >= 0"):
        kerasinit.MimeticValueOutput(beta=-1.0)
    with pytest.raises(TypeError, match="`alpha` must be a real number"):
        kerasinit.MimeticQueryKey(alpha="big")
    with pytest.raises(TypeError, match="`seed`"):
        kerasinit.MimeticQueryKey(seed=1.5)
    with pytest.raises(ValueError, match="`shape` must be a MultiHeadAttention output kernel"):
        kerasinit.MimeticValueOutput("output", seed=0)((3, 3, 4, 8))
    with pytest.raises(TypeError, match="dtype"):
        kerasinit.MimeticQueryKey(seed=0)((8, 8), dtype="int32")
    with pytest.raises(TypeError, match="`seed` must be None or an int"):
        kerasinit.mimetic_initializers(seed="0")


def test_mimetic_policy_assigns_the_initializers_draws():
    """One implementation: reinitialize(policy="mimetic") writes exactly what the initializer pair draws."""
    x = keras.Input((5, 16))
    a = layers.MultiHeadAttention(2, 8, name="a")
    b = layers.MultiHeadAttention(4, 4, value_dim=6, name="b")
    model = keras.Model(x, b(a(x, x), a(x, x)))
    report = kerasinit.reinitialize(model, policy="mimetic", seed=10)
    for i, mha in enumerate((a, b)):
        inits = kerasinit.mimetic_initializers(10 + 2 * i)
        for part in ("query", "key", "value", "output"):
            kernel = getattr(mha, f"_{part}_dense").kernel
            np.testing.assert_array_equal(to_np(kernel), to_np(inits[part](tuple(kernel.shape))))
            assert not to_np(getattr(mha, f"_{part}_dense").bias).any()
    assert report.initializer.iloc[0] == "MimeticQueryKey('query', seed=10)"
    v, o = to_np(b._value_dense.kernel), to_np(b._output_dense.kernel)
    assert all(np.trace(v[:, h] @ o[h]) < 0 for h in range(4))  # W_v W_o ≈ −β I: negative trace per head
