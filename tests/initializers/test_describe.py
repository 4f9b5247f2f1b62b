"""``describe``, ``summarize``, ``bounds_table`` and ``plot_bounds`` (SPEC §2.5)."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from conftest import ALL_CLASSES, example

import kerasinit


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_describe_record_is_complete(cls):
    d = kerasinit.describe(example(cls), cls.example_shape)
    assert d.name == cls.__name__ and d.formula and d.family and d.distribution
    assert (d.fan_in, d.fan_out) == kerasinit.compute_fans(cls.example_shape)
    assert math.isfinite(d.mean) and d.std >= 0
    data = d.to_dict()
    assert data["variance"] == pytest.approx(d.std**2)
    assert cls.__name__ in str(d)


def test_describe_accepts_keras_builtins_and_names():
    a = kerasinit.describe(keras.initializers.HeUniform(), (20, 5))
    b = kerasinit.describe("he_uniform", (20, 5))
    assert a == b and a.bounds == pytest.approx((-math.sqrt(6 / 20), math.sqrt(6 / 20)))
    trunc = kerasinit.describe(keras.initializers.TruncatedNormal(0.0, 1.0), (3,))
    assert trunc.bounds == (-2.0, 2.0) and trunc.std == pytest.approx(0.8796, abs=1e-4)
    with pytest.raises(TypeError, match="initializer"):
        kerasinit.describe(lambda shape, dtype=None: None, (3, 3))


def test_summarize_defaults_to_n_values():
    s = kerasinit.summarize(kerasinit.RandomUniform(-1.0, 1.0), n=4000, seed=1)
    assert s.n == 4000 and s.expected.shape == (4000,)
    assert s.mean == pytest.approx(0.0, abs=5 * s.expected.std / math.sqrt(4000))
    assert "sampled" in str(s)


def test_bounds_table():
    table = kerasinit.bounds_table(["xavier_uniform", "plain_he_normal"], fan_in=range(1, 101), fan_out=10)
    assert len(table) == 200
    xu = table[table.initializer == "xavier_uniform"]
    np.testing.assert_allclose(xu.high, 1 / np.sqrt(np.arange(1, 101)))
    assert xu.bounded.all()
    he = table[table.initializer == "plain_he_normal"]
    assert not he.bounded.any()
    np.testing.assert_allclose(he.high, np.sqrt(2 / np.arange(1, 101)))  # mean + sigma
    square = kerasinit.bounds_table("normalized_xavier_uniform", fan_in=[10, 20])
    assert square.fan_out.tolist() == [10, 20]
    with pytest.raises(ValueError, match="fan_out"):
        kerasinit.bounds_table("xavier_uniform", fan_in=[1, 2], fan_out=[3])


def test_plot_bounds_returns_a_figure(tmp_path):
    fig = kerasinit.plot_bounds(["xavier_uniform", "kwon_tanh_uniform"], fan_in=range(1, 51), out=tmp_path / "b.png")
    ax = fig.axes[0]
    assert len(ax.get_legend().get_texts()) == 2
    high = ax.lines[0].get_ydata()
    np.testing.assert_allclose(high, 1 / np.sqrt(np.arange(1, 51)))
    assert (tmp_path / "b.png").stat().st_size > 0


# ----------------------------------------------------------------------------- issue 11: no NumPy 2 warnings

_QUIET_UNDER_NUMPY_2 = """
import os, sys, warnings
import keras, numpy as np
import kerasinit
warnings.simplefilter("error", DeprecationWarning)  # NumPy 2: `__array__ ... doesn't accept a copy keyword`
warnings.simplefilter("error", UserWarning)          # JAX: float64 requested without x64
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
kerasinit.summarize("he_normal", shape=(10, 10), n=1000)
kerasinit.STFT().describe((16, 1, 9))
kerasinit.Constant(keras.Variable(np.ones((3,)))).describe((2, 3))
kerasinit.Constant(keras.ops.ones((3,)))((2, 3))
kerasinit.FromArray(keras.Variable(np.ones((2, 2))))((2, 2))
kerasinit.lsuv(model, np.random.default_rng(0).normal(size=(16, 4)).astype("float32"), verbose=False)
kerasinit.reinitialize(model, seed=1)
print("quiet on", keras.config.backend(), np.__version__)
"""


@pytest.mark.parametrize("backend", ["tensorflow", "torch", "jax"])
def test_initializer_paths_raise_no_numpy2_or_backend_warnings(backend):
    import os
    import subprocess
    import sys

    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", _QUIET_UNDER_NUMPY_2], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0 and f"quiet on {backend}" in proc.stdout, proc.stderr[-3000:]
