"""Benchmark: SynFlow with 100 iterations vs 100 forward+backward passes of the same model (issue 13).

The model is ``experiments.models.build("resnet20", (32, 32, 3), 10)``. SynFlow
(``prune_at_init(model, 0.9, "synflow", iterations=100)``) runs one forward and one backward pass
of a batch of one all-ones input per iteration, plus the global selection of the kept weights on
the host. The baseline is 100 forward+backward passes of a batch of one through
``model.train_on_batch`` (compiled train step, the cheapest forward+backward a user runs).

Each ``prune_at_init`` call compiles its own gradient function (on JAX ~2.5 s of XLA tracing and
compilation for ResNet-20), so a timed SynFlow run always includes one compilation. ``ratio``
compares it with 100 passes of an already compiled train step (conservative: compilation on one
side only); ``ratio_both_cold`` with 100 passes of a fresh model's train step, its compilation
included (what a user waits for on both sides). Medians over ``--repeats``. Target: <= 3.

    .venv/bin/python benchmarks/bench_synflow.py [--backend tensorflow] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if "--backend" in sys.argv:  # Keras reads its backend once, at import
    os.environ["KERAS_BACKEND"] = sys.argv[sys.argv.index("--backend") + 1]

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasinit.experiments.models import build  # noqa: E402
from kerasinit.pruning import prune_at_init  # noqa: E402

TARGET = 3.0
PASSES = 100


def fresh_model() -> keras.Model:
    model = build("resnet20", (32, 32, 3), 10, seed=0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")  # the zoo model ends in softmax
    return model


def time_synflow(iterations: int) -> float:
    model = fresh_model()
    start = time.perf_counter()
    prune_at_init(model, 0.9, "synflow", iterations=iterations)
    return time.perf_counter() - start


def time_passes(model: keras.Model, passes: int) -> float:
    x = np.ones((1, 32, 32, 3), "float32")
    y = np.zeros((1,), "int32")
    start = time.perf_counter()
    for _ in range(passes):
        model.train_on_batch(x, y)
    keras.ops.convert_to_numpy(model.trainable_variables[0])  # wait for the last step
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=keras.backend.backend())
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = fresh_model()
    time_passes(model, 2)  # trace the train step
    time_synflow(2)  # trace the SynFlow gradient
    synflow, passes, cold = [], [], []
    for _ in range(args.repeats):
        synflow.append(time_synflow(PASSES))
        passes.append(time_passes(model, PASSES))
        cold.append(time_passes(fresh_model(), PASSES))
    ratio = statistics.median(s / p for s, p in zip(synflow, passes, strict=True))
    ratio_cold = statistics.median(s / p for s, p in zip(synflow, cold, strict=True))
    print(json.dumps({
        "benchmark": "synflow_vs_forward_backward", "backend": keras.backend.backend(), "model": "resnet20 (32,32,3)",
        "iterations": PASSES, "synflow_s": synflow, "forward_backward_s": passes, "ratio": ratio, "target": TARGET,
        "forward_backward_cold_s": cold, "ratio_both_cold": ratio_cold,
        "within_target": ratio <= TARGET, "python": platform.python_version(), "keras": keras.__version__,
    }))


if __name__ == "__main__":
    main()
