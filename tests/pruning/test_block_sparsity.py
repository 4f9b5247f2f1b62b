"""Block sparsity (``block_size``, ``block_pooling_type``): TFMOT's semantics natively, on every backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import run_python

import kerasinit.pruning as P
from kerasinit.pruning.blocks import block_mask, kept_blocks
from kerasinit.pruning.masks import keep_count


def _dense(kernel: np.ndarray, name: str = "d") -> keras.Model:
    model = keras.Sequential([keras.Input((kernel.shape[0],)), keras.layers.Dense(kernel.shape[1], name=name)])
    model.layers[0].kernel.assign(kernel)
    return model


def _grid(mask: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """The block grid of a 2-D mask, asserting that every block is all kept or all pruned."""
    kept_any = kept_blocks(mask, block)
    kept_all = ~kept_blocks(1 - mask, block)
    assert np.array_equal(kept_any, kept_all), "a block is partly pruned"
    return kept_any


def test_avg_and_max_pooling_keep_different_blocks():
    # four 1x4 blocks in one row of a (2, 8) kernel: A avg 1 max 1, B avg .5 max 2, C avg .6 max .6, D small
    kernel = np.array([[1, 1, 1, 1, 2, 0, 0, 0], [0.6, 0.6, 0.6, 0.6, 0.1, 0.1, 0.1, 0.1]], "float32")
    avg = P.prune(_dense(kernel), 0.5, block_size=(1, 4)).get_masks()["d/kernel"]
    mx = P.prune(_dense(kernel), 0.5, block_size=(1, 4), block_pooling_type="MAX").get_masks()["d/kernel"]
    assert avg.tolist() == [[1, 1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0, 0]]  # A and C
    assert mx.tolist() == [[1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0, 0]]  # A and B
    assert np.array_equal(block_mask(kernel, 0.5, (1, 4), "MAX"), mx)


@pytest.mark.parametrize(("shape", "block"), [((10, 12), (2, 3)), ((9, 10), (2, 4)), ((12, 8), (4, 1))])
def test_sparsity_is_met_in_whole_blocks_and_pruned_blocks_are_zero(shape, block):
    kernel = np.random.default_rng(0).normal(size=shape).astype("float32")
    model = _dense(kernel)
    pruner = P.prune(model, 0.7, block_size=block)
    mask = pruner.get_masks()["d/kernel"]
    grid = _grid(mask, block)
    assert grid.shape == (-(-shape[0] // block[0]), -(-shape[1] // block[1]))
    assert grid.sum() == keep_count(grid.size, 0.7)  # the sparsity counted in blocks
    w = keras.ops.convert_to_numpy(model.layers[0].kernel)
    assert np.all(w[mask == 0] == 0) and np.all(w[mask == 1] == kernel[mask == 1])
    assert pruner.kept_count(pruner.weights[0], 0.7) == grid.sum()


def test_global_scope_and_min_density_count_blocks():
    rng = np.random.default_rng(1)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(16, name="a"), keras.layers.Dense(8, name="b")])
    model.layers[0].kernel.assign(rng.normal(size=(16, 16)).astype("float32") * 10)  # "a" dominates the threshold
    model.layers[1].kernel.assign(rng.normal(size=(16, 8)).astype("float32") * 0.01)
    with pytest.warns(P.LayerCollapseWarning, match="b/kernel"):
        bare = P.prune(model, 0.6, scope="global", block_size=(1, 4))
    assert bare.collapsed == ["b/kernel"]
    model.layers[0].kernel.assign(rng.normal(size=(16, 16)).astype("float32") * 10)
    model.layers[1].kernel.assign(rng.normal(size=(16, 8)).astype("float32") * 0.01)
    floored = P.prune(model, 0.6, scope="global", block_size=(1, 4), min_density=0.25)
    grids = {n: _grid(m, (1, 4)) for n, m in floored.get_masks().items()}
    assert grids["b/kernel"].sum() == 8  # ceil(0.25 * 32 blocks)
    assert sum(g.sum() for g in grids.values()) == keep_count(64 + 32, 0.6)


def test_bad_block_arguments_are_refused_with_clear_errors():
    model = _dense(np.ones((8, 8), "float32"))
    with pytest.raises(ValueError, match="`block_size`=\\(1, 4\\) and `pattern`"):
        P.Pruner(model, block_size=(1, 4), pattern="2:4")
    with pytest.raises(ValueError, match="granularity='weight'"):
        P.prune(model, 0.5, block_size=(1, 4), granularity="channel")
    with pytest.raises(ValueError, match="positive sizes"):
        P.prune(model, 0.5, block_size=(0, 4))
    with pytest.raises(TypeError, match="pair of ints"):
        P.prune(model, 0.5, block_size=4)
    with pytest.raises(TypeError, match="pair of ints"):
        P.prune(model, 0.5, block_size=(1.0, 4))
    with pytest.raises(ValueError, match="block_pooling_type.*'AVG', 'MAX'"):
        P.prune(model, 0.5, block_size=(1, 4), block_pooling_type="mean")
    with pytest.raises(ValueError, match="in_graph=True cannot be used with block_size"):
        P.PruningCallback(P.ConstantSparsity(0.5, 0), block_size=(1, 4), in_graph=True)
    with pytest.raises(ValueError, match="`block_size`=\\(2, 2\\) and `pattern`"):
        P.prune_at_init(model, None, "magnitude", pattern="2:4", block_size=(2, 2))
    assert np.all(P.Pruner(model).get_masks()["d/kernel"] == 1)  # a refused call attached nothing that stayed wrong


FIT = """
import json, numpy as np, keras
import kerasinit.pruning as P
from kerasinit.pruning.blocks import kept_blocks
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu", name="h"),
                          keras.layers.Dense(8, name="o")])
model.compile(keras.optimizers.Adam(0.05), "mse")
x = np.random.default_rng(0).normal(size=(64, 12)).astype("float32")
y = np.random.default_rng(1).normal(size=(64, 8)).astype("float32")
cb = P.PruningCallback(P.PolynomialDecay(0.0, 0.75, 0, 6, frequency=1), block_size=(2, 4))
model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[cb])
out = {"path": cb.path, "reason": cb.path_reason, "updates": len(cb.updates)}
for w in cb.pruner.weights:
    m = cb.pruner.masks[w.name].numpy().astype("float32")
    v = keras.ops.convert_to_numpy(w.variable)
    whole = bool(np.array_equal(kept_blocks(m, (2, 4)), ~kept_blocks(1 - m, (2, 4))))
    out[w.name] = [float(1 - kept_blocks(m, (2, 4)).mean()), int(np.count_nonzero(v[m == 0])), whole]
print(json.dumps(out))
"""


def _check_fit(out: dict) -> None:
    assert out["path"] == "host" and "blocks" in out["reason"]
    assert out["updates"] == 7  # steps 0..6
    for name in ("h/kernel", "o/kernel"):
        sparsity, nonzero_pruned, whole = out[name]
        assert whole and nonzero_pruned == 0  # exact zeros, after Adam's steps too
        assert abs(sparsity - 0.75) < 0.07  # 24 and 8 blocks: keep_count rounding


def test_block_masks_hold_through_fit_on_tensorflow():
    ns: dict = {}
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(FIT, ns)  # noqa: S102 -- the same script as the other backends', in this process
    _check_fit(json.loads(buf.getvalue().strip().splitlines()[-1]))


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_block_masks_hold_through_fit_on_other_backends(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", FIT], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_fit(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_prune_at_init_scores_whole_blocks():
    rng = np.random.default_rng(3)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(12, name="a"), keras.layers.Dense(8, name="b")])
    for layer in model.layers:
        layer.kernel.assign(rng.normal(size=tuple(layer.kernel.shape)).astype("float32"))
    values = {f"{layer.name}/kernel": keras.ops.convert_to_numpy(layer.kernel) for layer in model.layers}
    pruner = P.prune_at_init(model, 0.5, "magnitude", distribution="uniform", block_size=(4, 2),
                             block_pooling_type="MAX")
    assert pruner.block_size == (4, 2) and pruner.block_pooling_type == "MAX"
    for name, mask in pruner.get_masks().items():
        # magnitude scores pooled per block = TFMOT's block magnitude mask of the same weights
        assert np.array_equal(mask, block_mask(values[name], 0.5, (4, 2), "MAX")), name
    shuffled = P.prune_at_init(_dense(rng.normal(size=(16, 16)).astype("float32")), 0.75, "magnitude",
                               block_size=(2, 2), ablation="shuffle", seed=0)
    grid = _grid(shuffled.get_masks()["d/kernel"], (2, 2))
    assert grid.sum() == keep_count(64, 0.75)


TFMOT_PARITY = """
import json, numpy as np, keras
import kerasinit.pruning as P
from kerasinit.pruning import tfmot as B
import tf_keras as k
rng = np.random.default_rng(7)
kernel = rng.normal(size=(16, 24)).astype("float32")
out = {}
for pooling in ("AVG", "MAX"):
    for block in ((1, 4), (2, 4)):
        tm = k.Sequential([k.Input((16,)), k.layers.Dense(24, name="d")])
        tm.layers[0].kernel.assign(kernel)
        pm = B.prune_low_magnitude(tm, P.ConstantSparsity(0.6, 0, frequency=1), block_size=block, block_pooling_type=pooling)
        pm.compile(k.optimizers.SGD(0.0), "mse")
        pm.fit(np.zeros((4, 16), "float32"), np.zeros((4, 24), "float32"), batch_size=4, epochs=1, verbose=0,
               callbacks=B.callbacks())
        theirs = B.get_masks(pm)["d/kernel"]
        native = keras.Sequential([keras.Input((16,)), keras.layers.Dense(24, name="d")])
        native.layers[0].kernel.assign(kernel)
        ours = P.prune(native, 0.6, block_size=block, block_pooling_type=pooling).get_masks()["d/kernel"]
        out[f"{pooling}{block}"] = [int((ours != theirs).sum()), float(1 - theirs.mean())]
try:
    conv = k.Sequential([k.Input((8, 8, 3)), k.layers.Conv2D(4, 3, name="c")])
    B.prune_low_magnitude(conv, P.ConstantSparsity(0.5, 0), block_size=(1, 4))
    out["conv"] = "accepted"
except ValueError as e:
    out["conv"] = str(e)
print(json.dumps(out))
"""


def test_block_masks_equal_tfmot_masks():
    out = json.loads(run_python(TFMOT_PARITY).strip().splitlines()[-1])
    conv = out.pop("conv")
    assert "2-D weights only" in conv and "'c'" in conv
    for key, (differences, sparsity) in out.items():
        assert differences == 0, key
        assert abs(sparsity - 0.6) < 0.05, key  # TFMOT pruned something: the comparison is not vacuous
