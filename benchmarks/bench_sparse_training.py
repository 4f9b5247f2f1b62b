"""Step time of dense vs dynamic (RigL) vs static sparse training, one backend per run (issue 24).

Model: LeNet-300-100 (784-300-100-10, ReLU), batch 128, Adam 1e-3, synthetic data (a repeating
``tf.data`` pipeline of 2,560 examples; on PyTorch a ``torch`` ``DataLoader`` over tensors made
once, as in ``bench_pruning.py``). Variants, all in one process so that they interleave:

* ``dense``: no masks;
* ``rigl_u100``: ``SparseTraining("rigl", 0.9, "erk", update_every=100)``; its gradient batch is
  ``batch_size`` samples drawn from the training arrays (``data=(x, y)``); ``end_step`` spans the
  whole run, so updates go on in every timed fit;
* ``static``: ``SparseTraining("static", 0.9, "erk")`` (the same masks' cost without updates).

Each model is built ``--instances`` times (default 2); a variant's step time is the mean of its
instances' medians. Each timed run is one ``fit(epochs=1, steps_per_epoch=STEPS)`` call after an
untimed warm-up (tracing, the first update's gradient function); models are interleaved repeat by
repeat in a rotating order. The step time is the call's wall time / STEPS, the RigL update
included. The update's own cost (``update_ms``: the wall time of each mask update, host reads,
the dense gradient and the writes; ``update_ms_per_step``: that over ``update_every``) is timed
around ``SparseTraining._update`` separately. Ratios: of the medians, and the median over repeats
of the per-repeat ratio (the issue's target: a RigL step at update_every=100 ≤ 1.10 × a dense step).

    .venv/bin/python benchmarks/bench_sparse_training.py [--backend tensorflow] [--repeats 7] [--steps 400] [--instances 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if "--backend" in sys.argv:  # Keras reads its backend once, at import
    os.environ["KERAS_BACKEND"] = sys.argv[sys.argv.index("--backend") + 1]
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _lenet import SIZES, lenet, torch_batches  # noqa: E402

from kerasinit.pruning.sparse_training import SparseTraining  # noqa: E402

SPARSITY = 0.9
UPDATE_EVERY = 100


class TimedSparseTraining(SparseTraining):
    """``SparseTraining`` that records the wall time of each mask update."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.update_seconds: list[float] = []

    def _update(self, step, batch):  # noqa: ANN001, ANN202
        start = time.perf_counter()
        super()._update(step, batch)
        self.update_seconds.append(time.perf_counter() - start)



def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default=keras.backend.backend(), choices=["tensorflow", "jax", "torch"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=400, help="optimizer steps per timed fit call")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--instances", type=int, default=2, help="models per variant")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*shuffle=True.*")

    rng = np.random.default_rng(0)
    x = rng.standard_normal((20 * args.batch_size, SIZES[0])).astype("float32")
    y = rng.integers(0, SIZES[-1], 20 * args.batch_size).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(args.batch_size).prefetch(2)
    if args.backend == "torch":
        data = torch_batches(x, y, args.batch_size)
    end_step = (args.repeats + 2) * args.steps  # updates in every timed fit

    builders = {
        "dense": lambda: (lenet(0), None),
        "rigl_u100": lambda: (lenet(0), TimedSparseTraining("rigl", SPARSITY, "erk", update_every=UPDATE_EVERY,
                                                            end_step=end_step, seed=0, data=(x, y),
                                                            batch_size=args.batch_size)),
        "static": lambda: (lenet(0), TimedSparseTraining("static", SPARSITY, "erk", seed=0)),
    }
    runs = {(name, i): build() for name, build in builders.items() for i in range(args.instances)}

    def fit(key: tuple[str, int]) -> float:
        model, callback = runs[key]
        start = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=args.steps, verbose=0, callbacks=[callback] if callback else [])
        return (time.perf_counter() - start) / args.steps

    keys = list(runs)
    for key in keys:  # warm-up: tracing, the first update
        fit(key)
    warm = {key: len(cb.update_seconds) for key, (_, cb) in runs.items() if cb is not None}
    times: dict[tuple[str, int], list[float]] = {key: [] for key in keys}
    for r in range(args.repeats):
        for key in keys[r % len(keys):] + keys[: r % len(keys)]:
            times[key].append(fit(key))

    def instance_medians(name: str) -> list[float]:
        return [statistics.median(t) for (n, _), t in times.items() if n == name]

    def per_repeat_mean(name: str) -> list[float]:
        return [statistics.fmean(col) for col in zip(*(t for (n, _), t in times.items() if n == name), strict=True)]

    median = {name: statistics.fmean(instance_medians(name)) for name in builders}
    ratios = {name: median[name] / median["dense"] for name in builders if name != "dense"}
    per_repeat = {name: statistics.median(p / d for p, d in zip(per_repeat_mean(name), per_repeat_mean("dense"), strict=True))
                  for name in ratios}
    updates = [s for key, (_, cb) in runs.items() if key[0] == "rigl_u100" for s in cb.update_seconds[warm[key]:]]
    st = runs["rigl_u100", 0][1]
    kept = sum(int(m.sum()) for m in st.masks.values())
    total = sum(m.size for m in st.masks.values())
    result = {
        "model": "LeNet-300-100", "batch_size": args.batch_size, "steps_per_fit": args.steps, "repeats": args.repeats,
        "instances": args.instances, "sparsity": SPARSITY, "distribution": "erk", "update_every": UPDATE_EVERY,
        "backend": f"keras {keras.__version__} / {keras.backend.backend()}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus (shared)",
        "step_ms": {k: round(v * 1e3, 4) for k, v in median.items()},
        "ratio_of_medians": {k: round(v, 3) for k, v in ratios.items()},
        "median_ratio_per_repeat": {k: round(v, 3) for k, v in per_repeat.items()},
        "instance_medians_ms": {name: [round(t * 1e3, 3) for t in instance_medians(name)] for name in builders},
        "update_ms": {"median": round(statistics.median(updates) * 1e3, 3) if updates else None,
                      "max": round(max(updates) * 1e3, 3) if updates else None, "count": len(updates)},
        "update_ms_per_step": round(statistics.median(updates) * 1e3 / UPDATE_EVERY, 4) if updates else None,
        "final_sparsity": round(1 - kept / total, 4),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
