"""Structure-aware ``reinitialize`` policies for residual networks and Transformers.

Each policy finds the residual blocks itself (:func:`kerasinit.policies.residual.find_residual_blocks`),
changes only the weights its paper names, and returns one report row per weight: the layer, the
block it belongs to, its role there, the factor applied and why.

- ``"fixup"`` (Zhang, Dauphin & Ma 2019): with L residual branches of m weight layers each, every
  branch layer but the last is He-normal scaled by ``L^(-1/(2m-2))``, the last is zero, and so is the
  classification layer (the model's last Dense outside every block).
- ``"skipinit"`` (De & Smith 2020; zero-γ, Goyal et al. 2017): each branch ends at zero, through the
  γ of its last normalization layer when one ends the branch, else through its last weight layer.
- ``"gpt2"`` (Radford et al. 2019): the output projection of every attention/MLP branch is drawn
  from N(0, (σ/√L)²) with σ = 0.02 and L = 2·n_layers residual branches.
- ``"t_fixup"`` (Huang et al. 2020): Xavier everywhere in the blocks, the value and output
  projections of attention and every MLP kernel scaled by ``0.67·N^(-1/4)`` in encoder blocks and
  ``(9N)^(-1/4)`` in decoder blocks (N layers of each), embeddings N(0, d^(-1/2)) (× ``(9N)^(-1/4)``
  when there is a decoder).
- ``"mimetic"`` (Trockman & Kolter 2023): every ``MultiHeadAttention`` gets, per head,
  ``W_q W_kᵀ ≈ α₁ Z₁ + β₁ I`` and ``W_v W_o ≈ α₂ Z₂ − β₂ I`` (Z ~ N(0, 1/d)).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from kerasinit._arrays import to_numpy
from kerasinit._validation import check_real
from kerasinit.initializers.mimetic import mimetic_initializers
from kerasinit.initializers.mirrors import GlorotUniform, RandomNormal, Zeros
from kerasinit.initializers.tutorial import PlainHeNormal
from kerasinit.layers import (
    DEPTHWISE,
    EMBEDDING,
    KERNEL,
    POINTWISE,
    attention_projections,
    main_weight,
)
from kerasinit.policies.registry import register_policy
from kerasinit.policies.residual import (
    ResidualBlock,
    find_residual_blocks,
    weight_layers_in_order,
)

REPORT_COLUMNS = ["layer", "class", "weight", "shape", "activation", "initializer", "std_before", "std_after",
                  "block", "role", "scale", "reason"]

#: (input_axes, output_axes) of MultiHeadAttention's projection kernels (d, heads, dim) / (heads, dim, d).
_ATTENTION_AXES = {"query": ([0], [1, 2]), "key": ([0], [1, 2]), "value": ([0], [1, 2]), "output": ([0, 1], [2])}


class _Redraw:
    """Draws, assigns and reports; the i-th draw of a run is seeded ``seed + i``."""

    def __init__(self, seed: int | None) -> None:
        self.seed = seed
        self.index = 0
        self.rows: list[dict[str, Any]] = []
        self.labels: dict[int, str] = {}

    def part(self, mha: keras.layers.MultiHeadAttention, part: str) -> keras.layers.Layer:
        """The ``query``/``key``/``value``/``output`` projection of ``mha``, reported as ``mha/part``."""
        sub = attention_projections(mha)[part]
        self.labels[id(sub)] = f"{mha.name}/{part}"
        return sub

    def next_seed(self) -> int | None:
        self.index += 1
        return None if self.seed is None else self.seed + self.index - 1

    def assign(self, layer: keras.layers.Layer, attr: str, values: Any, *, initializer: str, scale: float,
               block: str, role: str, reason: str) -> None:
        var = getattr(layer, attr)
        before = float(np.std(to_numpy(var)))
        var.assign(ops.cast(values, var.dtype))
        self.rows.append({"layer": self.labels.get(id(layer), layer.name), "class": type(layer).__name__, "weight": attr, "shape": tuple(var.shape),
                          "activation": _activation(layer), "initializer": initializer, "std_before": before,
                          "std_after": float(np.std(to_numpy(var))), "block": block, "role": role, "scale": scale,
                          "reason": reason})

    def draw(self, layer: keras.layers.Layer, attr: str, init: keras.initializers.Initializer, scale: float, *,
             block: str, role: str, reason: str) -> None:
        var = getattr(layer, attr)
        values = init(tuple(var.shape), dtype=var.dtype)
        if scale != 1.0:
            values = values * scale
        name = type(init).__name__ + ("" if scale == 1.0 else f" x {scale:.6g}")
        self.assign(layer, attr, values, initializer=name, scale=scale, block=block, role=role, reason=reason)

    def zero(self, layer: keras.layers.Layer, attr: str, *, block: str, role: str, reason: str) -> None:
        var = getattr(layer, attr)
        self.assign(layer, attr, Zeros()(tuple(var.shape), dtype=var.dtype), initializer="Zeros", scale=0.0,
                    block=block, role=role, reason=reason)

    def zero_bias(self, layer: keras.layers.Layer, *, block: str, role: str, reason: str) -> None:
        if isinstance(getattr(layer, "bias", None), keras.Variable):
            self.zero(layer, "bias", block=block, role=role, reason=reason)

    def report(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows, columns=REPORT_COLUMNS)


def _activation(layer: keras.layers.Layer) -> str:
    act = getattr(layer, "activation", None)
    return "" if act is None else getattr(act, "__name__", str(act))


def _kernel_attr(layer: keras.layers.Layer) -> str:
    weight = main_weight(layer, (KERNEL, DEPTHWISE, POINTWISE, EMBEDDING))
    if weight is not None:
        return weight.attr
    raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) has no kernel to re-draw.")


def _xavier(seed: int | None, part: str | None = None) -> GlorotUniform:
    """Glorot uniform; attention kernels with their model-width / heads x head-width fans."""
    axes = _ATTENTION_AXES[part] if part else (None, None)
    return GlorotUniform(seed=seed, input_axes=axes[0], output_axes=axes[1])


def _blocks_or_raise(model: keras.layers.Layer, policy: str) -> list[ResidualBlock]:
    blocks = find_residual_blocks(model)
    if not blocks:
        raise ValueError(
            f"reinitialize: policy={policy!r} needs residual blocks (an Add of a shortcut and a branch of weight "
            f"layers) and found none in model {model.name!r}."
        )
    return blocks


def _classifier(model: keras.layers.Layer, blocks: list[ResidualBlock]) -> keras.layers.Layer | None:
    """The model's last weight layer when it is a Dense outside every block."""
    inside = {id(la) for b in blocks for la in (*b.branch, *b.shortcut)}
    layers = weight_layers_in_order(model)
    last = layers[-1] if layers else None
    return last if isinstance(last, keras.layers.Dense) and id(last) not in inside else None


# --------------------------------------------------------------------------- residual networks
@register_policy("fixup")
def fixup(model: keras.layers.Layer, seed: int | None = None) -> Any:
    """Fixup (Zhang et al., ICLR 2019): train deep residual networks without normalization.

    L = number of residual branches, m = weight layers per branch. Branch layers 1..m-1:
    He normal (N(0, 2/fan_in)) times ``L^(-1/(2m-2))``; branch layer m: 0; classification layer
    (weights and bias): 0; biases of the re-drawn layers: 0. The paper's scalar biases and
    multiplier are architecture, not initialization, and are left to the model. Returns the report.
    """
    blocks = _blocks_or_raise(model, "fixup")
    run = _Redraw(seed)
    n_blocks = len(blocks)
    for block in blocks:
        m = block.depth
        factor = n_blocks ** (-1.0 / (2 * m - 2)) if m > 1 else 1.0
        for i, layer in enumerate(block.branch):
            if isinstance(layer, keras.layers.MultiHeadAttention):
                parts = [(run.part(layer, p), p) for p in ("query", "key", "value", "output")]
            else:
                parts = [(layer, None)]
            last = i == m - 1
            for j, (sub, part) in enumerate(parts):
                attr = _kernel_attr(sub)
                role = f"branch layer {i + 1}/{m}" + (f" ({part})" if part else "")
                if last and j == len(parts) - 1:
                    run.zero(sub, attr, block=block.name, role=role,
                             reason=f"Fixup: the last layer of each of the L={n_blocks} branches starts at zero")
                else:
                    run.draw(sub, attr, PlainHeNormal(seed=run.next_seed()), factor, block=block.name, role=role,
                             reason=f"Fixup: He normal x L^(-1/(2m-2)) with L={n_blocks}, m={m}")
                run.zero_bias(sub, block=block.name, role=role, reason="Fixup: biases start at zero")
    head = _classifier(model, blocks)
    if head is not None:
        run.zero(head, "kernel", block="", role="classifier", reason="Fixup: the classification layer starts at zero")
        run.zero_bias(head, block="", role="classifier", reason="Fixup: the classification layer starts at zero")
    return run.report()


@register_policy("skipinit")
def skipinit(model: keras.layers.Layer, seed: int | None = None) -> Any:
    """SkipInit (De & Smith, NeurIPS 2020) / zero-γ (Goyal et al. 2017): every residual branch starts at 0.

    Where a normalization layer ends the branch (post-activation ResNets), its γ is set to 0
    (Goyal et al.'s zero-γ); otherwise the last weight layer of the branch is zeroed (kernel and
    bias), which is SkipInit's zero branch gain at initialization. Nothing else changes.
    ``seed`` is unused (nothing is drawn) and kept for a uniform policy signature.
    """
    del seed
    run = _Redraw(None)
    for block in _blocks_or_raise(model, "skipinit"):
        tail = block.order[-1]
        if tail in block.norms:
            run.zero(tail, "gamma", block=block.name, role="last normalization of the branch",
                     reason="zero-gamma: the normalization ending the branch scales it by 0")
            continue
        layer = block.branch[-1]
        if isinstance(layer, keras.layers.MultiHeadAttention):
            layer = run.part(layer, "output")
        run.zero(layer, _kernel_attr(layer), block=block.name, role=f"branch layer {block.depth}/{block.depth}",
                 reason="SkipInit: no normalization ends the branch, so its last layer is zeroed (branch gain 0)")
        run.zero_bias(layer, block=block.name, role=f"branch layer {block.depth}/{block.depth}",
                      reason="SkipInit: the branch output starts at zero")
    return run.report()


@register_policy("gpt2")
def gpt2(model: keras.layers.Layer, seed: int | None = None, std: float = 0.02) -> Any:
    """GPT-2 depth scaling (Radford et al. 2019): residual output projections ~ N(0, (std/√L)²).

    L = number of residual branches (2·n_layers in a Transformer: attention and MLP). The output
    projection is the attention's ``output`` kernel, or the last Dense of an MLP branch; its bias
    is zeroed. Other weights keep their values.
    """
    std = check_real("std", std, owner="gpt2", positive=True)
    blocks = _blocks_or_raise(model, "gpt2")
    run = _Redraw(seed)
    n_blocks = len(blocks)
    for block in blocks:
        layer, role = block.branch[-1], "output projection"
        if isinstance(layer, keras.layers.MultiHeadAttention):
            layer, role = run.part(layer, "output"), "attention output projection"
        init = RandomNormal(0.0, std / math.sqrt(n_blocks), seed=run.next_seed())
        run.draw(layer, _kernel_attr(layer), init, 1.0, block=block.name, role=role,
                 reason=f"GPT-2: N(0, (std/sqrt(L))^2) with std={std:g}, L={n_blocks} residual branches")
        run.zero_bias(layer, block=block.name, role=role, reason="GPT-2: biases start at zero")
    return run.report()


def t_fixup_factor(n_layers: int) -> float:
    """T-Fixup's encoder scale ``0.67 · N^(-1/4)`` for N encoder layers (Huang et al. 2020)."""
    return 0.67 * n_layers ** -0.25


def t_fixup_decoder_factor(n_layers: int) -> float:
    """T-Fixup's decoder scale ``(9 · N)^(-1/4)`` for N decoder layers (Huang et al. 2020)."""
    return (9 * n_layers) ** -0.25


@register_policy("t_fixup")
def t_fixup(model: keras.layers.Layer, seed: int | None = None) -> Any:
    """T-Fixup (Huang et al., ICML 2020): Transformers trained without warm-up or LayerNorm.

    Xavier uniform for every kernel in the residual branches, biases 0; embedding tables
    N(0, d^(-1/2)) (d = embedding width). Then, with N_e encoder and N_d decoder layers:

    - encoder blocks: the attention's value and output projections and every MLP kernel × ``0.67·N_e^(-1/4)``;
    - decoder blocks (self- and cross-attention, MLP): value, output and MLP kernels × ``(9·N_d)^(-1/4)``;
      and, when the model has a decoder, every embedding table × ``(9·N_d)^(-1/4)`` too.

    N_e counts the encoder attention blocks, N_d the cross-attentions (one per decoder layer);
    :func:`kerasinit.find_residual_blocks` tells the stacks apart (``block.stack``). The paper has
    N_e = N_d = N; self-attention-only stacks (decoder-only language models too) get the encoder rule.
    Removing the LayerNorms is a change to the model that this policy does not make.
    """
    blocks = _blocks_or_raise(model, "t_fixup")
    n_enc = sum(b.attention is not None for b in blocks if b.stack == "encoder")
    n_dec = len({id(la) for b in blocks if b.stack == "decoder" for la in b.cross_attention})
    if n_enc + n_dec == 0:
        raise ValueError("reinitialize: policy='t_fixup' needs Transformer blocks (a MultiHeadAttention in a "
                         "residual branch) and found none.")
    factors = {"encoder": t_fixup_factor(n_enc) if n_enc else 1.0,
               "decoder": t_fixup_decoder_factor(n_dec) if n_dec else 1.0}
    reasons = {"encoder": f"T-Fixup encoder: Xavier x 0.67 N^(-1/4) with N={n_enc}",
               "decoder": f"T-Fixup decoder: Xavier x (9 N)^(-1/4) with N={n_dec}"}
    run = _Redraw(seed)
    for block in blocks:
        factor, why = factors[block.stack], reasons[block.stack]
        prefix = "decoder " if block.stack == "decoder" else ""
        for layer in block.branch:
            if isinstance(layer, keras.layers.MultiHeadAttention):
                kind = "cross-attention" if layer in block.cross_attention else "attention"
                for part in ("query", "key", "value", "output"):
                    sub, scale = run.part(layer, part), factor if part in ("value", "output") else 1.0
                    run.draw(sub, "kernel", _xavier(run.next_seed(), part), scale, block=block.name,
                             role=f"{prefix}{kind} {part}", reason=why if scale != 1.0 else "T-Fixup: Xavier")
                    run.zero_bias(sub, block=block.name, role=f"{prefix}{kind} {part}", reason="T-Fixup: biases 0")
            elif not isinstance(layer, keras.layers.Embedding):
                attr = _kernel_attr(layer)
                run.draw(layer, attr, _xavier(run.next_seed()), factor, block=block.name, role=f"{prefix}MLP", reason=why)
                run.zero_bias(layer, block=block.name, role=f"{prefix}MLP", reason="T-Fixup: biases 0")
    embed_scale = t_fixup_decoder_factor(n_dec) if n_dec else 1.0
    for layer in weight_layers_in_order(model):
        if isinstance(layer, keras.layers.Embedding):
            d = layer.embeddings.shape[-1]
            reason = f"T-Fixup: embeddings N(0, d^(-1/2)), d={d}" + (
                f", x (9 N)^(-1/4) with N={n_dec} decoder layers" if n_dec else "")
            run.draw(layer, "embeddings", RandomNormal(0.0, d**-0.25, seed=run.next_seed()), embed_scale, block="",
                     role="embedding", reason=reason)
    return run.report()


# --------------------------------------------------------------------------- attention
@register_policy("mimetic")
def mimetic(model: keras.layers.Layer, seed: int | None = None, alpha_qk: float = 0.7, beta_qk: float = 0.7,
            alpha_vo: float = 0.4, beta_vo: float = 0.4) -> Any:
    """Mimetic initialization (Trockman & Kolter, ICML 2023) of every ``MultiHeadAttention`` in ``model``.

    Per head h (key/value width k): ``W_q^h W_k^hᵀ`` and ``W_v^h W_o^h`` are the best rank-k
    approximations of ``α₁ Z + β₁ I`` and ``α₂ Z − β₂ I`` (Z ~ N(0, 1/d), one draw per head), so
    attention starts near the identity-like patterns of pre-trained models. The draws are those of
    :func:`kerasinit.mimetic_initializers` (``MimeticQueryKey`` / ``MimeticValueOutput``), the i-th
    attention layer seeded ``seed + 2i`` (query/key) and ``seed + 2i + 1`` (value/output). Biases 0.
    Defaults: α₁ = β₁ = 0.7, α₂ = β₂ = 0.4 (the paper's ViT setting).
    """
    values = {n: check_real(n, v, owner="mimetic", nonnegative=True) for n, v in
              (("alpha_qk", alpha_qk), ("beta_qk", beta_qk), ("alpha_vo", alpha_vo), ("beta_vo", beta_vo))}
    run = _Redraw(seed)
    found = [la for la in weight_layers_in_order(model) if isinstance(la, keras.layers.MultiHeadAttention)]
    if isinstance(model, keras.layers.MultiHeadAttention):
        found = [model]
    if not found:
        raise ValueError(f"reinitialize: policy='mimetic' needs MultiHeadAttention layers and found none in {model.name!r}.")
    for mha in found:
        q, k, v, o = (run.part(mha, p) for p in ("query", "key", "value", "output"))
        if k.kernel.shape[0] != q.kernel.shape[0] or v.kernel.shape[0] != o.kernel.shape[-1]:
            raise ValueError(f"mimetic: layer {mha.name!r} has different query/key or value/output widths; "
                             "mimetic initialization needs self-attention shapes.")
        layer_seed = run.next_seed()  # query/key; value/output take layer_seed + 1
        run.next_seed()
        inits = mimetic_initializers(layer_seed, **values)  # seed None: one fresh int for the layer's pairs
        name = mha.name
        for sub, part in ((q, "query"), (k, "key"), (v, "value"), (o, "output")):
            init = inits[part]
            target = (f"W_q W_k^T ~ {values['alpha_qk']:g} Z + {values['beta_qk']:g} I" if part in ("query", "key")
                      else f"W_v W_o ~ {values['alpha_vo']:g} Z - {values['beta_vo']:g} I")
            run.assign(sub, "kernel", init(tuple(sub.kernel.shape), dtype=sub.kernel.dtype),
                       initializer=f"{type(init).__name__}({part!r}, seed={init.seed})", scale=1.0, block=name,
                       role=f"attention {part}", reason=f"mimetic: {target} per head")
            run.zero_bias(sub, block=name, role=f"attention {part}", reason="mimetic: biases 0")
    return run.report()

