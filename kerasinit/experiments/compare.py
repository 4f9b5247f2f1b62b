"""Train the same MLP under several initializers and seeds; compare accuracy, speed and signal.

>>> results = run_compare(["zeros", "glorot_uniform", "he_normal"], dataset="digits", epochs=5, seeds=2)
>>> results.summary()          # one row per initializer (pandas)
>>> results.to_pandas()        # one row per (initializer, seed)
>>> results.save("out/")       # results.json, runs.csv, summary.csv, history.csv and the plots

Each run reports a status: ``diverged`` (NaN/inf loss), ``symmetric`` (all hidden units of some
layer identical after training: the zeros/constant initializers cannot break the symmetry),
``stalled`` (test accuracy near chance) or ``ok``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import keras
import numpy as np

from kerasinit._json import finite
from kerasinit._progress import open_bar
from kerasinit.datasets import Dataset, load

DEFAULT_INITS = ("zeros", "random_normal", "glorot_uniform", "he_normal", "kwon_tanh_uniform")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "selu", "gelu", "swish", "leaky_relu", "linear")
OPTIMIZERS = ("sgd", "adam")
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
    act_std: list[float]  # std of each hidden layer's output on the probe batch at step 0
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
            worst = max(statuses, key=lambda s: (statuses.count(s) if s != "ok" else -1, s))
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
                "status": "ok" if all(s == "ok" for s in statuses) else worst,
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
        return finite({"config": self.config,
                        "dataset": {"name": ds.name, "n_features": ds.n_features, "n_classes": ds.n_classes,
                                    "sizes": ds.sizes(), "chance": ds.chance},
                        "summary": summary, "runs": runs})

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def table(self) -> str:
        """The summary as aligned plain text (the CLI prints a rich table of the same rows)."""
        rows = [_display_row(r, self.config) for r in self.summary().to_dict(orient="records")]
        head = list(rows[0]) if rows else []
        widths = [max(len(h), *(len(r[h]) for r in rows)) for h in head]
        lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
        lines += ["  ".join(r[h].ljust(w) for h, w in zip(head, widths, strict=True)) for r in rows]
        return "\n".join(lines)

    def display_rows(self) -> list[dict[str, str]]:
        return [_display_row(r, self.config) for r in self.summary().to_dict(orient="records")]

    def save(self, out: str | os.PathLike[str], plots: bool = True) -> list[str]:
        """Write results.json, runs.csv, summary.csv, history.csv and (``plots``) the figures; return paths."""
        os.makedirs(out, exist_ok=True)
        paths = {name: os.path.join(out, name) for name in ("results.json", "runs.csv", "summary.csv", "history.csv")}
        with open(paths["results.json"], "w") as fh:
            fh.write(self.to_json())
        self.to_pandas().to_csv(paths["runs.csv"], index=False)
        self.summary().to_csv(paths["summary.csv"], index=False)
        self.history().to_csv(paths["history.csv"], index=False)
        written = list(paths.values())
        if plots:
            from kerasinit.plots.compare import (
                plot_activation_std,
                plot_decision_boundaries,
                plot_loss_curves,
            )

            written.append(os.path.join(out, "loss_curves.png"))
            plot_loss_curves(self, out=written[-1])
            written.append(os.path.join(out, "activation_std.png"))
            plot_activation_std(self, out=written[-1])
            if self.dataset.is_2d and self.models:
                written.append(os.path.join(out, "decision_boundaries.png"))
                plot_decision_boundaries(self, out=written[-1])
            import matplotlib.pyplot as plt

            plt.close("all")
        return written


STATUS_NOTES = {
    "symmetric": "symmetric (all units of a layer equal: zeros/constant cannot break symmetry)",
    "diverged": "diverged (NaN/inf loss)",
    "stalled": "stalled (accuracy near chance)",
}


def _display_row(r: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, str]:
    first, last = r["act_std_first"], r["act_std_last"]
    if first == 0 and last == 0:
        ratio = "0/0 (all zero)"
    elif math.isfinite(r["std_ratio"]):
        ratio = f"{r['std_ratio']:.3g}"
    else:
        ratio = "n/a"
    reach = "never" if r["reached"] == 0 else f"{r['epochs_to_target']:.1f}"
    if 0 < r["reached"] < r["seeds"]:
        reach += f" ({r['reached']}/{r['seeds']})"
    status = STATUS_NOTES.get(r["status"], r["status"])
    if r["status"] != "ok" and len(set(r["statuses"].split(","))) > 1:
        status += f" [{r['statuses']}]"
    return {"initializer": r["init"], "test acc (mean ± std)": f"{r['acc_mean']:.3f} ± {r['acc_std']:.3f}",
            f"epochs to val acc {config['target']:g}": reach, "act std first": f"{first:.3g}",
            "act std last": f"{last:.3g}", "std last/first": ratio, "status": status}


# -- arguments -------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"argument `{name}` must be an int >= {low}; received {value!r}.")
    return int(value)


def _resolve_inits(inits: Any) -> dict[str, Any]:
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


def _seeded(init: Any, seed: int) -> Any:
    """A copy of ``init`` with integer ``seed`` (unseeded-by-design initializers are returned as is)."""
    config = init.get_config()
    if "seed" not in config:
        return init
    return type(init).from_config({**config, "seed": seed})


# -- training --------------------------------------------------------------------------------------


def build_mlp(n_features: int, n_classes: int, init: Any, depth: int, width: int, activation: str,
              seed: int) -> Any:
    """A plain MLP: ``depth`` Dense(``width``, activation) layers and a softmax output, every kernel
    drawn by ``init`` (each layer with its own seed), zero biases."""
    inputs = keras.Input((n_features,), name="x")
    h = inputs
    for i in range(depth):
        h = keras.layers.Dense(width, activation=activation, kernel_initializer=_seeded(init, seed * 1000 + i),
                               name=f"hidden_{i + 1}")(h)
    outputs = keras.layers.Dense(n_classes, activation="softmax", kernel_initializer=_seeded(init, seed * 1000 + depth),
                                 name="output")(h)
    return keras.Model(inputs, outputs, name="mlp")


def activation_stds(model: Any, x: np.ndarray) -> list[float]:
    """Std of each hidden layer's output on ``x`` (one multi-output probe model, one forward pass)."""
    hidden = [layer for layer in model.layers if layer.name.startswith("hidden_")]
    probe = keras.Model(model.input, [layer.output for layer in hidden])
    outs = probe(x, training=False)
    return [float(np.std(keras.ops.convert_to_numpy(o))) for o in outs]


def symmetric_layers(model: Any, rtol: float = 1e-6) -> list[str]:
    """Hidden layers whose units are all identical (same incoming weights and bias)."""
    names = []
    for layer in model.layers:
        if not layer.name.startswith("hidden_"):
            continue
        kernel, bias = (np.asarray(w) for w in layer.get_weights())
        units = np.vstack([kernel, bias[None, :]])  # one column per unit
        spread = np.max(np.abs(units - units[:, :1]))
        if spread <= rtol * max(1.0, float(np.max(np.abs(units)))):
            names.append(layer.name)
    return names


def _status(r: RunResult, chance: float) -> str:
    finite = all(math.isfinite(v) for v in r.loss + r.val_loss) and math.isfinite(r.test_loss)
    if not finite:
        return "diverged"
    if r.symmetric_layers:
        return "symmetric"
    if r.test_accuracy < chance + 0.1 * (1.0 - chance):
        return "stalled"
    return "ok"


def _optimizer(name: str, learning_rate: float) -> Any:
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    return keras.optimizers.Adam(learning_rate)


class _StopOnNaN(keras.callbacks.Callback):
    """Stop when the batch loss is NaN/inf (Keras's TerminateOnNaN prints to stdout)."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True


def train_one(ds: Dataset, init: Any, label: str, seed: int, *, depth: int, width: int, activation: str,
              epochs: int, batch_size: int, optimizer: str, learning_rate: float, target: float,
              on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> tuple[RunResult, Any]:
    """Train one MLP; return its :class:`RunResult` and the trained model."""
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    model = build_mlp(ds.n_features, ds.n_classes, init, depth, width, activation, seed)
    stds = activation_stds(model, ds.x_train[:PROBE_SIZE])
    model.compile(_optimizer(optimizer, learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks: list[Any] = [_StopOnNaN()]
    if on_epoch is not None:
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: on_epoch(e, logs or {})))
    hist = model.fit(ds.x_train, ds.y_train, validation_data=(ds.x_val, ds.y_val), epochs=epochs,
                     batch_size=batch_size, shuffle=True, verbose=0, callbacks=callbacks).history
    test_loss, test_acc = model.evaluate(ds.x_test, ds.y_test, batch_size=512, verbose=0)
    val_acc = [float(v) for v in hist.get("val_accuracy", [])]
    reached = next((i + 1 for i, v in enumerate(val_acc) if v >= target), None)
    result = RunResult(init=label, seed=seed, status="ok", test_accuracy=float(test_acc), test_loss=float(test_loss),
                       epochs_to_target=reached, act_std=stds, symmetric_layers=symmetric_layers(model),
                       loss=[float(v) for v in hist.get("loss", [])],
                       val_loss=[float(v) for v in hist.get("val_loss", [])],
                       accuracy=[float(v) for v in hist.get("accuracy", [])], val_accuracy=val_acc,
                       seconds=time.perf_counter() - start)
    result.status = _status(result, ds.chance)
    return result, model


def run_compare(
    inits: Any = DEFAULT_INITS,
    dataset: str | os.PathLike[str] | Dataset = "digits",
    *,
    depth: int = 5,
    width: int = 100,
    activation: str = "relu",
    epochs: int = 20,
    seeds: int | Sequence[int] = 3,
    target: float = 0.9,
    batch_size: int = 64,
    optimizer: str = "sgd",
    learning_rate: float = 0.01,
    dataset_seed: int = 0,
    out: str | os.PathLike[str] | None = None,
    plots: bool = True,
    progress: bool | Any = False,
) -> CompareResults:
    """Train the same MLP under each initializer and seed; return :class:`CompareResults`.

    ``inits``: names (``"zeros,he_normal"`` or a list), initializer instances, or ``{label: init}``.
    ``dataset``: a name or file accepted by :func:`kerasinit.datasets.load`, or a loaded ``Dataset``.
    ``seeds``: how many (0, 1, ...) or which seeds. ``target``: validation accuracy whose first
    epoch is reported. The optimizer is SGD with momentum 0.9 (``"sgd"``) or Adam. ``out``: also
    write JSON/CSV (and, with ``plots``, figures) there. ``progress``: show a rich progress bar per
    run (``True``, or a ``rich.console.Console`` to draw on).
    """
    resolved = _resolve_inits(inits)
    depth, width, epochs = _check_int("depth", depth, 1), _check_int("width", width, 1), _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    if activation not in ACTIVATIONS:
        raise ValueError(f"argument `activation` must be one of {', '.join(ACTIVATIONS)}; received {activation!r}.")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"argument `optimizer` must be one of {', '.join(OPTIMIZERS)}; received {optimizer!r}.")
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0.0 < target <= 1.0:
        raise ValueError(f"argument `target` must be a validation accuracy in (0, 1]; received {target!r}.")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, int | float) or not learning_rate > 0:
        raise ValueError(f"argument `learning_rate` must be a positive float; received {learning_rate!r}.")
    if isinstance(seeds, int | np.integer) and not isinstance(seeds, bool):
        seed_list = list(range(_check_int("seeds", seeds, 1)))
    elif isinstance(seeds, Sequence) and seeds and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                       for s in seeds):
        seed_list = [int(s) for s in seeds]
    else:
        raise ValueError(f"argument `seeds` must be a positive int or a list of non-negative ints; received {seeds!r}.")
    ds = dataset if isinstance(dataset, Dataset) else load(dataset, seed=dataset_seed)
    config = {"inits": list(resolved), "dataset": ds.name, "depth": depth, "width": width, "activation": activation,
              "epochs": epochs, "seeds": seed_list, "target": float(target), "batch_size": batch_size,
              "optimizer": optimizer, "learning_rate": float(learning_rate), "dataset_seed": dataset_seed}
    runs: list[RunResult] = []
    models: dict[str, Any] = {}
    with _Progress(progress, total=len(resolved) * len(seed_list), epochs=epochs) as bar:
        for label, init in resolved.items():
            for seed in seed_list:
                tick = bar.start(f"{label} seed {seed}")
                result, model = train_one(ds, init, label, seed, depth=depth, width=width, activation=activation,
                                          epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                                          learning_rate=learning_rate, target=target, on_epoch=tick)
                bar.finish(result)
                runs.append(result)
                if seed == seed_list[0] and ds.is_2d:
                    models[label] = model
    results = CompareResults(config=config, runs=runs, dataset=ds, models=models)
    if out is not None:
        results.save(out, plots=plots)
    return results


class _Progress:
    """One rich progress bar per run (epochs, loss, ETA) and an overall bar; a no-op when disabled."""

    def __init__(self, progress: bool | Any, total: int, epochs: int) -> None:
        self.progress = progress
        self.enabled = bool(progress)
        self.total, self.epochs = total, epochs
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        self._bar = open_bar(self.progress, desc_width=22, bar_width=12, info_width=22, count="m_of_n")
        if self.enabled:
            self._all = self._bar.add_task("all runs", total=self.total, info="")
        return self

    def start(self, name: str) -> Callable[[int, dict[str, float]], None] | None:
        if not self.enabled:
            return None
        self._task = self._bar.add_task(name, total=self.epochs, info="")

        def tick(epoch: int, logs: dict[str, float]) -> None:
            info = f"loss {logs.get('loss', math.nan):.3f} val {logs.get('val_accuracy', math.nan):.3f}"
            self._bar.update(self._task, completed=epoch + 1, info=info)

        return tick

    def finish(self, result: RunResult) -> None:
        if self.enabled:
            self._bar.update(self._task, completed=self.epochs,
                             info=f"test {result.test_accuracy:.3f} {result.status}")
            self._bar.advance(self._all)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._bar.__exit__(*exc)


__all__ = ["DEFAULT_INITS", "CompareResults", "RunResult", "activation_stds", "build_mlp", "run_compare",
           "symmetric_layers", "train_one"]
