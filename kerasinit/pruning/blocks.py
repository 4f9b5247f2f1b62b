"""Block sparsity: whole ``r × c`` blocks of a weight kept or pruned together (TFMOT's ``block_size``).

Semantics of TFMOT's ``prune_low_magnitude(block_size=(r, c), block_pooling_type=...)``
(``pruning_impl._maybe_update_block_mask``): the weight is read as a matrix, its ``|w|`` pooled
over non-overlapping ``r × c`` blocks (``"AVG"``: the mean, ``"MAX"``: the largest), the
``k = max(round(B · (1 − s)), 1)`` blocks of largest pooled score kept (``B`` blocks, ``s`` the
sparsity; the same float32 rounding as the unstructured masks), and the block mask expanded back to
the weight's shape. Sparse kernels that multiply by blocks (XNNPack's 1×4 / 4×1 SpMM, Elsen et al.,
"Fast Sparse ConvNets", CVPR 2020) then skip whole blocks.

The matrix: a weight of shape ``(d_1, …, d_n)`` is viewed (C order) as ``(d_1 ⋯ d_{n−1}, d_n)``,
the matrix a GEMM reads: a Dense kernel ``(n_in, n_out)`` as itself, a 1×1 Conv2D kernel
``(1, 1, c_in, c_out)`` as ``(c_in, c_out)`` (TFMOT squeezes it to the same matrix), a 3×3 kernel
as its im2col matrix ``(9 · c_in, c_out)``. TFMOT accepts 2-D weights only; here any weight of rank
>= 2 has this view (the TFMOT bridge refuses what TFMOT refuses).

Edges: when ``r`` (``c``) does not divide the rows (columns), the last blocks are partial and are
pooled over the entries they hold (TFMOT pools with ``padding="SAME"``, which averages over the
valid entries only and never selects a pad in MAX). Blocks always start at row/column 0. TFMOT's
SAME pooling centres its windows (``⌊pad/2⌋`` before), while its mask expansion starts at 0, so
where ``⌈n/r⌉·r − n >= 2`` TFMOT scores windows shifted against the blocks it masks; the masks agree
whenever that padding is 0 or 1 (every divisible shape, every ``r = 2``).

Counting: the sparsity is met in blocks (``k`` of ``B`` kept). With partial edge blocks the
fraction of zero *weights* differs slightly from it (the report counts weights). Ties between equal
pooled scores keep the lower block index (row-major), as the unstructured masks keep the lower flat
index; TFMOT keeps every block tied with the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from kerasinit.pruning.masks import keep_count, keep_largest

POOLING = ("AVG", "MAX")
NO_BLOCK = (1, 1)


def check_block(block_size: Any, block_pooling_type: Any, owner: str) -> tuple[tuple[int, int], str]:
    """``block_size`` as a pair of positive ints and ``block_pooling_type`` as ``"AVG"`` or ``"MAX"``."""
    ok = isinstance(block_size, tuple | list) and len(block_size) == 2 and all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in block_size)
    if not ok:
        raise TypeError(f"{owner}: argument `block_size` must be a pair of ints (rows, columns) of the blocks pruned "
                        f"together, e.g. (1, 4); (1, 1) is unstructured. Received {block_size!r}.")
    if min(int(v) for v in block_size) < 1:
        raise ValueError(f"{owner}: argument `block_size` must hold positive sizes; received {tuple(block_size)!r}.")
    if not isinstance(block_pooling_type, str) or block_pooling_type not in POOLING:
        raise ValueError(f"{owner}: argument `block_pooling_type` must be one of {list(POOLING)} (TFMOT's spelling); "
                         f"received {block_pooling_type!r}.")
    return (int(block_size[0]), int(block_size[1])), block_pooling_type


def exclusive(block: tuple[int, int], owner: str, *, pattern: Any = None, granularity: str = "weight") -> None:
    """ValueError when blocks meet another structure (an N:M ``pattern``, whole channels)."""
    if block == NO_BLOCK:
        return
    if pattern is not None:
        raise ValueError(f"{owner}: arguments `block_size`={block} and `pattern`={pattern!r} exclude each other "
                         "(an N:M pattern fixes its own groups); pass one of them.")
    if granularity != "weight":
        raise ValueError(f"{owner}: argument `block_size`={block} needs granularity='weight' (blocks are the unit "
                         f"pruned); received granularity={granularity!r}.")


def matrix_shape(shape: Sequence[int], name: str = "weight") -> tuple[int, int]:
    """The 2-D view ``(d_1 ⋯ d_{n−1}, d_n)`` of a weight of ``shape`` (rank >= 2)."""
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2:
        raise ValueError(f"block_size: weight {name!r} of shape {shape} has rank {len(shape)}; blocks need a matrix "
                         "(rank >= 2). Leave it out with `layers`.")
    return math.prod(shape[:-1]), shape[-1]


def grid_shape(shape: Sequence[int], block: tuple[int, int]) -> tuple[int, int]:
    """How many blocks along the rows and the columns of the weight's matrix view."""
    rows, cols = matrix_shape(shape)
    return -(-rows // block[0]), -(-cols // block[1])


def block_count(shape: Sequence[int], block: tuple[int, int]) -> int:
    """The number of blocks ``B`` of a weight of ``shape``."""
    r, c = grid_shape(shape, block)
    return r * c


def pool(values: np.ndarray, block: tuple[int, int], pooling: str) -> np.ndarray:
    """The ``(⌈rows/r⌉, ⌈cols/c⌉)`` block scores of ``values``: mean or max over each block's entries.

    ``values`` are pooled as given (pass ``|w|`` for magnitudes); partial edge blocks pool the
    entries they hold. The mean is taken in float64.
    """
    values = np.asarray(values)
    rows, cols = matrix_shape(values.shape)
    br, bc = block
    gr, gc = -(-rows // br), -(-cols // bc)
    matrix = values.reshape(rows, cols)
    if pooling == "MAX":
        padded = np.full((gr * br, gc * bc), -np.inf, dtype=np.result_type(values.dtype, np.float32))
        padded[:rows, :cols] = matrix
        return padded.reshape(gr, br, gc, bc).max(axis=(1, 3))
    padded = np.zeros((gr * br, gc * bc), dtype="float64")
    padded[:rows, :cols] = matrix
    sums = padded.reshape(gr, br, gc, bc).sum(axis=(1, 3))
    heights = np.minimum(br, rows - br * np.arange(gr))  # entries per block along each axis (edges partial)
    widths = np.minimum(bc, cols - bc * np.arange(gc))
    return sums / np.outer(heights, widths)


def expand(keep: np.ndarray, shape: Sequence[int], block: tuple[int, int]) -> np.ndarray:
    """uint8 mask of ``shape`` keeping every entry of the blocks where ``keep`` (the block grid) is true."""
    rows, cols = matrix_shape(shape)
    grid = np.asarray(keep, bool).reshape(grid_shape(shape, block))
    full = np.repeat(np.repeat(grid, block[0], axis=0), block[1], axis=1)[:rows, :cols]
    return np.ascontiguousarray(full).reshape(tuple(shape)).view(np.uint8)


def block_selection(values: np.ndarray, sparsity: float, block: tuple[int, int], pooling: str,
                    bound: float | None = None) -> tuple[np.ndarray, float]:
    """uint8 block mask of ``values`` keeping ``keep_count(B, sparsity)`` blocks by pooled ``|w|``; the threshold.

    Pruned blocks are zeros, pool to 0 and go first, so the sparsity never decreases; ``bound``
    speeds the search up as in :func:`kerasinit.pruning.masks.keep_largest`.
    """
    values = np.asarray(values)
    magnitudes = np.abs(values.astype(np.result_type(values.dtype, np.float32), copy=False))
    scores = pool(magnitudes, block, pooling).ravel()
    keep, threshold = keep_largest(scores, keep_count(scores.size, sparsity), bound)
    return expand(keep, values.shape, block), threshold


def block_mask(values: np.ndarray, sparsity: float, block: tuple[int, int] = (1, 4), pooling: str = "AVG") -> np.ndarray:
    """uint8 mask (1 = keep) of ``values``'s shape keeping whole ``block`` blocks of largest pooled ``|w|``."""
    block, pooling = check_block(block, pooling, "block_mask")
    return block_selection(values, sparsity, block, pooling)[0]


def kept_blocks(mask: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """The block grid of ``mask``: True where a block holds any kept entry."""
    return pool(np.asarray(mask, dtype="float32"), block, "MAX") > 0
