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
