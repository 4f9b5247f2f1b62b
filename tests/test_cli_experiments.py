"""Issue 22: the experiment commands as a user runs them (the installed script, tiny settings).

Run folders resume or refuse in flags, ``--fresh`` starts over, tables fit 100 columns, ``--label``
picks a CSV's label column, ``--tensorboard`` writes each round's per-layer sparsity and threshold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = str(Path(sys.executable).with_name("kerasinit"))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
MLP = ["--model", "mlp", "--depth", "1", "--width", "8", "--quiet"]
TINY = [*MLP, "--epochs", "1"]


def kerasinit(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, *argv], capture_output=True, text=True, timeout=600, env=ENV)


def table_lines(stdout: str) -> list[str]:
    """The table's lines (title, header, rule, rows): up to the first blank line after the rule."""
    lines = stdout.splitlines()
    rule = next(i for i, ln in enumerate(lines) if set(ln.strip()) == {"─"})
    end = next((i for i in range(rule + 1, len(lines)) if not lines[i].strip()), len(lines))
    return lines[rule - 1:end]


def test_compare_resumes_refuses_in_flags_and_starts_over_with_fresh(tmp_path):
    out = str(tmp_path / "c")
    first = kerasinit("compare", *TINY, "--dataset", "moons", "--inits", "zeros,he_normal", "--seeds", "2", "--out", out)
    assert first.returncode == 0, first.stderr
    assert all(len(ln) <= 100 for ln in table_lines(first.stdout)), first.stdout
    assert "initializer" in first.stdout and "symmetric" in first.stdout
    saved = json.loads(Path(out, "results.json").read_text())
    assert len(saved["runs"]) == 4

    other = kerasinit("compare", *MLP, "--epochs", "2", "--dataset", "moons",
                      "--inits", "zeros,he_normal", "--seeds", "2", "--out", out)
    lines = [ln for ln in other.stderr.splitlines() if ln.strip()]
    assert other.returncode == 2 and len(lines) == 2, other.stderr
    assert "--epochs 1 there, 2 now" in lines[0] and "--fresh" in lines[1], lines
    assert json.loads(Path(out, "results.json").read_text()) == saved  # refused: nothing touched

    grown = kerasinit("compare", *TINY, "--dataset", "moons", "--inits", "zeros,he_normal,glorot_uniform",
                      "--seeds", "2", "--out", out)
    assert grown.returncode == 0, grown.stderr
    runs = json.loads(Path(out, "results.json").read_text())["runs"]
    assert len(runs) == 6  # the 4 finished trainings were read back, 2 new ones trained
    assert [r for r in runs if r["init"] != "glorot_uniform"] == saved["runs"]

    fresh = kerasinit("compare", *MLP, "--epochs", "2", "--dataset", "moons", "--inits", "zeros",
                      "--seeds", "1", "--out", out, "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    assert len(json.loads(Path(out, "results.json").read_text())["runs"]) == 1


def test_lottery_tensorboard_records_each_rounds_sparsity_and_threshold(tmp_path):
    from kerasinit.monitor.tensorboard import read_tensorboard_scalars

    out, board = tmp_path / "l", tmp_path / "tb"
    proc = kerasinit("lottery", *TINY, "--rounds", "2", "--controls", "", "--out", str(out), "--tensorboard", str(board))
    assert proc.returncode == 0, proc.stderr
    assert all(len(ln) <= 100 for ln in table_lines(proc.stdout)), proc.stdout
    scalars = {(tag, step): value for tag, step, value in read_tensorboard_scalars(board / "seed_0")}
    for rnd in (1, 2):
        masks = np.load(out / "seed_0" / f"masks_round_{rnd}.npz")
        trained = np.load(out / "seed_0" / f"trained_round_{rnd - 1}.npz")
        names = sorted({tag.split("/", 1)[1].rsplit("/", 1)[0] for tag, _ in scalars})
        assert len(names) == len(masks.files) == 2  # hidden_1/kernel, output/kernel
        for name, key in zip(names, sorted(masks.files), strict=True):
            mask, values = masks[key].astype(bool), np.abs(trained[key])
            assert scalars[(f"pruning_sparsity/{name}/zero_fraction", rnd)] == np.float32(1 - mask.mean())
            assert scalars[(f"pruning_threshold/{name}/min", rnd)] == np.float32(values[mask].min())


def test_csv_label_column_is_found_by_name_and_said(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 3))
    y = (x[:, 0] > 0).astype(int)
    rows = "\n".join(f"{c},{a:.4f},{b:.4f},{d:.4f}" for c, (a, b, d) in zip(y, x, strict=True))
    data = tmp_path / "d.csv"
    data.write_text("class,a,b,c\n" + rows + "\n")
    proc = kerasinit("compare", *TINY, "--dataset", str(data), "--inits", "he_normal", "--seeds", "1",
                     "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    assert "label column: class (found by name)" in proc.stdout
