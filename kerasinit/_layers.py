"""Walking a model's layers (shared by initializer policies, pruning and lottery tickets)."""

from __future__ import annotations

from collections.abc import Iterator

import keras


def iter_layers(model: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """Every layer inside ``model`` (nested models and sublayers of subclassed models included), once.

    Uses Keras's own recursive layer walk (``Layer._flatten_layers``), which sees sublayers that
    subclassed models and layers assign as attributes.
    """
    seen: set[int] = set()
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if id(layer) not in seen:
            seen.add(id(layer))
            yield layer
