"""LSUV (Mishkin & Matas 2016) on real architectures: nested backbones, vanished signals, skips with reasons.

- A transfer model (keras.applications MobileNetV2, alpha 0.35, 32x32, weights=None, nested in a
  functional model + a Dense head): LSUV recurses into the backbone, so every conv's
  pre-activation std ends within tol of 1 and the head sees a live signal.
- The same backbone frozen (``trainable=False``): LSUV leaves it alone (said in the report), its
  output has std ~1e-11 (BatchNormalization in inference mode with untrained moving statistics),
  and LSUV refuses to rescale the head by ~1e10: a warning, ``converged=False``, the kernel as it was.
- Embedding, MultiHeadAttention and LSTM are listed with the reason LSUV does not apply.
"""

from __future__ import annotations

import json
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
from kerasinit.policies.lsuv import _linear

BATCH = np.random.default_rng(0).normal(size=(32, 32, 32, 3)).astype("float32")


def _transfer(trainable: bool = True) -> keras.Model:
    keras.utils.set_random_seed(0)
    backbone = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), include_top=False, alpha=0.35,
                                              pooling="avg")
    backbone.trainable = trainable
    x = keras.Input((32, 32, 3))
    return keras.Model(x, layers.Dense(10, activation="softmax", name="head")(backbone(x)))


def test_lsuv_recurses_into_a_nested_backbone():
    model = _transfer()
    backbone = model.layers[1]
    report = kerasinit.lsuv(model, BATCH, seed=0, verbose=False)
    convs = report[report["class"].isin(["Conv2D", "DepthwiseConv2D"])]
    assert len(convs) == 52 and convs.layer.str.startswith(f"{backbone.name}/").all()
    assert convs.converged.all() and report.set_index("layer").loc["head", "converged"]
    # independent check: the pre-activation std of every backbone conv, one forward pass each
    probe = keras.Model(backbone.inputs[0], [layer.output for layer in backbone.layers if hasattr(layer, "kernel")])
    stds = [float(np.std(to_np(y))) for y in probe(BATCH, training=False)]
    assert len(stds) == 52 and max(abs(s - 1.0) for s in stds) <= 0.1, stds
    head = model.get_layer("head")
    with _linear(head):
        logits = keras.Model(model.inputs[0], head.output)(BATCH)
    assert abs(float(np.std(to_np(logits))) - 1.0) <= 0.1
    assert float(np.std(to_np(head.kernel))) < 10  # not 1e9


def test_lsuv_refuses_a_vanished_signal_and_leaves_frozen_layers_alone():
    model = _transfer(trainable=False)
    backbone = model.layers[1]
    frozen = [to_np(w).copy() for w in backbone.weights]
    head_before = to_np(model.get_layer("head").kernel).copy()
    with pytest.warns(UserWarning, match=r"lsuv: layer 'head'.*input std .* vanished"):
        report = kerasinit.lsuv(model, BATCH, seed=0, verbose=False)
    rows = report.set_index("layer")
    assert rows.loc["head", "converged"] is False or rows.loc["head", "converged"] == False  # noqa: E712
    assert rows.loc["head", "note"].startswith("refused: input std")
    assert rows.loc[backbone.name, "note"].startswith("skipped: not trainable")
    np.testing.assert_array_equal(head_before, to_np(model.get_layer("head").kernel))
    for a, b in zip(frozen, backbone.weights, strict=True):
        np.testing.assert_array_equal(a, to_np(b))


def test_lsuv_says_why_it_skips_embedding_attention_and_lstm():
    tokens = keras.Input((10,), dtype="int32")
    h = layers.Embedding(50, 16, name="emb")(tokens)
    h = layers.MultiHeadAttention(2, 8, name="mha")(h, h)
    h = layers.LSTM(8, name="lstm")(h)
    model = keras.Model(tokens, layers.Dense(4, name="out")(h))
    batch = np.random.default_rng(1).integers(0, 50, size=(64, 10)).astype("int32")
    with pytest.warns(UserWarning, match=r"lsuv: 3 layers with kernels were not rescaled.*emb.*mha.*lstm"):
        report = kerasinit.lsuv(model, batch, seed=0, verbose=False)
    notes = dict(zip(report.layer, report.note, strict=True))
    assert notes["emb"].startswith("skipped: Embedding is a lookup")
    assert notes["mha"].startswith("skipped: MultiHeadAttention")
    assert notes["lstm"].startswith("skipped: recurrent")
    assert notes["input_layer"] == "skipped: no kernel" if "input_layer" in notes else True
    assert report.set_index("layer").loc["out", "converged"]


_BACKEND_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import keras, numpy as np
    from keras import layers
    import kerasinit

    def backbone():
        if sys.argv[1] == "real":  # PyTorch: fast enough for the keras.applications backbone itself
            return keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), include_top=False,
                                                  alpha=0.35, pooling="avg")
        # JAX compiles every op per shape (~30 s for MobileNetV2): a small Conv-BN-ReLU backbone
        x = keras.Input((32, 32, 3))
        h = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(8, 3, strides=2, use_bias=False)(x)))
        h = layers.ReLU()(layers.BatchNormalization()(layers.DepthwiseConv2D(3, use_bias=False)(h)))
        h = layers.BatchNormalization(name="last_bn")(layers.Conv2D(16, 1, use_bias=False)(h))
        return keras.Model(x, layers.GlobalAveragePooling2D()(layers.ReLU()(h)), name="backbone")

    batch = np.random.default_rng(0).normal(size=(16, 32, 32, 3)).astype("float32")
    out = {"backend": keras.backend.backend()}
    for trainable in (True, False):
        keras.utils.set_random_seed(0)
        bb = backbone()
        if not trainable and sys.argv[1] != "real":  # moving statistics that do not fit the data: output ~1e-11
            bn = bb.get_layer("last_bn")
            bn.moving_variance.assign(np.full(bn.moving_variance.shape, 1e22, "float32"))
        bb.trainable = trainable
        x = keras.Input((32, 32, 3))
        model = keras.Model(x, layers.Dense(10, name="head")(bb(x)))
        report = kerasinit.lsuv(model, batch, seed=0, verbose=False)
        head = report.set_index("layer").loc["head"]
        out[str(trainable)] = {"rescaled": int(report.converged.eq(True).sum()), "head": bool(head.converged),
                               "note": head.note,
                               "head_std": float(np.std(keras.ops.convert_to_numpy(model.get_layer("head").kernel)))}
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize("backend, size, rescaled", [("jax", "small", 4), ("torch", "real", 53)])
def test_lsuv_nested_and_vanished_on_other_backends(backend, size, rescaled):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", _BACKEND_SCRIPT, size], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == backend
    assert out["True"]["rescaled"] == rescaled and out["True"]["head"] and out["True"]["head_std"] < 10
    assert not out["False"]["head"] and out["False"]["note"].startswith("refused") and out["False"]["head_std"] < 1
