"""kerasinit initializers: Keras mirrors, tutorial and Kwon variants, registry, gains."""

from kerasinit.initializers import modern_policies  # noqa: F401 - registers the structure-aware policies
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
from kerasinit.initializers.lsuv import lsuv
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
from kerasinit.initializers.policy import recommend, reinitialize
from kerasinit.initializers.registry import CATALOGUE, deserialize, get, serialize
from kerasinit.initializers.residual import ResidualBlock, find_residual_blocks
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
    "PlainHeNormal", "RandomNormal", "ResidualBlock", "RandomUniform", "SparseNormal", "TruncatedNormal", "VarianceScaling",
    "XavierNormal", "XavierUniform", "ZerO", "Zeros", "compute_fans", "deserialize", "find_residual_blocks", "gain", "get", "lsuv", "mimetic_initializers", "recommend", "reinitialize",
    "serialize",
]
