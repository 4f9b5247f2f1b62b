"""Initializer classes: each a serializable ``keras.initializers.Initializer`` that draws one tensor.

- :mod:`~kerasinit.initializers.mirrors`: Keras's whole catalogue, bit-identical draws;
- :mod:`~kerasinit.initializers.tutorial`: simple and normalized Xavier, plain and leaky He, AlexNet;
- :mod:`~kerasinit.initializers.kwon`: Kwon et al.'s per-activation table;
- :mod:`~kerasinit.initializers.structured`: delta-orthogonal, Dirac, sparse;
  :mod:`~kerasinit.initializers.zero` (ZerO), :mod:`~kerasinit.initializers.mimetic` (attention pairs),
  :mod:`~kerasinit.initializers.snapshot` (``FromArray``);
- :mod:`~kerasinit.initializers.fans` (fans and gains), :mod:`~kerasinit.initializers.registry`
  (``get``/``serialize``/``deserialize``, the catalogue), :mod:`~kerasinit.initializers.describe`
  (the numbers behind each one).

Writing a new one: subclass :class:`KerasinitInitializer` (or a mirror, e.g. ``VarianceScaling``,
where the math is the same) and decorate it with :func:`~kerasinit.initializers.registry.register`;
see :mod:`~kerasinit.initializers.base`. Code that overwrites a whole model's weights is in
:mod:`kerasinit.policies`.
"""

from kerasinit.initializers.base import Description, KerasinitInitializer
from kerasinit.initializers.fans import DEFAULT_NEGATIVE_SLOPE, compute_fans, gain
from kerasinit.initializers.kwon import (
    KwonLogisticNormal,
    KwonLogisticUniform,
    KwonNormal,
    KwonReluNormal,
    KwonReluUniform,
    KwonTanhNormal,
    KwonTanhUniform,
    KwonUniform,
)
from kerasinit.initializers.mimetic import MimeticQueryKey, MimeticValueOutput, mimetic_initializers
from kerasinit.initializers.mirrors import (
    STFT,
    Constant,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    Identity,
    LecunNormal,
    LecunUniform,
    Ones,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
    Zeros,
)
from kerasinit.initializers.registry import CATALOGUE, deserialize, get, serialize
from kerasinit.initializers.snapshot import FromArray
from kerasinit.initializers.structured import DeltaOrthogonal, Dirac, SparseNormal
from kerasinit.initializers.tutorial import (
    AlexNetNormal,
    LeakyHeNormal,
    LeakyHeUniform,
    NormalizedXavierUniform,
    PlainHeNormal,
    XavierNormal,
    XavierUniform,
)
from kerasinit.initializers.zero import ZerO

#: The Keras built-ins mirrored here (class name -> Keras class).
KERAS_MIRRORS = (
    "Zeros", "Ones", "Constant", "Identity", "STFT", "RandomNormal", "RandomUniform", "TruncatedNormal",
    "VarianceScaling", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "LecunNormal",
    "LecunUniform", "Orthogonal",
)

__all__ = [
    "CATALOGUE", "DEFAULT_NEGATIVE_SLOPE", "KERAS_MIRRORS", "STFT", "AlexNetNormal", "Constant",
    "DeltaOrthogonal", "Description", "Dirac", "FromArray", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity",
    "KerasinitInitializer", "KwonLogisticNormal", "KwonLogisticUniform", "KwonNormal", "KwonReluNormal",
    "KwonReluUniform", "KwonTanhNormal", "KwonTanhUniform", "KwonUniform", "LeakyHeNormal",
    "LeakyHeUniform", "LecunNormal", "LecunUniform", "MimeticQueryKey", "MimeticValueOutput", "NormalizedXavierUniform", "Ones", "Orthogonal",
    "PlainHeNormal", "RandomNormal", "RandomUniform", "SparseNormal", "TruncatedNormal", "VarianceScaling",
    "XavierNormal", "XavierUniform", "ZerO", "Zeros", "compute_fans", "deserialize", "gain", "get", "mimetic_initializers",
    "serialize",
]
