"""Magnitude pruning native to Keras 3, pruning at initialization and lottery tickets, with a TFMOT bridge for tf_keras.

- Schedules with TFMOT's semantics: :class:`ConstantSparsity`, :class:`PolynomialDecay`.
- :class:`Pruner` / :class:`PruningCallback`: masks as boolean weight constraints (1 byte per weight) applied inside the
  compiled train step (exact zeros through Adam and momentum), saved with the model; unstructured,
  N:M (``pattern="2:4"``) or whole channels (``granularity="channel"``); frequent schedule updates
  computed inside the step (:mod:`kerasinit.pruning.incremental`).
- :func:`export`: a pruned model written as ``.tflite`` (sparse tensor encoding), ``.keras`` or a
  SavedModel, masks stripped, outputs checked against the Keras model, with a size/sparsity report.
- :func:`prune` (one shot), :func:`sparsity_report`, :func:`strip` (``shrink=True``: a smaller model
  without the dead channels, :func:`shrink`; :func:`shrinkable_layers` names the layers it can shrink).
- Block sparsity (``block_size=(1, 4)``, blocks scored by pooled |w|, ``block_pooling_type``, TFMOT's
  semantics; :func:`block_mask`) and pruning policies (``policy="xnnpack"``: only the 1×1 convolutions
  XNNPack runs sparse, :mod:`kerasinit.pruning.policy`) on every entry point below.
- :func:`prune_at_init`: fixed masks before training by a registered score (SNIP, GraSP, SynFlow,
  magnitude, random; :func:`register_score` adds one), spread globally, uniformly, by ERK or per
  layer, N:M structured (``pattern="2:4"``) or by whole channels (``granularity="channel"``).
- :class:`SparseTraining`: dynamic (RigL, SET) and static sparse training from scratch, in ``fit``
  or a custom loop (:mod:`kerasinit.pruning.sparse_training`).
- :mod:`kerasinit.pruning.imp`: the masks of iterative magnitude pruning (lottery tickets).
- :func:`register_prunable`: declare the prunable weights of a layer class kerasinit does not know
  (the weight table of :mod:`kerasinit.layers`).
- ``kerasinit.pruning.tfmot``: the same experiment on tf_keras models through TFMOT (imported
  only when used).
"""

from kerasinit.layers import register_prunable
from kerasinit.pruning.at_init import AtInitPruner, prune_at_init
from kerasinit.pruning.blocks import block_mask
from kerasinit.pruning.callback import PruningCallback
from kerasinit.pruning.constraint import Mask, MaskConstraint
from kerasinit.pruning.distributions import erk_densities
from kerasinit.pruning.export import ExportMismatchError, ExportReport, ExportWarning, export
from kerasinit.pruning.masks import (
    LayerCollapseWarning,
    global_masks,
    keep_count,
    magnitude_mask,
    magnitude_selection,
    random_mask,
)
from kerasinit.pruning.patterns import n_m_mask
from kerasinit.pruning.persistence import load_model, masked_weights, restore_masks
from kerasinit.pruning.policy import POLICIES, PolicyWarning, PruningPolicy, register_pruning_policy
from kerasinit.pruning.pruner import Pruner, prune
from kerasinit.pruning.report import sparsity_report
from kerasinit.pruning.schedules import ConstantSparsity, PolynomialDecay, PruningSchedule
from kerasinit.pruning.scores import SCORES, Score, Scores, compute_scores, register_score
from kerasinit.pruning.selection import PrunableWeight, prunable_weights, select
from kerasinit.pruning.shrink import shrinkable_layers
from kerasinit.pruning.sparse_training import SparseTraining
from kerasinit.pruning.strip import shrink, strip

__all__ = [
    "AtInitPruner", "ConstantSparsity", "ExportMismatchError", "ExportReport", "ExportWarning", "export", "POLICIES", "PolicyWarning", "PruningPolicy", "block_mask", "register_pruning_policy", "LayerCollapseWarning", "Mask", "MaskConstraint", "PolynomialDecay", "PrunableWeight", "Pruner", "PruningCallback",
    "PruningSchedule", "SCORES", "Score", "Scores", "SparseTraining", "compute_scores", "erk_densities", "global_masks", "keep_count", "load_model", "magnitude_mask", "magnitude_selection", "masked_weights", "n_m_mask", "prunable_weights", "prune", "prune_at_init", "random_mask", "register_prunable", "register_score", "restore_masks",
    "select", "shrink", "shrinkable_layers", "sparsity_report", "strip",
]
