"""The ``kerasinit`` command: list, describe (the tutorial's numbers), plot-bounds, errors."""

from __future__ import annotations

import json

import pytest
from conftest import run_python

import kerasinit
from kerasinit.cli import main


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
    code, _, err = run(capsys, "describe", "he_normal")
    assert code == 2 and "--fan-in" in err


def test_list_shows_every_initializer(capsys):
    code, out, _ = run(capsys, "list", "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == len(kerasinit.CATALOGUE)
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
    code, _, err = run(capsys, "describe", "nope", "--fan-in", "3")
    assert code == 2 and "Unknown initializer 'nope'" in err and "xavier_uniform" in err
    with pytest.raises(SystemExit) as exc:
        main(["plot-bounds", "xavier_uniform", "--fan-in", "0:5", "--out", "x.png"])
    assert exc.value.code == 2
    assert "--fan-in values must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["describe", "xavier_uniform", "--fan-in", "-3"])


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


def test_command_keeps_native_start_up_lines_off_the_terminal():
    proc = _command("describe", "he_normal", "--fan-in", "4", env={"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert proc.returncode == 0 and "std=0.707107" in proc.stdout
    assert "absl" not in proc.stderr and "cuda" not in proc.stderr.lower(), proc.stderr


def test_unknown_name_suggests_the_closest(capsys):
    code, _, err = run(capsys, "describe", "glorot_unifrom", "--fan-in", "10")
    assert code == 2 and "Did you mean 'glorot_uniform'?" in err
    with pytest.raises(ValueError, match="Did you mean 'kwon_tanh_uniform'"):
        kerasinit.get("kwon_tanh_unifrom")
