"""Step time of dense vs pruned training, native Keras 3 on any backend vs TFMOT on tf_keras (SPEC §4.2, §7; issues 4, 10).

Model: LeNet-300-100 (784-300-100-10, ReLU), batch 128, Adam 1e-3, synthetic data (a repeating
``tf.data`` pipeline of 2,560 examples). Pruning: ``PolynomialDecay(0 -> 0.8)`` over the whole
run, at ``frequency`` 100 and 1. Variants, all in one process so that they interleave:

* ``keras3_dense``; ``keras3_pruned_f100`` / ``keras3_pruned_f1`` - ``PruningCallback`` with its default
  path (at frequency 1 inside the train step, ``kerasinit.pruning.incremental``, when that repays its
  compilation over a fit, ``kerasinit.pruning.break_even``); ``keras3_pruned_f1_host`` /
  ``keras3_pruned_f1_in_step`` - the same with ``in_graph=False`` / ``True`` (both paths, forced);
* ``tf_keras_dense``; ``tfmot_pruned_f100`` / ``tfmot_pruned_f1`` - TFMOT's own
  ``prune_low_magnitude`` and ``UpdatePruningStep``, with TFMOT's own ``PolynomialDecay``
  (TensorFlow backend only: TFMOT needs tf_keras).

``--backend jax|torch|tensorflow`` picks Keras's backend for the native variants. The data are a
repeating ``tf.data`` pipeline on TensorFlow; on PyTorch, converting ``tf.data`` batches cost
as much as the step itself (12.7 ms per step against 5.9 ms inside it, in steps of ~4.2 ms), so the
same batches come from a ``torch`` ``DataLoader`` over tensors made once (6.5 ms vs 6.0 ms); on JAX
from a generator cycling through JAX arrays made once (through ``tf.data`` a dense step swung
between 1.8 and 3.1 ms from one fit to the next, against 1.33-1.40 ms).

Identical models differ by up to ±3% in step time from one instance to the next (on a loaded VM by
up to 30%), so the dense and frequency-100 variants are each built ``--instances`` times (default 3)
and a variant's step time is the mean of its instances' medians; ``instance_spread_max_over_min``
shows that A/A spread. To take the instance out of the comparison, each frequency-100 model is also
timed *unmasked* (``keras3_f100_unmasked``): the same model, variables and optimizer with its mask
constraints taken off and its own dense train function, so ``paired_f100_over_unmasked`` (the
median over repeats and instances of pruned / unmasked time of one instance) compares the
same buffers with and without pruning.
Each timed run is one ``fit(epochs=1, steps_per_epoch=STEPS)`` call after an untimed warm-up
(tracing); all models are interleaved repeat by repeat in a rotating order. The step time is the
call's wall time / STEPS. Prints JSON: step time per variant, pruned/dense ratios (of those, and
the median over repeats of the per-repeat ratio), and mask bytes per pruned weight.

    .venv/bin/python benchmarks/bench_pruning.py [--backend tensorflow] [--repeats 7] [--steps 400] [--instances 3]
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

import keras  # noqa: E402  (Keras 3 first: TFMOT's import sets TF_USE_LEGACY_KERAS for tf.keras only)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _lenet import SIZES, jax_batches, lenet, torch_batches  # noqa: E402

from kerasinit import pruning  # noqa: E402

WITH_TFMOT = keras.backend.backend() == "tensorflow"
if WITH_TFMOT:
    import tensorflow_model_optimization as tfmot
    import tf_keras




def tf_keras_model(seed: int, frequency: int | None, end_step: int) -> tf_keras.Model:
    tf_keras.utils.set_random_seed(seed)
    model = tf_keras.Sequential([tf_keras.Input((SIZES[0],))]
                                + [tf_keras.layers.Dense(n, activation="relu") for n in SIZES[1:-1]]
                                + [tf_keras.layers.Dense(SIZES[-1])])
    if frequency is not None:
        schedule = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=end_step, frequency=frequency)
        model = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    model.compile(tf_keras.optimizers.Adam(1e-3), tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default=keras.backend.backend(), choices=["tensorflow", "jax", "torch"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=400, help="optimizer steps per timed fit call")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--instances", type=int, default=3, help="models per dense and frequency-100 variant")
    args = parser.parse_args(argv)
    # each timed fit covers part of the schedule, so the callback rightly warns that a fit stops short
    warnings.filterwarnings("ignore", message="PruningCallback: the last mask update")
    warnings.filterwarnings("ignore", message=".*shuffle=True.*")

    rng = np.random.default_rng(0)
    x = rng.standard_normal((20 * args.batch_size, SIZES[0])).astype("float32")
    y = rng.integers(0, SIZES[-1], 20 * args.batch_size).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(args.batch_size).prefetch(2)
    if args.backend == "torch":  # tf.data -> torch conversion costs ~7 ms per batch here, as much as the step
        data = torch_batches(x, y, args.batch_size)
    elif args.backend == "jax":  # tf.data -> JAX swung between 1.8 and 3.1 ms per dense step here (1.33-1.40 ms)
        data = jax_batches(x, y, args.batch_size)
    end_step = (args.repeats + 1) * args.steps  # the schedule rises over the whole run

    # Identical models differ by up to ±3% in step time from one instance to the next (buffer
    # placement; an A/A test of 4 dense instances gave 0.99-1.04), so each frequency-100 and dense
    # variant is measured on several instances; the frequency-1 ratios (2-10x) need only one.
    builders = {"keras3_dense": lambda: (lenet(0), [])}
    if WITH_TFMOT:
        builders["tf_keras_dense"] = lambda: (tf_keras_model(0, None, end_step), [])
    for f in (100, 1):
        schedule = pruning.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=end_step, frequency=f)
        builders[f"keras3_pruned_f{f}"] = lambda s=schedule: (lenet(0), [pruning.PruningCallback(s)])
        if f == 1:  # the default weighs compiling against the host updates (pruning.break_even); both paths forced
            builders["keras3_pruned_f1_host"] = lambda s=schedule: (lenet(0), [pruning.PruningCallback(s, in_graph=False)])
            builders["keras3_pruned_f1_in_step"] = lambda s=schedule: (lenet(0), [pruning.PruningCallback(s, in_graph=True)])
        if WITH_TFMOT:
            builders[f"tfmot_pruned_f{f}"] = lambda f=f: (tf_keras_model(0, f, end_step),
                                                          [tfmot.sparsity.keras.UpdatePruningStep()])
    runs: dict[tuple[str, int], tuple] = {}
    for name, build in builders.items():
        for i in range(1 if name.endswith(("_f1", "_f1_host", "_f1_in_step")) else args.instances):
            runs[name, i] = build()
            if name == "keras3_pruned_f100":  # the same model unmasked: see the module docstring
                runs["keras3_f100_unmasked", i] = (runs[name, i][0], None)
    dense_steps: dict[int, object] = {}

    def fit(key: tuple[str, int]) -> float:
        model, callbacks = runs[key]
        if callbacks is None:
            return fit_unmasked(model)
        start = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=args.steps, verbose=0, callbacks=callbacks)
        return (time.perf_counter() - start) / args.steps

    def fit_unmasked(model: keras.Model) -> float:
        masked = [v for v in model.trainable_variables if isinstance(v.constraint, pruning.MaskConstraint)]
        constraints = [v.constraint for v in masked]
        pruned_step, step = model.train_function, int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        model.train_function = dense_steps.get(id(model))  # None the first time: fit traces the dense step
        for v in masked:
            v.constraint = None
        try:
            start = time.perf_counter()
            model.fit(data, epochs=1, steps_per_epoch=args.steps, verbose=0)
            return (time.perf_counter() - start) / args.steps
        finally:
            for v, c in zip(masked, constraints, strict=True):
                v.constraint = c
            model.optimizer.iterations.assign(step)  # the pruned run's schedule goes on where it was
            dense_steps[id(model)], model.train_function = model.train_function, pruned_step

    keys = list(runs)
    for key in keys:  # warm-up: tracing, first mask update
        fit(key)
    times: dict[tuple[str, int], list[float]] = {key: [] for key in keys}
    for r in range(args.repeats):
        for key in keys[r % len(keys):] + keys[: r % len(keys)]:
            times[key].append(fit(key))

    def instance_medians(name: str) -> list[float]:
        return [statistics.median(t) for (n, _), t in times.items() if n == name]

    def per_repeat_mean(name: str) -> list[float]:
        return [statistics.fmean(col) for col in zip(*(t for (n, _), t in times.items() if n == name), strict=True)]

    median = {name: statistics.fmean(instance_medians(name)) for name in [*builders, "keras3_f100_unmasked"]}
    ratios, per_repeat = {}, {}
    for f in (100, 1):
        for pruned, dense in ((f"keras3_pruned_f{f}", "keras3_dense"), (f"tfmot_pruned_f{f}", "tf_keras_dense"),
                              (f"keras3_pruned_f{f}_host", "keras3_dense"), (f"keras3_pruned_f{f}_in_step", "keras3_dense")):
            if pruned not in builders:
                continue
            ratios[pruned] = median[pruned] / median[dense]
            per_repeat[pruned] = statistics.median(
                p / d for p, d in zip(per_repeat_mean(pruned), per_repeat_mean(dense), strict=True))
    spread = {name: max(instance_medians(name)) / min(instance_medians(name)) for name in builders
              if not name.endswith(("_f1", "_f1_host", "_f1_in_step"))}
    paired = statistics.median(p / u for i in range(args.instances) for p, u in zip(
        times["keras3_pruned_f100", i], times["keras3_f100_unmasked", i], strict=True))

    native = runs["keras3_pruned_f100", 0][1][0].pruner
    mask_bytes = {"native": native.mask_bytes / sum(m.size for m in native.masks.values())}
    sparsity = {"native_f100": round(native.sparsity, 4)}
    versions = f"keras {keras.__version__} / {keras.backend.backend()}"
    if WITH_TFMOT:
        tfmot_masks = [v for v in runs["tfmot_pruned_f100", 0][0].weights if "/mask" in v.name]
        mask_bytes["tfmot"] = sum(int(np.prod(v.shape)) * v.dtype.size for v in tfmot_masks) / sum(
            int(np.prod(v.shape)) for v in tfmot_masks)
        sparsity["tfmot_f100"] = round(1 - float(np.mean([v.numpy().mean() for v in tfmot_masks])), 4)
        versions += f" / tf_keras {tf_keras.__version__} / tensorflow {tf.__version__}"
    result = {
        "model": "LeNet-300-100", "batch_size": args.batch_size, "steps_per_fit": args.steps, "repeats": args.repeats,
        "instances": {name: len(instance_medians(name)) for name in builders},
        "backend": versions,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus (shared)",
        "step_ms": {k: round(v * 1e3, 4) for k, v in median.items()},
        "ratio_of_medians": {k: round(v, 3) for k, v in ratios.items()},
        "median_ratio_per_repeat": {k: round(v, 3) for k, v in per_repeat.items()},
        "paired_f100_over_unmasked": round(paired, 3),
        "instance_medians_ms": {name: [round(t * 1e3, 3) for t in instance_medians(name)]
                                for name in ("keras3_dense", "keras3_pruned_f100", "keras3_f100_unmasked")},
        "instance_spread_max_over_min": {k: round(v, 3) for k, v in spread.items()},
        "mask_bytes_per_weight": mask_bytes,
        "final_sparsity": sparsity,
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
