"""Fixed masks (a ticket, a mask chosen before training) through several ``fit`` calls, new masks in between.

On JAX a compiled step either reads the masks from its state (``PruningCallback(pruner=...)`` binds
them) or holds them as constants from its trace; in the second case a new mask must retrace the
step, or training would keep applying the old one. Both paths are checked on JAX (in a fresh
interpreter: the backend is read once per process) and on TensorFlow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json
    import keras
    import numpy as np
    from kerasinit.pruning import Pruner, PruningCallback

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(96, 10)).astype("float32"), rng.integers(0, 3, 96)

    def check(with_callback):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(16, activation="relu", name="hidden"),
                                  keras.layers.Dense(3, name="out")])
        model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        pruner = Pruner(model)
        out = {}
        for name, seed in (("first", 1), ("second", 2)):
            masks = {k: (np.random.default_rng([seed, i]).random(m.shape) < 0.5).astype("uint8")
                     for i, (k, m) in enumerate(pruner.masks.items())}
            pruner.set_masks(masks)
            before = {k: keras.ops.convert_to_numpy(w.variable).copy() for k, w in zip(pruner.masks, pruner.weights)}
            callbacks = [PruningCallback(pruner=pruner)] if with_callback else []
            model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=callbacks)
            after = {k: keras.ops.convert_to_numpy(w.variable) for k, w in zip(pruner.masks, pruner.weights)}
            out[name] = {
                "pruned_nonzero": int(sum((after[k][masks[k] == 0] != 0).sum() for k in masks)),
                "kept_trained": float(min(np.abs(after[k] - before[k])[masks[k] == 1].mean() for k in masks)),
                "mask_matches": all(np.array_equal(pruner.get_masks()[k], masks[k]) for k in masks),
            }
        return out

    print(json.dumps({"callback": check(True), "plain": check(False), "backend": keras.backend.backend()}))
""")


def _run(backend: str, tmp_path) -> dict:
    script = tmp_path / "fixed_masks.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_new_fixed_masks_between_fits_are_the_ones_applied(backend, tmp_path):
    result = _run(backend, tmp_path)
    assert result["backend"] == backend
    for path in ("callback", "plain"):
        for fit in ("first", "second"):
            r = result[path][fit]
            assert r["mask_matches"], (path, fit)
            assert r["pruned_nonzero"] == 0, (path, fit, r)  # the *current* mask is applied, not the first one
            assert r["kept_trained"] > 1e-4, (path, fit, r)  # kept weights (incl. ones the first mask pruned) train
