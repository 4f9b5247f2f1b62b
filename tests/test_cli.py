"""The ``kerasinit`` command: list, describe (the tutorial's numbers), plot-bounds, errors."""

from __future__ import annotations

import json

import pytest
from conftest import run_python

import kerasinit
from kerasinit.cli import main
from kerasinit.initializers.registry import REGISTERED


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["describe", "xavier_uniform", "--fan-in", "10"], "±0.316228"),
        (["describe", "normalized_xavier_uniform", "--fan-in", "10", "--fan-out", "20"], "±0.447214"),
        (["describe", "plain_he_normal", "--fan-in", "10"], "std=0.447214"),
        (["describe", "kerasinit>KwonTanhUniform", "--fan-in", "10", "--fan-out", "20"], f"±{4 * (6 / 30) ** 0.5:.6f}"),
    ],
)
def test_describe_prints_the_tutorial_numbers(capsys, argv, expected):
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert expected in out
    assert "sampled       n=1000" in out


def test_describe_json_and_samples(capsys):
    code, out, _ = run(capsys, "describe", "he_uniform", "--fan-in", "50", "--samples", "5000", "--seed", "3", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["n"] == 5000 and data["seed"] == 3
    limit = (6 / 50) ** 0.5
    assert data["expected"]["bounds"] == pytest.approx([-limit, limit])
    assert -limit <= data["min"] < data["max"] <= limit
    assert abs(data["std"] - data["expected"]["std"]) < 5 * data["expected"]["std"] / (2 * 5000) ** 0.5


def test_describe_with_a_full_shape(capsys):
    code, out, _ = run(capsys, "describe", "delta_orthogonal", "--shape", "3,3,16,32", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["expected"]["std"] == pytest.approx(1 / (9 * 32) ** 0.5)
    assert data["n"] >= 1000
    code, _, err = run(capsys, "describe", "delta_orthogonal", "--fan-in", "10")
    assert code == 2 and "rank 3 to 5" in err and "(10, 10)" in err
    code, _, err = run(capsys, "describe", "he_normal", "--shape", "3,3", "--fan-in", "3")
    assert code == 2 and "not both" in err
    code, out, _ = run(capsys, "describe", "he_normal")  # no fans: a stated 100x100 default
    assert code == 0 and "(100, 100)" in out and "--fan-in N" in out


def test_list_shows_every_initializer(capsys):
    code, out, _ = run(capsys, "list", "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == len(REGISTERED)  # the catalogue and the mimetic pair
    by_name = {r["name"]: r for r in rows}
    assert by_name["xavier_uniform"]["formula"] == "U[-r, r], r = 1 / sqrt(fan_in)"
    assert by_name["kwon_tanh_normal"]["distribution"] == "normal"
    code, out, _ = run(capsys, "list")
    assert "kwon_tanh_uniform" in out and "GlorotUniform" in out


def test_plot_bounds_writes_a_png(capsys, tmp_path):
    out_file = tmp_path / "sub" / "bounds.png"
    code, out, _ = run(capsys, "plot-bounds", "xavier_uniform", "he_normal", "kwon_tanh_uniform", "--fan-in", "1:100",
                       "--fan-out", "10", "--out", str(out_file))
    assert code == 0 and str(out_file) in out
    assert out_file.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out_file.stat().st_size > 10_000


def test_errors_are_clear(capsys):
    code, _, err = run(capsys, "describe", "xavier_unifrm", "--fan-in", "3")
    assert code == 2 and "'xavier_unifrm' is not an initializer; did you mean xavier_uniform?" in err
    code, _, err = run(capsys, "plot-bounds", "xavier_uniform", "--fan-in", "0:5", "--out", "x.png")
    assert code == 2 and "fan-in values must be >= 1" in err
    code, _, err = run(capsys, "describe", "xavier_uniform", "--fan-in", "-3")
    assert code == 2 and "argument --fan-in: expected a positive integer" in err


def test_python_dash_m_entry_point():
    out = run_python("import runpy, sys; sys.argv = ['kerasinit', 'describe', 'xavier_uniform', '--fan-in', '10']; runpy.run_module('kerasinit', run_name='__main__')")
    assert "±0.316228" in out


# ----------------------------------------------------------------------------- issue 11: a fast, quiet command


def _command(*argv: str, env: dict | None = None):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("kerasinit")
    return subprocess.run([str(script), *argv], capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


def test_help_imports_neither_keras_nor_a_backend():
    out = run_python("""
        import sys
        sys.argv = ["kerasinit", "--help"]
        import kerasinit.cli
        try:
            kerasinit.cli.main()
        except SystemExit:
            pass
        print(sorted(m for m in ("keras", "tensorflow", "jax", "torch", "numpy") if m in sys.modules))
    """)
    assert out.strip().splitlines()[-1] == "[]"


def _user_env(tmp_path, **env: str) -> dict:
    """The environment of a user who set neither KERAS_BACKEND nor TF_CPP_MIN_LOG_LEVEL (own KERAS_HOME)."""
    import os

    base = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    return {**base, "KERAS_HOME": str(tmp_path), **env}


def _run_main(argv: list[str], env: dict) -> dict:
    """Run the command's ``main`` in a fresh process as the console script does; report what it loaded."""
    import subprocess
    import sys

    code = f"""
import json, sys
sys.argv = ["kerasinit", *{argv!r}]
import kerasinit.cli
sys.stdout = open("/dev/null", "w")
code = kerasinit.cli.main()
sys.stdout = sys.__stdout__
import keras
print(json.dumps({{"code": code, "backend": keras.config.backend(), "tensorflow": "tensorflow" in sys.modules}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["list", "--json"], ["describe", "he_normal", "--fan-in", "4"],
                                  ["plot-bounds", "he_normal", "--fan-in", "1:5", "--out", "PLOT"]])
def test_light_commands_need_no_tensorflow(tmp_path, argv):
    argv = [str(tmp_path / "b.png") if a == "PLOT" else a for a in argv]
    assert _run_main(argv, _user_env(tmp_path)) == {"code": 0, "backend": "numpy", "tensorflow": False}


def test_the_users_backend_wins(tmp_path):
    describe = ["describe", "he_normal", "--fan-in", "4"]
    assert _run_main(describe, _user_env(tmp_path, KERAS_BACKEND="jax"))["backend"] == "jax"
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax", "floatx": "float32"}))
    assert _run_main(describe, _user_env(tmp_path))["backend"] == "jax"  # a deliberate keras.json
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "tensorflow", "floatx": "float32"}))
    assert _run_main(describe, _user_env(tmp_path))["backend"] == "numpy"  # what Keras writes by itself
    proc = _command(*describe, env=_user_env(tmp_path, KERAS_BACKEND="tensorflow"))
    assert proc.returncode == 0 and "(seed 0, tensorflow)" in proc.stdout, proc.stderr


def test_command_keeps_native_start_up_lines_off_the_terminal(tmp_path):
    env = _user_env(tmp_path, KERAS_BACKEND="tensorflow")
    proc = _command("describe", "he_normal", "--fan-in", "4", env=env)
    assert proc.returncode == 0 and "std=0.707107" in proc.stdout and "(seed 0, tensorflow)" in proc.stdout
    assert proc.stderr == "", proc.stderr
    proc = _command("--verbose", "describe", "he_normal", "--fan-in", "4", env=env)
    assert proc.returncode == 0 and "backend tensorflow" in proc.stderr
    assert "absl" in proc.stderr, proc.stderr  # --verbose shows what the quiet run kept off the terminal


def test_native_stderr_is_silenced_only_meanwhile(capfd):
    import os
    import sys

    from kerasinit.cli import native_stderr_silenced

    with native_stderr_silenced():
        os.write(2, b"native start-up line\n")
        print("python stderr", file=sys.stderr)  # warnings and tracebacks go this way
    os.write(2, b"native after\n")
    err = capfd.readouterr().err
    assert "native start-up line" not in err
    assert "python stderr" in err and "native after" in err


def test_unknown_name_suggests_the_closest(capsys):
    code, _, err = run(capsys, "describe", "glorot_unifrom")  # without --fan-in too
    assert code == 2 and "did you mean glorot_uniform?" in err
    with pytest.raises(ValueError, match="Did you mean 'kwon_tanh_uniform'"):
        kerasinit.get("kwon_tanh_unifrom")


def test_log_handlers_created_while_native_stderr_is_silenced_keep_working(capfd):
    import logging

    from kerasinit.cli import native_stderr_silenced

    logger = logging.getLogger("kerasinit_test_silenced")
    with native_stderr_silenced():
        handler = logging.StreamHandler()  # binds the temporary sys.stderr, as TensorFlow's logger does at import
        logger.addHandler(handler)
    try:
        logger.warning("logged after the import")
    finally:
        logger.removeHandler(handler)
    err = capfd.readouterr().err
    assert "logged after the import" in err and "Logging error" not in err


BLOCK_JAX = '''
import sys


class _NoJax:
    """A machine where JAX is not installed (`pip install kerasinit` alone)."""

    def find_spec(self, name, path=None, target=None):
        if name == "jax" or name.startswith(("jax.", "jaxlib")):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoJax())
'''


def test_light_commands_without_jax_use_kerass_default_backend(tmp_path):
    # Keras's NumPy backend imports JAX: on a plain install (no JAX) `describe` must still work
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "sitecustomize.py").write_text(BLOCK_JAX)
    env = _user_env(tmp_path, PYTHONPATH=str(tmp_path))  # exactly the user's: no KERAS_BACKEND
    script = Path(sys.executable).with_name("kerasinit")
    proc = subprocess.run([str(script), "describe", "xavier_uniform", "--fan-in", "10"], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "0.316228" in proc.stdout and "(seed 0, tensorflow)" in proc.stdout, proc.stdout
