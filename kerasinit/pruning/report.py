"""``sparsity_report(model)``: per prunable weight, its size, nonzeros, sparsity and whether a mask holds it."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit.pruning.constraint import MaskConstraint
from kerasinit.pruning.selection import select


def sparsity_report(model: keras.layers.Layer) -> Any:
    """Per prunable weight and in total: shape, size, nonzeros, sparsity, whether masked.

    A pandas DataFrame (print it, or use it as data); the last row is ``total``.
    """
    import pandas as pd

    rows = []
    for w in select(model):
        values = to_numpy(w.variable)
        nonzeros = int(np.count_nonzero(values))
        rows.append({"layer": w.layer.name, "weight": w.attr, "shape": tuple(values.shape), "size": values.size,
                     "nonzeros": nonzeros, "sparsity": 1.0 - nonzeros / values.size if values.size else 0.0,
                     "masked": isinstance(w.variable.constraint, MaskConstraint)
                     and w.variable.constraint.for_variable(w.variable) is not None})
    size = sum(r["size"] for r in rows)
    nonzeros = sum(r["nonzeros"] for r in rows)
    rows.append({"layer": "total", "weight": "", "shape": (), "size": size, "nonzeros": nonzeros,
                 "sparsity": 1.0 - nonzeros / size if size else 0.0, "masked": all(r["masked"] for r in rows)})
    return pd.DataFrame(rows, columns=["layer", "weight", "shape", "size", "nonzeros", "sparsity", "masked"])
