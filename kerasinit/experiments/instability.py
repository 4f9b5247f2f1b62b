"""Instability analysis: linear mode connectivity (Frankle, Dziugaite, Roy & Carbin, ICML 2020).

From θ_K (the weights after K steps of one training, optionally masked), train two copies with
different data orders (``seeds``) to θ_A and θ_B; evaluate the test error of
θ(α) = (1 − α)·θ_A + α·θ_B at ``points`` values of α in [0, 1] (BatchNormalization statistics
recomputed at each point on the training data); the *error barrier* is
max_α err(θ(α)) − (err(θ_A) + err(θ_B)) / 2. A network is "stable" when the barrier is ≈ 0.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np

from kerasinit._validation import check_int
from kerasinit.experiments.datasets import load
from kerasinit.experiments.executor import Outcome, Shared, Task, cached, forget, resolve_executor
from kerasinit.experiments.lottery import parse_rewind
from kerasinit.experiments.models import assign_weights, instantiate, model_weights
from kerasinit.experiments.training import evaluate_arrays, steps_per_epoch, train


@dataclass
class InstabilityResult:
    """Test error along the straight line between two trainings from the same θ_K."""

    alphas: list[float]
    errors: list[float]
    barrier: float
    rewind: str
    seeds: list[int]
    round: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def summary_line(self) -> str:
        where = f"round {self.round} ticket" if self.round is not None else "dense"
        return (f"instability ({where}, rewind {self.rewind}, seeds {self.seeds}): error barrier {self.barrier:.4f} "
                f"(endpoints {self.errors[0]:.4f}, {self.errors[-1]:.4f}; max {max(self.errors):.4f})")

    def plot(self, out: Any = None) -> Any:
        from kerasinit.plots.instability import plot_instability

        return plot_instability(self, out=out)


def _recompute_bn(model: keras.Model, x: np.ndarray, batch_size: int) -> None:
    """Reset every BatchNormalization's moving statistics and re-estimate them as the plain average
    over the training batches (momentum 1 − 1/i at the i-th batch), in eager training-mode passes."""
    bns = [layer for layer in model._flatten_layers(include_self=False) if isinstance(layer, keras.layers.BatchNormalization)]
    if not bns:
        return
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.moving_mean.assign(np.zeros(bn.moving_mean.shape, "float32"))
        bn.moving_variance.assign(np.ones(bn.moving_variance.shape, "float32"))
    for i, start in enumerate(range(0, len(x), batch_size)):
        for bn in bns:
            bn.momentum = 1.0 - 1.0 / (i + 1) if i else 0.0
        model(x[start:start + batch_size], training=True)
    for bn, m in zip(bns, saved, strict=True):
        bn.momentum = m


def instability(
    model: Any,
    dataset: Any,
    rewind: str = "step:0",
    mask: dict[str, np.ndarray] | None = None,
    points: int = 11,
    seeds: tuple[int, int] = (0, 1),
    *,
    init_seed: int = 0,
    epochs: int = 5,
    batch_size: int = 64,
    optimizer: str = "adam",
    learning_rate: float = 1.2e-3,
    loss: Any = None,
    layers: Any = None,
    model_options: dict[str, Any] | None = None,
    theta_k: dict[str, np.ndarray] | None = None,
    round_: int | None = None,
    executor: Any = None,
) -> InstabilityResult:
    """Error barrier between two trainings from one θ_K that differ only in data order.

    ``model``/``dataset`` as for :func:`kerasinit.run_lottery`; θ0 is drawn with ``init_seed`` and
    trained ``K`` steps (``rewind="step:K"`` or ``"epoch:K"``) with ``seeds[0]``'s order unless
    ``theta_k`` is given; ``mask`` (``{"layer/kernel": uint8}``, e.g. a ticket's) is applied to both
    copies. ``seeds``: the two data orders (equal seeds give barrier 0 exactly). ``executor``: where the
    two trainings run (``None`` one after the other here, ``"ray"`` side by side as Ray tasks,
    :mod:`kerasinit.experiments.executor`); θ_K and the interpolation stay in this process.
    """
    from kerasinit.pruning import Pruner

    points = check_int("points", points, 2)
    if len(seeds) != 2:
        raise ValueError(f"argument `seeds` must be two seeds (one data order per copy); received {seeds!r}.")
    unit, k = parse_rewind("step:0" if rewind == "init" else rewind)
    ds = load(dataset)
    spe = steps_per_epoch(ds, batch_size)
    start = k * spe if unit == "epoch" else k
    net = instantiate(model, ds.input_shape, ds.n_classes, init_seed, model_options)
    settings = {"epochs": epochs, "batch_size": batch_size, "optimizer": optimizer, "learning_rate": learning_rate,
                "loss": loss}
    if theta_k is None:
        theta_k = model_weights(net)
        if start:
            theta_k = train(net, ds, seed=seeds[0], snapshot_at=start, **settings).snapshot
    pruner = Pruner(net, layers=layers) if mask is not None else None
    token = uuid.uuid4().hex
    cached((token,), lambda: (net, pruner))  # in this process the two trainings reuse this model
    shared = {"model": model, "ds": Shared(ds), "init_seed": init_seed, "model_options": model_options,
              "theta_k": Shared(theta_k), "mask": None if mask is None else Shared(mask), "layers": layers,
              "start_step": start, "token": token, **settings}
    tasks = [Task(f"instability seed {int(s)}", "kerasinit.experiments.instability:instability_task",
                  {**shared, "seed": int(s)}, key=i, epochs=math.ceil((epochs * spe - start) / spe), order=(i,))
             for i, s in enumerate(seeds)]
    ends: dict[int, Any] = {}
    failures: list[Outcome] = []

    def finished(outcome: Outcome) -> None:
        if outcome.ok:
            ends[outcome.task.key] = outcome.value
        else:
            failures.append(outcome)

    try:
        resolve_executor(executor).run(tasks, finished)
    finally:
        forget(token)
    if failures:
        raise RuntimeError("instability: the training(s) " + "; ".join(f"{f.task.name} failed ({f.error})"
                                                                      for f in failures) + " (no barrier without both).")
    ends = [ends[0], ends[1]]
    alphas = [float(a) for a in np.linspace(0.0, 1.0, points)]
    errors = []
    for a in alphas:
        assign_weights(net, [(1 - a) * ends[0][key] + a * ends[1][key] for key in ends[0]])
        _recompute_bn(net, ds.x_train, batch_size)
        errors.append(1.0 - evaluate_arrays(net, ds.x_test, ds.y_test)["accuracy"])
    barrier = max(errors) - (errors[0] + errors[-1]) / 2
    return InstabilityResult(alphas=alphas, errors=errors, barrier=float(barrier if math.isfinite(barrier) else math.nan),
                             rewind=rewind, seeds=[int(s) for s in seeds], round=round_)


def instability_task(model: Any, ds: Any, seed: int, *, init_seed: int, model_options: dict[str, Any] | None,
                     theta_k: dict[str, np.ndarray], mask: dict[str, np.ndarray] | None, layers: Any, start_step: int,
                     token: str, callbacks: Any = (), **settings: Any) -> dict[str, np.ndarray]:
    """One of :func:`instability`'s two trainings as an executor task: from θ_K (masked) with data order
    ``seed``; the trained weights."""
    from kerasinit.pruning import Pruner, PruningCallback

    def build() -> tuple[keras.Model, Any]:
        net = instantiate(model, ds.input_shape, ds.n_classes, init_seed, model_options)
        return net, Pruner(net, layers=layers) if mask is not None else None

    net, pruner = cached((token,), build)
    assign_weights(net, theta_k)
    if pruner is not None:
        pruner.set_masks(dict(zip(pruner.masks, mask.values(), strict=True)))
    train(net, ds, seed=int(seed), start_step=start_step,
          callbacks=[*([] if pruner is None else [PruningCallback(pruner=pruner)]), *callbacks], **settings)
    return model_weights(net)


def instability_of_tickets(results: Any, model: Any, dataset: Any, rounds: list[int], *,
                           model_options: dict[str, Any] | None = None, progress: Any = False,
                           executor: Any = None) -> list[InstabilityResult]:
    """:func:`instability` of the tickets of finished ``rounds`` of a saved lottery run (its first seed)."""
    import os

    from kerasinit.experiments.results import load_arrays

    if results.out is None:
        raise ValueError("instability of tickets needs a lottery run saved with `out`.")
    c = results.config
    seed = results.seeds[0]
    folder = os.path.join(results.out, f"seed_{seed}")
    theta = load_arrays(os.path.join(folder, "theta_rewind.npz" if c["rewind_step"] else "theta0.npz"))
    out = []
    for r in rounds:
        if r not in {row["round"] for row in results.rows}:
            raise ValueError(f"argument `--instability`: round {r} is not in the run (rounds 0..{c['rounds']}).")
        mask = load_arrays(os.path.join(folder, f"masks_round_{r}.npz")) if r else None
        out.append(instability(model, dataset, rewind=f"step:{c['rewind_step']}", mask=mask, init_seed=seed,
                               seeds=(seed, seed + 1), epochs=c["epochs"], batch_size=c["batch_size"],
                               optimizer=c["optimizer"], learning_rate=c["learning_rate"], model_options=model_options,
                               theta_k=theta, round_=r, executor=executor))
    return out


__all__ = ["InstabilityResult", "instability", "instability_of_tickets", "instability_task"]
