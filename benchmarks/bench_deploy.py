"""What pruning buys at deployment: file size, gzip size and latency of exported models, kerasinit vs TFMOT (issue 23).

Models (random weights, no training: sizes and latency do not depend on the values' training, only
on their zeros; accuracy is not measured here):

* MobileNetV2, alpha 1.0, ``weights=None``, **96×96×3** input, 1000 classes (``--size`` changes it);
* a Dense-heavy MLP: 1024 → 2048 → 2048 → 1000 (ReLU).

Variants, each exported by ``kerasinit.pruning.export`` (TFLite float32, ``EXPERIMENTAL_SPARSITY``)
and, side by side in the same run, by TFMOT (``prune_low_magnitude`` + ``strip_pruning`` on a tf_keras
clone with the same weights, the same TFLite conversion):

* ``dense``; ``unstructured_80``: magnitude pruning to 80%;
* ``block_80``: 80% with ``block_size=(1, 4)`` and ``policy="xnnpack"`` (TFMOT: ``block_size=(1, 4)``,
  ``PruneForLatencyOnXNNPack``); on the MLP the XNNPack policy selects nothing (it is about 1×1
  convolutions), so the MLP's block rows have no policy;
* ``block_80_tflite_fc`` (MLP, kerasinit only): blocks of ``(4, 1)`` on the Dense kernels ``(in, out)``,
  which are TFLite's 1×4 blocks of FULLY_CONNECTED ``(out, in)``: the only float layout TFLite's own
  sparse FC kernel runs without expanding (TFMOT's ``(1, 4)`` on ``(in, out)`` gets a DENSIFY op);
* ``channels_50_shrunk``: 50% of the output channels by L2 norm of the layers ``shrinkable_layers``
  names (MobileNetV2: stem, expand convolutions and the last 1×1, with their depthwise filters; the
  MLP: its hidden layers), then ``strip(shrink=True)`` (kerasinit only: TFMOT has no channel removal).

Latency: LiteRT interpreter (XNNPack, the default delegate) at 1 and 2 threads, batch 1; each
repeat times ``--runs`` invokes of every (variant, threads) in a rotating order; reported: median
over ``--repeats`` of the mean per invoke, in ms. Keras ``predict_on_batch`` latency of the dense
and shrunk models on ``--backend``. And, for the MLP at 90% sparsity, a real CPU sparse engine:
``torch.sparse`` CSR matmuls vs dense ``torch.mm`` (batch 1, 1 and 2 threads), since XNNPack's
sparse kernels are off on x86 CPUs with AVX (see ``xnnpack`` in the output, from the export report).

    .venv/bin/python benchmarks/bench_deploy.py [--backend tensorflow] [--repeats 7] [--runs 30] [--size 96]
    .venv/bin/python benchmarks/bench_deploy.py --smoke   # seconds: MobileNetV2 alpha 0.35 at 32x32, tiny MLP
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"),
                        choices=["tensorflow", "jax", "torch"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--runs", type=int, default=30, help="invokes per timing")
    parser.add_argument("--size", type=int, default=96, help="MobileNetV2 input size")
    parser.add_argument("--predict-only", action="store_true",
                        help="only Keras predict of the dense and shrunk models (for --backend jax|torch: no TFLite)")
    parser.add_argument("--smoke", action="store_true", help="tiny models, one repeat (checks the script runs)")
    return parser.parse_args(argv)


ARGS = _args(sys.argv[1:] if __name__ == "__main__" else [])
os.environ["KERAS_BACKEND"] = ARGS.backend
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from kerasinit.backend import tflite  # noqa: E402
from kerasinit.pruning import prune, shrinkable_layers  # noqa: E402
from kerasinit.pruning.export import export  # noqa: E402


def build(name: str, lib: Any, smoke: bool, size: int) -> Any:
    if name == "mobilenet_v2":
        alpha, size = (0.35, 32) if smoke else (1.0, size)
        return lib.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha, weights=None)
    widths = (64, 128, 128, 10) if smoke else (1024, 2048, 2048, 1000)
    layers = [lib.layers.Dense(w, activation="relu") for w in widths[1:-1]] + [lib.layers.Dense(widths[-1])]
    return lib.Sequential([lib.Input((widths[0],)), *layers])


def kerasinit_variants(name: str, smoke: bool, size: int) -> dict[str, Any]:
    """variant -> (keras model with masks, export kwargs)."""
    out = {}
    for variant in ("dense", "unstructured_80", "block_80", "block_80_tflite_fc", "channels_50_shrunk"):
        if variant == "block_80_tflite_fc" and name != "mlp":
            continue
        keras.utils.set_random_seed(0)
        m = build(name, keras, smoke, size)
        shrink = False
        if variant == "unstructured_80":
            prune(m, 0.8)
        elif variant == "block_80":
            kwargs = {"policy": "xnnpack"} if name == "mobilenet_v2" else {}
            prune(m, 0.8, block_size=(1, 4), **kwargs)
        elif variant == "block_80_tflite_fc":
            prune(m, 0.8, block_size=(4, 1))
        elif variant == "channels_50_shrunk":
            # the layers whose dead channels shrink removes (MobileNetV2: stem, expand convs, last 1x1; the MLP's
            # hidden layers): pruning the others (projections into residual Adds, the output) zeroes without shrinking
            prune(m, 0.5, granularity="channel", layers=shrinkable_layers(m))
            shrink = True
        out[variant] = (m, shrink)
    return out


def tfmot_tflite(name: str, variant: str, smoke: bool, size: int, weights: list[np.ndarray]) -> bytes:
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    m = build(name, tf_keras, smoke, size)
    m.set_weights(weights)
    if variant != "dense":
        sp = tfmot.sparsity.keras
        kwargs: dict[str, Any] = {"pruning_schedule": sp.ConstantSparsity(0.8, begin_step=0, frequency=1)}
        if variant == "block_80":
            kwargs["block_size"] = (1, 4)
            if name == "mobilenet_v2":
                kwargs["pruning_policy"] = sp.PruneForLatencyOnXNNPack()
        m = sp.prune_low_magnitude(m, **kwargs)
        m.compile(tf_keras.optimizers.SGD(0.0), "mse")
        x = np.zeros((1, *m.input_shape[1:]), "float32")
        m.fit(x, np.zeros((1, *m.output_shape[1:]), "float32"), epochs=1, verbose=0,
              callbacks=[sp.UpdatePruningStep()])
        m = sp.strip_pruning(m)
    converter = tf.lite.TFLiteConverter.from_keras_model(m)
    converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    return converter.convert()


def time_tflite(models: dict[str, bytes], repeats: int, runs: int) -> dict[str, dict[str, float]]:
    """Median over repeats of ms per invoke, per model and thread count, interleaved in a rotating order."""
    jobs = []
    for key, content in models.items():
        for threads in (1, 2):
            it = tflite.interpreter(content, threads)
            it.allocate_tensors()
            inp = it.get_input_details()[0]
            it.set_tensor(inp["index"], np.random.default_rng(0).standard_normal(inp["shape"]).astype("float32"))
            it.invoke()  # warm-up (XNNPack packs weights on the first run)
            jobs.append((key, threads, it))
    times: dict[tuple[str, int], list[float]] = {(k, t): [] for k, t, _ in jobs}
    for r in range(repeats):
        for key, threads, it in jobs[r % len(jobs):] + jobs[:r % len(jobs)]:
            start = time.perf_counter()
            for _ in range(runs):
                it.invoke()
            times[(key, threads)].append(1e3 * (time.perf_counter() - start) / runs)
    out: dict[str, dict[str, float]] = {}
    for (key, threads), ts in times.items():
        out.setdefault(key, {})[f"tflite_ms_{threads}_thread"] = statistics.median(ts)
    return out


def time_predict(models: dict[str, Any], repeats: int, runs: int) -> dict[str, float]:
    xs = {k: np.random.default_rng(0).standard_normal((1, *m.inputs[0].shape[1:])).astype("float32")
          for k, m in models.items()}
    for k, m in models.items():
        m.predict_on_batch(xs[k])
    times: dict[str, list[float]] = {k: [] for k in models}
    keys = list(models)
    for r in range(repeats):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            start = time.perf_counter()
            for _ in range(runs):
                models[k].predict_on_batch(xs[k])
            times[k].append(1e3 * (time.perf_counter() - start) / runs)
    return {k: statistics.median(v) for k, v in times.items()}


def torch_sparse_rows(smoke: bool, repeats: int, runs: int) -> dict[str, Any]:
    """MLP at 90% (unstructured, per layer) as torch CSR matmuls vs dense, batch 1 (x @ W^T as W @ x^T)."""
    import torch

    keras.utils.set_random_seed(0)
    m = build("mlp", keras, smoke, 0)
    prune(m, 0.9)
    from kerasinit.pruning import strip

    s = strip(m)
    layers = [(keras.ops.convert_to_numpy(d.kernel).T.copy(), keras.ops.convert_to_numpy(d.bias)) for d in s.layers]
    dense = [(torch.from_numpy(w), torch.from_numpy(b)[:, None]) for w, b in layers]
    csr = [(w.to_sparse_csr(), b) for w, b in dense]
    x = torch.randn(layers[0][0].shape[1], 1)

    def run(ws: list[tuple[Any, Any]]) -> Any:
        h = x
        for i, (w, b) in enumerate(ws):
            h = w @ h + b
            if i < len(ws) - 1:
                h = torch.relu(h)
        return h

    assert torch.allclose(run(dense), run(csr), atol=1e-4)
    out: dict[str, Any] = {"sparsity": 0.9, "engine": f"torch {torch.__version__} sparse CSR (W @ x)"}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        times: dict[str, list[float]] = {"dense": [], "csr": []}
        for r in range(repeats):
            for kind in (("dense", "csr") if r % 2 == 0 else ("csr", "dense")):
                ws = dense if kind == "dense" else csr
                with torch.inference_mode():
                    run(ws)
                    start = time.perf_counter()
                    for _ in range(runs):
                        run(ws)
                times[kind].append(1e3 * (time.perf_counter() - start) / runs)
        d, c = statistics.median(times["dense"]), statistics.median(times["csr"])
        out[f"{threads}_thread"] = {"dense_ms": d, "csr_ms": c, "csr_over_dense": c / d}
    return out


def main() -> dict:
    args = ARGS
    repeats, runs = (1, 2) if args.smoke else (args.repeats, args.runs)
    result: dict[str, Any] = {"backend": keras.config.backend(), "repeats": repeats, "runs_per_timing": runs,
                              "models": {"mobilenet_v2": "alpha 0.35, 32x32 (smoke)" if args.smoke else
                                         f"alpha 1.0, weights=None, {args.size}x{args.size}x3",
                                         "mlp": "64-128-128-10 (smoke)" if args.smoke else "1024-2048-2048-1000 ReLU"}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("mobilenet_v2", "mlp"):
            rows: dict[str, dict[str, Any]] = {}
            contents: dict[str, bytes] = {}
            variants = kerasinit_variants(name, args.smoke, args.size)
            if not args.predict_only:  # the exports, TFMOT and LiteRT timings
                dense_weights = [np.asarray(keras.ops.convert_to_numpy(w)) for w in variants["dense"][0].weights]
                for variant, (m, shrink) in variants.items():
                    path = os.path.join(tmp, f"{name}_{variant}.tflite")
                    report = export(m, path, shrink=shrink, tolerance=1e-4)
                    with open(path, "rb") as f:
                        contents[f"kerasinit/{variant}"] = f.read()
                    rows[f"kerasinit/{variant}"] = {"bytes": report.bytes, "gzip_bytes": report.gzip_bytes,
                                                    "nonzero_weights": report.nonzeros, "weights": report.parameters,
                                                    "sparse_layers": len(report.sparse_layers),
                                                    "stored_sparse": sum(str(r["stored"]).startswith("sparse")
                                                                         for r in report.layers)}
                    result["xnnpack"] = report.xnnpack
                if args.backend == "tensorflow":
                    for variant in ("dense", "unstructured_80", "block_80"):
                        try:
                            content = tfmot_tflite(name, variant, args.smoke, args.size, dense_weights)
                        except ValueError as exc:  # e.g. PruneForLatencyOnXNNPack refusing tf_keras's MobileNetV2
                            result.setdefault("tfmot_refused", {})[f"{name}/{variant}"] = " ".join(str(exc).split())[:300]
                            continue
                        path = os.path.join(tmp, f"{name}_tfmot_{variant}.tflite")
                        with open(path, "wb") as f:
                            f.write(content)
                        contents[f"tfmot/{variant}"] = content
                        rows[f"tfmot/{variant}"] = {"bytes": len(content), "gzip_bytes": tflite.gzip_size(path)}
                for key, timing in time_tflite(contents, repeats, runs).items():  # every variant of one model interleaved
                    rows[key].update(timing)
                dense = rows["kerasinit/dense"]
                for row in rows.values():
                    row["gzip_over_dense"] = row["gzip_bytes"] / dense["gzip_bytes"]
                    for t in (1, 2):
                        row[f"latency_over_dense_{t}_thread"] = row[f"tflite_ms_{t}_thread"] / dense[f"tflite_ms_{t}_thread"]
            from kerasinit.pruning import strip

            shrunk = strip(variants["channels_50_shrunk"][0], shrink=True)
            predict = time_predict({"dense": variants["dense"][0], "channels_50_shrunk": shrunk}, repeats, runs)
            result[name] = {"rows": rows, "keras_predict_ms": predict,
                            "keras_predict_shrunk_over_dense": predict["channels_50_shrunk"] / predict["dense"]}
    result["mlp"]["torch_sparse_90"] = torch_sparse_rows(args.smoke, repeats, runs)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
