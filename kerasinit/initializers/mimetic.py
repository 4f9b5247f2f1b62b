"""Mimetic attention initialization (Trockman & Kolter, ICML 2023) as a pair of Keras initializers.

Pre-trained attention heads show ``W_q W_kᵀ ≈ α₁ Z₁ + β₁ I`` (a query attends to keys like itself)
and ``W_v W_o ≈ α₂ Z₂ − β₂ I``. Mimetic initialization draws ``Z ~ N(0, 1/d)`` (d x d, one per
head), forms the target ``T = α Z ± β I`` and splits its best rank-k approximation by SVD,
``T ≈ U_k S_k V_kᵀ``: the first factor ``A = U_k √S_k``, the second ``B = V_k √S_k``, so that
``A Bᵀ`` is the rank-k truncation of ``T`` (exactly ``T`` when k ≥ d).

- :class:`MimeticQueryKey` ``(part="query" | "key")``: query kernel = A, key kernel = B, target
  ``α Z + β I`` (defaults α = β = 0.7).
- :class:`MimeticValueOutput` ``(part="value" | "output")``: value kernel = A, output kernel = Bᵀ,
  target ``α Z − β I`` (defaults α = β = 0.4; ``beta`` is the size of the negative identity).

The two halves of a pair are two initializer objects with the **same int seed**: each draws the
same Z, computes the same SVD and returns its own factor. :func:`mimetic_initializers` builds the
four at once (value/output seeded ``seed + 1`` so that the two targets are independent).

Kernel layouts are Keras ``MultiHeadAttention``'s: query/key/value ``(d, heads, k)``, output
``(heads, k, d)``; plain ``Dense`` kernels ``(d, k)`` (query/key/value) and ``(k, d)`` (output)
count as one head. ``MultiHeadAttention`` takes one ``kernel_initializer`` for its four projections,
so apply the pair with ``reinitialize(model_or_mha, policy="mimetic", seed=...)``, which assigns
these initializers' draws to every attention layer it finds.
"""

from __future__ import annotations

import math
import random
from typing import Any, ClassVar

import keras
import numpy as np
from keras import ops
from keras.src.initializers.random_initializers import RandomInitializer

from kerasinit._validation import check_choice, check_float_dtype, check_real, check_shape
from kerasinit.initializers.base import Description, KerasinitInitializer, seed_argument
from kerasinit.initializers.registry import register


def mimetic_factors(target_width: int, heads: int, rank: int, alpha: float, beta: float, seed: Any,
                    dtype: str = "float32") -> tuple[Any, Any]:
    """``(A, B)``, each ``(heads, d, rank)``: per head, ``A Bᵀ`` is the best rank-``rank`` approximation
    of ``α Z + β I`` (Z ~ N(0, 1/d), drawn as one ``(heads, d, d)`` tensor with ``seed``); ``A = U√S``,
    ``B = V√S``. Columns beyond ``d`` (when ``rank > d``) are 0. Computed in float32 (float64 kept)."""
    d = target_width
    work = "float64" if dtype == "float64" else "float32"
    z = keras.random.normal((heads, d, d), stddev=d**-0.5, seed=seed, dtype=work)
    target = alpha * z + beta * ops.eye(d, dtype=work)
    u, s, vt = ops.svd(target)
    k = min(rank, d)
    root = ops.sqrt(s[:, :k])[:, None, :]
    a = u[:, :, :k] * root
    b = ops.transpose(vt, (0, 2, 1))[:, :, :k] * root
    if rank > d:
        pad = [(0, 0), (0, 0), (0, rank - d)]
        a, b = ops.pad(a, pad), ops.pad(b, pad)
    return a, b


class _Mimetic(KerasinitInitializer, RandomInitializer):
    """Shared machinery: the part's layout, the SVD split, config and description."""

    PARTS: ClassVar[tuple[str, str]] = ("", "")
    SIGN: ClassVar[float] = 1.0
    is_random = True
    example_shape = (16, 2, 8)

    def __init__(self, part: str | None = None, alpha: float | None = None, beta: float | None = None,
                 seed: Any = None) -> None:
        owner = type(self).__name__
        self.part = check_choice("part", self.PARTS[0] if part is None else part, self.PARTS, owner=owner)
        default = self._default
        self.alpha = check_real("alpha", default if alpha is None else alpha, owner=owner, nonnegative=True)
        self.beta = check_real("beta", default if beta is None else beta, owner=owner, nonnegative=True)
        super().__init__(seed=seed_argument(seed, owner))

    _default: ClassVar[float] = 0.0

    def _layout(self, shape: Any) -> tuple[tuple[int, ...], int, int, int]:
        """``(shape, d, heads, k)``: model width d, number of heads and head width k of a kernel."""
        owner = type(self).__name__
        shape = check_shape(shape, owner=owner)
        if len(shape) not in (2, 3) or 0 in shape:
            raise ValueError(
                f"{owner}: argument `shape` must be a MultiHeadAttention {self.part} kernel "
                f"{'(heads, k, d)' if self.part == 'output' else '(d, heads, k)'} or a Dense kernel "
                f"{'(k, d)' if self.part == 'output' else '(d, k)'} with no zero dimension; received {shape}."
            )
        if self.part == "output":
            heads = shape[0] if len(shape) == 3 else 1
            return shape, shape[-1], heads, shape[-2]
        heads = shape[1] if len(shape) == 3 else 1
        return shape, shape[0], heads, shape[-1]

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        dtype = check_float_dtype(dtype, owner=type(self).__name__)
        shape, d, heads, k = self._layout(shape)
        a, b = mimetic_factors(d, heads, k, self.alpha, self.SIGN * self.beta, self.seed, dtype)
        if self.part == self.PARTS[0]:  # (heads, d, k) -> (d, heads, k)
            out = ops.transpose(a, (1, 0, 2))
        elif self.part == "key":  # key kernel = B, same layout as the query
            out = ops.transpose(b, (1, 0, 2))
        else:  # output kernel = Bᵀ per head: (heads, k, d)
            out = ops.transpose(b, (0, 2, 1))
        return ops.cast(ops.reshape(out, shape), dtype)

    def get_config(self) -> dict[str, Any]:
        return {"part": self.part, "alpha": self.alpha, "beta": self.beta, **super().get_config()}

    def formula_text(self) -> str:
        sign = "+" if self.SIGN > 0 else "-"
        return f"{self.formula}; here {self.part} of {self.alpha:g} Z {sign} {self.beta:g} I"

    def _fans(self, shape: Any) -> tuple[tuple[int, ...], int, int]:
        """Attention fans: (d, heads·k) for query/key/value kernels, (heads·k, d) for the output."""
        shape, d, heads, k = self._layout(shape)
        return (shape, heads * k, d) if self.part == "output" else (shape, d, heads * k)

    def describe(self, shape: Any) -> Description:
        """Mean 0; the entry std is ``√(E Σ_{i≤k} s_i / (d·k))`` (s: singular values of the target),
        estimated from one NumPy draw of the targets (seed 0), so it holds to a few percent."""
        shape, d, heads, k = self._layout(shape)
        z = np.random.default_rng(0).normal(scale=d**-0.5, size=(heads, d, d))
        s = np.linalg.svd(self.alpha * z + self.SIGN * self.beta * np.eye(d), compute_uv=False)
        std = math.sqrt(float(s[:, :k].sum(axis=1).mean()) / (d * k))
        return self._record(shape, family="mimetic", distribution="mimetic_svd_factor", mean=0.0, std=std,
                            bounds=None, params={"part": self.part, "alpha": self.alpha, "beta": self.beta,
                                                 "heads": heads, "d": d, "k": k})


@register("mimetic_qk", catalogue=False)
class MimeticQueryKey(_Mimetic):
    """Trockman & Kolter (2023), "Mimetic initialization of self-attention layers": one half of the
    query/key pair, ``W_q^h W_k^hᵀ ≈ α Z_h + β I`` per head h (Z_h ~ N(0, 1/d), best rank-k split by SVD:
    query = U√S, key = V√S). Give the query and key initializers the same int ``seed``.
    ``part``: ``"query"`` (default) or ``"key"``; ``alpha = beta = 0.7`` by default (the paper's ViT setting).
    """

    PARTS = ("query", "key")
    SIGN = 1.0
    _default = 0.7
    formula = "W_q W_k^T = rank-k SVD truncation of alpha Z + beta I, Z ~ N(0, 1/d), per head; query U sqrt(S), key V sqrt(S)"
    reference = "Trockman & Kolter, ICML 2023 (arXiv:2305.09828)"


@register("mimetic_vo", catalogue=False)
class MimeticValueOutput(_Mimetic):
    """Trockman & Kolter (2023), "Mimetic initialization of self-attention layers": one half of the
    value/output pair, ``W_v^h W_o^h ≈ α Z_h − β I`` per head h (best rank-k split by SVD: value = U√S,
    output = (V√S)ᵀ). Give the value and output initializers the same int ``seed``.
    ``part``: ``"value"`` (default) or ``"output"``; ``alpha = beta = 0.4`` by default.
    """

    PARTS = ("value", "output")
    SIGN = -1.0
    _default = 0.4
    formula = "W_v W_o = rank-k SVD truncation of alpha Z - beta I, Z ~ N(0, 1/d), per head; value U sqrt(S), output (V sqrt(S))^T"
    reference = "Trockman & Kolter, ICML 2023 (arXiv:2305.09828)"


def mimetic_initializers(seed: int | None = None, alpha_qk: float = 0.7, beta_qk: float = 0.7,
                         alpha_vo: float = 0.4, beta_vo: float = 0.4) -> dict[str, _Mimetic]:
    """The four initializers of one attention layer: ``{"query", "key", "value", "output"}``.

    Query and key share ``seed``, value and output share ``seed + 1`` (independent targets). With
    ``seed=None`` one int is drawn from Python's ``random`` (which ``keras.utils.set_random_seed``
    seeds), so the pairs still match.
    """
    if seed is None:
        seed = random.randint(0, 2**31 - 3)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"mimetic_initializers: argument `seed` must be None or an int; received {seed!r}.")
    return {"query": MimeticQueryKey("query", alpha_qk, beta_qk, seed=seed),
            "key": MimeticQueryKey("key", alpha_qk, beta_qk, seed=seed),
            "value": MimeticValueOutput("value", alpha_vo, beta_vo, seed=seed + 1),
            "output": MimeticValueOutput("output", alpha_vo, beta_vo, seed=seed + 1)}


__all__ = ["MimeticQueryKey", "MimeticValueOutput", "mimetic_factors", "mimetic_initializers"]
