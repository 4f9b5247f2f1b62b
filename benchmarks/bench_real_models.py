"""Pruning a real model for a short run: one ``fit`` with ``PruningCallback`` against the same ``fit`` dense (issue 26).

Models (``weights=None``, 10 classes, synthetic data, batch 16):

* ``mobilenetv2``: ``keras.applications.MobileNetV2(alpha=0.35, input_shape=(32, 32, 3))``, 53 pruned kernels;
* ``transformer``: Embedding(2000, 64) + a MultiHeadAttention encoder block (4 heads) + pooling + Dense,
  on sequences of 32 tokens.

Variants, each timed as one ``fit(steps_per_epoch=STEPS)`` on a freshly built and compiled model
(compilation included, as a user pays it): ``dense``; ``pruned`` (``PruningCallback`` with
``PolynomialDecay(0, 0.8, 0, STEPS, frequency=1)``, the default path choice); ``host``
(``in_graph=False``); ``in_step`` (``in_graph=True``). After the timed fit each model runs
``--steady`` more steps (a second ``fit``) to give the per-step time once compiled (``steady_ms``);
with ``--schedule-end N`` (> ``--steps``) the schedule runs to step N, so the masks keep changing there
(a long run's per-step cost; ``--variants`` picks the variants). Every variant runs in its own fresh process (nothing compiled is shared),
interleaved over ``--repeats``; medians per variant and the ratio to ``dense`` of the same run. With
``--tfmot`` (TensorFlow) the same model from ``tf_keras.applications`` pruned by TFMOT's
``prune_low_magnitude`` is timed as well.

    .venv/bin/python benchmarks/bench_real_models.py --backend tensorflow [--model mobilenetv2] [--repeats 2]
    .venv/bin/python benchmarks/bench_real_models.py --all        # the three backends, one after the other
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

VARIANTS = ("dense", "pruned", "host", "in_step")
BATCH, CLASSES = 16, 10


def build(model: str, keras: object, seed: int = 0):  # noqa: ANN201
    keras.utils.set_random_seed(seed)
    if model == "mobilenetv2":
        return keras.applications.MobileNetV2(alpha=0.35, input_shape=(32, 32, 3), weights=None, classes=CLASSES)
    layers = keras.layers
    tokens = keras.Input((32,), dtype="int32")
    h = layers.Embedding(2000, 64)(tokens)
    a = layers.MultiHeadAttention(4, 16)(h, h)
    h = layers.LayerNormalization()(h + a)
    f = layers.Dense(128, activation="relu")(h)
    h = layers.LayerNormalization()(h + layers.Dense(64)(f))
    out = layers.Dense(CLASSES, activation="softmax")(layers.GlobalAveragePooling1D()(h))
    return keras.Model(tokens, out)


def data(model: str, n: int):  # noqa: ANN201
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 32, 32, 3)).astype("float32") if model == "mobilenetv2" else rng.integers(0, 2000, (n, 32))
    return x, rng.integers(0, CLASSES, n)


def child(args: argparse.Namespace) -> dict:
    """One variant in this process: the timed first fit and the steady per-step time."""
    import keras

    from kerasinit import pruning

    x, y = data(args.model, BATCH * (args.steps + args.steady))
    if args.variant == "tfmot":
        import tensorflow_model_optimization as tfmot
        import tf_keras

        tf_keras.utils.set_random_seed(0)
        base = tf_keras.applications.MobileNetV2(alpha=0.35, input_shape=(32, 32, 3), weights=None, classes=CLASSES)
        schedule = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.8, 0, args.steps, frequency=1)
        model = tfmot.sparsity.keras.prune_low_magnitude(base, pruning_schedule=schedule)
        model.compile("adam", "sparse_categorical_crossentropy")
        callbacks: list = [tfmot.sparsity.keras.UpdatePruningStep()]
    else:
        model = build(args.model, keras)
        model.compile("adam", "sparse_categorical_crossentropy")
        callbacks = []
        if args.variant != "dense":
            in_graph = {"pruned": None, "host": False, "in_step": True}[args.variant]
            schedule = pruning.PolynomialDecay(0.0, 0.8, 0, args.schedule_end or args.steps, frequency=1)
            callbacks = [pruning.PruningCallback(schedule, in_graph=in_graph)]
    first = x[: BATCH * args.steps], y[: BATCH * args.steps]
    start = time.perf_counter()
    model.fit(*first, batch_size=BATCH, epochs=1, verbose=0, callbacks=callbacks, shuffle=False)
    seconds = time.perf_counter() - start
    path = getattr(callbacks[0], "path", None) if callbacks and args.variant != "tfmot" else None
    steady = None
    if args.steady:
        rest = x[BATCH * args.steps:], y[BATCH * args.steps:]
        start = time.perf_counter()
        model.fit(*rest, batch_size=BATCH, epochs=1, verbose=0, callbacks=callbacks, shuffle=False)
        steady = 1000 * (time.perf_counter() - start) / args.steady
    return {"seconds": seconds, "steady_ms": steady, "path": path}


def run_backend(args: argparse.Namespace, backend: str) -> dict:
    variants = [v for v in args.variants.split(",") if v] + (["tfmot"] if args.tfmot and backend == "tensorflow" and args.model == "mobilenetv2" else [])
    times: dict[str, list[dict]] = {v: [] for v in variants}
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for r in range(args.repeats):
        for v in variants[r % len(variants):] + variants[: r % len(variants)]:  # rotate the order
            cmd = [sys.executable, __file__, "--child", "--variant", v, "--model", args.model, "--steps", str(args.steps),
                   "--steady", str(args.steady), *(["--schedule-end", str(args.schedule_end)] if args.schedule_end else [])]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if proc.returncode != 0:
                raise SystemExit(f"{backend} {v} failed:\n{proc.stderr[-3000:]}")
            times[v].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    med = {v: statistics.median(t["seconds"] for t in ts) for v, ts in times.items()}
    base = "dense" if "dense" in med else next(iter(med))
    steady = {v: statistics.median(t["steady_ms"] for t in ts) for v, ts in times.items() if ts[0]["steady_ms"] is not None}
    return {
        "backend": backend, "model": args.model, "steps": args.steps, "repeats": args.repeats,
        "fit_seconds": {v: round(s, 2) for v, s in med.items()},
        f"fit_ratio_to_{base}": {v: round(s / med[base], 3) for v, s in med.items() if v != base},
        "steady_ms_per_step": {v: round(s, 1) for v, s in steady.items()},
        f"steady_ratio_to_{base}": {v: round(s / steady[base], 3) for v, s in steady.items() if v != base},
        "paths": {v: ts[0]["path"] for v, ts in times.items()},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"),
                        choices=["tensorflow", "jax", "torch"])
    parser.add_argument("--all", action="store_true", help="run tensorflow, jax and torch one after the other")
    parser.add_argument("--model", default="mobilenetv2", choices=["mobilenetv2", "transformer"])
    parser.add_argument("--steps", type=int, default=40, help="steps of the timed fit (default 40)")
    parser.add_argument("--steady", type=int, default=60, help="steps of the second fit, for the per-step time")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--schedule-end", type=int, default=None,
                        help="the schedule's end step (default --steps); larger: updates go on in the steady fit")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ",".join(VARIANTS))
    parser.add_argument("--tfmot", action="store_true", help="also TFMOT on tf_keras (TensorFlow, mobilenetv2)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="dense", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return
    backends = ["tensorflow", "jax", "torch"] if args.all else [args.backend]
    for backend in backends:
        print(json.dumps(run_backend(args, backend), indent=2), flush=True)


if __name__ == "__main__":
    main()
