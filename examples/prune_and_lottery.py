"""Native pruning with a schedule, then a tiny lottery-ticket (IMP) run (~15 s on a CPU).

    python examples/prune_and_lottery.py [--out lottery_digits]
"""

from __future__ import annotations

import argparse

import keras

from kerasinit.experiments.datasets import load
from kerasinit.experiments.lottery import run_lottery
from kerasinit.experiments.models import build
from kerasinit.pruning import PolynomialDecay, Pruner, PruningCallback, sparsity_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="folder for the IMP results, masks, θ0 and plot")
    args = parser.parse_args()
    ds = load("digits", seed=0)

    # 1. Gradual magnitude pruning to 80% sparsity during training (Zhu & Gupta's polynomial schedule).
    keras.utils.set_random_seed(0)
    model = build("mlp", ds.input_shape, ds.n_classes, seed=0, depth=2, width=100, kernel_initializer="he_normal")
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    steps = 6 * -(-len(ds.y_train) // 64)
    pruner = Pruner(model, PolynomialDecay(0.0, 0.8, begin_step=0, end_step=steps // 2, frequency=10),
                    overrides={"output": 0.5})
    model.fit(ds.x_train, ds.y_train, epochs=6, batch_size=64, verbose=0, callbacks=[PruningCallback(pruner=pruner)])
    _, acc = model.evaluate(ds.x_test, ds.y_test, verbose=0)
    print(f"scheduled pruning: sparsity {pruner.sparsity:.3f}, test accuracy {acc:.3f}")
    print(sparsity_report(model))

    # 2. Lottery tickets on the same architecture (cloned, re-drawn per seed): 3 rounds of IMP at 50% per round.
    results = run_lottery(model, ds, rounds=3, rate=0.5, epochs=6, out=args.out)
    print(results.table())


if __name__ == "__main__":
    main()
