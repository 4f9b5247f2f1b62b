"""Time one ``python -m kerasinit COMMAND --json --quiet`` run in a fresh process (shared by the CLI benchmarks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time


def run_cli(command: str, extra: list[str] | None = None) -> tuple[float, dict]:
    """Wall time in seconds and the parsed ``--json`` output; a fresh output folder, so nothing resumes."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "kerasinit", command, "--json", "--quiet", "--out", out, *(extra or [])]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"kerasinit {command} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return wall, json.loads(proc.stdout)
