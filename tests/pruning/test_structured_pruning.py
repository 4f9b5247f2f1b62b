"""Structured magnitude pruning on ``prune``/``Pruner``/``PruningCallback`` (issue 13): N:M and channels.

Every mask is checked against a NumPy reference written here from the definitions; the TFMOT
check compares with TFMOT's own ``sparsity_m_by_n`` masks (in a fresh interpreter, see
``tests/pruning/test_tfmot.py``). The same features run in ``fit`` on every backend in
``backend_features.check_prune_structured``.
"""

from __future__ import annotations

import importlib.util
import json

import keras
import numpy as np
import pytest
from conftest import run_python

from kerasinit import pruning
from kerasinit._arrays import to_numpy
from kerasinit.pruning.constraint import MaskConstraint


def _n_m_reference(w: np.ndarray, n: int, m: int, axis: int) -> np.ndarray:
    """Keep the n largest |w| of every m consecutive entries along ``axis`` (lower index on ties), by loops."""
    moved = np.moveaxis(np.abs(w), axis, 0)
    keep = np.zeros(moved.shape, bool)
    for start in range(0, moved.shape[0], m):
        block = moved[start:start + m]
        for index in np.ndindex(block.shape[1:]):
            column = block[(slice(None), *index)]
            order = sorted(range(m), key=lambda i, c=column: (-c[i], i))[:n]
            for i in order:
                keep[(start + i, *index)] = True
    return np.moveaxis(keep, 0, axis)


def _model() -> keras.Model:
    keras.utils.set_random_seed(3)
    inputs = keras.Input((6, 6, 8))
    x = keras.layers.Conv2D(8, 3, name="conv")(inputs)
    x = keras.layers.Conv2DTranspose(8, 3, name="deconv")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, name="dense")(x)
    x = keras.layers.EinsumDense("ab,bc->ac", output_shape=8, name="einsum")(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize(("pattern", "n", "m"), [("2:4", 2, 4), ("1:4", 1, 4), ("3:8", 3, 8)])
def test_pattern_keeps_the_n_largest_of_every_m_along_the_input_axis(pattern, n, m):
    model = _model()
    before = {layer.name: to_numpy(layer.kernel) for layer in model.layers if hasattr(layer, "kernel")}
    pruner = pruning.prune(model, None, pattern=pattern)
    axes = {"conv": 2, "deconv": 3, "dense": 0, "einsum": 0}  # input channels: Conv -2, Transpose -1, Dense/einsum 0
    masks = pruner.get_masks()
    for name, w in before.items():
        expected = _n_m_reference(w, n, m, axes[name])
        np.testing.assert_array_equal(masks[f"{name}/kernel"].astype(bool), expected, err_msg=name)
        after = to_numpy(model.get_layer(name).kernel)
        assert (after[~expected] == 0).all() and (after[expected] == w[expected]).all(), name
    assert pruner.sparsity == pytest.approx(1 - n / m)


def test_channel_granularity_ranks_output_channels_by_their_norm():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")])
    # channel 0: one large weight (L1 3.0, L2 3.0); channel 1: four medium (L1 4.0, L2 2.0); channel 2: small
    kernel = np.array([[3.0, 1.0, 0.1], [0.0, 1.0, 0.1], [0.0, 1.0, 0.1], [0.0, 1.0, 0.1]], "float32")
    model.get_layer("d").kernel.assign(kernel)
    for norm, kept in (("l1", 1), ("l2", 0)):
        model.get_layer("d").kernel.assign(kernel)
        pruner = pruning.prune(model, 0.6, granularity="channel", norm=norm)  # keep round(3 · 0.4) = 1 channel
        mask = pruner.get_masks()["d/kernel"]
        expected = np.zeros((4, 3), "uint8")
        expected[:, kept] = 1
        np.testing.assert_array_equal(mask, expected, err_msg=norm)
        w = to_numpy(model.get_layer("d").kernel)
        assert (w[:, kept] == kernel[:, kept]).all() and not np.delete(w, kept, axis=1).any()
        pruning.strip(model, copy=False)


def test_channel_counts_per_layer_type_and_channels_never_regrow():
    model = _model()
    schedule = pruning.PolynomialDecay(0.0, 0.75, begin_step=0, end_step=6, frequency=2)
    callback = pruning.PruningCallback(schedule, granularity="channel")
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 6, 6, 8)).astype("float32"), rng.normal(size=(64, 8)).astype("float32")
    axes = {"conv/kernel": 3, "deconv/kernel": 2, "dense/kernel": 1, "einsum/kernel": 1}  # output channels
    history = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            history.append({k: np.moveaxis(v, axes[k], 0).reshape(v.shape[axes[k]], -1).any(axis=1)
                            for k, v in callback.pruner.get_masks().items()})

    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[callback, Record()])
    assert [s for s, _ in callback.updates] == [0, 2, 4, 6]
    final = history[-1]
    for name, kept in final.items():
        channels = kept.size
        assert kept.sum() == max(round(channels * 0.25), 1), name  # keep_count of the channels
        mask = callback.pruner.get_masks()[name]
        assert (np.moveaxis(mask, axes[name], 0).reshape(channels, -1).all(axis=1) == kept).all()  # whole channels
    for earlier, later in zip(history, history[1:], strict=False):
        for name in final:
            assert not (later[name] & ~earlier[name]).any(), name  # a pruned channel stays pruned


def test_structured_pruning_errors_name_the_argument_and_leave_the_model_unpruned():
    model = _model()
    cases = [
        ({"scope": "global", "granularity": "channel"}, "argument `scope` must be 'layer'"),
        ({"pattern": "2:4", "granularity": "channel"}, "exclude each other"),
        ({"pattern": "2:4", "overrides": {"dense": 0.5}}, "argument `overrides` must be empty"),
        ({"granularity": "filter"}, "granularity"),
        ({"granularity": "channel", "norm": "l3"}, "norm"),
        ({"pattern": "2:3"}, "multiple of M=3"),  # conv's 8 input channels
        ({"pattern": "4:2"}, "1 <= N <= M"),
        ({"pattern": (2, 4)}, "'N:M'"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
            pruning.Pruner(model, None, **kwargs)
    with pytest.raises(ValueError, match="contradicts pattern"):
        pruning.prune(model, 0.8, pattern="2:4")
    with pytest.raises(ValueError, match="`sparsity` is required"):
        pruning.prune(model, None)
    with pytest.raises(ValueError, match="no input axis"):
        keras.utils.set_random_seed(0)
        emb = keras.Sequential([keras.Input((3,), dtype="int32"), keras.layers.Embedding(8, 4)])
        pruning.prune(emb, None, pattern="2:4")
    for layer in model.layers:  # nothing was attached by any failed call
        assert not isinstance(getattr(layer, "kernel_constraint", None), MaskConstraint), layer.name


TFMOT_N_M = """
import json
import numpy as np, tf_keras as k, keras
from kerasinit import pruning as P
from kerasinit.pruning import tfmot as B
k.utils.set_random_seed(0)
model = k.Sequential([k.Input((6, 6, 4)), k.layers.Conv2D(8, 3, name="conv"), k.layers.Flatten(), k.layers.Dense(12, name="dense"),
                      k.layers.Dense(4, name="out")])
weights = model.get_weights()
rng = np.random.default_rng(0)
x, y = rng.normal(size=(8, 6, 6, 4)).astype("float32"), rng.normal(size=(8, 4)).astype("float32")
schedule = P.ConstantSparsity(0.5, begin_step=0, frequency=1)
masks = {}
for spelling in ({"sparsity_m_by_n": (2, 4)}, {"pattern": "2:4"}, {"pattern": "1:4", "sparsity_m_by_n": (3, 4)}):
    pm = B.prune_low_magnitude(model, schedule, layers=["conv", "dense"], **spelling)
    pm.compile(k.optimizers.SGD(0.0), "mse")
    pm.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=B.callbacks())  # TFMOT sets N:M masks at its step 1
    masks[json.dumps(spelling)] = {n: m.tolist() for n, m in B.get_masks(pm).items()}
native = keras.Sequential([keras.Input((6, 6, 4)), keras.layers.Conv2D(8, 3, name="conv"), keras.layers.Flatten(),
                           keras.layers.Dense(12, name="dense"), keras.layers.Dense(4, name="out")])
native.set_weights(weights)
masks["native 2:4"] = {n: m.tolist() for n, m in P.prune(native, None, pattern="2:4", layers=["conv", "dense"]).get_masks().items()}
masks["native 1:4"] = {n: m.tolist() for n, m in P.prune(native, None, pattern="1:4", layers=["conv", "dense"]).get_masks().items()}
errors = []
for bad in ({"pattern": "2:4", "sparsity_m_by_n": (1, 4)}, {"sparsity_m_by_n": (4, 4)}, {"sparsity_m_by_n": "2:4"},
            {"pattern": "2:4", "overrides": {"conv": 0.5}}):
    try:
        B.prune_low_magnitude(model, schedule, layers=["conv", "dense"], **bad)
        errors.append("no error")
    except ValueError as exc:
        errors.append(str(exc))
print(json.dumps({"masks": masks, "errors": errors}))
"""


def test_tfmot_bridge_accepts_both_spellings_and_matches_native_n_m_masks():
    if importlib.util.find_spec("tensorflow_model_optimization") is None:  # not importorskip: importing TFMOT
        pytest.skip("tensorflow_model_optimization is not installed")   # sets TF_USE_LEGACY_KERAS=1 in this worker
    out = json.loads(run_python(TFMOT_N_M).strip().splitlines()[-1])
    masks = out["masks"]
    tfmot_2_4, ours_2_4 = masks['{"sparsity_m_by_n": [2, 4]}'], masks['{"pattern": "2:4"}']
    assert tfmot_2_4 == ours_2_4  # the two spellings build the same TFMOT model
    for name in ("conv/kernel", "dense/kernel"):
        assert np.array_equal(tfmot_2_4[name], masks["native 2:4"][name]), name  # TFMOT's masks = native masks
        assert np.array_equal(masks['{"pattern": "1:4", "sparsity_m_by_n": [3, 4]}'][name], masks["native 1:4"][name])
        assert np.asarray(tfmot_2_4[name]).mean() == 0.5
    e = out["errors"]
    assert "disagree" in e[0] and "sparsity_m_by_n=(2, 4)" in e[0]
    assert "0 < m < n" in e[1] and "0 < m < n" in e[2]
    assert "`overrides` must be empty" in e[3]
