"""Optional integrations, imported lazily so ``import kerasinit`` needs only Keras.

``install_tf_keras_hook()`` (called by ``import kerasinit``) registers every kerasinit class with
tf_keras as soon as tf_keras is imported, whichever of the two is imported first, without
importing tf_keras itself.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from typing import Any


def tf_keras_custom_objects() -> dict[str, type]:
    """``custom_objects`` for tf_keras ``.h5`` loading: plain class names (and ``kerasinit>Name``)."""
    from kerasinit.initializers.registry import CATALOGUE, PACKAGE

    out: dict[str, type] = {}
    for name, cls in CATALOGUE.items():
        out[name] = cls
        out[f"{PACKAGE}>{name}"] = cls
    return out


def _register_now() -> None:
    from kerasinit.compat.tf_keras import register_all

    register_all()


class _RegisteringLoader(importlib.abc.Loader):
    """Runs the real loader of ``tf_keras``, then registers kerasinit's classes with it."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        _register_now()

    def __getattr__(self, name: str) -> Any:  # resource readers etc.
        return getattr(self._loader, name)


class _TfKerasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "tf_keras":
            return None
        sys.meta_path.remove(self)  # one shot; also avoids finding ourselves below
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None and spec.loader is not None:
                spec.loader = _RegisteringLoader(spec.loader)
                return spec
        return None


def install_tf_keras_hook() -> None:
    """Register with tf_keras now if it is loaded, else right after it is first imported."""
    if "tf_keras" in sys.modules:
        _register_now()
    elif not any(isinstance(f, _TfKerasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _TfKerasFinder())


__all__ = ["install_tf_keras_hook", "tf_keras_custom_objects"]
