"""RigL against static sparse training at 90% sparsity, ERK, the same steps budget, 3 seeds (issue 24).

    python examples/rigl_vs_static.py [--quick] [--dataset auto|fashion_mnist|cifar10|digits|spiral]
                                      [--out rigl_vs_static] [--figure rigl_vs_static.png]

Evci et al. 2020 ("Rigging the lottery") report that at 90% sparsity RigL beats static sparse training
with the same ERK distribution and budget. Each (method, seed) here is one ``run_prune_at_init`` run
(family "dynamic"): the seed's fresh initialization, random ERK masks at 90%, one ``fit`` with a
``SparseTraining`` callback (RigL: drop the 30% (cosine-decayed) smallest |w| of each layer's active
weights every ``update_every`` steps up to 75% of training, grow as many by the dense gradient's |g| on
one batch of the training set; static: never move). Same model, data order, optimizer, steps and
seeds for both: the paired difference RigL − static per seed is the measurement.

Problems: ``fashion_mnist`` (LeNet-300-100) when it is in Keras's dataset cache; ``--dataset auto``
(default) falls back, and says so, to the problems that ship with the install: scikit-learn's
``digits`` (LeNet-300-100) and the generated two-arm ``spiral`` (3,000 points, a narrow MLP 64-64-64:
at 90% sparsity a 256-wide one solves it on every seed, which leaves nothing to compare).
Measured on 2 shared CPU cores: 52 s at the defaults (digits and spiral), ~20 s with ``--quick``
(a quarter of the epochs); fashion_mnist at its defaults has not been timed here (not in the cache).
Prints per-seed accuracies, mean ± std per method and the RigL − static difference; writes a figure
and each problem's resumable run folder under ``--out``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from typing import Any

import numpy as np

from kerasinit.experiments.datasets import load
from kerasinit.experiments.sparsity import run_prune_at_init
from kerasinit.plots._common import pyplot

SPARSITY = 0.9
SEEDS = (0, 1, 2)
#: per problem: model, its options, epochs (quick epochs), batch size, update_every, learning rate
PROBLEMS: dict[str, dict[str, Any]] = {
    "fashion_mnist": {"model": "lenet_300_100", "options": None, "epochs": 8, "quick": 1, "batch_size": 128,
                      "update_every": 100, "learning_rate": 1e-3},
    "cifar10": {"model": "conv2", "options": None, "epochs": 4, "quick": 1, "batch_size": 128,
                "update_every": 100, "learning_rate": 1e-3},
    "digits": {"model": "lenet_300_100", "options": None, "epochs": 40, "quick": 10, "batch_size": 64,
               "update_every": 20, "learning_rate": 1e-3},
    "spiral": {"model": "mlp", "options": {"depth": 3, "width": 64}, "epochs": 40, "quick": 10, "batch_size": 64,
               "update_every": 25, "learning_rate": 1e-3},
}


def cached(name: str) -> bool:
    """Whether a keras.datasets set is in Keras's cache (never downloads)."""
    try:
        load(name, download=False)
    except ValueError:
        return False
    return True


def choose(dataset: str) -> list[str]:
    if dataset != "auto":
        return [dataset]
    if cached("fashion_mnist"):
        return ["fashion_mnist"]
    print("fashion_mnist is not in Keras's dataset cache: running the problems that ship with the install instead, "
          "digits and spiral. Place its files in ~/.keras/datasets (or pass --dataset fashion_mnist where the "
          "network allows the download) for the image problem.")
    return ["digits", "spiral"]


def dataset_of(name: str) -> Any:
    return load("spiral", n_samples=3000, seed=0) if name == "spiral" else load(name, seed=0)


def run(name: str, methods: list[str], quick: bool, out: str) -> Any:
    p = PROBLEMS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. Keras's input-shape notes; statuses are in the rows
        return run_prune_at_init(p["model"], dataset_of(name), methods, [SPARSITY], SEEDS, distribution="erk",
                                 epochs=p["quick"] if quick else p["epochs"], batch_size=p["batch_size"],
                                 learning_rate=p["learning_rate"], model_options=p["options"],
                                 update_every=p["update_every"], out=os.path.join(out, name + ("_quick" if quick else "")),
                                 plots=False)


def report(name: str, results: Any, methods: list[str]) -> dict[str, np.ndarray]:
    # test accuracy at the early-stop point (lowest validation loss), as every kerasinit experiment reports it
    acc = {m: np.array([r["test_accuracy"] for r in results.rows if r["method"] == m]) for m in methods}
    rigl = next((r for r in results.rows if r["method"] == "rigl"), None)
    c = results.config
    print(f"\n{name}: {c['model']}, {SPARSITY:.0%} sparsity, ERK, {c['epochs']} epochs of batch {c['batch_size']}, "
          f"update_every {c['update_every']}" + (f", end_step {rigl['end_step']} ({rigl['mask_updates']} updates)"
                                                 if rigl else "") + f", seeds {list(SEEDS)}")
    print(f"{'method':>8}  " + "  ".join(f"seed {s}" for s in SEEDS) + "   mean ± std")
    for m in methods:
        print(f"{m:>8}  " + "  ".join(f"{a:6.4f}" for a in acc[m]) + f"   {acc[m].mean():.4f} ± {acc[m].std():.4f}")
    if "rigl" in acc and "static" in acc:
        diff = acc["rigl"] - acc["static"]
        print(f"{'rigl − static':>13}  " + "  ".join(f"{d:+.4f}" for d in diff) + f"   mean {diff.mean():+.4f}"
              f" (RigL ahead in {int((diff > 0).sum())} of {len(diff)} seeds)")
    return acc


def figure(problems: dict[str, dict[str, np.ndarray]], path: str) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(problems), figsize=(3.6 * len(problems), 3.4), squeeze=False)
    for ax, (name, acc) in zip(axes[0], problems.items(), strict=True):
        for i, values in enumerate(acc.values()):
            ax.scatter(np.full(len(values), i) + np.linspace(-0.08, 0.08, len(values)), values, color=f"C{i}", s=18,
                       label="seeds" if i == 0 else None, zorder=3)
            ax.errorbar(i + 0.25, values.mean(), yerr=values.std(), fmt="s", color=f"C{i}", capsize=4, ms=6)
        ax.set_xticks(range(len(acc)), list(acc))
        ax.set_xlim(-0.5, len(acc) - 0.4)
        ax.set_title(f"{name} ({SPARSITY:.0%} sparse, ERK)")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("RigL vs static sparse training: seeds (dots), mean ± std (squares)", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="auto", choices=["auto", *PROBLEMS])
    parser.add_argument("--methods", default="rigl,static", help="comma-separated among rigl, set, static")
    parser.add_argument("--quick", action="store_true", help="about a minute: a quarter of the epochs")
    parser.add_argument("--out", default="rigl_vs_static", help="run folders (a rerun resumes)")
    parser.add_argument("--figure", default=None, help="figure path (default <out>/rigl_vs_static.png)")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    began = time.perf_counter()
    found = {}
    for name in choose(args.dataset):
        found[name] = report(name, run(name, methods, args.quick, args.out), methods)
    path = args.figure or os.path.join(args.out, "rigl_vs_static.png")
    figure(found, path)
    print(f"\nwrote {path}; {time.perf_counter() - began:.0f} s in all")


if __name__ == "__main__":
    main()
