"""Wall time of the ``kerasinit`` command next to ``python -c "import keras"`` (issue 11).

Each command runs in a fresh process (the installed console script, as a user types it), several
times, interleaved; the medians and their ratios to the bare Keras import are printed as JSON.
``--help`` must stay under 1 s (it imports no Keras); ``list``/``describe``/``plot-bounds`` pay
Keras's import (with its backend) and little more. The ``reject:`` rows are bad arguments (issue 22):
each must be refused in < 0.5 s, before Keras loads (a non-zero status is expected there).

    .venv/bin/python benchmarks/bench_cli.py [--repeats 5]
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
from pathlib import Path

SCRIPT = str(Path(sys.executable).with_name("kerasinit"))


def commands(out: str) -> dict[str, list[str]]:
    return {
        "import keras": [sys.executable, "-c", "import keras"],
        "kerasinit --help": [SCRIPT, "--help"],
        "kerasinit list": [SCRIPT, "list"],
        "kerasinit describe": [SCRIPT, "describe", "xavier_uniform", "--fan-in", "10"],
        "kerasinit plot-bounds": [SCRIPT, "plot-bounds", "xavier_uniform", "he_normal", "--out", os.path.join(out, "b.png"),
                                  "--overwrite"],
        **{f"reject: {' '.join(bad)}": [SCRIPT, *bad] for bad in BAD_ARGUMENTS},
    }


#: the mistakes measured in issue 22 (5.7-8.7 s each before the command checked its flags without Keras)
BAD_ARGUMENTS = (
    ("compare", "--optimizer", "adm"),
    ("compare", "--lr", "-1"),
    ("compare", "--dataset", "digit"),
    ("lottery", "--model", "lenet300"),
    ("compare", "--inist", "he_normal"),
    ("describe", "glorot_unifrom"),
    ("compare", "--out", "/proc/nope"),
)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as out:
        cmds = commands(out)
        times: dict[str, list[float]] = {name: [] for name in cmds}
        for _ in range(args.repeats):
            for name, cmd in cmds.items():
                start = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                times[name].append(time.perf_counter() - start)
                if proc.returncode != (2 if name.startswith("reject:") else 0):
                    raise SystemExit(f"{name} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    median = {name: statistics.median(t) for name, t in times.items()}
    result = {
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow (default)"), "repeats": args.repeats,
        "median_s": {k: round(v, 3) for k, v in median.items()},
        "slowest_rejection_s": round(max(v for k, v in median.items() if k.startswith("reject:")), 3),
        "ratio_to_import_keras": {k: round(v / median["import keras"], 3) for k, v in median.items() if k != "import keras"},
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
