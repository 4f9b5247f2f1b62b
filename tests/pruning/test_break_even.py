"""The automatic path choice weighs compiling the in-step updates against the host updates they save (issue 26).

``in-step iff U · t_host > t_compile`` (:mod:`kerasinit.pruning.break_even`): a 40-step fine-tuning
schedule on MobileNetV2 stays on the host (most of its steps are too large for the step, the rest do not
repay the compilation), the same model over 2,000 steps compiles; the estimate can be overridden.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerasinit import pruning
from kerasinit.pruning.break_even import compile_seconds, in_step_updates, worth_compiling
from kerasinit.pruning.incremental import IncrementalPlan


@pytest.fixture
def real_estimate(monkeypatch):
    monkeypatch.delenv("KERASINIT_COMPILE_SECONDS", raising=False)  # the suite's default compiles always


def _mobilenet_plan(end_step: int):
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(alpha=0.35, input_shape=(32, 32, 3), weights=None, classes=10)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    schedule = pruning.PolynomialDecay(0.0, 0.8, 0, end_step, frequency=1)
    pruner = pruning.Pruner(model, schedule)
    plan = IncrementalPlan(pruner, schedule, model.optimizer)
    plan.remove()
    return plan, pruner


def test_a_short_aggressive_schedule_stays_on_the_host_and_a_long_one_compiles(real_estimate):
    plan, pruner = _mobilenet_plan(40)
    assert len(plan.pruner.weights) == 53 and plan.computations < 53  # weights of one shape share one
    short = in_step_updates(plan, 0, 39, 1)
    assert short < 39  # steps whose decrement exceeds the step's top_k are host updates anyway
    wanted, why = worth_compiling(plan, pruner, 0.0, 0, 39, 1)
    assert not wanted and "<=" in why, why

    plan, pruner = _mobilenet_plan(2000)
    assert in_step_updates(plan, 0, 1999, 1) >= 1990
    wanted, why = worth_compiling(plan, pruner, 0.0, 0, 1999, 1)
    assert wanted and ">" in why, why


def test_the_callback_records_the_choice_and_the_override_wins(monkeypatch):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(48, activation="relu"), keras.layers.Dense(3)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.random.default_rng(0).normal(size=(64, 20)).astype("float32"), np.arange(64) % 3
    for setting, path in (("1000,0", "host"), ("0,0", "in_step")):
        monkeypatch.setenv("KERASINIT_COMPILE_SECONDS", setting)
        callback = pruning.PruningCallback(pruning.PolynomialDecay(0.0, 0.5, 0, 64, frequency=1))
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[callback])
        assert callback.path == path and "to compile" in callback.path_reason, callback.path_reason
    monkeypatch.setenv("KERASINIT_COMPILE_SECONDS", "fast")
    plan, _ = _mobilenet_plan(40)
    with pytest.raises(ValueError, match="KERASINIT_COMPILE_SECONDS must be 'base,per_group'"):
        compile_seconds(plan)
