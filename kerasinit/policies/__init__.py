"""Policies: everything that overwrites the weights of a whole model, layer by layer.

Per-tensor draws are :mod:`kerasinit.initializers`; a policy walks a model
(:mod:`kerasinit.layers`) and decides which initializer, scale or data-driven rescaling each
weight gets:

- :func:`reinitialize` / :func:`recommend` (:mod:`~kerasinit.policies.activation`): by each layer's
  activation (Glorot & Bengio 2010, He et al. 2015, Klambauer et al. 2017), an initializer for
  every kernel, a per-layer mapping, or a registered structure-aware policy;
- structure-aware policies (:mod:`~kerasinit.policies.structural`, in :data:`POLICIES`): ``"fixup"``,
  ``"skipinit"``, ``"gpt2"``, ``"t_fixup"``, ``"mimetic"``, built on :func:`find_residual_blocks`
  (:mod:`~kerasinit.policies.residual`); add one with :func:`register_policy`;
- :func:`lsuv` (Mishkin & Matas 2016), data-dependent (:mod:`~kerasinit.policies.lsuv`);
- μP (Yang et al. 2021): :mod:`kerasinit.policies.mup` (``kerasinit.mup``).
"""

from kerasinit.policies.activation import KNOWN_ACTIVATIONS, recommend, reinitialize
from kerasinit.policies.lsuv import lsuv
from kerasinit.policies.registry import POLICIES, register_policy
from kerasinit.policies.residual import ResidualBlock, find_residual_blocks
from kerasinit.policies.structural import fixup, gpt2, mimetic, skipinit, t_fixup

__all__ = ["KNOWN_ACTIVATIONS", "POLICIES", "ResidualBlock", "find_residual_blocks", "fixup", "gpt2", "lsuv", "mimetic",
           "recommend", "register_policy", "reinitialize", "skipinit", "t_fixup"]
