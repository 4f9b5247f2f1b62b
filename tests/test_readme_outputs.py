"""The README's `kerasinit compare` block is what the command prints today (issue 22: figures from a run
of the current code). The default run (5 initializers x 3 seeds on digits, ~1 min) is deterministic on
TensorFlow's CPU kernels; the block must match it line for line, the `wrote` line's folder aside."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(Path(sys.executable).with_name("kerasinit"))


def readme_block(command: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"```console\n$ {command}\n") + len(f"```console\n$ {command}\n")
    return [ln.rstrip() for ln in text[start:text.index("```", start)].rstrip("\n").split("\n")]


def test_the_readme_compare_block_is_todays_output(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    proc = subprocess.run([SCRIPT, "compare", "--quiet"], capture_output=True, text=True, timeout=900, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = [ln.rstrip() for ln in proc.stdout.rstrip("\n").split("\n")]
    assert printed == readme_block("kerasinit compare"), "README's compare block is stale: paste `kerasinit compare`'s output"
