"""tf_keras (legacy Keras 2) registration of kerasinit classes.

A Keras 3 initializer works inside tf_keras layers, but tf_keras's ``.keras`` and SavedModel
loading resolve ``"kerasinit>Name"`` through tf_keras's own registry, so every class is
registered there too. ``.h5`` loading uses plain class names: pass
``custom_objects=kerasinit.tf_keras_custom_objects()``.
"""

from __future__ import annotations

import tf_keras

from kerasinit.initializers.registry import CATALOGUE, PACKAGE


def register_all() -> None:
    """Register every kerasinit class with tf_keras (idempotent)."""
    for name, cls in CATALOGUE.items():
        if tf_keras.saving.get_registered_object(f"{PACKAGE}>{name}") is None:
            tf_keras.saving.register_keras_serializable(package=PACKAGE)(cls)
