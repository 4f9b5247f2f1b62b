"""Benchmark: initializing a ~50M-parameter stack with kerasinit mirrors vs Keras built-ins.

12 kernels of 2048x2048 (50.3M parameters). For each mirrored random initializer, kerasinit and
Keras runs are interleaved (K, k, K, k, ...) with fresh seeds; the median time of each and their
ratio are printed as JSON. Target: ratio <= 1.05. Optionally compares with torch.nn.init where
torch is installed.

    python benchmarks/bench_init.py [--repeats 7] [--layers 12] [--width 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import kerasinit  # noqa: E402

PAIRS = ["GlorotUniform", "GlorotNormal", "HeNormal", "HeUniform", "LecunNormal", "LecunUniform",
         "RandomNormal", "RandomUniform", "TruncatedNormal", "VarianceScaling", "Orthogonal"]
EXTRA = ["KwonTanhUniform", "XavierUniform", "PlainHeNormal", "LeakyHeNormal"]


def init_stack(make, layers: int, width: int, seed: int) -> float:
    start = time.perf_counter()
    for i in range(layers):
        x = make(seed + i)((width, width))
        keras.ops.convert_to_numpy(x[0, 0])  # force the computation to finish
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--orthogonal-width", type=int, default=512, help="QR is O(n^3): smaller width for Orthogonal")
    args = parser.parse_args()
    results = {}
    for name in PAIRS:
        ours_cls, keras_cls = getattr(kerasinit, name), getattr(keras.initializers, name)
        width = args.orthogonal_width if name == "Orthogonal" else args.width
        init_stack(lambda s, c=ours_cls: c(seed=s), 1, width, 0)  # warm-up both paths
        init_stack(lambda s, c=keras_cls: c(seed=s), 1, width, 0)
        t_keras, t_ours = [], []
        for r in range(args.repeats):
            t_keras.append(init_stack(lambda s, c=keras_cls: c(seed=s), args.layers, width, 1000 * r))
            t_ours.append(init_stack(lambda s, c=ours_cls: c(seed=s), args.layers, width, 1000 * r))
        mk, mo = statistics.median(t_keras), statistics.median(t_ours)
        results[name] = {"keras_s": round(mk, 4), "kerasinit_s": round(mo, 4), "ratio": round(mo / mk, 4),
                         "params": args.layers * width * width}
    ref = statistics.median(init_stack(lambda s: keras.initializers.GlorotUniform(seed=s), args.layers, args.width, r)
                            for r in range(3))
    extra = {}
    for name in EXTRA:
        cls = getattr(kerasinit, name)
        t = statistics.median(init_stack(lambda s, c=cls: c(seed=s), args.layers, args.width, r) for r in range(3))
        extra[name] = {"kerasinit_s": round(t, 4), "ratio_vs_keras_glorot_uniform": round(t / ref, 4)}
    torch_result = None
    try:
        import torch

        def torch_stack() -> float:
            start = time.perf_counter()
            for _ in range(args.layers):
                torch.nn.init.xavier_uniform_(torch.empty(args.width, args.width))
            return time.perf_counter() - start

        t = statistics.median(torch_stack() for _ in range(3))
        torch_result = {"torch_xavier_uniform_s": round(t, 4), "ratio_kerasinit_vs_torch": round(
            results["GlorotUniform"]["kerasinit_s"] / t, 4)}
    except ImportError:
        torch_result = "torch not installed"
    ratios = [r["ratio"] for r in results.values()]
    print(json.dumps({
        "benchmark": "init_50M", "backend": keras.backend.backend(), "layers": args.layers, "width": args.width,
        "repeats": args.repeats, "median_ratio_over_initializers": round(statistics.median(ratios), 4),
        "max_ratio": max(ratios), "target_ratio": 1.05, "per_initializer": results, "kerasinit_only": extra,
        "torch": torch_result,
    }, indent=2))


if __name__ == "__main__":
    main()
