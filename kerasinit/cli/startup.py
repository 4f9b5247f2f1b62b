"""Starting Keras for a command: the backend a light command runs on, TensorFlow's start-up lines kept quiet."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

#: Subcommands whose numbers do not depend on the backend (formulas, bounds, a few thousand draws):
#: they run on Keras's NumPy backend, which never loads TensorFlow, unless the user chose a backend.
LIGHT_COMMANDS = ("list", "describe", "plot-bounds")
LIGHT_BACKEND = "numpy"


def _keras_json_backend() -> str | None:
    """The ``backend`` entry of Keras's ``keras.json`` (``$KERAS_HOME`` or ``~/.keras``), if any."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as f:
            backend = json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return backend if isinstance(backend, str) else None


def choose_backend(command: str) -> str | None:
    """Before Keras loads, put ``command`` on :data:`LIGHT_BACKEND` if it is light, nobody chose a backend
    and JAX (which Keras's NumPy backend imports) is installed.

    ``KERAS_BACKEND`` always wins, and so does a ``keras.json`` naming another backend than the
    ``"tensorflow"`` Keras writes there by itself. Returns the backend chosen here, or ``None``.
    """
    if command not in LIGHT_COMMANDS or "keras" in sys.modules or os.environ.get("KERAS_BACKEND"):
        return None
    if _keras_json_backend() not in (None, "tensorflow"):
        return None
    if not _light_backend_installed():  # `pip install kerasinit` alone: Keras's default backend
        return None
    os.environ["KERAS_BACKEND"] = LIGHT_BACKEND
    return LIGHT_BACKEND


def _light_backend_installed() -> bool:
    """Keras's NumPy backend imports JAX (for its FFT and a few other ops): usable only where JAX is installed."""
    import importlib.util

    try:
        return importlib.util.find_spec("jax") is not None
    except (ImportError, ValueError):
        return False


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Meanwhile, send what native code writes to file descriptor 2 to /dev/null; ``sys.stderr`` still shows.

    TensorFlow's absl and CUDA stubs print start-up lines straight to descriptor 2 whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says. Python's ``sys.stderr`` moves to a copy of the original descriptor
    for the duration, so warnings and tracebacks still reach the terminal; both are restored after.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no real descriptor 2 (embedded interpreters)
        yield
        return
    python_stderr = sys.stderr
    encoding = getattr(python_stderr, "encoding", None) or "utf-8"
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    temporary = sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=encoding, errors="backslashreplace")
    try:
        yield
    finally:
        sys.stderr = python_stderr
        _repoint_log_handlers(temporary, python_stderr)
        temporary.close()
        os.dup2(saved, 2)
        os.close(saved)


def _repoint_log_handlers(old: Any, new: Any) -> None:
    """Logging handlers created meanwhile (TensorFlow's, absl's) captured ``old``: hand them ``new``."""
    import logging

    loggers = [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values()
                                      if isinstance(lg, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is old:
                handler.setStream(new)


def load_keras(command: str, verbose: bool = False) -> None:
    """Import Keras for ``command`` (light commands on :data:`LIGHT_BACKEND`, see :func:`choose_backend`).

    Unless ``verbose``, TensorFlow's native start-up lines stay off the terminal: ``TF_CPP_MIN_LOG_LEVEL``
    defaults to 3 in this process and descriptor 2 is silenced during the import only.
    """
    if "keras" in sys.modules:  # called from Python: Keras and its backend are the caller's
        return
    choose_backend(command)
    if verbose:
        import keras

        print(f"kerasinit: Keras {keras.__version__}, backend {keras.config.backend()}", file=sys.stderr)
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_stderr_silenced():
        import keras  # noqa: F401


__all__ = ["LIGHT_BACKEND", "LIGHT_COMMANDS", "choose_backend", "load_keras", "native_stderr_silenced"]
