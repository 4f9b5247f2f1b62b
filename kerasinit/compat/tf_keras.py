"""tf_keras (legacy Keras 2) registration of kerasinit classes.

A Keras 3 initializer works inside tf_keras layers, but tf_keras's ``.keras`` and SavedModel
loading resolve ``"kerasinit>Name"`` through tf_keras's own registry, so every class is
registered there too. ``.h5`` loading uses plain class names: pass
``custom_objects=kerasinit.tf_keras_custom_objects()``.
"""

from __future__ import annotations

import tf_keras

from kerasinit.initializers.registry import PACKAGE, REGISTER_HOOKS, REGISTERED


def register_one(cls: type) -> None:
    """Register one kerasinit class with tf_keras (idempotent)."""
    if tf_keras.saving.get_registered_object(f"{PACKAGE}>{cls.__name__}") is None:
        tf_keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def register_all() -> None:
    """Register every kerasinit class with tf_keras, and every class registered from now on."""
    for cls in REGISTERED.values():
        register_one(cls)
    if register_one not in REGISTER_HOOKS:
        REGISTER_HOOKS.append(register_one)
