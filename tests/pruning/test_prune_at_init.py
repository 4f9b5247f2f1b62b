"""Pruning at initialization (issue 13): scores against NumPy references, SynFlow conservation,
ERK densities, N:M groups, fixed masks through ``fit``; every method on TensorFlow here and on
JAX and PyTorch in one subprocess per backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from kerasinit.pruning import (
    erk_densities,
    global_masks,
    keep_count,
    n_m_mask,
    prune,
    prune_at_init,
)
from kerasinit.pruning.scores import compute_scores
from kerasinit.pruning.selection import select

# One script for every backend: tiny MLP scored by SNIP and GraSP against float64 NumPy finite
# differences, every method through prune_at_init, then fit with the masks fixed (no callback).
BACKEND_SCRIPT = r'''
import json
import keras
import numpy as np
from kerasinit.pruning import prune_at_init
from kerasinit.pruning.scores import compute_scores
from kerasinit.pruning.selection import select

def tiny(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(2)])
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype("float32") * 0.8 for w in model.get_weights()])
    return model

def data(seed=1, n=6):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")

def np_loss(flat, shapes, batches):
    parts, start = [], 0
    for s in shapes:
        size = int(np.prod(s)); parts.append(flat[start:start + size].reshape(s)); start += size
    w1, b1, w2, b2 = parts
    return np.mean([np.mean((np.tanh(x @ w1 + b1) @ w2 + b2 - y) ** 2) for x, y in batches])

def np_grad(flat, shapes, batches, h=1e-5):
    g = np.zeros_like(flat)
    for i in range(flat.size):
        e = np.zeros_like(flat); e[i] = h
        g[i] = (np_loss(flat + e, shapes, batches) - np_loss(flat - e, shapes, batches)) / (2 * h)
    return g

def reference(model, batches):
    values = [w.astype("float64") for w in model.get_weights()]
    shapes = [v.shape for v in values]
    flat = np.concatenate([v.ravel() for v in values])
    batches = [(x.astype("float64"), y.astype("float64")) for x, y in batches]
    g = np_grad(flat, shapes, batches)
    on_kernels = np.concatenate([np.full(int(np.prod(s)), i % 2 == 0) for i, s in enumerate(shapes)])
    v = np.where(on_kernels, g, 0.0)  # GraSP: g and H over the pruned kernels only, biases held fixed
    eps = 1e-3 / np.linalg.norm(v)
    hg = (np_grad(flat + eps * v, shapes, batches) - np_grad(flat - eps * v, shapes, batches)) / (2 * eps)
    def kernels(a):
        out, start = [], 0
        for s in shapes:
            size = int(np.prod(s)); out.append(a[start:start + size].reshape(s)); start += size
        return [out[0], out[2]]
    w = kernels(flat)
    snip = [np.abs(gi * wi) for gi, wi in zip(kernels(g), w)]
    grasp = [-wi * hi for wi, hi in zip(w, kernels(hg))]
    return snip, grasp

def rel_err(ours, ref):
    return max(float(np.max(np.abs(ours[k] - r)) / np.max(np.abs(r))) for k, r in zip(ours, ref))

out = {"backend": keras.backend.backend()}
model = tiny()
batches = [data(1), data(2)]
ref_snip, ref_grasp = reference(model, batches)
weights = select(model)
snip = compute_scores(model, weights, "snip", batches, loss="mse").scores
out["snip_err"] = rel_err(snip, ref_snip)
for how in ("double-backprop", "finite-difference"):
    s = compute_scores(model, weights, "grasp", batches, loss="mse", hessian=how)
    out[f"grasp_err_{how}"] = rel_err(s.scores, ref_grasp)
    out[f"grasp_hessian_{how}"] = s.hessian

if keras.backend.backend() == "torch":  # PyTorch's fused CPU attention kernel has no second derivative
    inp = keras.Input((8, 16))
    mha = keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(keras.layers.MultiHeadAttention(2, 8)(inp, inp))))
    xa = np.random.default_rng(3).normal(size=(8, 8, 16)).astype("float32")
    s = compute_scores(mha, select(mha), "grasp", (xa, np.arange(8) % 3),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    out["mha_grasp"] = {"hessian": s.hessian, "notes": s.notes, "finite": all(bool(np.isfinite(v).all()) for v in s.scores.values())}

from kerasinit.pruning import shrink, strip
if keras.backend.backend() != "jax":  # NumPy and layer calls only; JAX's eager dispatch costs 7 s here for nothing new
  keras.utils.set_random_seed(5)
  chain = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(6, 3), keras.layers.BatchNormalization(),
                            keras.layers.ReLU(), keras.layers.Flatten(), keras.layers.Dense(8, activation="relu"),
                            keras.layers.Dense(3)])
  prune_at_init(chain, 0.5, "magnitude", distribution="uniform", granularity="channel")
  small = shrink(strip(chain))
  xs = np.random.default_rng(5).normal(size=(4, 6, 6, 2)).astype("float32")
  out["shrink"] = {"params": [small.count_params(), chain.count_params()],
                   "max_diff": float(np.abs(keras.ops.convert_to_numpy(small(xs)) - keras.ops.convert_to_numpy(chain(xs))).max())}

def conv_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((6, 6, 2)), keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.BatchNormalization(),
        keras.layers.Flatten(), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3),
    ])

rng = np.random.default_rng(0)
x = rng.normal(size=(16, 6, 6, 2)).astype("float32")
y = (np.arange(16) % 3).astype("int32")
out["methods"] = {}
for method in ("magnitude", "random", "snip", "grasp", "synflow"):
    model = conv_model()
    if method == "snip":  # a train step compiled before the masks existed must not survive
        model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    before = [v.copy() for v in model.get_weights()]
    pruner = prune_at_init(model, 0.8, method, (x, y), seed=0, iterations=5 if method == "synflow" else None,
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    masks = pruner.get_masks()
    kept_equal = all(np.array_equal(keras.ops.convert_to_numpy(w.variable)[masks[w.name] == 1], np.asarray(b)[masks[w.name] == 1])
                     for w, b in zip(pruner.weights, [before[0], before[6], before[8]]))
    nonzero_pruned, moved, fitted = None, None, method in ("snip", "magnitude")
    if fitted:  # the masks are the same machinery whatever chose them: fit two of them
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        nonzero_pruned = sum(int(np.count_nonzero(keras.ops.convert_to_numpy(w.variable)[masks[w.name] == 0]))
                             for w in pruner.weights)
        moved = any(not np.array_equal(keras.ops.convert_to_numpy(w.variable)[masks[w.name] == 1], b[masks[w.name] == 1])
                    for w, b in zip(pruner.weights, [before[0], before[6], before[8]]))
    out["methods"][method] = {"sparsity": pruner.sparsity, "nonzero_pruned_after_fit": nonzero_pruned,
                              "kept_unchanged_at_prune": kept_equal, "kept_trained": moved,
                              "fitted": fitted, "hessian": pruner.scores.hessian}
print(json.dumps(out))
'''


def run_backend(backend: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(BACKEND_SCRIPT)], capture_output=True, text=True,
                          timeout=600, env=env)
    if proc.returncode != 0:
        raise AssertionError(f"{backend} subprocess failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_backend_report(out: dict) -> None:
    assert out["snip_err"] < 1e-3, out
    assert out["grasp_err_double-backprop"] < 1e-4, out
    assert out["grasp_err_finite-difference"] < 1e-3, out
    assert out["grasp_hessian_double-backprop"] == "double-backprop"
    assert out["grasp_hessian_finite-difference"] == "finite-difference"
    for method, r in out["methods"].items():
        assert abs(r["sparsity"] - 0.8) < 0.01, (method, r)
        assert r["kept_unchanged_at_prune"], (method, r)
        if r["fitted"]:
            assert r["nonzero_pruned_after_fit"] == 0, (method, r)
            assert r["kept_trained"], (method, r)
    assert {m for m, r in out["methods"].items() if r["fitted"]} == {"snip", "magnitude"}
    assert out["methods"]["grasp"]["hessian"] == "double-backprop"
    if out["backend"] != "jax":
        assert out["shrink"]["params"][0] < out["shrink"]["params"][1] // 2 and out["shrink"]["max_diff"] < 1e-5, out["shrink"]
    if out["backend"] == "torch":  # no double backward of the fused attention kernel: finite differences, and why
        assert out["mha_grasp"]["finite"]
        assert out["mha_grasp"]["hessian"] == "finite-difference" and "double backprop failed" in out["mha_grasp"]["notes"][0]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_every_method_on_backend(backend):
    out = run_backend(backend)
    print(backend, json.dumps(out))
    assert out["backend"] == backend
    check_backend_report(out)


def test_every_method_on_tensorflow_in_process():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the in-process run is the TensorFlow one")
    namespace: dict = {}
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(compile(BACKEND_SCRIPT, "backend_script", "exec"), namespace)  # noqa: S102 — our own script
    out = json.loads(buffer.getvalue().strip().splitlines()[-1])
    print(json.dumps(out))
    check_backend_report(out)


# ----------------------------------------------------------------- SynFlow
def _relu_mlp(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((5,))] + [keras.layers.Dense(n, activation="relu", use_bias=False) for n in (7, 6, 4)]
                            + [keras.layers.Dense(3, use_bias=False)])


def test_synflow_conserves_flow_through_every_hidden_neuron():
    model = _relu_mlp()
    before = [w.copy() for w in model.get_weights()]
    s = compute_scores(model, select(model), "synflow")
    kernels = list(s.scores.values())
    totals = [k.sum() for k in kernels]
    np.testing.assert_allclose(totals, totals[0], rtol=1e-5)  # every layer carries the same total flow R
    for incoming, outgoing in zip(kernels[:-1], kernels[1:], strict=True):
        np.testing.assert_allclose(incoming.sum(axis=0), outgoing.sum(axis=1), rtol=1e-5)  # per neuron
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))  # signed weights untouched
    assert all((k >= 0).all() for k in kernels)


def test_synflow_iterations_prune_to_target_and_keep_signed_weights():
    model = _relu_mlp(1)
    before = [w.copy() for w in model.get_weights()]
    pruner = prune_at_init(model, 0.9, "synflow", iterations=10)
    assert pruner.iterations == 10 and pruner.method == "synflow"
    total = sum(w.size for w in before)
    assert sum(int(m.sum()) for m in pruner.get_masks().values()) == keep_count(total, 0.9)
    for w, b, m in zip(model.get_weights(), before, pruner.get_masks().values(), strict=True):
        np.testing.assert_array_equal(w, b * m)
    # SynFlow avoids layer collapse: every layer keeps weights even at 90% (magnitude may not on other nets)
    assert all(m.sum() > 0 for m in pruner.get_masks().values())


# ----------------------------------------------------------------- distributions
def _conv_dense(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((8, 8, 4)), keras.layers.Conv2D(8, 3, name="conv2d"), keras.layers.Conv2D(16, 3, name="conv2d_1"),
        keras.layers.Flatten(), keras.layers.Dense(12, name="dense"), keras.layers.Dense(4, name="dense_1"),
    ])


def test_erk_densities_follow_the_formula_and_the_target():
    shapes = [(3, 3, 4, 8), (3, 3, 8, 16), (256, 12), (12, 4)]
    sizes = np.array([np.prod(s) for s in shapes], float)
    for density in (0.05, 0.2, 0.5):
        d = np.array(erk_densities(shapes, density))
        np.testing.assert_allclose((d * sizes).sum(), density * sizes.sum(), rtol=1e-9)
        raw = np.array([sum(s) / np.prod(s) for s in shapes])
        sparse = d < 1
        assert sparse.any() and (d <= 1 + 1e-12).all()
        ratio = d[sparse] / raw[sparse]
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)  # density ∝ Σ dims / Π dims
        assert (raw[~sparse] * ratio[0] >= 1 - 1e-12).all()  # dense only where the formula exceeds 1
    # 0.5: the small output kernel (12, 4) would exceed 1 and is kept dense
    assert erk_densities(shapes, 0.5)[3] == 1.0


def test_prune_at_init_erk_uniform_and_mapping():
    model = _conv_dense()
    weights = select(model)
    pruner = prune_at_init(model, 0.8, "magnitude", distribution="erk")
    dens = erk_densities([tuple(w.variable.shape) for w in weights], 0.2)
    for w, d in zip(weights, dens, strict=True):
        assert int(pruner.get_masks()[w.name].sum()) == keep_count(int(np.prod(w.variable.shape)), 1 - d)
    assert abs(pruner.sparsity - 0.8) < 0.01

    model = _conv_dense()
    pruner = prune_at_init(model, 0.7, "random", distribution="uniform", seed=3)
    for m in pruner.get_masks().values():
        assert int(m.sum()) == keep_count(m.size, 0.7)

    model = _conv_dense()
    pruner = prune_at_init(model, 0.5, "magnitude", distribution={"dense_1": 0.0, "conv2d": 0.9})
    masks = pruner.get_masks()
    assert masks["dense_1/kernel"].all()
    assert int(masks["conv2d/kernel"].sum()) == keep_count(masks["conv2d/kernel"].size, 0.9)
    assert int(masks["dense/kernel"].sum()) == keep_count(masks["dense/kernel"].size, 0.5)


def test_global_magnitude_matches_the_global_magnitude_masks():
    model = _conv_dense()
    values = [w.copy() for w in model.get_weights()[0::2]]
    pruner = prune_at_init(model, 0.85, "magnitude")
    for ours, ref in zip(pruner.get_masks().values(), global_masks(values, 0.85), strict=True):
        np.testing.assert_array_equal(ours, ref)
    other = _conv_dense()
    reference = prune(other, 0.85, scope="global").get_masks()
    assert all(np.array_equal(reference[k], v) for k, v in pruner.get_masks().items())


def test_bad_arguments_name_the_argument_and_the_choices():
    model = _conv_dense()
    with pytest.raises(ValueError, match=r"`distribution` must be one of \['global', 'uniform', 'erk'\]"):
        prune_at_init(model, 0.5, "magnitude", distribution="lognormal")
    with pytest.raises(ValueError, match=r"`method` must be one of \['magnitude', 'random', 'snip', 'grasp', 'synflow'\]"):
        prune_at_init(model, 0.5, "fisher")
    with pytest.raises(ValueError, match="`distribution` names \\['nope'\\]"):
        prune_at_init(model, 0.5, "magnitude", distribution={"nope": 0.5})
    with pytest.raises(ValueError, match="`sparsity` must be in"):
        prune_at_init(model, 1.0, "magnitude")
    with pytest.raises(ValueError, match="`data` is required"):
        prune_at_init(model, 0.5, "snip", loss="mse")
    with pytest.raises(ValueError, match="`ablation` must be None or one or more of"):
        prune_at_init(model, 0.5, "magnitude", ablation="scramble")
    with pytest.raises(ValueError, match="`pattern` must be a string 'N:M'"):
        prune_at_init(model, None, "magnitude", pattern="2-4")
    assert all(layer.get_config().get("kernel_constraint") is None for layer in model.layers)  # nothing attached


# ----------------------------------------------------------------- N:M
def test_n_m_masks_group_by_group():
    model = _conv_dense()
    values = {w.name: np.abs(np.asarray(w.variable)) for w in select(model)}
    pruner = prune_at_init(model, None, "magnitude", pattern="2:4")
    assert abs(pruner.sparsity - 0.5) < 1e-12
    axes = {"conv2d/kernel": 2, "conv2d_1/kernel": 2, "dense/kernel": 0, "dense_1/kernel": 0}
    for name, mask in pruner.get_masks().items():
        v = np.moveaxis(values[name], axes[name], -1)
        m = np.moveaxis(mask, axes[name], -1)
        groups_v = v.reshape(-1, 4)
        groups_m = m.reshape(-1, 4)
        assert (groups_m.sum(axis=1) == 2).all(), name
        for gv, gm in zip(groups_v, groups_m, strict=True):  # the two kept are the two largest
            assert gv[gm == 1].min() >= gv[gm == 0].max()


def test_n_m_along_einsum_and_errors():
    scores = np.arange(24, dtype=float).reshape(6, 4)
    mask = n_m_mask(scores, 1, 3, axis=0)
    assert mask.shape == (6, 4) and (mask.reshape(2, 3, 4).sum(axis=1) == 1).all()
    assert mask[2].all() and mask[5].all()  # the largest of each group of rows
    with pytest.raises(ValueError, match="not a multiple of M=4"):
        n_m_mask(scores, 2, 4, axis=0)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    layer = keras.layers.EinsumDense("ab,bc->ac", output_shape=6)
    model = keras.Model(inputs, layer(inputs))
    pruner = prune_at_init(model, 0.5, "magnitude", pattern="2:4")
    assert (pruner.get_masks()[f"{layer.name}/kernel"].reshape(2, 4, 6).sum(axis=1) == 2).all()
    with pytest.raises(ValueError, match="contradicts pattern"):
        prune_at_init(model, 0.75, "magnitude", pattern="2:4")
    odd = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    with pytest.raises(ValueError, match="not a multiple of M=4"):
        prune_at_init(odd, None, "magnitude", pattern="2:4")


# ----------------------------------------------------------------- ablations and fit
def test_ablations_shuffle_reinit_invert():
    base = prune_at_init(_conv_dense(), 0.8, "magnitude", distribution="uniform").get_masks()
    shuffled = prune_at_init(_conv_dense(), 0.8, "magnitude", distribution="uniform", ablation="shuffle", seed=0)
    for name, m in shuffled.get_masks().items():
        assert m.sum() == base[name].sum() and not np.array_equal(m, base[name])
    model = _conv_dense()
    before = model.get_weights()[0::2]
    inverted = prune_at_init(model, 0.5, "magnitude", distribution="uniform", ablation="invert")
    for b, m in zip(before, inverted.get_masks().values(), strict=True):
        assert np.abs(b)[m == 1].max() <= np.abs(b)[m == 0].min()  # the smallest are kept
    model = _conv_dense()
    before = model.get_weights()[0::2]
    reinit = prune_at_init(model, 0.8, "magnitude", ablation=["reinit"], seed=1)
    assert reinit.ablation == ("reinit",)
    for w, b, m in zip(reinit.weights, before, reinit.get_masks().values(), strict=True):
        v = np.asarray(w.variable)
        assert (v[m == 0] == 0).all() and not np.allclose(v[m == 1], b[m == 1])
        assert abs(v[m == 1].std() / b.std() - 1) < 0.5  # drawn from the same initializer


def test_fixed_masks_hold_through_fit_with_momentum():
    model = _conv_dense()
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 8, 8, 4)).astype("float32"), rng.normal(size=(16, 4)).astype("float32")
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    model.fit(x, y, epochs=1, verbose=0)  # a step traced before the masks exist is retraced
    pruner = prune_at_init(model, 0.9, "snip", (x, y))
    masks = pruner.get_masks()
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    for w in pruner.weights:
        assert (np.asarray(w.variable)[masks[w.name] == 0] == 0).all()
    assert pruner.get_masks().keys() == masks.keys()


def test_synflow_scores_the_logits_of_a_softmax_output_model():
    logits = _relu_mlp(2)
    keras.utils.set_random_seed(2)
    soft = keras.Sequential([keras.Input((5,))] + [keras.layers.Dense(n, activation="relu", use_bias=False) for n in (7, 6, 4)]
                            + [keras.layers.Dense(3, use_bias=False, activation="softmax")])
    soft.set_weights(logits.get_weights())
    ours = compute_scores(soft, select(soft), "synflow").scores
    ref = compute_scores(logits, select(logits), "synflow").scores
    for a, b in zip(ours.values(), ref.values(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert soft.layers[-1].activation is keras.activations.softmax  # restored
    normalized = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3), keras.layers.Softmax()])
    with pytest.raises(ValueError, match="does not depend on the weights"):
        compute_scores(normalized, select(normalized), "synflow")


def test_prune_at_init_command_trains_each_method_and_writes_results(tmp_path, capsys):
    from kerasinit.cli import main

    out = tmp_path / "pai"
    code = main(["prune-at-init", "--model", "mlp", "--depth", "1", "--width", "16", "--dataset", "digits",
                 "--methods", "snip,random", "--sparsities", "0.7", "--epochs", "1", "--iterations", "3",
                 "--with-lottery", "--out", str(out), "--json", "--quiet"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert [(r["method"], r["sparsity"]) for r in data["summary"]] == [("snip", 0.7), ("random", 0.7)]
    # IMP reference: dense round 0 and two rounds at rate 0.5 (output layer at half rate)
    assert len(data["lottery"]) == 3 and data["lottery"][0]["sparsity"] == 0.0
    assert 0.6 < data["lottery"][-1]["sparsity"] < 0.75
    for row in data["rows"]:
        assert abs(row["achieved_sparsity"] - row["sparsity"]) < 0.01 and 0.0 <= row["test_accuracy"] <= 1.0
    # the IMP reference run keeps its own resumable folder
    assert sorted(p.name for p in out.iterdir()) == ["accuracy_vs_sparsity.png", "lottery", "results.json", "runs.csv"]
    assert main(["prune-at-init", "--methods", "fisher", "--out", str(out), "--quiet"]) == 2
    assert "argument --methods: 'fisher' is not a pruning score" in capsys.readouterr().err


def test_snip_on_a_softmax_output_scores_the_logits_cross_entropy():
    keras.utils.set_random_seed(4)
    logits = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(3)])
    soft = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(3, activation="softmax")])
    soft.set_weights(logits.get_weights())
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(10, 6)).astype("float32") * 20, np.arange(10) % 3  # large inputs: saturated softmax
    ours = compute_scores(soft, select(soft), "snip", (x, y), loss="sparse_categorical_crossentropy").scores
    ref = compute_scores(logits, select(logits), "snip", (x, y),
                         loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)).scores
    for a, b in zip(ours.values(), ref.values(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-9)
    assert soft.layers[-1].activation is keras.activations.softmax


def test_channel_granularity_prunes_whole_output_channels_by_norm():
    model = _conv_dense()
    values = {w.name: np.asarray(w.variable).copy() for w in select(model)}
    pruner = prune_at_init(model, 0.5, "magnitude", distribution="uniform", granularity="channel", norm="l1")
    assert pruner.granularity == "channel"
    for name, mask in pruner.get_masks().items():
        v = values[name].reshape(-1, values[name].shape[-1])  # output channels last for Conv2D and Dense
        m = mask.reshape(-1, mask.shape[-1])
        kept = m.all(axis=0)
        assert (m.any(axis=0) == kept).all()  # every channel all kept or all pruned
        assert kept.sum() == keep_count(v.shape[1], 0.5)
        norms = np.abs(v).sum(axis=0)
        assert norms[kept].min() >= norms[~kept].max()  # the largest L1 norms kept (ln_structured's ranking)
    shuffled = prune_at_init(_conv_dense(), 0.5, "snip", (np.ones((2, 8, 8, 4), "float32"), np.zeros((2, 4), "float32")),
                             distribution="erk", granularity="channel", ablation="shuffle", seed=0, loss="mse")
    for mask in shuffled.get_masks().values():
        m = mask.reshape(-1, mask.shape[-1])
        assert (m.any(axis=0) == m.all(axis=0)).all()
    with pytest.raises(ValueError, match="granularity 'channel' prunes each layer's channels"):
        prune_at_init(_conv_dense(), 0.5, "magnitude", granularity="channel")
    with pytest.raises(ValueError, match=r"`granularity` must be one of \['weight', 'channel'\]"):
        prune_at_init(_conv_dense(), 0.5, "magnitude", granularity="block")


# ----------------------------------------------------------------- GraSP temperature
def _np_cross_entropy_grasp(values, batches, temperature, h=1e-5):
    """GraSP's −w ⊙ (H g) for Dense(3, tanh) -> Dense(3) logits and mean CE(softmax(z / T), y), by central differences."""
    shapes = [v.shape for v in values]
    flat = np.concatenate([v.ravel().astype("float64") for v in values])

    def unflat(a):
        out, start = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            out.append(a[start:start + size].reshape(shape))
            start += size
        return out

    def loss(a):
        w1, b1, w2, b2 = unflat(a)
        total = 0.0
        for x, y in batches:
            z = (np.tanh(x @ w1 + b1) @ w2 + b2) / temperature
            z = z - z.max(axis=1, keepdims=True)
            total += np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y])
        return total / len(batches)

    def grad(a):
        g = np.zeros_like(a)
        for i in range(a.size):
            e = np.zeros_like(a)
            e[i] = h
            g[i] = (loss(a + e) - loss(a - e)) / (2 * h)
        return g

    g = grad(flat)
    on_kernels = np.concatenate([np.full(int(np.prod(s)), i % 2 == 0) for i, s in enumerate(shapes)])
    v = np.where(on_kernels, g, 0.0)  # g and H over the pruned kernels only, the biases held fixed
    eps = 1e-3 / np.linalg.norm(v)
    hg = (grad(flat + eps * v) - grad(flat - eps * v)) / (2 * eps)
    w, hg = unflat(flat), unflat(hg)
    return [-w[0] * hg[0], -w[2] * hg[2]]


@pytest.mark.parametrize("temperature", [1.0, 3.0, 200.0])
def test_grasp_temperature_matches_a_finite_difference_reference(temperature):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    logits = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(3)])
    logits.set_weights([rng.normal(size=w.shape).astype("float32") * 1.5 for w in logits.get_weights()])
    soft = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"),
                             keras.layers.Dense(3, activation="softmax")])
    soft.set_weights(logits.get_weights())
    batches = [(rng.normal(size=(6, 4)).astype("float32"), rng.integers(0, 3, 6)) for _ in range(2)]
    ref = _np_cross_entropy_grasp(logits.get_weights(), [(x.astype("float64"), y) for x, y in batches], temperature)
    on_logits = compute_scores(logits, select(logits), "grasp", batches, temperature=temperature,
                               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # a softmax output: the loss reads the output layer's pre-activation (the logits), exactly the same scores
    on_probs = compute_scores(soft, select(soft), "grasp", batches, temperature=temperature,
                              loss="sparse_categorical_crossentropy")
    for scores in (on_logits, on_probs):
        assert scores.hessian == "double-backprop"
        for ours, r in zip(scores.scores.values(), ref, strict=True):
            assert np.abs(ours - r).max() / np.abs(r).max() < 1e-4, (temperature, ours, r)
    assert ("logits divided by temperature 200" in on_logits.notes) == (temperature == 200.0)
    assert soft.layers[-1].activation is keras.activations.softmax  # restored after scoring


def test_grasp_temperature_changes_the_ranking_and_refuses_inexact_cases():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="tanh"),
                              keras.layers.Dense(3, activation="softmax")])
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(32, 6)).astype("float32") * 3, np.arange(32) % 3
    loss = "sparse_categorical_crossentropy"
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())  # the same weights: only the temperature differs
    hot = prune_at_init(model, 0.5, "grasp", (x, y), loss=loss, temperature=200).get_masks()
    cold = prune_at_init(twin, 0.5, "grasp", (x, y), loss=loss).get_masks()
    assert any(not np.array_equal(hot[k], cold[k]) for k in hot)  # T = 200 is not a rescaling of T = 1's scores
    with pytest.raises(ValueError, match="`temperature` .* divides the logits, so the loss must be a cross-entropy on logits"):
        compute_scores(model, select(model), "grasp", (x, rng.normal(size=(32, 3)).astype("float32")), loss="mse",
                       temperature=200)
    softmax_layer = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3), keras.layers.Softmax()])
    with pytest.raises(ValueError, match="A separate Softmax layer at the output is not seen through"):
        compute_scores(softmax_layer, select(softmax_layer), "grasp", (x, y), loss=loss, temperature=200)
    with pytest.raises(ValueError, match="`temperature` applies to method 'grasp' only"):
        prune_at_init(model, 0.5, "snip", (x, y), loss=loss, temperature=200)
    with pytest.raises(ValueError, match="`temperature` must be finite and > 0"):
        prune_at_init(model, 0.5, "grasp", (x, y), loss=loss, temperature=0)
    with pytest.raises(TypeError, match="`temperature` must be a positive number"):
        prune_at_init(model, 0.5, "grasp", (x, y), loss=loss, temperature="hot")
