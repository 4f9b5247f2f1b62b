"""``reinitialize`` on real architectures: attention fans, activations behind BatchNorm, embeddings, names.

- EinsumDense / MultiHeadAttention: Keras draws their kernels with axis-aware fans (fan_in = the
  contracted axes, fan_out = the produced ones); ``reinitialize`` must draw the same distribution
  (d = 64, 4 heads of 16: Glorot std √(2/(64+64)) = 0.125, not the conv-style 0.0395).
- ResNet50 (weights=None, 32x32): every Conv2D is followed by BatchNormalization then ReLU (through
  an Add for the last conv of each block): He normal (He et al. 2015), not Glorot.
- Embedding: re-drawn under ``"auto"`` from N(0, 1) (PyTorch's ``nn.Embedding`` default; unit-variance
  inputs, LeCun et al. 1998).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import to_np
from keras import layers

import kerasinit


def _attention_model(d: int = 64, heads: int = 4, key_dim: int = 16) -> keras.Model:
    x = keras.Input((8, d))
    y = layers.MultiHeadAttention(heads, key_dim, name="mha")(x, x)
    return keras.Model(x, y)


@pytest.mark.parametrize("policy", ["auto", "glorot_uniform"])
def test_attention_projections_get_kerass_axis_aware_fans(policy):
    model = _attention_model()
    mha = model.get_layer("mha")
    keras_std = {p: float(to_np(getattr(mha, f"_{p}_dense").kernel).std()) for p in ("query", "key", "value", "output")}
    report = kerasinit.reinitialize(model, policy=policy, seed=0)
    assert len(report) == 4 and set(report.initializer) == {"GlorotUniform"}
    expected = math.sqrt(2 / (64 + 64))  # q/k/v (64, 4, 16): fan_in 64, fan_out 64; output (4, 16, 64): 64, 64
    n = 64 * 64
    for part in ("query", "key", "value", "output"):
        w = to_np(getattr(mha, f"_{part}_dense").kernel)
        assert abs(w.std() - expected) < 5 * expected / math.sqrt(2 * n), (part, w.std())
        assert abs(w.std() - keras_std[part]) < 0.01, (part, w.std(), keras_std[part])  # Keras's own draw


def test_einsum_dense_with_an_activation_gets_he_with_its_contracted_fan_in():
    x = keras.Input((6, 32))  # kernel (32, 4, 12): fan_in 32 (contracted), not the conv-style 4·32
    y = layers.EinsumDense("abc,cde->abde", output_shape=(None, 4, 12), activation="relu", name="e")(x)
    model = keras.Model(x, y)
    report = kerasinit.reinitialize(model, seed=1)
    assert list(report.initializer) == ["HeNormal"]
    w = to_np(model.get_layer("e").kernel)
    assert abs(w.std() - math.sqrt(2 / 32)) < 0.1 * math.sqrt(2 / 32)  # conv-style fans: √(2/128)


def test_resnet50_auto_sees_the_relu_behind_batchnorm_and_add():
    model = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), classes=10)
    report = kerasinit.reinitialize(model, seed=0)
    convs = report[report["class"] == "Conv2D"]
    assert len(convs) == 53 and len(report) == 54
    assert set(convs.activation) == {"relu"} and set(convs.initializer) == {"HeNormal"}
    head = report.set_index("layer").loc["predictions"]
    assert head.activation == "softmax" and head.initializer == "GlorotUniform"
    # the draw itself: conv1 (7x7x3 -> 64) He normal std √(2/147)
    assert abs(to_np(model.get_layer("conv1_conv").kernel).std() - math.sqrt(2 / 147)) < 0.1 * math.sqrt(2 / 147)


def test_mobilenetv2_relu6_behind_batchnorm_and_linear_bottlenecks():
    model = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), alpha=0.35, classes=10)
    report = kerasinit.reinitialize(model, seed=0).set_index("layer")
    assert report.loc["Conv1", "activation"] == "relu" and report.loc["Conv1", "initializer"] == "HeNormal"
    assert report.loc["expanded_conv_depthwise", "initializer"] == "HeNormal"
    # the projection of an inverted residual block is linear (Sandler et al. 2018): Glorot
    assert report.loc["block_1_project", "activation"] == "linear"
    assert report.loc["block_1_project", "initializer"] == "GlorotUniform"


def test_dropout_and_pooling_are_looked_through_in_a_sequential_model():
    model = keras.Sequential([
        keras.Input((8, 8, 3)), layers.Conv2D(4, 3, name="c"), layers.BatchNormalization(), layers.MaxPooling2D(),
        layers.Dropout(0.1), layers.Activation("tanh"), layers.Flatten(), layers.Dense(5, name="d"),
        layers.LayerNormalization(), layers.ReLU(),
    ])
    report = kerasinit.reinitialize(model, seed=0).set_index("layer")
    assert report.loc["c", "activation"] == "tanh" and report.loc["d", "activation"] == "relu"


def test_embedding_is_redrawn_from_a_unit_normal_under_auto():
    tokens = keras.Input((12,), dtype="int32")
    h = layers.Embedding(500, 32, name="emb")(tokens)
    h = layers.LSTM(16, name="lstm")(h)
    model = keras.Model(tokens, layers.Dense(3, name="out")(h))
    before = to_np(model.get_layer("emb").embeddings).copy()
    report = kerasinit.reinitialize(model, seed=3).set_index(["layer", "weight"])
    assert report.loc[("emb", "embeddings"), "initializer"] == "RandomNormal"
    w = to_np(model.get_layer("emb").embeddings)
    assert not np.array_equal(w, before)
    assert abs(w.std() - 1.0) < 5 * math.sqrt(2 / w.size) and abs(w.mean()) < 5 / math.sqrt(w.size)
    # an explicit mapping still decides: Embedding named -> that initializer; absent -> untouched
    kept = to_np(model.get_layer("emb").embeddings).copy()
    only = kerasinit.reinitialize(model, policy={"out": "zeros"})
    assert list(only.layer) == ["out"] and np.array_equal(kept, to_np(model.get_layer("emb").embeddings))
    # ... and an LSTM is named by its own name; its cell's recurrent kernel is not redrawn unasked
    lstm = kerasinit.reinitialize(model, policy={"lstm": "lecun_normal"}, seed=0)
    assert list(zip(lstm.weight, lstm.initializer, strict=True)) == [("kernel", "LecunNormal"),
                                                                   ("recurrent_kernel", "Orthogonal")]


def test_unknown_policy_names_policies_and_initializers_close_matches_first():
    model = _attention_model(d=8, heads=2, key_dim=4)
    with pytest.raises(ValueError) as info:
        kerasinit.reinitialize(model, policy="fixupp")
    text = str(info.value)
    assert "Did you mean 'fixup'" in text, text
    assert "'t_fixup'" in text and "'auto'" in text and "'skipinit'" in text  # the policy names
    assert "glorot_uniform" in text and "he_normal" in text  # the initializer names
    assert text.index("'fixup'") < text.index("glorot_uniform")
    with pytest.raises(ValueError, match="Did you mean 'he_normal'"):
        kerasinit.reinitialize(model, policy="he_normall")


_BACKEND_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import keras, numpy as np
    from keras import layers
    import kerasinit
    x = keras.Input((8, 64))
    mha = layers.MultiHeadAttention(4, 16, name="mha")
    model = keras.Model(x, mha(x, x))
    kerasinit.reinitialize(model, seed=0)
    stds = {p: float(np.std(keras.ops.convert_to_numpy(getattr(mha, f"_{p}_dense").kernel)))
            for p in ("query", "key", "value", "output")}
    if sys.argv[1] == "real":  # PyTorch: fast enough for ResNet50 itself
        net = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), classes=10)
    else:  # JAX compiles every initializer per shape (~30 s for ResNet50): one ResNet bottleneck block
        x = keras.Input((8, 8, 16))
        h = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(8, 1)(x)))
        h = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same")(h)))
        h = layers.BatchNormalization()(layers.Conv2D(16, 1)(h))
        h = layers.ReLU()(layers.Add()([layers.BatchNormalization()(layers.Conv2D(16, 1)(x)), h]))
        net = keras.Model(x, layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(h)))
    report = kerasinit.reinitialize(net, seed=0)
    print(json.dumps({"backend": keras.backend.backend(), "stds": stds,
                      "he": int((report.initializer == "HeNormal").sum()), "rows": len(report)}))
    """
)


@pytest.mark.parametrize("backend, size, convs", [("jax", "small", 4), ("torch", "real", 53)])
def test_attention_fans_and_resnet_he_on_other_backends(backend, size, convs):
    import json

    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", _BACKEND_SCRIPT, size], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == backend and out["he"] == convs and out["rows"] == convs + 1
    for part, std in out["stds"].items():
        assert abs(std - 0.125) < 0.01, (part, std)
