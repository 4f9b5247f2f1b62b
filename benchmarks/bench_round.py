"""Benchmark: one lottery round's training vs a plain ``model.fit`` of the same model, data and epochs (issue 12).

A round is one call of the experiments' trainer (``kerasinit.experiments.training.train``: fresh
optimizer state, seeded data order, early-stop bookkeeping, validation each epoch, test accuracy at
the early-stop point and at the end) on a model whose kernels carry ``Pruner`` masks at 50%
sparsity. The baseline is what a user writes by hand: ``model.fit(x, y, batch_size, epochs,
validation_data=..., shuffle=True)`` on the same compiled model (``plain_fit``), and the same
followed by one ``model.evaluate`` on the test split (``plain_fit_evaluate``). Cases: LeNet-300-100
on the bundled digits and conv4 (Frankle & Carbin 2019) on a synthetic 32x32x3 set. Everything is
warmed up once (tracing), then timed ``--repeats`` times interleaved in one process; the ratio is
the median over repeats of round / plain. Target: round / plain_fit <= 1.10.

    .venv/bin/python benchmarks/bench_round.py [--backend tensorflow] [--repeats 5]
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

from kerasinit.experiments.datasets import load  # noqa: E402
from kerasinit.experiments.models import build  # noqa: E402
from kerasinit.experiments.training import make_optimizer, train  # noqa: E402
from kerasinit.pruning import Pruner  # noqa: E402

TARGET = 1.10


def synthetic_images(n: int = 640, seed: int = 0) -> tuple[np.ndarray, ...]:
    """32x32x3 images whose class (of 10) brightens one of ten horizontal bands."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    x = rng.normal(size=(n, 32, 32, 3)).astype("float32") * 0.5
    for k in range(10):
        x[y == k, 3 * k:3 * k + 3] += 1.0
    cut = n * 4 // 5
    return x[:cut], y[:cut], x[cut:], y[cut:]


CASES = {
    "lenet_300_100/digits": {"model": "lenet_300_100", "data": "digits", "epochs": 15, "batch_size": 64},
    "conv4/synthetic32": {"model": "conv4", "data": "synthetic", "epochs": 2, "batch_size": 64},
}


def time_case(spec: dict, repeats: int) -> dict:
    ds = load(synthetic_images() if spec["data"] == "synthetic" else spec["data"], seed=0)
    epochs, batch_size = spec["epochs"], spec["batch_size"]
    ticket = build(spec["model"], ds.input_shape, ds.n_classes, seed=0)
    pruner = Pruner(ticket)
    pruner.update_masks(0.5)
    plain = build(spec["model"], ds.input_shape, ds.n_classes, seed=0)
    plain.compile(make_optimizer("adam", 1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])

    def round_() -> None:
        train(ticket, ds, epochs=epochs, batch_size=batch_size, seed=0, optimizer="adam", learning_rate=1e-3)

    def plain_fit() -> None:
        plain.fit(ds.x_train, ds.y_train, batch_size=batch_size, epochs=epochs, validation_data=(ds.x_val, ds.y_val),
                  shuffle=True, verbose=0)

    def plain_fit_evaluate() -> None:
        plain_fit()
        plain.evaluate(ds.x_test, ds.y_test, batch_size=max(batch_size, 256), verbose=0)

    variants = {"round": round_, "plain_fit": plain_fit, "plain_fit_evaluate": plain_fit_evaluate}
    for run in variants.values():  # warm-up: tracing
        run()
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - start)
    ratio = {base: statistics.median(t / b for t, b in zip(times["round"], times[base], strict=True))
             for base in ("plain_fit", "plain_fit_evaluate")}
    return {"epochs": epochs, "batch_size": batch_size, "train_samples": len(ds.y_train),
            "sparsity": round(pruner.sparsity, 3),
            "seconds_median": {k: round(statistics.median(v), 3) for k, v in times.items()},
            "round_over_plain_fit": round(ratio["plain_fit"], 3),
            "round_over_plain_fit_evaluate": round(ratio["plain_fit_evaluate"], 3),
            "within_target": ratio["plain_fit"] <= TARGET}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default=keras.backend.backend(), choices=["tensorflow", "jax", "torch"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    args = parser.parse_args(argv)
    result = {"backend": f"keras {keras.__version__} / {keras.backend.backend()}",
              "machine": f"{platform.machine()}, {os.cpu_count()} cpus (shared)", "repeats": args.repeats,
              "target_round_over_plain_fit": TARGET,
              "cases": {name: time_case(CASES[name], args.repeats) for name in args.cases.split(",")}}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
