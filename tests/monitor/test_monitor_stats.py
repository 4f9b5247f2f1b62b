"""Known-answer statistics: the monitor's numbers against NumPy on tiny models with fixed weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerasinit.monitor import VarianceMonitor
from kerasinit.monitor import stats as S

RNG = np.random.default_rng(0)


def _rows(monitor: VarianceMonitor, kind: str, step: int = 0) -> dict[str, dict]:
    return {r["layer"]: r for r in monitor.history if r["kind"] == kind and r["step"] == step}


def test_weight_stats_known_answer():
    w = np.array([[0.0, 1.0, -2.0], [3.0, 0.0, 4.0]], dtype="float32")
    s = S.weight_stats(w)
    assert s["mean"] == pytest.approx(1.0)
    assert s["var"] == pytest.approx(np.var(w))
    assert s["std"] == pytest.approx(np.std(w))
    assert (s["min"], s["max"]) == (-2.0, 4.0)
    assert s["zero_fraction"] == pytest.approx(2 / 6)


def test_dead_and_saturated_fractions_on_constructed_inputs():
    y = np.zeros((5, 4))
    y[:, 1] = 1.0  # always active
    y[2, 2] = 0.5  # active once
    # units 0 and 3 never fire -> half the units are dead
    assert S.dead_fraction(y) == 0.5
    assert S.activation_stats(y, "relu")["dead_fraction"] == 0.5
    assert S.activation_stats(y, "linear")["dead_fraction"] is None
    # conv-shaped output: a unit is dead only if <= 0 at every position of every example
    conv = np.zeros((2, 3, 3, 2))
    conv[1, 2, 0, 1] = 0.1
    assert S.dead_fraction(conv) == 0.5

    t = np.array([0.995, -0.999, 0.5, 0.0, -0.98, 0.9905])
    # tanh asymptotes +-1; within 1% of them: |y| >= 0.99
    assert S.activation_stats(t, "tanh")["saturated_fraction"] == pytest.approx(3 / 6)
    s = np.array([0.001, 0.009, 0.011, 0.5, 0.991, 0.989])
    assert S.activation_stats(s, "sigmoid")["saturated_fraction"] == pytest.approx(3 / 6)
    assert S.activation_stats(s, "relu")["saturated_fraction"] is None


def test_gradient_stats_rms_ratio():
    g = np.array([3.0, 4.0])
    w = np.array([1.0, -1.0])
    s = S.gradient_stats(g, w)
    assert s["norm"] == pytest.approx(5.0)
    assert s["grad_weight_rms_ratio"] == pytest.approx(np.sqrt(12.5) / 1.0)


def test_activation_name_of_layers():
    assert S.activation_name(keras.layers.Dense(2, activation="relu")) == "relu"
    assert S.activation_name(keras.layers.Activation("tanh")) == "tanh"
    assert S.activation_name(keras.layers.ReLU()) == "relu"
    assert S.activation_name(keras.layers.Flatten()) is None


def _fixed_model() -> keras.Model:
    inp = keras.Input((3,))
    h = keras.layers.Dense(4, activation="relu", name="hidden")(inp)
    t = keras.layers.Dense(4, activation="tanh", name="squash")(h)
    out = keras.layers.Dense(2, use_bias=False, name="head")(t)
    model = keras.Model(inp, out)
    w1 = np.array([[1.0, -1.0, 0.5, 0.0], [0.5, -1.0, -0.5, 1.0], [-0.5, -1.0, 1.0, 0.5]], dtype="float32")
    b1 = np.array([0.1, -0.1, 0.0, 0.2], dtype="float32")
    w2 = (RNG.standard_normal((4, 4)) * 3).astype("float32")  # large: saturates tanh
    b2 = np.zeros(4, dtype="float32")
    w3 = RNG.standard_normal((4, 2)).astype("float32")
    model.get_layer("hidden").set_weights([w1, b1])
    model.get_layer("squash").set_weights([w2, b2])
    model.get_layer("head").set_weights([w3])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    return model


def test_monitor_matches_numpy_on_fixed_weights():
    model = _fixed_model()
    x = np.abs(RNG.standard_normal((16, 3))).astype("float32")  # positive inputs: unit 1 of "hidden" is dead
    y = RNG.standard_normal((16, 2)).astype("float32")
    monitor = VarianceMonitor(probe=(x, y), track=("weights", "activations", "gradients", "output_gradients"), every_epoch=False)
    model.fit(x, y, epochs=1, batch_size=16, callbacks=[monitor], verbose=0)

    w1, b1 = model.get_layer("hidden").get_weights()
    w2, b2 = model.get_layer("squash").get_weights()
    (w3,) = model.get_layer("head").get_weights()
    h = np.maximum(x @ w1 + b1, 0)
    t = np.tanh(h @ w2 + b2)
    pred = t @ w3

    weights = _rows(monitor, "weights")
    assert weights["hidden"]["std"] == pytest.approx(np.std(w1), rel=1e-5)
    assert weights["hidden"]["zero_fraction"] == pytest.approx(np.mean(w1 == 0))

    acts = _rows(monitor, "activations")
    assert acts["hidden"]["mean"] == pytest.approx(np.mean(h), rel=1e-5)
    assert acts["hidden"]["var"] == pytest.approx(np.var(h), rel=1e-4)
    assert acts["hidden"]["p98_abs"] == pytest.approx(np.percentile(np.abs(h), 98), rel=1e-5)
    assert acts["hidden"]["dead_fraction"] == pytest.approx(np.mean(np.all(h <= 0, axis=0)))
    assert acts["hidden"]["dead_fraction"] >= 0.25
    assert acts["squash"]["saturated_fraction"] == pytest.approx(np.mean(np.abs(t) >= 0.99), abs=1e-6)
    assert acts["squash"]["saturated_fraction"] > 0
    assert acts["head"]["std"] == pytest.approx(np.std(pred), rel=1e-4)

    # MSE = mean over batch and outputs: dL/dpred = 2 (pred - y) / (N * 2); dL/dW3 = t^T dL/dpred
    d_pred = 2 * (pred - y) / pred.size
    d_w3 = t.T @ d_pred
    grads = _rows(monitor, "gradients")
    assert grads["head"]["norm"] == pytest.approx(np.linalg.norm(d_w3), rel=1e-4)
    assert grads["head"]["mean"] == pytest.approx(np.mean(d_w3), rel=1e-3, abs=1e-7)
    rms = lambda a: np.sqrt(np.mean(a**2))  # noqa: E731
    assert grads["head"]["grad_weight_rms_ratio"] == pytest.approx(rms(d_w3) / rms(w3), rel=1e-4)
    # back-propagated gradient w.r.t. the output of "squash": dL/dt = dL/dpred W3^T
    d_t = d_pred @ w3.T
    out_grads = _rows(monitor, "output_gradients")
    assert out_grads["squash"]["norm"] == pytest.approx(np.linalg.norm(d_t), rel=1e-4)
    assert out_grads["head"]["std"] == pytest.approx(np.std(d_pred), rel=1e-4)
    # dL/dW1 through tanh and relu
    d_pre2 = d_t * (1 - t**2)
    d_h = d_pre2 @ w2.T
    d_w1 = x.T @ (d_h * (x @ w1 + b1 > 0))
    assert grads["hidden"]["norm"] == pytest.approx(np.linalg.norm(d_w1), rel=1e-3)


def test_gradients_include_the_regularization_loss():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, use_bias=False, kernel_regularizer=keras.regularizers.L2(0.5), name="lin")])
    model.compile(keras.optimizers.SGD(0.0), "mse")
    x = RNG.standard_normal((8, 3)).astype("float32")
    y = RNG.standard_normal((8, 2)).astype("float32")
    monitor = VarianceMonitor(probe=(x, y), track="gradients", every_epoch=False)
    model.fit(x, y, epochs=1, batch_size=8, callbacks=[monitor], verbose=0)
    (w,) = model.get_layer("lin").get_weights()
    expected = x.T @ (2 * (x @ w - y) / y.size) + 2 * 0.5 * w  # d/dW [mse + 0.5 * sum(W^2)]
    (row,) = monitor.history.records
    assert row["norm"] == pytest.approx(np.linalg.norm(expected), rel=1e-4)
