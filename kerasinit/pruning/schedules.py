"""Pruning schedules with TFMOT's semantics, and two fixes.

A schedule answers, for an optimizer step ``s``: do the masks update now, and to what sparsity?

- Update steps (TFMOT): ``begin <= s`` and (``s <= end`` or ``end < 0``) and
  ``(s - begin) % frequency == 0``.
- ``PolynomialDecay`` (Zhu & Gupta 2017): ``final + (initial - final) * (1 - p)**power`` with
  ``p = clip((s - begin) / (end - begin), 0, 1)``.

Where TFMOT misbehaves, these do better (documented, tested):
- ``begin_step == end_step`` makes TFMOT divide 0 by 0 (NaN sparsity); here p = 1 from ``end_step``.
- When ``end_step - begin_step`` is not a multiple of ``frequency``, TFMOT's last update comes
  before ``end_step`` and the run never reaches ``final_sparsity``; here ``end_step`` is always an
  update step.
"""

from __future__ import annotations

import numbers
from typing import Any

import keras

from kerasinit._validation import check_real


def _check_int(name: str, value: Any, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: argument `{name}` must be an int; received {value!r}.")
    return int(value)


def check_sparsity(name: str, value: Any, owner: str) -> float:
    """A sparsity is a real number in [0, 1)."""
    s = check_real(name, value, owner=owner)
    if not 0.0 <= s < 1.0:
        raise ValueError(f"{owner}: argument `{name}` must be in [0, 1); received {value!r}.")
    return s


class PruningSchedule:
    """Base class: ``should_prune(step)``, ``sparsity(step)`` and ``__call__(step) -> (bool, float)``."""

    def __init__(self, begin_step: int, end_step: int, frequency: int, allow_no_end: bool) -> None:
        owner = type(self).__name__
        self.begin_step = _check_int("begin_step", begin_step, owner)
        self.end_step = _check_int("end_step", end_step, owner)
        self.frequency = _check_int("frequency", frequency, owner)
        if self.begin_step < 0:
            raise ValueError(f"{owner}: argument `begin_step` must be >= 0; received {begin_step}.")
        if self.end_step == -1 and not allow_no_end:
            raise ValueError(f"{owner}: argument `end_step` must be >= begin_step (a decay needs an end); received -1.")
        if self.end_step != -1 and self.end_step < self.begin_step:
            raise ValueError(
                f"{owner}: argument `end_step` must be -1 (never stop) or >= begin_step={begin_step}; received {end_step}."
            )
        if self.frequency <= 0:
            raise ValueError(f"{owner}: argument `frequency` must be > 0; received {frequency}.")

    def should_prune(self, step: int) -> bool:
        """Whether the masks update at optimizer step ``step``."""
        if step < self.begin_step or (self.end_step >= 0 and step > self.end_step):
            return False
        return (step - self.begin_step) % self.frequency == 0 or step == self.end_step

    def sparsity(self, step: int) -> float:  # pragma: no cover - subclasses define it
        raise NotImplementedError

    def __call__(self, step: int) -> tuple[bool, float]:
        return self.should_prune(step), self.sparsity(step)

    def update_steps(self, start: int, stop: int) -> list[int]:
        """The update steps in ``[start, stop)``."""
        if stop <= start:
            return []
        last = stop - 1 if self.end_step < 0 else min(stop - 1, self.end_step)
        first = max(start, self.begin_step)
        if first > last:
            return []
        offset = (first - self.begin_step) % self.frequency
        steps = list(range(first + ((self.frequency - offset) % self.frequency), last + 1, self.frequency))
        if self.end_step >= 0 and first <= self.end_step <= last and (not steps or steps[-1] != self.end_step):
            steps.append(self.end_step)
        return steps

    @property
    def target(self) -> float:  # pragma: no cover - subclasses define it
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:  # pragma: no cover - subclasses define it
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PruningSchedule:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()  # type: ignore[union-attr]

    __hash__ = None  # type: ignore[assignment]


@keras.saving.register_keras_serializable(package="kerasinit")
class ConstantSparsity(PruningSchedule):
    """Prune to ``target_sparsity`` at every update step from ``begin_step`` (to ``end_step``; -1: forever)."""

    def __init__(self, target_sparsity: float, begin_step: int, end_step: int = -1, frequency: int = 100) -> None:
        self.target_sparsity = check_sparsity("target_sparsity", target_sparsity, "ConstantSparsity")
        super().__init__(begin_step, end_step, frequency, allow_no_end=True)

    def sparsity(self, step: int) -> float:
        return self.target_sparsity

    @property
    def target(self) -> float:
        return self.target_sparsity

    def get_config(self) -> dict[str, Any]:
        return {"target_sparsity": self.target_sparsity, "begin_step": self.begin_step, "end_step": self.end_step,
                "frequency": self.frequency}


@keras.saving.register_keras_serializable(package="kerasinit")
class PolynomialDecay(PruningSchedule):
    """Zhu & Gupta (2017): sparsity rises from ``initial_sparsity`` to ``final_sparsity`` between
    ``begin_step`` and ``end_step`` as ``final + (initial - final)·(1 - p)^power``."""

    def __init__(
        self, initial_sparsity: float, final_sparsity: float, begin_step: int, end_step: int, power: float = 3,
        frequency: int = 100,
    ) -> None:
        self.initial_sparsity = check_sparsity("initial_sparsity", initial_sparsity, "PolynomialDecay")
        self.final_sparsity = check_sparsity("final_sparsity", final_sparsity, "PolynomialDecay")
        self.power = check_real("power", power, owner="PolynomialDecay", positive=True)
        super().__init__(begin_step, end_step, frequency, allow_no_end=False)

    def sparsity(self, step: int) -> float:
        span = self.end_step - self.begin_step
        if span == 0:  # TFMOT: 0/0 = NaN
            p = 1.0 if step >= self.end_step else 0.0
        else:
            p = min(1.0, max(0.0, (step - self.begin_step) / span))
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * (1.0 - p) ** self.power

    @property
    def target(self) -> float:
        return self.final_sparsity

    def get_config(self) -> dict[str, Any]:
        return {"initial_sparsity": self.initial_sparsity, "final_sparsity": self.final_sparsity,
                "begin_step": self.begin_step, "end_step": self.end_step, "power": self.power,
                "frequency": self.frequency}
