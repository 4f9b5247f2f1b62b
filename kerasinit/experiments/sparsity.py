"""Pruning at initialization as an experiment: test accuracy against sparsity, per method.

>>> results = run_prune_at_init("lenet_300_100", "digits", methods=["snip", "synflow", "random"],
...                             sparsities=[0.5, 0.9, 0.98], seeds=[0, 1], epochs=10)
>>> print(results.table())     # mean ± std test accuracy per (method, sparsity)
>>> results.save("out/")       # results.json, runs.csv and accuracy_vs_sparsity.png

For every (method, sparsity, seed) a fresh copy of the model is drawn with the seed, pruned by
:func:`kerasinit.pruning.prune_at_init` (SNIP and GraSP score one batch of ``score_samples``
training examples; SynFlow needs no data), and trained with the experiments' one trainer
(:func:`kerasinit.experiments.training.train`, ``model.fit``); the masks stay fixed through
training. Each run records the test accuracy at the early-stop point and at the end, the achieved
sparsity, and the layers the method emptied entirely (*layer collapse*, Tanaka et al. 2020).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kerasinit._validation import check_int
from kerasinit.experiments.datasets import load
from kerasinit.experiments.models import instantiate
from kerasinit.experiments.results import atomic_write, finite, mean_std, text_table
from kerasinit.experiments.training import (
    STATUS_NOTES,
    ExperimentInterrupted,
    choose_loss,
    train,
    warn_chance_level,
)
from kerasinit.pruning.at_init import prune_at_init
from kerasinit.pruning.schedules import check_sparsity
from kerasinit.pruning.scores import SCORES, default_methods

DEFAULT_SPARSITIES = (0.5, 0.8, 0.9, 0.95, 0.98)


@dataclass
class AtInitResults:
    """The runs of :func:`run_prune_at_init`: ``rows`` (one dict per method, sparsity and seed) and ``config``."""

    config: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: with ``with_lottery``: IMP's winning tickets from ``run_lottery``, one row per round
    #: (``sparsity``, ``test_accuracy_mean``, ``test_accuracy_std``), the reference line
    lottery: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> list[dict[str, Any]]:
        """Mean and std over seeds of the test accuracy, per (method, sparsity) in run order."""
        keys = list(dict.fromkeys((r["method"], r["sparsity"]) for r in self.rows))
        out = []
        for method, sparsity in keys:
            runs = [r for r in self.rows if r["method"] == method and r["sparsity"] == sparsity]
            mean, std = mean_std([r["test_accuracy"] for r in runs])
            statuses = [r.get("status", "ok") for r in runs]
            bad = [s for s in dict.fromkeys(statuses) if s != "ok"]
            status = "; ".join(STATUS_NOTES.get(s, s) + (f" ({statuses.count(s)}/{len(runs)})" if len(runs) > 1 else "")
                               for s in bad) or "ok"
            out.append({"method": method, "sparsity": sparsity, "test_accuracy_mean": mean, "test_accuracy_std": std,
                        "collapsed_layers": max(len(r["collapsed_layers"]) for r in runs), "seeds": len(runs),
                        "status": status})
        return out

    def table(self) -> str:
        rows = [{"method": s["method"], "sparsity": f"{s['sparsity']:g}",
                 "test acc": f"{s['test_accuracy_mean']:.4f} ± {s['test_accuracy_std']:.4f}",
                 "collapsed layers": str(s["collapsed_layers"]), "status": s["status"]} for s in self.summary()]
        if all(r["status"] == "ok" for r in rows):  # the column appears when a training was not ok
            for r in rows:
                del r["status"]
        return text_table(rows, head=["method", "sparsity", "test acc", "collapsed layers",
                                      *(["status"] if rows and "status" in rows[0] else [])])

    def to_dict(self) -> dict[str, Any]:
        return finite({"config": self.config, "rows": self.rows, "summary": self.summary(), "lottery": self.lottery})

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, out: str | os.PathLike[str], plots: bool = True) -> list[str]:
        """Write results.json, runs.csv and (``plots``) accuracy_vs_sparsity.png; return the paths."""
        os.makedirs(out, exist_ok=True)
        written = [os.path.join(out, "results.json"), os.path.join(out, "runs.csv")]
        atomic_write(written[0], self.to_json())
        head = ["method", "sparsity", "seed", "achieved_sparsity", "test_accuracy", "final_test_accuracy",
                "collapsed_layers", "status", "seconds"]
        lines = [",".join(head)] + [",".join(";".join(r[h]) if h == "collapsed_layers" else str(r[h]) for h in head)
                                    for r in self.rows]
        atomic_write(written[1], "\n".join(lines) + "\n")
        if plots and self.rows:
            from kerasinit.plots.sparsity import plot_accuracy_vs_sparsity

            written.append(os.path.join(out, "accuracy_vs_sparsity.png"))
            plot_accuracy_vs_sparsity(self, out=written[-1])
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
    plots: bool = True,
    with_lottery: bool = False,
) -> AtInitResults:
    """Prune fresh copies of ``model`` at initialization by each method and sparsity, train them, compare.

    ``model``: a zoo name, a ``.keras`` file, a ``keras.Model`` or a callable (as ``run_lottery`` takes);
    ``dataset``: a built-in name, a file, arrays or a ``Dataset`` (``experiments.datasets.load``).
    ``distribution``, ``ablation``, ``iterations``: as for :func:`~kerasinit.pruning.prune_at_init`
    (``iterations`` applies to every method but ``"random"``).
    ``score_samples``: training examples in SNIP's and GraSP's scoring batch. ``with_lottery``: also run
    :func:`~kerasinit.experiments.lottery.run_lottery` (rate 0.5 per round, as many rounds as reach the
    highest sparsity, same training settings and seeds) for IMP's tickets as a reference line. With
    ``out`` the results are saved there (see :meth:`AtInitResults.save`).

    ``loss``: default from the model's output (``experiments.training.choose_loss``), used by SNIP's
    and GraSP's scores and by training, recorded in ``config["loss"]``. Each row has a status
    (``"ok"``, ``"stalled"``: test accuracy near chance, ``"diverged"``); the first stalled one warns
    (``ChanceLevelWarning``). Ctrl-C keeps the finished runs (saved to ``out`` with
    ``config["interrupted"]``, no plot) and raises ``experiments.training.ExperimentInterrupted``.
    """
    owner = "run_prune_at_init"
    methods = default_methods() if methods is None else methods
    methods = [m.strip() if isinstance(m, str) else m for m in ([methods] if isinstance(methods, str) else methods)]
    for m in methods:
        if m not in SCORES:
            raise ValueError(f"{owner}: argument `methods` must hold names among {list(SCORES)}; received {m!r}.")
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
              "loss_source": chosen.source}
    results = AtInitResults(config)
    batch = (ds.x_train[:score_samples], ds.y_train[:score_samples])
    total = len(methods) * len(sparsities) * len(seeds)
    try:
        for method in methods:
            for sparsity in sparsities:
                for seed in seeds:
                    start = time.perf_counter()
                    net = instantiate(model, ds.input_shape, ds.n_classes, seed, model_options)
                    pruner = prune_at_init(net, sparsity, method, batch if SCORES[method].needs_data else None,
                                           distribution=distribution, seed=seed,
                                           iterations=iterations if SCORES[method].iterative else None,
                                           ablation=ablation, loss=chosen.loss)
                    collapsed = list(pruner.collapsed)  # the weights the pruner emptied (it warned naming them)
                    run = train(net, ds, epochs=epochs, batch_size=batch_size, seed=seed, optimizer=optimizer,
                                learning_rate=learning_rate, loss=chosen.loss)
                    status = run.status(ds.chance)
                    if status == "stalled" and not any(r["status"] == "stalled" for r in results.rows):
                        warn_chance_level(f"run_prune_at_init: the training of {method} at sparsity {sparsity:g} "
                                          f"seed {seed}", run.test_accuracy, ds.chance, chosen,
                                          ["the sparsity (a layer pruned empty or nearly so)"])
                    results.rows.append({"method": method, "sparsity": sparsity, "seed": seed,
                                         "achieved_sparsity": round(pruner.sparsity, 6),
                                         "test_accuracy": run.test_accuracy,
                                         "final_test_accuracy": run.final_test_accuracy, "collapsed_layers": collapsed,
                                         "hessian": pruner.scores.hessian, "diverged": run.diverged, "status": status,
                                         "seconds": round(time.perf_counter() - start, 3)})
        if with_lottery:
            from kerasinit.experiments.lottery import run_lottery

            rounds = max(1, math.ceil(math.log(1.0 - max(sparsities)) / math.log(0.5)))
            tickets = run_lottery(model, ds, optimizer=optimizer, learning_rate=learning_rate, loss=loss, epochs=epochs,
                                  batch_size=batch_size, rounds=rounds, rate=0.5, controls=[], seeds=seeds,
                                  model_options=model_options, plots=False)
    except KeyboardInterrupt:
        done = f"after {len(results.rows)} of {total} trainings" + (" (during the IMP reference run)"
                                                                    if len(results.rows) == total else "")
        if out is None or not results.rows:
            raise ExperimentInterrupted(done) from None
        config["interrupted"] = done
        results.save(out, plots=False)
        raise ExperimentInterrupted(done, os.fspath(out)) from None
    if with_lottery:
        results.lottery = [{"sparsity": 1.0 - float(r["remaining"]), "test_accuracy_mean": float(r["ticket_test_accuracy_mean"]),
                            "test_accuracy_std": float(r["ticket_test_accuracy_std"])}
                           for r in tickets.summary().to_dict(orient="records")]
    if out is not None:
        results.save(out, plots=plots)
    return results


__all__ = ["AtInitResults", "run_prune_at_init"]
