"""Ctrl-C in `kerasinit lottery`, `compare` and `prune-at-init`: one line, exit status 130, what was kept;
a rerun of the lottery resumes and prints every round. Real subprocesses and real SIGINTs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

KERASINIT = Path(sys.executable).with_name("kerasinit")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
LOTTERY = ["lottery", "--model", "mlp", "--depth", "1", "--width", "16", "--rounds", "8", "--epochs", "4",
           "--controls", "reinit", "--batch-size", "128", "--quiet"]


def finished_rounds(out: Path) -> list[int]:
    try:
        return [r["round"] for r in json.loads((out / "results.json").read_text())["rows"]]
    except (OSError, ValueError, KeyError):  # not written yet (the write itself is atomic)
        return []


def round_numbers(stdout: str) -> list[str]:
    """The rounds of the table's rows (lines starting with a round number)."""
    return [cells[0] for cells in (line.split() for line in stdout.splitlines()) if cells and cells[0].isdigit()]


def logged_rounds(stdout: str) -> list[str]:
    """The rounds of the live log (``round 2: 27.9% of the weights; ...``), printed as each one finishes."""
    return [m.group(1) for m in re.finditer(r"^round (\d+): ", stdout, re.M)]


@pytest.mark.slow
def test_ctrl_c_in_lottery_stops_with_one_line_and_the_rerun_resumes(tmp_path):
    assert KERASINIT.exists(), KERASINIT
    out = tmp_path / "lt"
    argv = [str(KERASINIT), *LOTTERY, "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 120
    while not finished_rounds(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "finished before the interrupt; make the run longer"
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    stdout, stderr = proc.communicate(timeout=60)
    stopped_after = time.monotonic() - sent
    assert proc.returncode == 130, stderr[-3000:]
    assert stopped_after < 10, stopped_after
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    match = re.fullmatch(r"kerasinit lottery: interrupted after round (\d+); rerun the same command to resume \((.+)/\)",
                         lines[0])
    assert match, lines[0]
    k = int(match.group(1))
    assert match.group(2) == str(out)
    assert finished_rounds(out) == list(range(k + 1))  # what the line says is what is on disk
    assert logged_rounds(stdout) == [str(r) for r in range(k + 1)]  # the live log printed before the interrupt
    assert k < 8

    again = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert round_numbers(again.stdout) == [str(r) for r in range(9)]  # the whole table: resumed + new rounds
    assert f"rounds 0-{k} resumed from {out}/" in again.stdout
    assert "loss: sparse_categorical_crossentropy (from_logits=False)" in again.stdout
    assert finished_rounds(out) == list(range(9))


DRIVER = textwrap.dedent("""
    import importlib, os, signal, sys
    from kerasinit.cli import load_keras, main

    load_keras(sys.argv[1])  # as the command does: Keras first, its native start-up lines off the terminal
    experiment = importlib.import_module("{module}")

    real_train, count = experiment.train, [0]

    def train(*args, **kwargs):  # the real trainer; a real SIGINT to this process after the 2nd training
        result = real_train(*args, **kwargs)
        count[0] += 1
        if count[0] == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return result

    experiment.train = train
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.slow
@pytest.mark.parametrize("module, argv, done", [
    ("kerasinit.experiments.compare", ["compare", "--inits", "he_normal,glorot_uniform", "--seeds", "2", "--depth", "1",
                                       "--width", "8", "--epochs", "1"], "after 1 of 4 trainings"),
    ("kerasinit.experiments.sparsity", ["prune-at-init", "--model", "mlp", "--depth", "1", "--width", "32",
                                        "--lr", "0.01",
                                        "--methods", "random,magnitude", "--sparsities", "0.5,0.9", "--epochs", "1"],
     "after 1 of 4 trainings"),
])
def test_ctrl_c_in_compare_and_prune_at_init_keeps_the_finished_runs(tmp_path, module, argv, done):
    out = tmp_path / "o"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(module=module))
    proc = subprocess.run([sys.executable, str(script), *argv, "--quiet", "--out", str(out)], capture_output=True,
                          text=True, env=ENV, timeout=300)
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"kerasinit {argv[0]}: interrupted {done}; rerun the same command to resume ({out}/)"]
    saved = json.loads((out / "results.json").read_text())
    assert saved["config"]["interrupted"] == done
    assert len(saved["runs" if argv[0] == "compare" else "rows"]) == 1
    assert proc.stdout == ""  # no table of a partial run
