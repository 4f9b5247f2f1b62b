"""TensorBoard summaries of pruning (TFMOT's ``PruningSummaries``): each pruned weight's sparsity and threshold.

For a pruned weight ``w`` of ``n`` entries with mask ``m`` (1 = kept), written at the optimizer step
of the mask update that set ``m`` (the TensorBoard step):

* sparsity = #{i : m_i = 0} / n, the fraction of the weight pruned;
* threshold = min{|w_i| : m_i = 1}, the smallest kept magnitude: TFMOT's ``threshold`` (Zhu & Gupta
  2017, "To prune, or not to prune"), every weight of smaller magnitude is pruned. An empty mask has
  none: only its sparsity (1.0) is written.

The events go through the monitor's :class:`~kerasinit.monitor.tensorboard.TensorBoardWriter`
(imported on the first write; it imports TensorFlow, which writes the event files on every Keras
backend) as records of two kinds, so the tags read ``pruning_sparsity/{weight}/zero_fraction``
(the mask's fraction of zeros) and ``pruning_threshold/{weight}/min`` (the least kept ``|w|``),
``{weight}`` being the key of ``Pruner.masks`` (``"dense/kernel"``). Reopened on a ``log_dir``
that already holds events (a resumed run), (tag, step) pairs already there are not written again.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit._validation import check_choice

#: when the callback writes: at every mask update, or once per epoch (the masks at the epoch's end)
LOG_EVERY = ("update", "epoch")
SPARSITY_KIND, SPARSITY_STAT = "pruning_sparsity", "zero_fraction"
THRESHOLD_KIND, THRESHOLD_STAT = "pruning_threshold", "min"


def sparsity_tag(weight: str) -> str:
    """The TensorBoard tag of the sparsity of ``weight`` (a ``Pruner.masks`` key)."""
    return f"{SPARSITY_KIND}/{weight}/{SPARSITY_STAT}"


def threshold_tag(weight: str) -> str:
    """The TensorBoard tag of the threshold (least kept ``|w|``) of ``weight``."""
    return f"{THRESHOLD_KIND}/{weight}/{THRESHOLD_STAT}"


def check_log_dir(log_dir: Any, owner: str) -> str:
    """``log_dir`` as a path string, or a TypeError naming the argument."""
    if isinstance(log_dir, bool) or not isinstance(log_dir, str | os.PathLike):
        raise TypeError(f"{owner}: argument `log_dir` must be None or a directory path (str or os.PathLike) for "
                        f"TensorBoard's event files; received {log_dir!r} (type {type(log_dir).__name__}).")
    return os.fspath(log_dir)


def weight_summary(mask: np.ndarray, weight: np.ndarray) -> tuple[float, float | None]:
    """``(sparsity, threshold)`` of one weight (see the module's formulas); threshold None for an empty mask."""
    keep = np.asarray(mask).astype(bool)
    sparsity = float(np.count_nonzero(~keep)) / keep.size
    kept = np.abs(np.asarray(weight))[keep]
    return sparsity, (float(kept.min()) if kept.size else None)


class PruningSummaries:
    """Writes a pruner's per-weight sparsity and threshold to TensorBoard event files under ``log_dir``.

    Attributes:
        logged: the steps written, in order.
        refused: the steps not written because the masks did not hold the kept counts of that step's
            update (see :meth:`write`); each also warned.
    """

    def __init__(self, log_dir: str | os.PathLike[str], log_every: str = "update", owner: str = "PruningCallback") -> None:
        self.log_dir = check_log_dir(log_dir, owner)
        self.log_every = check_choice("log_every", log_every, LOG_EVERY, owner=owner)
        self.owner = owner
        self.logged: list[int] = []
        self.refused: list[int] = []
        self._writer: Any = None
        self._present: set[tuple[str, int]] = set()

    @property
    def last(self) -> int | None:
        """The last step written (None before the first)."""
        return self.logged[-1] if self.logged else None

    def _open(self) -> Any:
        if self._writer is None:
            from kerasinit.monitor.tensorboard import TensorBoardWriter, read_tensorboard_scalars

            if os.path.isdir(self.log_dir):
                self._present = {(tag, step) for tag, step, _ in read_tensorboard_scalars(self.log_dir)}
            self._writer = TensorBoardWriter(self.log_dir)
        return self._writer

    def write(self, step: int, pruner: Any, expected: Mapping[str, int] | None = None) -> bool:
        """Write every pruned weight's sparsity and threshold, as they are now, at TensorBoard step ``step``.

        ``expected`` (``{weight: kept count}``) is what the masks of ``step``'s update keep: if any mask
        keeps another count, its value would be labelled with the wrong step, so nothing is written,
        a warning says so and ``step`` goes to :attr:`refused`. Returns whether it was written.
        """
        masks = pruner.get_masks()
        wrong = {name: (int(masks[name].sum()), count) for name, count in (expected or {}).items()
                 if int(masks[name].sum()) != count}
        if wrong:
            self.refused.append(step)
            warnings.warn(f"{self.owner}: TensorBoard summaries of step {step} not written: the masks do not hold "
                          f"that update's kept counts ({{weight: (kept, expected)}} = {wrong}).", UserWarning, stacklevel=3)
            return False
        self.write_masks(step, masks, {w.name: to_numpy(w.variable) for w in pruner.weights})
        return True

    def write_masks(self, step: int, masks: Mapping[str, np.ndarray],
                    values: Mapping[str, np.ndarray] | None = None) -> None:
        """Write ``masks`` (``{weight: mask}``) at ``step``: each one's sparsity and, where ``values`` gives
        the magnitudes the mask was chosen from, its threshold (experiments: IMP's trained weights)."""
        writer = self._open()
        records = []
        for name, mask in masks.items():
            sparsity, threshold = weight_summary(mask, values[name] if values is not None else np.ones(mask.shape))
            if (sparsity_tag(name), step) not in self._present:
                records.append({"step": step, "layer": name, "kind": SPARSITY_KIND, SPARSITY_STAT: sparsity})
            if values is not None and threshold is not None and (threshold_tag(name), step) not in self._present:
                records.append({"step": step, "layer": name, "kind": THRESHOLD_KIND, THRESHOLD_STAT: threshold})
        if records:
            writer.write(records)
        self.logged.append(step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
