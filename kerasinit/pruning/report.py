"""``sparsity_report(model)``: per prunable weight, its size, nonzeros, sparsity, whether it is emptied,
and whether a mask holds its zeros."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit.pruning.constraint import MaskConstraint
from kerasinit.pruning.selection import select


def _mask_of(variable: Any) -> np.ndarray | None:
    """The installed mask of ``variable`` as a bool array, or None."""
    constraint = getattr(variable, "constraint", None)
    if not isinstance(constraint, MaskConstraint):
        return None
    mask = constraint.for_variable(variable)
    return None if mask is None else mask.numpy().astype(bool)


def sparsity_report(model: keras.layers.Layer) -> Any:
    """Per prunable weight and in total: shape, size, nonzeros, sparsity, collapsed, unmasked_zeros, masked.

    * ``collapsed``: the weight has no nonzero entry (layer collapse: it passes no signal; the pruning
      entry points warn with a ``LayerCollapseWarning`` when they empty one). Total: any.
    * ``unmasked_zeros``: zeros of the weight that no mask holds (no mask, or a mask that keeps that
      entry): training will move them. Total: the sum.
    * ``masked``: a mask is installed **and** it holds every zero of the weight
      (``unmasked_zeros == 0``), i.e. the weight's sparsity is kept by the mask. A mask attached
      at sparsity 0 is all ones and still counts on a weight with no zeros; a mask that came back
      all ones over pruned weights (a model reloaded from the legacy ``.h5`` format, which saves
      no mask) does not: those zeros would grow back. Total: all.

    A pandas DataFrame (print it, or use it as data); the last row is ``total``.
    """
    import pandas as pd

    rows = []
    for w in select(model):
        values = to_numpy(w.variable)
        zeros = values == 0
        nonzeros = int(values.size - np.count_nonzero(zeros))
        mask = _mask_of(w.variable)
        unmasked = int(np.count_nonzero(zeros if mask is None else zeros & mask))
        rows.append({"layer": w.layer.name, "weight": w.attr, "shape": tuple(values.shape), "size": values.size,
                     "nonzeros": nonzeros, "sparsity": 1.0 - nonzeros / values.size if values.size else 0.0,
                     "collapsed": bool(values.size) and nonzeros == 0, "unmasked_zeros": unmasked,
                     "masked": mask is not None and unmasked == 0})
    size = sum(r["size"] for r in rows)
    nonzeros = sum(r["nonzeros"] for r in rows)
    rows.append({"layer": "total", "weight": "", "shape": (), "size": size, "nonzeros": nonzeros,
                 "sparsity": 1.0 - nonzeros / size if size else 0.0, "collapsed": any(r["collapsed"] for r in rows),
                 "unmasked_zeros": sum(r["unmasked_zeros"] for r in rows), "masked": all(r["masked"] for r in rows)})
    return pd.DataFrame(rows, columns=["layer", "weight", "shape", "size", "nonzeros", "sparsity", "collapsed",
                                       "unmasked_zeros", "masked"])
