"""kerasinit.run_compare and `kerasinit compare`: real (tiny) training runs, no mocks."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest

import kerasinit
from kerasinit.cli import main
from kerasinit.experiments.compare import (
    CompareResults,
    hidden_layers,
    run_compare,
    symmetric_layers,
)
from kerasinit.experiments.datasets import load
from kerasinit.experiments.models import build


def build_mlp(n_features, n_classes, init, depth, width, activation, seed):
    return build("mlp", (n_features,), n_classes, seed, depth=depth, width=width, activation=activation,
                 kernel_initializer=init)


def activation_stds(model, x):
    probe = keras.Model(model.input, [layer.output for layer in hidden_layers(model)])
    return [float(np.std(keras.ops.convert_to_numpy(o))) for o in probe(x, training=False)]

TINY = {"depth": 2, "width": 16, "epochs": 4, "learning_rate": 0.05}


@pytest.fixture(scope="module")
def moons():
    return load("moons", n_samples=300, seed=0)


@pytest.fixture(scope="module")
def moons_results(moons, tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp")
    results = run_compare("mlp", moons, ["zeros", "he_normal"], seeds=2, out=out, **TINY)
    return results, out


def test_zeros_shows_the_symmetry_problem(moons_results):
    results, _ = moons_results
    assert isinstance(results, CompareResults)
    zeros = [r for r in results.runs if r.init == "zeros"]
    assert len(zeros) == 2
    for r in zeros:
        assert r.status == "symmetric"
        assert r.symmetric_layers == ["hidden_1", "hidden_2"]
        assert r.act_std == [0.0, 0.0]
        assert math.isnan(r.std_ratio)
    he = [r for r in results.runs if r.init == "he_normal"]
    assert all(r.status == "ok" and not r.symmetric_layers for r in he)
    assert min(r.test_accuracy for r in he) > max(r.test_accuracy for r in zeros)
    row = next(r for r in results.display_rows() if r["initializer"] == "zeros")
    assert row["status"] == "symmetric"  # both seeds; what it means is a footnote
    assert any(n.startswith("symmetric:") and "zeros/constant cannot break symmetry" in n for n in results.notes)
    assert row["act std first → last"] == "0 → 0 (all zero)"


def test_results_tables(moons_results):
    results, _ = moons_results
    runs = results.to_pandas()
    assert list(runs["init"]) == ["zeros", "zeros", "he_normal", "he_normal"]
    assert list(runs["seed"]) == [0, 1, 0, 1]
    summary = results.summary().set_index("init")
    assert summary.loc["zeros", "status"] == "symmetric"
    assert summary.loc["he_normal", "acc_mean"] == pytest.approx(runs[runs.init == "he_normal"].test_accuracy.mean())
    assert summary.loc["he_normal", "acc_std"] == pytest.approx(np.std(runs[runs.init == "he_normal"].test_accuracy))
    history = results.history()
    assert len(history) == 4 * TINY["epochs"]
    assert set(history.columns) >= {"init", "seed", "epoch", "loss", "val_loss", "accuracy", "val_accuracy"}


def test_files_written(moons_results):
    results, out = moons_results
    names = sorted(n for n in os.listdir(out) if not n.startswith("model_"))
    assert names == ["activation_std.png", "decision_boundaries.png", "history.csv", "loss_curves.png",
                     "results.json", "runs.csv", "summary.csv"]
    # the first seed's trained weights per initializer (2-D data): a resumed run redraws its decision boundaries
    assert sorted(n.split("_seed_")[0].rsplit("_", 1)[0] for n in os.listdir(out) if n.startswith("model_")) == [
        "model_he_normal", "model_zeros"]
    for png in ("activation_std.png", "decision_boundaries.png", "loss_curves.png"):
        assert (out / png).stat().st_size > 5000
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["inits"] == ["zeros", "he_normal"] and data["config"]["seeds"] == [0, 1]
    assert data["dataset"]["n_features"] == 2
    assert [s["status"] for s in data["summary"]] == ["symmetric", "ok"]
    assert data["runs"][0]["std_ratio"] is None  # NaN is written as null
    csv = pd.read_csv(out / "runs.csv")
    pd.testing.assert_series_equal(csv["test_accuracy"], results.to_pandas()["test_accuracy"], check_exact=False)


def test_deterministic_same_seeds_same_table():
    ds = load("digits")
    kwargs = {"depth": 2, "width": 16, "epochs": 2, "seeds": [0, 1]}
    a = run_compare("mlp", ds, ["glorot_uniform", "random_normal"], **kwargs)
    b = run_compare("mlp", ds, ["glorot_uniform", "random_normal"], **kwargs)
    cols = ["init", "seed", "status", "test_accuracy", "test_loss", "epochs_to_target", "act_std_first", "act_std_last"]
    pd.testing.assert_frame_equal(a.to_pandas()[cols], b.to_pandas()[cols])
    pd.testing.assert_frame_equal(a.history(), b.history())
    assert a.table() == b.table()
    # different seeds give different runs
    ra = {r.seed: r for r in a.runs if r.init == "glorot_uniform"}
    assert ra[0].loss != ra[1].loss


def test_constant_is_symmetric_and_tiny_init_stalls():
    ds = load("digits")
    results = run_compare("mlp", ds, {"constant": kerasinit.Constant(0.05), "too small": kerasinit.RandomNormal(stddev=1e-4)},
                          depth=2, width=16, epochs=2, seeds=1)
    status = {r.init: r.status for r in results.runs}
    assert status == {"constant": "symmetric", "too small": "stalled"}
    tiny = next(r for r in results.runs if r.init == "too small")
    assert tiny.std_ratio < 0.01  # the signal dies with depth
    assert tiny.test_accuracy < ds.chance + 0.1


def test_exploding_init_diverges():
    # Kwon's tanh range (4x Glorot) under ReLU blows the signal up 5 layers deep: NaN loss at SGD 0.01.
    results = run_compare("mlp", "digits", ["kwon_tanh_uniform"], depth=5, width=100, epochs=2, seeds=1)
    run = results.runs[0]
    assert run.status == "diverged"
    assert not all(math.isfinite(v) for v in run.loss)
    assert run.std_ratio > 10
    assert results.display_rows()[0]["status"] == "diverged"
    assert "diverged: NaN/inf loss" in results.notes
    assert None in results.to_dict()["runs"][0]["loss"]  # NaN written as null in JSON


def test_activation_stds_known_answer():
    keras.utils.set_random_seed(0)
    model = build_mlp(200, 3, kerasinit.HeNormal(), depth=4, width=400, activation="relu", seed=0)
    x = np.random.default_rng(0).normal(size=(512, 200)).astype("float32")
    he = activation_stds(model, x)
    assert len(he) == 4
    # He keeps the second moment of ReLU outputs constant: std within 15% through depth
    assert all(abs(s / he[0] - 1) < 0.15 for s in he)
    glorot = activation_stds(build_mlp(200, 3, kerasinit.GlorotNormal(), 4, 400, "relu", 0), x)
    # Glorot on a 400x400 relu layer halves the second moment per layer: std shrinks by ~1/sqrt(2)
    for prev, cur in zip(glorot[1:], glorot[2:], strict=False):
        assert cur / prev == pytest.approx(2 ** -0.5, rel=0.15)


def test_symmetric_layers_detects_equal_units():
    model = build_mlp(4, 2, kerasinit.HeNormal(), depth=2, width=3, activation="relu", seed=1)
    assert symmetric_layers(model) == []
    layer = model.get_layer("hidden_2")
    kernel, bias = layer.get_weights()
    layer.set_weights([np.repeat(kernel[:, :1], 3, axis=1), np.zeros(3)])
    assert symmetric_layers(model) == ["hidden_2"]


@pytest.mark.parametrize("kwargs, match", [
    ({"inits": "no_such_init"}, "inits"),
    ({"inits": []}, "inits"),
    ({"inits": ["zeros", "zeros"]}, "twice"),
    ({"activation": "softmaxx"}, "activation.*relu"),
    ({"optimizer": "lbfgs"}, "optimizer.*sgd, adam"),
    ({"target": 1.5}, "target"),
    ({"seeds": 0}, "seeds"),
    ({"seeds": [-1]}, "seeds"),
    ({"depth": 0}, "depth"),
    ({"epochs": 2.5}, "epochs"),
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"dataset": "imagenet"}, "digits, moons, circles, spiral"),
    ({"model": "conv4", "depth": 3}, "apply to model='mlp' only"),
])
def test_bad_arguments(kwargs, match):
    kwargs = {"inits": ["zeros"], "dataset": "moons", **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        run_compare(**kwargs)


def test_cli_compare_json_in_process(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["compare", "--inits", "zeros,glorot_uniform", "--dataset", "circles", "--depth", "2",
                 "--width", "8", "--epochs", "2", "--seeds", "1", "--out", str(out), "--json", "--quiet"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)  # stdout holds the JSON only
    assert [s["init"] for s in data["summary"]] == ["zeros", "glorot_uniform"]
    assert data["summary"][0]["status"] == "symmetric"
    assert (out / "results.json").exists() and (out / "decision_boundaries.png").exists()


def test_cli_compare_table_and_errors(tmp_path, capsys):
    code = main(["compare", "--inits", "zeros", "--dataset", "moons", "--depth", "1", "--width", "4",
                 "--epochs", "1", "--seeds", "1", "--out", str(tmp_path / "t"), "--no-plots", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "zeros" in out and "symmetric" in out and "(all zero)" in out
    assert not (tmp_path / "t" / "loss_curves.png").exists() and (tmp_path / "t" / "runs.csv").exists()
    assert main(["compare", "--inits", "nope", "--out", str(tmp_path / "e")]) == 2
    assert "argument --inits: 'nope' is not an initializer" in capsys.readouterr().err
    assert main(["compare", "--target", "2"]) == 2
    assert "argument --target: expected a number in (0, 1]" in capsys.readouterr().err


def test_cli_compare_json_subprocess(tmp_path):
    """The installed command: stdout is parseable JSON, progress goes to stderr."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "kerasinit", "compare", "--inits", "zeros,he_normal", "--dataset",
                           "spiral", "--depth", "2", "--width", "8", "--epochs", "2", "--seeds", "1", "--no-plots",
                           "--out", str(tmp_path / "s"), "--json"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    assert data["config"]["dataset"] == "spiral" and len(data["runs"]) == 2
    assert "he_normal seed 0" in proc.stderr  # the progress line


def test_example_script(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, os.path.join(root, "examples", "compare_initializers.py"), "--out",
                           str(tmp_path / "ex")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "zeros status: symmetric" in proc.stdout
    assert "best: glorot_uniform" in proc.stdout or "best: he_normal" in proc.stdout
    assert (tmp_path / "ex" / "decision_boundaries.png").exists()
