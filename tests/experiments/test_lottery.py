"""kerasinit.run_lottery and `kerasinit lottery`: real (tiny) IMP runs on any Keras model, no mocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest

from kerasinit.cli import main
from kerasinit.experiments.datasets import load
from kerasinit.experiments.lottery import LotteryResults, next_masks, parse_rewind, run_lottery
from kerasinit.experiments.models import model_weights
from kerasinit.pruning import keep_count

TINY = {"model": "mlp", "model_options": {"depth": 2, "width": 24}, "epochs": 2, "batch_size": 128,
        "learning_rate": 1e-2}
NAMES = ["hidden_1/kernel", "hidden_2/kernel", "output/kernel"]
SIZES = {"hidden_1": 64 * 24, "hidden_2": 24 * 24, "output": 24 * 10}


def by_path(weights):
    """``model_weights`` keys ("<i>:<path>") -> paths."""
    return {k.split(":", 1)[1]: v for k, v in weights.items()}


@pytest.fixture(scope="module")
def digits():
    return load("digits")


@pytest.fixture(scope="module")
def tiny(digits, tmp_path_factory):
    """3 rounds at rate 0.3, every training's starting weights and masks recorded."""
    out = tmp_path_factory.mktemp("lt")
    starts: list[tuple[str, int, dict, dict]] = []

    def record(kind, round_, model):
        weights = by_path(model_weights(model))
        masks = {n: np.array(model.get_layer(n.split("/")[0]).kernel.constraint.numpy()) for n in NAMES}
        starts.append((kind, round_, weights, masks))

    results = run_lottery(dataset=digits, rounds=3, rate=0.3, out=out, on_train_begin=record, **TINY)
    return results, out / "seed_0", starts


def test_remaining_fractions_follow_keep_count(tiny):
    results, out, _ = tiny
    sizes = SIZES
    assert [r["round"] for r in results.rows] == [0, 1, 2, 3]
    for r in results.rows:
        k = r["round"]
        expected = {"hidden_1": keep_count(sizes["hidden_1"], 1 - 0.7 ** k),
                    "hidden_2": keep_count(sizes["hidden_2"], 1 - 0.7 ** k),
                    "output": keep_count(sizes["output"], 1 - 0.85 ** k)}  # output layer at half the rate
        assert r["remaining_layers"] == {n: expected[n] / sizes[n] for n in sizes}
        assert r["remaining"] == sum(expected.values()) / sum(sizes.values())
        if k:
            masks = np.load(out / f"masks_round_{k}.npz")
            assert {n.split("/")[0]: int(masks[n].sum()) for n in NAMES} == expected
            assert results.config["rate_overrides"] == {"output": 0.15}


def test_masks_are_nested_and_by_magnitude(tiny):
    _, out, _ = tiny
    prev = None
    for k in (1, 2, 3):
        masks = dict(np.load(out / f"masks_round_{k}.npz"))
        trained = dict(np.load(out / f"trained_round_{k - 1}.npz"))
        if prev is not None:
            for n in NAMES:
                assert not np.any(masks[n] & ~prev[n]), "a pruned weight came back"
        for n in NAMES:  # every kept weight is at least as large as every newly pruned survivor
            alive = prev[n].astype(bool) if prev is not None else np.ones_like(masks[n], bool)
            kept = np.abs(trained[n][masks[n].astype(bool)])
            dropped = np.abs(trained[n][alive & ~masks[n].astype(bool)])
            assert kept.min() >= dropped.max()
        prev = masks


def test_rewind_restores_theta0_on_survivors(tiny):
    results, out, starts = tiny
    theta0 = by_path(np.load(out / "theta0.npz"))
    ticket = [s for s in starts if s[0] == "ticket"]
    assert [s[1] for s in ticket] == [0, 1, 2, 3]
    for _, k, weights, masks in ticket:
        saved = dict(np.load(out / f"masks_round_{k}.npz")) if k else None
        for path, value in weights.items():
            if path in NAMES:
                if k:
                    np.testing.assert_array_equal(masks[path], saved[path])
                np.testing.assert_array_equal(value, theta0[path] * masks[path])  # survivors == θ0, pruned == 0
                assert np.all(value[masks[path] == 1] == theta0[path][masks[path] == 1])
            else:
                np.testing.assert_array_equal(value, theta0[path])  # biases rewound too
    # the trained weights differ from θ0: the rewind really undid training
    trained = dict(np.load(out / "trained_round_1.npz"))
    assert not np.allclose(trained["hidden_1/kernel"], theta0["hidden_1/kernel"])


def test_controls_same_sparsity_other_weights_or_masks(tiny):
    _, out, starts = tiny
    theta0 = by_path(np.load(out / "theta0.npz"))
    by = {(kind, k): (w, m) for kind, k, w, m in starts}
    for k in (1, 2, 3):
        ticket_w, ticket_m = by[("ticket", k)]
        reinit_w, reinit_m = by[("reinit", k)]
        random_w, random_m = by[("random", k)]
        for n in NAMES:
            np.testing.assert_array_equal(reinit_m[n], ticket_m[n])  # same mask
            alive = ticket_m[n] == 1
            assert not np.allclose(reinit_w[n][alive], theta0[n][alive])  # fresh draw
            assert np.all(reinit_w[n][~alive] == 0)
            assert random_m[n].sum() == ticket_m[n].sum()  # same per-layer sparsity
            assert not np.array_equal(random_m[n], ticket_m[n])  # but elsewhere
            np.testing.assert_array_equal(random_w[n], theta0[n] * random_m[n])  # rewound weights
        saved = dict(np.load(out / f"random_masks_round_{k}.npz"))
        for n in NAMES:
            np.testing.assert_array_equal(saved[n], random_m[n])


def test_results_table_and_files(tiny):
    results, out, _ = tiny
    assert isinstance(results, LotteryResults)
    df = results.to_pandas()
    assert list(df["round"]) == [0, 1, 2, 3]
    assert np.isnan(df.loc[0, "reinit_test_accuracy"]) and np.isnan(df.loc[0, "random_test_accuracy"])
    for kind in ("ticket", "reinit", "random"):
        acc = df[f"{kind}_test_accuracy"].dropna()
        assert ((acc >= 0) & (acc <= 1)).all() and len(acc) == (4 if kind == "ticket" else 3)
        steps = df[f"{kind}_early_stop_step"].dropna()
        spe = results.config["steps_per_epoch"]
        assert steps.isin([spe, 2 * spe]).all()  # validated at each epoch end
    assert df.loc[0, "ticket_test_accuracy"] > 0.5  # the dense net learns even in 18 steps
    assert list(df["seed"]) == [0, 0, 0, 0]
    lines = results.table().splitlines()
    assert lines[0] == results.title
    assert lines[1].split() == ["round", "weights", "ticket", "acc", "ticket", "stop", "reinit", "acc",
                                "reinit", "stop", "random", "acc", "random", "stop"]
    assert lines[3].split()[1] == f"{100 * results.rows[1]['remaining']:.3g}%"
    assert lines[6:] == results.notes  # title, header, 4 rounds, then the footnotes
    assert {"theta0.npz", "masks_round_3.npz", "random_masks_round_3.npz", "trained_round_3.npz"} <= set(os.listdir(out))
    top = out.parent
    assert {"results.json", "rounds.csv", "summary.csv", "lottery.png"} <= set(os.listdir(top))
    assert (top / "lottery.png").stat().st_size > 5000
    data = json.loads((top / "results.json").read_text())
    assert data["config"]["rounds"] == 3 and len(data["rows"]) == 4
    csv = pd.read_csv(top / "rounds.csv")
    np.testing.assert_allclose(csv["ticket_test_accuracy"], df["ticket_test_accuracy"])


def test_early_stop_step_is_the_validation_minimum(digits):
    val_losses = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            val_losses.append(logs["val_loss"])

    results = run_lottery("mlp", digits, rounds=1, controls=(), model_options={"depth": 1, "width": 16}, epochs=3,
                          batch_size=256, callbacks=[Spy()])
    run = results.rows[1]["ticket"]
    assert run["steps"] == results.config["steps"] == 3 * 5
    best = int(np.argmin(val_losses[3:]))  # the ticket's three epochs
    assert run["early_stop_step"] == 5 * (best + 1)
    assert run["val_loss"] == pytest.approx(val_losses[3 + best])
    assert "reinit" not in results.rows[1] and results.display_rows()[1].keys() == {
        "round", "weights", "ticket acc", "ticket stop"}


def test_rewind_to_step_k_and_global_scope(digits, tmp_path):
    starts = []
    results = run_lottery(dataset=digits, rounds=2, rewind="step:4", scope="global", controls=("random",),
                          out=tmp_path, on_train_begin=lambda kind, k, m: starts.append(
                              (kind, k, by_path(model_weights(m)))), rate=0.2, **TINY)
    assert results.config["rewind_step"] == 4
    tmp_path = tmp_path / "seed_0"
    theta_k = by_path(np.load(tmp_path / "theta_rewind.npz"))
    theta0 = by_path(np.load(tmp_path / "theta0.npz"))
    assert not np.allclose(theta_k["hidden_1/kernel"], theta0["hidden_1/kernel"])
    for kind, k, weights in starts[1:]:
        masks = dict(np.load(tmp_path / f"{'masks' if kind == 'ticket' else 'random_masks'}_round_{k}.npz"))
        for n in NAMES:
            np.testing.assert_array_equal(weights[n], theta_k[n] * masks[n])
        assert results.rows[k][kind]["steps"] == results.config["steps"] - 4
    # global: the hidden kernels share one threshold -> their joint count follows keep_count, not each one
    masks = dict(np.load(tmp_path / "masks_round_2.npz"))
    hidden = SIZES["hidden_1"] + SIZES["hidden_2"]
    assert int(masks["hidden_1/kernel"].sum() + masks["hidden_2/kernel"].sum()) == keep_count(hidden, 1 - 0.8 ** 2)
    assert int(masks["output/kernel"].sum()) == keep_count(SIZES["output"], 1 - 0.9 ** 2)


def test_resume_after_interruption(digits, tmp_path):
    first = run_lottery(dataset=digits, rounds=2, out=tmp_path, **TINY)
    assert first.trained_rounds == [0, 1, 2]
    stamps = {name: os.stat(tmp_path / "seed_0" / name).st_mtime_ns for name in
              ("theta0.npz", "masks_round_1.npz", "masks_round_2.npz", "trained_round_2.npz")}
    # an interruption after round 2: a stale temporary file from round 3 does not matter
    (tmp_path / "seed_0" / "masks_round_3.npz.tmp.npz").write_bytes(b"partial")
    second = run_lottery(dataset=digits, rounds=3, out=tmp_path, **TINY)
    assert second.trained_rounds == [3]  # rounds 0-2 not recomputed
    assert second.rows[:3] == first.rows
    assert {name: os.stat(tmp_path / "seed_0" / name).st_mtime_ns for name in stamps} == stamps
    # resumed = uninterrupted
    fresh = run_lottery(dataset=digits, rounds=3, **TINY)
    assert [{k: v for k, v in r.items() if k not in KIND_KEYS} for r in fresh.rows] == \
           [{k: v for k, v in r.items() if k not in KIND_KEYS} for r in second.rows]
    assert _accuracies(fresh) == _accuracies(second)
    # nothing to train when fewer rounds are asked
    again = run_lottery(dataset=digits, rounds=1, out=tmp_path, **TINY)
    assert again.trained_rounds == [] and again.rows == first.rows[:2]
    assert len(json.loads((tmp_path / "results.json").read_text())["rows"]) == 4  # the longer run is kept
    with pytest.raises(ValueError, match="other settings .*rate"):
        run_lottery(dataset=digits, rounds=3, rate=0.4, out=tmp_path, **TINY)


KIND_KEYS = ("ticket", "reinit", "random")


def _accuracies(results):
    return [(r["round"], *(r[k]["test_accuracy"] for k in KIND_KEYS if k in r),
             *(r[k]["early_stop_step"] for k in KIND_KEYS if k in r)) for r in results.rows]


def test_deterministic_same_seed_same_table(digits):
    a = run_lottery(dataset=digits, rounds=2, seeds=[3], **TINY)
    b = run_lottery(dataset=digits, rounds=2, seeds=[3], **TINY)
    assert a.table() == b.table()
    assert _accuracies(a) == _accuracies(b)
    c = run_lottery(dataset=digits, rounds=2, seeds=[4], **TINY)
    assert _accuracies(c) != _accuracies(a)


def test_next_masks_exact_counts():
    rng = np.random.default_rng(0)
    trained = {n: rng.normal(size=s).astype("float32") for n, s in zip(NAMES, [(50, 30), (30, 20), (20, 10)],
                                                                          strict=True)}
    masks = {n: np.ones(v.shape, "uint8") for n, v in trained.items()}
    rates = {n: 0.1 if n == "output/kernel" else 0.2 for n in NAMES}
    for k in range(1, 10):
        masks = next_masks(trained, masks, rates, k, "layer")
        for n in NAMES:
            rate = 0.1 if n == "output/kernel" else 0.2
            assert int(masks[n].sum()) == keep_count(trained[n].size, 1 - (1 - rate) ** k)
    assert round(0.8 ** 3, 3) == 0.512 and round(0.8 ** 7, 3) == 0.210 and round(0.8 ** 9, 3) == 0.134


@pytest.mark.parametrize("kwargs, error, match", [
    ({"rate": 0.0}, ValueError, "rate"),
    ({"rate": 1.0}, ValueError, r"rate.*\(0, 1\)"),
    ({"rate_overrides": {"output": 1.5}}, ValueError, "rate_overrides"),
    ({"rate_overrides": {"nope": 0.1}}, ValueError, "rate_overrides.*not a pruned layer"),
    ({"seeds": [1, 1]}, ValueError, "seeds"),
    ({"model": "resnet99"}, ValueError, "name.*lenet_300_100"),
    ({"optimizer": "lbfgs"}, ValueError, "optimizer.*sgd"),
    ({"rate": "0.2"}, TypeError, "rate"),
    ({"rounds": 0}, ValueError, "rounds"),
    ({"rewind": "epoch"}, ValueError, "rewind"),
    ({"rewind": "iter:3"}, ValueError, "rewind"),
    ({"rewind": "epoch:99"}, ValueError, "rewind.*end of training"),
    ({"controls": ("reinit", "shuffle")}, ValueError, "controls.*shuffle"),
    ({"scope": "network"}, ValueError, "scope"),
    ({"model_options": {"depth": 0}}, ValueError, "depth"),
    ({"model_options": {"activation": "nope"}}, ValueError, "activation"),
    ({"eval_every": 0}, ValueError, "eval_every"),
    ({"learning_rate": -1.0}, ValueError, "learning_rate"),
])
def test_bad_arguments(digits, kwargs, error, match):
    with pytest.raises(error, match=match):
        run_lottery(dataset=digits, **{**TINY, **kwargs})


def test_parse_rewind():
    assert parse_rewind("init") == ("init", 0)
    assert parse_rewind("epoch:2") == ("epoch", 2)
    assert parse_rewind("step:100") == ("step", 100)
    with pytest.raises(ValueError, match="rewind"):
        parse_rewind("step:-1")


def test_cli_lottery_json(tmp_path, capsys):
    code = main(["lottery", "--model", "mlp", "--depth", "1", "--width", "16", "--rounds", "1", "--epochs", "1",
                 "--controls", "random", "--json", "--quiet", "--out", str(tmp_path)])
    out, _ = capsys.readouterr()
    assert code == 0
    data = json.loads(out)
    assert data["config"]["model"] == "mlp" and data["config"]["controls"] == ["random"]
    assert [r["round"] for r in data["rows"]] == [0, 1]
    assert 0 < data["rows"][1]["ticket"]["test_accuracy"] <= 1 and "random" in data["rows"][1]
    assert (tmp_path / "lottery.png").exists()


@pytest.mark.parametrize("argv, match", [
    (["--rate", "1.2"], "--rate"),
    (["--rounds", "0"], "--rounds"),
    (["--rewind", "later"], "rewind"),
    (["--controls", "reinit,bogus"], "controls"),
])
def test_cli_bad_arguments(argv, match, capsys):
    try:
        code = main(["lottery", "--quiet", *argv])
    except SystemExit as exc:  # argparse errors exit 2
        code = exc.code
    _, err = capsys.readouterr()
    assert code == 2
    assert match in err


def test_cli_prints_rows_live(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "kerasinit", "lottery", "--model", "mlp", "--depth", "1", "--rounds", "2",
                           "--epochs", "1", "--controls", "reinit", "--out", str(tmp_path), "--quiet"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line.split() for line in proc.stdout.splitlines()]
    rounds = [cells[0] for cells in lines if cells and cells[0].isdigit()]
    assert rounds == ["0", "1", "2"]
    assert "wrote" in proc.stdout


def test_example_script(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    script = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "prune_and_lottery.py")
    proc = subprocess.run([sys.executable, script, "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "sparsity" in proc.stdout and "round" in proc.stdout
    assert (tmp_path / "results.json").exists()
