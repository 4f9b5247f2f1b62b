"""Sparse gradients (an Embedding's) work wherever the pruning scores read gradients, on every backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = """
import json
import keras, numpy as np
from kerasinit import pruning

keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((8,), dtype="int32"), keras.layers.Embedding(50, 8, name="emb"),
                          keras.layers.Flatten(), keras.layers.Dense(2, name="out")])
rng = np.random.default_rng(0)
x, y = rng.integers(0, 50, (32, 8)).astype("int32"), rng.integers(0, 2, 32)
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
out = {}
for method in ("snip", "grasp", "synflow"):
    scores = pruning.compute_scores(model, pruning.select(model), method, (x, y) if method != "synflow" else None,
                                    loss=loss).scores["emb/embeddings"]
    rows_read = np.unique(x if method != "synflow" else np.ones_like(x))
    untouched = np.setdiff1d(np.arange(50), rows_read)
    out[method] = {"read_nonzero": int(np.count_nonzero(scores[rows_read])),
                   "unread_nonzero": int(np.count_nonzero(scores[untouched])), "finite": bool(np.isfinite(scores).all())}
masks = pruning.prune_at_init(model, 0.5, "snip", (x, y), loss=loss).get_masks()
out["snip_sparsity"] = float(1 - np.mean(np.concatenate([m.ravel() for m in masks.values()])))
print(json.dumps(out))
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_embedding_scores_on_every_backend(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT)], capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for method in ("snip", "grasp", "synflow"):
        assert out[method]["finite"], (backend, method)
        assert out[method]["read_nonzero"] > 0, (backend, method)  # the rows the batch read have scores
        assert out[method]["unread_nonzero"] == 0, (backend, method)  # the rows it never read have none
    assert abs(out["snip_sparsity"] - 0.5) < 0.01
