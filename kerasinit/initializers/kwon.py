"""Kwon-style per-activation initializers.

Kwon, Kwon, Chung & Lim tabulate, per activation, a uniform range and a normal σ, as printed in
Géron's *Hands-On Machine Learning* (1st ed., Table 11-1)::

    activation          uniform r                     normal σ
    logistic (sigmoid)  √(6/(n_in+n_out))             √(2/(n_in+n_out))
    tanh                4·√(6/(n_in+n_out))           4·√(2/(n_in+n_out))
    ReLU (and variants) √2·√(6/(n_in+n_out))          √2·√(2/(n_in+n_out))

i.e. ``VarianceScaling(scale=factor², mode="fan_avg")`` with factor 1, 4 or √2 (the normal is not
truncated). Note on the factor 4: the classic Theano deep-learning tutorials (after Glorot &
Bengio 2010) put the factor 4 on the *logistic sigmoid* instead, because its slope at 0 is 1/4;
Glorot & Bengio's paper itself states no such factor. Pass ``factor=`` to follow either reading.
"""

from __future__ import annotations

import math
from typing import Any

from kerasinit._validation import check_choice, check_real
from kerasinit.initializers.mirrors import VarianceScaling
from kerasinit.initializers.registry import register

#: The table's multiplier per activation.
KWON_FACTORS = {"logistic": 1.0, "tanh": 4.0, "relu": math.sqrt(2.0)}
_ACTIVATION_ALIASES = {
    "logistic": "logistic", "sigmoid": "logistic",
    "tanh": "tanh",
    "relu": "relu", "leaky_relu": "relu", "elu": "relu", "relu6": "relu", "prelu": "relu",
}
KWON_ACTIVATIONS = tuple(_ACTIVATION_ALIASES)


class _Kwon(VarianceScaling):
    _distribution = "uniform"
    _fixed_activation: str | None = None

    def __init__(
        self, activation: str = "relu", factor: float | None = None, seed: Any = None,
        input_axes: list[int] | None = None, output_axes: list[int] | None = None,
    ) -> None:
        owner = type(self).__name__
        check_choice("activation", activation, KWON_ACTIVATIONS, owner=owner)
        self.activation = activation
        self.factor = factor
        f = KWON_FACTORS[_ACTIVATION_ALIASES[activation]] if factor is None else check_real(
            "factor", factor, owner=owner, positive=True
        )
        super().__init__(
            scale=f * f, mode="fan_avg", distribution=self._distribution, seed=seed,
            input_axes=input_axes, output_axes=output_axes,
        )

    @property
    def effective_factor(self) -> float:
        return math.sqrt(self.scale)

    def get_config(self) -> dict[str, Any]:
        base = super().get_config()
        config = {"activation": self.activation, "factor": self.factor, "seed": base["seed"],
                  "input_axes": self.input_axes, "output_axes": self.output_axes}
        if self._fixed_activation is not None:
            config.pop("activation")
        return config

    def formula_text(self) -> str:
        kind = "U[-r, r], r" if self._distribution == "uniform" else "N(0, s^2), s"
        num = 6 if self._distribution == "uniform" else 2
        return f"{kind} = {self.effective_factor:.4g} * sqrt({num} / (n_in + n_out))"


@register()
class KwonUniform(_Kwon):
    """U[-r, r], r = factor·√(6/(n_in+n_out)); factor 1 (logistic), 4 (tanh), √2 (ReLU family).

    Reference: Kwon, Kwon, Chung & Lim (table reproduced in Géron, HOML 1st ed., Table 11-1).
    See the module docstring for the factor-4 note.
    """

    formula = "U[-r, r], r = factor * sqrt(6 / (n_in + n_out))"
    reference = "Kwon et al.; Geron, Hands-On ML 1st ed., Table 11-1"
    _distribution = "uniform"


@register()
class KwonNormal(_Kwon):
    """N(0, σ²), σ = factor·√(2/(n_in+n_out)), untruncated; factor 1, 4 or √2 as for KwonUniform."""

    formula = "N(0, s^2), s = factor * sqrt(2 / (n_in + n_out))"
    reference = "Kwon et al.; Geron, Hands-On ML 1st ed., Table 11-1"
    _distribution = "untruncated_normal"


class _FixedActivation(_Kwon):
    """A Kwon initializer whose activation is fixed by the class (config: factor, seed, axes)."""

    def __init__(
        self, factor: float | None = None, seed: Any = None,
        input_axes: list[int] | None = None, output_axes: list[int] | None = None,
    ) -> None:
        super().__init__(activation=self._fixed_activation, factor=factor, seed=seed,
                         input_axes=input_axes, output_axes=output_axes)


@register()
class KwonLogisticUniform(_FixedActivation, KwonUniform):
    """Logistic sigmoid: U[-r, r], r = √(6/(n_in+n_out)) (factor 1; the Theano tutorials use 4)."""

    _fixed_activation = "logistic"


@register()
class KwonLogisticNormal(_FixedActivation, KwonNormal):
    """Logistic sigmoid: N(0, σ²), σ = √(2/(n_in+n_out)) (factor 1)."""

    _fixed_activation = "logistic"


@register()
class KwonTanhUniform(_FixedActivation, KwonUniform):
    """tanh: U[-r, r], r = 4·√(6/(n_in+n_out)) (factor 4, as in Géron's Table 11-1)."""

    _fixed_activation = "tanh"


@register()
class KwonTanhNormal(_FixedActivation, KwonNormal):
    """tanh: N(0, σ²), σ = 4·√(2/(n_in+n_out)) (factor 4)."""

    _fixed_activation = "tanh"


@register()
class KwonReluUniform(_FixedActivation, KwonUniform):
    """ReLU family: U[-r, r], r = √2·√(6/(n_in+n_out)) (factor √2)."""

    _fixed_activation = "relu"


@register()
class KwonReluNormal(_FixedActivation, KwonNormal):
    """ReLU family: N(0, σ²), σ = √2·√(2/(n_in+n_out)) (factor √2)."""

    _fixed_activation = "relu"
