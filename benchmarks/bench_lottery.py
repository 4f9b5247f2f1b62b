"""Benchmark: wall time of `kerasinit lottery` and `kerasinit compare` at their defaults (SPEC §7).

Targets on 2 CPU cores: lottery < 300 s, compare < 120 s. Each command runs as a user would run it,
in a subprocess (`python -m kerasinit ... --json --quiet --out DIR`, a fresh folder each time so
nothing is resumed); prints JSON with the wall seconds (interpreter start-up and TensorFlow import
included), the training seconds the command reports, and the lottery table.

    python benchmarks/bench_lottery.py [--repeats 1] [--skip-compare]
"""

from __future__ import annotations

import argparse
import json
import statistics

from _cli import run_cli  # benchmarks/_cli.py (scripts run from benchmarks/ put it on sys.path)

TARGETS_S = {"lottery": 300.0, "compare": 120.0}


def training_seconds(command: str, data: dict) -> float:
    if command == "compare":
        return sum(r["seconds"] for r in data["runs"])
    return sum(row[k]["seconds"] for row in data["rows"] for k in ("ticket", "reinit", "random") if row.get(k))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip-compare", action="store_true", help="time `kerasinit lottery` only")
    args = parser.parse_args()
    commands = ["lottery"] if args.skip_compare else ["lottery", "compare"]
    result: dict = {}
    for command in commands:
        walls, data = [], {}
        for _ in range(args.repeats):
            wall, data = run_cli(command)
            walls.append(wall)
        median = statistics.median(walls)
        entry = {"command": f"kerasinit {command} --json --quiet --out DIR", "config": data["config"],
                 "wall_s": [round(w, 2) for w in walls], "wall_median_s": round(median, 2),
                 "training_s": round(training_seconds(command, data), 2), "target_s": TARGETS_S[command],
                 "within_target": median < TARGETS_S[command]}
        if command == "lottery":
            from kerasinit.experiments.lottery import LotteryResults

            entry["table"] = LotteryResults(config=data["config"], rows=data["rows"]).table().splitlines()
        result[command] = entry
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
