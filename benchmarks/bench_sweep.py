"""Wall time of a sweep in process against Ray with 2 workers (issue 25), side by side in one run.

``compare`` at its defaults (mlp on digits, 5 initializers x 3 seeds = 15 trainings of 20 epochs) and
``run_lottery`` at its defaults with 3 seeds (LeNet-300-100 on digits, 6 rounds, ticket + reinit + random:
3 x 19 = 57 trainings), each once in process (``executor=None``) and once on a local Ray instance with
2 CPUs (``RayExecutor(workers=2)``, worker start-up included). Prints JSON: seconds, the ratio in
process / Ray (> 1: Ray faster) and whether the two tables agree (accuracies bit for bit; the lottery's
validation losses within rtol 1e-6, see docs/scale.md).

    .venv/bin/python benchmarks/bench_sweep.py
"""

from __future__ import annotations

import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    import numpy as np
    import ray

    from kerasinit.experiments.compare import run_compare
    from kerasinit.experiments.executor import RayExecutor
    from kerasinit.experiments.lottery import run_lottery

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    report: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "ray": ray.__version__,
                                "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow")}}
    try:
        for name, run, trainings in (("compare (defaults: 5 inits x 3 seeds)", lambda ex: run_compare(plots=False, executor=ex), 15),
                                     ("lottery (defaults, 3 seeds)", lambda ex: run_lottery(seeds=3, plots=False, executor=ex),
                                      57)):
            start = time.perf_counter()
            here = run(None)
            t_here = time.perf_counter() - start
            start = time.perf_counter()
            there = run(RayExecutor(workers=2))
            t_ray = time.perf_counter() - start
            a, b = here.to_pandas(), there.to_pandas()
            exact = [c for c in a.columns if "accuracy" in c]
            losses = [c for c in a.columns if c.endswith("loss")]
            report[name] = {
                "trainings": trainings, "inprocess_s": round(t_here, 1), "ray_2_workers_s": round(t_ray, 1),
                "ratio_inprocess_over_ray": round(t_here / t_ray, 2),
                "accuracies_identical": bool(a[exact].equals(b[exact])),
                "losses_max_rel_diff": float(np.nanmax(np.abs(a[losses].to_numpy(float) - b[losses].to_numpy(float))
                                                      / np.maximum(np.abs(a[losses].to_numpy(float)), 1e-12)))}
    finally:
        ray.shutdown()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
