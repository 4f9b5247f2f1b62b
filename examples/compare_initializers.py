"""Compare initializers on a 2-D dataset with the library API (small settings, ~15 s on a CPU).

    python examples/compare_initializers.py [--out compare_moons]
"""

from __future__ import annotations

import argparse

import kerasinit
from kerasinit.experiments.compare import run_compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="also write JSON, CSV and plots to this folder")
    args = parser.parse_args()
    inits = {
        "zeros": "zeros",
        "too small": kerasinit.RandomNormal(stddev=1e-3),
        "glorot_uniform": "glorot_uniform",
        "he_normal": "he_normal",
    }
    results = run_compare("mlp", "moons", inits, depth=3, width=32, epochs=10, seeds=2, learning_rate=0.05,
                          out=args.out)
    print(results.table())
    summary = results.summary().set_index("init")
    best = summary["acc_mean"].idxmax()
    print(f"best: {best} ({summary.loc[best, 'acc_mean']:.3f}); zeros status: {summary.loc['zeros', 'status']}")
    if args.out:
        print("wrote", args.out)


if __name__ == "__main__":
    main()
