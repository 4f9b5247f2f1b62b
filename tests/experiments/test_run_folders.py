"""Run folders of every experiment (issue 22): resume, structured refusals, starting over, and an unusable
`out` refused before any training. Real (tiny) trainings, no mocks."""

from __future__ import annotations

import json
import os

import keras
import pytest

from kerasinit.experiments.compare import run_compare
from kerasinit.experiments.datasets import load
from kerasinit.experiments.lottery import run_lottery
from kerasinit.experiments.results import RunFolderConflict
from kerasinit.experiments.sparsity import run_prune_at_init

COMPARE = {"depth": 1, "width": 16, "epochs": 1, "learning_rate": 0.05}
LOTTERY = {"model": "mlp", "model_options": {"depth": 1, "width": 16}, "epochs": 1, "batch_size": 128,
           "controls": (), "learning_rate": 1e-2}
AT_INIT = {"epochs": 1, "batch_size": 128, "learning_rate": 1e-2, "model_options": {"depth": 1, "width": 16}}


@pytest.fixture(scope="module")
def moons():
    return load("moons", n_samples=200, seed=0)


@pytest.fixture(scope="module")
def digits():
    return load("digits")


class CountTrainings(keras.callbacks.Callback):
    count = 0

    def on_train_begin(self, logs=None):
        CountTrainings.count += 1


def test_compare_resumes_the_finished_trainings(moons, tmp_path):
    first = run_compare("mlp", moons, ["glorot_uniform"], seeds=[0], out=tmp_path, **COMPARE)
    assert first.trained == [("glorot_uniform", 0)]
    second = run_compare("mlp", moons, ["glorot_uniform", "he_normal"], seeds=[0, 1], out=tmp_path, **COMPARE)
    assert second.trained == [("glorot_uniform", 1), ("he_normal", 0), ("he_normal", 1)]  # not (glorot, 0) again
    assert [(r.init, r.seed) for r in second.runs] == [("glorot_uniform", 0), ("glorot_uniform", 1),
                                                        ("he_normal", 0), ("he_normal", 1)]
    assert second.runs[0].loss == first.runs[0].loss and second.runs[0].test_accuracy == first.runs[0].test_accuracy
    assert set(second.models) == {"glorot_uniform", "he_normal"}  # the resumed first-seed model is rebuilt
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "run_compare" and len(saved["runs"]) == 4
    assert "decision_boundaries.png" in os.listdir(tmp_path)
    # nothing left to train: every row comes from the folder
    third = run_compare("mlp", moons, ["he_normal", "glorot_uniform"], seeds=[0, 1], out=tmp_path, **COMPARE)
    assert third.trained == [] and len(third.runs) == 4


def test_compare_refuses_other_settings_with_a_structured_error_and_starts_over(moons, tmp_path):
    run_compare("mlp", moons, ["he_normal"], seeds=1, out=tmp_path, **COMPARE)
    (tmp_path / "mine.txt").write_text("a file of the user")
    with pytest.raises(RunFolderConflict) as info:
        run_compare("mlp", moons, ["he_normal"], seeds=1, out=tmp_path, **{**COMPARE, "epochs": 2,
                                                                           "learning_rate": 0.1})
    exc = info.value
    assert isinstance(exc, ValueError) and exc.out == os.fspath(tmp_path)
    assert exc.differences == {"epochs": (1, 2), "learning_rate": (0.05, 0.1)}
    assert "epochs" in str(exc) and "learning_rate" in str(exc) and "resume=False" in str(exc)
    # the same label with another initializer is not resumed either
    with pytest.raises(RunFolderConflict) as info:
        run_compare("mlp", moons, {"he_normal": keras.initializers.HeNormal(seed=5)}, seeds=1, out=tmp_path, **COMPARE)
    assert set(info.value.differences) == {"inits"}
    # resume=False: what the earlier run wrote is gone, the user's own file stays
    fresh = run_compare("mlp", moons, ["glorot_uniform"], seeds=1, out=tmp_path, resume=False, plots=False,
                        **{**COMPARE, "epochs": 2})
    assert fresh.trained == [("glorot_uniform", 0)]
    names = set(os.listdir(tmp_path))
    assert "loss_curves.png" not in names and not any(n.startswith("model_he_normal") for n in names)
    assert "mine.txt" in names
    assert [r["init"] for r in json.loads((tmp_path / "results.json").read_text())["runs"]] == ["glorot_uniform"]


def test_another_experiments_folder_is_a_conflict(moons, tmp_path):
    run_compare("mlp", moons, ["he_normal"], seeds=1, out=tmp_path, plots=False, **COMPARE)
    with pytest.raises(RunFolderConflict) as info:
        run_lottery(dataset=moons, rounds=1, out=tmp_path, **LOTTERY)
    assert info.value.differences == {"experiment": ("run_compare", "run_lottery")}


@pytest.mark.parametrize("where", ["file", "unwritable"])
def test_an_unusable_out_is_refused_before_any_training(digits, tmp_path, where):
    if where == "file":
        out = tmp_path / "taken"
        out.write_text("x")
        match = "argument `out`.*not a folder"
    else:
        out = "/proc/kerasinit-nope/run"  # /proc takes no new folders, not even as root
        match = "argument `out`.*cannot create or write"
    CountTrainings.count = 0
    with pytest.raises(ValueError, match=match):
        run_compare("mlp", digits, ["he_normal"], seeds=1, out=out, callbacks=[CountTrainings()], **COMPARE)
    with pytest.raises(ValueError, match=match):
        run_lottery(dataset=digits, rounds=1, out=out, callbacks=[CountTrainings()], **LOTTERY)
    assert CountTrainings.count == 0
    with pytest.raises(ValueError, match=match):
        run_prune_at_init("mlp", digits, ["random"], [0.5], out=out, **AT_INIT)


def test_prune_at_init_resumes_and_refuses_other_settings(digits, tmp_path):
    first = run_prune_at_init("mlp", digits, ["random"], [0.5], out=tmp_path, plots=False, **AT_INIT)
    assert first.trained == [("random", 0.5, 0)]
    second = run_prune_at_init("mlp", digits, ["random"], [0.5, 0.9], out=tmp_path, plots=False, **AT_INIT)
    assert second.trained == [("random", 0.9, 0)]
    assert [(r["sparsity"], r["test_accuracy"]) for r in second.rows][0] == (0.5, first.rows[0]["test_accuracy"])
    assert len(json.loads((tmp_path / "results.json").read_text())["rows"]) == 2
    with pytest.raises(RunFolderConflict) as info:
        run_prune_at_init("mlp", digits, ["random"], [0.5], out=tmp_path, **{**AT_INIT, "batch_size": 64})
    assert info.value.differences == {"batch_size": (128, 64)}
    again = run_prune_at_init("mlp", digits, ["random"], [0.5], out=tmp_path, resume=False, plots=False, **AT_INIT)
    assert again.trained == [("random", 0.5, 0)]
    assert len(json.loads((tmp_path / "results.json").read_text())["rows"]) == 1


def test_lottery_refusal_is_structured_and_fresh_clears_the_longer_run(digits, tmp_path):
    run_lottery(dataset=digits, rounds=2, out=tmp_path, **LOTTERY)
    with pytest.raises(RunFolderConflict) as info:
        run_lottery(dataset=digits, rounds=2, rate=0.4, out=tmp_path, **LOTTERY)
    assert info.value.differences == {"rate": (0.5, 0.4), "rate_overrides": ({"output": 0.25}, {"output": 0.2})}
    fresh = run_lottery(dataset=digits, rounds=1, out=tmp_path, resume=False, **LOTTERY)
    assert fresh.trained == [(0, 0), (0, 1)]
    assert not (tmp_path / "seed_0" / "masks_round_2.npz").exists()  # the earlier run's round 2 is gone
    assert len(json.loads((tmp_path / "results.json").read_text())["rows"]) == 2
