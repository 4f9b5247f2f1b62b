"""Benchmark: ``kerasinit.lsuv`` on MobileNetV2 on TensorFlow, JAX and PyTorch (issue 26).

The model is ``keras.applications.MobileNetV2(alpha=0.35, input_shape=(32, 32, 3), weights=None)``
(53 conv/dense layers LSUV rescales), the batch 32 seeded normal images. Each timed call gets a
fresh model, built outside the timing; the time is ``lsuv(model, batch, seed=0, verbose=False)``.

``median_s`` is the median of ``--repeats`` calls in one process (a fresh model each), ``first_s``
the first of them: what a one-off user waits for, every compilation included (JAX compiles each
new shape; later calls reuse the compiled programs). ``--all`` runs tensorflow, jax and torch in
turn, each in its own subprocess, and prints the ratios jax/tensorflow and torch/tensorflow of
this one run, of the medians and of the first calls. Target: jax/tensorflow <= 2 (medians).

On a shared machine, run with ``OPENBLAS_NUM_THREADS=1`` (passed on to the subprocesses): JAX's QR
(the orthonormal draws) and PyTorch call OpenBLAS, whose spinning threads make single calls take
0.01 s or 2 s depending on the other jobs' load, which swamps what is measured.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lsuv.py --all [--repeats 3]
    .venv/bin/python benchmarks/bench_lsuv.py --backend jax [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if "--backend" in sys.argv:  # Keras reads its backend once, at import
    os.environ["KERAS_BACKEND"] = sys.argv[sys.argv.index("--backend") + 1]

BACKENDS = ("tensorflow", "jax", "torch")
TARGET = 2.0
MODEL = "MobileNetV2(alpha=0.35, input_shape=(32, 32, 3), weights=None)"


def run_one(repeats: int) -> dict:
    """Time LSUV in this process, on the backend Keras was imported with."""
    import warnings

    import keras
    import numpy as np

    import kerasinit

    batch = np.random.default_rng(0).normal(size=(32, 32, 32, 3)).astype("float32")

    def timed() -> tuple[float, int]:
        keras.utils.set_random_seed(0)
        model = keras.applications.MobileNetV2(alpha=0.35, input_shape=(32, 32, 3), weights=None)
        for weight in model.weights:  # JAX builds asynchronously: finish the build before the clock starts
            keras.ops.convert_to_numpy(weight)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = kerasinit.lsuv(model, batch, seed=0, verbose=False)
        elapsed = time.perf_counter() - start
        return elapsed, int(report.converged.eq(True).sum())

    runs = [timed() for _ in range(repeats)]
    times = [t for t, _ in runs]
    return {
        "benchmark": "lsuv_mobilenetv2", "backend": keras.backend.backend(), "model": MODEL, "batch": list(batch.shape),
        "rescaled_layers": [n for _, n in runs], "first_s": times[0], "repeats_s": times,
        "median_s": statistics.median(times),
        "python": platform.python_version(), "keras": keras.__version__,
    }


def run_all(repeats: int) -> dict:
    """One subprocess per backend, then the ratios to TensorFlow from this run."""
    results = {}
    for backend in BACKENDS:
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        cmd = [sys.executable, os.path.abspath(__file__), "--backend", backend, "--repeats", str(repeats)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"bench_lsuv on {backend} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        results[backend] = json.loads(proc.stdout.strip().splitlines()[-1])
    tf = results["tensorflow"]
    ratios = {}
    for backend in ("jax", "torch"):
        r = results[backend]
        ratios[f"{backend}/tensorflow"] = {"median": r["median_s"] / tf["median_s"], "first": r["first_s"] / tf["first_s"]}
    return {"benchmark": "lsuv_mobilenetv2_all", "model": MODEL, "repeats": repeats, "results": results,
            "ratios": ratios, "target_jax_over_tensorflow": TARGET,
            "within_target": ratios["jax/tensorflow"]["median"] <= TARGET,
            "first_call_within_target": ratios["jax/tensorflow"]["first"] <= TARGET}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="run on this backend in this process (default: KERAS_BACKEND)")
    parser.add_argument("--all", action="store_true", help="run every backend in a subprocess and print the ratios")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per backend, a fresh model each (default 3)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"argument --repeats must be >= 1; received {args.repeats}")
    print(json.dumps(run_all(args.repeats) if args.all else run_one(args.repeats)))


if __name__ == "__main__":
    main()
