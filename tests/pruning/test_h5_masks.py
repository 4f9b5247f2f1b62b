"""Masks never come back silently as all ones: legacy .h5 saving is refused, config-only rebuilds say so."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
from conftest import to_np

from kerasinit import pruning
from kerasinit.pruning.persistence import unknown_masks


def _pruned():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu", name="a"),
                              keras.layers.Dense(3, name="b")])
    pruning.prune(model, 0.7)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_saving_a_pruned_model_as_legacy_h5_is_refused(tmp_path):
    model = _pruned()
    with pytest.raises(ValueError, match=r"legacy HDF5 format \(\.h5\).*Save the pruned model as \.keras"):
        model.save(tmp_path / "m.h5")
    plain = pruning.strip(model)  # the advertised way out: zeros baked in, no masks
    plain.save(tmp_path / "plain.h5")
    again = keras.models.load_model(tmp_path / "plain.h5")
    assert np.count_nonzero(to_np(again.get_layer("a").kernel)) == np.count_nonzero(to_np(model.get_layer("a").kernel))
    model.save(tmp_path / "m.keras")  # .keras keeps the masks, and loads them as known
    loaded = pruning.load_model(tmp_path / "m.keras")
    assert unknown_masks(loaded) == [] and pruning.sparsity_report(loaded).iloc[-1]["masked"]


def test_masks_rebuilt_from_a_config_alone_are_reported_and_refused(tmp_path):
    model = _pruned()
    clone = keras.models.clone_model(model)  # layers rebuilt from their configs: all-ones masks
    assert unknown_masks(clone) == ["a/kernel", "b/kernel"]
    clone.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.random.default_rng(0).normal(size=(32, 8)).astype("float32"), np.arange(32) % 3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clone.fit(x, y, epochs=1, verbose=0)
    assert any("holds no saved values" in str(w.message) for w in caught), [str(w.message) for w in caught]
    pruning.prune(clone, 0.7)  # pruning again makes the masks real
    assert unknown_masks(clone) == []
