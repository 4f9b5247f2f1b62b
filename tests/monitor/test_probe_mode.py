"""VarianceMonitor(training=...): the probe's mode, the BatchNorm false alarm, state left untouched, the record column."""

from __future__ import annotations

import csv
import json
import warnings

import keras
import numpy as np
import pytest

from kerasinit._arrays import to_numpy
from kerasinit.monitor import VarianceAnomalyWarning, VarianceMonitor, load_history
from kerasinit.monitor.stats import COLUMNS, KEY_COLUMNS, STAT_COLUMNS

LEGACY_COLUMNS = KEY_COLUMNS + STAT_COLUMNS  # the header of files written before `probe_training`

RNG = np.random.default_rng(0)
IMAGES = RNG.normal(size=(32, 32, 32, 3)).astype("float32")
LABELS = RNG.integers(0, 10, 32)


def _mobilenet() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(alpha=0.35, weights=None, input_shape=(32, 32, 3), classes=10)
    # eager steps: tracing MobileNetV2's train step costs more than the two steps themselves
    model.compile("adam", "sparse_categorical_crossentropy", run_eagerly=True)
    return model


def _state(model: keras.Model) -> list[np.ndarray]:
    return [to_numpy(v).copy() for v in model.non_trainable_variables]


def test_mobilenet_after_two_steps_no_batchnorm_false_alarm_and_the_record_names_the_mode():
    model = _mobilenet()
    probe = (IMAGES[:16], LABELS[:16])
    monitor = VarianceMonitor(probe=probe, track=("weights", "activations"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", VarianceAnomalyWarning)
        model.fit(IMAGES, LABELS, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])  # 2 steps
    assert monitor.probe_training is True  # "auto": the model has trainable BatchNormalization layers
    assert monitor.anomalies == []
    frame = monitor.to_pandas()
    assert sorted(frame["step"].unique()) == [0, 2]
    assert frame["probe_training"].eq(True).all()
    acts = frame[(frame.kind == "activations") & (frame.step == 2)].set_index("layer")["std"]
    assert 0.1 < acts["Conv_1"] / acts["Conv1"] < 10  # the issue measured 0.397 / 0.561 in training mode

    # the probe leaves the BN moving statistics (and every other non-trainable variable) as they were
    before = _state(model)
    monitor.record(1, 99)  # (1, 2) is the epoch-end record
    for old, new in zip(before, _state(model), strict=True):
        np.testing.assert_array_equal(old, new)

    # inference mode: the moving statistics have moved off (0, 1) by 2 momentum-0.99 steps only,
    # so they do not normalize yet and the signal "vanishes"; the alarm says which mode it was
    inference = VarianceMonitor(probe=probe, track=("activations",), training=False)
    inference.set_model(model)
    with pytest.warns(VarianceAnomalyWarning, match=r"'Conv_1' std=.*'Conv1' std=.*probe in inference mode"):
        rows = inference.record(1, 2)
    assert inference.probe_training is False and {r["probe_training"] for r in rows} == {False}
    inf_std = {r["layer"]: r["std"] for r in rows}
    assert inf_std["Conv_1"] < 0.01 < 0.1 < acts["Conv_1"]

    # known answer: the training-mode record is the layer's output in training mode on the probe
    conv_1 = keras.Model(model.input, model.get_layer("Conv_1").output)
    expected = np.std(to_numpy(conv_1(probe[0], training=True)).astype(np.float64))
    assert acts["Conv_1"] == pytest.approx(expected, rel=1e-4)


def _bn_dropout_mlp(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(16, activation="relu", name="h"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.Dropout(0.5, name="drop"),
        keras.layers.Dense(3, name="out"),
    ])
    model.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


X = RNG.normal(size=(64, 6)).astype("float32")
Y = (X[:, 0] > 0).astype("int32") + (X[:, 1] > 0).astype("int32")


def test_training_mode_probe_changes_nothing_in_training_and_fixes_dropout_masks():
    plain = _bn_dropout_mlp()
    plain.fit(X, Y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    watched = _bn_dropout_mlp()
    monitor = VarianceMonitor(probe=(X[:32], Y[:32]), every_n_batches=1, training=True)
    watched.fit(X, Y, epochs=2, batch_size=16, shuffle=False, verbose=0, callbacks=[monitor])
    assert monitor.probe_passes == 9  # step 0, then after each of the 8 steps
    # BN moving statistics, dropout seed states and weights: exactly as without the monitor
    for a, b in zip(plain.variables, watched.variables, strict=True):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b), err_msg=a.path)

    # the same weights give the same record: dropout is active with the same masks at every record,
    # although a training-mode call in between advances the dropout seed state (as a train step does)
    first = {(r["layer"], r["kind"]): r["std"] for r in monitor.record(2, 100)}
    seed = watched.get_layer("drop").seed_generator.state
    before = to_numpy(seed).copy()
    watched(X[:32], training=True)
    assert not np.array_equal(to_numpy(seed), before)
    second = {(r["layer"], r["kind"]): r["std"] for r in monitor.record(2, 101)}
    assert first == second
    inference = VarianceMonitor(probe=(X[:32], Y[:32]), training=False)
    inference.set_model(watched)
    off = {(r["layer"], r["kind"]): r["std"] for r in inference.record(2, 100)}
    assert off["out", "activations"] != pytest.approx(first["out", "activations"], rel=1e-3)  # dropout and BN differ
    assert off["h", "activations"] == pytest.approx(first["h", "activations"], rel=1e-6)  # before BN: the same


def test_auto_mode_is_inference_without_trainable_batchnorm():
    keras.utils.set_random_seed(0)
    mlp = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, name="h"), keras.layers.Dropout(0.5),
                            keras.layers.Dense(3, name="out")])
    mlp.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = VarianceMonitor(probe=(X[:16], Y[:16]))
    mlp.fit(X, Y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])
    assert monitor.probe_training is False and not monitor.to_pandas()["probe_training"].any()

    frozen = _bn_dropout_mlp()
    frozen.get_layer("bn").trainable = False  # a frozen BN normalizes with its moving statistics in fit too
    frozen.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = VarianceMonitor(probe=(X[:16], Y[:16]))
    frozen.fit(X, Y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])
    assert monitor.probe_training is False


@pytest.mark.parametrize("training", ["yes", 1, None, "True"])
def test_bad_training_argument(training):
    with pytest.raises(ValueError, match=r"training must be one of \['auto', True, False\]"):
        VarianceMonitor(training=training)


def test_writers_keep_the_mode_and_older_files_still_load(tmp_path):
    model = _bn_dropout_mlp()
    paths = [tmp_path / "m.csv", tmp_path / "m.jsonl"]
    monitor = VarianceMonitor(probe=(X[:16], Y[:16]), writers=paths, track=("activations",))
    model.fit(X, Y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])
    assert COLUMNS[-1] == "probe_training"
    with open(paths[0], newline="") as fh:
        assert next(csv.reader(fh)) == list(COLUMNS)
    with open(paths[1]) as fh:
        assert json.loads(fh.readline())["probe_training"] is True
    for path in paths:
        loaded = load_history(path)
        assert [r["probe_training"] for r in loaded] == [True] * len(monitor.history)
        assert str(loaded.to_pandas()["probe_training"].dtype) == "boolean"

    # a CSV written before the column existed: loads without it, and a resumed run appends in its layout
    legacy = tmp_path / "old.csv"
    with open(legacy, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(LEGACY_COLUMNS)
        writer.writerow([0, 0, "h", 0, "activations", 0.1, 0.5, 0.25] + [""] * (len(LEGACY_COLUMNS) - 8))
    old = load_history(legacy)
    assert len(old) == 1 and "probe_training" not in old.records[0]
    assert old.to_pandas()["probe_training"].isna().all()
    resumed = VarianceMonitor(probe=(X[:16], Y[:16]), writers=[legacy], track=("activations",))
    with pytest.warns(UserWarning, match=r"without the columns \['probe_training'\]"):
        _bn_dropout_mlp().fit(X, Y, epochs=1, batch_size=32, verbose=0, callbacks=[resumed])
    with open(legacy, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(LEGACY_COLUMNS) and all(len(r) == len(LEGACY_COLUMNS) for r in rows)
    assert len(load_history(legacy)) == 1 + len(resumed.history) - 1  # (0, 0, 'h') was already there
