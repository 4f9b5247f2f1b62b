"""VarianceMonitor as a callback: schedule, model kinds, probes, one backward pass, anomalies, arguments."""

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

from kerasinit.monitor import VarianceAnomalyWarning, VarianceMonitor

RNG = np.random.default_rng(1)
X = RNG.standard_normal((32, 6)).astype("float32")
Y = (X[:, 0] > 0).astype("int32")


def _mlp(depth: int = 3, width: int = 8, seed: int = 0, init: str = "he_normal", activation: str = "relu") -> keras.Model:
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((6,))]
    layers += [keras.layers.Dense(width, activation=activation, kernel_initializer=init, name=f"h{i}") for i in range(depth)]
    layers.append(keras.layers.Dense(2, activation="softmax", name="out"))
    model = keras.Sequential(layers)
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    return model


def _steps(monitor: VarianceMonitor) -> list[tuple[int, int]]:
    return sorted({(r["epoch"], r["step"]) for r in monitor.history})


def test_schedule_initial_epoch_and_every_n_batches():
    model = _mlp()
    monitor = VarianceMonitor(probe=(X, Y), every_n_batches=3)
    model.fit(X, Y, epochs=2, batch_size=8, callbacks=[monitor], verbose=0)  # 4 batches per epoch
    # step 0 before training; every 3 steps; end of each epoch (epoch = completed epochs)
    assert _steps(monitor) == [(0, 0), (0, 3), (1, 4), (1, 6), (2, 8)]
    per_step = monitor.to_pandas().groupby("step").size()
    assert (per_step == 4 * 3).all()  # 4 layers x (weights, activations, gradients)
    assert monitor.probe_passes == 5


def test_every_n_batches_only_and_step_zero_always_taken():
    model = _mlp()
    monitor = VarianceMonitor(probe=(X, Y), every_n_batches=2, every_epoch=False, track="weights")
    model.fit(X, Y, epochs=2, batch_size=8, callbacks=[monitor], verbose=0)
    # a batch record that ends an epoch counts that epoch as completed
    assert _steps(monitor) == [(0, 0), (0, 2), (1, 4), (1, 6), (2, 8)]
    assert set(monitor.to_pandas()["kind"]) == {"weights"}


def test_functional_model_with_branches_and_chosen_layers():
    keras.utils.set_random_seed(0)
    inp = keras.Input((6,))
    a = keras.layers.Dense(8, activation="relu", name="a")(inp)
    b = keras.layers.Dense(8, activation="tanh", name="b")(inp)
    cat = keras.layers.Concatenate(name="cat")([a, b])
    out = keras.layers.Dense(2, activation="softmax", name="out")(cat)
    model = keras.Model(inp, out)
    model.compile("sgd", "sparse_categorical_crossentropy")
    monitor = VarianceMonitor(probe=(X, Y), layers=["b", "cat", "a"])
    model.fit(X, Y, epochs=1, batch_size=16, callbacks=[monitor], verbose=0)
    frame = monitor.to_pandas()
    assert monitor.tracked_layers == ["a", "b", "cat"]  # model order, not argument order
    assert set(frame.loc[frame.kind == "activations", "layer"]) == {"a", "b", "cat"}
    assert set(frame.loc[frame.kind == "gradients", "layer"]) == {"a", "b"}  # cat has no kernel
    cat_std = frame[(frame.kind == "activations") & (frame.layer == "cat") & (frame.step == 0)]["std"].item()
    assert cat_std > 0


def test_shared_layer_skipped_and_nested_model_tracked():
    keras.utils.set_random_seed(0)
    inner = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu", name="inner_dense")], name="inner")
    shared = keras.layers.Dense(8, name="shared")
    inp = keras.Input((6,))
    first = keras.layers.Dense(8, name="first")(inp)
    h = inner(shared(shared(first)))
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax", name="out")(h))
    model.compile("sgd", "sparse_categorical_crossentropy")
    monitor = VarianceMonitor(probe=(X, Y), layers=["first", "shared", "inner", "out"], track=("activations",))
    with pytest.warns(UserWarning, match=r"'shared': shared layer called 2 times"):
        model.fit(X, Y, epochs=1, batch_size=16, callbacks=[monitor], verbose=0)
    frame = monitor.to_pandas()
    assert set(frame["layer"]) == {"first", "inner", "out"}
    first_out = keras.Model(inp, model.get_layer("first").output).predict(X, verbose=0)
    # the last record comes after the last optimizer step: compare it with the trained layer
    end = frame[(frame.layer == "first") & (frame.step == frame.step.max())]["std"].item()
    assert end == pytest.approx(np.std(first_out), rel=1e-5)


class SubclassedNet(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.d1 = keras.layers.Dense(8, activation="relu", name="sub_d1")
        self.d2 = keras.layers.Dense(2, activation="softmax", name="sub_d2")

    def call(self, x):
        return self.d2(self.d1(x))


def test_subclassed_model_records_weights_and_gradients_and_names_skipped_layers():
    keras.utils.set_random_seed(0)
    model = SubclassedNet()
    model.compile("sgd", "sparse_categorical_crossentropy")
    monitor = VarianceMonitor(probe=(X, Y))
    with pytest.warns(UserWarning, match=r"skips the activations of 2 layer\(s\).*'sub_d1'.*subclassed"):
        model.fit(X, Y, epochs=1, batch_size=16, callbacks=[monitor], verbose=0)
    frame = monitor.to_pandas()
    assert set(frame["kind"]) == {"weights", "gradients"}
    assert set(frame["layer"]) == {"sub_d1", "sub_d2"}
    assert set(monitor.skipped_layers) == {"sub_d1", "sub_d2"}
    assert (frame.loc[frame.kind == "gradients", "norm"] > 0).all()


def test_probe_forms_tf_data_pydataset_and_auto():
    class Batches(keras.utils.PyDataset):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, i: int):
            return X[8 * i : 8 * i + 8], Y[8 * i : 8 * i + 8]

    dataset = tf.data.Dataset.from_tensor_slices((X, Y)).batch(4)
    for probe, expected in ((dataset, X[:4]), (Batches(), X[:8])):
        monitor = VarianceMonitor(probe=probe, every_epoch=False)
        _mlp().fit(X, Y, epochs=1, batch_size=16, callbacks=[monitor], verbose=0)
        np.testing.assert_array_equal(monitor.probe.x, expected)
    auto = VarianceMonitor(probe="auto", every_epoch=True)
    _mlp().fit(X, Y, epochs=2, batch_size=16, shuffle=False, callbacks=[auto], verbose=0)
    np.testing.assert_array_equal(auto.probe.x, X[:16])  # first training batch, kept fixed
    np.testing.assert_array_equal(auto.probe.y, Y[:16])


def test_probe_of_inputs_alone_is_the_whole_array_not_its_rows():
    for probe in (X[:12], tf.constant(X[:12])):
        monitor = VarianceMonitor(probe=probe, track=("weights", "activations"), every_epoch=False)
        _mlp().fit(X, Y, epochs=1, batch_size=16, callbacks=[monitor], verbose=0)
        np.testing.assert_array_equal(monitor.probe.x, X[:12])  # 12 samples, not the first row
        assert monitor.probe.y is None and monitor.probe.size == 12
    with pytest.raises(ValueError, match="gradients need targets"):
        _mlp().fit(X, Y, epochs=1, batch_size=16, callbacks=[VarianceMonitor(probe=X[:12])], verbose=0)


def test_auto_probe_from_a_tf_data_training_set():
    dataset = tf.data.Dataset.from_tensor_slices((X, Y)).batch(8)
    monitor = VarianceMonitor(probe="auto", track=("activations", "gradients"))
    _mlp().fit(dataset, epochs=1, shuffle=False, callbacks=[monitor], verbose=0)
    np.testing.assert_array_equal(monitor.probe.x, X[:8])
    assert _steps(monitor) == [(0, 0), (1, 4)]


def test_batch_hook_only_with_every_n_batches():
    # Keras runs batch callbacks asynchronously unless a callback overrides on_train_batch_end
    base = keras.callbacks.Callback.on_train_batch_end
    assert VarianceMonitor(probe=(X, Y)).on_train_batch_end.__func__ is base
    assert VarianceMonitor(probe=(X, Y), every_n_batches=5).on_train_batch_end.__func__ is not base


def test_auto_probe_outside_fit_is_a_clear_error():
    model = _mlp()
    monitor = VarianceMonitor()
    monitor.set_model(model)
    with pytest.raises(ValueError, match=r"probe='auto'.*model.fit"):
        monitor.record(0, 0)


def test_one_forward_and_one_backward_pass_for_all_layers():
    import kerasinit.backend.tensorflow as tf_backend

    model = _mlp(depth=6)
    before = tf_backend.GRADIENT_CALLS
    monitor = VarianceMonitor(probe=(X, Y), track=("activations", "gradients", "output_gradients"))
    model.fit(X, Y, epochs=3, batch_size=16, callbacks=[monitor], verbose=0)
    records = len(_steps(monitor))
    assert records == 4
    # one probe evaluation per record, whatever the number of layers (7 here) ...
    assert monitor.probe_passes == records
    # ... and it is one compiled function whose single tape.gradient call asks for every kernel and
    # layer output at once (it ran in Python once, when traced)
    assert tf_backend.GRADIENT_CALLS - before == 1
    frame = monitor.to_pandas()
    assert frame[(frame.kind == "gradients") & (frame.step == 0)].shape[0] == 7


def test_nan_weights_warn_naming_the_layer():
    model = _mlp()
    w, b = model.get_layer("h1").get_weights()
    w[0, 0] = np.nan
    model.get_layer("h1").set_weights([w, b])
    monitor = VarianceMonitor(probe=(X, Y), track=("weights",))
    with pytest.warns(VarianceAnomalyWarning, match=r"weights of layer 'h1' contain NaN/Inf"):
        model.fit(X, Y, epochs=1, batch_size=16, callbacks=[monitor], verbose=0)
    assert monitor.anomalies and monitor.anomalies[0]["step"] == 0
    assert not model.stop_training


def test_collapsing_network_stops_training_with_on_anomaly_stop():
    # std 0.01 weights in width 8: each layer multiplies the activation std by ~0.02
    model = _mlp(depth=4, init=keras.initializers.RandomNormal(stddev=0.01, seed=0))
    monitor = VarianceMonitor(probe=(X, Y), on_anomaly="stop", track=("activations",), layers=["h0", "h3"])
    with pytest.warns(VarianceAnomalyWarning, match=r"std ratio last/first layer = .*'h3'.*'h0'.*outside \[0.001, 1000\]; stopping"):
        model.fit(X, Y, epochs=5, batch_size=8, callbacks=[monitor], verbose=0)
    assert int(model.optimizer.iterations) == 1  # stopped after the first batch
    ignored = VarianceMonitor(probe=(X, Y), on_anomaly="ignore", track=("activations",), layers=["h0", "h3"])
    model2 = _mlp(depth=4, init=keras.initializers.RandomNormal(stddev=0.01, seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", VarianceAnomalyWarning)
        model2.fit(X, Y, epochs=1, batch_size=8, callbacks=[ignored], verbose=0)
    assert ignored.anomalies and int(model2.optimizer.iterations) == 4


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"on_anomaly": "panic"}, ValueError, r"on_anomaly must be one of \['warn', 'stop', 'ignore'\]"),
        ({"track": ("weights", "biases")}, ValueError, r"track must be .*'output_gradients'.*'biases'"),
        ({"track": ()}, ValueError, r"track must be a non-empty"),
        ({"every_n_batches": 0}, ValueError, r"every_n_batches must be None or a positive int"),
        ({"every_n_batches": -3}, ValueError, r"every_n_batches"),
        ({"every_n_batches": True}, ValueError, r"every_n_batches"),
        ({"probe": 5}, TypeError, r"probe must be 'auto'"),
        ({"probe": "first"}, ValueError, r"probe must be 'auto'"),
        ({"writers": ["run.txt"]}, ValueError, r"writers: .*\.csv or \.jsonl"),
        ({"writers": [3]}, TypeError, r"writers must be"),
        ({"layers": [3]}, TypeError, r"layers must be"),
        ({"histogram_bins": 0}, ValueError, r"histogram_bins"),
        ({"std_ratio_bounds": (10, 1)}, ValueError, r"std_ratio_bounds"),
        ({"std_ratio_bounds": 3}, ValueError, r"std_ratio_bounds must be a pair"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        VarianceMonitor(**kwargs)


def test_unknown_layer_names_are_listed():
    monitor = VarianceMonitor(probe=(X, Y), layers=["h0", "nope"])
    with pytest.raises(ValueError, match=r"unknown layer names \['nope'\]; the model's layers are \['h0', 'h1', 'h2', 'out'\]"):
        _mlp().fit(X, Y, epochs=1, callbacks=[monitor], verbose=0)


def test_gradients_need_targets():
    monitor = VarianceMonitor(probe=(X,))
    with pytest.raises(ValueError, match="gradients need targets"):
        _mlp().fit(X, Y, epochs=1, callbacks=[monitor], verbose=0)


def _run_on_backend(backend: str, code: str) -> str:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_import_and_activation_records_without_tensorflow_backend():
    code = textwrap.dedent(
        """
        import sys
        import keras, numpy as np
        import kerasinit.monitor as m
        try:
            m.VarianceMonitor(probe=(np.zeros((2, 3)), np.zeros(2)))
        except ValueError as err:
            assert "'gradients' need one of the backends ['jax', 'tensorflow', 'torch'], not 'numpy'" in str(err), err
        else:
            raise AssertionError("expected a ValueError")
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu", name="d")])
        mon = m.VarianceMonitor(probe=(np.ones((5, 3), "float32"),), track=("weights", "activations"))
        mon.set_model(model)
        rows = mon.record(0, 0)
        assert {r["kind"] for r in rows} == {"weights", "activations"}, rows
        print(keras.backend.backend(), "tensorflow" in sys.modules)
        """
    )
    backend, tf_imported = _run_on_backend("numpy", code).split()
    assert backend == "numpy"
    assert tf_imported == "False"


def test_jax_backend_kernel_gradients_known_answer():
    code = textwrap.dedent(
        """
        import keras, numpy as np
        import kerasinit.backend.jax as jax_backend
        from kerasinit.monitor import VarianceMonitor
        rng = np.random.default_rng(0)
        x = rng.standard_normal((16, 3)).astype("float32")
        y = rng.standard_normal((16, 2)).astype("float32")
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu", name="h"),
                                  keras.layers.Dense(2, use_bias=False, name="lin")])
        model.compile(keras.optimizers.SGD(0.0), "mse")
        try:
            VarianceMonitor(probe=(x, y), track=("output_gradients",))
        except ValueError as err:
            assert "'output_gradients' need the backend(s) ['tensorflow', 'torch'], not 'jax'" in str(err), err
        else:
            raise AssertionError("expected a ValueError")
        mon = VarianceMonitor(probe=(x, y))
        model.fit(x, y, epochs=2, batch_size=8, callbacks=[mon], verbose=0)
        w1, b1 = model.get_layer("h").get_weights()
        (w2,) = model.get_layer("lin").get_weights()
        h = np.maximum(x @ w1 + b1, 0)
        d_pred = 2 * (h @ w2 - y) / y.size
        rows = {(r["layer"], r["kind"]): r for r in mon.history if r["step"] == 0}
        np.testing.assert_allclose(rows["lin", "gradients"]["norm"], np.linalg.norm(h.T @ d_pred), rtol=1e-4)
        d_w1 = x.T @ ((d_pred @ w2.T) * (x @ w1 + b1 > 0))
        np.testing.assert_allclose(rows["h", "gradients"]["norm"], np.linalg.norm(d_w1), rtol=1e-4)
        np.testing.assert_allclose(rows["h", "activations"]["std"], np.std(h), rtol=1e-5)
        assert len({r["step"] for r in mon.history}) == 3 and mon.probe_passes == 3
        print(keras.backend.backend(), jax_backend.GRADIENT_CALLS)
        """
    )
    assert _run_on_backend("jax", code).split() == ["jax", "1"]


# ----------------------------------------------------------------------------- issue 11: stock models, no noise


def test_stock_mobilenet_gives_no_warning_noise_and_no_false_alarm():
    import warnings

    import kerasinit

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), classes=10)
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 32, 32, 3)).astype("float32"), rng.integers(0, 10, 32)
    monitor = kerasinit.VarianceMonitor(probe=(x[:8], y[:8]), every_epoch=False)  # the step-0 record
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])
    ours = [w for w in caught if "kerasinit" in w.filename or issubclass(w.category, DeprecationWarning)]
    assert [str(w.message)[:120] for w in ours] == []  # no __array__ DeprecationWarning, no std-ratio alarm
    assert monitor.anomalies == []
    assert "predictions" not in monitor.ratio_layers and len(monitor.ratio_layers) > 10
    assert len(monitor.history.to_pandas()) > 100  # it did record every layer at step 0


def test_std_ratio_still_judged_on_hidden_layers():
    import kerasinit

    keras.utils.set_random_seed(0)
    deep = keras.Sequential([keras.Input((16,))] + [keras.layers.Dense(16, activation="tanh",
                            kernel_initializer=keras.initializers.RandomNormal(stddev=0.01)) for _ in range(6)]
                            + [keras.layers.Dense(3, activation="softmax", name="probs")])
    deep.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.random.default_rng(0).normal(size=(32, 16)).astype("float32"), np.zeros(32, "int32")
    monitor = kerasinit.VarianceMonitor(probe=(x, y), on_anomaly="ignore", every_epoch=False)
    deep.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])
    assert "probs" not in monitor.ratio_layers
    assert any("std ratio" in a["message"] and "'probs'" not in a["message"] for a in monitor.anomalies)
