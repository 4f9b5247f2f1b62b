"""In-step mask updates end each epoch where the host path does: never one update ahead of the schedule."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerasinit import pruning
from kerasinit._arrays import to_numpy


def _fit(in_graph: bool, schedule, batches: int, epochs: int):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(48, activation="relu", name="a"),
                              keras.layers.Dense(3, name="c")])
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = pruning.PruningCallback(schedule, in_graph=in_graph)
    ends: list[dict[str, float]] = []

    class EpochEnd(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            ends.append({w.name: float(np.mean(to_numpy(w.variable) == 0)) for w in pruning.select(model)})

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8 * batches, 20)).astype("float32"), rng.integers(0, 3, 8 * batches)
    model.fit(x, y, epochs=epochs, batch_size=8, verbose=0, callbacks=[callback, EpochEnd()])
    return callback.pruner.get_masks(), [to_numpy(v) for v in model.weights], ends


@pytest.mark.parametrize(("batches", "epochs"), [(2, 1), (3, 2), (1, 3)])
def test_the_model_after_fit_holds_the_last_trained_steps_mask(batches, epochs):
    schedule = pruning.PolynomialDecay(0.2, 0.6, 0, 3 * batches * epochs, 3, 1)  # still pruning when fit ends
    masks_h, weights_h, ends_h = _fit(False, schedule, batches, epochs)
    masks_s, weights_s, ends_s = _fit(True, schedule, batches, epochs)
    last = batches * epochs - 1
    expected = pruning.keep_count(48 * 20, schedule.sparsity(last))
    assert int(masks_h["a/kernel"].sum()) == expected  # the host path: the schedule at the last step trained
    for name in masks_h:
        assert np.array_equal(masks_h[name], masks_s[name]), name
    for wh, ws in zip(weights_h, weights_s, strict=True):
        np.testing.assert_array_equal(wh, ws)
    assert ends_h == ends_s  # what callbacks see at every epoch end
