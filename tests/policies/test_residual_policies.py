"""Residual-block detection and the structure-aware ``reinitialize`` policies (issue 14):
fixup, skipinit, gpt2, t_fixup and mimetic attention."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import to_np
from keras import layers

import kerasinit
from kerasinit.policies.structural import t_fixup_factor


def residual_mlp(n_blocks: int, width: int = 32, m: int = 2, bn: bool = False) -> keras.Model:
    """A normalization-free (unless ``bn``) residual ReLU MLP: h <- relu(h + branch(h))."""
    x = keras.Input((width,))
    h = layers.Dense(width, activation="relu", kernel_initializer="he_normal", name="stem")(x)
    for i in range(n_blocks):
        y = h
        for j in range(m):
            y = layers.Dense(width, activation="relu" if j < m - 1 else None, kernel_initializer="he_normal",
                             name=f"b{i}_d{j}")(y)
        if bn:
            y = layers.BatchNormalization(name=f"b{i}_bn")(y)
        h = layers.ReLU(name=f"b{i}_relu")(layers.Add(name=f"b{i}_add")([h, y]))
    return keras.Model(x, layers.Dense(4, name="head")(h))


class Block(layers.Layer):
    """A subclassed residual block (traced through ``call``)."""

    def __init__(self, width: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.d1 = layers.Dense(width, activation="relu")
        self.d2 = layers.Dense(width)

    def call(self, x):
        return x + self.d2(self.d1(x))


class Net(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = [Block(8) for _ in range(3)]
        self.out = layers.Dense(2)

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return self.out(x)


def encoder(n_layers: int, d: int = 32, heads: int = 4, post_ln: bool = True) -> keras.Model:
    x = keras.Input((6, d))
    h = x
    for i in range(n_layers):
        a = layers.MultiHeadAttention(heads, d // heads, name=f"mha{i}")(h, h)
        h = layers.Add(name=f"att_add{i}")([h, a])
        h = layers.LayerNormalization(name=f"ln{i}a")(h) if post_ln else h
        f = layers.Dense(2 * d, activation="relu", name=f"ff{i}a")(h)
        h = layers.Add(name=f"mlp_add{i}")([h, layers.Dense(d, name=f"ff{i}b")(f)])
        h = layers.LayerNormalization(name=f"ln{i}b")(h) if post_ln else h
    return keras.Model(x, layers.Dense(2, name="cls")(layers.GlobalAveragePooling1D()(h)))


def names(layers_):
    return [la.name for la in layers_]


# --------------------------------------------------------------------------- detection
def test_finds_blocks_in_functional_models():
    blocks = kerasinit.find_residual_blocks(residual_mlp(3, m=3, bn=True))
    assert [b.name for b in blocks] == ["b0_add", "b1_add", "b2_add"]
    assert names(blocks[1].branch) == ["b1_d0", "b1_d1", "b1_d2"] and blocks[1].depth == 3
    assert names(blocks[1].norms) == ["b1_bn"] and blocks[1].order[-1].name == "b1_bn" and blocks[1].shortcut == ()
    # projection shortcut (1x1 conv): the branch is the side with more weight layers
    x = keras.Input((8, 8, 3))
    y = layers.Conv2D(4, 3, padding="same", name="c2")(layers.Conv2D(4, 3, padding="same", name="c1")(x))
    (block,) = kerasinit.find_residual_blocks(keras.Model(x, layers.Add()([layers.Conv2D(4, 1, name="proj")(x), y])))
    assert names(block.branch) == ["c1", "c2"] and names(block.shortcut) == ["proj"]
    # the `+` operator on symbolic tensors is an addition too; two parallel equal paths are not residual
    x = keras.Input((8,))
    assert names(kerasinit.find_residual_blocks(keras.Model(x, x + layers.Dense(8, name="d")(x)))[0].branch) == ["d"]
    assert kerasinit.find_residual_blocks(keras.Model(x, layers.Dense(8)(x) + layers.Dense(8)(x))) == []
    assert kerasinit.find_residual_blocks(keras.Sequential([keras.Input((4,)), layers.Dense(4)])) == []


def test_finds_blocks_in_sequential_nested_and_subclassed_models():
    seq = keras.Sequential([keras.Input((8,)), Block(8, name="A"), Block(8, name="B"), layers.Dense(2)])
    assert [b.name.split("/")[0] for b in kerasinit.find_residual_blocks(seq)] == ["A", "B"]
    unbuilt_input = keras.Sequential([Block(8, name="A"), Block(8, name="B"), layers.Dense(2)])
    unbuilt_input(np.zeros((1, 8), "float32"))
    blocks = kerasinit.find_residual_blocks(unbuilt_input)
    assert len(blocks) == 2 and [la is s for la, s in zip(blocks[0].branch, (unbuilt_input.layers[0].d1, unbuilt_input.layers[0].d2), strict=True)] == [True, True]
    assert all(len(la._inbound_nodes) == 0 for la in unbuilt_input.layers[0]._layers)  # tracing leaves no nodes behind

    def functional_block(i):
        x = keras.Input((8,))
        return keras.Model(x, layers.Add()([x, layers.Dense(8, name=f"f{i}")(x)]), name=f"fb{i}")

    nested = keras.Sequential([keras.Input((8,)), functional_block(0), functional_block(1), layers.Dense(2)])
    assert [names(b.branch) for b in kerasinit.find_residual_blocks(nested)] == [["f0"], ["f1"]]
    net = Net()
    net(np.zeros((1, 8), "float32"))
    assert [b.depth for b in kerasinit.find_residual_blocks(net)] == [2, 2, 2]


def test_finds_transformer_blocks_with_attention_as_one_layer():
    blocks = kerasinit.find_residual_blocks(encoder(2))
    assert [names(b.branch) for b in blocks] == [["mha0"], ["ff0a", "ff0b"], ["mha1"], ["ff1a", "ff1b"]]
    assert [b.attention is not None for b in blocks] == [True, False, True, False]


# --------------------------------------------------------------------------- the papers' claim
def _std_ratio_through_depth(model: keras.Model, n_blocks: int) -> float:
    """std of the last block's output / std of the first block's output, on a fixed batch."""
    probe = keras.Model(model.input, [model.get_layer("b0_relu").output, model.get_layer(f"b{n_blocks - 1}_relu").output])
    x = np.random.default_rng(0).normal(size=(256, 32)).astype("float32")
    first, last = (to_np(t) for t in probe(x))
    return float(last.std() / first.std())


@pytest.mark.parametrize("policy", ["fixup", "skipinit"])
def test_50_block_residual_mlp_is_bounded_under_fixup_and_skipinit_but_explodes_under_he(policy):
    """Zhang et al. 2019 / De & Smith 2020: without normalization, He-initialized branches add up
    (the variance roughly doubles per block); zeroed branches keep the signal's scale."""
    keras.utils.set_random_seed(0)
    model = residual_mlp(50)
    he = _std_ratio_through_depth(model, 50)
    report = kerasinit.reinitialize(model, policy=policy, seed=0)
    ratio = _std_ratio_through_depth(model, 50)
    print(f"50 blocks: std last/first He {he:.3g}, {policy} {ratio:.3g}")
    assert he > 1e3  # about 2^(49/2) ≈ 2e7 at seed 0
    assert ratio <= 2.0
    assert set(report.block) >= {f"b{i}_add" for i in range(50)}


def test_fixup_scales_branches_by_the_paper_factor_and_zeroes_the_rest():
    model = residual_mlp(4, width=64, m=3)
    report = kerasinit.reinitialize(model, policy="fixup", seed=1).set_index(["layer", "weight"])
    factor = 4 ** (-1 / (2 * 3 - 2))  # L = 4 branches of m = 3 layers: L^(-1/(2m-2))
    for i in range(4):
        for j in (0, 1):
            row = report.loc[(f"b{i}_d{j}", "kernel")]
            assert row.scale == pytest.approx(factor) and row.role == f"branch layer {j + 1}/3" and row.block == f"b{i}_add"
            std = to_np(model.get_layer(f"b{i}_d{j}").kernel).std()
            assert std == pytest.approx(math.sqrt(2 / 64) * factor, rel=0.05)  # He normal x factor, 4096 draws
        assert not to_np(model.get_layer(f"b{i}_d2").kernel).any()
        assert report.loc[(f"b{i}_d2", "kernel")].role == "branch layer 3/3"
    assert report.loc[("head", "kernel")].role == "classifier" and not to_np(model.get_layer("head").kernel).any()
    assert "stem" not in report.index.get_level_values(0)  # the stem keeps its weights
    assert {"block", "role", "scale", "reason"} <= set(report.reset_index().columns)


def test_skipinit_zeroes_the_last_bn_gamma_or_the_last_branch_layer():
    model = residual_mlp(2, bn=True)
    report = kerasinit.reinitialize(model, policy="skipinit")
    assert list(zip(report.layer, report.weight, strict=True)) == [("b0_bn", "gamma"), ("b1_bn", "gamma")]
    assert not to_np(model.get_layer("b1_bn").gamma).any() and to_np(model.get_layer("b1_d1").kernel).any()
    model = residual_mlp(2)
    report = kerasinit.reinitialize(model, policy="skipinit")
    assert set(report.layer) == {"b0_d1", "b1_d1"} and "branch gain 0" in report.reason.iloc[0]
    with pytest.raises(ValueError, match="needs residual blocks.*found none"):
        kerasinit.reinitialize(keras.Sequential([keras.Input((4,)), layers.Dense(4)]), policy="skipinit")


# --------------------------------------------------------------------------- Transformers
def test_gpt2_scales_the_output_projections_by_depth():
    model = encoder(3, d=64)
    before = {n: to_np(model.get_layer(n).kernel) for n in ("ff0a", "cls")}
    report = kerasinit.reinitialize(model, policy="gpt2", seed=0)
    kernels = report[report.weight == "kernel"]
    assert list(kernels.layer) == ["mha0/output", "ff0b", "mha1/output", "ff1b", "mha2/output", "ff2b"]
    target = 0.02 / math.sqrt(6)  # L = 2 x 3 residual branches
    out = to_np(model.get_layer("mha1")._output_dense.kernel)
    assert out.std() == pytest.approx(target, rel=0.05) and to_np(model.get_layer("ff2b").kernel).std() == pytest.approx(target, rel=0.05)
    for n, w in before.items():  # the rest is left alone
        np.testing.assert_array_equal(to_np(model.get_layer(n).kernel), w)


def test_t_fixup_scales_value_output_and_mlp_by_067_n_quarter():
    n = 4
    model = encoder(n, d=32, heads=4)
    report = kerasinit.reinitialize(model, policy="t_fixup", seed=0)
    factor = 0.67 * n ** -0.25
    assert t_fixup_factor(n) == pytest.approx(factor, rel=1e-12)
    kernels = report[report.weight == "kernel"].set_index("layer")
    for i in range(n):
        assert kernels.loc[f"mha{i}/query", "scale"] == 1.0 and kernels.loc[f"mha{i}/key", "scale"] == 1.0
        for name in (f"mha{i}/value", f"mha{i}/output", f"ff{i}a", f"ff{i}b"):
            assert kernels.loc[name, "scale"] == pytest.approx(factor, rel=1e-12)
    mha = model.get_layer("mha2")
    xavier = math.sqrt(2 / (32 + 32))  # fans: model width 32, heads x head width 32
    assert to_np(mha._query_dense.kernel).std() == pytest.approx(xavier, rel=0.08)
    assert to_np(mha._value_dense.kernel).std() == pytest.approx(xavier * factor, rel=0.08)
    assert to_np(model.get_layer("ff2a").kernel).std() == pytest.approx(math.sqrt(2 / (32 + 64)) * factor, rel=0.08)
    with pytest.raises(ValueError, match="needs Transformer blocks"):
        kerasinit.reinitialize(residual_mlp(2), policy="t_fixup")


def test_mimetic_attention_products():
    d = 32
    x = keras.Input((5, d))
    mha = layers.MultiHeadAttention(1, d, name="att")
    model = keras.Model(x, mha(x, x))
    kerasinit.reinitialize(model, policy="mimetic", seed=0)
    wq, wk = to_np(mha._query_dense.kernel)[:, 0], to_np(mha._key_dense.kernel)[:, 0]
    wv, wo = to_np(mha._value_dense.kernel)[:, 0], to_np(mha._output_dense.kernel)[0]
    qk, vo = wq @ wk.T, wv @ wo  # full rank (one head of width d): exactly alpha Z + beta I and alpha Z - beta I
    z_qk, z_vo = (to_np(keras.random.normal((1, d, d), stddev=d**-0.5, seed=s))[0] for s in (0, 1))  # seed, seed + 1
    np.testing.assert_allclose(qk, 0.7 * z_qk + 0.7 * np.eye(d), atol=1e-5)
    np.testing.assert_allclose(vo, 0.4 * z_vo - 0.4 * np.eye(d), atol=1e-5)
    off = ~np.eye(d, dtype=bool)
    assert qk[off].std() == pytest.approx(0.7 / math.sqrt(d), rel=0.1) and vo[off].std() == pytest.approx(0.4 / math.sqrt(d), rel=0.1)
    # several heads: each head's product is a rank-k part of such a matrix, identity-like in sign
    x = keras.Input((5, d))
    mha = layers.MultiHeadAttention(4, 8, name="att4")
    model = keras.Model(x, mha(x, x))
    report = kerasinit.reinitialize(model, policy="mimetic", seed=0)
    q, k = to_np(mha._query_dense.kernel), to_np(mha._key_dense.kernel)
    v, o = to_np(mha._value_dense.kernel), to_np(mha._output_dense.kernel)
    for h in range(4):
        assert np.linalg.matrix_rank(q[:, h] @ k[:, h].T, tol=1e-4) == 8
        assert np.trace(q[:, h] @ k[:, h].T) > 0 > np.trace(v[:, h] @ o[h])
    assert set(report.role) >= {"attention query", "attention key", "attention value", "attention output"}


def test_structural_policies_reject_what_they_cannot_use():
    with pytest.raises(ValueError, match="needs MultiHeadAttention"):
        kerasinit.reinitialize(residual_mlp(1), policy="mimetic")
    with pytest.raises(ValueError, match="Unknown initializer 'fixupp'"):
        kerasinit.reinitialize(residual_mlp(1), policy="fixupp")


# --------------------------------------------------------------------------- backends
BACKEND_CHECK = """
import json, math
import keras, numpy as np
import kerasinit
from keras import layers

x = keras.Input((16,)); h = x
for i in range(20):
    y = layers.Dense(16, activation="relu", kernel_initializer="he_normal")(h)
    h = layers.ReLU(name=f"r{i}")(layers.Add()([h, layers.Dense(16, kernel_initializer="he_normal")(y)]))
model = keras.Model(x, layers.Dense(2)(h))
probe = keras.Model(x, [model.get_layer("r0").output, model.get_layer("r19").output])
data = np.random.default_rng(0).normal(size=(128, 16)).astype("float32")
ratio = lambda: float(np.std(keras.ops.convert_to_numpy(probe(data)[1])) / np.std(keras.ops.convert_to_numpy(probe(data)[0])))
out = {"he": ratio()}
out["fixup_rows"] = len(kerasinit.reinitialize(model, policy="fixup", seed=0)); out["fixup"] = ratio()
inp = keras.Input((4, 16)); a = layers.MultiHeadAttention(2, 8)(inp, inp); t = layers.Add()([inp, a])
enc = keras.Model(inp, layers.Add()([t, layers.Dense(16)(layers.Dense(32, activation="relu")(t))]))
out["t_fixup_scales"] = sorted(set(round(s, 6) for s in kerasinit.reinitialize(enc, policy="t_fixup", seed=0).scale))
out["mimetic_rows"] = len(kerasinit.reinitialize(enc, policy="mimetic", seed=0))
out["zero"] = keras.ops.convert_to_numpy(kerasinit.ZerO()((3, 3, 2, 8)))[1, 1].tolist()
deltas = {}
for kind in ("plain", "mup"):  # one Adam step: μP's per-variable learning rates on this backend
    net = keras.Sequential([keras.Input((8,)), layers.Dense(128, activation="relu"), layers.Dense(128, activation="relu"),
                            layers.Dense(1)])
    net.set_weights([np.full(w.shape, 0.05, "float32") for w in net.get_weights()])
    net.compile(kerasinit.mup.optimizer(net, 32, "adam", 1e-2) if kind == "mup" else keras.optimizers.Adam(1e-2), "mse")
    before = [keras.ops.convert_to_numpy(v) for v in net.trainable_variables]
    net.train_on_batch(data[:, :8], np.ones((128, 1), "float32"))
    deltas[kind] = [float(np.abs(keras.ops.convert_to_numpy(v) - b).sum()) for v, b in zip(net.trainable_variables, before)]
out["mup_lr_ratios"] = [round(m / p, 5) for m, p in zip(deltas["mup"], deltas["plain"])]
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_policies_on_backend(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(BACKEND_CHECK)], capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    import json

    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(backend, out)
    assert out["he"] > 10 and out["fixup"] == pytest.approx(1.0, abs=1e-5) and out["fixup_rows"] == 20 * 4 + 2
    assert out["t_fixup_scales"] == [0.0, 0.67, 1.0] and out["mimetic_rows"] == 8
    np.testing.assert_allclose(out["zero"], 0.5 * np.array(kerasinit.initializers.zero.hadamard(2, 8)))
    np.testing.assert_allclose(out["mup_lr_ratios"], [1.0, 1.0, 0.25, 1.0, 0.25, 1.0], rtol=1e-3)  # r = 128 / 32


# --------------------------------------------------------------------------- T-Fixup decoders
def encoder_decoder(n_enc: int = 2, n_dec: int = 3, d: int = 32, heads: int = 4, nested: bool = False) -> keras.Model:
    """A LayerNorm-free encoder-decoder (T-Fixup's model): the decoder's layers are self-attention,
    cross-attention on the encoder output and an MLP, each a residual branch."""
    src, tgt = keras.Input((6,), dtype="int32", name="src"), keras.Input((5,), dtype="int32", name="tgt")

    def encoder_stack(h):
        for i in range(n_enc):
            h = layers.Add(name=f"e{i}_att_add")([h, layers.MultiHeadAttention(heads, d // heads, name=f"e{i}_att")(h, h)])
            f = layers.Dense(d, name=f"e{i}_ff2")(layers.Dense(2 * d, activation="relu", name=f"e{i}_ff1")(h))
            h = layers.Add(name=f"e{i}_ff_add")([h, f])
        return h

    def decoder_stack(h, memory):
        for i in range(n_dec):
            a = layers.MultiHeadAttention(heads, d // heads, name=f"d{i}_self")(h, h, use_causal_mask=True)
            h = layers.Add(name=f"d{i}_self_add")([h, a])
            h = layers.Add(name=f"d{i}_cross_add")([h, layers.MultiHeadAttention(heads, d // heads, name=f"d{i}_cross")(
                query=h, value=memory, key=memory)])
            f = layers.Dense(d, name=f"d{i}_ff2")(layers.Dense(2 * d, activation="relu", name=f"d{i}_ff1")(h))
            h = layers.Add(name=f"d{i}_ff_add")([h, f])
        return h

    x = layers.Embedding(10, d, name="src_emb")(src)
    y = layers.Embedding(10, d, name="tgt_emb")(tgt)
    if nested:
        xi, yi, mi = keras.Input((6, d)), keras.Input((5, d)), keras.Input((6, d))
        memory = keras.Model(xi, encoder_stack(xi), name="encoder")(x)
        h = keras.Model([yi, mi], decoder_stack(yi, mi), name="decoder")([y, memory])
    else:
        h = decoder_stack(y, encoder_stack(x))
    return keras.Model([src, tgt], layers.Dense(10, name="logits")(h))


@pytest.mark.parametrize("nested", [False, True], ids=["functional", "nested"])
def test_t_fixup_tells_encoder_and_decoder_blocks_apart_and_scales_each_by_the_paper(nested):
    """Huang et al. 2020: encoder v, o and MLP x 0.67 N^(-1/4); decoder (self- and cross-attention v, o,
    MLP) and the embeddings x (9N)^(-1/4); here N_e = 2 encoder and N_d = 3 decoder layers."""
    model = encoder_decoder(nested=nested)
    blocks = kerasinit.find_residual_blocks(model)
    stacks = {b.name.split("/")[-1]: b.stack for b in blocks}
    assert [n for n, s in stacks.items() if s == "encoder"] == ["e0_att_add", "e0_ff_add", "e1_att_add", "e1_ff_add"]
    assert sorted(n for n, s in stacks.items() if s == "decoder") == sorted(
        f"d{i}_{k}_add" for i in range(3) for k in ("self", "cross", "ff"))
    assert [names(b.cross_attention) for b in blocks if b.cross_attention] == [["d0_cross"], ["d1_cross"], ["d2_cross"]]
    report = kerasinit.reinitialize(model, policy="t_fixup", seed=0)
    kernels = report[report.weight != "bias"].set_index("layer")
    enc, dec = 0.67 * 2**-0.25, (9 * 3) ** -0.25
    assert kerasinit.policies.structural.t_fixup_decoder_factor(3) == pytest.approx(dec, rel=1e-12)
    for i in range(2):
        for name in (f"e{i}_att/value", f"e{i}_att/output", f"e{i}_ff1", f"e{i}_ff2"):
            assert kernels.loc[name, "scale"] == pytest.approx(enc, rel=1e-12), name
    for i in range(3):
        for name in (f"d{i}_self/value", f"d{i}_self/output", f"d{i}_cross/value", f"d{i}_cross/output",
                     f"d{i}_ff1", f"d{i}_ff2"):
            assert kernels.loc[name, "scale"] == pytest.approx(dec, rel=1e-12), name
        assert kernels.loc[f"d{i}_cross/query", "scale"] == 1.0 and kernels.loc[f"d{i}_self/key", "scale"] == 1.0
        assert kernels.loc[f"d{i}_cross/value", "role"] == "decoder cross-attention value"
    assert "N=3" in kernels.loc["d1_ff1", "reason"] and "N=2" in kernels.loc["e1_ff1", "reason"]
    cross = model.get_layer("decoder").get_layer("d2_cross") if nested else model.get_layer("d2_cross")
    xavier = math.sqrt(2 / (32 + 32))
    assert to_np(cross._value_dense.kernel).std() == pytest.approx(xavier * dec, rel=0.08)
    for emb in ("src_emb", "tgt_emb"):  # N(0, d^(-1/2)) x (9N)^(-1/4)
        assert kernels.loc[emb, "scale"] == pytest.approx(dec, rel=1e-12)
        assert to_np(model.get_layer(emb).embeddings).std() == pytest.approx(32**-0.25 * dec, rel=0.1)


def test_self_attention_only_stacks_are_encoders():
    """A causal decoder-only stack has no cross-attention: T-Fixup's encoder rule, embeddings unscaled."""
    tokens = keras.Input((6,), dtype="int32")
    h = layers.Embedding(10, 16, name="emb")(tokens)
    for i in range(2):
        h = layers.Add()([h, layers.MultiHeadAttention(2, 8, name=f"a{i}")(h, h, use_causal_mask=True)])
        h = layers.Add()([h, layers.Dense(16, name=f"f{i}")(h)])
    model = keras.Model(tokens, layers.Dense(10)(h))
    assert {b.stack for b in kerasinit.find_residual_blocks(model)} == {"encoder"}
    report = kerasinit.reinitialize(model, policy="t_fixup", seed=0)
    kernels = report[report.weight != "bias"].set_index("layer")
    assert kernels.loc["a1/value", "scale"] == pytest.approx(0.67 * 2**-0.25) and kernels.loc["emb", "scale"] == 1.0
