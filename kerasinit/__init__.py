"""kerasinit: weight initialization for Keras 3 that you can choose, see and test.

``import kerasinit`` registers every initializer with Keras (package ``kerasinit``), so models
that use them save and load with nothing else; with tf_keras installed they are registered there
too (lazily, when tf_keras is imported).
"""

import os as _os
import sys as _sys

if _os.path.basename(_sys.argv[0] if _sys.argv else "") in ("kerasinit", "-m", "__main__.py"):
    # Running as the `kerasinit` command: keep TensorFlow's C++ start-up chatter off the terminal
    # (a library import never changes the caller's logging).
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from kerasinit.compat import install_tf_keras_hook as _install_tf_keras_hook  # noqa: E402
from kerasinit.compat import tf_keras_custom_objects  # noqa: E402
from kerasinit.describe import bounds_table, describe, summarize  # noqa: E402
from kerasinit.initializers import *  # noqa: E402, F403
from kerasinit.initializers import __all__ as _init_all  # noqa: E402

__version__ = "0.1.0"


def plot_bounds(*args, **kwargs):  # noqa: ANN002, ANN003 - thin lazy wrapper, see kerasinit.plots
    """Plot initializer ranges against fan-in (see :func:`kerasinit.plots.bounds.plot_bounds`)."""
    from kerasinit.plots.bounds import plot_bounds as _plot_bounds

    return _plot_bounds(*args, **kwargs)


_install_tf_keras_hook()

#: Submodules and names loaded on first use, so ``import kerasinit`` stays light and backend-neutral.
_LAZY = {
    "experiments": "kerasinit.experiments",
    "monitor": "kerasinit.monitor", "plots": "kerasinit.plots", "pruning": "kerasinit.pruning",
}
_LAZY_NAMES = {"VarianceMonitor": "kerasinit.monitor", "run_compare": "kerasinit.experiments.compare",
               "run_lottery": "kerasinit.experiments.lottery", "instability": "kerasinit.experiments.instability"}


def __getattr__(name: str):  # noqa: ANN202 - PEP 562 module attribute hook
    import importlib

    if name in _LAZY:
        return importlib.import_module(_LAZY[name])
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'kerasinit' has no attribute {name!r}")

__all__ = [*_init_all, "__version__", "bounds_table", "describe", "plot_bounds", "summarize", "tf_keras_custom_objects"]
