"""Native Keras 3 pruning (SPEC §4.1-4.2): schedules, masks, selection, exact zeros, persistence."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import textwrap
import traceback
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import run_python, to_np
from keras import layers

import kerasinit
from kerasinit import pruning as P
from kerasinit.monitor import VarianceMonitor
from kerasinit.pruning.optimizer_state import bind

#: The tests below that take the running backend's own path (gradients, subprocesses, warnings); the suite runs
#: them in-process on TensorFlow and ``test_backend_neutral_tests_pass_on_jax_and_torch`` on JAX and PyTorch.
BACKEND_NEUTRAL = [
    "test_pruned_weights_stay_exactly_zero_through_momentum",
    "test_subclassed_model_in_a_custom_training_loop",
    "test_masks_and_step_survive_save_and_load_in_a_fresh_process",
    "test_pruning_and_monitor_add_no_numpy_deprecation_warnings",
]

# ----------------------------------------------------------------------------- schedules


def test_polynomial_decay_known_values_and_update_steps():
    s = P.PolynomialDecay(0.1, 0.9, begin_step=100, end_step=500, power=3, frequency=100)
    for step in (0, 100, 250, 300, 500, 900):
        p = min(1.0, max(0.0, (step - 100) / 400))
        assert s.sparsity(step) == pytest.approx(0.9 + (0.1 - 0.9) * (1 - p) ** 3)
    assert [t for t in range(1000) if s.should_prune(t)] == [100, 200, 300, 400, 500]
    assert s.update_steps(0, 1000) == [100, 200, 300, 400, 500]
    assert s(300) == (True, s.sparsity(300))


def test_schedule_fixes_over_tfmot():
    same = P.PolynomialDecay(0.0, 0.8, begin_step=50, end_step=50)  # TFMOT: 0/0 = NaN
    assert same.sparsity(49) == 0.0 and same.sparsity(50) == pytest.approx(0.8) and same.should_prune(50)
    short = P.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=250, frequency=100)  # TFMOT stops at 200
    assert short.update_steps(0, 1000) == [0, 100, 200, 250]
    assert short.sparsity(250) == pytest.approx(0.8)


@pytest.mark.parametrize("begin, end, freq", [(0, -1, 7), (3, 40, 5), (10, 10, 3), (0, 99, 10)])
def test_update_steps_agree_with_should_prune(begin, end, freq):
    s = P.ConstantSparsity(0.5, begin, end, freq)
    for start, stop in [(0, 120), (11, 57), (40, 41)]:
        assert s.update_steps(start, stop) == [t for t in range(start, stop) if s.should_prune(t)]


def test_schedules_serialize_and_validate():
    for s in (P.ConstantSparsity(0.5, 10, 90, 5), P.PolynomialDecay(0.2, 0.7, 0, 1000, power=2, frequency=10)):
        config = keras.saving.serialize_keras_object(s)
        assert config["registered_name"].startswith("kerasinit>")
        assert keras.saving.deserialize_keras_object(config) == s
    bad = [
        (lambda: P.ConstantSparsity(1.0, 0), ValueError, "target_sparsity.*\\[0, 1\\)"),
        (lambda: P.ConstantSparsity(-0.1, 0), ValueError, "target_sparsity"),
        (lambda: P.ConstantSparsity(0.5, -1), ValueError, "begin_step.*>= 0"),
        (lambda: P.ConstantSparsity(0.5, 10, 5), ValueError, "end_step.*-1.*>= begin_step"),
        (lambda: P.ConstantSparsity(0.5, 0, frequency=0), ValueError, "frequency.*> 0"),
        (lambda: P.PolynomialDecay(0.0, 0.5, 0, -1), ValueError, "end_step"),
        (lambda: P.PolynomialDecay(0.0, 1.5, 0, 10), ValueError, "final_sparsity"),
        (lambda: P.ConstantSparsity(0.5, 1.5), TypeError, "begin_step.*int"),
    ]
    for make, exc, pattern in bad:
        with pytest.raises(exc, match=pattern):
            make()


# ----------------------------------------------------------------------------- masks


def test_magnitude_mask_counts_and_ties():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(30, 17))
    for s in (0.0, 0.25, 0.5, 0.9, 0.999):
        m = P.magnitude_mask(w, s)
        k = max(round(w.size * (1 - s)), 1)
        assert m.dtype == np.uint8 and m.sum() == k
        assert np.abs(w[m == 1]).min() >= np.abs(w[m == 0]).max() if k < w.size else True
    ties = np.array([3.0, 1.0, 1.0, 1.0, 2.0, 1.0])
    np.testing.assert_array_equal(P.magnitude_mask(ties, 0.5), [1, 1, 0, 0, 1, 0])  # lowest index wins ties


@pytest.mark.parametrize("seed", range(40))
def test_magnitude_mask_matches_a_full_sort_on_pruned_tensors(seed):
    # masks are found among nonzero magnitudes only; check against a stable sort of all of them,
    # on tensors full of exact zeros (already pruned) and repeated values, incl. fewer nonzeros than k
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    w = rng.choice([-2.0, -1.0, 0.5, 1.0, 3.0], size=n) if seed % 2 else rng.normal(size=n)
    w[rng.random(n) < rng.uniform(0.0, 0.99)] = 0.0
    for s in (0.0, 0.1, 0.5, 0.8, 0.97):
        k = P.keep_count(n, s)
        expected = np.zeros(n, np.uint8)
        expected[np.argsort(-np.abs(w), kind="stable")[:k]] = 1  # largest first, lowest index among ties
        np.testing.assert_array_equal(P.magnitude_mask(w, s), expected, err_msg=f"n={n} s={s}")
        # a search bound (the previous threshold, in the pruner) changes the speed, never the mask
        for bound in (1e-9, 0.3, 0.5, 1.0, 1.5, 2.5, 1e9, float(np.median(np.abs(w)))):
            mask, threshold = P.magnitude_selection(w, s, bound)
            np.testing.assert_array_equal(mask, expected, err_msg=f"n={n} s={s} bound={bound}")
            assert threshold == P.magnitude_selection(w, s)[1]


def test_keep_count_rounds_like_tfmot():
    # TFMOT computes round(n * (1 - s)) in float32; float64 would give 31 and 34 here
    assert P.keep_count(45, 0.3) == 32
    assert P.keep_count(50, 0.33) == 33
    assert P.keep_count(10, 0.999) == 1 and P.keep_count(0, 0.5) == 0


def test_global_masks_share_one_threshold():
    a = np.linspace(0.01, 1.0, 100)
    b = np.linspace(1.5, 2.0, 50)
    ma, mb = P.global_masks([a, b], 0.5)
    assert ma.sum() + mb.sum() == 75
    assert np.abs(a[ma == 0]).max() <= np.abs(b[mb == 1]).min()
    assert mb.all()  # the large-magnitude tensor loses nothing
    r = P.random_mask((40, 10), 0.75, np.random.default_rng(1))
    assert r.sum() == 100


# ----------------------------------------------------------------------------- selection


def _all_types_model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, name="conv")(inp)
    x = layers.DepthwiseConv2D(3, name="dw")(x)
    x = layers.SeparableConv2D(4, 1, name="sep")(x)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Conv2DTranspose(2, 3, name="convt")(x)
    x = layers.Reshape((36, 2))(x)
    x = layers.LSTM(3, name="lstm", return_sequences=True)(x)
    x = layers.EinsumDense("abc,cd->abd", output_shape=(36, 5), name="einsum")(x)
    x = layers.Dense(2, name="dense")(layers.Flatten()(x))
    tokens = keras.Input((5,), dtype="int32")
    e = layers.Flatten()(layers.Embedding(10, 4, name="emb")(tokens))
    return keras.Model([inp, tokens], layers.Concatenate()([x, e]))


def test_default_prunable_weights_across_layer_types():
    model = _all_types_model()
    names = sorted(w.name for w in P.select(model))
    assert names == sorted(["conv/kernel", "dw/kernel", "sep/depthwise_kernel", "sep/pointwise_kernel",
                            "convt/kernel", "lstm_cell/kernel", "lstm_cell/recurrent_kernel", "einsum/kernel",
                            "dense/kernel", "emb/embeddings"])
    assert P.select(model, ["lstm"])[0].layer is model.get_layer("lstm").cell
    assert {w.name for w in P.select(model, re.compile("d.*"))} == {"dense/kernel", "dw/kernel"}
    assert [w.name for w in P.select(model, layers.Embedding)] == ["emb/embeddings"]
    assert [w.name for w in P.select(model, lambda layer: layer.name == "conv")] == ["conv/kernel"]
    with pytest.raises(ValueError, match="unknown layers \\['nope'\\]"):
        P.select(model, ["nope"])
    with pytest.raises(ValueError, match="nothing to prune"):
        P.select(model, ["bn"])
    with pytest.raises(ValueError, match="nothing to prune"):
        P.Pruner(keras.Sequential([keras.Input((3,)), layers.BatchNormalization()]))


def test_every_layer_type_keeps_its_masks_through_save_and_load(tmp_path):
    model = _all_types_model()
    pruner = P.prune(model, 0.5)
    model.save(tmp_path / "all.keras")
    loaded = keras.models.load_model(tmp_path / "all.keras")
    restored = P.Pruner(loaded)  # finds the masks that came back with the model
    assert set(restored.masks) == set(pruner.masks)
    for name, mask in pruner.get_masks().items():
        np.testing.assert_array_equal(restored.get_masks()[name], mask, err_msg=name)
    assert P.sparsity_report(loaded).iloc[-1]["sparsity"] == pytest.approx(0.5, abs=0.01)


class Gated(layers.Layer):
    """A custom layer declaring its prunable weight."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], 6), initializer="glorot_uniform", name="w")
        self.gate = self.add_weight(shape=(6,), initializer="ones", name="gate")

    def call(self, x):
        return keras.ops.matmul(x, self.w) * self.gate

    def get_prunable_weights(self):
        return [self.w]


def test_custom_layers_declare_prunable_weights():
    model = keras.Sequential([keras.Input((10,)), Gated(name="g")])
    pruner = P.prune(model, 0.5)
    assert list(pruner.masks) == ["g/w"]
    assert np.count_nonzero(to_np(model.layers[0].w)) == 30 and to_np(model.layers[0].gate).all()


# ----------------------------------------------------------------------------- exact zeros


def _mlp(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((20,)), layers.Dense(64, activation="relu", name="h"),
                             layers.Dense(32, activation="relu", name="h2"), layers.Dense(3, name="out")])


def _data(n=512, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 20)).astype("float32"), rng.integers(0, 3, n)


def _logits_loss():
    """The loss of ``_mlp``, whose outputs are logits (read as probabilities they clip to 0 gradient on PyTorch)."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.mark.parametrize("optimizer", [lambda: keras.optimizers.Adam(1e-2), lambda: keras.optimizers.SGD(0.01, momentum=0.9)],
                         ids=["adam", "sgd_momentum"])
def test_pruned_weights_stay_exactly_zero_through_momentum(optimizer):
    model = _mlp()
    model.compile(optimizer(), _logits_loss())
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)  # optimizer slots are warm before pruning
    pruner = P.prune(model, 0.7)
    masks = pruner.get_masks()
    pruned = {w.name: to_np(w.variable) for w in pruner.weights}
    model.fit(x, y, epochs=12, batch_size=32, verbose=0)  # 192 more steps
    for w in pruner.weights:
        values, kept = to_np(w.variable), masks[w.name] == 1
        assert not values[~kept].any()  # exactly zero
        assert np.count_nonzero(values) == kept.sum()
        assert np.mean(values[kept] != pruned[w.name][kept]) > 0.9  # the kept weights trained: zeros are not vacuous
    # the optimizer's momentum for pruned weights is not zero: without the mask they would regrow
    stripped = P.strip(model, copy=False)
    stripped.compile(optimizer(), _logits_loss())
    stripped.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert np.count_nonzero(to_np(stripped.get_layer("h").kernel)) > masks["h/kernel"].sum()


def test_scopes_and_overrides():
    model = _mlp()
    layer_scope = P.prune(model, 0.6, overrides={"out": 0.5})
    report = P.sparsity_report(model).set_index("layer")
    assert report.loc["h", "sparsity"] == pytest.approx(0.6, abs=1e-3)
    assert report.loc["out", "sparsity"] == pytest.approx(0.3, abs=1e-2)
    assert layer_scope.mask_bytes == 20 * 64 + 64 * 32 + 32 * 3  # one byte per weight
    assert all(m.variable.dtype == "bool" for m in layer_scope.masks.values())
    model = _mlp()
    model.get_layer("h2").kernel.assign(model.get_layer("h2").kernel * 10)  # big weights survive global pruning
    P.prune(model, 0.6, scope="global")
    report = P.sparsity_report(model).set_index("layer")
    assert report.loc["total", "sparsity"] == pytest.approx(0.6, abs=1e-3)
    assert report.loc["h2", "sparsity"] < 0.4 and report.loc["h", "sparsity"] > 0.95  # one threshold for all


def _custom_train_step(net, optimizer, loss_fn, pruner):
    """``step(x, y)``: one optimizer step of a hand-written loop, taking gradients the running backend's way.

    TensorFlow: ``GradientTape``; PyTorch: ``backward()``; both then ``optimizer.apply`` (which runs the
    mask constraints). JAX: a jitted ``stateless_call`` + ``jax.grad`` + ``optimizer.stateless_apply`` with
    the masks bound to the optimizer's state, the state read from and written back to the variables
    around each step (so ``pruner.step`` between steps sees and sets the current values).
    """
    variables = net.trainable_variables
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        def step(xb, yb):
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, net(xb))
            optimizer.apply(tape.gradient(loss, variables), variables)

        return step
    if backend == "torch":
        import torch

        def step(xb, yb):
            net.zero_grad()
            loss_fn(yb, net(xb)).backward()
            with torch.no_grad():
                optimizer.apply([v.value.grad for v in variables], variables)

        return step
    assert backend == "jax", backend
    import jax

    optimizer.build(variables)
    bind(optimizer, pruner.mask_variables)  # else the compiled step would hold the masks as constants
    groups = (variables, net.non_trainable_variables, optimizer.variables)

    def loss_of(trainable, non_trainable, xb, yb):
        pred, non_trainable = net.stateless_call(trainable, non_trainable, xb)
        return loss_fn(yb, pred), non_trainable

    @jax.jit
    def pure(trainable, non_trainable, opt_vars, xb, yb):
        (_, non_trainable), grads = jax.value_and_grad(loss_of, has_aux=True)(trainable, non_trainable, xb, yb)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return trainable, non_trainable, opt_vars

    def step(xb, yb):
        state = pure(*([v.value for v in group] for group in groups), xb, yb)
        for group, values in zip(groups, state, strict=True):
            for variable, value in zip(group, values, strict=True):
                variable.assign(value)

    return step


def test_subclassed_model_in_a_custom_training_loop():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.a = layers.Dense(32, activation="relu")
            self.b = layers.Dense(3)

        def call(self, x):
            return self.b(self.a(x))

    keras.utils.set_random_seed(1)
    net = Net()
    x, y = _data()
    net(x[:1])
    schedule = P.PolynomialDecay(0.0, 0.75, begin_step=0, end_step=60, frequency=20)
    pruner = P.Pruner(net, schedule)
    train_step = _custom_train_step(net, keras.optimizers.Adam(1e-2), _logits_loss(), pruner)
    updates = []
    before = to_np(net.a.kernel)
    for step in range(100):
        if pruner.step(step):
            updates.append(step)
        batch = slice((step * 32) % 512, (step * 32) % 512 + 32)
        train_step(x[batch], y[batch])
    assert updates == [0, 20, 40, 60]
    kept = to_np(net.a.kernel) != 0
    assert np.mean(to_np(net.a.kernel)[kept] != before[kept]) > 0.9  # it trained
    assert pruner.sparsity == pytest.approx(0.75, abs=2e-3)
    assert P.sparsity_report(net).iloc[-1]["sparsity"] == pytest.approx(0.75, abs=2e-3)  # zeros kept by apply()


def test_callback_follows_the_schedule_and_warns_when_idle():
    model = _mlp()
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    x, y = _data()
    cb = P.PruningCallback(P.PolynomialDecay(0.0, 0.8, begin_step=5, end_step=45, frequency=10))
    model.fit(x, y, epochs=4, batch_size=32, callbacks=[cb], verbose=0)  # 64 steps
    assert [s for s, _ in cb.updates] == [5, 15, 25, 35, 45]
    assert P.sparsity_report(model).iloc[-1]["sparsity"] == pytest.approx(0.8, abs=2e-3)
    with pytest.warns(UserWarning, match="never updates the masks.*steps 64 to 79.*from step 1000"):
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[P.PruningCallback(P.ConstantSparsity(0.5, 1000))])
    with pytest.warns(UserWarning, match="reaches sparsity.*short of the schedule's target 0.9000"):
        model.fit(x, y, epochs=1, batch_size=32, verbose=0,
                  callbacks=[P.PruningCallback(P.PolynomialDecay(0.0, 0.9, 80, 5000, frequency=5))])


def test_bad_arguments():
    model = _mlp()
    with pytest.raises(ValueError, match="sparsity.*\\[0, 1\\)"):
        P.prune(model, 1.0)
    with pytest.raises(ValueError, match="scope.*layer.*global"):
        P.Pruner(model, scope="both")
    with pytest.raises(ValueError, match="overrides.*'nope'"):
        P.Pruner(model, overrides={"nope": 0.5})
    with pytest.raises(ValueError, match="exactly one"):
        P.PruningCallback()
    with pytest.raises(TypeError, match="schedule"):
        P.Pruner(model, schedule=0.5)
    with pytest.raises(ValueError, match="no `schedule`"):
        P.Pruner(model).step(0)
    with pytest.raises(ValueError, match="not built"):
        P.Pruner(keras.Sequential([layers.Dense(3)]))


# ----------------------------------------------------------------------------- persistence

RESUME = """
import json, sys
import keras, numpy as np
import kerasinit
from kerasinit import pruning as P
model = keras.models.load_model(sys.argv[1])
masks = {f"{l.name}/kernel": np.asarray(l.kernel_constraint.numpy()).tolist() for l in model.layers}
backend = keras.backend.backend()
step0 = int(model.optimizer.iterations)
rng = np.random.default_rng(0)
x, y = rng.normal(size=(512, 20)).astype("float32"), rng.integers(0, 3, 512)
cb = P.PruningCallback(P.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=90, frequency=30))
model.fit(x, y, epochs=4, batch_size=32, callbacks=[cb], verbose=0)
report = P.sparsity_report(model)
print(json.dumps({"masks": masks, "step0": step0, "updates": cb.updates, "final": float(report.iloc[-1]["sparsity"]),
                  "mask_type": type(model.layers[0].kernel.constraint).__name__, "backend": backend}))
"""


def _run_on_this_backend(code: str, *args: str) -> str:
    """``conftest.run_python`` on the running Keras backend (it forces TensorFlow); stdout."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": keras.backend.backend()}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, f"subprocess failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return proc.stdout


def test_masks_and_step_survive_save_and_load_in_a_fresh_process(tmp_path):
    model = _mlp()
    model.compile(keras.optimizers.Adam(1e-2), _logits_loss())
    x, y = _data()
    cb = P.PruningCallback(P.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=90, frequency=30))
    with pytest.warns(UserWarning, match="step 30.*short of the schedule's target 0.8000"):  # stopped mid-schedule
        model.fit(x, y, epochs=3, batch_size=32, callbacks=[cb], verbose=0)  # 48 steps: updates at 0, 30
    saved_masks = cb.pruner.get_masks()
    saved_sparsity = P.sparsity_report(model).iloc[-1]["sparsity"]
    model.save(tmp_path / "mid.keras")
    out = json.loads(_run_on_this_backend(RESUME, str(tmp_path / "mid.keras")).strip().splitlines()[-1])
    assert out["backend"] == keras.backend.backend()  # loaded where it was saved
    assert out["step0"] == 48 and out["mask_type"] == "MaskConstraint"
    for name, mask in out["masks"].items():
        np.testing.assert_array_equal(np.array(mask, dtype="uint8"), saved_masks[name])
    assert saved_sparsity > 0.4
    assert [s for s, _ in out["updates"]] == [60, 90]  # the schedule continues from the saved step
    assert out["final"] == pytest.approx(0.8, abs=2e-3)


def test_weight_checkpoints_keep_masks(tmp_path):
    model = _mlp()
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    x, y = _data()
    pruner = P.prune(model, 0.5)
    model.save_weights(tmp_path / "ckpt.weights.h5")
    fresh = _mlp(seed=3)
    fresh_pruner = P.Pruner(fresh)  # masks exist (all ones) before loading, as in any resume
    fresh.load_weights(tmp_path / "ckpt.weights.h5")
    for name, mask in pruner.get_masks().items():
        np.testing.assert_array_equal(fresh_pruner.get_masks()[name], mask)


def test_strip_gives_a_plain_model_that_loads_without_kerasinit(tmp_path):
    model = _mlp()
    P.prune(model, 0.6)
    plain = P.strip(model)
    assert not any(type(layer.kernel_constraint).__name__ == "MaskConstraint" for layer in plain.layers)
    assert type(model.layers[0].kernel_constraint).__name__ == "MaskConstraint"  # original still pruned
    plain.save(tmp_path / "plain.keras")
    out = run_python(
        """
        import sys, keras, numpy as np
        m = keras.models.load_model(sys.argv[1])
        print(sum(int(np.count_nonzero(l.kernel.numpy())) for l in m.layers), "kerasinit" in sys.modules)
        """,
        str(tmp_path / "plain.keras"),
    )
    nonzeros, imported = out.split()
    assert int(nonzeros) == int(P.sparsity_report(model).iloc[-1]["nonzeros"]) and imported == "False"
    assert math.isclose(P.sparsity_report(plain).iloc[-1]["sparsity"], 0.6, abs_tol=2e-3)


def test_initializers_and_pruning_together():
    """A pruned model built with kerasinit initializers: report, strip, and a warning-free run."""
    model = keras.Sequential([keras.Input((20,)), layers.Dense(16, kernel_initializer=kerasinit.KwonReluUniform(seed=1)),
                              layers.Dense(3, kernel_initializer="kerasinit>XavierUniform")])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        P.prune(model, 0.5)
    assert P.sparsity_report(model).iloc[-1]["sparsity"] == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_mask_select_kernel_matches_numpy(dtype):
    # the constraint's backend fast path (TensorFlow: Select, not keras.ops.where's SelectV2)
    from kerasinit.backend.select import keep_where

    rng = np.random.default_rng(3)
    w = rng.normal(size=(37, 11))
    w[0, :3] = [np.nan, np.inf, -0.0]
    mask = rng.random(w.shape) < 0.5
    mask[0, :3] = True
    got = to_np(keras.ops.cast(keep_where(mask, keras.ops.cast(w, dtype)), "float64"))
    expected = np.where(mask, to_np(keras.ops.cast(keras.ops.cast(w, dtype), "float64")), 0.0)
    np.testing.assert_array_equal(got, expected)
    assert np.signbit(got[0, 2]) and not np.signbit(got[~mask]).any()  # kept -0.0 stays, pruned is +0


def test_apply_masks_and_strip_zero_inf_and_nan_weights():
    # a multiply by the mask would leave NaN (inf·0, NaN·0) and -0.0 at pruned positions
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, name="d")])
    pruner = P.prune(model, 0.5)
    mask = pruner.get_masks()["d/kernel"]
    w = np.where(mask == 1, 1.0, np.array([np.inf, np.nan, -2.0] * 4).reshape(4, 3)).astype("float32")
    model.layers[0].kernel.assign(w)
    pruner.apply_masks()
    got = to_np(model.layers[0].kernel)
    np.testing.assert_array_equal(got, np.where(mask == 1, 1.0, 0.0))
    assert not np.signbit(got).any()
    model.layers[0].kernel.assign(w)
    plain = P.strip(model)
    np.testing.assert_array_equal(to_np(plain.layers[0].kernel), np.where(mask == 1, 1.0, 0.0))


# ----------------------------------------------------------------------------- issue 10: persistence, bad input


def test_lora_and_quantized_layers_are_refused_by_name():
    lora = _mlp()
    lora.get_layer("h").enable_lora(2)
    with pytest.raises(ValueError, match=r"'h/kernel'.*LoRA enabled"):
        P.Pruner(lora)
    quantized = _mlp()
    quantized.get_layer("h").quantize("int8")
    with pytest.raises(ValueError, match=r"'h/kernel'.*quantized \('int8'\)"):
        P.Pruner(quantized, layers="h")


def _deprecations(run) -> list[tuple[str, list[str]]]:
    """The DeprecationWarnings ``run()`` emits: ``(file:line, the kerasinit frames on the stack as it was emitted)``."""
    package = os.path.dirname(kerasinit.__file__) + os.sep
    seen: list[tuple[str, list[str]]] = []

    def show(message, category, filename, lineno, file=None, line=None):  # called where the warning is raised
        if issubclass(category, DeprecationWarning):
            ours = [f"{f.filename}:{f.lineno}" for f in traceback.extract_stack() if f.filename.startswith(package)]
            seen.append((f"{filename}:{lineno}", ours))

    with warnings.catch_warnings():  # restores showwarning
        warnings.simplefilter("always")
        warnings.showwarning = show
        run()
    return seen


def test_pruning_and_monitor_add_no_numpy_deprecation_warnings():
    # NumPy 2 warns on every np.array(x) of a tensor whose __array__ takes no `copy` (torch, TF variables).
    # Keras's own fit does that on PyTorch (keras/src/backend/torch/core.py, 11 warnings here); kerasinit
    # must add none: none raised below a kerasinit frame, and the same ones as the same fit without kerasinit
    x, y = np.ones((64, 20), "float32"), np.zeros(64, "int32")

    def plain():
        model = _mlp()
        model.compile("adam", _logits_loss())
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)

    def pruned_and_monitored():
        model = _mlp()
        model.compile("adam", _logits_loss())
        pruner = P.prune(model, 0.5)
        monitor = VarianceMonitor(probe=(x[:8], y[:8]))
        model.fit(x, y, epochs=2, batch_size=16, verbose=0,
                  callbacks=[P.PruningCallback(P.ConstantSparsity(0.6, 0, frequency=1)), monitor])
        assert len(monitor.history) > 0
        P.sparsity_report(model), pruner.get_masks(), pruner.sparsity
        P.strip(model)

    keras_only, with_kerasinit = _deprecations(plain), _deprecations(pruned_and_monitored)
    assert [(where, ours) for where, ours in with_kerasinit if ours] == []
    assert sorted(where for where, _ in with_kerasinit) == sorted(where for where, _ in keras_only)


class _Block(keras.layers.Layer):
    """A custom layer that builds its sublayers in code (no constraint in its config), like KerasHub's."""

    def __init__(self, units=8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.inner = layers.Dense(units, activation="relu", name="inner")
        self.proj = layers.Dense(units, name="proj")

    def call(self, x):
        return x + self.proj(self.inner(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_masks_of_code_built_sublayers_come_back_with_pruning_load_model(tmp_path):
    keras.saving.register_keras_serializable("kerasinit_tests")(_Block)
    model = keras.Sequential([keras.Input((8,)), _Block(8, name="block"), layers.Dense(3, name="out")])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.warns(UserWarning, match=r"inner/kernel.*kerasinit.pruning.load_model"):
        pruner = P.prune(model, 0.5)
    masks = pruner.get_masks()
    model.save(tmp_path / "m.keras")
    plain = P.sparsity_report(keras.models.load_model(tmp_path / "m.keras")).set_index("weight")
    assert not plain["masked"].iloc[:-1].all()  # what Keras alone gives back: the block's sublayers unmasked
    loaded = P.load_model(tmp_path / "m.keras")
    report = P.sparsity_report(loaded)
    assert report.masked.all() and len(report) == 4
    again = {w.name: m.numpy() for w, m in P.masked_weights(loaded)}
    assert again.keys() == masks.keys() and all(np.array_equal(again[k], masks[k]) for k in masks)
    x, y = np.random.default_rng(0).normal(size=(64, 8)).astype("float32"), np.zeros(64, "int32")
    loaded.fit(x, y, epochs=2, batch_size=16, verbose=0)  # the restored masks hold through training
    assert (P.sparsity_report(loaded).sparsity.iloc[:-1] - 0.5).abs().max() < 0.02


def test_restore_masks_leaves_unpruned_weights_unmasked(tmp_path):
    keras.saving.register_keras_serializable("kerasinit_tests")(_Block)
    model = keras.Sequential([keras.Input((8,)), _Block(8, name="block"), layers.Dense(3, name="out")])
    with pytest.warns(UserWarning):
        P.prune(model, 0.5, layers=["inner"])
    model.save(tmp_path / "m.keras")
    loaded = P.load_model(tmp_path / "m.keras")
    assert dict(zip(P.sparsity_report(loaded).layer, P.sparsity_report(loaded).masked, strict=True)) == {
        "inner": True, "proj": False, "out": False, "total": False}


# ----------------------------------------------------------------------------- every backend


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend_neutral_tests_pass_on_jax_and_torch(backend):
    if backend == keras.backend.backend():
        pytest.skip(f"the tests in BACKEND_NEUTRAL run in-process on {backend}")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    here = Path(__file__).resolve()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *(f"{here}::{name}" for name in BACKEND_NEUTRAL)],
                          cwd=here.parents[2], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert re.search(r"\b5 passed\b", proc.stdout) and "skipped" not in proc.stdout, proc.stdout[-2000:]
