"""Readable log axes (issue 22): plain-number major tick labels, no minor labels, none overlapping, on the
figures of real (tiny) experiments."""

from __future__ import annotations

import pytest

from kerasinit.experiments.compare import run_compare
from kerasinit.experiments.datasets import load
from kerasinit.experiments.lottery import run_lottery
from kerasinit.experiments.sparsity import run_prune_at_init
from kerasinit.plots._common import log_ticks, pyplot
from kerasinit.plots.compare import plot_activation_std
from kerasinit.plots.lottery import plot_lottery
from kerasinit.plots.sparsity import plot_accuracy_vs_sparsity


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def visible_labels(ax, which):
    """(major texts, minor texts, major label boxes) of the tick labels inside the axis' view."""
    ax.figure.canvas.draw()
    axis = ax.xaxis if which == "x" else ax.yaxis
    low, high = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())

    def inside(ticks):
        return [t for t in ticks if low * (1 - 1e-9) <= t.get_loc() <= high * (1 + 1e-9) and t.label1.get_visible()]

    major = inside(axis.get_major_ticks())
    minor = inside(axis.get_minor_ticks())
    renderer = ax.figure.canvas.get_renderer()
    return ([t.label1.get_text() for t in major], [t.label1.get_text() for t in minor],
            [t.label1.get_window_extent(renderer) for t in major if t.label1.get_text()])


def assert_readable(ax, which, expected):
    major, minor, boxes = visible_labels(ax, which)
    assert major == expected
    assert all(text == "" for text in minor), minor  # minor ticks unlabelled
    assert len(set(major)) == len(major)
    for a, b in zip(boxes, boxes[1:], strict=False):  # neighbouring labels do not overlap
        assert not a.overlaps(b), (major, a, b)


def test_prune_at_init_accuracy_vs_sparsity_has_plain_percent_ticks(digits):
    results = run_prune_at_init("mlp", digits, ["random"], [0.5, 0.9, 0.98], epochs=1, batch_size=128,
                                learning_rate=1e-2, model_options={"depth": 1, "width": 16})
    ax = plot_accuracy_vs_sparsity(results).axes[0]
    assert_readable(ax, "x", ["2", "5", "10", "20", "50"])
    assert ax.get_xlim()[0] > ax.get_xlim()[1]  # inverted: dense on the left
    assert not ax.collections  # one seed: no ± band of zero width
    pyplot().close("all")


def test_lottery_plot_ticks_and_last_step_line(digits):
    results = run_lottery("mlp", digits, rounds=4, controls=("random",), model_options={"depth": 1, "width": 16},
                          epochs=1, batch_size=128, learning_rate=1e-2)
    fig = plot_lottery(results)
    acc, stop = fig.axes[:2]
    expected = [t for t in ["2", "5", "10", "20", "50", "100"]
                if 100 * min(r["remaining"] for r in results.rows) / 1.15 <= float(t) <= 115]
    assert_readable(acc, "x", expected)
    assert_readable(stop, "x", expected)
    last = results.config["steps"]
    assert any(line.get_ydata()[0] == last and "last step" in line.get_label() for line in stop.lines)
    pyplot().close("all")


def test_compare_activation_std_log_axis(digits):
    results = run_compare("mlp", digits, ["glorot_uniform", "he_normal"], depth=3, width=16, epochs=1, seeds=1)
    ax = plot_activation_std(results).axes[0]
    major, minor, boxes = visible_labels(ax, "y")
    low, high = sorted(ax.get_ylim())
    assert major == [f"{t:g}" for t in log_ticks(low, high)] and len(major) >= 2
    assert all(text == "" for text in minor)
    assert not any(a.overlaps(b) for a, b in zip(boxes, boxes[1:], strict=False))
    pyplot().close("all")


@pytest.mark.parametrize("low, high, ticks", [
    (1.7, 115, [2, 5, 10, 20, 50, 100]),
    (1e-3, 1, [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1]),  # 1-2-5 would be 10 ticks: 1-3
    (1e-30, 1, [1e-28, 1e-24, 1e-20, 1e-16, 1e-12, 1e-8, 1e-4, 1]),
    (0.5, 0.8, [0.5, 0.6, 0.7, 0.8]),
])
def test_log_ticks(low, high, ticks):
    assert log_ticks(low, high) == pytest.approx(ticks)
    assert log_ticks(high, low) == pytest.approx(ticks)
