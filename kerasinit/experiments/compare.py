"""Train the same architecture under several initializers and seeds; compare accuracy, speed and signal.

>>> results = run_compare("mlp", "digits", inits=["zeros", "glorot_uniform", "he_normal"], epochs=5, seeds=2)
>>> results = run_compare("conv4", "cifar10", inits=["glorot_normal", "he_normal"], optimizer="adam", learning_rate=3e-4)
>>> results.summary()          # one row per initializer (pandas)
>>> results.to_pandas()        # one row per (initializer, seed)
>>> results.save("out/")       # results.json, runs.csv, summary.csv, history.csv and the plots

Any model that :func:`kerasinit.run_lottery` takes works: every kernel initializer of a fresh copy
is replaced by the one under test (each layer with its own seed), biases keep theirs; training is
the one :func:`kerasinit.experiments.training.train` (``model.fit``), and the activation std per
layer before training comes from a :class:`kerasinit.VarianceMonitor` on a fixed probe batch.
Each run reports a status: ``diverged`` (NaN/inf loss), ``symmetric`` (all hidden units of some
layer identical after training: the zeros/constant initializers cannot break the symmetry),
``stalled`` (test accuracy near chance) or ``ok``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import keras
import numpy as np

from kerasinit._validation import check_int, check_real
from kerasinit.experiments.datasets import Dataset, load
from kerasinit.experiments.executor import (
    Outcome,
    Shared,
    Task,
    check_local_only,
    failure_notes,
    resolve_executor,
    warn_failed,
)
from kerasinit.experiments.lottery import check_seeds
from kerasinit.experiments.models import (
    ACTIVATIONS,
    assign_weights,
    describe_spec,
    instantiate,
    model_weights,
)
from kerasinit.experiments.progress import Progress
from kerasinit.experiments.results import (
    RunFolder,
    RunFolderConflict,
    atomic_write,
    check_out,
    finite,
    load_arrays,
    pm,
    save_arrays,
    save_outputs,
    status_label,
    status_notes,
    text_table,
)
from kerasinit.experiments.training import (
    OPTIMIZERS,
    ExperimentInterrupted,
    choose_loss,
    train,
    training_status,
    warn_chance_level,
)

DEFAULT_INITS = ("zeros", "random_normal", "glorot_uniform", "he_normal", "kwon_tanh_uniform")
STATUSES = ("ok", "diverged", "symmetric", "stalled")
PROBE_SIZE = 256


@dataclass
class RunResult:
    """One training run: one initializer, one seed."""

    init: str
    seed: int
    status: str
    test_accuracy: float
    test_loss: float
    epochs_to_target: int | None
    act_std: list[float]  # std of each hidden layer's output (all kernel layers but the last) at step 0
    symmetric_layers: list[str]
    loss: list[float]
    val_loss: list[float]
    accuracy: list[float]
    val_accuracy: list[float]
    seconds: float

    @property
    def std_ratio(self) -> float:
        """Activation std last / first hidden layer at step 0 (NaN when the first is 0)."""
        first, last = self.act_std[0], self.act_std[-1]
        return last / first if first > 0 else math.nan


@dataclass
class CompareResults:
    """All runs of :func:`run_compare` with the settings that produced them."""

    config: dict[str, Any]
    runs: list[RunResult]
    dataset: Dataset = field(repr=False)
    models: dict[str, Any] = field(default_factory=dict, repr=False)  # first-seed model per init
    #: (init, seed) trained by the call that returned these results (resumed ones are not listed)
    trained: list[tuple[str, int]] = field(default_factory=list)
    #: the files the call wrote to ``out`` at the end (empty: nothing rewritten, e.g. the folder holds more runs)
    written: list[str] = field(default_factory=list)
    #: trainings that raised on every attempt (``executor="ray"``): ``{"task", "error", "attempts"}``, not in ``runs``
    failed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def inits(self) -> list[str]:
        return list(dict.fromkeys(r.init for r in self.runs))

    def to_pandas(self) -> Any:
        """One row per run: init, seed, status, test accuracy/loss, epochs to target, std ratio."""
        import pandas as pd

        rows = []
        for r in self.runs:
            rows.append({"init": r.init, "seed": r.seed, "status": r.status, "test_accuracy": r.test_accuracy,
                         "test_loss": r.test_loss, "epochs_to_target": r.epochs_to_target,
                         "act_std_first": r.act_std[0], "act_std_last": r.act_std[-1], "std_ratio": r.std_ratio,
                         "symmetric_layers": ",".join(r.symmetric_layers), "seconds": round(r.seconds, 3)})
        return pd.DataFrame(rows)

    def summary(self) -> Any:
        """One row per initializer: accuracy mean/std, epochs to target, std ratio, status."""
        import pandas as pd

        rows = []
        for init in self.inits:
            runs = [r for r in self.runs if r.init == init]
            acc = np.array([r.test_accuracy for r in runs], dtype=float)
            reached = [r.epochs_to_target for r in runs if r.epochs_to_target is not None]
            statuses = [r.status for r in runs]
            worst = statuses[0]
            rows.append({
                "init": init,
                "acc_mean": float(np.mean(acc)),
                "acc_std": float(np.std(acc)),
                "epochs_to_target": float(np.mean(reached)) if reached else math.nan,
                "reached": len(reached),
                "seeds": len(runs),
                "act_std_first": float(np.mean([r.act_std[0] for r in runs])),
                "act_std_last": float(np.mean([r.act_std[-1] for r in runs])),
                "std_ratio": float(np.mean([r.std_ratio for r in runs])),
                "status": worst if len(set(statuses)) == 1 else status_label(statuses),
                "statuses": ",".join(statuses),
            })
        return pd.DataFrame(rows)

    def history(self) -> Any:
        """Long table: init, seed, epoch (1-based), loss, val_loss, accuracy, val_accuracy."""
        import pandas as pd

        rows = []
        for r in self.runs:
            for i in range(len(r.loss)):
                rows.append({"init": r.init, "seed": r.seed, "epoch": i + 1, "loss": r.loss[i],
                             "val_loss": r.val_loss[i] if i < len(r.val_loss) else math.nan,
                             "accuracy": r.accuracy[i] if i < len(r.accuracy) else math.nan,
                             "val_accuracy": r.val_accuracy[i] if i < len(r.val_accuracy) else math.nan})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: config, dataset info, summary rows and every run (non-finite numbers -> None)."""
        summary = self.summary().to_dict(orient="records")
        runs = [{**asdict(r), "std_ratio": r.std_ratio} for r in self.runs]
        ds = self.dataset
        return finite({"experiment": "run_compare", "config": self.config,
                        "dataset": {"name": ds.name, "n_features": ds.n_features, "n_classes": ds.n_classes,
                                    "sizes": ds.sizes(), "chance": ds.chance},
                        "summary": summary, "runs": runs, **({"failed": self.failed} if self.failed else {})})

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @property
    def seeds(self) -> list[int]:
        return list(dict.fromkeys(r.seed for r in self.runs))

    @property
    def title(self) -> str:
        """One line naming the experiment (the table's title)."""
        c, seeds = self.config, self.seeds
        arch = f"{c['depth']}x{c['width']} {c['activation']} MLP" if c["model"] == "mlp" else c["model"]
        return (f"initializers compared: {arch} on {c['dataset']}, {c['optimizer']} lr {c['learning_rate']:g}, "
                f"{c['epochs']} epochs, " + (f"{len(seeds)} seeds {seeds}" if len(seeds) > 1 else f"seed {seeds[0]}"))

    @property
    def notes(self) -> list[str]:
        """Footnotes of :meth:`display_rows`: what each column and status means."""
        n = len(self.seeds)
        target = self.config["target"]
        return [("test acc: test accuracy at the end of training" + (f", mean ± std over {n} seeds" if n > 1 else "")),
                (f"epochs to {target:g}: first epoch with validation accuracy >= {target:g}"
                 + (" (mean over the seeds that reached it, (k/n): k of n seeds did)" if n > 1 else "")),
                "act std first → last: std of the first and the last hidden layer's output before training "
                "(the signal through depth)" + (", mean over seeds" if n > 1 else ""),
                *status_notes([r.status for r in self.runs]), *failure_notes(self.failed)]

    def table(self) -> str:
        """:meth:`display_rows` as aligned plain text under :attr:`title`, :attr:`notes` below."""
        return "\n".join([self.title, text_table(self.display_rows(), right=False), *self.notes])

    def display_rows(self) -> list[dict[str, str]]:
        """One row per initializer (header -> cell): test accuracy (mean ± std over seeds when several), epochs
        to the target, activation std of the first and last hidden layer, status counting seeds."""
        return [_display_row(r, self.config) for r in self.summary().to_dict(orient="records")]

    def save(self, out: str | os.PathLike[str], plots: bool = True) -> list[str]:
        """Write results.json, runs.csv, summary.csv, history.csv and (``plots``) the figures; return paths.

        The data files come first; a figure that cannot be written warns instead of raising."""
        out = check_out(out)
        assert out is not None
        paths = {name: os.path.join(out, name) for name in ("results.json", "runs.csv", "summary.csv", "history.csv")}
        atomic_write(paths["results.json"], self.to_json())
        self.to_pandas().to_csv(paths["runs.csv"], index=False)
        self.summary().to_csv(paths["summary.csv"], index=False)
        self.history().to_csv(paths["history.csv"], index=False)
        written = list(paths.values())
        if plots:
            from kerasinit.plots._common import pyplot
            from kerasinit.plots.compare import (
                plot_activation_std,
                plot_decision_boundaries,
                plot_loss_curves,
            )

            figures = [("loss_curves.png", plot_loss_curves), ("activation_std.png", plot_activation_std)]
            if self.dataset.is_2d and self.models:
                figures.append(("decision_boundaries.png", plot_decision_boundaries))
            written += save_outputs([(os.path.join(out, name), lambda p, f=plot: f(self, out=p))
                                     for name, plot in figures])
            pyplot().close("all")
        return written


def _display_row(r: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, str]:
    first, last = r["act_std_first"], r["act_std_last"]
    signal = "0 → 0 (all zero)" if first == 0 and last == 0 else f"{first:.2g} → {last:.2g}"
    reach = "never" if r["reached"] == 0 else f"{r['epochs_to_target']:.1f}"
    if 0 < r["reached"] < r["seeds"]:
        reach += f" ({r['reached']}/{r['seeds']})"
    return {"initializer": r["init"], "test acc": pm(r["acc_mean"], r["acc_std"], ".3f", r["seeds"] > 1),
            f"epochs to {config['target']:g}": reach, "act std first → last": signal,
            "status": status_label(r["statuses"].split(","))}


# -- arguments ---------------------------------------------------------------------------------------


def resolve_inits(inits: Any) -> dict[str, Any]:
    """``inits`` (names, instances, or {label: initializer}) -> {label: kerasinit/Keras initializer}."""
    from kerasinit.initializers.registry import get

    if isinstance(inits, str):
        inits = [s.strip() for s in inits.split(",") if s.strip()]
    items = list(inits.items()) if isinstance(inits, Mapping) else [(None, i) for i in inits]
    if not items:
        raise ValueError("argument `inits` must name at least one initializer, e.g. 'he_normal,glorot_uniform'.")
    out: dict[str, Any] = {}
    for label, ident in items:
        try:
            init = get(ident)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"argument `inits`: cannot resolve {ident!r} ({exc}) "
                             "(see `kerasinit list` for the names).") from exc
        if not isinstance(init, keras.initializers.Initializer):
            raise TypeError(f"argument `inits`: {ident!r} is not a keras.initializers.Initializer.")
        if label is None:
            label = ident if isinstance(ident, str) else type(init).__name__
        if label in out:
            raise ValueError(f"argument `inits`: {label!r} appears twice.")
        out[str(label)] = init
    return out


# -- one run -------------------------------------------------------------------------------------------


def hidden_layers(model: Any) -> list[Any]:
    """Layers with a kernel (Dense, Conv, ...) in forward order, the output layer (the last) excluded."""
    from kerasinit.monitor import kernel_of

    return [layer for layer in model.layers if kernel_of(layer) is not None][:-1]


def symmetric_layers(model: Any, rtol: float = 1e-6) -> list[str]:
    """Hidden layers whose units (filters) are all identical: same incoming weights and bias."""
    from kerasinit._arrays import to_numpy

    names = []
    for layer in hidden_layers(model):
        kernel = to_numpy(layer.kernel)
        units = kernel.reshape(-1, kernel.shape[-1])  # one column per unit / filter
        bias = getattr(layer, "bias", None)
        if bias is not None:
            units = np.vstack([units, to_numpy(bias)[None, :]])
        spread = np.max(np.abs(units - units[:, :1]))
        if spread <= rtol * max(1.0, float(np.max(np.abs(units)))):
            names.append(layer.name)
    return names


def _status(r: RunResult, chance: float) -> str:
    """``training_status`` (diverged / stalled / ok), with ``symmetric`` between diverged and stalled."""
    status = training_status(r.test_accuracy, chance, [*r.loss, *r.val_loss, r.test_loss])
    return "symmetric" if status != "diverged" and r.symmetric_layers else status


def train_one(model: Any, ds: Dataset, init: Any, label: str, seed: int, *, options: Mapping[str, Any] | None,
              target: float, callbacks: Sequence[Any] = (), **settings: Any) -> tuple[RunResult, Any]:
    """Train one fresh copy of ``model`` under ``init``; return its :class:`RunResult` and the trained model."""
    from kerasinit.monitor import VarianceMonitor

    start = time.perf_counter()
    strategy = settings.get("strategy")
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        net = instantiate(model, ds.input_shape, ds.n_classes, seed, options, kernel_initializer=init)
    hidden = [layer.name for layer in hidden_layers(net)]
    monitor = VarianceMonitor(probe=(ds.x_train[:PROBE_SIZE], ds.y_train[:PROBE_SIZE]), layers=hidden,
                              track=("activations",), every_epoch=False, on_anomaly="ignore")
    run = train(net, ds, seed=seed, callbacks=[monitor, *callbacks], **settings)
    acts = monitor.to_pandas()
    acts = acts[(acts["kind"] == "activations") & (acts["step"] == 0)].drop_duplicates("layer")
    stds = [float(acts.loc[acts["layer"] == name, "std"].iloc[0]) for name in hidden]
    reached = next((i + 1 for i, v in enumerate(run.val_accuracy) if v >= target), None)
    result = RunResult(init=label, seed=seed, status="ok", test_accuracy=run.final_test_accuracy,
                       test_loss=run.final_test_loss, epochs_to_target=reached, act_std=stds,
                       symmetric_layers=symmetric_layers(net), loss=run.loss, val_loss=run.val_loss,
                       accuracy=run.accuracy, val_accuracy=run.val_accuracy, seconds=time.perf_counter() - start)
    result.status = _status(result, ds.chance)
    return result, net


def compare_task(model: Any, ds: Dataset, init: Any, label: str, seed: int, *, options: Mapping[str, Any] | None,
                 target: float, keep: bool, callbacks: Sequence[Any] = (), **settings: Any) -> tuple[RunResult, Any]:
    """One training of :func:`run_compare` as an executor task: its :class:`RunResult` and, when ``keep``
    (the first seed on a 2-D dataset: the decision-boundary plot), the trained weights."""
    result, net = train_one(model, ds, init, label, seed, options=options, target=target, callbacks=callbacks,
                            **settings)
    return result, model_weights(net) if keep else None


def run_compare(
    model: Any = "mlp",
    dataset: Any = "digits",
    inits: Any = DEFAULT_INITS,
    *,
    depth: int | None = None,
    width: int | None = None,
    activation: str | None = None,
    epochs: int = 20,
    seeds: int | Sequence[int] = 3,
    target: float = 0.9,
    batch_size: int = 64,
    optimizer: str | keras.optimizers.Optimizer = "sgd",
    learning_rate: float = 0.01,
    loss: Any = None,
    callbacks: Sequence[Any] = (),
    strategy: Any = None,
    dataset_seed: int = 0,
    out: str | os.PathLike[str] | None = None,
    resume: bool = True,
    plots: bool = True,
    progress: bool | Any = False,
    executor: Any = None,
) -> CompareResults:
    """Train the same architecture under each initializer and seed; return :class:`CompareResults`.

    ``model``: as for :func:`kerasinit.run_lottery` (default the ``mlp`` of the zoo; ``depth``,
    ``width``, ``activation`` are its options, default 5 x 100 ReLU). ``inits``: names
    (``"zeros,he_normal"`` or a list), initializer instances, or ``{label: init}``. ``dataset``: what
    :func:`kerasinit.experiments.datasets.load` takes. ``seeds``: how many (0, 1, ...) or which.
    ``target``: validation accuracy whose first epoch is reported. ``optimizer``: ``"sgd"`` (momentum
    0.9), ``"adam"``, ``"adamw"``, ``"rmsprop"`` or an optimizer instance. ``out``: a run folder
    (checked before any training: a ValueError naming ``out`` if it is a file or cannot be written)
    holding results.json, runs.csv, summary.csv, history.csv and, with ``plots``, the figures. A rerun
    with the same settings there resumes: finished (initializer, seed) trainings are read back, not
    re-run (``inits`` and ``seeds`` may change; the results hold every requested run, ``trained`` the
    new ones); other settings raise :class:`~kerasinit.experiments.results.RunFolderConflict`;
    ``resume=False`` deletes what an earlier run wrote there and starts over. A call asking for fewer
    runs than the folder holds returns them and leaves the folder as it is.
    ``progress``: a rich progress bar (``True`` or a Console).
    ``executor``: where the trainings run (:mod:`kerasinit.experiments.executor`): ``None``/``"inprocess"``
    one after the other here; ``"ray"`` (or a ``RayExecutor``) as parallel Ray tasks, the same numbers
    and run folder; a training that fails on every attempt is listed in ``failed``, the table's notes
    and a ``TaskFailedWarning`` (a rerun with the same ``out`` retries it). ``callbacks`` and
    ``strategy`` act in this process (in-process only).
    ``loss``: default from the model's output (``experiments.training.choose_loss``), recorded in
    ``config["loss"]``; the first run that ends near chance warns (``ChanceLevelWarning``). Ctrl-C
    keeps the finished runs (saved to ``out`` with ``config["interrupted"]``, no plots; a rerun resumes)
    and raises ``experiments.training.ExperimentInterrupted``.
    """
    resolved = resolve_inits(inits)
    runner = resolve_executor(executor)
    check_local_only(runner, "run_compare", callbacks=list(callbacks), strategy=strategy)
    epochs, batch_size = check_int("epochs", epochs, 1), check_int("batch_size", batch_size, 1)
    options = {k: v for k, v in (("depth", depth), ("width", width), ("activation", activation)) if v is not None}
    if model == "mlp":
        options = {"depth": 5, "width": 100, "activation": "relu", **options}
        check_int("depth", options["depth"], 1), check_int("width", options["width"], 1)
        if options["activation"] not in ACTIVATIONS:
            raise ValueError(f"argument `activation` must be one of {', '.join(ACTIVATIONS)}; "
                             f"received {options['activation']!r}.")
    elif options:
        raise ValueError(f"arguments `depth`, `width`, `activation` apply to model='mlp' only; received {options}.")
    if isinstance(optimizer, str) and optimizer not in OPTIMIZERS:
        raise ValueError(f"argument `optimizer` must be one of {', '.join(OPTIMIZERS)}; received {optimizer!r}.")
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0.0 < target <= 1.0:
        raise ValueError(f"argument `target` must be a validation accuracy in (0, 1]; received {target!r}.")
    check_real("learning_rate", learning_rate, positive=True)
    seed_list = check_seeds(seeds)
    ds = load(dataset, seed=dataset_seed)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        chosen = choose_loss(instantiate(model, ds.input_shape, ds.n_classes, seed_list[0], options), loss, ds.x_train)
    config = {"model": describe_spec(model), **options, "inits": list(resolved), "dataset": ds.name, "epochs": epochs,
              "seeds": seed_list, "target": float(target), "batch_size": batch_size,
              "optimizer": optimizer if isinstance(optimizer, str) else type(optimizer).__name__,
              "learning_rate": float(learning_rate), "loss": chosen.name, "loss_source": chosen.source,
              "dataset_seed": dataset_seed, "initializers": {label: fingerprint(i) for label, i in resolved.items()}}
    settings = {"epochs": epochs, "batch_size": batch_size, "optimizer": optimizer, "learning_rate": learning_rate,
                "loss": chosen.loss, "strategy": strategy}
    folder = RunFolder(out, config, RESUME_KEYS, resume, experiment="run_compare", rows_key="runs", outputs=OUTPUTS)
    saved = _resumable(folder, config)
    wanted = [(label, seed) for label in resolved for seed in seed_list]
    runs: dict[tuple[str, int], RunResult] = {key: saved[key] for key in wanted if key in saved}
    models: dict[str, Any] = {}
    trained: list[tuple[str, int]] = []

    def document(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        everything = [*(r for key, r in saved.items() if key not in runs), *runs.values()]
        return CompareResults(config={**config, **(extra or {})}, runs=everything, dataset=ds,
                              failed=[f.failure() for f in failures]).to_dict()

    def weights_file(label: str) -> str:
        return folder.path(f"model_{_slug(label)}_seed_{seed_list[0]}.npz")

    failures: list[Outcome] = []
    shared_ds = Shared(ds)
    tasks = []
    for i, (label, init) in enumerate(resolved.items()):
        for j, seed in enumerate(seed_list):
            keep = seed == seed_list[0] and ds.is_2d
            if (label, seed) in runs:
                if keep and out is not None and os.path.exists(weights_file(label)):
                    net = instantiate(model, ds.input_shape, ds.n_classes, seed, options, kernel_initializer=init)
                    assign_weights(net, load_arrays(weights_file(label)))
                    models[label] = net
                continue
            tasks.append(Task(f"{label} seed {seed}", "kerasinit.experiments.compare:compare_task",
                              {"model": model, "ds": shared_ds, "init": init, "label": label, "seed": seed,
                               "options": options, "target": target, "keep": keep, "callbacks": list(callbacks),
                               **settings}, key=(label, seed), epochs=epochs, order=(i, j)))

    def finished(outcome: Outcome, bar: Progress) -> None:
        label, seed = outcome.task.key
        if not outcome.ok:
            failures.append(outcome)
            return
        result, weights = outcome.value
        bar.note(f"test {result.test_accuracy:.3f} {result.status}")
        runs[(label, seed)] = result
        trained.append((label, seed))
        if weights is not None:
            net = instantiate(model, ds.input_shape, ds.n_classes, seed, options, kernel_initializer=resolved[label])
            assign_weights(net, weights)
            models[label] = net
            if out is not None:
                save_arrays(weights_file(label), weights)
        folder.commit(_row(result), document=None if out is None else document())
        if result.status == "stalled" and sum(r.status == "stalled" for r in runs.values()) == 1:
            warn_chance_level(f"run_compare: the training of {label} seed {seed}", result.test_accuracy,
                              ds.chance, chosen, ["the initializer (a signal that vanishes with depth)"], stacklevel=6)

    try:
        with Progress(progress, total=len(wanted) * epochs, done=len(runs) * epochs) as bar:
            runner.run(tasks, lambda outcome: finished(outcome, bar), bar)
    except KeyboardInterrupt:
        done = f"after {len(runs)} of {len(wanted)} trainings"
        if out is None or not runs:
            raise ExperimentInterrupted(done) from None
        atomic_write(folder.path("results.json"), json.dumps(finite(document({"interrupted": done})), indent=2))
        raise ExperimentInterrupted(done, folder.out, resumable=True) from None
    failed = [f.failure() for f in failures]
    warn_failed("run_compare", failures)
    results = CompareResults(config=config, runs=[runs[key] for key in wanted if key in runs], dataset=ds,
                             models=models, trained=trained, failed=failed)
    if out is not None and set(saved) <= set(wanted):  # never drop runs of a larger earlier call from the folder
        results.written = results.save(folder.out, plots=plots)
    return results


#: settings that must match to resume a run from its folder (``inits`` and ``seeds`` may change)
RESUME_KEYS = ("model", "depth", "width", "activation", "dataset", "epochs", "target", "batch_size", "optimizer",
               "learning_rate", "loss", "dataset_seed")
#: what a run writes in its folder (deleted, with results.json, when ``resume=False`` starts over)
OUTPUTS = ("runs.csv", "summary.csv", "history.csv", "loss_curves.png", "activation_std.png",
           "decision_boundaries.png", "model_*_seed_*.npz", "*.tmp", "*.tmp.npz")


def fingerprint(init: Any) -> str:
    """A short hash of an initializer's class and config: the same label with another initializer is
    not resumed."""
    text = json.dumps(keras.initializers.serialize(init), sort_keys=True, default=repr)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _slug(label: str) -> str:
    """A file-name-safe form of an initializer label (plus a hash: labels differing only in symbols differ)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:40] + "_" + hashlib.sha1(label.encode()).hexdigest()[:6]


def _row(r: RunResult) -> dict[str, Any]:
    return {**asdict(r), "std_ratio": r.std_ratio}


def _from_row(row: Mapping[str, Any]) -> RunResult:
    """A :class:`RunResult` from its JSON row (``None``, written for NaN, read back as NaN)."""
    def num(v: Any) -> float:
        return math.nan if v is None else float(v)

    lists = ("act_std", "loss", "val_loss", "accuracy", "val_accuracy")
    return RunResult(init=row["init"], seed=int(row["seed"]), status=row["status"],
                     test_accuracy=num(row["test_accuracy"]), test_loss=num(row["test_loss"]),
                     epochs_to_target=row["epochs_to_target"], symmetric_layers=list(row["symmetric_layers"]),
                     seconds=num(row["seconds"]), **{k: [num(v) for v in row[k]] for k in lists})


def _resumable(folder: RunFolder, config: Mapping[str, Any]) -> dict[tuple[str, int], RunResult]:
    """The folder's finished runs by (init, seed); a label whose initializer changed is a conflict on ``inits``."""
    if not folder.rows:
        return {}
    assert folder.out is not None
    with open(folder.path("results.json")) as fh:
        before = json.load(fh)["config"].get("initializers", {})
    changed = {label: (before[label], now) for label, now in config["initializers"].items()
               if label in before and before[label] != now}
    if changed:
        raise RunFolderConflict(folder.out, {"inits": ({k: v[0] for k, v in changed.items()},
                                                       {k: v[1] for k, v in changed.items()})})
    return {(row["init"], int(row["seed"])): _from_row(row) for row in folder.rows}


__all__ = ["DEFAULT_INITS", "OUTPUTS", "RESUME_KEYS", "CompareResults", "RunResult", "compare_task", "hidden_layers",
           "resolve_inits", "run_compare",
           "symmetric_layers", "train_one"]
