"""kerasinit.experiments on any model: the zoo, cloning, conv/residual lottery runs, resume after a kill,
instability. Real small models, fixed seeds, no mocks, no downloads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import kerasinit
from kerasinit.experiments.models import build, clone, instantiate, model_weights

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.mark.parametrize("name, shape, params", [
    ("lenet_300_100", (28, 28, 1), 266_610),
    ("conv2", (32, 32, 3), 4_301_642),
    ("conv4", (32, 32, 3), 2_425_930),
    ("conv6", (32, 32, 3), 2_262_602),
    ("resnet20", (32, 32, 3), 274_042),
    ("vgg16", (32, 32, 3), 14_736_714),
])
def test_zoo_parameter_counts(name, shape, params):
    model = build(name, shape, 10, seed=0)
    assert model.count_params() == params
    doc = kerasinit.experiments.models.__doc__
    assert (f"{params:,}" if name == "lenet_300_100" else f"{params / 1e6:.2f}M"[:4]) in doc


def test_zoo_seeds_and_bad_names():
    a, b, c = (build("conv2", (8, 8, 1), 3, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.get_layer("conv_1").kernel.numpy(), b.get_layer("conv_1").kernel.numpy())
    assert not np.allclose(a.get_layer("conv_1").kernel.numpy(), c.get_layer("conv_1").kernel.numpy())
    with pytest.raises(ValueError, match="name.*lenet_300_100"):
        build("resnet50", (32, 32, 3), 10)
    with pytest.raises(ValueError, match="images"):
        build("conv4", (64,), 10)


class Tiny(keras.Model):
    def __init__(self, units=8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(units, activation="relu")
        self.out = keras.layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.out(self.hidden(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class NoConfig(Tiny):
    def get_config(self):
        return keras.Model.get_config(self)


def test_clone_redraws_with_the_seed_sequential_functional_subclassed():
    seq = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, kernel_initializer=keras.initializers.HeNormal(7)),
                            keras.layers.Dense(3)])
    a, b, c = clone(seq, 0), clone(seq, 0), clone(seq, 1)
    for x, y in zip(model_weights(a).values(), model_weights(b).values(), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a.layers[0].kernel.numpy(), c.layers[0].kernel.numpy())  # a fixed seed is re-seeded
    sub = Tiny(units=6)
    sub(np.zeros((1, 5), "float32"))
    fresh = clone(sub, 3, input_shape=(5,))
    assert isinstance(fresh, Tiny) and fresh.hidden.kernel.shape == (5, 6)
    bad = NoConfig(units=6)
    bad(np.zeros((1, 5), "float32"))
    with pytest.raises(ValueError, match="get_config"):  # rebuilt with units=8: caught, with what to do
        clone(bad, 0, input_shape=(5,))


def test_instantiate_keras_file_and_callable(tmp_path):
    model = build("mlp", (4,), 2, seed=0, depth=1, width=3)
    model.save(tmp_path / "m.keras")
    a = instantiate(str(tmp_path / "m.keras"), (4,), 2, seed=5)
    assert [v.shape for v in a.weights] == [v.shape for v in model.weights]
    b = instantiate(lambda: build("mlp", (4,), 2, depth=1, width=3), (4,), 2, seed=5)
    c = instantiate(lambda: build("mlp", (4,), 2, depth=1, width=3), (4,), 2, seed=5)
    np.testing.assert_array_equal(b.layers[1].kernel.numpy(), c.layers[1].kernel.numpy())
    with pytest.raises(TypeError, match="model"):
        instantiate(42, (4,), 2, seed=0)


def _images(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 8, 8, 3)).astype("float32") * 0.3
    x[np.arange(n), :, :, y] += 1.0  # the class lights one channel: learnable in a few steps
    return x[:90], y[:90], x[90:], y[90:]


def _residual_model():
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    r = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c2")(h)
    h = keras.layers.Add()([h, r])
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="output")(h))


@pytest.mark.parametrize("model", ["conv2", "residual"])
def test_lottery_on_conv_and_residual_models(model, tmp_path):
    data = _images()
    spec = _residual_model() if model == "residual" else model
    results = kerasinit.run_lottery(spec, data, rounds=2, rate=0.5, epochs=2, batch_size=32, seeds=(0, 1),
                                    controls=("random",), learning_rate=1e-2, out=tmp_path)
    df = results.to_pandas()
    assert list(df["seed"]) == [0, 0, 0, 1, 1, 1] and list(df["round"]) == [0, 1, 2] * 2
    masks = dict(np.load(tmp_path / "seed_1" / "masks_round_2.npz"))
    first = next(n for n in masks if n.startswith(("conv_1", "c1")))
    assert masks[first].sum() == kerasinit.pruning.keep_count(masks[first].size, 1 - 0.5 ** 2)  # (1-p)^k per layer
    assert "±" in results.table()  # two seeds: mean ± std
    assert (tmp_path / "lottery.png").exists()


KILLED = textwrap.dedent("""
    import os, sys, keras
    import kerasinit
    from kerasinit.experiments.datasets import load

    class Kill(keras.callbacks.Callback):
        count = 0
        def on_train_batch_begin(self, batch, logs=None):
            Kill.count += 1
            if Kill.count == int(sys.argv[2]):
                os._exit(3)  # killed mid-round, mid-training

    kerasinit.run_lottery("mlp", load("digits"), model_options={"depth": 1, "width": 16}, rounds=2, rate=0.5,
                          epochs=2, batch_size=128, out=sys.argv[1], callbacks=[Kill()])
""")


def test_resume_after_a_kill_mid_round_gives_the_identical_table(tmp_path):
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    # 18 steps per training (9 per epoch): round 0 (1 training) and round 1 (3) = 72 steps; die in round 2's ticket
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "run"), "80"], env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr[-2000:]
    kwargs = {"model_options": {"depth": 1, "width": 16}, "rounds": 2, "rate": 0.5, "epochs": 2, "batch_size": 128}
    resumed = kerasinit.run_lottery("mlp", "digits", out=tmp_path / "run", **kwargs)
    assert resumed.trained_rounds == [2]  # rounds 0 and 1 came from the folder
    uninterrupted = kerasinit.run_lottery("mlp", "digits", **kwargs)
    assert resumed.table() == uninterrupted.table()
    assert resumed.to_pandas().equals(uninterrupted.to_pandas())


def test_instability_of_a_model_with_itself_is_zero_and_small_on_an_easy_task():
    data = _images(seed=1)
    same = kerasinit.instability("mlp", data, rewind="step:3", seeds=(0, 0), points=5, epochs=2, batch_size=32,
                                 model_options={"depth": 1, "width": 16})
    assert same.barrier == 0.0 and len(same.errors) == 5
    two = kerasinit.instability(_residual_model(), data, rewind="step:3", seeds=(0, 1), points=5, epochs=3,
                                batch_size=32, learning_rate=1e-2)
    assert two.errors[0] < 0.2 and two.errors[-1] < 0.2  # both copies learn the easy task
    assert 0.0 <= two.barrier < 0.15
    assert "error barrier" in two.summary_line()


def _sequences(n: int = 120, seed: int = 0):
    """Sequences of 6 steps x 4 features; the class is the channel whose mean is raised."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 6, 4)).astype("float32") * 0.3
    x[np.arange(n), :, y] += 1.0
    return x[:90], y[:90], x[90:], y[90:]


def _attention_model():
    inputs = keras.Input((6, 4))
    h = keras.layers.Dense(8, name="embed")(inputs)
    a = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(h, h)
    h = keras.layers.LayerNormalization()(keras.layers.Add()([h, a]))
    h = keras.layers.GlobalAveragePooling1D()(h)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="output")(h))


def _lstm_model():
    return keras.Sequential([keras.Input((6, 4)), keras.layers.LSTM(8, name="lstm"),
                             keras.layers.Dense(3, activation="softmax", name="output")])


@pytest.mark.parametrize("build_model", [_attention_model, _lstm_model], ids=["attention", "lstm"])
def test_lottery_on_attention_and_recurrent_models(build_model, tmp_path):
    monitor = kerasinit.VarianceMonitor(track=("weights", "activations"))  # a user callback in every training
    results = kerasinit.run_lottery(build_model(), _sequences(), rounds=2, rate=0.5, epochs=2, batch_size=32,
                                    controls=("reinit",), learning_rate=1e-2, out=tmp_path, callbacks=[monitor])
    frame = monitor.to_pandas()
    assert {"weights", "activations"} <= set(frame["kind"]) and frame["std"].notna().all()
    masks = dict(np.load(tmp_path / "seed_0" / "masks_round_2.npz"))
    inner = [n for n in masks if n.split("/")[0] in ("query", "key", "value", "attention_output") or "lstm" in n]
    # MultiHeadAttention's query/key/value/output kernels; LSTM's kernel and recurrent kernel
    assert len(inner) == (4 if build_model is _attention_model else 2), sorted(masks)
    for name in inner:  # (1 - p)^k of each of them survives
        assert masks[name].sum() == kerasinit.pruning.keep_count(masks[name].size, 1 - 0.5 ** 2), name
    df = results.to_pandas()
    assert df["ticket_test_accuracy"].notna().all() and df["reinit_test_accuracy"].iloc[1:].notna().all()
    assert df["ticket_test_accuracy"].iloc[0] > 0.6  # the dense model learns the task (chance 1/3)


DISTRIBUTED = textwrap.dedent("""
    import os, sys
    backend = sys.argv[2]
    if backend == "jax":
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    else:
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    import kerasinit
    rng = np.random.default_rng(0)
    y = np.arange(200) % 4
    x = rng.normal(size=(200, 12)).astype("float32") + y[:, None] * 0.3
    data = (x[:160], y[:160], x[160:], y[160:])  # 120 train / 40 val / 40 test: even batches for 2 devices
    kwargs = dict(model_options={"depth": 1, "width": 16}, rounds=2, rate=0.5, epochs=2, batch_size=40, controls=())
    kerasinit.run_lottery("mlp", data, out=sys.argv[1] + "/one", **kwargs)
    if backend == "jax":
        import jax
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
        assert len(jax.devices()) == 2
        kerasinit.run_lottery("mlp", data, out=sys.argv[1] + "/two", **kwargs)
    else:
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        kerasinit.run_lottery("mlp", data, strategy=strategy, out=sys.argv[1] + "/two", **kwargs)
""")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_distributed_run_has_the_single_device_masks(backend, tmp_path):
    """tf.distribute.MirroredStrategy / keras.distribution.DataParallel on 2 logical CPUs = one device."""
    script = tmp_path / "distributed.py"
    script.write_text(DISTRIBUTED)
    env = {**ENV, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path), backend], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rnd in (1, 2):
        one = dict(np.load(tmp_path / "one" / "seed_0" / f"masks_round_{rnd}.npz"))
        two = dict(np.load(tmp_path / "two" / "seed_0" / f"masks_round_{rnd}.npz"))
        assert sorted(one) == sorted(two)
        for name in one:
            np.testing.assert_array_equal(one[name], two[name], err_msg=f"round {rnd} {name}")
    rows = {run: json.loads((tmp_path / run / "results.json").read_text())["rows"] for run in ("one", "two")}
    for a, b in zip(rows["one"], rows["two"], strict=True):  # validation under the strategy = on one device
        assert a["ticket"]["val_loss"] == pytest.approx(b["ticket"]["val_loss"], rel=1e-4)
        assert a["ticket"]["early_stop_step"] == b["ticket"]["early_stop_step"]
    first = dict(np.load(tmp_path / "one" / "seed_0" / "masks_round_1.npz"))
    assert all(0 < m.mean() < 1 for m in first.values())  # really pruned, not all-kept
