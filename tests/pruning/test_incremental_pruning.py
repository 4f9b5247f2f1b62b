"""Mask updates computed inside the train step (``kerasinit.pruning.incremental``): same masks as the host.

Each test trains the same seeded model twice, with ``PruningCallback(in_graph=True)`` and with
``in_graph=False`` (the host path of ``Pruner.update_masks``), records every mask after every
step and asserts they are identical, at the start of every step (the step computes the next step's mask at its end, the host at the
next step's start), and the final weights bit-identical. Ties
and weights that drift past the candidate set force the exact fallback (a top_k of the whole tensor); a counting
``Pruner`` subclass shows which updates ran on the host. On every backend through
``backend_features.check_prune_in_step``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerasinit import pruning
from kerasinit._arrays import to_numpy


class CountingPruner(pruning.Pruner):
    """A Pruner that counts its host updates."""

    host_updates = 0

    def update_masks(self, sparsity: float) -> None:
        self.host_updates += 1
        super().update_masks(sparsity)


def _train(in_graph: bool, schedule, *, init="glorot_uniform", lr=1e-2, refresh=None, epochs=3, span=1):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(48, activation="relu", name="a", kernel_initializer=init),
                              keras.layers.Dense(24, activation="relu", name="b", kernel_initializer=init),
                              keras.layers.Dense(3, name="c")])
    model.compile(keras.optimizers.Adam(lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=span)
    pruner = CountingPruner(model, schedule)
    callback = pruning.PruningCallback(pruner=pruner, in_graph=in_graph)
    record: list[dict[str, np.ndarray]] = []

    class Record(keras.callbacks.Callback):  # after the callback: the masks each step trains with
        def on_train_batch_begin(self, batch, logs=None):
            if keras.backend.backend() == "jax":
                pruner.model.jax_state_sync()
            record.append(pruner.get_masks())

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(160, 20)).astype("float32"), rng.integers(0, 3, 160)
    callbacks = [callback, Record()]
    if refresh is not None:
        callback.on_train_begin = _with_refresh(callback, refresh)
    model.fit(x, y, epochs=epochs, batch_size=8, verbose=0, callbacks=callbacks)
    return record, [to_numpy(v) for v in model.weights], callback, pruner


def _with_refresh(callback, every):
    original = callback.on_train_begin

    def on_train_begin(logs=None):
        original(logs)
        if callback._plan is not None:
            callback._plan.refresh_every = every

    return on_train_begin


def _assert_same(host, step):
    masks_h, weights_h, _, _ = host
    masks_s, weights_s, _, _ = step
    assert len(masks_h) == len(masks_s)
    for i, (mh, ms) in enumerate(zip(masks_h, masks_s, strict=True)):
        for name in mh:
            assert np.array_equal(mh[name], ms[name]), (i, name, int((mh[name] != ms[name]).sum()))
    for wh, ws in zip(weights_h, weights_s, strict=True):
        np.testing.assert_array_equal(wh, ws)


@pytest.mark.parametrize("schedule", [
    pruning.PolynomialDecay(0.0, 0.9, begin_step=0, end_step=50, frequency=1),
    pruning.PolynomialDecay(0.2, 0.8, begin_step=7, end_step=45, frequency=3, power=1),
    pruning.ConstantSparsity(0.7, begin_step=5, frequency=2),
], ids=["poly-f1", "poly-f3", "constant"])
def test_in_step_updates_equal_host_updates_step_by_step(schedule):
    host = _train(False, schedule)
    step = _train(True, schedule)
    _assert_same(host, step)
    assert step[2]._plan is not None and host[2]._plan is None
    # 3 epochs of 20 steps: the host ran the first batch of the fit (if due), the big jumps and the first
    # batch of each later epoch (an epoch's last step prepares no mask for the next: it ends at its own)
    plan = step[2]._plan
    first = len(schedule.update_steps(0, 1))
    assert step[3].host_updates == first + len(plan.big) + 2, (step[3].host_updates, sorted(plan.big))
    assert host[3].host_updates == len(schedule.update_steps(0, 60))
    assert 1 - step[3].get_masks()["a/kernel"].mean() == pytest.approx(schedule.target, abs=2e-3)


def test_ties_and_drift_take_the_exact_path_and_still_agree():
    schedule = pruning.PolynomialDecay(0.0, 0.9, begin_step=0, end_step=40, frequency=1)
    # every magnitude equal: the d-th smallest ties with the next at every update
    tied = keras.initializers.Constant(0.5)
    _assert_same(_train(False, schedule, init=tied, lr=0.0), _train(True, schedule, init=tied, lr=0.0))
    # a large learning rate and candidates never refreshed after the first batch: survivors outside
    # the candidate set fall below the threshold
    _assert_same(_train(False, schedule, lr=0.3), _train(True, schedule, lr=0.3, refresh=10**6))


@pytest.mark.skipif(keras.backend.backend() == "torch", reason="Keras runs one step per execution on PyTorch")
def test_steps_per_execution_and_a_later_fit_without_the_callback():
    schedule = pruning.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=30, frequency=1)
    host = _train(False, schedule)  # one step per execution: the host updates at every step
    step = _train(True, schedule, span=4)  # four: the host could only update every fourth step, the step itself each
    assert len(step[0]) == len(host[0]) // 4
    for i, masks in enumerate(step[0]):
        for name in masks:
            assert np.array_equal(host[0][4 * i][name], masks[name]), (i, name)
    # a schedule still rising when fit ends (step 60 of 200): a later fit without the callback keeps the masks
    _, _, _, pruner = _train(True, pruning.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=200, frequency=1))
    before = pruner.get_masks()
    x = np.random.default_rng(1).normal(size=(64, 20)).astype("float32")
    pruner.model.fit(x, np.zeros(64, "int32"), epochs=1, batch_size=2, verbose=0)
    assert all(np.array_equal(before[k], v) for k, v in pruner.get_masks().items())


def test_in_graph_errors_name_the_reason():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    x, y = np.zeros((8, 4), "float32"), np.zeros((8, 2), "float32")
    schedule = pruning.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=4, frequency=1)
    with pytest.raises(TypeError, match="argument `in_graph`"):
        pruning.PruningCallback(schedule, in_graph="yes")
    for kwargs, reason in (({"scope": "global"}, "scope='layer'"), ({"pattern": "2:4"}, "unstructured")):
        with pytest.raises(ValueError, match=reason):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[pruning.PruningCallback(schedule, in_graph=True, **kwargs)])
    fixed = pruning.Pruner(model)
    with pytest.raises(ValueError, match="no schedule"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[pruning.PruningCallback(pruner=fixed, in_graph=True)])


@pytest.mark.parametrize("spread", ["uniform", "misleading-sample"])
def test_candidate_refresh_holds_the_smallest_survivors(spread):
    from kerasinit.pruning.incremental import IncrementalPlan

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((300,)), keras.layers.Dense(200, name="a"), keras.layers.Dense(3, name="c")])
    model.compile("adam", "mse")
    schedule = pruning.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=400, frequency=1)
    pruner = pruning.Pruner(model, schedule)
    rng = np.random.default_rng(1)
    kernel = model.get_layer("a").kernel
    values = rng.uniform(-1, 1, kernel.shape).astype("float32")
    mask = rng.random(kernel.shape) > 0.4
    if spread == "misleading-sample":  # the smallest magnitudes sit exactly where the refresh samples the survivors:
        survivors = np.flatnonzero(mask)  # its cut-off then holds too few of them and it partitions them all
        sampled = survivors[:: max(1, survivors.size // 4096)]
        flat = np.full(values.size, 0.5, "float32")
        flat[sampled] = rng.uniform(0, 1e-3, sampled.size)
        values = flat.reshape(values.shape)
    kernel.assign(values)
    pruner.masks["a/kernel"].assign(mask)
    plan = IncrementalPlan(pruner, schedule, model.optimizer)
    weight_plan = next(p for p in plan.plans if p.weight.name == "a/kernel")
    plan.refresh()
    chosen = to_numpy(weight_plan.cand)
    c = weight_plan.candidates
    assert c < mask.sum() and len(set(chosen.tolist())) == c
    magnitudes = np.where(mask, np.abs(values), np.inf).reshape(-1)
    assert mask.reshape(-1)[chosen].all()  # survivors only
    assert magnitudes[chosen].max() == np.sort(magnitudes)[c - 1]  # the c smallest (up to ties at the c-th)
    assert int(to_numpy(weight_plan.kept)) == int(mask.sum())
