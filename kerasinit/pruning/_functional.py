"""A model as a pure function of some of its weights, for the pruning-at-initialization scores.

:class:`ModelFunction` evaluates ``objective(y, model(x))`` through ``Model.stateless_call``
with chosen variables (the *targets*, e.g. the prunable kernels) replaced by given tensors and
every other variable by a given value list. The backend gradient modules (``_grads_tf``,
``_grads_jax``, ``_grads_torch``) differentiate it with respect to the target tensors; no
variable is ever assigned, so the model's weights are untouched whatever the values passed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras

Objective = Callable[[Any, Any], Any]


class ModelFunction:
    """``(target values, (trainable values, non-trainable values), x, y) -> objective(y, model(x))``.

    Args:
        model: a built Keras model (called with ``training=False``: BatchNorm in inference mode).
        targets: the variables differentiated with respect to (each a variable of ``model``).
        objective: ``(y, y_pred) -> scalar``.
    """

    def __init__(self, model: keras.layers.Layer, targets: Sequence[Any], objective: Objective) -> None:
        self.model = model
        self.objective = objective
        self.trainable = list(model.trainable_variables)
        self.non_trainable = list(model.non_trainable_variables)
        self.slots: list[tuple[int, int]] = []
        for target in targets:
            for group, variables in enumerate((self.trainable, self.non_trainable)):
                index = next((i for i, v in enumerate(variables) if v is target), None)
                if index is not None:
                    self.slots.append((group, index))
                    break
            else:
                raise ValueError(f"weight {target.path!r} is not a variable of the model being scored.")

    def values(self) -> tuple[list[Any], list[Any]]:
        """The current values of every trainable and non-trainable variable."""
        return [v.value for v in self.trainable], [v.value for v in self.non_trainable]

    def __call__(self, target_values: Sequence[Any], values: tuple[Sequence[Any], Sequence[Any]], x: Any, y: Any) -> Any:
        groups = (list(values[0]), list(values[1]))
        for (group, index), value in zip(self.slots, target_values, strict=True):
            groups[group][index] = value
        y_pred, _ = self.model.stateless_call(groups[0], groups[1], x, training=False)
        return self.objective(y, y_pred)
