"""``SparseTraining``: sparse from the first step, moving connections (RigL, SET) or not (static).

Every selected weight gets a random mask at its density (ERK, uniform or per layer,
:mod:`kerasinit.pruning.distributions`), installed by a :class:`~kerasinit.pruning.pruner.Pruner`
as kerasinit's masks (boolean variables applied by the weight constraint after every optimizer
step: exact zeros, saved with the model). Every ``update_every`` steps t (0 < t ≤ ``end_step``)
each weight with ``a`` active entries drops ``k = round(f(t) · a)`` of them, the smallest |w|,
and grows ``k`` among the entries inactive after the drop, so its sparsity never changes:

* ``"rigl"`` (Evci, Gale, Menick, Castro & Elsen, "Rigging the lottery: making all tickets
  winners", ICML 2020): the largest |∂L/∂w| of the dense gradient, the gradient of the loss at the
  sparse weights w ⊙ m with respect to every entry of the kernel, on one batch;
* ``"set"`` (Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
  connectivity inspired by network science", Nature Communications 2018): uniformly at random;
* ``"static"``: never (the random sparse baseline).

``f(t)``: ``"cosine"`` ``f0/2 · (1 + cos(π t / end_step))`` (the paper's), ``"linear"``
``f0 · (1 − t / end_step)`` or ``"constant"`` ``f0``. As in the authors' code
(``rigl_tf2/mask_updaters.py``) the grow candidates are all entries inactive *after* the drop, the
just-dropped included: an entry dropped and grown in the same update keeps its value and its
optimizer state (it is counted in ``regrown``). Every other grown entry starts at exactly 0 and its
optimizer slots (Adam's m and v, momentum) are zeroed. Ties: the lower flat index is kept first
(dropped last, grown first). The authors' code truncates k (``int``); here k is rounded.

RigL's batch in ``fit``: Keras hands callbacks no batch, so ``data`` gives it: an ``(x, y)`` pair
(every update uses it whole, or ``batch_size`` samples drawn from it) or a callable ``step -> (x, y)``.
In a custom loop, ``update(step, x, y)`` takes the current batch, as the paper does.

Resuming: nothing lives in the callback but its arguments. The step is the optimizer's
``iterations``; every random draw is a function of ``(seed, step, weight)``; the masks, weights and
optimizer slots are in the saved model. ``kerasinit.pruning.load_model`` + the same arguments +
``fit(..., initial_epoch=e)`` therefore continue an interrupted run exactly (the default
``end_step``, 75% of ``steps × epochs`` of the fit, counts from step 0 and is the same for the
resumed fit; ``get_config`` gives the resolved arguments for a sidecar JSON). Installed masks that
already keep the target count of every weight (a loaded model) are kept, not redrawn.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import keras
import numpy as np

from kerasinit import backend
from kerasinit._arrays import to_numpy
from kerasinit._validation import check_choice, check_int, check_real
from kerasinit.backend.functional import ModelFunction
from kerasinit.backend.select import keep_where
from kerasinit.pruning.distributions import _top, layer_sparsities
from kerasinit.pruning.masks import keep_count, random_mask
from kerasinit.pruning.optimizer_state import bind, unbind
from kerasinit.pruning.pruner import Pruner
from kerasinit.pruning.scores.objectives import linear_outputs, loss_objective
from kerasinit.pruning.selection import Selector, select

OWNER = "SparseTraining"
METHODS = ("rigl", "set", "static")
DROP_SCHEDULES = ("cosine", "constant", "linear")
DISTRIBUTIONS = ("erk", "uniform")
#: default ``end_step``: this fraction of the fit's ``steps × epochs`` (Evci et al. stop at 75%)
END_FRACTION = 0.75
_INIT, _GROW, _BATCH = 0, 1, 2  # the streams of random draws: rng([seed, stream, ...])


def drop_fraction_at(step: int, drop_fraction: float, end_step: int, schedule: str = "cosine") -> float:
    """``f(t)``: cosine ``f0/2 (1 + cos(π t/T))``, linear ``f0 (1 − t/T)`` or constant ``f0``, for t ≤ T."""
    if schedule == "constant":
        return drop_fraction
    t = min(max(step, 0), end_step) / end_step
    if schedule == "linear":
        return drop_fraction * (1.0 - t)
    return drop_fraction / 2.0 * (1.0 + math.cos(math.pi * t))


def drop_and_grow(mask: np.ndarray, magnitude: np.ndarray, grow_score: np.ndarray | None, k: int,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop the ``k`` active entries of smallest ``magnitude``, grow the ``k`` inactive ones of largest
    ``grow_score`` (NaN counts as lowest); return the new mask and the dropped and grown entries (bool)."""
    flat = mask.ravel().astype(bool)
    active = int(flat.sum())
    keep = _top(np.where(flat, magnitude.ravel().astype("float64"), -np.inf), active - k) & flat
    if grow_score is None or k == 0:
        grown = np.zeros_like(flat)
    else:  # candidates: every entry inactive after the drop (the just-dropped included, as the authors' code)
        score = np.nan_to_num(grow_score.ravel().astype("float64"), nan=-1.0, posinf=np.finfo("float64").max)
        grown = _top(np.where(keep, -np.inf, score), k)
    new = keep | grown
    assert int(new.sum()) == active, "a drop-and-grow update must keep the count"  # by construction
    shape = mask.shape
    return new.reshape(shape), (flat & ~keep).reshape(shape), grown.reshape(shape)


def optimizer_slots(optimizer: Any, variable: Any) -> list[Any]:
    """The optimizer's variables made for ``variable`` (``add_variable_from_reference``: Adam's m, v, momentum)."""
    if optimizer is None:
        return []
    prefix = getattr(variable, "path", variable.name).replace("/", "_") + "_"
    shape = tuple(variable.shape)
    return [v for v in optimizer.variables if v.name.startswith(prefix) and tuple(v.shape) == shape]


class SparseTraining(keras.callbacks.Callback):
    """Dynamic (RigL, SET) or static sparse training of a Keras 3 model, in ``fit`` or a custom loop.

    Args:
        method: ``"rigl"``, ``"set"`` or ``"static"``.
        sparsity: fraction of the selected weights kept at zero, in [0, 1).
        distribution: ``"erk"``, ``"uniform"`` or ``{layer or "layer/attr": sparsity}``.
        update_every: steps between mask updates (updates at t = update_every, 2·update_every, … ≤ end_step).
        drop_fraction: f0, the fraction of each weight's active entries moved at t = 0, in (0, 1].
        drop_schedule: ``"cosine"`` (default), ``"linear"`` or ``"constant"``.
        end_step: the last step that may update; default 75% of the first ``fit``'s steps × epochs.
        seed: the seed of every random draw (None: one drawn now, kept in ``seed``).
        layers: which layers (as for :class:`Pruner`); default every prunable one.
        data: RigL's gradient batch in ``fit``: ``(x, y)`` or a callable ``step -> (x, y)``.
        batch_size: with an ``(x, y)`` ``data``: samples drawn from it per update (None: all of it).
        loss: RigL's loss (default the compiled model's).

    Attributes:
        pruner: the :class:`Pruner` holding the masks (after ``build``/``fit``).
        history: one dict per update per weight: ``step``, ``weight``, ``drop_fraction``, ``active``,
            ``dropped``, ``grown``, ``regrown`` (grown entries dropped in the same update: kept as they
            were), ``redropped`` (entries grown at this weight's previous update dropped now; None
            when that update is not known, e.g. after a resume). ``history_frame()``: a DataFrame.
    """

    def __init__(self, method: str = "rigl", sparsity: float = 0.9, distribution: str | Mapping[str, float] = "erk",
                 update_every: int = 100, drop_fraction: float = 0.3, drop_schedule: str = "cosine",
                 end_step: int | None = None, seed: int | None = None,
                 layers: Iterable[Selector] | Selector | None = None, data: Any = None,
                 batch_size: int | None = None, loss: Any = None) -> None:
        super().__init__()
        self.method = check_choice("method", method, METHODS, owner=OWNER)
        self.sparsity = check_real("sparsity", sparsity, owner=OWNER)
        if not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"{OWNER}: argument `sparsity` must be in [0, 1); received {sparsity!r}.")
        if not isinstance(distribution, Mapping) and distribution not in DISTRIBUTIONS:
            raise ValueError(f"{OWNER}: argument `distribution` must be one of {list(DISTRIBUTIONS)} or a "
                             f"{{layer name: sparsity}} dict; received {distribution!r}.")
        self.distribution = dict(distribution) if isinstance(distribution, Mapping) else distribution
        self.update_every = check_int("update_every", update_every, 1, owner=OWNER)
        self.drop_fraction = check_real("drop_fraction", drop_fraction, owner=OWNER)
        if not 0.0 < self.drop_fraction <= 1.0:
            raise ValueError(f"{OWNER}: argument `drop_fraction` must be in (0, 1]; received {drop_fraction!r}.")
        self.drop_schedule = check_choice("drop_schedule", drop_schedule, DROP_SCHEDULES, owner=OWNER)
        self.end_step = None if end_step is None else check_int("end_step", end_step, 1, owner=OWNER)
        if seed is not None:
            seed = check_int("seed", seed, 0, owner=OWNER)
        self.seed = int(np.random.SeedSequence().entropy % 2**31) if seed is None else seed
        if data is not None and not callable(data) and not (isinstance(data, tuple | list) and len(data) == 2):
            raise TypeError(f"{OWNER}: argument `data` must be None, an (x, y) pair or a callable step -> (x, y); "
                            f"received {type(data).__name__}.")
        self.data = data
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size, 1, owner=OWNER)
        if self.batch_size is not None and (data is None or callable(data)):
            raise ValueError(f"{OWNER}: argument `batch_size` draws samples from an (x, y) `data`; received data={data!r}.")
        self.layers, self.loss = layers, loss
        self.pruner: Pruner | None = None
        self.history: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}
        self._last_grown: dict[str, np.ndarray] = {}
        self._grad: Any = None
        self._step = 0
        self._span = 1
        self._jax = False

    # ------------------------------------------------------------------ setup
    def get_config(self) -> dict[str, Any]:
        """The arguments (``seed`` and ``end_step`` as resolved; not ``data``, ``layers``, ``loss``): JSON-able."""
        return {"method": self.method, "sparsity": self.sparsity, "distribution": self.distribution,
                "update_every": self.update_every, "drop_fraction": self.drop_fraction,
                "drop_schedule": self.drop_schedule, "end_step": self.end_step, "seed": self.seed,
                "batch_size": self.batch_size}

    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *key])

    def build(self, model: keras.layers.Layer) -> SparseTraining:
        """Install the masks on ``model``: random at each weight's density, unless it holds masks at those counts."""
        if self.pruner is not None and self.pruner.model is model:
            return self
        weights = select(model, self.layers)
        sparsities = layer_sparsities(weights, self.sparsity, self.distribution, OWNER)
        assert sparsities is not None  # never "global"
        self.pruner = Pruner(model, None, layers=self.layers)
        self.pruner.owner = OWNER
        self.counts = {w.name: keep_count(self.pruner.masks[w.name].size, sparsities[w.name]) for w in weights}
        current = self.pruner.get_masks()
        kept = {name: int(m.sum()) for name, m in current.items()}
        if kept == self.counts:
            self.pruner.apply_masks()  # a resumed run (or masks chosen before): keep them
        else:
            replaced = [n for n, m in current.items() if not m.all() and kept[n] != self.counts[n]]
            if replaced:
                warnings.warn(f"{OWNER}: the masks installed on {replaced} keep other counts than {self.sparsity} with "
                              f"distribution {self.distribution!r} gives: replaced by random masks.", UserWarning, stacklevel=2)
            self.pruner.set_masks({w.name: random_mask(current[w.name].shape, sparsities[w.name], self._rng(_INIT, i))
                                   for i, w in enumerate(weights)})
        self._last_grown, self._grad = {}, None
        return self

    @property
    def masks(self) -> dict[str, np.ndarray]:
        """Every mask as a uint8 array, keyed ``"layer/attr"``."""
        return self._built().get_masks()

    def _built(self) -> Pruner:
        if self.pruner is None:
            raise ValueError(f"{OWNER}: no model yet; call build(model) first (fit does it).")
        return self.pruner

    def apply(self) -> None:
        """Zero every masked weight now (``fit`` and ``optimizer.apply`` do it after each step)."""
        self._built().apply_masks()

    def history_frame(self) -> Any:
        """``history`` as a pandas DataFrame (one row per update per weight)."""
        import pandas as pd

        return pd.DataFrame(self.history, columns=["step", "weight", "drop_fraction", "active", "dropped", "grown",
                                                   "regrown", "redropped"])

    # ------------------------------------------------------------------ updates
    def is_update_step(self, step: int) -> bool:
        """Whether the masks move before optimizer step ``step`` (0 < step ≤ end_step, a multiple of update_every)."""
        if self.method == "static" or step <= 0 or step % self.update_every:
            return False
        if self.end_step is None:
            raise ValueError(f"{OWNER}: argument `end_step` is needed outside fit (fit defaults it to 75% of its steps).")
        return step <= self.end_step

    def update(self, step: int | None = None, x: Any = None, y: Any = None) -> bool:
        """Custom loops: call before optimizer step ``step`` (default ``optimizer.iterations``) with its batch.

        Returns whether the masks moved. RigL differentiates the loss on ``(x, y)``, else on ``data``.
        """
        pruner = self._built()
        if step is None:
            optimizer = getattr(pruner.model, "optimizer", None)
            if optimizer is None:
                raise ValueError(f"{OWNER}.update: pass `step` (the model has no optimizer to read iterations from).")
            step = int(to_numpy(optimizer.iterations))
        if not self.is_update_step(int(step)):
            return False
        self._update(int(step), None if x is None else (x, y))
        return True

    def _batch(self, step: int) -> tuple[Any, Any]:
        if self.data is None:
            raise ValueError(f"{OWNER}: method 'rigl' needs a batch for its gradient: pass `data` ((x, y) or a "
                             "callable step -> (x, y)) to SparseTraining, or x and y to update().")
        if callable(self.data):
            return tuple(self.data(step))  # type: ignore[return-value]
        x, y = self.data
        if self.batch_size is None:
            return x, y
        n = len(keras.tree.flatten(x)[0])
        index = np.sort(self._rng(_BATCH, step).choice(n, size=min(self.batch_size, n), replace=False))
        return keras.tree.map_structure(lambda a: np.asarray(a)[index], (x, y))

    def _gradients(self, batch: tuple[Any, Any], sparse: list[Any]) -> list[np.ndarray]:
        """|∂L/∂w| of the dense gradient at the sparse weights, on ``batch``."""
        pruner = self._built()
        if self._grad is None:
            objective, logits = loss_objective(pruner.model, self.loss, owner=f"{OWNER}(method='rigl')")
            fn = ModelFunction(pruner.model, [w.variable for w in pruner.weights], objective)
            self._grad = (fn, backend.gradient(fn, purpose=f"{OWNER}(method='rigl')"), logits)
        fn, grad, logits = self._grad
        x, y = keras.tree.map_structure(keras.ops.convert_to_tensor, batch)
        with linear_outputs(pruner.model) if logits else contextlib.nullcontext():
            _, g = grad(sparse, fn.values(), x, y)
        return [np.abs(to_numpy(a)) for a in g]

    def _update(self, step: int, batch: tuple[Any, Any] | None) -> None:
        pruner = self._built()
        if self._jax:  # fit's state holds the present; Keras re-reads the variables after a sync
            pruner.model.jax_state_sync()
        fraction = drop_fraction_at(step, self.drop_fraction, self.end_step or 1, self.drop_schedule)
        weights = pruner.weights
        old = {n: m.astype(bool) for n, m in pruner.get_masks().items()}
        sparse = [keep_where(pruner.masks[w.name].variable, w.variable) for w in weights]
        grads = self._gradients(batch or self._batch(step), sparse) if self.method == "rigl" else [None] * len(weights)
        new: dict[str, np.ndarray] = {}
        for i, (w, s, g) in enumerate(zip(weights, sparse, grads, strict=True)):
            mask = old[w.name]
            active = int(mask.sum())
            k = min(active, int(round(fraction * active)))
            if g is None:
                g = self._rng(_GROW, step, i).random(mask.shape)
            new[w.name], dropped, grown = drop_and_grow(mask, np.abs(to_numpy(s)), g, k)
            last = self._last_grown.get(w.name)
            self.history.append({"step": step, "weight": w.name, "drop_fraction": fraction, "active": active,
                                 "dropped": int(dropped.sum()), "grown": int(grown.sum()),
                                 "regrown": int((grown & dropped).sum()),
                                 "redropped": None if last is None else int((last & dropped).sum())})
            self._last_grown[w.name] = grown & ~mask
        optimizer = getattr(pruner.model, "optimizer", None)
        for w, s in zip(weights, sparse, strict=True):
            fresh = new[w.name] & ~old[w.name]
            if fresh.any():  # grown entries start at exactly 0, with fresh optimizer state
                w.variable.assign(keep_where(old[w.name] & new[w.name], s))
                for slot in optimizer_slots(optimizer, w.variable):
                    slot.assign(keep_where(~fresh, slot))
        pruner.set_masks({n: m.view(np.uint8) for n, m in new.items() if not np.array_equal(m, old[n])})

    # ------------------------------------------------------------------ fit
    def on_train_begin(self, logs: Any = None) -> None:
        model = self.model
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None:
            raise ValueError(f"{OWNER}: the model has no optimizer; compile it before fit().")
        self._step = int(to_numpy(optimizer.iterations))
        params = self.params or {}
        steps, epochs = params.get("steps"), params.get("epochs")
        if self.end_step is None and self.method != "static":
            if not steps or not epochs:
                raise ValueError(f"{OWNER}: this fit does not say its number of steps: pass `end_step`.")
            self.end_step = max(1, round(END_FRACTION * steps * epochs))
        if self.method == "rigl" and self.data is None:
            raise ValueError(f"{OWNER}: method 'rigl' in fit needs argument `data` ((x, y) or a callable "
                             "step -> (x, y)): Keras does not hand callbacks the batch.")
        self.build(model)
        self._jax = keras.backend.backend() == "jax"
        if self._jax:  # the masks join the compiled step's state: a new mask needs no re-trace
            bind(optimizer, self.pruner.mask_variables)
            if keras.distribution.distribution() is not None:
                model.make_train_function(force=True)
        self._span = int(getattr(model, "steps_per_execution", 1) or 1)
        if self.method != "static" and steps and epochs:
            stop = self._step + steps * epochs  # at most (a resumed fit runs fewer epochs): never a false alarm
            if not any(self.is_update_step(s) for s in range(self._step, min(stop, self.end_step + 1))):
                warnings.warn(f"{OWNER}: method {self.method!r} never updates the masks in this fit (steps {self._step} "
                              f"onwards; updates every {self.update_every} up to end_step={self.end_step}): it trains "
                              "as static sparse training.", UserWarning, stacklevel=2)

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        due = [s for s in range(self._step, self._step + self._span) if self.is_update_step(s)]
        if due:
            self._update(due[-1], None)
        self._step += self._span

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        if self._jax and self.pruner is not None:
            bind(self.pruner.model.optimizer, self.pruner.mask_variables)

    def _unbind(self, logs: Any = None) -> None:
        if self._jax and self.pruner is not None:  # Keras saves optimizer variables by position: not the masks
            unbind(self.pruner.model.optimizer, self.pruner.mask_variables)

    on_test_begin = _unbind

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self._unbind()

    def on_train_end(self, logs: Any = None) -> None:
        self._unbind()
