"""kerasinit: weight initialization for Keras 3 that you can choose, see and test.

``import kerasinit`` is light and the same in every process, the ``kerasinit`` command's
included: it imports neither Keras nor a backend. Public names load on first use (PEP 562), and
every kerasinit initializer registers with Keras (package ``kerasinit``) as soon as Keras is
imported, before or after kerasinit, so models that use them save and load with nothing else;
with tf_keras installed they are registered there too (:mod:`kerasinit.compat`).

The layout (``docs/design.md``): :mod:`~kerasinit.initializers` (Initializer classes),
:mod:`~kerasinit.policies` (what overwrites a model's weights), :mod:`~kerasinit.layers` (walking a
model, the weight table), :mod:`~kerasinit.monitor`, :mod:`~kerasinit.pruning`,
:mod:`~kerasinit.experiments`, :mod:`~kerasinit.plots`, :mod:`~kerasinit.backend`, :mod:`~kerasinit.cli`.
"""

from __future__ import annotations

import importlib as _importlib
from typing import Any as _Any

from kerasinit.compat import install_import_hooks as _install_import_hooks

__version__ = "0.1.0"

#: Subpackages and modules reachable as attributes (``kerasinit.pruning``, ``kerasinit.mup``...).
_MODULES = {
    "backend": "kerasinit.backend", "compat": "kerasinit.compat", "experiments": "kerasinit.experiments",
    "initializers": "kerasinit.initializers", "layers": "kerasinit.layers", "monitor": "kerasinit.monitor",
    "mup": "kerasinit.policies.mup", "plots": "kerasinit.plots", "policies": "kerasinit.policies",
    "pruning": "kerasinit.pruning",
}
#: Public names defined outside :mod:`kerasinit.initializers` -> the module defining them.
_NAMES = {
    "describe": "kerasinit.initializers.describe", "summarize": "kerasinit.initializers.describe",
    "bounds_table": "kerasinit.initializers.describe", "plot_bounds": "kerasinit.plots.bounds",
    "recommend": "kerasinit.policies", "reinitialize": "kerasinit.policies", "lsuv": "kerasinit.policies",
    "find_residual_blocks": "kerasinit.policies", "ResidualBlock": "kerasinit.policies",
    "tf_keras_custom_objects": "kerasinit.compat", "VarianceMonitor": "kerasinit.monitor",
    "run_compare": "kerasinit.experiments.compare", "run_lottery": "kerasinit.experiments.lottery",
    "instability": "kerasinit.experiments.instability",
}


def _public() -> list[str]:
    initializers = _importlib.import_module("kerasinit.initializers")
    return sorted({"__version__", *initializers.__all__, *_NAMES})


def __getattr__(name: str) -> _Any:  # PEP 562: names load on first use
    if name in _MODULES:
        return _importlib.import_module(_MODULES[name])
    if name in _NAMES:
        return getattr(_importlib.import_module(_NAMES[name]), name)
    if name == "__all__":
        return _public()
    if not name.startswith("__"):
        initializers = _importlib.import_module("kerasinit.initializers")
        if name in initializers.__all__:
            return getattr(initializers, name)
    raise AttributeError(f"module 'kerasinit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES, *_public()})


_install_import_hooks()
