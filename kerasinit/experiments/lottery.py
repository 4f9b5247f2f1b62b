"""Lottery tickets on any Keras model: iterative magnitude pruning (IMP) with controls, as an experiment.

Frankle & Carbin, "The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks",
ICLR 2019; rewinding to an early step: Frankle, Dziugaite, Roy & Carbin, "Linear Mode
Connectivity and the Lottery Ticket Hypothesis", ICML 2020.

>>> results = run_lottery("conv4", "cifar10", optimizer="sgd", learning_rate=0.05, seeds=(0, 1, 2), out="lt")
>>> results.to_pandas()          # long table: seed, round, remaining, <kind>_test_accuracy, ...
>>> print(results.table())       # mean ± std over the seeds per round

Per seed: round 0 trains the dense model from θ0 (a fresh draw of its initializers with the seed;
θ_K, the weights after K steps, is also kept when rewinding to step K). Round k ≥ 1 prunes, per
layer (``scope="layer"``) or jointly (``scope="global"``, layers with an override on their own),
the smallest-magnitude weights among the survivors of the previous round's *trained* ticket so
that a layer keeps ``keep_count(n, 1 − (1 − p)^k)`` of its ``n`` weights (``p = rate`` or its
override, by default the last pruned layer at ``rate / 2``), rewinds the survivors to θ0 (θ_K),
the pruned weights to 0, and retrains with the mask fixed (``kerasinit.pruning.Pruner`` masks,
applied inside the compiled step). Controls per round: ``"reinit"`` (the ticket's mask on a fresh
draw with another seed) and ``"random"`` (a random mask with the ticket's per-layer counts on θ0/θ_K).
Every training is one :func:`kerasinit.experiments.training.train` call with a fresh optimizer and
``keras.utils.set_random_seed(seed)``: the same data order for the ticket and its controls.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit._validation import check_choice, check_int, check_real
from kerasinit.experiments.datasets import Dataset, load
from kerasinit.experiments.executor import (
    Outcome,
    Shared,
    Task,
    cached,
    check_local_only,
    failure_notes,
    forget,
    resolve_executor,
    warn_failed,
)
from kerasinit.experiments.models import assign_weights, describe_spec, instantiate, model_weights
from kerasinit.experiments.progress import Progress
from kerasinit.experiments.results import (
    RunFolder,
    finite,
    load_arrays,
    mean_std,
    pm,
    save_arrays,
    save_outputs,
    status_label,
    status_notes,
    text_table,
)
from kerasinit.experiments.training import (
    ExperimentInterrupted,
    choose_loss,
    steps_per_epoch,
    train,
    warn_chance_level,
)
from kerasinit.pruning import Pruner, PruningCallback, random_mask
from kerasinit.pruning.imp import next_masks, remaining
from kerasinit.pruning.summaries import PruningSummaries

KINDS = ("ticket", "reinit", "random")
CONTROLS = ("reinit", "random")
SCOPES = ("layer", "global")
#: what a run writes in its folder (deleted, with results.json, when ``resume=False`` starts over)
OUTPUTS = ("rounds.csv", "summary.csv", "lottery.png", "seed_*/theta0.npz", "seed_*/theta_rewind.npz",
           "seed_*/masks_round_*.npz", "seed_*/random_masks_round_*.npz", "seed_*/trained_round_*.npz",
           "seed_*/*.tmp.npz", "*.tmp")
#: settings that must match to resume a run from its folder (``rounds`` and ``seeds`` may grow)
RESUME_KEYS = ("model", "dataset", "optimizer", "learning_rate", "loss", "epochs", "batch_size", "rate",
               "rate_overrides", "layers", "scope", "rewind", "controls", "eval_every", "dataset_seed")


def parse_rewind(rewind: str) -> tuple[str, int]:
    """``"init"`` -> ("init", 0); ``"epoch:K"`` / ``"step:K"`` -> (unit, K) with K >= 0."""
    if not isinstance(rewind, str):
        raise TypeError(f"argument `rewind` must be 'init', 'epoch:K' or 'step:K'; received {rewind!r}.")
    if rewind == "init":
        return "init", 0
    unit, _, value = rewind.partition(":")
    if unit in ("epoch", "step") and value.isdigit():
        return unit, int(value)
    raise ValueError(f"argument `rewind` must be 'init', 'epoch:K' or 'step:K' (K an integer >= 0); received {rewind!r}.")


def check_rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise TypeError(f"argument `{name}` must be a float in (0, 1); received {value!r}.")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"argument `{name}` must be a float in (0, 1) (the fraction of remaining weights pruned "
                         f"per round); received {value!r}.")
    return float(value)


def check_controls(controls: Any) -> tuple[str, ...]:
    if controls is None:
        return ()
    if isinstance(controls, str):
        controls = [c.strip() for c in controls.split(",") if c.strip()]
    if not isinstance(controls, Sequence):
        raise TypeError(f"argument `controls` must be a list of {', '.join(CONTROLS)}; received {controls!r}.")
    unknown = [c for c in controls if c not in CONTROLS]
    if unknown:
        raise ValueError(f"argument `controls` has unknown controls {unknown}; allowed: {', '.join(CONTROLS)}.")
    return tuple(c for c in CONTROLS if c in controls)


def check_seeds(seeds: Any) -> list[int]:
    """``seeds``: an int N (seeds 0..N-1) or a non-empty list of distinct ints >= 0."""
    if isinstance(seeds, int | np.integer) and not isinstance(seeds, bool):
        return list(range(check_int("seeds", seeds, 1)))
    if isinstance(seeds, Sequence) and not isinstance(seeds, str) and seeds and len(set(seeds)) == len(seeds) and \
            all(isinstance(s, int | np.integer) and not isinstance(s, bool) and s >= 0 for s in seeds):
        return [int(s) for s in seeds]
    raise ValueError(f"argument `seeds` must be a positive int or a list of distinct ints >= 0; received {seeds!r}.")


@dataclass
class LotteryResults:
    """Rows of an IMP run (one per seed and round, round 0 = dense) with its settings and folder."""

    config: dict[str, Any]
    rows: list[dict[str, Any]]
    out: str | None = None
    #: (seed, round) trained by the call that returned these results (resumed ones are not listed)
    trained: list[tuple[int, int]] = field(default_factory=list)
    #: the files the call wrote to ``out`` at the end (empty: nothing rewritten, e.g. the folder holds a longer run)
    written: list[str] = field(default_factory=list)
    #: trainings that raised on every attempt (``executor="ray"``): ``{"task", "error", "attempts"}``
    failed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def trained_rounds(self) -> list[int]:
        return [r for _, r in self.trained]

    @property
    def seeds(self) -> list[int]:
        return list(dict.fromkeys(r["seed"] for r in self.rows))

    def to_pandas(self) -> Any:
        """Long table, one row per (seed, round): remaining (overall and per layer), then for each of
        ticket/reinit/random ``<kind>_test_accuracy``, ``<kind>_early_stop_step``, ``<kind>_val_loss``
        (NaN where a control was not run)."""
        import pandas as pd

        flat = []
        for r in self.rows:
            row = {"seed": r["seed"], "round": r["round"], "remaining": r["remaining"]}
            row.update({f"remaining[{k}]": v for k, v in r["remaining_layers"].items()})
            for kind in KINDS:
                run = r.get(kind)
                for key, col in (("test_accuracy", "test_accuracy"), ("early_stop_step", "early_stop_step"),
                                 ("val_loss", "val_loss")):
                    row[f"{kind}_{col}"] = run[key] if run and run[key] is not None else math.nan
            flat.append(row)
        return pd.DataFrame(flat)

    def summary(self) -> Any:
        """One row per round: remaining, and mean/std over seeds of each kind's accuracy and stop step."""
        import pandas as pd

        rows = []
        for rnd in sorted({r["round"] for r in self.rows}):
            group = [r for r in self.rows if r["round"] == rnd]
            row: dict[str, Any] = {"round": rnd, "remaining": float(np.mean([r["remaining"] for r in group])),
                                   "seeds": len(group)}
            for kind in KINDS:
                for key in ("test_accuracy", "early_stop_step"):
                    row[f"{kind}_{key}_mean"], row[f"{kind}_{key}_std"] = mean_std(
                        [r[kind][key] for r in group if r.get(kind) and r[kind][key] is not None])
            rows.append(row)
        return pd.DataFrame(rows)

    @property
    def title(self) -> str:
        """One line naming the experiment (the tables' title)."""
        c, seeds = self.config, self.seeds
        return (f"lottery tickets (IMP): {c['model']} on {c['dataset']}, {c['rate']:g} of the weights pruned per round "
                f"({c['scope']} scope), rewind to {c['rewind']}, {c['epochs']} epochs, "
                + (f"{len(seeds)} seeds {seeds}" if len(seeds) > 1 else f"seed {seeds[0]}" if seeds else "no seed"))

    @property
    def notes(self) -> list[str]:
        """Footnotes of :meth:`display_rows`: what each column and status means."""
        c = self.config
        several = len(self.seeds) > 1
        kinds = ("ticket", *c["controls"])
        meaning = {"ticket": "the pruned network rewound to " + ("its initial weights" if c["rewind"] == "init"
                                                                  else f"its weights at {c['rewind']}"),
                   "reinit": "the ticket's mask on a fresh random draw of the weights",
                   "random": "a random mask with the ticket's per-layer counts on the same starting weights"}
        notes = ["weights: % of the prunable weights left; " + "; ".join(f"{k}: {meaning[k]}" for k in kinds),
                 "acc: test accuracy in % at the early-stop step" + (f", mean ± std over {len(self.seeds)} seeds"
                                                                if several else ""),
                 f"stop: the early-stop step, where the validation loss was lowest, of {c['steps']} training steps "
                 f"({c['steps_per_epoch']} per epoch)" + (", mean over seeds" if several else "")
                 + f"; last ({c['steps']}) = the last step: the validation loss was still falling when training "
                 "ended (train longer for an earlier stop)"]
        statuses = [r[k].get("status", "ok") for r in self.rows for k in kinds if r.get(k)]
        return notes + status_notes(statuses) + failure_notes(self.failed)

    def display_rows(self) -> list[dict[str, str]]:
        """One row per round (header -> cell): round, % weights left, then per kind (ticket and each control)
        the test accuracy in % (``"91.2"``: the table stays within 100 columns) and the early-stop step (``last (T)`` when it is the last step), mean ± std over
        seeds when several; a ``status`` column when some training was not ok (see :attr:`notes`)."""
        several = len(self.seeds) > 1
        kinds = ("ticket", *self.config["controls"])
        out = []
        for rnd in sorted({r["round"] for r in self.rows}):
            group = [r for r in self.rows if r["round"] == rnd]
            cells = {"round": str(rnd), "weights": percent(float(np.mean([r["remaining"] for r in group])))}
            for kind in kinds:
                runs = [r[kind] for r in group if r.get(kind)]
                acc = [100 * run["test_accuracy"] for run in runs if run["test_accuracy"] is not None]
                cells[f"{kind} acc"] = pm(*mean_std(acc), ".1f", several) if runs else "-"
                cells[f"{kind} stop"] = stop_cell(runs, self.config.get("steps"), several)
            cells["status"] = round_status(group, kinds)
            out.append(cells)
        if all(cells["status"] == "ok" for cells in out):  # the column appears when a training was not ok
            for cells in out:
                del cells["status"]
        return out

    def table(self) -> str:
        """:meth:`display_rows` as aligned plain text under :attr:`title`, :attr:`notes` below."""
        rows = self.display_rows()
        head = display_header(self.config["controls"])
        body = text_table(rows, head if rows and "status" in rows[0] else head[:-1])
        return "\n".join([self.title, body, *self.notes])

    def to_dict(self) -> dict[str, Any]:
        return finite({"experiment": "run_lottery", "config": self.config, "rows": self.rows,
                       **({"failed": self.failed} if self.failed else {})})

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, out: str | os.PathLike[str], plots: bool = True) -> list[str]:
        """Write ``results.json``, ``rounds.csv`` (long), ``summary.csv`` and (``plots``) ``lottery.png``.

        The data files come first; a figure that cannot be written warns instead of raising."""
        from kerasinit.experiments.results import atomic_write, check_out

        out = check_out(out)
        assert out is not None
        paths = [os.path.join(out, n) for n in ("results.json", "rounds.csv", "summary.csv")]
        atomic_write(paths[0], self.to_json())
        self.to_pandas().to_csv(paths[1], index=False)
        self.summary().to_csv(paths[2], index=False)
        if plots:
            from kerasinit.plots._common import pyplot
            from kerasinit.plots.lottery import plot_lottery

            paths += save_outputs([(os.path.join(out, "lottery.png"), lambda p: plot_lottery(self, out=p))])
            pyplot().close("all")
        return paths


def percent(fraction: float) -> str:
    """``"100%"``, ``"51.2%"``, ``"1.56%"``: three significant digits."""
    return f"{100 * fraction:.3g}%"


def stop_cell(runs: Sequence[Mapping[str, Any]], last: int | None, several: bool) -> str:
    """The early-stop step of ``runs`` (one kind, one round): ``"last (T)"`` when every run stopped at its
    last step T, else the step (mean ± std over seeds when ``several``); ``"-"`` when none ran."""
    steps = [run["early_stop_step"] for run in runs if run.get("early_stop_step") is not None]
    if not steps:
        return "-"
    ends = {run.get("last_step", last) for run in runs}
    if len(ends) == 1 and None not in ends and all(s == next(iter(ends)) for s in steps):
        return f"last ({next(iter(ends))})"
    return pm(*mean_std(steps), ".0f", several)


def display_header(controls: Sequence[str]) -> list[str]:
    head = ["round", "weights"]
    for kind in ("ticket", *controls):
        head += [f"{kind} acc", f"{kind} stop"]
    return [*head, "status"]


def round_status(rows: Sequence[Mapping[str, Any]], kinds: Sequence[str]) -> str:
    """``"ok"``, or which trainings of these rows (one round, one or more seeds) were not, counting seeds:
    ``"random stalled"``, ``"ticket stalled in 1 of 3 seeds; reinit diverged"`` (meanings: :func:`status_notes`)."""
    parts = []
    for kind in kinds:
        label = status_label([r[kind].get("status", "ok") for r in rows if r.get(kind)])
        if label != "ok":
            parts.append(f"{kind} {label}")
    return "; ".join(parts) or "ok"


def display_row(r: Mapping[str, Any], controls: Sequence[str], steps: int | None = None) -> dict[str, str]:
    """One finished (seed, round) row as strings: seed, round, weights, accuracy and stop per kind, status.

    ``steps``: the training's last step (``config["steps"]``), for rows recorded without ``last_step``."""
    out = {"seed": str(r["seed"]), "round": str(r["round"]), "weights": percent(r["remaining"])}
    for kind in ("ticket", *controls):
        run = r.get(kind)
        out[f"{kind} acc"] = f"{100 * run['test_accuracy']:.1f}" if run and run["test_accuracy"] is not None else "-"
        out[f"{kind} stop"] = stop_cell([run] if run else [], steps, False)
    out["status"] = round_status([r], ("ticket", *controls))
    return out


def lottery_task(kind: str, rnd: int, seed: int, *, model: Any, ds: Dataset, model_options: Mapping[str, Any] | None,
                 layers: Any, token: str, start_step: int, snapshot_at: int | None = None,
                 theta: Mapping[str, np.ndarray] | None = None, masks: Mapping[str, np.ndarray] | None = None,
                 reinit_seed: int | None = None, strategy: Any = None,
                 on_train_begin: Callable[[str, int, Any], None] | None = None,
                 callbacks: Sequence[keras.callbacks.Callback] = (), **settings: Any) -> dict[str, Any]:
    """One training of :func:`run_lottery` as an executor task (the same code in this process and in a worker).

    The seed's model (drawn with ``seed``) and its :class:`~kerasinit.pruning.Pruner` are built once per
    process and reused by the seed's later tasks there (``token`` names the call). Round 0 trains a fresh
    draw from θ0 and returns θ0, θ_K (``snapshot_at``) and the trained pruned weights; a later round
    starts from ``theta`` (θ0 or θ_K) or, for ``reinit``, a fresh draw with ``reinit_seed``, under
    ``masks`` (by position), and trains from ``start_step``. Returns ``{"result": TrainResult, ...}``."""
    scope_cm = strategy.scope if strategy is not None else contextlib.nullcontext

    def fresh(draw: int) -> keras.Model:
        with scope_cm():
            return instantiate(model, ds.input_shape, ds.n_classes, draw, model_options)

    def build() -> tuple[keras.Model, Pruner]:
        net = fresh(seed)
        with scope_cm():
            return net, Pruner(net, layers=layers)

    if rnd == 0:  # a fresh draw (also when retried), kept for the seed's later tasks in this process
        forget((token, seed))
    net, pruner = cached((token, seed), build)
    out: dict[str, Any] = {}
    if rnd == 0:
        out["theta0"] = model_weights(net)
    else:
        assign_weights(net, model_weights(fresh(reinit_seed)) if kind == "reinit" else theta)
        assert masks is not None
        pruner.set_masks(dict(zip(pruner.masks, masks.values(), strict=True)))
    if on_train_begin is not None:
        on_train_begin(kind, rnd, net)
    result = train(net, ds, seed=seed, start_step=start_step, snapshot_at=snapshot_at, strategy=strategy,
                   callbacks=[PruningCallback(pruner=pruner), *callbacks], **settings)
    out["snapshot"], result.snapshot = result.snapshot, None
    if kind == "ticket":
        out["trained"] = [to_numpy(w.variable) for w in pruner.weights]
    out["result"] = result
    return out


def _layers_repr(layers: Any) -> Any:
    if layers is None or isinstance(layers, str):
        return layers
    items = [layers] if not isinstance(layers, list | tuple) else layers
    return [getattr(s, "pattern", None) or getattr(s, "__name__", None) or str(s) for s in items]


def run_lottery(
    model: Any = "lenet_300_100",
    dataset: Any = "digits",
    *,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    learning_rate: float = 1.2e-3,
    loss: Any = None,
    epochs: int = 15,
    batch_size: int = 64,
    rounds: int = 6,
    rate: float = 0.5,
    rate_overrides: Mapping[str, float] | None = None,
    layers: Any = None,
    scope: str = "layer",
    rewind: str = "init",
    controls: Sequence[str] | str | None = CONTROLS,
    seeds: int | Sequence[int] = (0,),
    eval_every: int = 1,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    strategy: Any = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = True,
    plots: bool = True,
    progress: bool | Any = False,
    model_options: Mapping[str, Any] | None = None,
    dataset_seed: int = 0,
    on_round: Callable[[dict[str, Any]], None] | None = None,
    on_train_begin: Callable[[str, int, Any], None] | None = None,
    tensorboard: str | os.PathLike[str] | None = None,
    executor: Any = None,
) -> LotteryResults:
    """Iterative magnitude pruning with rewinding and controls; return :class:`LotteryResults`.

    ``model``: a zoo name (``kerasinit.experiments.models.ZOO``; ``model_options`` for ``mlp``), a
    ``.keras`` file, a ``keras.Model`` (cloned and re-drawn per seed) or a zero-argument callable.
    ``dataset``: anything :func:`kerasinit.experiments.datasets.load` takes, or a ``Dataset``.
    ``rounds`` pruning rounds follow the dense round 0; ``rate``: fraction of the remaining weights
    pruned per round; ``rate_overrides``: ``{layer name: rate}`` (default: the last pruned layer,
    the output, at ``rate / 2``; ``{}`` for none). ``layers``: which layers to prune
    (``kerasinit.pruning.select`` selectors; default every Dense/Conv/Embedding/RNN kernel).
    ``rewind``: ``"init"`` (θ0), ``"epoch:K"`` or ``"step:K"`` (θ_K). ``controls``: any of
    ``"reinit"``, ``"random"``. ``seeds``: the whole experiment once per seed (tables and plots show
    mean ± std). ``callbacks``: extra Keras callbacks for every training. ``strategy``: a
    ``tf.distribute`` strategy (model, masks and optimizer built in its scope). ``out``: folder for
    ``results.json``, ``rounds.csv``, ``summary.csv``, ``lottery.png`` and per seed ``seed_<s>/``
    with ``theta0.npz`` (``theta_rewind.npz``), ``masks_round_<k>.npz``, ``random_masks_round_<k>.npz``,
    ``trained_round_<k>.npz``; with ``resume`` a run there with the same settings continues after its
    last finished round. ``on_round(row)`` for every round in order: the resumed ones (before any
    training of their seed), then each one as it finishes; ``on_train_begin(kind, round, model)`` right
    before each training (starting weights and mask in place). ``tensorboard``: a folder where each
    round's mask is written for TensorBoard (``seed_<s>/``, step = round): per weight, its sparsity and
    threshold, the smallest trained magnitude the round kept (:mod:`kerasinit.pruning.summaries`).

    ``loss``: default from the model's output (``experiments.training.choose_loss``: cross-entropy on
    probabilities behind softmax/sigmoid, ``from_logits=True`` otherwise), recorded in
    ``config["loss"]``. Every training gets a status (``"ok"``, ``"stalled"``: test accuracy near
    chance, ``"diverged"``), shown in the table; the first stalled one warns (``ChanceLevelWarning``).
    Ctrl-C (``KeyboardInterrupt``) keeps the finished rounds and raises
    ``experiments.training.ExperimentInterrupted`` naming the last one.

    ``executor``: where the trainings run (:mod:`kerasinit.experiments.executor`): ``None``/``"inprocess"``
    one after the other here (seed by seed; per round the ticket, then the controls); ``"ray"`` (or a
    ``RayExecutor``) as Ray tasks: the rounds of a seed in sequence (each needs the previous ticket's
    trained weights), the seeds in parallel, and round r's controls beside round r's ticket (they need
    only its mask, known once round r−1's ticket is trained; see ``docs/scale.md``). Same numbers and
    run folder (rounds are committed in order per seed). A training that fails on every attempt is
    reported (``failed``, the notes, a ``TaskFailedWarning``): a failed control leaves its round's row
    without it (``row["failed"]``; a rerun runs it again), a failed ticket stops its seed there.
    ``callbacks``, ``strategy`` and ``on_train_begin`` act in this process (in-process only).
    """
    runner = resolve_executor(executor)
    check_local_only(runner, "run_lottery", callbacks=list(callbacks), strategy=strategy, on_train_begin=on_train_begin)
    rounds, epochs = check_int("rounds", rounds, 1), check_int("epochs", epochs, 1)
    batch_size, eval_every = check_int("batch_size", batch_size, 1), check_int("eval_every", eval_every, 1)
    rate = check_rate("rate", rate)
    check_choice("scope", scope, SCOPES)
    unit, k = parse_rewind(rewind)
    controls = check_controls(controls)
    seed_list = check_seeds(seeds)
    if isinstance(optimizer, str):
        check_real("learning_rate", learning_rate, positive=True)
    ds = load(dataset, seed=dataset_seed)
    spe = steps_per_epoch(ds, batch_size)
    total = epochs * spe
    start = k * spe if unit == "epoch" else k
    if start >= total:
        raise ValueError(f"argument `rewind` {rewind!r} is at step {start}, not before the end of training "
                         f"({total} steps = {epochs} epochs x {spe}).")
    scope_cm = strategy.scope if strategy is not None else contextlib.nullcontext

    def fresh(seed: int) -> keras.Model:
        with scope_cm():
            return instantiate(model, ds.input_shape, ds.n_classes, seed, model_options)

    probe = fresh(seed_list[0])
    chosen = choose_loss(probe, loss, ds.x_train)
    with scope_cm():
        probe_pruner = Pruner(probe, layers=layers)
    pruned_layers = [w.layer.name for w in probe_pruner.weights]
    overrides = {pruned_layers[-1]: rate / 2} if rate_overrides is None else dict(rate_overrides)
    for name, value in overrides.items():
        if name not in pruned_layers:
            raise ValueError(f"argument `rate_overrides` names {name!r}, not a pruned layer; pruned: {pruned_layers}.")
        overrides[name] = check_rate(f"rate_overrides[{name!r}]", value)
    config = {"model": describe_spec(model), "dataset": ds.name, "optimizer": optimizer if isinstance(optimizer, str)
              else type(optimizer).__name__, "learning_rate": float(learning_rate), "loss": chosen.name,
              "loss_source": chosen.source, "chance": ds.chance, "epochs": epochs, "batch_size": batch_size, "rounds": rounds,
              "rate": rate, "rate_overrides": overrides, "layers": _layers_repr(layers), "scope": scope,
              "rewind": rewind, "rewind_step": start, "controls": list(controls), "seeds": seed_list,
              "eval_every": eval_every, "dataset_seed": dataset_seed, "steps": total, "steps_per_epoch": spe}
    folder = RunFolder(out, config, RESUME_KEYS, resume, experiment="run_lottery", outputs=OUTPUTS)
    saved = {(r["seed"], r["round"]): r for r in folder.rows}
    kept = [r for r in folder.rows if r["seed"] in seed_list and r["round"] <= rounds]
    runs_per_round = 1 + len(controls)
    rewound_epochs = math.ceil((total - start) / spe)
    per_seed = epochs + rounds * runs_per_round * rewound_epochs
    done = sum(epochs if r["round"] == 0 else runs_per_round * rewound_epochs for r in kept)
    settings = {"epochs": epochs, "batch_size": batch_size, "optimizer": optimizer, "learning_rate": learning_rate,
                "loss": chosen.loss, "eval_every": eval_every, "strategy": strategy}
    trained: list[tuple[int, int]] = []
    warned: list[str] = []

    def record(result: Any, what: str) -> dict[str, Any]:
        row = {**result.record(ds.chance), "last_step": total}
        if row["status"] == "stalled" and not warned:
            warned.append(what)
            warn_chance_level(f"run_lottery: the {what} training", row["test_accuracy"], ds.chance, chosen,
                              stacklevel=7)
        return row

    names = [w.name for w in probe_pruner.weights]
    owners = [w.layer.name for w in probe_pruner.weights]
    layer_of = {w.name: w.layer.name if owners.count(w.layer.name) == 1 else w.name for w in probe_pruner.weights}
    rates = {w.name: overrides.get(w.layer.name, rate) for w in probe_pruner.weights}
    joint = [w.name for w in probe_pruner.weights if w.layer.name not in overrides]
    full = {n: np.ones(probe_pruner.masks[n].shape, "uint8") for n in names}
    token = uuid.uuid4().hex  # this call's models in the per-process cache of the tasks
    shared_ds = Shared(ds)
    common = {"model": model, "ds": shared_ds, "model_options": model_options, "layers": layers, "token": token,
              "strategy": strategy, "on_train_begin": on_train_begin, "callbacks": list(callbacks), **settings}
    common = {k: v for k, v in common.items() if k != "strategy" or v is not None}
    state: dict[int, dict[str, Any]] = {}
    failures: list[Outcome] = []

    def path(seed: int, name: str) -> str:
        return folder.path(f"seed_{seed}", name)

    def by_name(arrays: Mapping[str, np.ndarray] | Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        values = arrays.values() if isinstance(arrays, Mapping) else arrays
        return dict(zip(names, values, strict=True))

    def task(seed: int, rnd: int, kind: str, **kwargs: Any) -> Task:
        return Task(f"seed {seed} round {rnd} {kind}", "kerasinit.experiments.lottery:lottery_task",
                    {**common, "kind": kind, "rnd": rnd, "seed": seed, **kwargs}, key=(seed, rnd, kind),
                    epochs=epochs if rnd == 0 else rewound_epochs, order=(seed_list.index(seed), rnd, KINDS.index(kind)))

    def control_tasks(seed: int, rnd: int, masks: dict[str, np.ndarray], kinds: Sequence[str]) -> list[Task]:
        """Round ``rnd``'s controls: they need its mask (from the previous round's trained ticket), not its ticket."""
        st, out_tasks = state[seed], []
        if "reinit" in kinds:
            out_tasks.append(task(seed, rnd, "reinit", masks=masks, reinit_seed=10_000 + 100 * seed + rnd,
                                  start_step=start))
        if "random" in kinds:
            rng = np.random.default_rng([seed, rnd, 7])
            random_masks = {n: random_mask(m.shape, 1.0 - float(m.sum()) / m.size, rng) for n, m in masks.items()}
            if out is not None:
                save_arrays(path(seed, f"random_masks_round_{rnd}.npz"), random_masks)
            out_tasks.append(task(seed, rnd, "random", masks=random_masks, theta=st["theta_k"], start_step=start))
        return out_tasks

    def open_round(seed: int, rnd: int) -> list[Task]:
        """Round ``rnd`` of ``seed`` once round ``rnd - 1``'s ticket is trained: its mask, then its ticket and
        controls (independent of each other)."""
        st = state[seed]
        masks = next_masks(st["trained"], st["masks"], rates, rnd, scope, joint)
        st["masks"] = masks
        if st["summaries"] is not None:  # the round's mask and the trained magnitudes it was cut from
            st["summaries"].write_masks(rnd, masks, st["trained"])
        if out is not None:
            save_arrays(path(seed, f"masks_round_{rnd}.npz"), masks)
        st["pending"][rnd] = {"masks": masks, "records": {}, "failed": {}, "waiting": {"ticket", *controls}}
        return [task(seed, rnd, "ticket", masks=masks, theta=st["theta_k"], start_step=start),
                *control_tasks(seed, rnd, masks, controls)]

    def commit_ready(seed: int) -> None:
        """Commit the seed's finished rounds in order (a rerun resumes after the last one committed)."""
        st = state[seed]
        while st["next"] in st["pending"] and not st["pending"][st["next"]]["waiting"]:
            rnd = st["next"]
            if "ticket" in st["pending"][rnd]["failed"]:
                return  # the seed stops here (its later rounds need this ticket)
            entry = st["pending"].pop(rnd)
            if rnd in st["patch"]:  # a saved row whose failed controls were re-run
                row = {**saved[(seed, rnd)], **entry["records"]}
                row.pop("failed", None)
                if entry["failed"]:
                    row["failed"] = entry["failed"]
                saved[(seed, rnd)] = row
                folder.commit(row, rows=sorted(saved.values(), key=lambda r: (r["seed"], r["round"])))
                later = [r for r in st["patch"] if r > rnd and r in st["pending"]]
                st["next"] = min(later) if later else st["resume_next"]
                continue
            records = {k: entry["records"][k] for k in KINDS if k in entry["records"]}
            _finish(folder, saved, seed, rnd, entry["masks"], layer_of, records, trained, on_round,
                    failed=entry["failed"])
            st["next"] = rnd + 1

    def finished(outcome: Outcome, bar: Progress) -> list[Task]:
        seed, rnd, kind = outcome.task.key
        st = state[seed]
        entry = st["pending"][rnd]
        entry["waiting"].discard(kind)
        follow: list[Task] = []
        if not outcome.ok:
            failures.append(outcome)
            entry["failed"][kind] = outcome.error
        else:
            value = outcome.value
            result = value["result"]
            bar.note(f"test acc {result.test_accuracy:.3f}")  # this training's, under its own name
            entry["records"][kind] = record(result, f"seed {seed} round {rnd} {kind}")
            if kind == "ticket":
                st["trained"] = by_name(value["trained"])
                if rnd == 0:
                    st["theta0"] = value["theta0"]
                    st["theta_k"] = Shared(value["snapshot"] if start else value["theta0"])
                    if out is not None:
                        save_arrays(path(seed, "theta0.npz"), value["theta0"])
                        if start:
                            save_arrays(path(seed, "theta_rewind.npz"), value["snapshot"])
                if out is not None:
                    save_arrays(path(seed, f"trained_round_{rnd}.npz"), st["trained"])
                if rnd < rounds:
                    follow = open_round(seed, rnd + 1)
        commit_ready(seed)
        return follow

    tasks: list[Task] = []
    for seed in seed_list:
        if out is not None:
            os.makedirs(folder.path(f"seed_{seed}"), exist_ok=True)
        summaries = (None if tensorboard is None else
                     PruningSummaries(os.path.join(os.fspath(tensorboard), f"seed_{seed}"), owner="run_lottery"))
        st = state[seed] = {"pending": {}, "summaries": summaries, "masks": full, "patch": set(), "next": 0}
        last = max((r for (s, r) in saved if s == seed), default=None)
        if last is not None and out is not None:
            theta0 = load_arrays(path(seed, "theta0.npz"))
            st["theta_k"] = Shared(load_arrays(path(seed, "theta_rewind.npz")) if start else theta0)
            st["masks"] = by_name(load_arrays(path(seed, f"masks_round_{last}.npz"))) if last else full
            st["trained"] = by_name(load_arrays(path(seed, f"trained_round_{last}.npz")))
            st["next"] = st["resume_next"] = last + 1
            if on_round is not None:  # the resumed rounds first: the caller's table holds every round
                for rnd in sorted(r for (s, r) in saved if s == seed and r <= rounds):
                    on_round(saved[(seed, rnd)])
            for rnd in sorted(r for (s, r) in saved if s == seed and 0 < r <= rounds and saved[(s, r)].get("failed")):
                retry = [k for k in controls if k in saved[(seed, rnd)]["failed"]]  # failed controls: run them again
                if retry:
                    masks = by_name(load_arrays(path(seed, f"masks_round_{rnd}.npz")))
                    st["pending"][rnd] = {"masks": masks, "records": {}, "failed": {}, "waiting": set(retry)}
                    st["patch"].add(rnd)
                    st["next"] = min(st["next"], rnd)
                    tasks += control_tasks(seed, rnd, masks, retry)
            if last < rounds:
                tasks += open_round(seed, last + 1)
        else:
            st["pending"][0] = {"masks": full, "records": {}, "failed": {}, "waiting": {"ticket"}}
            tasks.append(task(seed, 0, "ticket", start_step=0, snapshot_at=start))

    try:
        with Progress(progress, total=per_seed * len(seed_list), done=done) as bar:
            try:
                runner.run(tasks, lambda outcome: finished(outcome, bar), bar)
            finally:
                forget(token)
                for st in state.values():
                    if st["summaries"] is not None:
                        st["summaries"].close()
    except KeyboardInterrupt:
        finished = sorted((key for key in saved if key[0] in seed_list and key[1] <= rounds),
                          key=lambda key: (seed_list.index(key[0]), key[1]))
        if not finished:
            raise ExperimentInterrupted("before round 0 finished") from None
        seed, rnd = finished[-1]
        where = f"after round {rnd}" + (f" of seed {seed}" if len(seed_list) > 1 else "")
        raise ExperimentInterrupted(where, None if out is None else os.fspath(out), resumable=out is not None) from None

    rows = sorted((saved[key] for key in saved if key[0] in seed_list and key[1] <= rounds),
                  key=lambda r: (seed_list.index(r["seed"]), r["round"]))
    warn_failed("run_lottery", failures)
    results = LotteryResults(config=config, rows=rows, out=None if out is None else os.fspath(out), trained=trained,
                             failed=[f.failure() for f in failures])
    if out is not None and len(rows) == len(saved):  # never overwrite a longer run's records with a prefix
        results.written = results.save(out, plots=plots)
    return results


def _finish(folder: RunFolder, saved: dict[tuple[int, int], dict[str, Any]], seed: int, rnd: int,
            masks: Mapping[str, np.ndarray], layer_of: Mapping[str, str], records: dict[str, Any],
            trained: list[tuple[int, int]], on_round: Callable[[dict[str, Any]], None] | None,
            failed: Mapping[str, str] | None = None) -> None:
    """Record a finished round (after its arrays): results.json lists it, so a rerun resumes after it.
    ``failed``: controls that failed on every attempt (``{kind: error}``; a rerun runs them again)."""
    frac, per_layer = remaining(masks, layer_of)
    row = {"seed": seed, "round": rnd, "remaining": frac, "remaining_layers": per_layer, **records,
           **({"failed": dict(failed)} if failed else {})}
    saved[(seed, rnd)] = row
    trained.append((seed, rnd))
    folder.commit(row, rows=sorted(saved.values(), key=lambda r: (r["seed"], r["round"])))
    if on_round is not None:
        on_round(row)


__all__ = ["CONTROLS", "KINDS", "LotteryResults", "check_controls", "check_rate", "check_seeds", "display_header",
           "display_row", "lottery_task", "next_masks", "parse_rewind", "remaining", "run_lottery"]
