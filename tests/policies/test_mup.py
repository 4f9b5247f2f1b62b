"""μP (Yang et al. 2021): layer kinds, variances, per-variable learning rates, and width transfer."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from conftest import to_np
from keras import layers

import kerasinit


def mlp(width: int, n_in: int = 16) -> keras.Sequential:
    return keras.Sequential([keras.Input((n_in,)), layers.Dense(width, activation="relu", name="inp"),
                             layers.Dense(width, activation="relu", name="hid"), layers.Dense(1, name="out")])


def test_plan_is_the_papers_table_relative_to_the_base_width():
    plan = kerasinit.mup.plan(mlp(512), base_width=64).set_index("layer")
    kernels = plan[~plan.kind.str.endswith("bias")]
    assert list(kernels.kind) == ["input", "hidden", "output"] and list(kernels.r) == [8.0, 8.0, 8.0]
    np.testing.assert_allclose(kernels.var_per_scale, [1 / 16, 1 / 512, 1 / (512 * 8)])
    np.testing.assert_allclose(kernels.lr_multiplier, [1.0, 1 / 8, 1 / 8])  # Adam: input 1, hidden and output 1/r
    sgd = kerasinit.mup.plan(mlp(512), base_width=64, optimizer="sgd")
    np.testing.assert_allclose(sgd.lr_multiplier, [8.0, 8.0, 1.0, 8.0, 1 / 8, 1.0])  # kernels and biases in order
    base = kerasinit.mup.plan(mlp(64), base_width=64)
    np.testing.assert_allclose(base.lr_multiplier, 1.0)  # at the base width μP is standard parametrization
    with pytest.raises(ValueError, match="optimizer"):
        kerasinit.mup.plan(mlp(64), 64, optimizer="rmsprop")
    with pytest.raises(ValueError, match="base_width"):
        kerasinit.mup.plan(mlp(64), 0)


def test_initialize_draws_the_mup_variances():
    model = mlp(512)
    table = kerasinit.mup.initialize(model, base_width=64, scale=2.0, seed=0).set_index("layer")
    kernels = table[~table.kind.str.endswith("bias")]
    for name, std in kernels["std"].items():
        assert std == pytest.approx(math.sqrt(2.0 * kernels.loc[name, "var_per_scale"]), rel=0.1), name
    assert not to_np(model.get_layer("hid").bias).any()


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_optimizer_multiplies_each_variables_learning_rate(name):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(32, 16)).astype("float32")
    y = np.ones((32, 1), "float32")
    deltas = {}
    for kind in ("plain", "mup"):
        model = mlp(128)
        model.set_weights([np.full(w.shape, 0.05, "float32") for w in model.get_weights()])
        opt = kerasinit.mup.optimizer(model, 32, name, learning_rate=1e-2) if kind == "mup" else (
            keras.optimizers.SGD(1e-2) if name == "sgd" else keras.optimizers.Adam(1e-2))
        model.compile(opt, "mse")
        before = [to_np(v) for v in model.trainable_variables]
        model.train_on_batch(x, y)
        deltas[kind] = [to_np(v) - b for v, b in zip(model.trainable_variables, before, strict=True)]
    plan = kerasinit.mup.plan(mlp(128), 32, "sgd" if name == "sgd" else "adam")
    for plain, mup, mult in zip(deltas["plain"], deltas["mup"], plan.lr_multiplier, strict=True):
        np.testing.assert_allclose(mup, mult * plain, rtol=1e-4, atol=1e-8)


def _best_lr_index(width: int, mode: str, lrs: list[float], x: np.ndarray, y: np.ndarray) -> tuple[int, list[float]]:
    """Index of the learning rate with the lowest final training loss (one compiled model per width)."""
    keras.utils.set_random_seed(0)
    model = mlp(width)
    if mode == "mup":
        kerasinit.mup.initialize(model, base_width=64, scale=2.0, seed=0)
        opt = kerasinit.mup.optimizer(model, 64, "adam", learning_rate=lrs[0])
    else:
        kerasinit.reinitialize(model, seed=0)
        opt = keras.optimizers.Adam(lrs[0])
    model.compile(opt, "mse")
    start = model.get_weights()
    losses = []
    for lr in lrs:
        model.set_weights(start)
        for v in opt.variables:  # a fresh optimizer without recompiling: zero moments and iterations
            v.assign(np.zeros(v.shape, v.dtype))
        opt.learning_rate = lr
        for i in range(0, len(x), 64):  # x, y: 20 epochs of data, tiled; 80 steps of 64
            model.train_on_batch(x[i : i + 64], y[i : i + 64])
        losses.append(float(np.mean((to_np(model(x[:256])) - y[:256]) ** 2)))  # final training loss
    return int(np.argmin(losses)), losses


def test_best_learning_rate_transfers_across_width_under_mup_but_not_standard():
    """Tensor Programs V, Fig. 1 in miniature: Adam on a 2-hidden-layer ReLU MLP, widths 64 and 512."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 16)).astype("float32")
    y = (np.tanh(x @ rng.normal(size=(16, 1)) / 4) + 0.1 * np.sin(3 * x[:, :1])).astype("float32")
    lrs = [2.0**k for k in range(-11, -5)]
    x, y = np.tile(x, (20, 1)), np.tile(y, (20, 1))  # 20 passes in one fit call: 80 steps of 64
    best = {(mode, w): _best_lr_index(w, mode, lrs, x, y) for mode in ("sp", "mup") for w in (64, 512)}
    for key, (i, losses) in best.items():
        print(key, f"best lr 2^{int(math.log2(lrs[i]))}", [f"{v:.2g}" for v in losses])
    assert abs(best[("mup", 64)][0] - best[("mup", 512)][0]) <= 1  # μP: stays within one grid step
    assert abs(best[("sp", 64)][0] - best[("sp", 512)][0]) >= 2  # standard parametrization: shifts


# --------------------------------------------------------------------------- MultiHeadAttention
VOCAB, LENGTH, HEADS = 32, 8, 4


def transformer_block(width: int, seed: int = 0) -> keras.Model:
    """Embedding (input layer), one attention and one MLP residual branch, mean pooling, readout."""
    keras.utils.set_random_seed(seed)
    tokens = keras.Input((LENGTH,), dtype="int32")
    h = layers.Embedding(VOCAB, width, name="emb")(tokens)
    h = layers.Add(name="att_add")([h, layers.MultiHeadAttention(HEADS, width // HEADS, name="mha")(h, h)])
    f = layers.Dense(width, name="ff_out")(layers.Dense(width, activation="relu", name="ff_in")(h))
    h = layers.Add(name="ff_add")([h, f])
    return keras.Model(tokens, layers.Dense(1, name="readout")(layers.GlobalAveragePooling1D()(h)))


def test_plan_treats_attention_projections_as_hidden_and_folds_the_logit_factor_into_the_query():
    model = transformer_block(256)  # r = 4; key_dim 64, base key_dim 16: c = sqrt(16/64) = 1/2
    assert kerasinit.mup.logit_factor(model.get_layer("mha"), 64) == pytest.approx(0.5)
    plan = kerasinit.mup.plan(model, 64).set_index("weight")
    kernels = plan[plan.kind == "hidden"]
    assert [w.split("/")[-2] for w in kernels.index] == ["query", "key", "value", "attention_output", "ff_in", "ff_out"]
    assert list(kernels.part)[:4] == ["query", "key", "value", "output"] and set(kernels.r) == {4.0}
    np.testing.assert_allclose(kernels.var_per_scale[:4], [0.25 / 256, 1 / 256, 1 / 256, 1 / 256])  # fan_in d; output H·dv
    np.testing.assert_allclose(kernels.lr_multiplier[:4], [0.5 / 4, 1 / 4, 1 / 4, 1 / 4])  # Adam: 1/r, query x c
    query_bias = plan[(plan.part == "query") & (plan.kind == "hidden bias")]
    assert query_bias.lr_multiplier.item() == pytest.approx(0.5)
    sgd = kerasinit.mup.plan(model, 64, "sgd").set_index("weight")
    np.testing.assert_allclose(sgd[sgd.kind == "hidden"].lr_multiplier[:4], [0.25, 1, 1, 1])  # SGD: 1, query x c^2
    # heads added at a fixed head width: 1/sqrt(d_head) is a constant, nothing to fold
    fixed = kerasinit.mup.plan(model, 64, base_key_dim=64)
    assert fixed[fixed.part == "query"].lr_multiplier.iloc[0] == pytest.approx(1 / 4)
    base = kerasinit.mup.plan(transformer_block(64), 64)
    np.testing.assert_allclose(base.lr_multiplier, 1.0)  # at the base width: standard parametrization
    x = keras.Input((LENGTH, 16))
    first = keras.Model(x, layers.Dense(1)(layers.MultiHeadAttention(2, 8, name="first")(x, x)))
    with pytest.raises(ValueError, match="MultiHeadAttention 'first' is the model's first weight layer"):
        kerasinit.mup.plan(first, 16)
    with pytest.raises(ValueError, match="base_key_dim"):
        kerasinit.mup.plan(model, 64, base_key_dim=0)


def test_initialize_and_optimizer_on_a_transformer_block():
    model = transformer_block(256)
    table = kerasinit.mup.initialize(model, 64, scale=1.0, seed=0).set_index("layer")
    mha = model.get_layer("mha")
    assert to_np(mha._query_dense.kernel).std() == pytest.approx(0.5 / math.sqrt(256), rel=0.05)
    assert to_np(mha._output_dense.kernel).std() == pytest.approx(1 / math.sqrt(256), rel=0.05)
    assert table.loc["mha/key"].iloc[0]["std"] == pytest.approx(1 / 16, rel=0.05)
    kerasinit.mup.initialize(model, 64, seed=0, zero_query=True)
    assert not to_np(mha._query_dense.kernel).any() and to_np(mha._key_dense.kernel).any()
    with pytest.raises(TypeError, match="zero_query"):
        kerasinit.mup.initialize(model, 64, zero_query="yes")
    opt = kerasinit.mup.optimizer(model, 64, "adam", 1e-3)
    plan = kerasinit.mup.plan(model, 64)
    assert opt.lr_multipliers == pytest.approx(dict(zip(plan.weight, plan.lr_multiplier, strict=True)))
    assert opt.lr_multipliers[mha._query_dense.kernel.path] == pytest.approx(0.125)


def _attention_coordinates(width: int, mode: str, steps: int = 5) -> dict[str, float]:
    """Mean |coordinate| of the attention output at init and its change after ``steps`` Adam steps
    (lr 1e-2, batch 64, a regression target), plus the change of the attention logits q·k/√d_k."""
    model = transformer_block(width)
    if mode == "sp":
        opt = keras.optimizers.Adam(1e-2)
    else:
        base_key_dim = width // HEADS if mode == "mup_no_logit_factor" else None
        kerasinit.mup.initialize(model, 64, seed=0, base_key_dim=base_key_dim)
        opt = kerasinit.mup.optimizer(model, 64, "adam", 1e-2, base_key_dim=base_key_dim)
    model.compile(opt, "mse")
    rng = np.random.default_rng(0)
    x = rng.integers(0, VOCAB, size=(64, LENGTH)).astype("int32")
    y = rng.normal(size=(64, 1)).astype("float32")
    mha = model.get_layer("mha")
    probe = keras.Model(model.input, [model.get_layer("emb").output, mha.output])

    def measure():
        h, a = (to_np(t) for t in probe(x))
        q = np.einsum("bld,dhk->bhlk", h, to_np(mha._query_dense.kernel)) + to_np(mha._query_dense.bias)[None, :, None]
        k = np.einsum("bld,dhk->bhlk", h, to_np(mha._key_dense.kernel)) + to_np(mha._key_dense.bias)[None, :, None]
        return a, np.einsum("bhlk,bhmk->bhlm", q, k) / math.sqrt(width // HEADS)  # Keras's logits

    a0, z0 = measure()
    for _ in range(steps):
        model.train_on_batch(x, y)
    a1, z1 = measure()
    return {"init": float(np.abs(a0).mean()), "delta": float(np.abs(a1 - a0).mean()),
            "logits_delta": float(np.abs(z1 - z0).mean())}


def test_attention_coordinates_stay_order_one_across_width_under_mup_but_grow_under_sp():
    """Tensor Programs V's coordinate check on a Transformer block, widths 64 and 512 (base 64).

    Measured (TensorFlow, seed 0), ratio width 512 / width 64: SP (Keras defaults) attention-output
    change 12.3x (JAX 4.3x, PyTorch 3.6x), logits change 13.9x (13.5x, 9.2x); μP 0.76x and 0.55x (JAX 0.67x/0.52x,
    PyTorch 0.73x/0.53x; init 0.85x); μP without the folded
    logit factor (base_key_dim = key_dim, i.e. Keras's 1/√d_head kept) 1.28x and 1.63x."""
    got = {(mode, w): _attention_coordinates(w, mode) for mode in ("sp", "mup", "mup_no_logit_factor") for w in (64, 512)}
    for key, v in got.items():
        print(key, {n: round(x, 4) for n, x in v.items()})
    ratio = {m: {n: got[(m, 512)][n] / got[(m, 64)][n] for n in ("init", "delta", "logits_delta")}
             for m in ("sp", "mup", "mup_no_logit_factor")}
    print(ratio)
    assert 0.5 <= ratio["mup"]["init"] <= 2 and 0.5 <= ratio["mup"]["delta"] <= 2  # μP: O(1) at init and after 5 steps
    assert ratio["sp"]["delta"] >= 2.5 and ratio["sp"]["logits_delta"] >= 4  # SP (Keras defaults, same Adam lr): both grow
    assert ratio["mup"]["logits_delta"] <= 1.2  # μP's 1/d_head logits (folded into the query): no growth
    assert ratio["mup_no_logit_factor"]["logits_delta"] >= 1.5 * ratio["mup"]["logits_delta"]  # 1/√d_head: grows
