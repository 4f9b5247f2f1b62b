"""Issue 23: ``kerasinit export MODEL.keras``: arguments refused before Keras loads; the report table printed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import keras
import pytest
from conftest import run_kerasinit

from kerasinit.pruning import prune


def kerasinit(*argv: str, probe: bool = False) -> subprocess.CompletedProcess:
    return run_kerasinit(*argv, probe=probe, env={"KERAS_BACKEND": "tensorflow"})


def refused(proc: subprocess.CompletedProcess) -> str:
    """The two-line error of a refused command, asserting status 2 and that no Keras/backend was imported."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    loaded = [ln for ln in lines if ln.startswith("LOADED=")]
    lines = [ln for ln in lines if not ln.startswith("LOADED=")]
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and 1 <= len(lines) <= 2, lines
    assert lines[0].startswith("kerasinit export: error: "), lines
    assert loaded == ["LOADED="], loaded
    return "\n".join(lines)


@pytest.fixture(scope="module")
def pruned_keras(tmp_path_factory) -> Path:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(128, activation="relu", name="hidden"),
                              keras.layers.Dense(4, name="head")])
    prune(model, 0.8)
    path = tmp_path_factory.mktemp("cli_export") / "m.keras"
    model.save(path)
    return path


def test_bad_arguments_are_refused_before_keras(tmp_path, pruned_keras):
    assert "no such file" in refused(kerasinit("export", str(tmp_path / "missing.keras"), probe=True))
    text = refused(kerasinit("export", str(pruned_keras), "--format", "tflit", probe=True))
    assert "did you mean tflite?" in text, text
    text = refused(kerasinit("export", str(pruned_keras), "--format", "keras", "--dense", probe=True))
    assert "--dense applies to --format tflite only" in text, text
    text = refused(kerasinit("export", str(pruned_keras), "--out", str(tmp_path / "m.keras"), probe=True))
    assert "expected a .tflite file name" in text, text
    taken = tmp_path / "taken.tflite"
    taken.write_bytes(b"old")
    text = refused(kerasinit("export", str(pruned_keras), "--out", str(taken), probe=True))
    assert "exists" in text and "--overwrite" in text, text
    assert taken.read_bytes() == b"old"


def test_export_prints_the_report_and_writes_the_file(tmp_path, pruned_keras):
    out = tmp_path / "m.tflite"
    proc = kerasinit("export", str(pruned_keras), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[4:8] == b"TFL3"
    assert "hidden" in proc.stdout and "FULLY_CONNECTED" in proc.stdout and "sparse" in proc.stdout, proc.stdout
    assert "0.800" in proc.stdout and f"wrote {out}" in proc.stdout and "XNNPack" in proc.stdout
    proc = kerasinit("export", str(pruned_keras), "--out", str(out), "--dense", "--overwrite", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["sparse"] is False and [r["stored"] for r in data["layers"]] == ["dense", "dense"]
    assert data["bytes"] == out.stat().st_size
