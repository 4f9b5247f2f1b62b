"""The one trainer of the experiments: Keras's own ``model.fit`` plus bookkeeping callbacks.

:func:`train` compiles a fresh optimizer, calls ``keras.utils.set_random_seed(seed)`` (so the same
seed gives the same data order, dropout and results), and runs ``fit`` on the training split with
the validation split evaluated every ``eval_every`` epochs. Callbacks, none with a per-batch-end
hook (Keras keeps its asynchronous dispatch):

- :class:`EarlyStopRecord` evaluates the validation split every ``eval_every`` epochs (writing
  ``val_loss``/``val_accuracy`` into the epoch logs, so ``History`` and later callbacks see them as
  with ``validation_data``) and keeps the minimum validation loss, its global step and a host copy of
  the weights there (early stopping as Frankle & Carbin 2019 report it: test accuracy *at* the
  minimum validation loss); the test split is evaluated at that point and at the end;
- :class:`StepWindow` starts the count at a rewind step ``K`` (so a rewound run trains the same
  ``T - K`` remaining steps), stops after the last one, and snapshots the weights at a given step
  (θ_K, Frankle et al. 2020);
- a divergence guard stops at the first non-finite epoch loss.

Evaluations (validation and test) go through :func:`evaluate_arrays`: Keras's compiled test step on
chunks of the in-memory split (``test_on_batch``), not a new ``evaluate`` data pipeline per call
(on TensorFlow that pipeline costs 20x the evaluation of a 360-sample split).

Masks (``kerasinit.pruning.Pruner``), ``VarianceMonitor`` and any user callback ride along in
``callbacks``. Under a ``tf.distribute`` strategy the optimizer and compilation happen in its scope
(build the model in it too); under JAX a ``keras.distribution`` set by the user applies as in any fit.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from kerasinit._validation import check_choice, check_int, check_real
from kerasinit.experiments.datasets import Dataset
from kerasinit.experiments.models import assign_weights, model_weights

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")


def make_optimizer(optimizer: str | keras.optimizers.Optimizer, learning_rate: float) -> keras.optimizers.Optimizer:
    """A fresh optimizer: ``"sgd"`` (momentum 0.9), ``"adam"``, ``"adamw"``, ``"rmsprop"`` at
    ``learning_rate``, or a copy (fresh state, same config) of a Keras optimizer instance."""
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return type(optimizer).from_config(optimizer.get_config())
    name = check_choice("optimizer", optimizer, OPTIMIZERS)
    lr = check_real("learning_rate", learning_rate, positive=True)
    if name == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9)
    return {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW, "rmsprop": keras.optimizers.RMSprop}[name](lr)


def _sync(model: keras.Model) -> None:
    """JAX keeps the weights of a running fit in its own state: write them back before reading."""
    if keras.backend.backend() == "jax" and hasattr(model, "jax_state_sync"):
        model.jax_state_sync()


class StepWindow(keras.callbacks.Callback):
    """Counts global steps from ``start``, stops after ``stop``, snapshots weights at ``snapshot_at``.

    Hooks batch *begins* only: the snapshot is taken before step ``snapshot_at`` runs, i.e. after
    ``snapshot_at`` steps; the stop flag is raised at the begin of the last step (Keras stops after it).
    """

    def __init__(self, start: int, stop: int, snapshot_at: int | None = None) -> None:
        super().__init__()
        self.start, self.stop, self.snapshot_at = start, stop, snapshot_at
        self.step = start
        self.snapshot: dict[str, np.ndarray] | None = None

    def on_train_begin(self, logs: Any = None) -> None:
        if self.snapshot_at == self.start:
            self.snapshot = model_weights(self.model)

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        if self.snapshot_at is not None and self.step == self.snapshot_at and self.step != self.start:
            _sync(self.model)
            self.snapshot = model_weights(self.model)
        self.step += 1
        if self.step >= self.stop:
            self.model.stop_training = True


def evaluate_arrays(model: keras.Model, x: np.ndarray, y: np.ndarray, chunk: int = 512) -> dict[str, float]:
    """Compiled loss and metrics of ``model`` on arrays, in chunks of ``chunk`` samples.

    Each chunk is one ``test_on_batch`` call (Keras's compiled test step, metrics reset per call);
    the results are averaged weighted by chunk size, which equals one pass over all samples for
    mean-type losses and metrics (the loss, accuracy).
    """
    totals: dict[str, float] = {}
    for start in range(0, len(y), chunk):
        part = slice(start, start + chunk)
        logs = model.test_on_batch(x[part], y[part], return_dict=True)
        n = len(y[part])
        for key, value in logs.items():
            totals[key] = totals.get(key, 0.0) + float(value) * n
    return {key: value / len(y) for key, value in totals.items()}


class EarlyStopRecord(keras.callbacks.Callback):
    """Validation every ``eval_every`` epochs; the minimum validation loss: its global step and the weights there."""

    def __init__(self, window: StepWindow, x_val: np.ndarray, y_val: np.ndarray, eval_every: int = 1) -> None:
        super().__init__()
        self.window = window
        self.x_val, self.y_val, self.eval_every = x_val, y_val, eval_every
        self.best_loss, self.best_accuracy, self.best_step = math.inf, math.nan, window.start
        self.best_weights: dict[str, np.ndarray] | None = None
        self.diverged = False

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        logs = logs or {}
        loss = float(logs.get("loss", math.nan))
        if not math.isfinite(loss):
            self.diverged = True
            self.model.stop_training = True
            return
        if (epoch + 1) % self.eval_every:
            return
        # (on JAX, ``Callback.model`` writes fit's state back to the variables before this reads them)
        for key, value in evaluate_arrays(self.model, self.x_val, self.y_val).items():
            logs[f"val_{key}"] = value  # the same dict goes to later callbacks and History
        val = logs.get("val_loss")
        if val is not None and float(val) < self.best_loss:
            self.best_loss, self.best_step = float(val), self.window.step
            self.best_accuracy = float(logs.get("val_accuracy", math.nan))
            self.best_weights = model_weights(self.model)


@dataclass
class TrainResult:
    """One training: per-epoch history, early-stop point, test accuracy there and at the end."""

    loss: list[float]
    val_loss: list[float]
    accuracy: list[float]
    val_accuracy: list[float]
    early_stop_step: int
    val_loss_min: float
    val_accuracy_at_stop: float
    test_accuracy: float  # at the early-stop step
    test_loss: float
    final_test_accuracy: float
    final_test_loss: float
    steps: int
    seconds: float
    diverged: bool
    snapshot: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def record(self) -> dict[str, Any]:
        """The JSON row of a lottery run (no per-epoch lists, no arrays)."""
        return {"test_accuracy": self.test_accuracy, "early_stop_step": self.early_stop_step,
                "val_loss": self.val_loss_min, "val_accuracy": self.val_accuracy_at_stop,
                "final_test_accuracy": self.final_test_accuracy, "steps": self.steps, "seconds": round(self.seconds, 3)}


def _compile(model: keras.Model, optimizer: Any, learning_rate: float, loss: Any, strategy: Any) -> None:
    """Compile with a fresh optimizer; a model compiled before with the same settings keeps its traced
    step and only has its optimizer state reset to a fresh one's (zeros, step 0): no re-tracing per training."""
    key = (id(optimizer) if not isinstance(optimizer, str) else optimizer, float(learning_rate), id(loss), id(strategy))
    if getattr(model, "_kerasinit_compiled", None) == key and model.optimizer is not None and model.optimizer.built:
        for v in model.optimizer.variables:
            if not v.path.endswith("learning_rate"):
                v.assign(np.zeros(v.shape, v.dtype))
        return
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model.compile(make_optimizer(optimizer, learning_rate), loss or "sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    model._kerasinit_compiled = key


def steps_per_epoch(ds: Dataset, batch_size: int) -> int:
    return math.ceil(len(ds.y_train) / batch_size)


def train(
    model: keras.Model,
    ds: Dataset,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    learning_rate: float = 1e-3,
    loss: Any = None,
    eval_every: int = 1,
    start_step: int = 0,
    snapshot_at: int | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    strategy: Any = None,
) -> TrainResult:
    """Train ``model`` with ``fit`` from global step ``start_step`` to ``epochs x steps_per_epoch``.

    ``loss`` defaults to sparse categorical cross-entropy on probabilities (the zoo's softmax
    outputs); pass e.g. ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)`` for
    logits. After training the model holds its final weights; the test split is evaluated at
    the early-stop point and at the end.
    """
    epochs, batch_size = check_int("epochs", epochs, 1), check_int("batch_size", batch_size, 1)
    eval_every, seed = check_int("eval_every", eval_every, 1), check_int("seed", seed, 0)
    began = time.perf_counter()
    spe = steps_per_epoch(ds, batch_size)
    total = epochs * spe
    if not 0 <= start_step < total:
        raise ValueError(f"start step {start_step} is not before the end of training ({total} steps).")
    keras.utils.set_random_seed(seed)
    _compile(model, optimizer, learning_rate, loss, strategy)
    window = StepWindow(start_step, total, snapshot_at)
    record = EarlyStopRecord(window, ds.x_val, ds.y_val, eval_every)
    hist = model.fit(ds.x_train, ds.y_train, batch_size=batch_size, epochs=math.ceil((total - start_step) / spe),
                     shuffle=True, verbose=0, callbacks=[window, record, *callbacks]).history
    final_logs = evaluate_arrays(model, ds.x_test, ds.y_test)
    final_loss, final_acc = final_logs["loss"], final_logs["accuracy"]
    test_loss, test_acc = final_loss, final_acc
    if record.best_weights is not None and record.best_step != window.step:
        final = model_weights(model)
        assign_weights(model, record.best_weights)
        best_logs = evaluate_arrays(model, ds.x_test, ds.y_test)
        test_loss, test_acc = best_logs["loss"], best_logs["accuracy"]
        assign_weights(model, final)
    floats = {k: [float(v) for v in hist.get(k, [])] for k in ("loss", "val_loss", "accuracy", "val_accuracy")}
    return TrainResult(**floats, early_stop_step=record.best_step, val_loss_min=record.best_loss,
                       val_accuracy_at_stop=record.best_accuracy, test_accuracy=float(test_acc),
                       test_loss=float(test_loss), final_test_accuracy=float(final_acc),
                       final_test_loss=float(final_loss), steps=window.step - start_step,
                       seconds=time.perf_counter() - began, diverged=record.diverged, snapshot=window.snapshot)


__all__ = ["OPTIMIZERS", "EarlyStopRecord", "StepWindow", "TrainResult", "evaluate_arrays", "make_optimizer",
           "steps_per_epoch", "train"]
