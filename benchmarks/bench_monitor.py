"""Epoch time with and without ``VarianceMonitor`` (SPEC §3, §7; issue 3).

Model: a 5-layer 512-wide ReLU MLP (64 inputs, 10 classes) on 50,000 synthetic samples,
batch 128, SGD. Configurations, each its own model (same seed) trained one epoch per repeat:

* ``baseline`` - no callback;
* ``per_epoch`` - the monitor at its default schedule (one record per epoch) with weights,
  activations and gradients on a fixed 128-example probe (``probe="auto"``);
* ``every_10_batches`` - the same plus a record every 10 optimizer steps.

Each timed run is one ``fit(epochs=1)`` call, after one untimed warm-up call per configuration
(tracing); the configurations are interleaved repeat by repeat, in a rotating order, so that
machine noise (the machine is shared) hits all of them alike. Prints JSON: median seconds, ratio of medians to the
baseline, the median of per-repeat ratios, and the median time of one record.

    .venv/bin/python benchmarks/bench_monitor.py [--repeats 7] [--samples 50000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasinit.monitor import VarianceMonitor  # noqa: E402

CONFIGS = ("baseline", "per_epoch", "every_10_batches")


class RecordTimer:
    """Wraps a monitor's ``record`` to time each call (the monitor's whole cost per record)."""

    def __init__(self, monitor: VarianceMonitor) -> None:
        self.seconds: list[float] = []
        original = monitor.record

        def timed(epoch: int, step: int) -> list[dict]:
            start = time.perf_counter()
            try:
                return original(epoch, step)
            finally:
                self.seconds.append(time.perf_counter() - start)

        monitor.record = timed  # type: ignore[method-assign]


def build(depth: int, width: int, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((64,))]
    layers += [keras.layers.Dense(width, activation="relu", kernel_initializer="he_normal") for _ in range(depth)]
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    return model


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--width", type=int, default=512)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.samples, 64)).astype("float32")
    y = rng.integers(0, 10, args.samples).astype("int32")
    track = ("weights", "activations", "gradients")
    models, callbacks, timers = {}, {}, {}
    for name in CONFIGS:
        models[name] = build(args.depth, args.width, seed=0)
        if name == "baseline":
            callbacks[name] = []
            continue
        monitor = VarianceMonitor(probe="auto", track=track, every_n_batches=10 if name == "every_10_batches" else None, on_anomaly="ignore")
        timers[name] = RecordTimer(monitor)
        callbacks[name] = [monitor]
    for name in CONFIGS:  # warm-up: tracing of the train step and of the probe step
        models[name].fit(x, y, epochs=1, batch_size=args.batch_size, callbacks=callbacks[name], verbose=0)
    for timer in timers.values():
        timer.seconds.clear()

    seconds: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for repeat in range(args.repeats):
        shift = repeat % len(CONFIGS)  # rotate the order so that no configuration always runs first
        for name in CONFIGS[shift:] + CONFIGS[:shift]:
            start = time.perf_counter()
            models[name].fit(x, y, epochs=1, batch_size=args.batch_size, callbacks=callbacks[name], verbose=0)
            seconds[name].append(time.perf_counter() - start)

    base = statistics.median(seconds["baseline"])
    result: dict = {
        "benchmark": "monitor",
        "model": f"{args.depth}x{args.width} ReLU MLP, {args.samples} samples, batch {args.batch_size}",
        "steps_per_epoch": -(-args.samples // args.batch_size),
        "repeats": args.repeats,
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "median_epoch_seconds": {name: round(statistics.median(s), 4) for name, s in seconds.items()},
        "ratio_of_medians": {name: round(statistics.median(s) / base, 4) for name, s in seconds.items() if name != "baseline"},
        "median_of_paired_ratios": {
            name: round(statistics.median(a / b for a, b in zip(s, seconds["baseline"], strict=True)), 4)
            for name, s in seconds.items()
            if name != "baseline"
        },
        "median_record_seconds": {name: round(statistics.median(t.seconds), 4) for name, t in timers.items() if t.seconds},
        "records_per_epoch": {name: len(t.seconds) // args.repeats for name, t in timers.items()},
        "all_epoch_seconds": {name: [round(v, 4) for v in s] for name, s in seconds.items()},
        "target": "per_epoch ratio <= 1.05",
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
