"""Shared helpers for the kerasinit test suite (TensorFlow backend, CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# the in-step mask updates compile even for the suite's tiny models (kerasinit.pruning.break_even would keep
# those on the host); tests/pruning/test_break_even.py checks the estimate itself
os.environ.setdefault("KERASINIT_COMPILE_SECONDS", "0,0")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kerasinit  # noqa: E402
from kerasinit.initializers.registry import CATALOGUE  # noqa: E402

ALL_CLASSES = list(CATALOGUE.values())
RANDOM_CLASSES = [c for c in ALL_CLASSES if c.is_random]

#: Non-default arguments per class, so configs carry something worth round-tripping.
EXAMPLE_KWARGS: dict[str, dict] = {
    "Constant": {"value": 0.5},
    "Identity": {"gain": 2.0},
    "STFT": {"side": "imag", "window": "hamming", "scaling": "spectrum", "periodic": True},
    "RandomNormal": {"mean": 0.1, "stddev": 0.2},
    "TruncatedNormal": {"mean": -0.1, "stddev": 0.3},
    "RandomUniform": {"minval": -0.2, "maxval": 0.4},
    "VarianceScaling": {"scale": 2.5, "mode": "fan_out", "distribution": "uniform"},
    "HeNormal": {"truncated": False},
    "Orthogonal": {"gain": 1.5},
    "KwonUniform": {"activation": "tanh"},
    "KwonNormal": {"activation": "logistic", "factor": 4.0},
    "KwonTanhUniform": {"factor": 3.0},
    "LeakyHeNormal": {"negative_slope": 0.1},
    "LeakyHeUniform": {"negative_slope": 0.3},
    "AlexNetNormal": {"stddev": 0.02},
    "DeltaOrthogonal": {"gain": 1.2},
    "Dirac": {"groups": 2},
    "SparseNormal": {"nonzero_per_unit": 4, "stddev": 0.5},
}


def example(cls: type, seed: int | None = 7) -> keras.initializers.Initializer:
    """An instance of ``cls`` with non-default arguments and, if random, an integer seed."""
    if cls.__name__ == "FromArray":
        return cls.example()
    kwargs = dict(EXAMPLE_KWARGS.get(cls.__name__, {}))
    if cls.is_random:
        kwargs["seed"] = seed
    return cls(**kwargs)


def supports(cls: type, shape: tuple[int, ...], defaults: bool = False) -> bool:
    """Whether ``cls`` (as :func:`example` builds it, or with default arguments) accepts ``shape``."""
    name = cls.__name__
    if name == "FromArray":
        return shape == cls.example_shape
    if name == "DeltaOrthogonal":
        return 3 <= len(shape) <= 5 and shape[-2] <= shape[-1]
    if name == "Dirac":
        return 3 <= len(shape) <= 5 and (defaults or shape[-1] % 2 == 0)
    if name == "SparseNormal":
        return len(shape) >= 2 and int(np.prod(shape[:-1])) >= (15 if defaults else 4)
    if name == "STFT":
        return len(shape) == 3 and shape[1] == 1
    if name == "ZerO":
        return 2 <= len(shape) <= 5 and 0 not in shape
    if name == "Identity":
        return len(shape) == 2
    if name == "Orthogonal":
        return len(shape) >= 2
    return True


def to_np(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


def run_python(code: str, *args: str, timeout: int = 300) -> str:
    """Run ``code`` in a fresh interpreter (same venv); return stdout, fail with stderr on error."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    if proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout


#: the installed command, and a wrapper that runs it in-process and reports whether Keras (or a backend) was
#: imported (``LOADED=`` on stderr): refusals must come before Keras loads
CLI_SCRIPT = str(Path(sys.executable).with_name("kerasinit"))
CLI_PROBE = """
import sys
import kerasinit.cli
code = kerasinit.cli.main(sys.argv[1:])
loaded = sorted(m for m in ("keras", "tensorflow", "jax", "torch") if m in sys.modules)
print("LOADED=" + ",".join(loaded), file=sys.stderr)
sys.exit(code)
"""


def run_kerasinit(*argv: str, cwd: Path | None = None, probe: bool = False,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``kerasinit ARGV`` in a subprocess (``probe``: through :data:`CLI_PROBE`); ``env`` adds variables."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    cmd = [sys.executable, "-c", CLI_PROBE, *argv] if probe else [CLI_SCRIPT, *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=cwd)


__all__ = ["ALL_CLASSES", "RANDOM_CLASSES", "example", "kerasinit", "run_kerasinit", "run_python", "supports", "to_np"]
