"""Issue 22: every flag checked before Keras loads, "did you mean", two-line errors, no traceback.

The installed console script runs in a subprocess, as a user types it. Each refusal must name what
was wrong and what fits, fit in two lines, exit with status 2, and leave Keras unimported (the
rejection time itself is measured by ``benchmarks/bench_cli.py``, not here).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import run_kerasinit


def kerasinit(*argv: str, cwd: Path | None = None, probe: bool = False) -> subprocess.CompletedProcess:
    return run_kerasinit(*argv, cwd=cwd, probe=probe)


def refused(proc: subprocess.CompletedProcess) -> str:
    """The error text of a refused command (asserting status 2, no traceback, at most two lines, Keras unloaded)."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    loaded = [ln for ln in lines if ln.startswith("LOADED=")]
    lines = [ln for ln in lines if not ln.startswith("LOADED=")]
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert 1 <= len(lines) <= 2, lines
    assert all(len(ln) < 240 for ln in lines), lines
    assert lines[0].startswith("kerasinit"), lines
    assert ": error: " in lines[0], lines
    if loaded:
        assert loaded[0] == "LOADED=", f"rejected only after importing {loaded[0]}"
    return "\n".join(lines)


@pytest.mark.parametrize(("argv", "expected"), [
    (["compare", "--optimizer", "adm"], "did you mean adam?"),
    (["compare", "--lr", "-1"], "argument --lr"),
    (["compare", "--lr", "nan"], "expected a positive number"),
    (["compare", "--dataset", "digit"], "did you mean digits?"),
    (["lottery", "--model", "lenet300"], "did you mean lenet_300_100?"),
    (["compare", "--inist", "he_normal"], "did you mean --inits?"),
    (["compare", "--inits", "he_normal,glorot_unifrom"], "did you mean glorot_uniform?"),
    (["describe", "glorot_unifrom"], "did you mean glorot_uniform?"),
    (["comapre"], "did you mean compare?"),
    (["lottery", "--scope", "globl"], "did you mean global?"),
    (["lottery", "--rewind", "epoch:x"], "epoch:K"),
    (["lottery", "--controls", "random,reinitt"], "did you mean reinit?"),
    (["lottery", "--rounds", "2", "--instability", "0,3"], "--instability"),
    (["prune-at-init", "--methods", "snp"], "did you mean snip?"),
    (["prune-at-init", "--distribution", "erdos"], "global, uniform, erk"),
    (["prune-at-init", "--ablation", "shufle"], "did you mean shuffle?"),
    (["compare", "--activation", "rlu"], "did you mean relu?"),
    (["compare", "--model", "conv4", "--depth", "3"], "--depth applies to --model mlp only"),
    (["compare", "--label", "class"], "--label applies to .csv datasets only"),
    (["compare", "--dataset", "missing.npz"], "no such file"),
    (["compare", "--model", "missing.keras"], "no such file"),
])
def test_a_bad_argument_is_refused_before_keras_with_a_suggestion(argv, expected):
    text = refused(kerasinit(*argv, probe=True))
    assert expected in text, text


def test_a_model_that_does_not_fit_the_dataset_names_the_datasets_that_do():
    text = refused(kerasinit("compare", "--model", "conv4", "--dataset", "digits", probe=True))
    assert "conv4" in text and "mnist" in text and "cifar10" in text, text


def test_long_name_lists_become_the_closest_few():
    text = refused(kerasinit("describe", "kwon_tahn", probe=True))
    assert "kwon_tanh_uniform" in text and "see `kerasinit list`" in text
    assert "xavier_normal" not in text  # not the whole catalogue


def test_version():
    proc = kerasinit("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("kerasinit ") and proc.stdout.split()[1][0].isdigit(), proc.stdout


@pytest.mark.parametrize("command", ["compare", "lottery", "prune-at-init"])
def test_an_unwritable_out_folder_is_refused_before_training(command, tmp_path):
    text = refused(kerasinit(command, "--out", "/proc/nope", probe=True))
    assert "--out /proc/nope" in text and "cannot write" in text, text
    afile = tmp_path / "taken"
    afile.write_text("x")
    text = refused(kerasinit(command, "--out", str(afile), probe=True))
    assert "is a file, not a folder" in text, text


def test_plot_bounds_refuses_an_existing_file_unless_overwrite(tmp_path):
    out = tmp_path / "bounds.png"
    out.write_bytes(b"old")
    text = refused(kerasinit("plot-bounds", "he_normal", "--out", str(out), probe=True))
    assert "exists" in text and "--overwrite" in text, text
    assert out.read_bytes() == b"old"
    proc = kerasinit("plot-bounds", "he_normal", "--fan-in", "1:5", "--out", str(out), "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_describe_without_fans_uses_a_stated_default():
    proc = kerasinit("describe", "he_normal")
    assert proc.returncode == 0, proc.stderr
    assert "(100, 100)" in proc.stdout and "--fan-in N" in proc.stdout


def test_a_library_refusal_is_two_lines_without_traceback(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,b,class\n" + "".join(f"{i % 3},{i % 5},{i % 2}\n" for i in range(60)))
    proc = kerasinit("compare", "--dataset", str(data), "--label", "klass", "--out", str(tmp_path / "o"))
    text = refused(proc)
    assert "klass" in text and "class" in text, text
