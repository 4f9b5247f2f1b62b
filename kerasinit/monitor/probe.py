"""The probe batch: a fixed ``(x, y)`` pair on which activations and gradients are measured.

Accepted forms:

* ``(x, y)`` or ``(x, y, sample_weight)`` arrays (``x`` may be a dict/list for multi-input models);
* inputs alone: one array or tensor, or a dict of them (activations and weights only: gradients
  need targets);
* a PyDataset (its batch 0) or any iterable of batches such as a ``tf.data.Dataset`` (its first
  batch);
* ``"auto"``: the first batch of the training data of the running ``fit()``, read once from the
  data adapter of fit's epoch iterator (found on the call stack when training begins) and kept for
  the whole run. Pass an explicit probe if your training loop is not ``Model.fit``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import keras

from kerasinit._arrays import to_numpy


@dataclass(frozen=True)
class Probe:
    """A fixed batch: inputs ``x`` (array or structure of arrays), targets ``y`` (may be None)."""

    x: Any
    y: Any = None
    sample_weight: Any = None

    @property
    def size(self) -> int:
        return int(keras.tree.flatten(self.x)[0].shape[0])


def _to_numpy(structure: Any) -> Any:
    if structure is None:
        return None
    return keras.tree.map_structure(to_numpy, structure)


def _from_batch(batch: Any) -> Probe:
    x, y, sw = keras.utils.unpack_x_y_sample_weight(batch if isinstance(batch, tuple) else (batch,))
    return Probe(_to_numpy(x), _to_numpy(y), _to_numpy(sw))


def _is_inputs(probe: Any) -> bool:
    """An array/tensor (has ``shape`` and ``dtype``) or a dict of them: the inputs alone, not a dataset."""
    return isinstance(probe, dict) or (hasattr(probe, "shape") and hasattr(probe, "dtype"))


def validate_probe(probe: Any) -> None:
    """Raise TypeError unless ``probe`` is one of the accepted forms (checked at construction)."""
    if _is_inputs(probe):
        return
    if isinstance(probe, str):
        if probe != "auto":
            raise ValueError(f"probe must be 'auto', an (x, y) pair or a dataset; got the string {probe!r}")
        return
    if isinstance(probe, list | tuple):
        if not 1 <= len(probe) <= 3:
            raise ValueError(f"probe as a tuple must be (x,), (x, y) or (x, y, sample_weight); got {len(probe)} items")
        return
    if isinstance(probe, keras.utils.PyDataset) or hasattr(probe, "__iter__"):
        return
    raise TypeError(
        "probe must be 'auto', an (x, y) pair of arrays, a PyDataset or an iterable of batches "
        f"(e.g. tf.data.Dataset); got {type(probe).__name__}"
    )


def resolve_probe(probe: Any) -> Probe:
    """Turn an explicit probe (not ``"auto"``) into a :class:`Probe` of NumPy arrays."""
    if _is_inputs(probe):
        return Probe(_to_numpy(probe))
    if isinstance(probe, list | tuple):
        return _from_batch(tuple(probe))
    if isinstance(probe, keras.utils.PyDataset):
        return _from_batch(probe[0])
    try:
        batch = next(iter(probe))
    except StopIteration:
        raise ValueError("probe: the dataset is empty; it must yield at least one batch") from None
    return _from_batch(batch)


def probe_from_fit(model: Any) -> Probe:
    """The first training batch of the ``fit()`` call that is running ``model``.

    Looks up the call stack for fit's ``epoch_iterator`` (every Keras 3 backend trainer names it so)
    and draws one batch from a fresh iterator of its data adapter, leaving training untouched.
    """
    frame = inspect.currentframe()
    try:
        while frame is not None:
            local = frame.f_locals
            if frame.f_code.co_name == "fit" and local.get("self") is model and "epoch_iterator" in local:
                adapter = getattr(local["epoch_iterator"], "data_adapter", None)
                if adapter is not None:
                    return _from_batch(next(iter(adapter.get_numpy_iterator())))
            frame = frame.f_back
    finally:
        del frame
    raise ValueError(
        "probe='auto' needs the monitor to run inside model.fit(); pass an explicit probe=(x, y) instead"
    )
