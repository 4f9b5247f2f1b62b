"""Registration with Keras and tf_keras, at the moment each is imported (no import forced).

``import kerasinit`` imports neither Keras nor a backend. :func:`install_import_hooks` (called by
``import kerasinit``) makes kerasinit's Keras objects known to Keras as soon as Keras is imported,
whichever of the two is imported first: :data:`KERAS_REGISTRANTS` are the modules whose import
registers them (every initializer, under package ``kerasinit``), so a saved model loads with nothing but ``import kerasinit``. The same holds for tf_keras
(:mod:`kerasinit.compat.tf_keras`); ``.h5`` loading in tf_keras takes
``custom_objects=tf_keras_custom_objects()``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable
from typing import Any

#: Modules whose import registers kerasinit's serializable objects with Keras.
KERAS_REGISTRANTS: tuple[str, ...] = ("kerasinit.initializers",)


def tf_keras_custom_objects() -> dict[str, type]:
    """``custom_objects`` for tf_keras ``.h5`` loading: plain class names (and ``kerasinit>Name``)."""
    from kerasinit.initializers.registry import CATALOGUE, PACKAGE

    out: dict[str, type] = {}
    for name, cls in CATALOGUE.items():
        out[name] = cls
        out[f"{PACKAGE}>{name}"] = cls
    return out


#: Keras was imported by a kerasinit module in the middle of its own import: register when that ends.
_pending = False


def _kerasinit_importing(but: str = "") -> bool:
    """Whether a kerasinit module (other than ``but``; the package itself does nothing after its hooks) is
    being imported right now."""
    return any(name.startswith("kerasinit.") and name != but and getattr(getattr(m, "__spec__", None), "_initializing", False)
               for name, m in list(sys.modules.items()))


def register_with_keras(finished: str = "") -> None:
    """Import :data:`KERAS_REGISTRANTS`, unless a kerasinit import is under way (``finished``: the module
    whose import just ended): their imports would meet that module half-initialized, so the
    registration waits for it (:class:`_ImportFinder` on ``kerasinit.*``)."""
    global _pending
    if _kerasinit_importing(but=finished):
        _pending = True
        return
    _pending = False
    for name in KERAS_REGISTRANTS:
        if name not in sys.modules:
            importlib.import_module(name)


def _after_kerasinit_module(name: str) -> None:
    if _pending:
        register_with_keras(finished=name)


def register_with_tf_keras() -> None:
    from kerasinit.compat.tf_keras import register_all

    register_all()


class _RegisteringLoader(importlib.abc.Loader):
    """Runs the real loader of a module, then ``after(module name)``."""

    def __init__(self, loader: Any, after: Callable[[str], None]) -> None:
        self._loader = loader
        self._after = after

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        self._after(module.__name__)

    def __getattr__(self, name: str) -> Any:  # resource readers etc.
        return getattr(self._loader, name)


class _ImportFinder(importlib.abc.MetaPathFinder):
    """Wraps the loader of module ``name`` (``prefix=True``: of every module below it) so that
    ``after(module name)`` runs once it is imported; one shot unless ``prefix``."""

    def __init__(self, name: str, after: Callable[[str], None], prefix: bool = False) -> None:
        self.name, self.after, self.prefix = name, after, prefix

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if not (fullname.startswith(self.name + ".") if self.prefix else fullname == self.name):
            return None
        if not self.prefix:
            sys.meta_path.remove(self)  # one shot
        for finder in sys.meta_path:
            if finder is self:
                continue
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None and spec.loader is not None:
                spec.loader = _RegisteringLoader(spec.loader, self.after)
                return spec
        return None


def _when_imported(name: str, after: Callable[[str], None], prefix: bool = False) -> None:
    """``after(name)`` now if module ``name`` is loaded, else right after its first import (``prefix``:
    after each import of a module below ``name``, always)."""
    if name in sys.modules and not prefix:
        after(name)
    elif not any(isinstance(f, _ImportFinder) and (f.name, f.prefix) == (name, prefix) for f in sys.meta_path):
        sys.meta_path.insert(0, _ImportFinder(name, after, prefix))


def install_import_hooks() -> None:
    """Register kerasinit with Keras and tf_keras now if they are loaded, else right after their first import."""
    _when_imported("kerasinit", _after_kerasinit_module, prefix=True)
    _when_imported("keras", lambda _: register_with_keras())
    _when_imported("tf_keras", lambda _: register_with_tf_keras())


def install_tf_keras_hook() -> None:
    """Register with tf_keras now if it is loaded, else right after it is first imported."""
    _when_imported("tf_keras", lambda _: register_with_tf_keras())


__all__ = ["KERAS_REGISTRANTS", "install_import_hooks", "install_tf_keras_hook", "register_with_keras",
           "tf_keras_custom_objects"]
