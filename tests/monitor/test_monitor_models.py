"""VarianceMonitor on the models of issue 21: Embedding (item 1), nested models, attention and recurrent layers (item 7)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasinit._arrays import to_numpy
from kerasinit.monitor import VarianceMonitor

RNG = np.random.default_rng(0)
TOKENS = RNG.integers(0, 50, size=(32, 8)).astype("int32")
CLASSES = RNG.integers(0, 2, 32)


def _embedding_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,), dtype="int32"), keras.layers.Embedding(50, 8, name="embedding"),
                              keras.layers.Flatten(), keras.layers.Dense(2, name="dense")])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_embedding_model_fits_with_the_monitor_tensorflow():
    model = _embedding_model()
    monitor = VarianceMonitor(probe=(TOKENS[:16], CLASSES[:16]))
    model.fit(TOKENS, CLASSES, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])  # raised TypeError (IndexedSlices)
    rows = {(r["layer"], r["kind"]): r for r in monitor.history if r["step"] == 2}
    # known answer: the dense gradient of the embedding table, rows the probe does not read at zero
    embeddings = model.get_layer("embedding").embeddings
    with tf.GradientTape() as tape:
        loss = model.loss(CLASSES[:16], model(TOKENS[:16], training=False))
    grad = to_numpy(tf.convert_to_tensor(tape.gradient(loss, embeddings.value)))
    assert rows["embedding", "gradients"]["norm"] == pytest.approx(np.linalg.norm(grad), rel=1e-5)
    assert rows["embedding", "gradients"]["mean"] == pytest.approx(grad.mean(), rel=1e-4, abs=1e-9)
    assert set(monitor.tracked_layers) == {"embedding", "dense"}


def _run_on_backend(backend: str, code: str) -> str:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_embedding_model_fits_with_the_monitor_jax_and_torch(backend):
    code = textwrap.dedent(
        """
        import keras, numpy as np
        from kerasinit.monitor import VarianceMonitor
        rng = np.random.default_rng(0)
        x, y = rng.integers(0, 50, size=(32, 8)).astype("int32"), rng.integers(0, 2, 32)
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8,), dtype="int32"), keras.layers.Embedding(50, 8, name="embedding"),
                                  keras.layers.Flatten(), keras.layers.Dense(2, name="dense")])
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        monitor = VarianceMonitor(probe=(x[:16], y[:16]))
        model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])
        rows = {(r["layer"], r["kind"]): r for r in monitor.history if r["step"] == 2}
        # known answer: d loss / d embeddings by hand (logits = flatten(E[x]) W + b)
        table = keras.ops.convert_to_numpy(model.get_layer("embedding").embeddings)
        w, b = (keras.ops.convert_to_numpy(v) for v in model.get_layer("dense").weights)
        xs, ys = x[:16], y[:16]
        logits = table[xs].reshape(16, -1) @ w + b
        p = np.exp(logits - logits.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
        p[np.arange(16), ys] -= 1
        d_rows = ((p / 16) @ w.T).reshape(16, 8, 8)
        grad = np.zeros_like(table)
        np.add.at(grad, xs, d_rows)
        np.testing.assert_allclose(rows["embedding", "gradients"]["norm"], np.linalg.norm(grad), rtol=1e-4)
        print(keras.backend.backend(), sorted(monitor.tracked_layers))
        """
    )
    assert _run_on_backend(backend, code).split() == [backend, "['dense',", "'embedding']"]


def _transfer_model(call_training: bool | None = None) -> tuple[keras.Model, keras.Model]:
    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV2(alpha=0.35, weights=None, input_shape=(32, 32, 3), include_top=False)
    inputs = keras.Input((32, 32, 3))
    h = base(inputs) if call_training is None else base(inputs, training=call_training)
    h = keras.layers.GlobalAveragePooling2D(name="pool")(h)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="head")(h))
    model.compile("adam", "sparse_categorical_crossentropy", run_eagerly=True)
    return model, base


def test_transfer_model_tracks_the_nested_backbone_layers():
    model, base = _transfer_model(call_training=False)  # the transfer-learning guide's call; Keras 3 overrides it
    images = RNG.normal(size=(16, 32, 32, 3)).astype("float32")
    labels = RNG.integers(0, 10, 16)
    monitor = VarianceMonitor(probe=(images, labels), track=("weights", "activations"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(images, labels, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])
    prefix = base.name + "/"
    assert monitor.skipped_layers == {}
    assert monitor.tracked_layers[0] == prefix + "Conv1" and monitor.tracked_layers[-1] == "head"
    kernels = [layer for layer in base.layers if isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D)]
    assert len(monitor.tracked_layers) == len(kernels) + 1 == 53
    assert monitor.ratio_layers[-1] == prefix + "Conv_1"  # the head (the model's output) is left out
    frame = monitor.to_pandas()
    acts = frame[(frame.kind == "activations") & (frame.step == 1)].set_index("layer")["std"]
    assert len(acts) == 53
    # known answer: the backbone layer's output when the outer model runs in training mode
    for name in ("Conv1", "block_8_depthwise", "Conv_1"):
        inner = keras.Model(base.input, base.get_layer(name).output)
        expected = np.std(to_numpy(inner(images, training=True)).astype(np.float64))
        assert acts[prefix + name] == pytest.approx(expected, rel=1e-4), name
    weights = frame[(frame.kind == "weights") & (frame.layer == prefix + "Conv_1") & (frame.step == 1)]["std"].item()
    assert weights == pytest.approx(np.std(to_numpy(base.get_layer("Conv_1").kernel).astype(np.float64)), rel=1e-6)

    # chosen by path; a nested model named as a whole is recorded as its output
    chosen = VarianceMonitor(probe=(images,), layers=[prefix + "Conv1", base.name, "head"], track=("activations",))
    chosen.set_model(model)
    rows = {r["layer"]: r["std"] for r in chosen.record(1, 1)}
    assert list(rows) == [base.name, prefix + "Conv1", "head"]  # model order
    assert rows[prefix + "Conv1"] == pytest.approx(acts[prefix + "Conv1"], rel=1e-6)
    with pytest.raises(ValueError, match=r"unknown layer names \['Conv1'\].*by path"):
        bad = VarianceMonitor(probe=(images,), layers=["Conv1"], track=("activations",))
        bad.set_model(model)
        bad.record(1, 1)


def _transformer() -> keras.Model:
    keras.utils.set_random_seed(0)
    tokens = keras.Input((8,), dtype="int32")
    e = keras.layers.Embedding(50, 16, name="embedding")(tokens)
    a = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8, name="mha")(e, e)
    h = keras.layers.LayerNormalization(name="norm")(keras.layers.Add()([e, a]))
    h = keras.layers.Dense(32, activation="relu", name="ffn")(h)
    out = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling1D()(h))
    model = keras.Model(tokens, out)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_transformer_block_tracks_attention_projections_and_output():
    model = _transformer()
    monitor = VarianceMonitor(probe=(TOKENS[:16], CLASSES[:16]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(TOKENS, CLASSES, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])
    assert monitor.skipped_layers == {}
    assert monitor.tracked_layers == ["embedding", "mha/query", "mha/key", "mha/value", "mha/attention_output", "mha",
                                      "ffn", "logits"]
    rows = {(r["layer"], r["kind"]): r for r in monitor.history if r["step"] == 2}
    mha = model.get_layer("mha")
    for part in ("query", "key", "value", "attention_output"):
        dense = getattr(mha, f"_{'output' if part == 'attention_output' else part}_dense")
        assert rows[f"mha/{part}", "weights"]["std"] == pytest.approx(np.std(to_numpy(dense.kernel).astype(np.float64)), rel=1e-6)
        assert rows[f"mha/{part}", "gradients"]["norm"] > 0
    assert ("mha", "weights") not in rows and ("mha", "gradients") not in rows
    attention = keras.Model(model.input, mha.output)
    expected = np.std(to_numpy(attention(TOKENS[:16], training=False)).astype(np.float64))
    assert rows["mha", "activations"]["std"] == pytest.approx(expected, rel=1e-5)
    assert monitor.probe_training is False  # no BatchNormalization: inference mode


@pytest.mark.parametrize("rnn", [keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN])
def test_recurrent_layers_track_the_cell_kernels_and_the_output(rnn):
    keras.utils.set_random_seed(0)
    x = RNG.normal(size=(32, 6, 4)).astype("float32")
    model = keras.Sequential([keras.Input((6, 4)), rnn(8, name="rnn"), keras.layers.Dense(3, name="out")])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = VarianceMonitor(probe=(x[:16], CLASSES[:16]))
    model.fit(x, CLASSES, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])
    assert monitor.skipped_layers == {}
    assert monitor.tracked_layers == ["rnn", "rnn/recurrent_kernel", "out"]
    rows = {(r["layer"], r["kind"]): r for r in monitor.history if r["step"] == 2}
    cell = model.get_layer("rnn").cell
    for name, variable in (("rnn", cell.kernel), ("rnn/recurrent_kernel", cell.recurrent_kernel)):
        assert rows[name, "weights"]["std"] == pytest.approx(np.std(to_numpy(variable).astype(np.float64)), rel=1e-6)
        assert rows[name, "gradients"]["norm"] > 0
    expected = np.std(to_numpy(model.get_layer("rnn")(x[:16])).astype(np.float64))
    assert rows["rnn", "activations"]["std"] == pytest.approx(expected, rel=1e-5)
    assert ("rnn/recurrent_kernel", "activations") not in rows


def test_bidirectional_and_return_state_and_what_cannot_be_read_is_listed():
    class Block(keras.Model):  # subclassed: no graph inside
        def __init__(self) -> None:
            super().__init__(name="block")
            self.d = keras.layers.Dense(8, name="d")

        def call(self, x):
            return self.d(x)

    keras.utils.set_random_seed(0)
    x = RNG.normal(size=(16, 6, 4)).astype("float32")
    inputs = keras.Input((6, 4))
    h = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True), name="bi")(inputs)
    h, _, _ = keras.layers.LSTM(8, return_state=True, name="stateful")(h)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(Block()(h)))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = VarianceMonitor(probe=(x, CLASSES[:16]))
    with pytest.warns(UserWarning, match=r"skips the activations of 1 layer\(s\): 'block/d': inside 'block', a subclassed model"):
        model.fit(x, CLASSES[:16], epochs=1, batch_size=16, verbose=0, callbacks=[monitor])
    assert monitor.tracked_layers == ["bi/forward_lstm", "bi/forward_lstm/recurrent_kernel", "bi/backward_lstm",
                                      "bi/backward_lstm/recurrent_kernel", "bi", "stateful", "stateful/recurrent_kernel",
                                      "block/d", "out"]
    assert list(monitor.skipped_layers) == ["block/d"]
    rows = {(r["layer"], r["kind"]): r for r in monitor.history if r["step"] == 1}
    assert {k for k in ("activations", "weights", "gradients") if ("block/d", k) in rows} == {"weights", "gradients"}
    sequence, _, _ = model.get_layer("stateful").output
    expected = np.std(to_numpy(keras.Model(model.input, sequence)(x)).astype(np.float64))
    assert rows["stateful", "activations"]["std"] == pytest.approx(expected, rel=1e-5)  # its first output
    expected = np.std(to_numpy(keras.Model(model.input, model.get_layer("bi").output)(x)).astype(np.float64))
    assert rows["bi", "activations"]["std"] == pytest.approx(expected, rel=1e-5)


BN_BACKBONE = textwrap.dedent(
    """
    import warnings
    import keras, numpy as np
    from kerasinit.monitor import VarianceAnomalyWarning, VarianceMonitor
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 16)).astype("float32"), rng.integers(0, 3, 64)
    keras.utils.set_random_seed(0)
    h = first = keras.Input((16,))
    for i in range(8):  # std 0.03 kernels: without normalization each layer shrinks the signal ~6x
        h = keras.layers.Dense(32, kernel_initializer=keras.initializers.RandomNormal(stddev=0.03), name=f"d{i}")(h)
        h = keras.layers.ReLU()(keras.layers.BatchNormalization(name=f"bn{i}")(h))
    backbone = keras.Model(first, h, name="backbone")
    inputs = keras.Input((16,))
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(backbone(inputs)))
    model.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = VarianceMonitor(probe=(x[:32], y[:32]), std_ratio_bounds=(1e-2, 1e2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", VarianceAnomalyWarning)
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])  # 2 steps
    before = [np.array(keras.ops.convert_to_numpy(v), copy=True) for v in model.non_trainable_variables]
    rows = {(r["layer"], r["kind"]): r for r in monitor.record(1, 99)}  # (1, 2) is the epoch-end record
    for old, v in zip(before, model.non_trainable_variables):
        np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(v), err_msg=v.path)
    assert monitor.tracked_layers == [f"backbone/d{i}" for i in range(8)] + ["head"], monitor.tracked_layers
    inner = keras.Model(backbone.input, backbone.get_layer("d7").output)
    expected = np.std(keras.ops.convert_to_numpy(inner(x[:32], training=True)).astype(np.float64))
    np.testing.assert_allclose(rows["backbone/d7", "activations"]["std"], expected, rtol=1e-4)
    assert rows["backbone/d7", "gradients"]["norm"] > 0 and rows["backbone/d7", "activations"]["probe_training"] is True
    inference = VarianceMonitor(probe=(x[:32], y[:32]), std_ratio_bounds=(1e-2, 1e2), training=False, on_anomaly="ignore")
    inference.set_model(model)
    inference.record(1, 2)
    assert len(inference.anomalies) == 1 and "probe in inference mode" in inference.anomalies[0]["message"]
    print(keras.backend.backend(), monitor.probe_training, monitor.skipped_layers, monitor.anomalies)
    """
)


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_nested_batchnorm_backbone_in_training_mode_on_every_backend(backend):
    assert _run_on_backend(backend, BN_BACKBONE).split() == [backend, "True", "{}", "[]"]


def test_mobilenet_transfer_model_on_torch():
    code = textwrap.dedent(
        """
        import warnings
        import keras, numpy as np
        from kerasinit.monitor import VarianceAnomalyWarning, VarianceMonitor
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(32, 32, 32, 3)).astype("float32"), rng.integers(0, 10, 32)
        keras.utils.set_random_seed(0)
        base = keras.applications.MobileNetV2(alpha=0.35, weights=None, input_shape=(32, 32, 3), include_top=False)
        inputs = keras.Input((32, 32, 3))
        h = keras.layers.GlobalAveragePooling2D()(base(inputs))
        model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="head")(h))
        model.compile("adam", "sparse_categorical_crossentropy")
        monitor = VarianceMonitor(probe=(x[:16], y[:16]))
        with warnings.catch_warnings():
            warnings.simplefilter("error", VarianceAnomalyWarning)
            model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])  # 2 steps
        before = [np.array(keras.ops.convert_to_numpy(v), copy=True) for v in model.non_trainable_variables]
        rows = {(r["layer"], r["kind"]): r for r in monitor.record(1, 99)}  # (1, 2) is the epoch-end record
        for old, v in zip(before, model.non_trainable_variables):
            np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(v), err_msg=v.path)
        name = base.name + "/Conv_1"
        first = rows[base.name + "/Conv1", "activations"]["std"]
        assert 0.1 < rows[name, "activations"]["std"] / first < 10, rows[name, "activations"]
        inner = keras.Model(base.input, base.get_layer("Conv_1").output)
        expected = np.std(keras.ops.convert_to_numpy(inner(x[:16], training=True)).astype(np.float64))
        np.testing.assert_allclose(rows[name, "activations"]["std"], expected, rtol=1e-4)
        assert rows[name, "gradients"]["norm"] > 0 and rows[name, "activations"]["probe_training"] is True
        print(keras.backend.backend(), len(monitor.tracked_layers), monitor.skipped_layers, monitor.anomalies)
        """
    )
    assert _run_on_backend("torch", code).split() == ["torch", "53", "{}", "[]"]
