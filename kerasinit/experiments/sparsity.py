"""Pruning at initialization as an experiment: test accuracy against sparsity, per method.

>>> results = run_prune_at_init("lenet_300_100", "digits", methods=["snip", "synflow", "random"],
...                             sparsities=[0.5, 0.9, 0.98], seeds=[0, 1], epochs=10)
>>> print(results.table())     # test accuracy (mean ± std over seeds) per (method, sparsity)
>>> results.save("out/")       # results.json, runs.csv and accuracy_vs_sparsity.png

For every (method, sparsity, seed) a fresh copy of the model is drawn with the seed, pruned by
:func:`kerasinit.pruning.prune_at_init` (SNIP and GraSP score one batch of ``score_samples``
training examples; SynFlow needs no data), and trained with the experiments' one trainer
(:func:`kerasinit.experiments.training.train`, ``model.fit``); the masks stay fixed through
training. Each run records the test accuracy at the early-stop point and at the end, the achieved
sparsity, and the layers the method emptied entirely (*layer collapse*, Tanaka et al. 2020).

Sparse training from scratch sits in the same table (family ``"dynamic"``, the scores' is ``"at init"``):
``methods`` may also name ``"rigl"``, ``"set"`` and ``"static"``
(:class:`~kerasinit.pruning.sparse_training.SparseTraining`). Such a run starts from the same
initialization (the seed's fresh copy), gets random masks at the experiment's per-layer distribution
(``"erk"``, ``"uniform"`` or a mapping; under ``"global"``, which has no per-layer sparsity before
scoring, ``"uniform"``, with a warning and a note) and trains in the same ``fit``, the callback moving
the masks every ``update_every`` steps up to 75% of training (RigL's gradient batch: ``batch_size``
training samples per update). Every row records each weight's size and kept count at the end of
training (``layers``), the nonzero weights outside the masks (``leaked``, 0) and the mask updates.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kerasinit._suggest import did_you_mean
from kerasinit._validation import check_choice, check_int, check_real
from kerasinit.experiments.datasets import Dataset, load
from kerasinit.experiments.executor import (
    Outcome,
    Shared,
    Task,
    failure_notes,
    resolve_executor,
    warn_failed,
)
from kerasinit.experiments.lottery import OUTPUTS as LOTTERY_OUTPUTS
from kerasinit.experiments.models import instantiate
from kerasinit.experiments.progress import Progress
from kerasinit.experiments.results import (
    RunFolder,
    atomic_write,
    check_out,
    finite,
    mean_std,
    pm,
    save_outputs,
    status_label,
    status_notes,
    text_table,
)
from kerasinit.experiments.training import (
    ExperimentInterrupted,
    choose_loss,
    train,
    warn_chance_level,
)
from kerasinit.pruning.at_init import prune_at_init
from kerasinit.pruning.schedules import check_sparsity
from kerasinit.pruning.scores import SCORES, default_methods
from kerasinit.pruning.sparse_training import DROP_SCHEDULES, SparseTraining
from kerasinit.pruning.sparse_training import METHODS as DYNAMIC
from kerasinit.pruning.summaries import PruningSummaries

DEFAULT_SPARSITIES = (0.5, 0.8, 0.9, 0.95, 0.98)
#: the ``family`` column: masks scored before training and fixed, or sparse training (SparseTraining) in the fit
AT_INIT, SPARSE = "at init", "dynamic"


def family(method: str) -> str:
    """``"dynamic"`` for the sparse-training methods (rigl, set, static), ``"at init"`` for the scores."""
    return SPARSE if method in DYNAMIC else AT_INIT


@dataclass
class AtInitResults:
    """The runs of :func:`run_prune_at_init`: ``rows`` (one dict per method, sparsity and seed) and ``config``."""

    config: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: with ``with_lottery``: IMP's winning tickets from ``run_lottery``, one row per round
    #: (``sparsity``, ``test_accuracy_mean``, ``test_accuracy_std``), the reference line
    lottery: list[dict[str, float]] = field(default_factory=list)
    #: (method, sparsity, seed) trained by the call that returned these results (resumed ones are not listed)
    trained: list[tuple[str, float, int]] = field(default_factory=list)
    #: the files the call wrote to ``out`` at the end (empty: nothing rewritten, e.g. the folder holds more runs)
    written: list[str] = field(default_factory=list)
    #: trainings that raised on every attempt (``executor="ray"``): ``{"task", "error", "attempts"}``, not in ``rows``
    failed: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> list[dict[str, Any]]:
        """Mean and std over seeds of the test accuracy, per (method, sparsity) in run order."""
        keys = list(dict.fromkeys((r["method"], r["sparsity"]) for r in self.rows))
        out = []
        for method, sparsity in keys:
            runs = [r for r in self.rows if r["method"] == method and r["sparsity"] == sparsity]
            mean, std = mean_std([r["test_accuracy"] for r in runs])
            status = status_label([r.get("status", "ok") for r in runs])
            out.append({"method": method, "family": family(method), "sparsity": sparsity,
                        "test_accuracy_mean": mean, "test_accuracy_std": std,
                        "collapsed_layers": max(len(r["collapsed_layers"]) for r in runs), "seeds": len(runs),
                        "status": status})
        return out

    @property
    def seeds(self) -> list[int]:
        return list(dict.fromkeys(r["seed"] for r in self.rows))

    @property
    def dynamic(self) -> list[str]:
        """The sparse-training methods (family ``"dynamic"``) among the rows, in run order."""
        return list(dict.fromkeys(r["method"] for r in self.rows if family(r["method"]) == SPARSE))

    @property
    def title(self) -> str:
        """One line naming the experiment (the table's title)."""
        c, seeds = self.config, self.seeds
        what = "pruning at initialization" + (f" and sparse training ({', '.join(self.dynamic)})" if self.dynamic else "")
        return (f"{what}: {c['model']} on {c['dataset']}, {c['distribution']} distribution, "
                f"{c['epochs']} epochs, " + (f"{len(seeds)} seeds {seeds}" if len(seeds) > 1
                                             else f"seed {seeds[0]}" if seeds else "no seed"))

    @property
    def notes(self) -> list[str]:
        """Footnotes of :meth:`display_rows`: what each column and status means."""
        n = len(self.seeds)
        notes = ["weights: % of the prunable weights left after pruning (1 - sparsity)",
                 "test acc: test accuracy at the early-stop step (lowest validation loss)"
                 + (f", mean ± std over {n} seeds" if n > 1 else ""),
                 "collapsed: layers pruned empty (layer collapse, Tanaka et al. 2020)"
                 + (", the most over the seeds" if n > 1 else "")]
        dynamic = self.dynamic
        if dynamic:
            c = self.config
            used = dict.fromkeys(str(r.get("distribution")) for r in self.rows if family(r["method"]) == SPARSE)
            notes.append("family: at init = masks scored before training, fixed (prune_at_init); dynamic = "
                         "SparseTraining in the same fit from the same initialization: random masks, rigl/set move "
                         f"them every {c.get('update_every', 100)} steps up to 75% of training "
                         f"(drop fraction {c.get('drop_fraction', 0.3):g}, {c.get('drop_schedule', 'cosine')}), "
                         "static never")
            if c.get("distribution") == "global" and "uniform" in used:
                notes.append("distribution: global has no per-layer sparsity before scoring; the dynamic family "
                             "trained with uniform (every layer at the sparsity)")
            for r in self.rows:
                if r["method"] in ("rigl", "set") and r.get("mask_updates") == 0:
                    notes.append(f"{r['method']} at sparsity {r['sparsity']:g} seed {r['seed']} never moved its masks "
                                 f"(update_every {c.get('update_every')} > end_step {r.get('end_step')}): it trained "
                                 "as static")
        notes += status_notes([r.get("status", "ok") for r in self.rows])
        notes += failure_notes(self.failed)
        for r in sorted(self.lottery, key=lambda r: r["sparsity"]):
            notes.append(f"IMP ticket (run_lottery) at {100 * (1 - r['sparsity']):.3g}% weights: test acc "
                         + pm(r["test_accuracy_mean"], r["test_accuracy_std"], ".3f", n > 1))
        return notes

    def display_rows(self) -> list[dict[str, str]]:
        """One row per (method, sparsity) (header -> cell): % weights left, test accuracy (mean ± std over seeds
        when several), collapsed layers, and a ``status`` column when some training was not ok."""
        several = len(self.seeds) > 1
        show_family = bool(self.dynamic)  # the column appears when sparse-training methods are in the table
        rows = [{"method": s["method"], **({"family": s["family"]} if show_family else {}),
                 "sparsity": f"{s['sparsity']:g}", "weights": f"{100 * (1 - s['sparsity']):.3g}%",
                 "test acc": pm(s["test_accuracy_mean"], s["test_accuracy_std"], ".3f", several),
                 "collapsed": str(s["collapsed_layers"]), "status": s["status"]} for s in self.summary()]
        if all(r["status"] == "ok" for r in rows):  # the column appears when a training was not ok
            for r in rows:
                del r["status"]
        return rows

    def table(self) -> str:
        """:meth:`display_rows` as aligned plain text under :attr:`title`, :attr:`notes` below."""
        head = ["method", *(["family"] if self.dynamic else []), "sparsity", "weights", "test acc", "collapsed"]
        rows = self.display_rows()
        body = text_table(rows, head=head + (["status"] if rows and "status" in rows[0] else []))
        return "\n".join([self.title, body, *self.notes])

    def to_dict(self) -> dict[str, Any]:
        return finite({"experiment": "run_prune_at_init", "config": self.config, "rows": self.rows,
                       "summary": self.summary(), "lottery": self.lottery,
                       **({"failed": self.failed} if self.failed else {})})

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, out: str | os.PathLike[str], plots: bool = True) -> list[str]:
        """Write results.json, runs.csv and (``plots``) accuracy_vs_sparsity.png; return the paths.

        The data files come first; a figure that cannot be written warns instead of raising."""
        out = check_out(out)
        assert out is not None
        written = [os.path.join(out, "results.json"), os.path.join(out, "runs.csv")]
        atomic_write(written[0], self.to_json())
        head = ["method", "sparsity", "seed", "achieved_sparsity", "test_accuracy", "final_test_accuracy",
                "collapsed_layers", "status", "seconds", "family", "distribution", "mask_updates"]
        lines = [",".join(head)] + [",".join(";".join(r[h]) if h == "collapsed_layers" else str(r.get(h, "")) for h in head)
                                    for r in self.rows]
        atomic_write(written[1], "\n".join(lines) + "\n")
        if plots and self.rows:
            from kerasinit.plots._common import pyplot
            from kerasinit.plots.sparsity import plot_accuracy_vs_sparsity

            written += save_outputs([(os.path.join(out, "accuracy_vs_sparsity.png"),
                                      lambda p: plot_accuracy_vs_sparsity(self, out=p))])
            pyplot().close("all")
        return written


def run_prune_at_init(
    model: Any,
    dataset: Any,
    methods: Sequence[str] | None = None,
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    seeds: Sequence[int] = (0,),
    *,
    distribution: str | Mapping[str, float] = "global",
    ablation: str | Sequence[str] | None = None,
    iterations: int | None = None,
    score_samples: int = 256,
    epochs: int = 10,
    batch_size: int = 64,
    optimizer: str = "adam",
    learning_rate: float = 1e-3,
    loss: Any = None,
    model_options: Mapping[str, Any] | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = True,
    plots: bool = True,
    with_lottery: bool = False,
    progress: bool | Any = False,
    tensorboard: str | os.PathLike[str] | None = None,
    update_every: int = 100,
    drop_fraction: float = 0.3,
    drop_schedule: str = "cosine",
    executor: Any = None,
) -> AtInitResults:
    """Prune fresh copies of ``model`` at initialization by each method and sparsity, train them, compare.

    ``model``: a zoo name, a ``.keras`` file, a ``keras.Model`` or a callable (as ``run_lottery`` takes);
    ``dataset``: a built-in name, a file, arrays or a ``Dataset`` (``experiments.datasets.load``).
    ``distribution``, ``ablation``, ``iterations``: as for :func:`~kerasinit.pruning.prune_at_init`
    (``iterations`` applies to every method but ``"random"``).
    ``score_samples``: training examples in SNIP's and GraSP's scoring batch. ``with_lottery``: also run
    :func:`~kerasinit.experiments.lottery.run_lottery` (rate 0.5 per round, as many rounds as reach the
    highest sparsity, same training settings and seeds) for IMP's tickets as a reference line (its own
    run folder ``out/lottery``). ``out``: a run folder (checked before any training: a ValueError naming
    ``out`` if it is a file or cannot be written) for :meth:`AtInitResults.save`'s files. A rerun with
    the same settings there resumes: finished (method, sparsity, seed) trainings are read back, not
    re-run (``methods``, ``sparsities`` and ``seeds`` may change; ``trained`` lists the new ones);
    other settings raise :class:`~kerasinit.experiments.results.RunFolderConflict`; ``resume=False``
    deletes what an earlier run wrote there and starts over. A call asking for fewer runs than the
    folder holds returns them and leaves the folder as it is. ``progress``: one bar over every training
    (``experiments.progress.Progress``). ``tensorboard``: a folder where each run's masks are written for
    TensorBoard (``<method>_<sparsity>_seed_<s>/``, step 0: fixed through training), per weight sparsity
    (:mod:`kerasinit.pruning.summaries`); a dynamic method's masks at step 0 and at the end.

    ``methods`` may also hold ``"rigl"``, ``"set"``, ``"static"``: sparse training from the same
    initialization in the same fit (:class:`~kerasinit.pruning.sparse_training.SparseTraining` with this
    ``distribution``, ``"uniform"`` under ``"global"`` (warned), ``update_every``, ``drop_fraction``,
    ``drop_schedule``, ``seed``; RigL's gradient on ``batch_size`` training samples per update; the
    default ``end_step``, 75% of the steps). ``ablation`` applies to at-init masks only (a ValueError
    with a dynamic method); ``iterations`` and ``score_samples`` to the scores only.

    ``loss``: default from the model's output (``experiments.training.choose_loss``), used by SNIP's
    and GraSP's scores and by training, recorded in ``config["loss"]``. Each row has a status
    (``"ok"``, ``"stalled"``: test accuracy near chance, ``"diverged"``); the first stalled one warns
    (``ChanceLevelWarning``). Ctrl-C keeps the finished runs (saved to ``out`` with
    ``config["interrupted"]``, no plot; a rerun resumes) and raises
    ``experiments.training.ExperimentInterrupted``.

    ``executor``: where the trainings run (:mod:`kerasinit.experiments.executor`): ``None``/``"inprocess"``
    one after the other here; ``"ray"`` (or a ``RayExecutor``) as parallel Ray tasks with the same numbers
    and run folder; a training that fails on every attempt is listed in ``failed``, the notes and a
    ``TaskFailedWarning`` (a rerun with the same ``out`` retries it). ``with_lottery``'s IMP run uses the
    same executor.
    """
    owner = "run_prune_at_init"
    runner = resolve_executor(executor)
    methods = default_methods() if methods is None else methods
    methods = [m.strip() if isinstance(m, str) else m for m in ([methods] if isinstance(methods, str) else methods)]
    allowed = [*SCORES, *(m for m in DYNAMIC if m not in SCORES)]
    for m in methods:
        if not isinstance(m, str) or m not in allowed:
            raise ValueError(f"{owner}: argument `methods` must hold names among {allowed} (the pruning scores, then "
                             f"the sparse-training methods); received {m!r}." + (did_you_mean(m, allowed)
                                                                                  if isinstance(m, str) else ""))
    dynamic = [m for m in methods if m in DYNAMIC and m not in SCORES]
    if dynamic and ablation:
        raise ValueError(f"{owner}: argument `ablation` ({ablation!r}) changes masks chosen at initialization; the "
                         f"sparse-training methods {dynamic} draw random masks and move them: run them without "
                         "ablation (or in a call of their own).")
    update_every = check_int("update_every", update_every, 1, owner=owner)
    drop_fraction = check_real("drop_fraction", drop_fraction, owner=owner)
    if not 0.0 < drop_fraction <= 1.0:
        raise ValueError(f"{owner}: argument `drop_fraction` must be in (0, 1]; received {drop_fraction!r}.")
    drop_schedule = check_choice("drop_schedule", drop_schedule, DROP_SCHEDULES, owner=owner)
    sparse_distribution = distribution
    if isinstance(distribution, str) and distribution == "global":
        sparse_distribution = "uniform"
        if dynamic:
            warnings.warn(f"{owner}: the distribution 'global' has no per-layer sparsity before scoring; the "
                          f"sparse-training methods {dynamic} train with 'uniform' (every layer at the sparsity); pass "
                          "distribution='erk' (Evci et al.'s) or 'uniform' to give every method the same one.",
                          UserWarning, stacklevel=2)
    sparsities = [check_sparsity("sparsities", s, owner) for s in sparsities]
    seeds = [check_int("seeds", s, 0, owner=owner) for s in seeds]
    score_samples = check_int("score_samples", score_samples, 1, owner=owner)
    if not methods or not sparsities or not seeds:
        raise ValueError(f"{owner}: arguments `methods`, `sparsities` and `seeds` must not be empty.")
    ds = load(dataset, seed=0)
    chosen = choose_loss(instantiate(model, ds.input_shape, ds.n_classes, seeds[0], model_options), loss, ds.x_train)
    config = {"model": model if isinstance(model, str) else type(model).__name__, "dataset": ds.name, "methods": methods,
              "sparsities": sparsities, "seeds": seeds, "distribution": distribution, "ablation": ablation,
              "iterations": iterations, "score_samples": score_samples, "epochs": epochs, "batch_size": batch_size,
              "optimizer": optimizer, "learning_rate": learning_rate, "loss": chosen.name,
              "loss_source": chosen.source, "model_options": dict(model_options or {}), "update_every": update_every,
              "drop_fraction": drop_fraction, "drop_schedule": drop_schedule}
    folder = RunFolder(out, config, _resume_keys, resume, experiment="run_prune_at_init", outputs=OUTPUTS)
    saved = {_key(r): {"family": AT_INIT, **r} for r in folder.rows}  # rows written before the family column
    wanted = [(method, float(sparsity), seed) for method in methods for sparsity in sparsities for seed in seeds]
    done = {key: saved[key] for key in wanted if key in saved}
    results = AtInitResults(config)
    batch = (ds.x_train[:score_samples], ds.y_train[:score_samples])

    def document(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        everything = [*(r for key, r in saved.items() if key not in done), *done.values()]
        return AtInitResults({**config, **(extra or {})}, everything,
                             failed=[f.failure() for f in failures]).to_dict()

    shared_ds, shared_batch = Shared(ds), Shared(batch)
    common = {"model": model, "ds": shared_ds, "model_options": model_options, "batch": shared_batch,
              "distribution": distribution, "sparse_distribution": sparse_distribution, "iterations": iterations,
              "ablation": ablation, "loss": chosen.loss, "epochs": epochs, "batch_size": batch_size,
              "optimizer": optimizer, "learning_rate": learning_rate, "tensorboard": tensorboard,
              "update_every": update_every, "drop_fraction": drop_fraction, "drop_schedule": drop_schedule}
    tasks = [Task(f"{method} {sparsity:g} seed {seed}", "kerasinit.experiments.sparsity:prune_task",
                  {**common, "method": method, "sparsity": sparsity, "seed": seed}, key=(method, sparsity, seed),
                  epochs=epochs, order=(i,)) for i, (method, sparsity, seed) in enumerate(wanted)
             if (method, sparsity, seed) not in done]
    failures: list[Outcome] = []

    def finished(outcome: Outcome, bar: Progress) -> None:
        method, sparsity, seed = outcome.task.key
        if not outcome.ok:
            failures.append(outcome)
            return
        row = outcome.value
        bar.note(f"test acc {row['test_accuracy']:.3f}")
        if row["status"] == "stalled" and not any(r["status"] == "stalled" for r in done.values()):
            warn_chance_level(f"run_prune_at_init: the training of {method} at sparsity {sparsity:g} "
                              f"seed {seed}", row["test_accuracy"], ds.chance, chosen,
                              ["the sparsity (a layer pruned empty or nearly so)"], stacklevel=6)
        done[(method, sparsity, seed)] = row
        results.trained.append((method, sparsity, seed))
        folder.commit(row, document=None if out is None else document())

    with Progress(progress, total=len(wanted) * epochs, done=len(done) * epochs) as bar:
        try:
            runner.run(tasks, lambda outcome: finished(outcome, bar), bar)
            if with_lottery:
                from kerasinit.experiments.lottery import run_lottery

                rounds = max(1, math.ceil(math.log(1.0 - max(sparsities)) / math.log(0.5)))
                tickets = run_lottery(model, ds, optimizer=optimizer, learning_rate=learning_rate, loss=loss, epochs=epochs,
                                      batch_size=batch_size, rounds=rounds, rate=0.5, controls=[], seeds=seeds,
                                      model_options=model_options, plots=False, resume=resume,
                                      out=None if out is None else folder.path("lottery"), executor=runner)
        except KeyboardInterrupt:
            what = f"after {len(done)} of {len(wanted)} trainings" + (" (during the IMP reference run)"
                                                                      if len(done) == len(wanted) else "")
            if out is None or not done:
                raise ExperimentInterrupted(what) from None
            atomic_write(folder.path("results.json"), json.dumps(finite(document({"interrupted": what})), indent=2))
            raise ExperimentInterrupted(what, folder.out, resumable=True) from None
    results.rows = [done[key] for key in wanted if key in done]
    results.failed = [f.failure() for f in failures]
    warn_failed("run_prune_at_init", failures)
    if with_lottery:
        results.lottery = [{"sparsity": 1.0 - float(r["remaining"]), "test_accuracy_mean": float(r["ticket_test_accuracy_mean"]),
                            "test_accuracy_std": float(r["ticket_test_accuracy_std"])}
                           for r in tickets.summary().to_dict(orient="records")]
    if out is not None and set(saved) <= set(wanted):  # never drop runs of a larger earlier call from the folder
        results.written = results.save(folder.out, plots=plots)
    return results


def prune_task(model: Any, ds: Dataset, method: str, sparsity: float, seed: int, *, model_options: Any, batch: Any,
               distribution: Any, sparse_distribution: Any, iterations: int | None, ablation: Any, loss: Any,
               epochs: int, batch_size: int, optimizer: Any, learning_rate: float, tensorboard: Any,
               update_every: int, drop_fraction: float, drop_schedule: str,
               callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """One (method, sparsity, seed) of :func:`run_prune_at_init` as an executor task: a fresh copy drawn with
    ``seed``, pruned at initialization (or given :class:`SparseTraining`), trained; its row."""
    start = time.perf_counter()
    net = instantiate(model, ds.input_shape, ds.n_classes, seed, model_options)
    callbacks = list(callbacks)
    sparse = None
    if method in DYNAMIC and method not in SCORES:  # sparse training: random masks now, moved (rigl, set) in the fit
        sparse = SparseTraining(method, sparsity, distribution=sparse_distribution, update_every=update_every,
                                drop_fraction=drop_fraction, drop_schedule=drop_schedule, seed=seed,
                                data=(ds.x_train, ds.y_train) if method == "rigl" else None,
                                batch_size=batch_size if method == "rigl" else None, loss=loss).build(net)
        pruner = sparse.pruner
        callbacks.append(sparse)
    else:
        pruner = prune_at_init(net, sparsity, method, batch if SCORES[method].needs_data else None,
                               distribution=distribution, seed=seed,
                               iterations=iterations if SCORES[method].iterative else None,
                               ablation=ablation, loss=loss)
    assert pruner is not None
    collapsed = list(pruner.collapsed) if sparse is None else []  # random masks keep >= 1 per weight
    summaries = None
    if tensorboard is not None:  # the masks at step 0 (at init: fixed through training)
        summaries = PruningSummaries(os.path.join(os.fspath(tensorboard), f"{method}_{sparsity:g}_seed_{seed}"),
                                     owner="run_prune_at_init")
        summaries.write_masks(0, pruner.get_masks())
    try:
        run = train(net, ds, epochs=epochs, batch_size=batch_size, seed=seed, optimizer=optimizer,
                    learning_rate=learning_rate, loss=loss, callbacks=callbacks)
        if summaries is not None and sparse is not None:  # where the dynamic masks ended
            summaries.write_masks(run.steps, pruner.get_masks())
    finally:
        if summaries is not None:
            summaries.close()
    return {"method": method, "family": family(method), "sparsity": sparsity, "seed": seed,
            "achieved_sparsity": round(pruner.sparsity, 6), "test_accuracy": run.test_accuracy,
            "final_test_accuracy": run.final_test_accuracy, "collapsed_layers": collapsed,
            "hessian": None if sparse is not None else pruner.scores.hessian, "diverged": run.diverged,
            "status": run.status(ds.chance), "seconds": round(time.perf_counter() - start, 3),
            "distribution": _distribution_name(sparse_distribution if sparse is not None else distribution),
            **_final_masks(pruner),
            "mask_updates": 0 if sparse is None else len({h["step"] for h in sparse.history}),
            "end_step": None if sparse is None else sparse.end_step}


#: settings that must match to resume a run from its folder (``methods``, ``sparsities``, ``seeds`` may change)
RESUME_KEYS = ("model", "model_options", "dataset", "distribution", "ablation", "iterations", "score_samples", "epochs",
               "batch_size", "optimizer", "learning_rate", "loss", "update_every", "drop_fraction", "drop_schedule")
#: settings only the sparse-training rows depend on: compared only when the folder holds such rows (a folder of
#: scores alone, or one written before the sparse-training methods existed, resumes under any of them)
SPARSE_KEYS = ("update_every", "drop_fraction", "drop_schedule")


def _resume_keys(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """The settings a folder with these finished ``rows`` must share with a call to resume it."""
    dynamic = any(row.get("method") in DYNAMIC for row in rows)
    return RESUME_KEYS if dynamic else tuple(k for k in RESUME_KEYS if k not in SPARSE_KEYS)


#: what a run writes in its folder (deleted, with results.json, when ``resume=False`` starts over)
OUTPUTS = ("runs.csv", "accuracy_vs_sparsity.png", "*.tmp", *(f"lottery/{name}" for name in LOTTERY_OUTPUTS),
           "lottery/results.json")


def _key(row: Mapping[str, Any]) -> tuple[str, float, int]:
    return row["method"], float(row["sparsity"]), int(row["seed"])


def _distribution_name(distribution: str | Mapping[str, float]) -> str:
    return distribution if isinstance(distribution, str) else "per-layer"


def _final_masks(pruner: Any) -> dict[str, Any]:
    """``layers``: each weight's ``size`` and ``kept`` (its mask's count) now; ``leaked``: nonzero weights outside
    the masks (0 unless the masks failed)."""
    from kerasinit._arrays import to_numpy

    masks = pruner.get_masks()
    layers, leaked = {}, 0
    for w in pruner.weights:
        mask = masks[w.name].astype(bool)
        layers[w.name] = {"size": int(mask.size), "kept": int(mask.sum())}
        leaked += int(np.count_nonzero(to_numpy(w.variable)[~mask]))
    return {"layers": layers, "leaked": leaked}


__all__ = ["AtInitResults", "prune_task", "run_prune_at_init"]
