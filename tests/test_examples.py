"""The example scripts run and print what they claim."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_initializer_in_layers():
    out = run_example("initializer_in_layers.py")
    assert "same weights: True" in out
    assert "['KwonTanhUniform', 'PlainHeNormal', 'XavierUniform']" in out


def test_weight_statistics(tmp_path):
    out = run_example("weight_statistics.py", "--out", str(tmp_path / "b.png"))
    line = next(x for x in out.splitlines() if x.startswith("normalized_xavier_uniform"))
    assert "±0.447214" in line
    assert (tmp_path / "b.png").exists()


def test_tfmot_bridge_example():
    out = run_example("tfmot_bridge.py")
    total = next(line for line in out.splitlines() if line.strip().startswith("total"))
    assert float(total.split()[-4]) > 0.7  # sparsity column of the total row (then collapsed, unmasked_zeros, masked)
    assert total.split()[-3:] == ["False", "0", "True"]  # no weight emptied, every zero held by a mask
    assert "reloaded: KwonTanhUniform same weights: True" in out


def test_prune_jax_custom_loop_example():
    import os

    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "prune_jax_custom_loop.py")], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mask updates at steps [0, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200]" in proc.stdout
    total = next(line for line in proc.stdout.splitlines() if line.strip().startswith("total"))
    assert abs(float(total.split()[-4]) - 0.9) < 0.005 and total.split()[-3:] == ["False", "0", "True"]


def test_rigl_vs_static_example(tmp_path):
    out = run_example("rigl_vs_static.py", "--quick", "--dataset", "digits", "--out", str(tmp_path / "runs"),
                      "--figure", str(tmp_path / "f.png"))
    assert "digits: lenet_300_100, 90% sparsity, ERK" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.strip().startswith(("rigl ", "static ")) and "−" not in line}
    assert set(rows) == {"rigl", "static"}
    for row in rows.values():  # per-seed accuracies of a trained network, far above chance (0.1)
        assert all(0.5 < float(v) <= 1.0 for v in row[1:4]), row
    assert (tmp_path / "f.png").exists()
