"""What one in-step mask update costs, part by part, on LeNet-300-100's first kernel (issue 26).

``kerasinit.pruning.incremental`` updates a mask inside the train step at every step of a frequency-1
schedule. On a 1.3-1.4 ms dense LeNet-300-100 step (JAX, this project's 2-core VM), the issue's target
of 1.15x leaves ~0.2 ms for all three kernels. This benchmark times, on JAX's CPU backend, each
primitive the update is made of on the 784x300 kernel (235,200 weights, ~57% kept), every program
compiled once and called with its state donated as Keras's JAX step does:

* ``mask_only``: ``where(mask, w, 0)``, what every pruned step does (the host path included);
* ``update_not_due`` / ``update_due``: ``WeightPlan._step`` with no update due / an update of 700
  weights (LeNet's largest at this schedule) decided by the candidate set, the exact path not taken;
* ``count_pass``, ``elementwise_mask``: the two passes over the whole tensor a due update needs (the
  exactness count, the new mask);
* ``top_k_candidates``: the 700 smallest of the 9,243 candidates; ``top_k_whole``: of the whole tensor
  (the exact fallback, and what the issue's "a top-k over the survivors once per step" costs here);
* ``host_refresh``: the candidate set chosen on the host (NumPy), every 16 steps.

Prints JSON (microseconds, the median of 7 batches of calls). Compare the parts within one run.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_in_step_parts.py
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
import types

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasinit.pruning import incremental  # noqa: E402

ROWS, COLS, CANDIDATES, DROP = 784, 300, 9243, 700


def timed(fn, make_args, reps: int = 200, donated: bool = False) -> float:  # noqa: ANN001
    """Median µs per call over 7 batches of ``reps``; a ``donated`` ``fn`` returns its next arguments."""
    args = make_args()
    for _ in range(2):
        out = fn(*args)
        args = out if donated else args
    jax.block_until_ready(out)
    batches = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(reps):
            out = fn(*args)
            args = out if donated else args
        jax.block_until_ready(out)
        batches.append((time.perf_counter() - start) / reps * 1e6)
    return round(statistics.median(batches), 1)


def main() -> dict:
    rng = np.random.default_rng(0)
    w = rng.uniform(-0.07, 0.07, (ROWS, COLS)).astype("float32")
    mask = np.abs(w) > 0.03
    kept = int(mask.sum())
    size = w.size
    plan = types.SimpleNamespace(size=size, limit=DROP + 5, weight_shape=(ROWS, COLS), candidates=CANDIDATES,
                                 steps=np.arange(0, 4000, dtype="int32"))
    plan.counts = np.maximum(kept - DROP * plan.steps, size // 5).astype("int32")
    for name in ("_pruned", "_threshold"):
        setattr(plan, name, types.MethodType(getattr(incremental.WeightPlan, name), plan))
    magnitude = np.where(mask, np.abs(w), np.inf).reshape(-1)
    cand = np.argpartition(magnitude, CANDIDATES - 1)[:CANDIDATES].astype("int32")
    flat_w, flat_mask = jnp.asarray(w.reshape(-1)), jnp.asarray(mask.reshape(-1))

    def state():  # fresh donated copies: weight, mask
        return jnp.array(w), jnp.array(mask)

    def update(until: int):  # noqa: ANN202
        # the update as the step runs it; the mask and count are not carried over, so every call is the same update
        step = jax.jit(lambda w_, m_: (incremental.WeightPlan._step(plan, w_, m_, jnp.int32(kept), jnp.asarray(cand),
                                                                      jnp.int32(0), jnp.int32(until))[0], m_),
                       donate_argnums=(0,))
        return step

    survivors = jnp.where(flat_mask, jnp.abs(flat_w), jnp.inf)
    parts = {
        "mask_only": timed(jax.jit(lambda w_, m_: (jnp.where(m_, w_, 0.0), m_), donate_argnums=(0,)), state, donated=True),
        "update_not_due": timed(update(0), state, donated=True),
        "update_due": timed(update(10**6), state, donated=True),
        "count_pass": timed(jax.jit(lambda w_, m_: jnp.sum(jnp.where(m_ & (jnp.abs(w_) <= 0.031), 1.0, 0.0))), state),
        "elementwise_mask": timed(jax.jit(lambda w_, m_: m_ & ~(jnp.abs(w_) <= 0.031)), state),
        "top_k_candidates": timed(jax.jit(lambda v: jax.lax.top_k(-v, DROP + 5)[0]), lambda: (jnp.asarray(magnitude[cand]),)),
        "top_k_whole": timed(jax.jit(lambda v: jax.lax.top_k(-v, DROP + 5)[0]), lambda: (survivors,), reps=20),
    }
    model = keras.Sequential([keras.Input((ROWS,)), keras.layers.Dense(COLS)])
    from kerasinit import pruning

    schedule = pruning.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=800, frequency=1)
    pruner = pruning.Pruner(model, schedule)
    model.layers[0].kernel.assign(w)
    pruner.masks[pruner.weights[0].name].assign(mask)
    weight_plan = incremental.IncrementalPlan(pruner, schedule, keras.optimizers.Adam()).plans[0]
    batches = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(20):
            weight_plan.refresh()
        batches.append((time.perf_counter() - start) / 20 * 1e6)
    parts["host_refresh"] = round(statistics.median(batches), 1)
    result = {
        "benchmark": "in_step_parts", "kernel": [ROWS, COLS], "kept": kept, "candidates": CANDIDATES, "drop": DROP,
        "us": parts,
        "due_over_mask_only_us": round(parts["update_due"] - parts["mask_only"], 1),
        "refresh_per_step_us": round(parts["host_refresh"] / 16, 1),
        "jax": jax.__version__, "keras": keras.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus (shared)",
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
