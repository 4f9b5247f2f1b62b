"""Masks as optimizer state, so that a compiled JAX step reads them instead of baking them in.

JAX's ``fit`` (and any loop built on ``optimizer.stateless_apply``) is a pure function of the
state it is handed: trainable, non-trainable, optimizer and metric variables. The mask
constraints run inside ``stateless_apply``, where only the trainable and the optimizer's own
variables are mapped to that state; a mask variable outside it is read once at trace time and
compiled in as a constant, so a later mask update would never reach the step. Binding the
masks to the optimizer's variables makes them state: the step reads whatever value the state
carries, and a mask update costs no re-tracing.

TensorFlow and PyTorch read variables by reference inside their train step and need no binding.
Keras saves optimizer variables by position, so masks are bound only while a step needs them
(``PruningCallback`` binds them for each epoch of ``fit`` and unbinds them before any
``on_epoch_end`` saves the model).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _tracked(optimizer: Any) -> list[Any]:
    return optimizer._variables  # Keras keeps the optimizer's variables in this list (saved by position)


def is_bound(optimizer: Any, variables: Sequence[Any]) -> bool:
    """Whether every one of ``variables`` is part of ``optimizer``'s state."""
    if optimizer is None or not variables:
        return False
    ids = {id(v) for v in _tracked(optimizer)}
    return all(id(v) in ids for v in variables)


def bind(optimizer: Any, variables: Sequence[Any]) -> None:
    """Append ``variables`` (not yet bound) to ``optimizer``'s variables."""
    if optimizer is None:
        raise ValueError("argument `optimizer` is None: compile the model (or build an optimizer) before binding masks.")
    ids = {id(v) for v in _tracked(optimizer)}
    for v in variables:
        if id(v) not in ids:
            optimizer._track_variable(v)
            ids.add(id(v))


def unbind(optimizer: Any, variables: Sequence[Any]) -> None:
    """Remove ``variables`` from ``optimizer``'s variables (by identity: Keras variables compare elementwise)."""
    if optimizer is None:
        return
    ids = {id(v) for v in variables}
    tracked = _tracked(optimizer)
    tracked[:] = [v for v in tracked if id(v) not in ids]
