"""kerasinit initializers in Keras layers: by object, by name, saved and reloaded.

    python examples/initializer_in_layers.py
"""

from __future__ import annotations

import os
import tempfile

import keras
import numpy as np

import kerasinit


def main() -> None:
    model = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(32, activation="tanh", kernel_initializer=kerasinit.KwonTanhUniform(seed=1)),
            keras.layers.Dense(32, activation="relu", kernel_initializer="kerasinit>PlainHeNormal"),
            keras.layers.Dense(10, kernel_initializer="xavier_uniform"),
        ]
    )
    for layer in model.layers:
        d = kerasinit.describe(layer.kernel_initializer, tuple(layer.kernel.shape))
        w = keras.ops.convert_to_numpy(layer.kernel)
        print(f"{layer.name:8s} {type(layer.kernel_initializer).__name__:16s} expected std {d.std:.4f}  actual {w.std():.4f}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        loaded = keras.models.load_model(path)  # no custom_objects: `import kerasinit` registered them
        same = all(np.array_equal(a, b) for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True))
        print("reloaded:", [type(layer.kernel_initializer).__name__ for layer in loaded.layers], "same weights:", same)


if __name__ == "__main__":
    main()
