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

The loss, unless given, follows the model's output (:func:`choose_loss`): sparse categorical
cross-entropy on probabilities behind a softmax/sigmoid output (the zoo's), on logits
(``from_logits=True``) otherwise. A training whose test accuracy ends near chance
(:func:`near_chance`) gets the status ``"stalled"`` (:func:`training_status`); the experiments say so
in their tables and with one :class:`ChanceLevelWarning` naming the likely causes
(:func:`warn_chance_level`).

Ctrl-C: inside :func:`interrupts_remembered` (the ``kerasinit`` command) an interrupt is also
remembered, and the trainer raises ``KeyboardInterrupt`` again at the next step (:func:`check_interrupt`):
an interrupt swallowed by library clean-up code still stops the run. The experiments turn it into
:class:`ExperimentInterrupted` saying what was finished and kept.

Masks (``kerasinit.pruning.Pruner``), ``VarianceMonitor`` and any user callback ride along in
``callbacks``. Under a ``tf.distribute`` strategy the optimizer and compilation happen in its scope
(build the model in it too); under JAX a ``keras.distribution`` set by the user applies as in any fit.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from kerasinit._validation import check_choice, check_int, check_real
from kerasinit.experiments.catalog import OPTIMIZERS, resolve_optimizer
from kerasinit.experiments.datasets import Dataset
from kerasinit.experiments.models import assign_weights, model_weights

CROSSENTROPY = "sparse_categorical_crossentropy"
#: output activations whose values are probabilities (anything else is read as logits)
PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


# -- the loss: from the model's output ----------------------------------------------------------------


def _layer_form(layer: keras.layers.Layer) -> tuple[str, str] | None:
    """(form, why) of one output layer: a nested model is followed to its own outputs."""
    if isinstance(layer, keras.Model):
        inner = _graph_form(layer)
        if inner is not None:
            return inner
    if isinstance(layer, keras.layers.Softmax):
        return "probabilities", f"the output layer {layer.name!r} is a Softmax"
    name = getattr(getattr(layer, "activation", None), "__name__", None)
    if name in PROBABILITY_ACTIVATIONS:
        return "probabilities", f"the output layer {layer.name!r} ends in {name}"
    what = f"activation {name}" if name not in (None, "linear") else "no activation"
    return "logits", f"the output layer {layer.name!r} has {what}, no softmax/sigmoid"


def _graph_form(model: keras.layers.Layer) -> tuple[str, str] | None:
    from kerasinit.pruning.scores.objectives import output_layers

    forms = [_layer_form(layer) for layer in output_layers(model)]
    forms = [f for f in forms if f is not None]
    if not forms:
        return None
    if len({f[0] for f in forms}) > 1:
        raise ValueError(f"argument `loss`: the model's outputs mix probabilities and logits ({[f[1] for f in forms]}); "
                         "pass the loss explicitly.")
    return forms[0]


def output_form(model: keras.Model, x: np.ndarray | None = None) -> tuple[str, str]:
    """``("probabilities" | "logits", why)`` of ``model``'s output.

    Read from the layers of a functional or Sequential model: a softmax/sigmoid output layer (or a
    separate ``Softmax``/``Activation`` layer) gives probabilities, anything else logits. A model
    without a layer graph (subclassed) is probed on ``x``: rows that are >= 0 and sum to 1 are
    probabilities; without ``x`` it is assumed to output probabilities (Keras's default loss form).
    """
    found = _graph_form(model)
    if found is not None:
        return found
    if x is None:
        return "probabilities", "assumed (a model without a layer graph and no data to probe)"
    y = keras.ops.convert_to_numpy(model(x[:64], training=False)).astype("float64")
    if y.ndim >= 1 and np.all(y >= 0) and np.allclose(y.sum(axis=-1), 1.0, atol=1e-3):
        return "probabilities", "probed: the model's outputs are >= 0 and sum to 1 per sample"
    return "logits", "probed: the model's outputs do not sum to 1 per sample"


def _given_from_logits(loss: Any) -> bool | None:
    """``from_logits`` of a cross-entropy loss (a name, a function or a Loss); None for other losses."""
    if isinstance(loss, keras.losses.Loss):
        config = loss.get_config()
        return bool(config["from_logits"]) if "from_logits" in config else None
    name = loss if isinstance(loss, str) else getattr(loss, "__name__", None)
    return False if name in ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy") else None


def describe_loss(loss: Any) -> str:
    """``"sparse_categorical_crossentropy (from_logits=True)"`` for a cross-entropy, the loss's name otherwise."""
    name = loss if isinstance(loss, str) else getattr(loss, "name", None) or getattr(loss, "__name__", None) or str(loss)
    logits = _given_from_logits(loss)
    return name if logits is None else f"{name} (from_logits={logits})"


@dataclass(frozen=True)
class LossChoice:
    """What ``compile`` gets (``loss``), its name for records and tables, and where it came from."""

    loss: Any
    name: str
    source: str  # "given", or "inferred: <form> (<why>)"


def choose_loss(model: keras.Model, loss: Any = None, x: np.ndarray | None = None) -> LossChoice:
    """The loss of the experiments: ``loss`` if given, else sparse categorical cross-entropy on
    ``model``'s output form (:func:`output_form`): ``"sparse_categorical_crossentropy"`` behind
    softmax/sigmoid (the zoo: unchanged), ``SparseCategoricalCrossentropy(from_logits=True)``
    otherwise. A given cross-entropy whose ``from_logits`` contradicts the output warns."""
    if loss is not None:
        given = _given_from_logits(loss)
        if given is not None:
            form, why = output_form(model, x)
            if given != (form == "logits"):
                warnings.warn(f"the loss {describe_loss(loss)} reads {'logits' if given else 'probabilities'}, but "
                              f"{why}: the model outputs {form}. Pass from_logits={not given} (or loss=None: "
                              "kerasinit infers it from the output).", UserWarning, stacklevel=3)
        return LossChoice(loss, describe_loss(loss), "given")
    form, why = output_form(model, x)
    chosen = CROSSENTROPY if form == "probabilities" else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return LossChoice(chosen, f"{CROSSENTROPY} (from_logits={form == 'logits'})", f"inferred: {form} ({why})")


# -- chance level -----------------------------------------------------------------------------------------


#: how tables show a training's status (``"ok"`` as it is)
STATUS_NOTES = {
    "symmetric": "symmetric (all units of a layer equal: zeros/constant cannot break symmetry)",
    "diverged": "diverged (NaN/inf loss)",
    "stalled": "stalled (accuracy near chance)",
}


class ChanceLevelWarning(UserWarning):
    """A training ended with test accuracy near chance: its numbers say nothing about the method."""


def near_chance(accuracy: float, chance: float) -> bool:
    """``accuracy < chance + 0.1 (1 − chance)``: within a tenth of the way from chance to perfect.

    ``chance``: the accuracy of always predicting the most frequent class (``Dataset.chance``).
    """
    return not accuracy >= chance + 0.1 * (1.0 - chance)  # NaN counts as near chance


def training_status(accuracy: float, chance: float, losses: Sequence[float] = ()) -> str:
    """``"diverged"`` (a non-finite loss), ``"stalled"`` (:func:`near_chance`) or ``"ok"``."""
    if not all(v is not None and math.isfinite(v) for v in losses):
        return "diverged"
    return "stalled" if near_chance(accuracy, chance) else "ok"


def warn_chance_level(what: str, accuracy: float, chance: float, loss: LossChoice, extra_causes: Sequence[str] = (),
                      stacklevel: int = 3) -> None:
    """One :class:`ChanceLevelWarning` naming ``what`` stalled and the likely causes."""
    causes = [f"the loss or its from_logits (trained with {loss.name}, {loss.source}; a last layer without "
              "softmax/sigmoid outputs logits, which need from_logits=True)",
              "the learning rate (too high or too low)",
              "the labels (not integers 0..n_classes-1, or not aligned with the inputs)", *extra_causes]
    warnings.warn(f"{what} ended at chance level (test accuracy {accuracy:.3f}, chance {chance:.3f}). Likely causes: "
                  + "; ".join(causes) + ".", ChanceLevelWarning, stacklevel=stacklevel)


# -- Ctrl-C -------------------------------------------------------------------------------------------------


class _InterruptState:
    requested = False


class ExperimentInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped an experiment. ``done``: what was finished (``"after round 2"``); ``out``: the folder
    holding it (None: nothing saved); ``resumable``: whether rerunning with the same settings continues."""

    def __init__(self, done: str, out: str | None = None, resumable: bool = False) -> None:
        self.done, self.out, self.resumable = done, out, resumable
        if out is None:
            kept = "nothing saved"
        elif resumable:
            kept = f"run again with the same settings and out={out!r} to resume"
        else:
            kept = f"results so far in {out} (a rerun starts over)"
        super().__init__(f"interrupted {done}; {kept}")


def check_interrupt() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed inside :func:`interrupts_remembered`."""
    if _InterruptState.requested:
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_remembered() -> Iterator[None]:
    """Meanwhile, SIGINT raises ``KeyboardInterrupt`` as usual *and* is remembered: the trainer raises it
    again at the next step and between trainings (:func:`check_interrupt`), so one swallowed by library
    clean-up code (a ``__del__``, a ``finally``) still stops the run. The main thread only; restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        _InterruptState.requested = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    _InterruptState.requested = False
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _InterruptState.requested = False


def make_optimizer(optimizer: str | keras.optimizers.Optimizer, learning_rate: float) -> keras.optimizers.Optimizer:
    """A fresh optimizer: ``"sgd"`` (momentum 0.9), ``"adam"``, ``"adamw"``, ``"rmsprop"`` at
    ``learning_rate``, or a copy (fresh state, same config) of a Keras optimizer instance."""
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return type(optimizer).from_config(optimizer.get_config())
    name = check_choice("optimizer", resolve_optimizer(optimizer) if isinstance(optimizer, str) else optimizer,
                        OPTIMIZERS)
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
        check_interrupt()
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
        check_interrupt()
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

    def status(self, chance: float) -> str:
        """:func:`training_status` of the test accuracy at the early-stop point (the one reported)."""
        return training_status(self.test_accuracy, chance, [*self.loss, self.test_loss])

    def record(self, chance: float | None = None) -> dict[str, Any]:
        """The JSON row of a lottery run (no per-epoch lists, no arrays); with ``chance``, its status."""
        row = {"test_accuracy": self.test_accuracy, "early_stop_step": self.early_stop_step,
               "val_loss": self.val_loss_min, "val_accuracy": self.val_accuracy_at_stop,
               "final_test_accuracy": self.final_test_accuracy, "steps": self.steps, "seconds": round(self.seconds, 3)}
        if chance is not None:
            row["status"] = self.status(chance)
        return row


def _compile(model: keras.Model, optimizer: Any, learning_rate: float, loss: Any, strategy: Any,
             x: np.ndarray | None = None) -> None:
    """Compile with a fresh optimizer; a model compiled before with the same settings keeps its traced
    step and only has its optimizer state reset to a fresh one's (zeros, step 0): no re-tracing per training.
    ``loss=None``: :func:`choose_loss` (from the model's output; ``x`` probes a subclassed model)."""
    if loss is None:
        chosen = choose_loss(model, None, x)
        loss, loss_key = chosen.loss, chosen.name
    else:
        loss_key = id(loss)
    key = (id(optimizer) if not isinstance(optimizer, str) else optimizer, float(learning_rate), loss_key, id(strategy))
    if getattr(model, "_kerasinit_compiled", None) == key and model.optimizer is not None and model.optimizer.built:
        for v in model.optimizer.variables:
            if not v.path.endswith("learning_rate"):
                v.assign(np.zeros(v.shape, v.dtype))
        return
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model.compile(make_optimizer(optimizer, learning_rate), loss, metrics=["accuracy"])
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

    ``loss`` defaults to sparse categorical cross-entropy on the model's output form
    (:func:`choose_loss`: probabilities behind softmax/sigmoid, logits otherwise). Ctrl-C inside
    :func:`interrupts_remembered` stops at the next step even when swallowed. After training the model holds its final weights; the test split is evaluated at
    the early-stop point and at the end.
    """
    epochs, batch_size = check_int("epochs", epochs, 1), check_int("batch_size", batch_size, 1)
    eval_every, seed = check_int("eval_every", eval_every, 1), check_int("seed", seed, 0)
    check_interrupt()
    began = time.perf_counter()
    spe = steps_per_epoch(ds, batch_size)
    total = epochs * spe
    if not 0 <= start_step < total:
        raise ValueError(f"start step {start_step} is not before the end of training ({total} steps).")
    keras.utils.set_random_seed(seed)
    _compile(model, optimizer, learning_rate, loss, strategy, ds.x_train)
    window = StepWindow(start_step, total, snapshot_at)
    record = EarlyStopRecord(window, ds.x_val, ds.y_val, eval_every)
    hist = model.fit(ds.x_train, ds.y_train, batch_size=batch_size, epochs=math.ceil((total - start_step) / spe),
                     shuffle=True, verbose=0, callbacks=[window, record, *callbacks]).history
    check_interrupt()
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


__all__ = ["OPTIMIZERS", "STATUS_NOTES", "ChanceLevelWarning", "EarlyStopRecord", "ExperimentInterrupted", "LossChoice", "StepWindow",
           "TrainResult", "check_interrupt", "choose_loss", "describe_loss", "evaluate_arrays", "interrupts_remembered",
           "make_optimizer", "near_chance", "output_form", "steps_per_epoch", "train", "training_status",
           "warn_chance_level"]
