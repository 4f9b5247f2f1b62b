"""What the experiments' tables say (issue 22): display_rows, title and notes of compare, lottery and
prune-at-init; the early-stop step marked when it is the last one; no "± 0" of one seed; statuses
counting seeds; progress lines naming the run whose accuracy they show; a rich table of each within
100 columns."""

from __future__ import annotations

import io
import math
import re

import pytest
from rich.console import Console
from rich.table import Table

from kerasinit.experiments.compare import CompareResults, RunResult
from kerasinit.experiments.datasets import load
from kerasinit.experiments.lottery import run_lottery
from kerasinit.experiments.results import status_label
from kerasinit.experiments.sparsity import run_prune_at_init

LOTTERY = {"model": "mlp", "model_options": {"depth": 1, "width": 16}, "epochs": 2, "batch_size": 128,
           "learning_rate": 1e-2}


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def rendered_lines(rows, title, width=100):
    """The rich table of ``rows`` (default box) printed on a ``width``-column console, as lines."""
    table = Table(title=title)
    for col in rows[0]:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row.values())
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(table)
    return console.file.getvalue().splitlines()


def assert_fits(rows, title):
    """Every row of the table is one line: no header or cell wrapped at 100 columns."""
    lines = rendered_lines(rows, title)
    wide = rendered_lines(rows, title, width=400)
    assert max(len(line) for line in lines) <= 100
    body = [line for line in lines if line.startswith(("┃", "│"))]
    assert len(body) == len(rows) + 1, "\n".join(lines)  # the header and each row on one line
    assert [line for line in wide if line.startswith(("┃", "│"))] == body


def test_lottery_stop_column_marks_the_last_step_and_one_seed_has_no_plus_minus(digits):
    results = run_lottery(dataset=digits, rounds=2, controls=("random",), **LOTTERY)
    rows = results.display_rows()
    last = results.config["steps"]
    assert list(rows[0]) == ["round", "weights", "ticket acc", "ticket stop", "random acc", "random stop"]
    for row, raw in zip(rows, results.rows, strict=True):
        assert row["weights"] == f"{100 * raw['remaining']:.3g}%"
        for kind in ("ticket", "random"):
            run = raw.get(kind)
            if run is None:
                assert row[f"{kind} acc"] == row[f"{kind} stop"] == "-"
                continue
            assert row[f"{kind} acc"] == f"{100 * run['test_accuracy']:.1f}"  # in %, the value alone: one seed
            step = run["early_stop_step"]
            assert row[f"{kind} stop"] == (f"last ({last})" if step == last else str(step))
    assert any(row["ticket stop"] == f"last ({last})" for row in rows)  # 2 epochs: still improving at the end
    assert not any("±" in cell for row in rows for cell in row.values())
    assert "lottery tickets" in results.title and "seed 0" in results.title
    assert any(f"last ({last})" in note and "still falling" in note for note in results.notes)
    assert "±" not in results.table()
    assert_fits(rows, results.title)


def test_lottery_with_several_seeds_shows_mean_and_std_within_100_columns(digits):
    results = run_lottery(dataset=digits, rounds=1, seeds=[0, 1], **LOTTERY)
    rows = results.display_rows()
    assert list(rows[0]) == ["round", "weights", "ticket acc", "ticket stop", "reinit acc", "reinit stop",
                             "random acc", "random stop"]
    accs = [100 * r["random"]["test_accuracy"] for r in results.rows if r["round"] == 1]
    mean, std = sum(accs) / 2, abs(accs[0] - accs[1]) / 2
    assert rows[1]["random acc"] == f"{mean:.1f} ± {std:.1f}"
    assert "2 seeds [0, 1]" in results.title and any("mean ± std over 2 seeds" in n for n in results.notes)
    assert_fits(rows, results.title)


def _run(init, seed, status, acc):
    return RunResult(init=init, seed=seed, status=status, test_accuracy=acc, test_loss=0.5, epochs_to_target=None,
                     act_std=[0.5, 0.01], symmetric_layers=[], loss=[0.7], val_loss=[0.7], accuracy=[acc],
                     val_accuracy=[acc], seconds=1.0)


def test_compare_status_counts_the_seeds():
    # the runs of issue 22's `compare --dataset moons`: random_normal stalled in 1 of 3 seeds only
    runs = [_run("random_normal", 0, "ok", 0.885), _run("random_normal", 1, "ok", 0.85),
            _run("random_normal", 2, "stalled", 0.5), *(_run("zeros", s, "symmetric", 0.5) for s in range(3))]
    config = {"model": "mlp", "depth": 5, "width": 100, "activation": "relu", "dataset": "moons", "epochs": 20,
              "seeds": [0, 1, 2], "target": 0.9, "optimizer": "sgd", "learning_rate": 0.01}
    results = CompareResults(config=config, runs=runs, dataset=load("moons", n_samples=100))
    rows = {r["initializer"]: r for r in results.display_rows()}
    assert rows["random_normal"]["status"] == "stalled in 1 of 3 seeds"
    assert rows["zeros"]["status"] == "symmetric"  # every seed
    assert rows["random_normal"]["test acc"] == "0.745 ± 0.174"
    assert results.summary().set_index("init").loc["random_normal", "status"] == "stalled in 1 of 3 seeds"
    assert any(n.startswith("stalled: accuracy near chance") for n in results.notes)
    assert any(n.startswith("symmetric: ") for n in results.notes)
    assert_fits(list(rows.values()), results.title)
    one = CompareResults(config={**config, "seeds": [0]}, runs=[runs[0]], dataset=results.dataset)
    assert one.display_rows()[0]["test acc"] == "0.885"  # one seed: no "± 0.000"
    assert status_label(["diverged", "ok", "stalled", "diverged"]) == "diverged in 2 of 4 seeds; stalled in 1 of 4 seeds"
    assert status_label(["ok"]) == "ok" and status_label(["stalled"]) == "stalled"


def test_prune_at_init_rows_title_and_notes(digits):
    kwargs = {"epochs": 1, "batch_size": 128, "learning_rate": 1e-2, "model_options": {"depth": 1, "width": 16}}
    one = run_prune_at_init("mlp", digits, ["random", "magnitude"], [0.5, 0.9], **kwargs)
    rows = one.display_rows()
    assert [r["weights"] for r in rows] == ["50%", "10%", "50%", "10%"]
    assert rows[0]["test acc"] == f"{one.rows[0]['test_accuracy']:.3f}"
    assert "±" not in one.table()
    assert "pruning at initialization" in one.title and any("layer collapse" in n for n in one.notes)
    assert_fits(rows, one.title)
    two = run_prune_at_init("mlp", digits, ["random"], [0.5], seeds=[0, 1], **kwargs)
    accs = [r["test_accuracy"] for r in two.rows]
    assert two.display_rows()[0]["test acc"] == f"{sum(accs) / 2:.3f} ± {abs(accs[0] - accs[1]) / 2:.3f}"


def test_lottery_progress_line_shows_the_accuracy_of_the_run_it_names(digits):
    console = Console(file=io.StringIO(), width=160, force_terminal=True, color_system=None)
    results = run_lottery(dataset=digits, rounds=1, controls=("random",), progress=console, **LOTTERY)
    # the last state of the live line, printed when the bar stops
    final = [line for line in re.split(r"[\r\n]|\x1b\[[0-9;]*[A-Za-z]", console.file.getvalue()) if "round" in line][-1]
    named = re.search(r"round (\d+) (ticket|reinit|random)", final)
    shown = re.search(r"acc (\d\.\d{3})", final)
    assert named and shown, final
    run = next(r for r in results.rows if r["round"] == int(named.group(1)))[named.group(2)]
    assert float(shown.group(1)) == pytest.approx(run["test_accuracy"], abs=5e-4)
    ticket = results.rows[1]["ticket"]["test_accuracy"]
    assert not math.isclose(ticket, results.rows[1]["random"]["test_accuracy"], abs_tol=1e-3)  # the test can tell
