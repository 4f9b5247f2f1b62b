"""kerasinit: weight initialization for Keras 3 that you can choose, see and test.

``import kerasinit`` registers every initializer with Keras (package ``kerasinit``), so models
that use them save and load with nothing else; with tf_keras installed they are registered there
too (lazily, when tf_keras is imported).

Run as the ``kerasinit`` command, the package defers all of that (Keras, and with it TensorFlow)
to the subcommand that needs it, so ``kerasinit --help`` answers at once.
"""

import os as _os
import sys as _sys

#: True in the ``kerasinit`` command's process (``kerasinit ...`` or ``python -m kerasinit``).
#: kerasinit.cli then chooses the backend and keeps native start-up lines off the terminal (a library
#: import never changes the caller's backend or logging).
AS_COMMAND = _os.path.basename(_sys.argv[0] if _sys.argv else "") in ("kerasinit", "-m", "__main__.py")

__version__ = "0.1.0"

#: Submodules and names loaded on first use, so ``import kerasinit`` stays light and backend-neutral.
_LAZY = {
    "experiments": "kerasinit.experiments",
    "monitor": "kerasinit.monitor", "mup": "kerasinit.mup", "plots": "kerasinit.plots", "pruning": "kerasinit.pruning",
}
_LAZY_NAMES = {"VarianceMonitor": "kerasinit.monitor", "run_compare": "kerasinit.experiments.compare",
               "run_lottery": "kerasinit.experiments.lottery", "instability": "kerasinit.experiments.instability"}


def _load_core() -> list[str]:
    """Import and register the initializers (and describe/compat); return their public names."""
    from kerasinit.compat import install_tf_keras_hook, tf_keras_custom_objects
    from kerasinit.describe import bounds_table, describe, summarize
    from kerasinit.initializers import __all__ as init_all
    from kerasinit.initializers import __dict__ as init_names

    names = {name: init_names[name] for name in init_all}
    names.update(bounds_table=bounds_table, describe=describe, summarize=summarize,
                 tf_keras_custom_objects=tf_keras_custom_objects)
    globals().update(names)
    install_tf_keras_hook()
    return sorted(names)


def plot_bounds(*args, **kwargs):  # noqa: ANN002, ANN003 - thin lazy wrapper, see kerasinit.plots
    """Plot initializer ranges against fan-in (see :func:`kerasinit.plots.bounds.plot_bounds`)."""
    from kerasinit.plots.bounds import plot_bounds as _plot_bounds

    return _plot_bounds(*args, **kwargs)


def __getattr__(name: str):  # noqa: ANN202 - PEP 562 module attribute hook
    import importlib

    if name in _LAZY:
        return importlib.import_module(_LAZY[name])
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    if AS_COMMAND and name not in globals():  # the command deferred the core: load it on first use
        _load_core()
        if name in globals():
            return globals()[name]
    raise AttributeError(f"module 'kerasinit' has no attribute {name!r}")


__all__ = ["__version__", "plot_bounds"]
if not AS_COMMAND:
    __all__ += _load_core()
