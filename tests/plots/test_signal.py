"""Signal plots: every figure from a real monitor run, saved to files; bad arguments refused."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerasinit.monitor import VarianceMonitor
from kerasinit.plots.signal import (
    plot_activation_histograms,
    plot_gradient_norms,
    plot_std_over_training,
    plot_std_vs_depth,
)


@pytest.fixture(scope="module")
def monitor(tmp_path_factory) -> VarianceMonitor:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((48, 4)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,))] + [keras.layers.Dense(8, activation="tanh") for _ in range(4)] + [keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    path = tmp_path_factory.mktemp("signal") / "m.csv"
    mon = VarianceMonitor(probe=(x, y), histograms=True, every_n_batches=2, track=("weights", "activations", "gradients", "output_gradients"), writers=[path])
    model.fit(x, y, epochs=2, batch_size=16, callbacks=[mon], verbose=0)
    mon.csv_path = path
    return mon


def test_every_plot_saves_and_returns_a_figure(monitor, tmp_path):
    figures = {
        "depth.png": plot_std_vs_depth(monitor, epochs=[0, 2], out=tmp_path / "depth.png"),
        "heat.png": plot_std_over_training(monitor.history, out=tmp_path / "heat.png"),
        "lines.png": plot_std_over_training(monitor.to_pandas(), kind="gradients", stat="norm", style="lines", out=tmp_path / "lines.png"),
        "hist.png": plot_activation_histograms(monitor, step=0, out=tmp_path / "hist.png"),
        "backprop.png": plot_activation_histograms(monitor.histograms, kind="output_gradients", out=tmp_path / "backprop.png"),
        "grad.png": plot_gradient_norms(monitor.csv_path, out=tmp_path / "grad.png"),
    }
    for name, fig in figures.items():
        assert (tmp_path / name).stat().st_size > 1000
        assert fig.axes
    lines = figures["depth.png"].axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["epoch 0 (step 0)", "epoch 2 (step 6)"]
    np.testing.assert_allclose(lines[0].get_ydata(), monitor.to_pandas().query("kind == 'activations' and step == 0").sort_values("depth")["std"])
    assert len(figures["hist.png"].axes[0].get_lines()) == 5


def test_plot_arguments_are_checked(monitor):
    with pytest.raises(ValueError, match=r"epochs \[7\] have no 'activations' records; recorded epochs: \[0, 1, 2\]"):
        plot_std_vs_depth(monitor, epochs=[7])
    with pytest.raises(ValueError, match="stat must be one of"):
        plot_std_vs_depth(monitor, stat="kurtosis")
    with pytest.raises(ValueError, match="style must be"):
        plot_std_over_training(monitor, style="pie")
    with pytest.raises(ValueError, match="step 99 has no"):
        plot_activation_histograms(monitor, step=99)
    with pytest.raises(TypeError, match="history must be"):
        plot_std_vs_depth(42)
