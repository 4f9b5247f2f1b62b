"""Ctrl-C in the experiments: an interrupt is remembered (a swallowed one still stops the next step),
and the experiments say what was finished and kept. Real trainings, real SIGINTs."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from kerasinit.experiments.datasets import load
from kerasinit.experiments.lottery import run_lottery
from kerasinit.experiments.models import build
from kerasinit.experiments.training import ExperimentInterrupted, interrupts_remembered, train

TINY = {"model": "mlp", "model_options": {"depth": 1, "width": 16}, "epochs": 2, "batch_size": 128,
        "learning_rate": 1e-2, "controls": []}


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def test_a_swallowed_interrupt_still_stops_the_next_training(digits):
    net = build("mlp", digits.input_shape, digits.n_classes, 0, depth=1, width=8)
    before = signal.getsignal(signal.SIGINT)
    with interrupts_remembered():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1.0)  # the handler raises here
        except KeyboardInterrupt:
            pass  # swallowed, as library clean-up code (a __del__, a finally) may do
        with pytest.raises(KeyboardInterrupt):
            train(net, digits, epochs=1, batch_size=128, seed=0)
    assert signal.getsignal(signal.SIGINT) is before  # restored, and the interrupt forgotten:
    assert train(net, digits, epochs=1, batch_size=128, seed=0).steps == 9


def test_interrupted_lottery_says_what_it_kept_and_resumes_with_every_round(digits, tmp_path):
    def stop_at_round_2(kind, rnd, model):
        if rnd == 2:
            raise KeyboardInterrupt  # as Ctrl-C right before round 2's training

    with pytest.raises(ExperimentInterrupted) as info:
        run_lottery(dataset=digits, rounds=3, out=tmp_path, on_train_begin=stop_at_round_2, **TINY)
    exc = info.value
    assert isinstance(exc, KeyboardInterrupt)
    assert (exc.done, exc.out, exc.resumable) == ("after round 1", os.fspath(tmp_path), True)
    assert "interrupted after round 1" in str(exc) and "resume" in str(exc)
    assert [r["round"] for r in json.loads((tmp_path / "results.json").read_text())["rows"]] == [0, 1]
    seen = []
    resumed = run_lottery(dataset=digits, rounds=3, out=tmp_path, on_round=lambda row: seen.append(row["round"]),
                          **TINY)
    assert seen == [0, 1, 2, 3]  # the resumed rounds first, then the new ones
    assert resumed.trained_rounds == [2, 3]


def test_interrupted_before_any_round_kept_nothing(digits):
    def stop(kind, rnd, model):
        raise KeyboardInterrupt

    with pytest.raises(ExperimentInterrupted, match="before round 0 finished; nothing saved"):
        run_lottery(dataset=digits, rounds=1, on_train_begin=stop, **TINY)
