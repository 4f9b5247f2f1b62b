"""Objectives of the gradient-based scores: which loss, on probabilities or logits.

SNIP and GraSP differentiate a loss. A cross-entropy on probabilities behind softmax (sigmoid)
output layers is computed from the logits instead (:func:`linear_outputs` makes the output
activations linear while scoring): the same loss, without the clipping of saturated probabilities
that zeroes the gradient of an untrained deep model on JAX and PyTorch. SynFlow scores the logits
for the same reason (a softmax output sums to 1 whatever the weights).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

_PROBABILITY_LOSSES = {  # cross-entropies on probabilities -> (output activation, the same loss on logits)
    "sparse_categorical_crossentropy": ("softmax", keras.losses.sparse_categorical_crossentropy),
    "categorical_crossentropy": ("softmax", keras.losses.categorical_crossentropy),
    "binary_crossentropy": ("sigmoid", keras.losses.binary_crossentropy),
}


def _probability_loss(fn: Any) -> str | None:
    """The name of ``fn`` if it is a cross-entropy on probabilities (function or Loss with from_logits=False)."""
    if isinstance(fn, keras.losses.Loss):
        config = fn.get_config()
        name = getattr(getattr(fn, "fn", None), "__name__", None)
        return name if name in _PROBABILITY_LOSSES and not config.get("from_logits", False) else None
    name = getattr(fn, "__name__", None)
    return name if name in _PROBABILITY_LOSSES else None


def check_temperature(temperature: Any, owner: str = "prune_at_init") -> float:
    """``temperature`` as a float, finite and > 0."""
    if isinstance(temperature, bool) or not isinstance(temperature, int | float | np.integer | np.floating):
        raise TypeError(f"{owner}: argument `temperature` must be a positive number (GraSP's logit temperature, "
                        f"e.g. 200 as in Wang et al.'s code); received {temperature!r}.")
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"{owner}: argument `temperature` must be finite and > 0; received {temperature!r}.")
    return float(temperature)


def logits_loss(fn: Any) -> bool:
    """True if ``fn`` is a cross-entropy Loss with ``from_logits=True`` (its ``y_pred`` are logits)."""
    if not isinstance(fn, keras.losses.Loss):
        return False
    name = getattr(getattr(fn, "fn", None), "__name__", None)
    return name in _PROBABILITY_LOSSES and bool(fn.get_config().get("from_logits", False))


def loss_objective(model: keras.layers.Layer, loss: Any, owner: str = "prune_at_init") -> tuple[Any, bool]:
    """``(y, y_pred) -> mean loss`` from ``loss`` or the compiled model's loss, and whether it reads logits.

    A cross-entropy on probabilities behind softmax (sigmoid) output layers is computed from the
    logits instead (the output activations linear while scoring, see :func:`linear_outputs`): the same
    loss, without the clipping of saturated probabilities that zeroes the gradient of an untrained
    deep model on JAX and PyTorch (TensorFlow recovers the logits by itself).
    """
    loss = loss if loss is not None else getattr(model, "loss", None)
    if loss is None:
        raise ValueError(f"{owner}: argument `loss` is required for SNIP and GraSP when the model is not compiled "
                         "(e.g. loss='sparse_categorical_crossentropy').")
    fn = keras.losses.get(loss)
    name = _probability_loss(fn)
    outputs = output_layers(model)
    if name is not None and outputs:
        activation, on_logits = _PROBABILITY_LOSSES[name]
        if all(getattr(layer, "activation", None) is getattr(keras.activations, activation) for layer in outputs):
            return (lambda y, y_pred: keras.ops.mean(on_logits(y, y_pred, from_logits=True))), True
    return (lambda y, y_pred: keras.ops.mean(fn(y, y_pred))), False


def output_layers(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The layers producing ``model``'s outputs (functional and Sequential models; none otherwise)."""
    outputs = getattr(model, "outputs", None) or []
    found = [getattr(t, "_keras_history", (None,))[0] for t in keras.tree.flatten(outputs)]
    return [layer for layer in found if isinstance(layer, keras.layers.Layer)]


@contextlib.contextmanager
def linear_outputs(model: keras.layers.Layer) -> Iterator[None]:
    """Meanwhile, the output layers' ``activation`` is the identity (SynFlow scores the logits)."""
    swapped = []
    for layer in output_layers(model):
        act = getattr(layer, "activation", None)
        if callable(act) and act is not keras.activations.linear:
            swapped.append((layer, act))
            layer.activation = keras.activations.linear
    try:
        yield
    finally:
        for layer, act in swapped:
            layer.activation = act
