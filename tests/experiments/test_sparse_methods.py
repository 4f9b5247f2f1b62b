"""run_prune_at_init with the sparse-training methods (issue 24, part 2): "rigl", "set" and "static" train in the
experiment's one fit with a SparseTraining callback, beside the at-init scores, in one table and one figure.
Real (tiny) trainings on digits, no mocks."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from kerasinit.experiments.datasets import load
from kerasinit.experiments.models import instantiate
from kerasinit.experiments.sparsity import run_prune_at_init
from kerasinit.plots._common import pyplot
from kerasinit.plots.sparsity import plot_accuracy_vs_sparsity
from kerasinit.pruning.distributions import layer_sparsities
from kerasinit.pruning.masks import keep_count
from kerasinit.pruning.selection import select

# digits: 1,078 training samples, 64 per batch -> 17 steps per epoch; 2 epochs -> end_step 26, updates at 5..25
RUN = {"epochs": 2, "batch_size": 64, "learning_rate": 1e-2, "model_options": {"depth": 2, "width": 32},
       "update_every": 5}


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def _targets(ds, distribution: str, sparsity: float = 0.9) -> dict[str, tuple[int, int]]:
    """{weight: (kept, size)} that `distribution` gives a fresh copy of the model at `sparsity`."""
    net = instantiate("mlp", ds.input_shape, ds.n_classes, 0, RUN["model_options"])
    weights = select(net)
    targets = layer_sparsities(weights, sparsity, distribution)
    return {w.name: (keep_count(int(np.prod(w.variable.shape)), targets[w.name]), int(np.prod(w.variable.shape)))
            for w in weights}


def test_dynamic_methods_share_the_table_figure_and_keep_each_layer_sparsity_exactly(digits, tmp_path):
    results = run_prune_at_init("mlp", digits, ["snip", "rigl", "static"], [0.9], seeds=[0], distribution="erk",
                                out=tmp_path, **RUN)
    assert [(r["method"], r["family"]) for r in results.rows] == [("snip", "at init"), ("rigl", "dynamic"),
                                                                 ("static", "dynamic")]
    expected = _targets(digits, "erk")
    saved = json.loads((tmp_path / "results.json").read_text())
    for row in [*results.rows, *saved["rows"]]:  # the returned rows and the ones read back from the folder
        layers = {name: (v["kept"], v["size"]) for name, v in row["layers"].items()}
        assert layers == expected, row["method"]  # every weight's count at the end of training, exactly
        assert row["leaked"] == 0, row["method"]  # no nonzero weight outside its mask
        assert row["distribution"] == "erk"
    rows = {r["method"]: r for r in results.rows}
    steps = 2 * math.ceil(len(digits.y_train) / 64)
    assert rows["rigl"]["end_step"] == round(0.75 * steps) and steps == 34  # the default: 75% of training
    assert rows["rigl"]["mask_updates"] == 5  # it moved its masks at steps 5, 10, ..., 25
    assert rows["static"]["mask_updates"] == 0 and rows["snip"]["mask_updates"] == 0
    assert rows["rigl"]["hessian"] is None and rows["rigl"]["collapsed_layers"] == []
    assert 0.25 < rows["rigl"]["test_accuracy"] <= 1.0 and rows["rigl"]["status"] == "ok"  # above chance (0.1)
    with open(tmp_path / "runs.csv") as fh:
        assert [(r["method"], r["family"]) for r in csv.DictReader(fh)] == [
            ("snip", "at init"), ("rigl", "dynamic"), ("static", "dynamic")]
    display = {r["method"]: r for r in results.display_rows()}
    assert display["rigl"]["family"] == "dynamic" and display["snip"]["family"] == "at init"
    assert "family" in results.table() and "sparse training" in results.title
    assert (tmp_path / "accuracy_vs_sparsity.png").stat().st_size > 0
    ax = plot_accuracy_vs_sparsity(results).axes[0]
    styles = {line.get_label(): line.get_linestyle() for line in ax.lines}
    assert styles["snip"] == "-" and styles["rigl (dynamic)"] == styles["static (dynamic)"] == "--"
    pyplot().close("all")

    # resume: every (method, sparsity, seed) is read back, nothing trains again
    again = run_prune_at_init("mlp", digits, ["snip", "rigl", "static"], [0.9], seeds=[0], distribution="erk",
                              out=tmp_path, **RUN)
    assert again.trained == []
    assert [r["test_accuracy"] for r in again.rows] == [r["test_accuracy"] for r in results.rows]
    assert [r["family"] for r in again.rows] == ["at init", "dynamic", "dynamic"]


def test_global_distribution_trains_the_dynamic_family_uniform_and_says_so(digits):
    with pytest.warns(UserWarning, match="uniform"):
        results = run_prune_at_init("mlp", digits, ["static"], [0.9], **{**RUN, "epochs": 1})
    row = results.rows[0]
    assert row["family"] == "dynamic" and row["distribution"] == "uniform"
    assert {n: (v["kept"], v["size"]) for n, v in row["layers"].items()} == _targets(digits, "uniform")
    assert any("uniform" in n and "global" in n for n in results.notes)


def test_bad_method_names_and_settings_are_refused_before_training(digits):
    with pytest.raises(ValueError, match=r"argument `methods`.*'rigl'.*'set'.*'static'.*received 'rigll'\. "
                                         r"Did you mean 'rigl'\?"):
        run_prune_at_init("mlp", digits, ["snip", "rigll"], [0.9], **RUN)
    with pytest.raises(ValueError, match="argument `methods`.*received 'sntp'. Did you mean 'snip'"):
        run_prune_at_init("mlp", digits, ["sntp"], [0.9], **RUN)
    with pytest.raises(ValueError, match="argument `ablation`.*'rigl'"):
        run_prune_at_init("mlp", digits, ["rigl"], [0.9], ablation="shuffle", **RUN)
    with pytest.raises(ValueError, match="argument `update_every`"):
        run_prune_at_init("mlp", digits, ["rigl"], [0.9], **{**RUN, "update_every": 0})
    with pytest.raises(ValueError, match="argument `drop_fraction`"):
        run_prune_at_init("mlp", digits, ["set"], [0.9], drop_fraction=1.5, **RUN)
    with pytest.raises(ValueError, match="argument `drop_schedule`.*'cosine'"):
        run_prune_at_init("mlp", digits, ["set"], [0.9], drop_schedule="cos", **RUN)


def test_sparse_settings_bind_a_folder_only_once_it_holds_sparse_training_rows(digits, tmp_path):
    from kerasinit.experiments.results import RunFolderConflict

    scores = run_prune_at_init("mlp", digits, ["snip"], [0.9], seeds=[0], distribution="uniform", out=tmp_path, **RUN)
    # the folder holds scores alone: other RigL settings resume it (the snip row is read back, not retrained)
    mixed = run_prune_at_init("mlp", digits, ["snip", "rigl"], [0.9], seeds=[0], distribution="uniform", out=tmp_path,
                              **{**RUN, "update_every": 4, "drop_fraction": 0.5})
    assert [r["method"] for r in mixed.rows] == ["snip", "rigl"]
    assert mixed.trained == [("rigl", 0.9, 0)]
    assert mixed.rows[0]["test_accuracy"] == scores.rows[0]["test_accuracy"]
    assert mixed.rows[1]["mask_updates"] == 6  # every 4 steps from 4 to 24 (end_step 26)
    # now it holds a RigL row trained every 4 steps: a call with other sparse settings would mislabel it
    for changed in ({"update_every": 5}, {"drop_fraction": 0.3}, {"drop_schedule": "linear"}):
        with pytest.raises(RunFolderConflict, match=next(iter(changed))):
            run_prune_at_init("mlp", digits, ["snip"], [0.9], seeds=[0], distribution="uniform", out=tmp_path,
                              **{**RUN, "update_every": 4, "drop_fraction": 0.5, **changed})
