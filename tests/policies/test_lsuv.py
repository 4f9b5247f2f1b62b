"""LSUV (Mishkin & Matas 2016): every layer's pre-activation std ends within tol of the target."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import to_np
from keras import layers

import kerasinit
from kerasinit.policies.lsuv import _linear


def preactivation_stds(model, batch):
    """One full forward pass per layer, independent of lsuv's own bookkeeping."""
    out = []
    for layer in model.layers:
        if not hasattr(layer, "kernel"):
            continue
        with _linear(layer):
            y = keras.Model(model.inputs[0], layer.output)(batch)
        out.append(float(np.std(to_np(y))))
    return np.array(out)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_lsuv_on_a_20_layer_mlp(activation):
    model = keras.Sequential([keras.Input((64,))] + [layers.Dense(64, activation=activation) for _ in range(20)])
    batch = np.random.default_rng(0).normal(size=(256, 64)).astype("float32")
    report = kerasinit.lsuv(model, batch, tol=0.1, seed=0, verbose=False)
    assert len(report) == 20 and report.converged.all()
    assert (report.iterations <= 10).all()
    stds = preactivation_stds(model, batch)
    assert np.all(np.abs(stds - 1.0) <= 0.1), stds
    # without LSUV, Glorot's tanh / ReLU stack drifts away from 1 with depth
    plain = keras.Sequential([keras.Input((64,))] + [layers.Dense(64, activation=activation) for _ in range(20)])
    assert np.abs(preactivation_stds(plain, batch)[-1] - 1.0) > 0.1


def test_lsuv_conv_net_skips_layers_without_kernels_with_a_note():
    model = keras.Sequential([
        keras.Input((8, 8, 3)), layers.Conv2D(8, 3, padding="same", activation="relu"), layers.Dropout(0.1),
        layers.Conv2D(8, 3, padding="same", activation="relu"), layers.Flatten(), layers.Dense(5),
    ])
    batch = np.random.default_rng(1).normal(size=(64, 8, 8, 3)).astype("float32")
    report = kerasinit.lsuv(model, batch, tol=0.05, target_std=0.5, seed=1, verbose=False)
    assert list(report["class"]) == ["Conv2D", "Dropout", "Conv2D", "Flatten", "Dense"]
    skipped = report[report.note.str.startswith("skipped")]
    assert list(skipped["class"]) == ["Dropout", "Flatten"] and (skipped.note == "skipped: no kernel").all()
    kept = report.dropna(subset=["final_std"])
    assert (np.abs(kept.final_std - 0.5) <= 0.05).all()
    assert np.all(np.abs(preactivation_stds(model, batch) - 0.5) <= 0.05)


def test_lsuv_bad_input():
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(3)

        def call(self, x):
            return self.d(x)

    sub = Sub()
    sub(np.ones((2, 4), "float32"))
    with pytest.raises(ValueError, match="Sequential.*functional"):
        kerasinit.lsuv(sub, np.ones((2, 4), "float32"), verbose=False)
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3)])
    with pytest.raises(ValueError, match="tol"):
        kerasinit.lsuv(model, np.ones((2, 4)), tol=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        kerasinit.lsuv(model, np.ones((2, 4)), max_iter=0)
    with pytest.raises(TypeError, match="model"):
        kerasinit.lsuv("model", np.ones((2, 4)))
