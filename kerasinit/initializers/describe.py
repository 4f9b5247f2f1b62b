"""The numbers behind an initializer: ``describe``, ``summarize``, ``bounds_table``.

``describe`` gives the expected statistics and bounds for one shape; ``summarize`` draws samples
and puts their min, max, mean and std beside the expected ones (the classic "generate 1,000
weights and print the summary" experiment); ``bounds_table`` tabulates ranges against fan-in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit._validation import check_shape
from kerasinit.initializers.base import Description, KerasinitInitializer
from kerasinit.initializers.registry import get, resolve


def as_kerasinit(initializer: Any) -> KerasinitInitializer:
    """``initializer`` (name, config, class, instance, or a Keras built-in) as a kerasinit object."""
    init = resolve(initializer)() if isinstance(initializer, str) else get(initializer)  # names: our own error
    if isinstance(init, KerasinitInitializer):
        return init
    if isinstance(init, keras.initializers.Initializer):
        cls = resolve(type(init).__name__)  # Keras built-in -> its mirror
        return cls.from_config(init.get_config())
    raise TypeError(
        f"argument `initializer` must be a kerasinit or Keras initializer (or its name); received {initializer!r}."
    )


def describe(initializer: Any, shape: Sequence[int]) -> Description:
    """Family, distribution, fans, expected mean/std, bounds and formula for ``shape``."""
    return as_kerasinit(initializer).describe(shape)


def sample(initializer: Any, shape: Sequence[int], n: int | None = None, seed: int | None = 0) -> np.ndarray:
    """At least ``n`` values (default: one tensor) drawn with ``shape``'s fans, as a flat float64 array.

    One tensor of ``shape`` holds ``prod(shape)`` values; when ``n`` asks for more, the tensor is
    drawn again from a ``keras.random.SeedGenerator(seed)`` (fresh values each time, same fans).
    """
    init = as_kerasinit(initializer)
    shape = check_shape(shape, owner="sample")
    size = math.prod(shape)
    if size == 0:
        raise ValueError(f"argument `shape` must have no zero dimension; received {shape}.")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"argument `n` must be a positive int; received {n!r}.")
    reps = 1 if n is None or not init.is_random else math.ceil(n / size)
    if init.is_random:
        config = {**init.get_config(), "seed": keras.random.SeedGenerator(seed) if reps > 1 else seed}
        init = type(init).from_config(config)
    draws = [to_numpy(init(shape, dtype="float32")).astype("float64").ravel() for _ in range(reps)]
    return np.concatenate(draws)


@dataclass(frozen=True)
class Summary:
    """Sampled statistics beside the expected ones."""

    expected: Description
    n: int
    seed: int | None
    min: float
    max: float
    mean: float
    std: float
    #: the Keras backend that drew the samples (seeded draws differ between backends)
    backend: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["expected"] = self.expected.to_dict()
        return d

    def __str__(self) -> str:
        return (
            f"{self.expected}\n  sampled       n={self.n} (seed {self.seed}{f', {self.backend}' if self.backend else ''}): min={self.min:.6f}  max={self.max:.6f}  "
            f"mean={self.mean:.6f}  std={self.std:.6f}"
        )


def summarize(
    initializer: Any, shape: Sequence[int] | None = None, n: int = 1000, seed: int | None = 0
) -> Summary:
    """Draw ``n`` weights (with the fans of ``shape``; default ``shape=(n,)``) and summarize them."""
    shape = (n,) if shape is None else shape
    values = sample(initializer, shape, n=n, seed=seed)
    return Summary(
        expected=describe(initializer, shape), n=int(values.size), seed=seed, min=float(values.min()),
        max=float(values.max()), mean=float(values.mean()), std=float(values.std()), backend=keras.config.backend(),
    )


def bounds_table(
    initializers: Any, fan_in: Iterable[int] = range(1, 101), fan_out: int | Iterable[int] | None = None
) -> Any:
    """A pandas DataFrame of ranges against fan-in, one row per (initializer, fan_in).

    Columns: ``initializer, fan_in, fan_out, mean, std, low, high, bounded``. ``low``/``high`` are
    the uniform limits or truncation points; for untruncated normals they are mean ± std (and
    ``bounded`` is False). ``fan_out`` defaults to ``fan_in`` (square layers); an int fixes it.
    """
    import pandas as pd

    if isinstance(initializers, str | dict) or not isinstance(initializers, Iterable):
        initializers = [initializers]
    fan_ins = list(fan_in)
    if not fan_ins:
        raise ValueError("argument `fan_in` must hold at least one value.")
    if fan_out is None or isinstance(fan_out, int):
        fan_outs = [fan_out or f for f in fan_ins]
    else:
        fan_outs = list(fan_out)
        if len(fan_outs) != len(fan_ins):
            raise ValueError(f"argument `fan_out` must be an int or hold one value per fan_in ({len(fan_ins)}); received {len(fan_outs)}.")
    rows = []
    for item in initializers:
        init = as_kerasinit(item)
        label = item if isinstance(item, str) else type(init).__name__
        for fi, fo in zip(fan_ins, fan_outs, strict=True):
            d = init.describe((fi, fo))
            bounded = d.bounds is not None
            lo, hi = d.bounds if bounded else (d.mean - d.std, d.mean + d.std)
            rows.append({"initializer": label, "fan_in": fi, "fan_out": fo, "mean": d.mean, "std": d.std,
                         "low": lo, "high": hi, "bounded": bounded})
    return pd.DataFrame(rows)
