"""What every kerasinit initializer shares: a ``describe(shape)`` record and a dtype check.

Concrete classes subclass Keras's own classes (so draws are Keras's, bit for bit) and mix in
:class:`KerasinitInitializer`; random ones also mix in :class:`FloatOnly`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import keras

from kerasinit._validation import check_float_dtype, check_seed, check_shape, with_detail

#: std of N(0, 1) truncated to [-2, 2] (Keras, TF and JAX truncate at two standard deviations).
TRUNCATED_STD_FACTOR = 0.87962566103423978


@dataclass(frozen=True)
class Description:
    """The numbers behind an initializer for one shape.

    ``bounds`` is the support of the distribution: ``(-limit, limit)`` for uniform draws,
    the truncation points for truncated normals, ``(v, v)`` for constants and ``None`` when
    unbounded. ``mean``/``std`` are the expected values of one entry.
    """

    name: str
    family: str
    distribution: str
    shape: tuple[int, ...]
    fan_in: int
    fan_out: int
    mean: float
    std: float
    bounds: tuple[float, float] | None
    formula: str
    mode: str | None = None
    scale: float | None = None
    reference: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def variance(self) -> float:
        return self.std**2

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["bounds"] = None if self.bounds is None else list(self.bounds)
        d["variance"] = self.variance
        return d

    def __str__(self) -> str:
        lines = [
            f"{self.name}: {self.formula}",
            f"  distribution  {self.distribution}  (family {self.family})",
            f"  shape         {self.shape}  fan_in={self.fan_in}  fan_out={self.fan_out}"
            + (f"  mode={self.mode}" if self.mode else ""),
            f"  expected      mean={self.mean:.6f}  std={self.std:.6f}  var={self.variance:.6g}",
        ]
        if self.bounds is not None:
            lo, hi = self.bounds
            if math.isclose(lo, -hi) and hi > 0:
                lines.append(f"  bounds        ±{hi:.6f}")
            else:
                lines.append(f"  bounds        [{lo:.6f}, {hi:.6f}]")
        if self.reference:
            lines.append(f"  reference     {self.reference}")
        return "\n".join(lines)


def uniform_moments(low: float, high: float) -> tuple[float, float]:
    """Mean and std of U[low, high]."""
    return (low + high) / 2.0, (high - low) / math.sqrt(12.0)


class KerasinitInitializer:
    """Mixin: every kerasinit initializer can describe itself for a given shape."""

    #: Human-readable formula shown by ``kerasinit list`` and ``describe``.
    formula: ClassVar[str] = ""
    #: Paper or source of the scheme.
    reference: ClassVar[str] = ""
    #: True for initializers whose draws depend on a seed.
    is_random: ClassVar[bool] = False

    #: A shape this initializer supports, used by ``kerasinit list`` and the tests.
    example_shape: ClassVar[tuple[int, ...]] = (10, 10)

    @classmethod
    def example(cls) -> KerasinitInitializer:
        """An instance that works on :attr:`example_shape` (``cls()`` unless arguments are required)."""
        return cls()

    def describe(self, shape: Any) -> Description:  # pragma: no cover - every class overrides
        raise NotImplementedError

    def _fans(self, shape: Any) -> tuple[tuple[int, ...], int, int]:
        from kerasinit.initializers.fans import compute_fans

        shape = check_shape(shape, owner=type(self).__name__)
        fan_in, fan_out = compute_fans(
            shape, getattr(self, "input_axes", None), getattr(self, "output_axes", None)
        )
        return shape, fan_in, fan_out

    def formula_text(self) -> str:
        """The formula for this instance (defaults to the class's :attr:`formula`)."""
        return self.formula

    def _record(self, shape: Any, **kwargs: Any) -> Description:
        shape, fan_in, fan_out = self._fans(shape)
        kwargs.setdefault("formula", self.formula_text())
        kwargs.setdefault("reference", self.reference)
        return Description(
            name=type(self).__name__, shape=shape, fan_in=fan_in, fan_out=fan_out, **kwargs
        )


class FloatOnly:
    """Mixin: validate ``shape`` and refuse non-floating dtypes (Keras does not check)."""

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        owner = type(self).__name__
        shape = check_shape(shape, owner=owner)
        dtype = check_float_dtype(dtype, owner=owner)
        return super().__call__(shape, dtype=dtype)  # type: ignore[misc]


def keras_first(owner: str, keras_init: Any, *checks: Any) -> None:
    """Run Keras's own constructor (``keras_init()``), then kerasinit's ``checks``, as a drop-in must.

    Where Keras raises, its exception type and wording come first and the first kerasinit check
    that also fails adds its detail after them (``"<Keras's message> [kerasinit: <ours>]"``), so
    code and tests written against Keras see what Keras raises. Where Keras accepts, the checks
    run as they are (they only refuse values Keras accepts but cannot draw from sensibly).
    """
    try:
        keras_init()
    except (TypeError, ValueError, AttributeError) as exc:
        detail = None
        for check in checks:
            try:
                check()
            except (TypeError, ValueError) as ours:
                detail = ours
                break
        raise with_detail(exc, detail) from exc
    for check in checks:
        check()


def seed_argument(seed: Any, owner: str) -> Any:
    """``seed`` checked as Keras takes it: None, an int, a ``SeedGenerator`` or a SeedGenerator config dict."""
    seed = check_seed(seed, owner=owner)
    if isinstance(seed, dict):
        try:
            gen = keras.saving.deserialize_keras_object(seed)
        except Exception as exc:  # noqa: BLE001 - any failure means a malformed seed config
            raise ValueError(f"{owner}: argument `seed` is a dict but not a SeedGenerator config: {seed!r}.") from exc
        if not isinstance(gen, keras.random.SeedGenerator):
            raise ValueError(f"{owner}: argument `seed` is a dict but not a SeedGenerator config: {seed!r}.")
    return seed
