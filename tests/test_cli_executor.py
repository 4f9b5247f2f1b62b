"""Issue 25: `--executor`, `--address`, `--workers` on compare, lottery and prune-at-init, checked before Keras loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

#: runs the command in-process and reports whether Keras was imported; ``BLOCK_RAY`` makes `ray` unimportable
PROBE = """
import os, sys
if os.environ.get("BLOCK_RAY"):
    sys.modules["ray"] = None
import kerasinit.cli
code = kerasinit.cli.main(sys.argv[1:])
print("LOADED=" + ",".join(m for m in ("keras", "tensorflow", "ray") if m in sys.modules and sys.modules[m]), file=sys.stderr)
sys.exit(code)
"""


def run(*argv: str, block_ray: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **({"BLOCK_RAY": "1"} if block_ray else {})}
    return subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120, env=env)


def refusal(proc: subprocess.CompletedProcess) -> str:
    """The two-line error of a refused command: status 2, no traceback, neither Keras nor Ray imported."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert lines[-1] == "LOADED=", lines
    assert "Traceback" not in proc.stderr
    assert 1 <= len(lines[:-1]) <= 2, lines
    return "\n".join(lines[:-1])


@pytest.mark.parametrize("command", ["compare", "lottery", "prune-at-init"])
@pytest.mark.parametrize(("argv", "expected"), [
    (["--executor", "dask"], "'dask' is not an executor (choose from inprocess, ray)"),
    (["--executor", "rey"], "'rey' is not an executor; did you mean ray?"),
    (["--address", "auto"], "--address applies to --executor ray only (received --executor inprocess)"),
    (["--workers", "2"], "--workers applies to --executor ray only (received --executor inprocess)"),
    (["--executor", "ray", "--workers", "0"], "--workers"),
])
def test_bad_executor_flags_are_refused_before_keras(command, argv, expected, tmp_path):
    text = refusal(run(command, "--out", str(tmp_path / "o"), *argv))
    assert expected in text, text


def test_ray_not_installed_says_how_to_install_it(tmp_path):
    text = refusal(run("lottery", "--executor", "ray", "--out", str(tmp_path / "o"), block_ray=True))
    assert "--executor ray needs Ray, which is not installed" in text
    assert "pip install 'kerasinit[ray]'" in text


def test_executor_flags_parse_and_reach_the_library():
    from kerasinit.cli import checks, commands
    from kerasinit.cli.parser import build_parser

    args = build_parser().parse_args(["compare", "--executor", "ray", "--address", "auto", "--workers", "3"])
    checks.executor(args)  # Ray is installed in the dev environment: accepted
    ex = commands._executor(args)
    assert (type(ex).__name__, ex.address, ex.workers, ex.num_cpus, ex.retries) == ("RayExecutor", "auto", 3, 1, 1)
    args = build_parser().parse_args(["prune-at-init"])
    assert args.executor == "inprocess" and commands._executor(args) is None


def test_flags_table_names_the_executor_arguments():
    from kerasinit.cli.errors import flag

    assert [flag(a) for a in ("executor", "address", "workers")] == ["--executor", "--address", "--workers"]
