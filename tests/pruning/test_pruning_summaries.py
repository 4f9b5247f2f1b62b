"""``PruningCallback(log_dir=...)``: per-weight sparsity and threshold in TensorBoard at each mask update (issue 22)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasinit import pruning
from kerasinit._arrays import to_numpy
from kerasinit.pruning.summaries import PruningSummaries, sparsity_tag, threshold_tag

SCHEDULE = pruning.PolynomialDecay(0.2, 0.8, 2, 9, 3, 2)  # updates at steps 2, 4, 6, 8, 9 (the end step)
BATCHES, EPOCHS = 4, 3  # optimizer steps 0..11


def read_events(log_dir) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} of the scalars in the event files under ``log_dir``.

    Read by TensorBoard's own reader when the ``tensorboard`` package is installed, else by the
    monitor's reader (TensorFlow's record reader and event protos, the files TensorBoard reads).
    """
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from tensorboard.util import tensor_util
    except ImportError:
        from kerasinit.monitor.tensorboard import read_tensorboard_scalars

        found: dict[str, list[tuple[int, float]]] = {}
        for tag, step, value in read_tensorboard_scalars(log_dir):
            found.setdefault(tag, []).append((step, value))
        return found

    accumulator = EventAccumulator(str(log_dir), size_guidance={"tensors": 0, "scalars": 0})
    accumulator.Reload()
    assert not accumulator.Tags()["scalars"]  # the scalars plugin's tensor summaries, as tf.summary writes them
    return {tag: [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in accumulator.Tensors(tag)]
            for tag in accumulator.Tags()["tensors"]}


class MasksAtStep(keras.callbacks.Callback):
    """After the pruning callback at each batch begin: the masks in force for the step and the least kept |w|."""

    def __init__(self, pruning_callback):
        super().__init__()
        self.pruning_callback, self.step, self.seen, self.epoch_ends = pruning_callback, 0, {}, {}

    def on_train_begin(self, logs=None):
        self.step = int(to_numpy(self.model.optimizer.iterations))

    def _row(self):
        self.model  # noqa: B018 - on JAX, Keras syncs fit's state into the variables
        pruner, row = self.pruning_callback.pruner, {}
        for w in pruner.weights:
            mask = pruner.masks[w.name].numpy().astype(bool)
            row[sparsity_tag(w.name)] = float(np.float32(np.count_nonzero(~mask) / mask.size))
            row[threshold_tag(w.name)] = float(np.float32(np.abs(to_numpy(w.variable))[mask].min()))
        return row

    def on_train_batch_begin(self, batch, logs=None):
        self.seen[self.step] = self._row()
        self.step += 1

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_ends[self.step - 1] = self._row()  # after the epoch's last step (self.step - 1)


def run(log_dir, in_graph=None, log_every="update"):
    """Train a small Dense model with a schedule; return (events, masks seen per step, callback)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(32, activation="relu", name="a"),
                              keras.layers.Dense(3, name="c")])
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = pruning.PruningCallback(SCHEDULE, in_graph=in_graph, log_dir=log_dir, log_every=log_every)
    seen = MasksAtStep(callback)  # listed after: sees the step's masks on both paths, keeps the in-step default
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8 * BATCHES, 12)).astype("float32"), rng.integers(0, 3, 8 * BATCHES)
    model.fit(x, y, epochs=EPOCHS, batch_size=8, verbose=0, callbacks=[callback, seen])
    return read_events(log_dir), (seen.seen if log_every == "update" else seen.epoch_ends), callback


def check(log_dir, in_graph=None, log_every="update"):
    """The events hold, per pruned weight, the masks' sparsity and least kept |w| at each update's step."""
    events, seen, callback = run(log_dir, in_graph, log_every)
    names = ["a/kernel", "c/kernel"]
    assert set(events) == {f(n) for n in names for f in (sparsity_tag, threshold_tag)}, sorted(events)
    total = BATCHES * EPOCHS
    if log_every == "update":  # each update's masks and the weights its step starts from
        steps = SCHEDULE.update_steps(0, total)
    else:  # each epoch's last step: the masks it trained with and the weights after it
        steps = [(e + 1) * BATCHES - 1 for e in range(EPOCHS)]
    assert steps == ([2, 4, 6, 8, 9] if log_every == "update" else [3, 7, 11])
    for tag, rows in events.items():
        assert [s for s, _ in rows] == steps, (tag, rows)
        for step, value in rows:
            assert value == seen[step][tag], (tag, step, value, seen[step][tag])  # exact: float32 both sides
    for name in names:  # the schedule's sparsity at each step (layer scope: round((1 - s) n) kept)
        size = 12 * 32 if name == "a/kernel" else 32 * 3
        for step, value in events[sparsity_tag(name)]:
            update = SCHEDULE.update_steps(0, step + 1)[-1]  # the last update at or before the step
            assert value == pytest.approx(1 - pruning.keep_count(size, SCHEDULE.sparsity(update)) / size, abs=1e-7)
    return callback.path, events


@pytest.mark.parametrize("log_every", ["update", "epoch"])
def test_tensorboard_events_hold_each_updates_sparsity_and_threshold(tmp_path, log_every):
    path_s, in_step = check(tmp_path / "in_step", None, log_every)
    path_h, host = check(tmp_path / "host", False, log_every)
    assert (path_s, path_h) == ("in_step", "host")
    assert in_step == host  # both paths log the same masks under the same steps


def test_a_rerun_over_the_same_steps_writes_nothing_twice(tmp_path):
    _, first = check(tmp_path)
    again, _, callback = run(tmp_path)  # a fresh model from step 0 into the same log_dir (a resumed run's overlap)
    assert callback.summaries.logged == [2, 4, 6, 8, 9]
    assert again == first  # each (tag, step) once, the first run's values
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1  # the rerun had nothing new to write


def test_masks_that_do_not_hold_the_steps_kept_counts_are_not_written(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, name="a")])
    pruner = pruning.prune(model, 0.4)
    summaries = PruningSummaries(tmp_path)
    with pytest.warns(UserWarning, match=r"step 7 not written.*'a/kernel': \(12, 11\)"):
        assert not summaries.write(7, pruner, {"a/kernel": 11})
    assert summaries.refused == [7] and summaries.logged == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert summaries.write(8, pruner, {"a/kernel": 12})
    summaries.close()
    events = read_events(tmp_path)
    assert events == {sparsity_tag("a/kernel"): [(8, pytest.approx(0.4))],
                      threshold_tag("a/kernel"): [(8, float(np.float32(np.abs(to_numpy(model.layers[0].kernel))[pruner.get_masks()["a/kernel"] == 1].min())))]}


def test_bad_log_dir_and_log_every_are_refused():
    with pytest.raises(TypeError, match=r"PruningCallback: argument `log_dir` must be None or a directory path .*received 3 \(type int\)"):
        pruning.PruningCallback(SCHEDULE, log_dir=3)
    with pytest.raises(TypeError, match="argument `log_dir`"):
        pruning.PruningCallback(SCHEDULE, log_dir=True)
    with pytest.raises(ValueError, match=r"argument `log_every` must be one of \['update', 'epoch'\]; received 'step'"):
        pruning.PruningCallback(SCHEDULE, log_dir="x", log_every="step")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_tensorboard_events_on_other_backends(tmp_path, backend):
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "import keras, test_pruning_summaries as t\n"
            f"print(keras.backend.backend(), t.check({str(tmp_path / 'a')!r})[0], t.check({str(tmp_path / 'b')!r}, log_every='epoch')[0])\n")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = "in_step" if backend == "jax" else "host"  # PyTorch's eager step: the host path by default
    assert proc.stdout.split()[-3:] == [backend, path, path]
