"""Benchmark: wall time of `kerasinit compare` at its defaults (target < 120 s on 2 CPU cores).

Runs the installed command in a subprocess (`python -m kerasinit compare --json --out DIR`),
as a user would, and prints JSON: wall seconds (interpreter start-up, TensorFlow import,
15 training runs, plots), the sum of the per-run training seconds, and the summary rows.

    python benchmarks/bench_compare.py [--repeats 1] [-- extra compare arguments]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_S = 120.0


def run_once(extra: list[str]) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "kerasinit", "compare", "--json", "--quiet", "--out", out, *extra]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"kerasinit compare failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return wall, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("extra", nargs="*", help="extra `kerasinit compare` arguments (after --)")
    args = parser.parse_args()
    walls, data = [], {}
    for _ in range(args.repeats):
        wall, data = run_once(args.extra)
        walls.append(wall)
    median = statistics.median(walls)
    result = {
        "command": "kerasinit compare --json --quiet --out DIR " + " ".join(args.extra),
        "config": data["config"],
        "wall_s": [round(w, 2) for w in walls],
        "wall_median_s": round(median, 2),
        "training_s": round(sum(r["seconds"] for r in data["runs"]), 2),
        "target_s": TARGET_S,
        "within_target": median < TARGET_S,
        "summary": [{k: s[k] for k in ("init", "acc_mean", "acc_std", "epochs_to_target", "reached",
                                       "act_std_first", "act_std_last", "std_ratio", "status")}
                    for s in data["summary"]],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
