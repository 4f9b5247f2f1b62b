"""Variants from the classic initialization tutorials.

The tutorials this project grew out of compute a "simple" Xavier range 1/√fan_in, the
"normalized" Xavier range √6/√(fan_in + fan_out), a plain (untruncated) He normal, He for leaky
ReLUs and AlexNet's fixed N(0, 0.01²). All fan-dependent ones are ``VarianceScaling`` subclasses.
"""

from __future__ import annotations

from typing import Any

from kerasinit._validation import check_real
from kerasinit.initializers.fans import DEFAULT_NEGATIVE_SLOPE
from kerasinit.initializers.mirrors import HeNormal, RandomNormal, VarianceScaling
from kerasinit.initializers.registry import register


class _FixedVarianceScaling(VarianceScaling):
    """A VarianceScaling whose scale/mode/distribution are fixed by the class.

    Config keys: ``seed``, ``input_axes``, ``output_axes`` (like Keras's GlorotUniform), plus the
    subclass's own parameters.
    """

    _scale: float = 1.0
    _mode: str = "fan_in"
    _distribution: str = "uniform"

    def __init__(self, seed: Any = None, input_axes: list[int] | None = None, output_axes: list[int] | None = None) -> None:
        super().__init__(
            scale=self._scale, mode=self._mode, distribution=self._distribution, seed=seed,
            input_axes=input_axes, output_axes=output_axes,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        return {"seed": config["seed"], "input_axes": self.input_axes, "output_axes": self.output_axes}


@register("xavier", "simple_xavier_uniform")
class XavierUniform(_FixedVarianceScaling):
    """The "simple" Xavier of the classic tutorials: U[-r, r], r = 1/√fan_in.

    Var = 1/(3·fan_in), i.e. VarianceScaling(scale=1/3, mode="fan_in", distribution="uniform").
    This is the heuristic Glorot & Bengio (2010, eq. 1) start from, not the normalized one they
    propose (see :class:`NormalizedXavierUniform`).
    """

    formula = "U[-r, r], r = 1 / sqrt(fan_in)"
    reference = "Glorot & Bengio, AISTATS 2010, eq. 1 (the 'commonly used heuristic')"
    _scale = 1.0 / 3.0
    _mode = "fan_in"
    _distribution = "uniform"


@register("normalized_xavier")
class NormalizedXavierUniform(_FixedVarianceScaling):
    """Normalized Xavier (Glorot & Bengio 2010, eq. 16): U[-r, r], r = √6/√(fan_in + fan_out).

    Identical draws to :class:`GlorotUniform`.
    """

    formula = "U[-r, r], r = sqrt(6) / sqrt(fan_in + fan_out)"
    reference = "Glorot & Bengio, AISTATS 2010, eq. 16"
    _scale = 1.0
    _mode = "fan_avg"
    _distribution = "uniform"


@register()
class XavierNormal(_FixedVarianceScaling):
    """Xavier normal as the tutorials draw it: N(0, σ²), σ = √(2/(fan_in + fan_out)), not truncated."""

    formula = "N(0, s^2), s = sqrt(2 / (fan_in + fan_out))"
    reference = "Glorot & Bengio, AISTATS 2010"
    _scale = 1.0
    _mode = "fan_avg"
    _distribution = "untruncated_normal"


@register("he_normal_plain")
class PlainHeNormal(HeNormal):
    """He normal as the paper and tutorials draw it: N(0, σ²), σ = √(2/fan_in), not truncated.

    Same as ``HeNormal(truncated=False)``.
    """

    formula = "N(0, s^2), s = sqrt(2 / fan_in)"

    def __init__(self, seed: Any = None, input_axes: list[int] | None = None, output_axes: list[int] | None = None) -> None:
        super().__init__(seed=seed, input_axes=input_axes, output_axes=output_axes, truncated=False)

    def formula_text(self) -> str:
        return self.formula

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("truncated", None)
        return config


class _LeakyHe(VarianceScaling):
    _distribution = "untruncated_normal"

    def __init__(
        self, negative_slope: float = DEFAULT_NEGATIVE_SLOPE, seed: Any = None,
        input_axes: list[int] | None = None, output_axes: list[int] | None = None,
    ) -> None:
        a = check_real("negative_slope", negative_slope, owner=type(self).__name__)
        self.negative_slope = negative_slope
        super().__init__(
            scale=2.0 / (1.0 + a * a), mode="fan_in", distribution=self._distribution, seed=seed,
            input_axes=input_axes, output_axes=output_axes,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        return {
            "negative_slope": self.negative_slope, "seed": config["seed"],
            "input_axes": self.input_axes, "output_axes": self.output_axes,
        }


@register("kaiming_normal")
class LeakyHeNormal(_LeakyHe):
    """He et al. (2015) for leaky ReLU / PReLU with slope ``a``: N(0, σ²), σ = √(2/((1+a²)·fan_in)).

    ``a = 0`` gives plain He normal; the default ``a = 0.2`` is Keras's ``leaky_relu`` default.
    """

    formula = "N(0, s^2), s = sqrt(2 / ((1 + a^2) * fan_in))"
    reference = "He et al., ICCV 2015, eq. 15"
    _distribution = "untruncated_normal"


@register("kaiming_uniform")
class LeakyHeUniform(_LeakyHe):
    """He et al. (2015) for leaky ReLU with slope ``a``: U[-r, r], r = √(6/((1+a²)·fan_in))."""

    formula = "U[-r, r], r = sqrt(6 / ((1 + a^2) * fan_in))"
    reference = "He et al., ICCV 2015"
    _distribution = "uniform"


@register("alexnet")
class AlexNetNormal(RandomNormal):
    """Krizhevsky et al. (2012): N(0, 0.01²) for every layer, whatever its fans.

    AlexNet also set biases of conv2, 4, 5 and the hidden dense layers to ``Constant(1.0)`` (to
    give ReLUs positive inputs early) and the others to 0.
    """

    formula = "N(0, stddev^2), stddev = 0.01"
    reference = "Krizhevsky, Sutskever & Hinton, NeurIPS 2012"

    def __init__(self, stddev: float = 0.01, seed: Any = None) -> None:
        super().__init__(mean=0.0, stddev=stddev, seed=seed)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("mean")
        return config
