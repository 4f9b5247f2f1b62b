"""Benchmark: wall time of `kerasinit compare` at its defaults (target < 120 s on 2 CPU cores).

Runs the installed command in a subprocess (`python -m kerasinit compare --json --out DIR`),
as a user would, and prints JSON: wall seconds (interpreter start-up, TensorFlow import,
15 training runs, plots), the sum of the per-run training seconds, and the summary rows.

    python benchmarks/bench_compare.py [--repeats 1] [-- extra compare arguments]
"""

from __future__ import annotations

import argparse
import json
import statistics

from _cli import run_cli  # benchmarks/_cli.py (scripts run from benchmarks/ put it on sys.path)

TARGET_S = 120.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("extra", nargs="*", help="extra `kerasinit compare` arguments (after --)")
    args = parser.parse_args()
    walls, data = [], {}
    for _ in range(args.repeats):
        wall, data = run_cli("compare", args.extra)
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
