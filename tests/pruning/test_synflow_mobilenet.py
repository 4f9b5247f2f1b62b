"""SynFlow on residual networks (issue 21, item 3): what the paper's iterative algorithm does to a
residual branch, checked against an exact float64 NumPy reference, and MobileNetV2 at 90% with
``min_density`` keeping every kernel non-empty (the default empties blocks 14-15's branches:
``tests/pruning/test_layer_collapse.py``)."""

from __future__ import annotations

import re
import warnings

import keras
import numpy as np
import pytest

import kerasinit.pruning as P
from kerasinit.pruning.masks import LayerCollapseWarning, keep_count
from kerasinit.pruning.scores import compute_scores

LAYERS = ("stem", "expand", "project", "head")


def _residual_mlp(seed: int = 0) -> keras.Model:
    """32 -> stem 16 -> [expand 64 (ReLU6) -> project 16] + identity skip -> head 4 (softmax); biases nonzero."""
    keras.utils.set_random_seed(seed)
    x = keras.Input((32,))
    h = keras.layers.Dense(16, activation="relu", name="stem")(x)
    b = keras.layers.Dense(64, activation="relu6", name="expand")(h)
    b = keras.layers.Dense(16, name="project")(b)
    y = keras.layers.Dense(4, activation="softmax", name="head")(keras.layers.Add()([h, b]))
    model = keras.Model(x, y)
    rng = np.random.default_rng(seed)
    for name in LAYERS:  # signed biases: the paper's linearization takes their absolute values too
        bias = model.get_layer(name).bias
        bias.assign(rng.normal(size=bias.shape).astype("float32") * 0.1)
    return model


def _reference_synflow(model: keras.Model, sparsity: float, rounds: int) -> tuple[dict[str, np.ndarray], list[float]]:
    """Tanaka et al. 2020's iterative SynFlow written out in float64 for the residual MLP.

    |W| and |b|, input 1, R = Σ output (a positive network: ReLU, ReLU6 and softmax are the identity);
    S = |w| ⊙ ∂R/∂w on the masked network; round k keeps the ``(1 − sparsity)^(k/n)`` largest scores
    globally (masked weights stay masked; ties: lower index first). Returns the masks and the
    branch's share of R (Σ S over ``project`` / R) at each round.
    """
    w = {n: np.abs(np.asarray(model.get_layer(n).kernel, "float64")) for n in LAYERS}
    b = {n: np.abs(np.asarray(model.get_layer(n).bias, "float64")) for n in LAYERS}
    masks = {n: np.ones_like(v) for n, v in w.items()}
    shares = []
    for k in range(1, rounds + 1):
        m = {n: w[n] * masks[n] for n in LAYERS}
        h = np.ones(32) @ m["stem"] + b["stem"]
        e = h @ m["expand"] + b["expand"]
        z = h + e @ m["project"] + b["project"]
        r = float((z @ m["head"] + b["head"]).sum())
        gz = m["head"] @ np.ones(4)  # ∂R/∂z
        ge = m["project"] @ gz
        gh = gz + m["expand"] @ ge  # the skip and the branch
        grads = {"stem": np.outer(np.ones(32), gh), "expand": np.outer(h, ge), "project": np.outer(e, gz),
                 "head": np.outer(z, np.ones(4))}
        scores = {n: grads[n] * m[n] for n in LAYERS}
        shares.append(float(scores["project"].sum()) / r)
        flat = np.concatenate([np.where(masks[n] != 0, scores[n], -np.inf).ravel() for n in LAYERS])
        keep = keep_count(flat.size, 1.0 - (1.0 - sparsity) ** (k / rounds))
        kept = np.zeros(flat.size)
        kept[np.lexsort((np.arange(flat.size), -flat))[:keep]] = 1
        start = 0
        for n in LAYERS:
            masks[n] = kept[start:start + w[n].size].reshape(w[n].shape)
            start += w[n].size
    return {f"{n}/kernel": v for n, v in masks.items()}, shares


def test_iterative_synflow_is_the_papers_algorithm_which_drains_a_residual_branch():
    """Ours (float32, Keras graph) gives exactly the masks of the float64 reference; at 99% the reference
    itself empties the branch that carried 95% of R, the identity skip keeping the network connected.
    ReLU6 clips here (|w|, input 1: every expand unit is above 6), so the linearization is exercised."""
    model = _residual_mlp()
    reference, shares = _reference_synflow(model, 0.99, 100)
    assert shares[0] > 0.9 and shares[-1] < 0.05, (shares[0], shares[-1])  # 0.950 -> 0 (empty before round 100)
    assert [n for n, m in reference.items() if not m.any()] == ["expand/kernel", "project/kernel"]
    with pytest.warns(LayerCollapseWarning) as record:
        pruner = P.prune_at_init(model, 0.99, "synflow")
    masks = pruner.get_masks()
    for name, m in reference.items():
        np.testing.assert_array_equal(masks[name], m, err_msg=name)
    assert pruner.collapsed == ["expand/kernel", "project/kernel"]
    assert re.search(r"emptied 2 of 4 pruned weights .*: \['expand/kernel', 'project/kernel'\]", str(record[0].message))
    # connected: the output still depends on the input (through stem -> skip -> head)
    x = np.random.default_rng(1).normal(size=(32, 32)).astype("float32")
    assert float(np.std(keras.ops.convert_to_numpy(model(x)), axis=0).mean()) > 1e-3
    # the paper's guarantee is against disconnection only: the same model at 90% keeps every kernel
    model = _residual_mlp()
    reference, _ = _reference_synflow(model, 0.9, 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LayerCollapseWarning)
        masks = P.prune_at_init(model, 0.9, "synflow").get_masks()
    assert all(masks[n].any() for n in reference)
    for name, m in reference.items():
        np.testing.assert_array_equal(masks[name], m, err_msg=name)


def _mobilenet(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10)


def test_mobilenetv2_branches_of_blocks_14_and_15_carry_most_of_the_flow_before_pruning():
    """Why their emptying at 90% (test_layer_collapse.py) is not a negligible branch dropped: Σ S over a
    kernel is the flow through it (conservation, biases 0 at init): R for a kernel every input crosses,
    the branch's share of R inside a residual block (the same for its three kernels)."""
    model = _mobilenet()
    scores = compute_scores(model, P.select(model), "synflow").scores
    r = float(scores["predictions/kernel"].sum())
    share = {name: float(v.sum()) / r for name, v in scores.items()}
    for name in ("Conv1/kernel", "block_13_project/kernel", "block_16_project/kernel", "Conv_1/kernel"):
        np.testing.assert_allclose(share[name], 1.0, rtol=1e-4, err_msg=name)
    for block, expected in ((14, 0.615), (15, 0.610)):
        parts = [share[f"block_{block}_{p}/kernel"] for p in ("expand", "depthwise", "project")]
        np.testing.assert_allclose(parts, parts[0], rtol=1e-4)
        np.testing.assert_allclose(parts[0], expected, atol=0.005)  # the majority of R, not a negligible branch


def test_synflow_at_90_percent_with_min_density_keeps_every_mobilenetv2_kernel():
    """The issue's check, default rounds (100) and the global distribution: every one of the 53 kernels
    keeps at least 1% of its weights, the total sparsity exact, no LayerCollapseWarning."""
    model = _mobilenet()
    with warnings.catch_warnings():
        warnings.simplefilter("error", LayerCollapseWarning)
        pruner = P.prune_at_init(model, 0.9, "synflow", min_density=0.01)
    masks = pruner.get_masks()
    assert pruner.iterations == 100 and len(masks) == 53 and pruner.collapsed == []
    assert all(m.sum() >= np.ceil(0.01 * m.size) for m in masks.values())
    total = sum(m.size for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == keep_count(total, 0.9)
    # the six kernels the default empties (blocks 14-15's residual branches) are held at exactly their floor
    for block in (14, 15):
        for part in ("expand", "depthwise", "project"):
            m = masks[f"block_{block}_{part}/kernel"]
            assert m.sum() == np.ceil(0.01 * m.size), (block, part, int(m.sum()))
