"""Lottery tickets: iterative magnitude pruning (IMP) with controls (SPEC §4.4).

Frankle & Carbin, "The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks",
ICLR 2019; rewinding to an early step: Frankle, Dziugaite, Roy & Carbin, "Linear Mode
Connectivity and the Lottery Ticket Hypothesis", ICML 2020.

>>> results = run_lottery("digits", rounds=6, rate=0.2, out="lt")   # round 0 = dense, then 6 prunings
>>> results.to_pandas()          # one row per round: weights remaining, ticket and control accuracies
>>> print(results.table())

Round 0 trains the dense MLP from θ0 (weights right after initialization; θ_K is also recorded when
rewinding to step K). Each later round prunes, per layer (``scope="layer"``) or over all hidden
layers together (``scope="global"``, the output layer on its own), the smallest-magnitude
``rate`` of the weights still remaining after the previous round's training (the output layer at
``output_rate``, by default ``rate / 2``), rewinds the survivors to θ0 (or θ_K) and retrains with
the mask fixed. After k rounds a layer keeps ``keep_count(n, 1 - (1 - p)^k)`` weights. Controls
on each round: ``"reinit"`` (the ticket's mask, weights drawn afresh from the same initializer
with another seed) and ``"random"`` (a random mask with the ticket's per-layer sparsity, weights
from the rewind point). Every training uses a fresh Adam, starts at the rewind step and sees the
same batches in the same order (one shuffling fixed by ``seed``); the validation loss is measured
every ``eval_every`` steps and the step of its minimum (early stopping) is reported with the test
accuracy of the weights at that step. Pruning uses the weights at the end of training.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from kerasinit._json import finite
from kerasinit._progress import open_bar
from kerasinit.compare import ACTIVATIONS, _seeded
from kerasinit.datasets import Dataset, load
from kerasinit.pruning import Pruner, global_masks, magnitude_mask, random_mask

KINDS = ("ticket", "reinit", "random")
CONTROLS = ("reinit", "random")
SCOPES = ("layer", "global")
#: settings that must match to resume a run from its folder (``rounds`` may grow)
RESUME_KEYS = ("dataset", "arch", "activation", "initializer", "rate", "output_rate", "scope", "rewind", "controls",
               "epochs", "batch_size", "learning_rate", "eval_every", "seed", "dataset_seed")
RESULTS_FILE = "results.json"


@dataclass
class LotteryResults:
    """Rows of an IMP run (one per round, round 0 = dense) with its settings and folder."""

    config: dict[str, Any]
    rows: list[dict[str, Any]]
    out: str | None = None
    #: rounds trained by the call that returned these results (resumed rounds are not listed)
    trained_rounds: list[int] = field(default_factory=list)

    def to_pandas(self) -> Any:
        """One row per round: round, remaining (%), per-layer remaining, then for each of
        ticket/reinit/random ``<kind>_test_accuracy``, ``<kind>_early_stop_step``,
        ``<kind>_val_loss`` (NaN where a control was not run)."""
        import pandas as pd

        flat = []
        for r in self.rows:
            row = {"round": r["round"], "remaining": r["remaining"]}
            row.update({f"remaining[{k}]": v for k, v in r["remaining_layers"].items()})
            for kind in KINDS:
                run = r.get(kind)
                row[f"{kind}_test_accuracy"] = run["test_accuracy"] if run else math.nan
                row[f"{kind}_early_stop_step"] = run["early_stop_step"] if run else math.nan
                row[f"{kind}_val_loss"] = run["val_loss"] if run else math.nan
            flat.append(row)
        return pd.DataFrame(flat)

    def display_rows(self) -> list[dict[str, str]]:
        return [display_row(r, self.config["controls"]) for r in self.rows]

    def table(self) -> str:
        """Aligned plain text: round, % weights remaining, test accuracy and early-stop step per kind."""
        rows = self.display_rows()
        head = list(rows[0]) if rows else list(display_header(self.config["controls"]))
        widths = [max(len(h), *(len(r[h]) for r in rows)) for h in head]
        lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
        lines += ["  ".join(r[h].rjust(w) for h, w in zip(head, widths, strict=True)) for r in rows]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return finite({"config": self.config, "rows": self.rows})

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, out: str | os.PathLike[str], plots: bool = True) -> list[str]:
        """Write ``results.json``, ``rounds.csv`` and (``plots``) ``lottery.png`` into ``out``."""
        os.makedirs(out, exist_ok=True)
        json_path, csv_path = os.path.join(out, RESULTS_FILE), os.path.join(out, "rounds.csv")
        _atomic_write(json_path, self.to_json())
        self.to_pandas().to_csv(csv_path, index=False)
        written = [json_path, csv_path]
        if plots:
            from kerasinit.plots.lottery import plot_lottery

            written.append(os.path.join(out, "lottery.png"))
            plot_lottery(self, out=written[-1])
            import matplotlib.pyplot as plt

            plt.close("all")
        return written


def display_header(controls: Sequence[str]) -> list[str]:
    head = ["round", "% weights"]
    for kind in ("ticket", *controls):
        head += [f"{kind} acc", f"{kind} stop"]
    return head


def display_row(r: Mapping[str, Any], controls: Sequence[str]) -> dict[str, str]:
    """One round as strings: round, % weights remaining, test accuracy and early-stop step per kind."""
    out = {"round": str(r["round"]), "% weights": f"{100 * r['remaining']:.1f}"}
    for kind in ("ticket", *controls):
        run = r.get(kind)
        out[f"{kind} acc"] = f"{run['test_accuracy']:.4f}" if run else "-"
        out[f"{kind} stop"] = str(run["early_stop_step"]) if run else "-"
    return out


def _atomic_write(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _save_npz(path: str, arrays: Mapping[str, np.ndarray]) -> None:
    tmp = f"{path}.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def _load_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


# -- arguments ---------------------------------------------------------------------------------------


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


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"argument `{name}` must be an int >= {low}; received {value!r}.")
    if value < low:
        raise ValueError(f"argument `{name}` must be an int >= {low}; received {value!r}.")
    return int(value)


def _check_rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise TypeError(f"argument `{name}` must be a float in (0, 1); received {value!r}.")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"argument `{name}` must be a float in (0, 1) (the fraction of remaining weights pruned "
                         f"per round); received {value!r}.")
    return float(value)


def _check_controls(controls: Any) -> tuple[str, ...]:
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


def _check_arch(arch: Any) -> tuple[int, ...]:
    if isinstance(arch, str):
        try:
            arch = [int(p) for p in arch.split(",") if p.strip()]
        except ValueError:
            raise ValueError(f"argument `arch` must be hidden widths like (300, 100) or '300,100'; received {arch!r}.") \
                from None
    if isinstance(arch, int | np.integer) and not isinstance(arch, bool):
        arch = (arch,)
    if not isinstance(arch, Sequence) or not arch or any(
            isinstance(a, bool) or not isinstance(a, int | np.integer) or a < 1 for a in arch):
        raise ValueError(f"argument `arch` must be positive hidden widths like (300, 100); received {arch!r}.")
    return tuple(int(a) for a in arch)


# -- the model and its training ----------------------------------------------------------------------


def build_model(n_features: int, n_classes: int, arch: Sequence[int], init: Any, activation: str, seed: int) -> Any:
    """Dense layers ``hidden_1..`` of widths ``arch`` and a softmax ``output``; every kernel drawn by
    ``init`` with its own seed (``seed * 1000 + layer index``), zero biases."""
    inputs = keras.Input((n_features,), name="x")
    h = inputs
    for i, width in enumerate(arch):
        h = keras.layers.Dense(width, activation=activation, kernel_initializer=_seeded(init, seed * 1000 + i),
                               name=f"hidden_{i + 1}")(h)
    outputs = keras.layers.Dense(n_classes, activation="softmax", kernel_initializer=_seeded(init, seed * 1000 + len(arch)),
                                 name="output")(h)
    return keras.Model(inputs, outputs, name="lenet_fc")


def model_weights(model: Any) -> dict[str, np.ndarray]:
    """Every weight of ``model`` as NumPy, keyed by its path (``"hidden_1/kernel"``)."""
    return {v.path: np.array(keras.ops.convert_to_numpy(v)) for v in model.weights}


def assign_weights(model: Any, weights: Mapping[str, np.ndarray]) -> None:
    for v in model.weights:
        v.assign(weights[v.path])


def batch_order(n: int, batch_size: int, epochs: int, seed: int) -> list[np.ndarray]:
    """The index batches of every step: one permutation per epoch from ``seed``; the last batch of an
    epoch may be smaller."""
    rng = np.random.default_rng(seed)
    order = []
    for _ in range(epochs):
        perm = rng.permutation(n)
        order += [perm[i:i + batch_size] for i in range(0, n, batch_size)]
    return order


@dataclass
class _Run:
    test_accuracy: float
    early_stop_step: int
    val_loss: float
    val_accuracy: float
    final_test_accuracy: float
    steps: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _evaluate(model: Any, ds: Dataset) -> tuple[float, float, float]:
    """Validation loss and accuracy, test accuracy (one forward pass each)."""
    p_val = np.asarray(keras.ops.convert_to_numpy(model.predict_on_batch(ds.x_val)), dtype="float64")
    p_test = np.asarray(keras.ops.convert_to_numpy(model.predict_on_batch(ds.x_test)))
    picked = np.clip(p_val[np.arange(len(ds.y_val)), ds.y_val], 1e-12, 1.0)
    val_loss = float(-np.mean(np.log(picked)))
    return val_loss, float(np.mean(p_val.argmax(1) == ds.y_val)), float(np.mean(p_test.argmax(1) == ds.y_test))


def _train(model: Any, ds: Dataset, order: Sequence[np.ndarray], start: int, *, learning_rate: float, eval_every: int,
           seed: int, snapshot_at: int | None = None,
           on_step: Callable[[int], None] | None = None) -> tuple[_Run, dict[str, np.ndarray] | None]:
    """Train from step ``start`` to ``len(order)`` with a fresh Adam; track the validation minimum."""
    began = time.perf_counter()
    keras.utils.set_random_seed(seed)
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
    total = len(order)
    snapshot = model_weights(model) if snapshot_at == start else None
    best: tuple[float, int, float, float] | None = None
    last_test = math.nan

    def check(step: int) -> None:
        nonlocal best, last_test
        val_loss, val_acc, test_acc = _evaluate(model, ds)
        last_test = test_acc
        if best is None or val_loss < best[0]:
            best = (val_loss, step, val_acc, test_acc)

    check(start)
    for step in range(start, total):
        idx = order[step]
        model.train_on_batch(ds.x_train[idx], ds.y_train[idx])
        done = step + 1
        if snapshot_at == done:
            snapshot = model_weights(model)
        if (done - start) % eval_every == 0 or done == total:
            check(done)
        if on_step is not None:
            on_step(1)
    assert best is not None
    run = _Run(test_accuracy=best[3], early_stop_step=best[1], val_loss=best[0], val_accuracy=best[2],
               final_test_accuracy=last_test, steps=total - start, seconds=round(time.perf_counter() - began, 3))
    return run, snapshot


def next_masks(trained: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray], names: Sequence[str],
               round_: int, rate: float, output_rate: float, scope: str) -> dict[str, np.ndarray]:
    """Masks of round ``round_``: prune by |trained weight| among the survivors of ``masks`` down to
    ``keep_count(n, 1 - (1 - rate)^round_)`` per layer (``output/kernel`` at ``output_rate``);
    ``scope="global"``: one threshold over the hidden kernels together."""
    hidden = [n for n in names if n != "output/kernel"]
    values = {n: trained[n] * masks[n] for n in names}  # pruned weights are 0: they stay pruned
    target = 1.0 - (1.0 - rate) ** round_
    out: dict[str, np.ndarray] = {}
    if scope == "global":
        out.update(zip(hidden, global_masks([values[n] for n in hidden], target), strict=True))
    else:
        out.update({n: magnitude_mask(values[n], target) for n in hidden})
    out["output/kernel"] = magnitude_mask(values["output/kernel"], 1.0 - (1.0 - output_rate) ** round_)
    # a surviving weight trained to exactly 0.0 could tie with pruned ones: never revive a pruned weight
    return {n: out[n] & masks[n] for n in names}


def _remaining(masks: Mapping[str, np.ndarray]) -> tuple[float, dict[str, float]]:
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.size for m in masks.values())
    return kept / total, {n.split("/")[0]: float(m.sum() / m.size) for n, m in masks.items()}


# -- the experiment ----------------------------------------------------------------------------------


def run_lottery(
    dataset: str | os.PathLike[str] | Dataset = "digits",
    *,
    arch: Sequence[int] | str = (300, 100),
    activation: str = "relu",
    initializer: Any = "glorot_uniform",
    rounds: int = 6,
    rate: float = 0.2,
    output_rate: float | None = None,
    scope: str = "layer",
    rewind: str = "init",
    controls: Sequence[str] | str | None = CONTROLS,
    epochs: int = 25,
    batch_size: int = 64,
    learning_rate: float = 1.2e-3,
    eval_every: int = 10,
    seed: int = 0,
    dataset_seed: int = 0,
    out: str | os.PathLike[str] | None = None,
    resume: bool = True,
    plots: bool = True,
    progress: bool | Any = False,
    on_round: Callable[[dict[str, Any]], None] | None = None,
    on_train_begin: Callable[[str, int, Any], None] | None = None,
) -> LotteryResults:
    """Iterative magnitude pruning with rewinding and controls; return :class:`LotteryResults`.

    ``rounds`` pruning rounds follow the dense round 0. ``rate``: fraction of the remaining weights
    pruned per round in each hidden layer; ``output_rate`` (default ``rate / 2``) for the output
    layer. ``rewind``: ``"init"`` (θ0, Frankle & Carbin 2019), ``"epoch:K"`` or ``"step:K"``
    (θ_K, Frankle et al. 2020). ``controls``: any of ``"reinit"``, ``"random"``. Adam at
    ``learning_rate`` (Frankle & Carbin's LeNet setting), ``epochs`` over the training split in
    batches of ``batch_size``, validation every ``eval_every`` steps. ``out``: folder for
    ``results.json``, ``rounds.csv``, ``theta0.npz`` (``theta_rewind.npz``), ``masks_round_<k>.npz``,
    ``random_masks_round_<k>.npz``, ``trained_round_<k>.npz`` and ``lottery.png``; with ``resume``
    a run found there with the same settings continues after its last finished round.
    ``progress``: a rich progress bar on stderr (``True`` or a ``rich.console.Console``).
    ``on_round(row)`` is called after each finished round; ``on_train_begin(kind, round, model)``
    right before each training (the model holds its starting weights and mask).
    """
    from kerasinit.initializers.registry import get

    arch = _check_arch(arch)
    if activation not in ACTIVATIONS:
        raise ValueError(f"argument `activation` must be one of {', '.join(ACTIVATIONS)}; received {activation!r}.")
    rounds = _check_int("rounds", rounds, 1)
    rate = _check_rate("rate", rate)
    output_rate = rate / 2 if output_rate is None else _check_rate("output_rate", output_rate)
    if scope not in SCOPES:
        raise ValueError(f"argument `scope` must be one of {', '.join(SCOPES)}; received {scope!r}.")
    unit, k = parse_rewind(rewind)
    controls = _check_controls(controls)
    epochs, batch_size = _check_int("epochs", epochs, 1), _check_int("batch_size", batch_size, 1)
    eval_every, seed = _check_int("eval_every", eval_every, 1), _check_int("seed", seed, 0)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, int | float) or not learning_rate > 0:
        raise ValueError(f"argument `learning_rate` must be a positive float; received {learning_rate!r}.")
    try:
        init = get(initializer)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"argument `initializer`: cannot resolve {initializer!r} ({exc}).") from exc
    if not isinstance(init, keras.initializers.Initializer):
        raise TypeError(f"argument `initializer`: {initializer!r} is not a keras.initializers.Initializer.")
    ds = dataset if isinstance(dataset, Dataset) else load(dataset, seed=dataset_seed)
    order = batch_order(len(ds.y_train), batch_size, epochs, seed)
    steps_per_epoch = math.ceil(len(ds.y_train) / batch_size)
    start = k * steps_per_epoch if unit == "epoch" else k
    if start >= len(order):
        raise ValueError(f"argument `rewind` {rewind!r} is at step {start}, not before the end of training "
                         f"({len(order)} steps = {epochs} epochs x {steps_per_epoch}).")
    config = {"dataset": ds.name, "arch": list(arch), "activation": activation,
              "initializer": initializer if isinstance(initializer, str) else type(init).__name__,
              "rounds": rounds, "rate": rate, "output_rate": float(output_rate), "scope": scope, "rewind": rewind,
              "rewind_step": start, "controls": list(controls), "epochs": epochs, "batch_size": batch_size,
              "learning_rate": float(learning_rate), "eval_every": eval_every, "seed": seed,
              "dataset_seed": dataset_seed, "steps": len(order), "steps_per_epoch": steps_per_epoch}
    path = (lambda name: os.path.join(out, name)) if out is not None else None
    rows: list[dict[str, Any]] = []
    saved_rounds = 0
    if out is not None and resume and os.path.exists(path(RESULTS_FILE)):
        with open(path(RESULTS_FILE)) as fh:
            saved = json.load(fh)
        diff = [key for key in RESUME_KEYS if saved["config"].get(key) != config[key]]
        if diff:
            raise ValueError(f"argument `out`: {os.fspath(out)!r} holds a run with other settings ({', '.join(diff)}); "
                             "use another folder or resume=False (kerasinit lottery --fresh).")
        rows = [r for r in saved["rows"] if r["round"] <= rounds]
        saved_rounds = saved["rows"][-1]["round"] if saved["rows"] else 0
    if out is not None:
        os.makedirs(out, exist_ok=True)

    model = build_model(ds.n_features, ds.n_classes, arch, init, activation, seed)
    pruner = Pruner(model, layers=[f"hidden_{i + 1}" for i in range(len(arch))] + ["output"])
    names = list(pruner.masks)
    full = {n: np.ones(pruner.masks[n].shape, "uint8") for n in names}
    trained_rounds: list[int] = []
    n_runs = 1 + rounds * (1 + len(controls))
    done_runs = (1 if rows else 0) + max(len(rows) - 1, 0) * (1 + len(controls))
    run_steps = len(order) - start
    with _Progress(progress, total=len(order) + (n_runs - 1) * run_steps,
                   done=(len(order) if rows else 0) + max(done_runs - 1, 0) * run_steps) as bar:
        if rows:
            theta0 = _load_npz(path("theta0.npz"))
            theta_k = _load_npz(path("theta_rewind.npz")) if start else theta0
            masks = _load_npz(path(f"masks_round_{rows[-1]['round']}.npz")) if rows[-1]["round"] else full
            trained = _load_npz(path(f"trained_round_{rows[-1]['round']}.npz"))
        else:
            theta0 = model_weights(model)
            masks = full
            bar.describe("round 0 dense")
            if on_train_begin is not None:
                on_train_begin("ticket", 0, model)
            run, snap = _train(model, ds, order, 0, learning_rate=learning_rate, eval_every=eval_every, seed=seed,
                               snapshot_at=start, on_step=bar.advance)
            theta_k = snap if start else theta0
            trained = model_weights(model)
            if out is not None:
                _save_npz(path("theta0.npz"), theta0)
                if start:
                    _save_npz(path("theta_rewind.npz"), theta_k)
                _save_npz(path("trained_round_0.npz"), trained)
            rows.append(_row(0, full, {"ticket": run}))
            trained_rounds.append(0)
            _commit(out, config, rows, on_round)
        for r in range(rows[-1]["round"] + 1, rounds + 1):
            masks = next_masks(trained, masks, names, r, rate, output_rate, scope)
            remaining, _ = _remaining(masks)
            runs: dict[str, _Run] = {}
            bar.describe(f"round {r} ticket")
            assign_weights(model, theta_k)
            pruner.set_masks(masks)
            if on_train_begin is not None:
                on_train_begin("ticket", r, model)
            runs["ticket"], _ = _train(model, ds, order, start, learning_rate=learning_rate, eval_every=eval_every,
                                       seed=seed, on_step=bar.advance)
            trained = model_weights(model)
            random_masks = None
            if "reinit" in controls:
                bar.describe(f"round {r} reinit")
                fresh = build_model(ds.n_features, ds.n_classes, arch, init, activation, 10_000 + 100 * seed + r)
                assign_weights(model, model_weights(fresh))
                pruner.set_masks(masks)
                if on_train_begin is not None:
                    on_train_begin("reinit", r, model)
                runs["reinit"], _ = _train(model, ds, order, start, learning_rate=learning_rate,
                                           eval_every=eval_every, seed=seed, on_step=bar.advance)
            if "random" in controls:
                bar.describe(f"round {r} random")
                rng = np.random.default_rng([seed, r, 7])
                random_masks = {n: random_mask(m.shape, 1.0 - float(m.sum()) / m.size, rng) for n, m in masks.items()}
                assign_weights(model, theta_k)
                pruner.set_masks(random_masks)
                if on_train_begin is not None:
                    on_train_begin("random", r, model)
                runs["random"], _ = _train(model, ds, order, start, learning_rate=learning_rate,
                                           eval_every=eval_every, seed=seed, on_step=bar.advance)
            if out is not None:
                _save_npz(path(f"masks_round_{r}.npz"), masks)
                if random_masks is not None:
                    _save_npz(path(f"random_masks_round_{r}.npz"), random_masks)
                _save_npz(path(f"trained_round_{r}.npz"), trained)
            rows.append(_row(r, masks, runs))
            trained_rounds.append(r)
            _commit(out, config, rows, on_round)
            bar.note(f"{100 * remaining:.1f}% acc {runs['ticket'].test_accuracy:.3f}")
    results = LotteryResults(config=config, rows=rows, out=None if out is None else os.fspath(out),
                             trained_rounds=trained_rounds)
    if out is not None and saved_rounds <= rounds:  # never overwrite a longer run's records with a prefix
        results.save(out, plots=plots)
    return results


def _row(round_: int, masks: Mapping[str, np.ndarray], runs: Mapping[str, _Run]) -> dict[str, Any]:
    remaining, per_layer = _remaining(masks)
    return {"round": round_, "remaining": remaining, "remaining_layers": per_layer,
            **{kind: run.to_dict() for kind, run in runs.items()}}


def _commit(out: str | os.PathLike[str] | None, config: dict[str, Any], rows: list[dict[str, Any]],
            on_round: Callable[[dict[str, Any]], None] | None) -> None:
    """Record a finished round: results.json is written last, after its arrays (the resume point)."""
    if out is not None:
        _atomic_write(os.path.join(out, RESULTS_FILE), json.dumps(finite({"config": config, "rows": rows}), indent=2))
    if on_round is not None:
        on_round(rows[-1])


class _Progress:
    """One rich progress bar over every training step of the run, with ETA; a no-op when disabled."""

    def __init__(self, progress: bool | Any, total: int, done: int) -> None:
        self.progress = progress
        self.enabled = bool(progress)
        self.total, self.done = total, done
        self._bar: Any = None

    def __enter__(self) -> _Progress:
        self._bar = open_bar(self.progress, desc_width=16, bar_width=20, info_width=20, count="percent")
        if self.enabled:
            self._task = self._bar.add_task("lottery", total=self.total, completed=self.done, info="")
        return self

    def describe(self, text: str) -> None:
        if self.enabled:
            self._bar.update(self._task, description=text)

    def note(self, text: str) -> None:
        if self.enabled:
            self._bar.update(self._task, info=text)

    def advance(self, n: int) -> None:
        if self.enabled:
            self._bar.advance(self._task, n)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._bar.__exit__(*exc)


__all__ = ["CONTROLS", "KINDS", "LotteryResults", "batch_order", "build_model", "display_row", "next_masks",
           "parse_rewind", "run_lottery"]
