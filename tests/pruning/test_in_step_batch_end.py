"""What other callbacks see at every batch is the host path's, bit for bit (issue 21 item 5).

The in-step path prepares step t+1's mask inside step t: a callback reading the weights at the end of
step t (or at the begin of step t+1, before the pruning callback) would see it one step early, so the
automatic choice takes the host path when another callback observes batches.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from kerasinit import pruning
from kerasinit._arrays import to_numpy

SCHEDULE = pruning.PolynomialDecay(0.1, 0.7, 0, 7, 3, 1)  # an update at every step, in-step by default
#: the in-process tests read the weights of a TensorFlow step; JAX's callbacks see them only after a state sync
#: (its own test runs in a subprocess, below) and PyTorch's default is the host path (an eager step gains nothing)
TENSORFLOW_STEP = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                     reason="in-process checks of TensorFlow's step (JAX: the subprocess test)")


class BatchEnd(keras.callbacks.Callback):
    """Records, at every batch end, the fraction of exact zeros of every pruned kernel."""

    def __init__(self, model):
        super().__init__()
        self.weights = pruning.select(model)
        self.seen: list[dict[str, float]] = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append({w.name: float(np.mean(to_numpy(w.variable) == 0)) for w in self.weights})


class BatchBegin(BatchEnd):
    """The same at every batch begin (it runs before the pruning callback when listed first)."""

    on_train_batch_end = keras.callbacks.Callback.on_train_batch_end

    def on_train_batch_begin(self, batch, logs=None):
        BatchEnd.on_train_batch_end(self, batch, logs)


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(48, activation="relu", name="a"),
                              keras.layers.Dense(3, name="c")])
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _fit(in_graph, observer=BatchEnd, first=False, extra=(), epochs=2):
    model = _model()
    callback = pruning.PruningCallback(SCHEDULE, in_graph=in_graph)
    seen = observer(model) if observer is not None else None
    ours = [seen] if seen is not None else []
    callbacks = [*ours, callback, *extra] if first else [callback, *ours, *extra]
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 20)).astype("float32"), rng.integers(0, 3, 32)
    model.fit(x, y, epochs=epochs, batch_size=8, verbose=0, callbacks=callbacks)
    return callback, (seen.seen if seen is not None else None), [to_numpy(v) for v in model.weights]


@TENSORFLOW_STEP
def test_a_batch_end_callback_sees_the_host_paths_sparsity_at_every_batch():
    host, seen_h, weights_h = _fit(False)
    auto, seen_a, weights_a = _fit(None)
    assert len(seen_h) == 8
    assert seen_h[0]["a/kernel"] == pytest.approx(SCHEDULE.sparsity(0), abs=1 / 960)  # step 0's mask at step 0's end
    assert seen_a == seen_h  # bit for bit: the same floats at every batch end
    for wh, wa in zip(weights_h, weights_a, strict=True):
        np.testing.assert_array_equal(wh, wa)
    assert host.path == "host" and auto.path == "host"
    assert "BatchEnd" in auto.path_reason and "on_train_batch_end" in auto.path_reason


@TENSORFLOW_STEP
def test_a_batch_begin_callback_listed_before_sees_the_host_paths_sparsity():
    _, seen_h, _ = _fit(False, BatchBegin, first=True)
    auto, seen_a, _ = _fit(None, BatchBegin, first=True)
    assert seen_a == seen_h
    assert auto.path == "host" and "BatchBegin" in auto.path_reason
    after, _, _ = _fit(None, BatchBegin, first=False)  # listed after: it sees the step's mask on both paths
    assert after.path == "in_step"


@TENSORFLOW_STEP
def test_without_batch_observers_the_default_stays_in_step():
    quiet, _, _ = _fit(None, observer=None, extra=[keras.callbacks.ProgbarLogger(), keras.callbacks.TerminateOnNaN()])
    assert quiet.path == "in_step", quiet.path_reason
    assert "frequency 1" in quiet.path_reason


@TENSORFLOW_STEP
def test_a_callback_that_declares_it_reads_no_weights_per_batch_keeps_the_in_step_path():
    class Declared(BatchEnd):
        reads_batch_weights = False

    callback, _, _ = _fit(None, Declared)
    assert callback.path == "in_step"


@TENSORFLOW_STEP
def test_checkpoints_observe_batches_only_when_they_save_per_batch(tmp_path):
    per_epoch = keras.callbacks.ModelCheckpoint(str(tmp_path / "e.weights.h5"), save_weights_only=True)
    callback, _, _ = _fit(None, observer=None, extra=[per_epoch])
    assert callback.path == "in_step"
    per_batch = keras.callbacks.ModelCheckpoint(str(tmp_path / "b.weights.h5"), save_weights_only=True, save_freq=2)
    callback, _, _ = _fit(None, observer=None, extra=[per_batch])
    assert callback.path == "host" and "ModelCheckpoint" in callback.path_reason


@TENSORFLOW_STEP
def test_forcing_in_graph_with_a_batch_observer_warns_once_naming_it():
    with pytest.warns(UserWarning, match=r"in_graph=True.*BatchEnd.*on_train_batch_end") as record:
        forced, seen_f, _ = _fit(True)
    assert sum("BatchEnd" in str(w.message) for w in record) == 1  # two epochs, one warning
    assert forced.path == "in_step" and "in_graph=True" in forced.path_reason
    _, seen_h, _ = _fit(False)
    assert seen_f != seen_h  # what the warning is about: the in-step path is a step ahead at batch ends


def test_jax_batch_end_callbacks_see_the_host_paths_sparsity():
    code = textwrap.dedent(
        """
        import keras, numpy as np
        from kerasinit import pruning
        from kerasinit._arrays import to_numpy
        schedule = pruning.PolynomialDecay(0.1, 0.7, 0, 7, 3, 1)
        def fit(in_graph):
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(48, activation="relu", name="a"),
                                      keras.layers.Dense(3, name="c")])
            model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            weights = pruning.select(model)
            seen = []
            class BatchEnd(keras.callbacks.Callback):
                def on_train_batch_end(self, batch, logs=None):
                    self.model  # Keras syncs JAX's training state into the variables
                    seen.append([float(np.mean(to_numpy(w.variable) == 0)) for w in weights])
            callback = pruning.PruningCallback(schedule, in_graph=in_graph)
            rng = np.random.default_rng(0)
            x, y = rng.normal(size=(32, 20)).astype("float32"), rng.integers(0, 3, 32)
            model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[callback, BatchEnd()])
            return seen, getattr(callback, "path", None)
        seen_h, path_h = fit(False)
        seen_a, path_a = fit(None)
        assert len(seen_h) == 8, seen_h
        assert seen_a == seen_h, (seen_a, seen_h)
        print(path_h, path_a)
        """
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["host", "host"]
