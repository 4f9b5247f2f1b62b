"""kerasinit.layers: the one table of a layer's weights, and register_prunable (pruned, monitored, reinitialized)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import to_np

import kerasinit
from kerasinit.layers import (
    DEPTHWISE,
    EMBEDDING,
    KERNEL,
    POINTWISE,
    RECURRENT,
    attention_projections,
    layer_weights,
    main_weight,
    register_prunable,
)
from kerasinit.monitor import VarianceMonitor, kernel_of
from kerasinit.pruning import prune, select


def _roles(layer):
    return [(w.attr, w.role, w.prunable) for w in layer_weights(layer)]


def test_the_table_for_keras_layers():
    L = keras.layers
    cases = {
        L.Dense(3): (4,), L.Conv2D(2, 3): (5, 5, 2), L.EinsumDense("ab,bc->ac", output_shape=3): (4,),
    }
    for layer, shape in cases.items():
        layer.build((None, *shape))
        assert _roles(layer) == [("kernel", KERNEL, True)], layer
    depthwise = L.DepthwiseConv2D(3)
    depthwise.build((None, 5, 5, 2))
    assert _roles(depthwise) == [("kernel", DEPTHWISE, True)]
    separable = L.SeparableConv2D(4, 3)
    separable.build((None, 5, 5, 2))
    assert _roles(separable) == [("depthwise_kernel", DEPTHWISE, True), ("pointwise_kernel", POINTWISE, True)]
    embedding = L.Embedding(10, 4)
    embedding.build((None, 3))
    assert _roles(embedding) == [("embeddings", EMBEDDING, True)]
    cell = L.LSTMCell(3)
    cell.build((None, 2))
    assert _roles(cell) == [("kernel", KERNEL, True), ("recurrent_kernel", RECURRENT, True)]
    norm = L.BatchNormalization()
    norm.build((None, 3))
    assert _roles(norm) == []
    assert main_weight(separable).attr == "depthwise_kernel"  # the monitor's statistic describes the depthwise kernel
    assert main_weight(separable, (KERNEL, POINTWISE, DEPTHWISE)).attr == "pointwise_kernel"  # LSUV's output kernel
    assert layer_weights(keras.Sequential([keras.Input((2,)), L.Dense(1)])) == []  # models own no weights here


class Scaled(keras.layers.Layer):
    """A layer kerasinit does not know: y = x @ w + b, its matrix named `w`."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1], self.units), initializer="ones", name="w")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="b")

    def call(self, x):
        return keras.ops.matmul(x, self.w) + self.b


class Unknown(Scaled):
    """The same layer, never registered."""


def _model(layer_class):
    return keras.Sequential([keras.Input((6,)), layer_class(8, name="custom"), keras.layers.Dense(3, name="head")])


def test_an_unregistered_layer_is_neither_pruned_nor_seen():
    model = _model(Unknown)
    assert [w.name for w in select(model)] == ["head/kernel"]
    assert kernel_of(model.get_layer("custom")) is None


def test_a_registered_layer_is_pruned_monitored_and_reinitialized():
    assert register_prunable(Scaled, weights=("w",)) is Scaled
    model = _model(Scaled)
    custom = model.get_layer("custom")
    assert [(w.attr, w.role, w.prunable) for w in layer_weights(custom)] == [("w", KERNEL, True)]

    # pruned: its matrix is selected, masked and kept at exact zeros through training
    assert [w.name for w in select(model)] == ["custom/w", "head/kernel"]
    rng = np.random.default_rng(0)
    custom.w.assign(rng.normal(size=(6, 8)).astype("float32"))
    pruner = prune(model, 0.5, scope="layer")
    assert np.count_nonzero(to_np(custom.w)) == 24
    x, y = rng.normal(size=(64, 6)).astype("float32"), rng.integers(0, 3, 64)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    # monitored: weights and gradients of `w` recorded
    monitor = VarianceMonitor(probe=(x[:32], y[:32]), track=("weights", "gradients"))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])
    mask = pruner.get_masks()["custom/w"].astype(bool)
    assert np.all(to_np(custom.w)[~mask] == 0) and np.all(to_np(custom.w)[mask] != 0)
    rows = monitor.to_pandas()
    assert {"weights", "gradients"} <= set(rows[rows.layer == "custom"].kind)

    # reinitialized: "auto" redraws `w` (linear -> Glorot) and zeroes the bias
    report = kerasinit.reinitialize(model, seed=0)
    assert ("custom", "w") in set(zip(report.layer, report.weight, strict=True))
    assert np.std(to_np(custom.w)) == pytest.approx(np.sqrt(2 / 14), rel=0.3)


def test_register_prunable_refuses_bad_arguments():
    with pytest.raises(TypeError, match="keras.layers.Layer subclass"):
        register_prunable(int)
    with pytest.raises(ValueError, match="attribute names"):
        register_prunable(Scaled, weights=())
    with pytest.raises(ValueError, match="argument `roles`"):
        register_prunable(Scaled, weights=("w",), roles=("bias",))


def test_attention_projections_are_the_four_einsum_denses():
    mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    x = np.zeros((1, 3, 8), "float32")
    mha(x, x)
    parts = attention_projections(mha)
    assert list(parts) == ["query", "key", "value", "output"]
    assert all(isinstance(p, keras.layers.EinsumDense) for p in parts.values())
