"""Writers: CSV / JSON lines / TensorBoard round trips and clean appends on resume."""

from __future__ import annotations

import json
from collections import Counter

import keras
import numpy as np
import pandas as pd
import pytest

from kerasinit.monitor import (
    CSVWriter,
    JSONLinesWriter,
    TensorBoardWriter,
    VarianceMonitor,
    load_history,
)
from kerasinit.monitor.tensorboard import read_tensorboard_histograms, read_tensorboard_scalars
from kerasinit.monitor.writers import record_key

RNG = np.random.default_rng(2)
X = RNG.standard_normal((32, 5)).astype("float32")
Y = RNG.standard_normal((32, 1)).astype("float32")


def _model(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(6, activation="tanh", name="t"), keras.layers.Dense(6, activation="relu", name="r"), keras.layers.Dense(1, name="o")]
    )
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    return model


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a = a.sort_values(["step", "kind", "depth"]).reset_index(drop=True)
    b = b.sort_values(["step", "kind", "depth"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-12)


def test_csv_and_jsonl_round_trip(tmp_path):
    csv_path, jsonl_path = tmp_path / "m.csv", tmp_path / "sub" / "m.jsonl"
    monitor = VarianceMonitor(probe=(X, Y), track=("weights", "activations", "gradients", "output_gradients"), writers=[csv_path, str(jsonl_path)])
    _model().fit(X, Y, epochs=2, batch_size=8, callbacks=[monitor], verbose=0)
    expected = monitor.to_pandas()
    assert len(expected) == 3 * 3 * 4  # 3 records x 3 layers x 4 kinds
    _assert_same(load_history(csv_path).to_pandas(), expected)
    _assert_same(load_history(jsonl_path).to_pandas(), expected)
    first = json.loads(jsonl_path.read_text().splitlines()[0])
    assert first["kind"] == "weights" and first["step"] == 0 and first["dead_fraction"] is None


def test_non_finite_values_survive_the_files(tmp_path):
    record = {"epoch": 0, "step": 0, "layer": "d", "depth": 0, "kind": "weights", "mean": float("nan"), "std": float("inf"), "min": -float("inf")}
    for writer_cls, name in ((CSVWriter, "a.csv"), (JSONLinesWriter, "a.jsonl")):
        writer = writer_cls(tmp_path / name)
        writer.write([record])
        writer.close()
        (back,) = load_history(tmp_path / name).records
        assert back["std"] == float("inf") and back["min"] == -float("inf")
        # JSON has no NaN: it is written as null, i.e. missing
        assert np.isnan(back["mean"]) if name.endswith(".csv") else "mean" not in back


def test_tensorboard_scalars_and_histograms_readable(tmp_path):
    logdir = tmp_path / "tb"
    monitor = VarianceMonitor(probe=(X, Y), histograms=True, histogram_bins=20, writers=[TensorBoardWriter(logdir)])
    _model().fit(X, Y, epochs=1, batch_size=16, callbacks=[monitor], verbose=0)
    scalars = {(tag, step): value for tag, step, value in read_tensorboard_scalars(logdir)}
    frame = monitor.to_pandas()
    for _, row in frame.iterrows():
        assert scalars[(f"{row.kind}/{row.layer}/std", row.step)] == pytest.approx(row["std"], rel=1e-6)
    assert ("gradients/r/grad_weight_rms_ratio", 2) in scalars
    hists = {(tag, step): buckets for tag, step, buckets in read_tensorboard_histograms(logdir)}
    hist_tags = set(hists)
    assert ("activations_hist/r", 0) in hist_tags and ("weights_hist/o", 2) in hist_tags
    assert len(monitor.histograms) == 2 * 3 * 3
    entry = monitor.histograms[0]
    assert (entry.layer, entry.kind, entry.step) == ("t", "weights", 0)
    assert entry.counts.sum() == 5 * 6  # every kernel entry counted once
    assert entry.counts.size == 20 and entry.edges.size == 21
    np.testing.assert_allclose(hists[("weights_hist/t", 0)][:, 2], entry.counts)
    np.testing.assert_allclose(hists[("weights_hist/t", 0)][:, 0], entry.edges[:-1])


def test_resume_appends_without_duplicates_or_gaps(tmp_path):
    paths = [tmp_path / "m.csv", tmp_path / "m.jsonl"]
    logdir = tmp_path / "tb"
    model = _model()
    first = VarianceMonitor(probe=(X, Y), every_n_batches=3, writers=[*paths, TensorBoardWriter(logdir)])
    model.fit(X, Y, epochs=2, batch_size=8, callbacks=[first], verbose=0)
    model.save(tmp_path / "ckpt.keras")  # weights and optimizer state (iterations) survive

    restored = keras.saving.load_model(tmp_path / "ckpt.keras")
    writers = [CSVWriter(paths[0]), JSONLinesWriter(paths[1]), TensorBoardWriter(logdir)]
    second = VarianceMonitor(probe=(X, Y), every_n_batches=3, writers=writers)
    restored.fit(X, Y, epochs=4, initial_epoch=2, batch_size=8, callbacks=[second], verbose=0)

    # the resumed run's initial record (epoch 2, step 8) is the first run's last one: skipped once
    per_record = 3 * 3
    assert [w.skipped for w in writers] == [per_record] * 3
    expected_steps = [(0, 0), (0, 3), (1, 4), (1, 6), (2, 8), (2, 9), (3, 12), (3, 15), (4, 16)]
    for path in paths:
        records = load_history(path).records
        keys = [record_key(r) for r in records]
        assert not [k for k, n in Counter(keys).items() if n > 1]
        assert sorted({(k[0], k[1]) for k in keys}) == expected_steps
        assert len(keys) == len(expected_steps) * per_record
    tb = Counter((tag, step) for tag, step, _ in read_tensorboard_scalars(logdir))
    assert max(tb.values()) == 1
    assert sorted({step for _, step in tb}) == [s for _, s in expected_steps]


def test_a_line_cut_by_a_crash_is_replaced_not_kept(tmp_path):
    path = tmp_path / "m.jsonl"
    monitor = VarianceMonitor(probe=(X, Y), track="weights", writers=[path])
    model = _model()
    model.fit(X, Y, epochs=1, batch_size=16, callbacks=[monitor], verbose=0)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + lines[-1][:10])  # the last record was cut mid-write
    resumed = VarianceMonitor(probe=(X, Y), track="weights", writers=[path])
    model.fit(X, Y, epochs=2, initial_epoch=1, batch_size=16, callbacks=[resumed], verbose=0)
    keys = [record_key(r) for r in load_history(path).records]
    assert len(keys) == len(set(keys)) == 3 * 3  # steps 0, 2, 4; the cut record written again


def test_mismatched_csv_header_is_refused(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="does not match the monitor's columns"):
        CSVWriter(path).open()
