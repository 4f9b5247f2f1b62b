"""T-Fixup (Huang et al., ICML 2020): a 12-layer Transformer trains without learning-rate warm-up.

What is compared (same data, same Adam, same learning rate 1e-2 from step 0, no warm-up, no
schedule, seeds 0 and 1):

- **default**: the Transformer people train, post-LN (``LayerNorm(x + sublayer(x))`` after each
  attention and MLP sublayer) with Keras's default initialization (Glorot uniform kernels,
  embeddings U[−0.05, 0.05]). Post-LN needs warm-up (Xiong et al. 2020; Huang et al. §3).
- **t_fixup**: the paper's model, the same stack **without LayerNorm** (T-Fixup removes it), after
  ``reinitialize(model, policy="t_fixup")``: Xavier kernels, attention value/output and MLP kernels
  × 0.67·N^(−1/4) with N = 12, embeddings N(0, d^(−1/2)).

Model: token + position embeddings (width 16, vocabulary 8, sequences of 6), 12 blocks of
2-head ``MultiHeadAttention`` and a ReLU MLP (16 → 32 → 16), mean pooling, a 2-way Dense. Task:
does token 0 occur in the sequence (base rate 0.55 on the test set). 40 steps of batch 32
(two passes over 640 samples). Measured (TensorFlow, CPU, seeds 0-3): the default stalls at the
base rate on all four (test accuracy 0.549, last-pass loss 0.69-0.72) while t_fixup reaches test
accuracy 1.000 on all four (loss < 0.01). The learning rate matters for the default only: at 3e-3 it
is on the edge (2 of 4 seeds learn), at 5e-3 1 of 4; t_fixup learns on every seed at 3e-3, 5e-3 and 1e-2.

Cost control (the train step's trace dominates): one compiled model per architecture, re-used
across seeds (weights of every seeded build drawn first, then set; optimizer slots zeroed);
the optimizer is built before the first step (TF then traces the step once, not twice); no
``set_random_seed`` between fits (a new global seed makes TF retrace); no XLA on TensorFlow
(compiling this graph costs more than the 40 steps).
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
import pytest
from conftest import to_np
from keras import layers

import kerasinit

N_LAYERS, WIDTH, HEADS, VOCAB, LENGTH = 12, 16, 2, 8, 6
BATCH, STEPS, LR, SEEDS = 32, 40, 1e-2, (0, 1)


def task(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sequences of LENGTH tokens from VOCAB; label 1 when token 0 occurs."""
    x = np.random.default_rng(seed).integers(0, VOCAB, size=(n, LENGTH)).astype("int32")
    return x, (x == 0).any(axis=1).astype("int32")


def transformer(layer_norm: bool, seed: int) -> keras.Model:
    """12 residual blocks ``h + MHA(h)`` and ``h + MLP(h)``, each followed by LayerNorm when ``layer_norm``."""
    keras.utils.set_random_seed(seed)
    tokens = keras.Input((LENGTH,), dtype="int32")
    h = layers.Embedding(VOCAB, WIDTH, name="tokens")(tokens) + layers.Embedding(LENGTH, WIDTH, name="positions")(
        keras.ops.arange(LENGTH))
    for i in range(N_LAYERS):
        h = layers.Add(name=f"att_add{i}")([h, layers.MultiHeadAttention(HEADS, WIDTH // HEADS, name=f"mha{i}")(h, h)])
        h = layers.LayerNormalization(name=f"ln{i}a")(h) if layer_norm else h
        f = layers.Dense(WIDTH, name=f"ff{i}b")(layers.Dense(2 * WIDTH, activation="relu", name=f"ff{i}a")(h))
        h = layers.Add(name=f"mlp_add{i}")([h, f])
        h = layers.LayerNormalization(name=f"ln{i}b")(h) if layer_norm else h
    return keras.Model(tokens, layers.Dense(2, name="cls")(layers.GlobalAveragePooling1D()(h)))


def train(layer_norm: bool, policy: str | None) -> list[tuple[float, float]]:
    """(last-pass training loss, test accuracy) per seed, Adam at LR from the first step."""
    x, y = task(0, STEPS * BATCH // 2)
    x_test, y_test = task(1, 512)
    starts = []
    for seed in SEEDS:  # every seeded build first: set_random_seed between fits would make TF retrace the step
        model = transformer(layer_norm, seed)
        if policy is not None:
            kerasinit.reinitialize(model, policy=policy, seed=seed)
        starts.append(model.get_weights())
    model.compile(keras.optimizers.Adam(LR), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=False if keras.backend.backend() == "tensorflow" else "auto")
    model.optimizer.build(model.trainable_variables)
    results = []
    for start in starts:
        model.set_weights(start)
        for v in model.optimizer.variables:  # a fresh Adam: zero moments and step count (the rate is a variable too)
            v.assign(np.zeros(v.shape, v.dtype))
        model.optimizer.learning_rate = LR
        loss = model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, shuffle=False).history["loss"][-1]
        accuracy = float(np.mean(np.argmax(to_np(model(x_test)), axis=-1) == y_test))
        results.append((float(loss), accuracy))
    return results


def test_12_layer_transformer_trains_without_warmup_under_t_fixup_where_post_ln_default_stalls():
    start = time.time()
    default = train(layer_norm=True, policy=None)
    t_fixup = train(layer_norm=False, policy="t_fixup")
    base_rate = float(np.mean(task(1, 512)[1]))
    for seed, (d, t) in zip(SEEDS, zip(default, t_fixup, strict=True), strict=True):
        print(f"seed {seed}: default post-LN loss {d[0]:.3f} acc {d[1]:.3f} | t_fixup (no LN) loss {t[0]:.3f} "
              f"acc {t[1]:.3f} | base rate {base_rate:.3f}")
    print(f"{time.time() - start:.1f} s")
    for loss, accuracy in default:  # stalls (at most 0.05 above always answering the majority) or diverges
        assert not math.isfinite(loss) or (accuracy <= max(base_rate, 1 - base_rate) + 0.05 and loss > 0.6)
    for loss, accuracy in t_fixup:
        assert accuracy >= 0.95 and loss < 0.2
    assert min(a for _, a in t_fixup) - max(a for _, a in default) >= 0.3


def test_t_fixup_model_is_the_post_ln_model_without_layer_norm():
    """The two models differ only by the LayerNorms (and the initialization the policy applies)."""
    post_ln, no_ln = transformer(True, 0), transformer(False, 0)
    weights = lambda m: {v.path: tuple(v.shape) for v in m.weights if "ln" not in v.path}  # noqa: E731
    assert weights(post_ln) == weights(no_ln)
    assert sum(isinstance(la, layers.LayerNormalization) for la in post_ln.layers) == 2 * N_LAYERS
    assert not any(isinstance(la, layers.LayerNormalization) for la in no_ln.layers)
    report = kerasinit.reinitialize(no_ln, policy="t_fixup", seed=0)
    scaled = report[report.weight == "kernel"].set_index("layer").scale
    assert scaled["mha0/value"] == pytest.approx(0.67 * N_LAYERS**-0.25) and scaled["mha0/query"] == 1.0
