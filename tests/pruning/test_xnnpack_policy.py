"""``policy="xnnpack"``: only the 1×1 convolutions of XNNPack's sparse subgraph are pruned (TFMOT's
``PruneForLatencyOnXNNPack``); models that break the subgraph rule are refused, naming the layer."""

from __future__ import annotations

import json
import warnings

import keras
import numpy as np
import pytest
from conftest import run_python

import kerasinit.pruning as P
from kerasinit.pruning.policy import POLICIES, PolicyWarning

L = keras.layers


def _mobilenet() -> keras.Model:
    return keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), alpha=0.35)


def _small(middle=None, end="gap") -> keras.Model:
    """ZeroPadding(1) + 3×3/2 stem, a depthwise and two 1×1 convolutions, the pooling, a classifier."""
    x = inp = keras.Input((16, 16, 3))
    x = L.ZeroPadding2D(1)(x)
    x = L.Conv2D(8, 3, strides=2, padding="valid", name="stem")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(6.0)(x)
    x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = L.Conv2D(16, 1, name="expand")(x)
    x = L.ReLU()(x)
    if middle is not None:
        x = middle(x)
    x = L.Conv2D(8, 1, name="project")(x)
    x = L.GlobalAveragePooling2D()(x) if end == "gap" else L.Flatten(name="flatten")(x)
    return keras.Model(inp, L.Dense(3, name="classifier")(x))


def test_mobilenet_v2_prunes_only_its_1x1_convolutions():
    model = _mobilenet()
    ones = {layer.name for layer in model.layers if isinstance(layer, L.Conv2D) and tuple(layer.kernel_size) == (1, 1)}
    before = {layer.name: keras.ops.convert_to_numpy(layer.kernel) for layer in model.layers
              if hasattr(layer, "kernel") and layer.name not in ones}
    with pytest.warns(PolicyWarning, match="'Conv1'.*padding='same'"):
        pruner = P.prune(model, 0.8, policy="xnnpack", block_size=(1, 4))
    assert {w.layer.name for w in pruner.weights} == ones and len(ones) == 34
    assert all(w.attr == "kernel" for w in pruner.weights)
    assert abs(pruner.sparsity - 0.8) < 1e-3
    assert any("Conv1" in n for n in pruner.policy_notes) and any("block_1_depthwise" in n for n in pruner.policy_notes)
    for name, value in before.items():  # the stem, the depthwise convolutions and the classifier stay dense
        assert np.array_equal(keras.ops.convert_to_numpy(model.get_layer(name).kernel), value), name


def test_a_model_that_fits_the_rule_is_accepted_without_notes():
    with warnings.catch_warnings():
        warnings.simplefilter("error", PolicyWarning)
        pruner = P.prune(_small(), 0.75, policy="xnnpack")
    assert [w.name for w in pruner.weights] == ["expand/kernel", "project/kernel"] and pruner.policy_notes == []


def test_models_breaking_the_rule_are_refused_naming_the_layer():
    dense_first = keras.Sequential([keras.Input((32,)), L.Dense(8, name="dense_in"), L.Dense(2)])
    with pytest.raises(ValueError, match="'dense_in' \\(Dense\\) is the first layer with weights.*not a Conv2D"):
        P.prune(dense_first, 0.8, policy="xnnpack")
    with pytest.raises(ValueError, match="'pool' \\(MaxPooling2D\\).*not an operation"):
        P.prune(_small(middle=L.MaxPooling2D(name="pool", padding="same", pool_size=1)), 0.8, policy="xnnpack")
    with pytest.raises(ValueError, match="'mid' \\(Conv2D\\).*kernel \\(3, 3\\).*1×1 Conv2D only"):
        P.prune(_small(middle=L.Conv2D(16, 3, padding="same", name="mid")), 0.8, policy="xnnpack")
    with pytest.raises(ValueError, match="'classifier' \\(Dense\\).*not an operation|'flatten' \\(Flatten\\)"):
        P.prune(_small(end="flatten"), 0.8, policy="xnnpack")
    x = inp = keras.Input((16, 16, 3))
    x = L.Conv2D(8, 5, strides=2, name="stem5")(x)
    with pytest.raises(ValueError, match="'stem5'.*kernel \\(5, 5\\)"):
        P.prune(keras.Model(inp, L.GlobalAveragePooling2D()(L.Conv2D(4, 1)(x))), 0.8, policy="xnnpack")

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.c = L.Conv2D(4, 1)

        def call(self, x):
            return self.c(x)

    sub = Sub()
    sub(np.zeros((1, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match="subclassed"):
        P.prune(sub, 0.8, policy="xnnpack")
    with pytest.raises(ValueError, match="argument `policy` must be None, one of \\['xnnpack'\\]"):
        P.prune(_small(), 0.8, policy="xnnpak")
    with pytest.raises(ValueError, match="does not prune \\['dw/kernel'\\]"):
        P.prune(_small(), 0.8, policy="xnnpack", layers=["dw", "expand"])


def test_low_sparsity_is_said_out_loud_and_every_entry_point_takes_the_policy():
    with pytest.warns(PolicyWarning, match="below 2/3"):
        pruner = P.prune(_small(), 0.5, policy="xnnpack")
    assert any("2/3" in n for n in pruner.policy_notes)
    at_init = P.prune_at_init(_small(), 0.8, "magnitude", policy="xnnpack", block_size=(1, 4))
    assert [w.name for w in at_init.weights] == ["expand/kernel", "project/kernel"]
    assert at_init.policy is not None and at_init.policy.name == "xnnpack"
    model = _small()
    model.compile("sgd", "mse")
    cb = P.PruningCallback(P.ConstantSparsity(0.8, 0, frequency=1), policy="xnnpack", block_size=(1, 4))
    model.fit(np.ones((4, 16, 16, 3), "float32"), np.zeros((4, 3), "float32"), epochs=1, verbose=0, callbacks=[cb])
    assert [w.name for w in cb.pruner.weights] == ["expand/kernel", "project/kernel"]
    assert set(cb.pruner.get_masks()) == {"expand/kernel", "project/kernel"}
    assert "xnnpack" in POLICIES


TFMOT = """
import json, numpy as np
import kerasinit.pruning as P
from kerasinit.pruning import tfmot as B
import tf_keras as k
L = k.layers
def small(middle=None):
    x = inp = k.Input((16, 16, 3))
    x = L.ZeroPadding2D(1)(x)
    x = L.Conv2D(8, 3, strides=2, padding="valid", name="stem")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(6.0)(x)
    x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = L.Conv2D(16, 1, name="expand")(x)
    x = L.ReLU()(x)
    if middle is not None:
        x = middle(x)
    x = L.Conv2D(8, 1, name="project")(x)
    x = L.GlobalAveragePooling2D()(x)
    return k.Model(inp, L.Dense(3, name="classifier")(x))
out = {}
pm = B.prune_low_magnitude(small(), P.ConstantSparsity(0.8, 0), policy="xnnpack")
out["wrapped"] = sorted(l.layer.name for l in pm.layers if hasattr(l, "pruning_vars"))
try:
    B.prune_low_magnitude(small(L.MaxPooling2D(pool_size=1, name="pool")), P.ConstantSparsity(0.8, 0), policy="xnnpack")
    out["refused"] = None
except ValueError as e:
    out["refused"] = str(e)
print(json.dumps(out))
"""


def test_selection_and_refusal_agree_with_tfmot():
    out = json.loads(run_python(TFMOT).strip().splitlines()[-1])
    native = P.Pruner(_small(), policy="xnnpack")
    assert out["wrapped"] == sorted(w.layer.name for w in native.weights) == ["expand", "project"]
    assert out["refused"] is not None and "MaxPooling2D" in out["refused"]  # TFMOT refuses it too
