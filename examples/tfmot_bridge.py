"""The same pruning experiment on a legacy tf_keras model, through TFMOT (needs the [tfmot] extra).

A tf_keras model built with kerasinit initializers is pruned by TFMOT with a kerasinit schedule,
trained, reported, stripped, saved and reloaded (~20 s on a CPU).

    python examples/tfmot_bridge.py [--out tfmot_pruned.keras]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

import kerasinit
from kerasinit.experiments.datasets import load
from kerasinit.pruning import PolynomialDecay
from kerasinit.pruning import tfmot as bridge  # imports TFMOT and tf_keras (only here)


def main() -> None:
    import tf_keras

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="where to save the stripped model (.keras)")
    args = parser.parse_args()
    ds = load("digits", seed=0)
    model = tf_keras.Sequential([
        tf_keras.Input((ds.n_features,)),
        tf_keras.layers.Dense(100, activation="tanh", kernel_initializer=kerasinit.KwonTanhUniform(seed=1), name="hidden"),
        tf_keras.layers.Dense(ds.n_classes, activation="softmax", kernel_initializer="kerasinit>XavierUniform", name="output"),
    ])
    steps = 8 * -(-len(ds.y_train) // 64)
    schedule = PolynomialDecay(0.0, 0.8, begin_step=0, end_step=steps // 2, frequency=10)
    pruned = bridge.prune_low_magnitude(model, schedule, overrides={"output": 0.5})
    pruned.compile(tf_keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    pruned.fit(ds.x_train, ds.y_train, epochs=8, batch_size=64, verbose=0, callbacks=bridge.callbacks())
    _, accuracy = pruned.evaluate(ds.x_test, ds.y_test, verbose=0)
    print(bridge.sparsity_report(pruned).to_string(index=False))
    print(f"test accuracy {accuracy:.3f}")
    plain = bridge.strip(pruned)
    path = args.out or os.path.join(tempfile.mkdtemp(), "tfmot_pruned.keras")
    plain.save(path)
    reloaded = tf_keras.models.load_model(path)  # kerasinit initializers are registered with tf_keras
    same = all(np.array_equal(a, b) for a, b in zip(plain.get_weights(), reloaded.get_weights(), strict=True))
    print("reloaded:", type(reloaded.layers[0].kernel_initializer).__name__, "same weights:", same)


if __name__ == "__main__":
    main()
