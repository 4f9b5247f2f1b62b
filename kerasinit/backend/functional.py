"""What to differentiate, described without any framework: a model as a function of some of its weights.

* :class:`ModelFunction`: ``objective(y, model(x))`` through ``Model.stateless_call`` with chosen
  variables (the *targets*, e.g. the prunable kernels) replaced by given tensors and every other
  variable by a given value list. No variable is ever assigned, so the model's weights are untouched
  whatever the values passed (SynFlow's ``|w|``, GraSP's ``w ± εg``).
* :class:`ProbeSpec`: one probe evaluation of :class:`~kerasinit.monitor.VarianceMonitor` (the
  tracked layer outputs, the loss, the kernels whose gradients are wanted).
* :func:`variable_slots`: where each target sits among a model's trainable and non-trainable
  variables (what ``stateless_call`` takes).

The backend modules (:mod:`kerasinit.backend.tensorflow`, ``.jax``, ``.torch``) turn these into
gradient, Hessian-vector and probe functions; :mod:`kerasinit.backend` picks the module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras

Objective = Callable[[Any, Any], Any]
ProbeFunction = Callable[[Any, Any, Any], tuple[list[Any], list[Any], list[Any]]]


def variable_slots(model: Any, targets: Sequence[Any], what: str = "weight") -> list[tuple[int, int]]:
    """``(0: trainable | 1: non-trainable, index)`` of each target among ``model``'s variables."""
    groups = (list(model.trainable_variables), list(model.non_trainable_variables))
    slots: list[tuple[int, int]] = []
    for target in targets:
        for group, variables in enumerate(groups):
            index = next((i for i, v in enumerate(variables) if v is target), None)
            if index is not None:
                slots.append((group, index))
                break
        else:
            raise ValueError(f"{what} {target.path!r} is not a variable of the model being differentiated.")
    return slots


def substitute(slots: Sequence[tuple[int, int]], values: tuple[Sequence[Any], Sequence[Any]],
               target_values: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """``values`` (trainable, non-trainable) with the targets at ``slots`` replaced by ``target_values``."""
    groups = (list(values[0]), list(values[1]))
    for (group, index), value in zip(slots, target_values, strict=True):
        groups[group][index] = value
    return groups


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
        self.slots = variable_slots(model, targets)

    def values(self) -> tuple[list[Any], list[Any]]:
        """The current values of every trainable and non-trainable variable."""
        return [v.value for v in self.trainable], [v.value for v in self.non_trainable]

    def __call__(self, target_values: Sequence[Any], values: tuple[Sequence[Any], Sequence[Any]], x: Any, y: Any) -> Any:
        trainable, non_trainable = substitute(self.slots, values, target_values)
        y_pred, _ = self.model.stateless_call(trainable, non_trainable, x, training=False)
        return self.objective(y, y_pred)


@dataclass
class ProbeSpec:
    """What one probe evaluation computes.

    Attributes:
        net: a Keras model/layer called as ``net(x, training=False)``.
        split: maps ``net``'s output to ``(y_pred, [tracked layer outputs])``.
        data_loss: ``(y, y_pred, sample_weight) -> scalar`` without the model's added losses
            (None when no gradient is asked for).
        add_model_losses: add the regularization/activity losses of ``net``'s layers.
        kernels: the variables whose gradients are wanted, in order.
        output_gradients: also return dL/d(each tracked layer output).
    """

    net: Any
    split: Callable[[Any], tuple[Any, list[Any]]]
    data_loss: Callable[[Any, Any, Any], Any] | None = None
    add_model_losses: bool = True
    kernels: list[Any] = field(default_factory=list)
    output_gradients: bool = False

    @property
    def needs_gradients(self) -> bool:
        return bool(self.kernels) or self.output_gradients
