"""Layer collapse (issue 21, items 3 and 4): SynFlow scores through the paper's linearized network
(ReLU6's clip removed), every pruning entry point warns naming the weights it empties
(``LayerCollapseWarning``) and takes a ``min_density`` floor, and ``sparsity_report`` marks
emptied weights and says ``masked`` only for a mask that holds the weight's zeros."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest

import kerasinit.pruning as P
from kerasinit.pruning.masks import LayerCollapseWarning, keep_count
from kerasinit.pruning.scores import compute_scores


def _mobilenet(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10)


def _output_std(model: keras.Model) -> float:
    """Spread of the logits across random inputs: 0 for a network whose output no longer depends on its input.

    BatchNorm on the batch's statistics (``training=True``; its moving statistics move, so call it last):
    an untrained MobileNetV2 in inference mode gives nearly the same logits for every input.
    """
    x = np.random.default_rng(0).normal(size=(16, 32, 32, 3)).astype("float32")
    features = keras.ops.convert_to_numpy(keras.Model(model.input, model.layers[-2].output)(x, training=True))
    head = model.get_layer("predictions")
    logits = features @ np.asarray(head.kernel) + np.asarray(head.bias)
    return float(logits.std(axis=0).mean())


def _empty(masks: dict[str, np.ndarray]) -> list[str]:
    return [name for name, m in masks.items() if not m.any()]


# ----------------------------------------------------------------- SynFlow through ReLU6
def test_synflow_score_is_the_linearized_product_through_relu6():
    """R = 1ᵀ|W3||W2||W1|1: ReLU6 with |w| and an all-ones input would clip at 6 and zero ∂R/∂w."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(6, activation="relu6", use_bias=False),
                              keras.layers.Dense(4, use_bias=False), keras.layers.ReLU(6.0),
                              keras.layers.Dense(3, use_bias=False)])
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype("float32") * 3.0 for w in model.get_weights()])
    a1, a2, a3 = (np.abs(w).astype("float64") for w in model.get_weights())
    assert (np.ones(5) @ a1 > 6).any()  # the clip is hit: the old scores were 0 for the first two kernels
    # S = |w| ⊙ ∂R/∂|w| of the linear network, in float64
    h1 = np.ones(5) @ a1
    back2 = a3 @ np.ones(3)
    back1 = a2 @ back2
    ref = [a1 * np.outer(np.ones(5), back1), a2 * np.outer(h1, back2), a3 * np.outer(h1 @ a2, np.ones(3))]
    ours = list(compute_scores(model, P.select(model), "synflow").scores.values())
    for o, r in zip(ours, ref, strict=True):
        np.testing.assert_allclose(o, r, rtol=1e-5)
    # the layers' activations are restored after scoring
    assert model.layers[0].activation is keras.activations.relu6 and model.layers[2].max_value == 6.0


def _residual_branch(model: keras.Model, name: str) -> bool:
    """Whether the kernel ``name`` sits in a MobileNetV2 block whose output is added to an identity skip."""
    block = name.split("_")[:2]
    return block[0] == "block" and f"block_{block[1]}_add" in {layer.name for layer in model.layers}


#: what the paper's iterative SynFlow empties at 90% (seed 0): the residual branches of blocks 14 and 15, which
#: carried 61.5% and 61.0% of R before pruning (tests/pruning/test_synflow_mobilenet.py; synflow.py's docstring)
DRAINED = [f"block_{b}_{p}/kernel" for b in (14, 15) for p in ("expand", "depthwise", "project")]


def test_synflow_at_90_percent_keeps_mobilenetv2_connected_and_drains_exactly_two_residual_branches():
    """The floor (min_density=0.01, every kernel non-empty): test_synflow_mobilenet.py."""
    before = _output_std(_mobilenet())
    model = _mobilenet()
    scores = compute_scores(model, P.select(model), "synflow").scores
    assert all(v.sum() > 0 for v in scores.values())  # with ReLU6's clip, 52 of 53 kernels scored exactly 0
    with pytest.warns(LayerCollapseWarning) as record:
        pruner = P.prune_at_init(model, 0.9, "synflow")
    masks = pruner.get_masks()
    emptied = _empty(masks)
    total = sum(m.size for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == keep_count(total, 0.9)
    # the paper's iterative SynFlow drains two residual branches (their identity skip carries the flow; the
    # network stays connected), never a kernel every input must cross (was: 23 of 53, blocks 10-16 to the output)
    assert emptied == DRAINED and all(_residual_branch(model, name) for name in emptied), emptied
    assert pruner.collapsed == DRAINED and len(record) == 1
    named = re.search(r"emptied 6 of 53 pruned weights .*?: (\[.*?\])", str(record[0].message))
    assert named is not None and named.group(1) == str(DRAINED), str(record[0].message)
    after = _output_std(model)
    assert before > 0.1 and after > 0.01 * before, (before, after)  # was 0.73 -> 0.0


SYNFLOW_TORCH = r'''
import json, keras, numpy as np
from kerasinit.pruning import select
from kerasinit.pruning.scores import compute_scores
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(6, activation="relu6", use_bias=False),
                          keras.layers.Dense(4, use_bias=False), keras.layers.ReLU(6.0),
                          keras.layers.Dense(3, use_bias=False)])
rng = np.random.default_rng(0)
model.set_weights([rng.normal(size=w.shape).astype("float32") * 3.0 for w in model.get_weights()])
chain = [v.tolist() for v in compute_scores(model, select(model), "synflow").scores.values()]
model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10)
sums = {k: float(v.sum()) for k, v in compute_scores(model, select(model), "synflow").scores.items()}
print(json.dumps({"chain": chain, "sums": sums}))
'''


def test_synflow_on_torch_scores_through_relu6_too():
    """PyTorch collapsed identically (23 of 53): the same linearized scores there, in one scoring pass."""
    pytest.importorskip("torch")
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(SYNFLOW_TORCH)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    out = json.loads(proc.stdout.strip().splitlines()[-1])
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(6, activation="relu6", use_bias=False),
                              keras.layers.Dense(4, use_bias=False), keras.layers.ReLU(6.0),
                              keras.layers.Dense(3, use_bias=False)])
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype("float32") * 3.0 for w in model.get_weights()])
    for ours, theirs in zip(compute_scores(model, P.select(model), "synflow").scores.values(), out["chain"], strict=True):
        np.testing.assert_allclose(np.array(theirs), ours, rtol=1e-5)
    assert len(out["sums"]) == 53 and all(v > 0 for v in out["sums"].values()), out["sums"]
    # conservation: every kernel every input crosses carries the same flow R (1e-4: float32 sums of ~1e14)
    r = out["sums"]["predictions/kernel"]
    np.testing.assert_allclose([out["sums"][k] for k in ("Conv1/kernel", "block_16_project/kernel", "Conv_1/kernel")],
                               r, rtol=1e-4)


# ----------------------------------------------------------------- the warning, the report and the floor
def test_global_magnitude_that_empties_layers_warns_naming_them_and_the_report_marks_them():
    model = _mobilenet()
    with pytest.warns(LayerCollapseWarning) as record:
        pruner = P.prune(model, 0.9, scope="global")
    emptied = _empty(pruner.get_masks())
    assert len(emptied) >= 5 and pruner.collapsed == emptied  # 15 of 53 at this seed
    message = str(record[0].message)
    assert all(name in message for name in emptied) and "min_density" in message
    report = P.sparsity_report(model)
    body = report.iloc[:-1]
    marked = [f"{lay}/{w}" for lay, w in zip(body.layer[body.collapsed], body.weight[body.collapsed], strict=True)]
    assert marked == emptied and bool(report.collapsed.iloc[-1])
    assert (body.nonzeros[body.collapsed] == 0).all()


def test_min_density_keeps_every_weight_and_the_exact_sparsity():
    model = _mobilenet()
    values = {w.name: np.abs(np.asarray(w.variable)) for w in P.select(model)}
    with warnings.catch_warnings():
        warnings.simplefilter("error", LayerCollapseWarning)
        pruner = P.prune(model, 0.9, scope="global", min_density=0.02)
    masks = pruner.get_masks()
    total = sum(m.size for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == keep_count(total, 0.9)  # the sparsity asked for, exactly
    for name, m in masks.items():
        floor = int(np.ceil(0.02 * m.size))
        assert m.sum() >= floor, name
        # the floor is each weight's own largest magnitudes
        top = np.sort(values[name].ravel())[::-1][:floor]
        assert np.isin(top, values[name][m.astype(bool)]).all(), name
    assert not P.sparsity_report(model).collapsed.any()


def test_prune_at_init_warns_and_takes_the_floor():
    model = _mobilenet()
    with pytest.warns(LayerCollapseWarning, match=r"prune_at_init: .*emptied"):
        pruner = P.prune_at_init(model, 0.9, "magnitude")
    assert pruner.collapsed and pruner.collapsed == _empty(pruner.get_masks())
    model = _mobilenet()
    with warnings.catch_warnings():
        warnings.simplefilter("error", LayerCollapseWarning)
        pruner = P.prune_at_init(model, 0.9, "magnitude", min_density=0.01)
    masks = pruner.get_masks()
    assert all(m.sum() >= int(np.ceil(0.01 * m.size)) for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == keep_count(sum(m.size for m in masks.values()), 0.9)


def _lopsided(seed: int = 0) -> keras.Model:
    """An MLP whose middle kernel is 100x smaller than the others: a global threshold removes it first."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu", name="first"),
                             keras.layers.Dense(32, activation="relu", name="tiny",
                                                kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3)),
                             keras.layers.Dense(4, name="out")])


def test_pruning_callback_with_a_global_schedule_warns_and_a_floored_pruner_does_not():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 16)).astype("float32"), rng.integers(0, 4, 64)
    schedule = P.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=4, frequency=2)
    model = _lopsided()
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.warns(LayerCollapseWarning, match=r"tiny/kernel"):
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[P.PruningCallback(schedule, scope="global")])
    assert not np.asarray(model.get_layer("tiny").kernel).any()
    model = _lopsided()
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruner = P.Pruner(model, schedule, scope="global", min_density=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LayerCollapseWarning)
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[P.PruningCallback(pruner=pruner)])
    assert np.count_nonzero(np.asarray(model.get_layer("tiny").kernel)) >= int(np.ceil(0.05 * 32 * 32))
    assert abs(pruner.sparsity - 0.8) < 1e-3


def test_set_masks_that_empty_a_weight_warn():
    model = _lopsided()
    pruner = P.Pruner(model)
    masks = pruner.get_masks()
    masks["tiny/kernel"][:] = 0
    with pytest.warns(LayerCollapseWarning, match=r"Pruner.set_masks: .*'tiny/kernel'"):
        pruner.set_masks(masks)
    assert pruner.collapsed == ["tiny/kernel"]


def test_min_density_bad_values_name_the_argument():
    model = _lopsided()
    with pytest.raises(ValueError, match=r"`min_density` must be a number in \[0, 1\]"):
        P.prune(model, 0.5, scope="global", min_density=1.5)
    with pytest.raises(ValueError, match=r"`min_density` applies to scope='global'"):
        P.prune(model, 0.5, scope="layer", min_density=0.1)
    with pytest.raises(ValueError, match=r"`min_density`=0.5 keeps at least .* weights, more than the .* kept at sparsity 0.9"):
        P.prune(model, 0.9, scope="global", min_density=0.5)
    with pytest.raises(ValueError, match=r"`min_density`"):
        P.prune_at_init(model, 0.9, "magnitude", distribution="uniform", min_density=0.5)


# ----------------------------------------------------------------- `masked` only when the mask holds the zeros
def test_report_masked_only_where_the_mask_holds_the_weights_zeros():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, name="a"), keras.layers.Dense(3, name="b")])
    fresh = P.Pruner(model)  # masks attached, all ones: the weights have no zeros, so the mask holds them
    report = P.sparsity_report(model)
    assert report.masked.all() and (report.unmasked_zeros == 0).all() and not report.collapsed.any()
    fresh.update_masks(0.5)
    report = P.sparsity_report(model)
    assert report.masked.all() and (report.unmasked_zeros == 0).all()
    # the masks of a model reloaded without them (e.g. from weights alone): all ones over pruned weights
    for mask in fresh.masks.values():
        mask.assign(np.ones(mask.shape, "uint8"))
    loaded = model
    report = P.sparsity_report(loaded)
    assert list(report.nonzeros) == [64, 24, 88]
    assert not report.masked.any() and list(report.unmasked_zeros) == [64, 24, 88]
    # a zero kernel with a fresh all-ones mask: its zeros are not held either
    zero = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, kernel_initializer="zeros", name="z")])
    P.Pruner(zero)
    row = P.sparsity_report(zero).iloc[0]
    assert not row.masked and row.collapsed and row.unmasked_zeros == 8
    assert re.search(r"unmasked_zeros", P.sparsity_report.__doc__)
