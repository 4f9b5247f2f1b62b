"""The score registry and the base class of a pruning-at-initialization score.

A score gives one array per prunable weight, keyed ``"layer/attr"`` as the masks are; the
weights with the largest scores are kept (``keep_largest = False``: the largest are removed, as
in GraSP). Every score is a :class:`Score` subclass registered under a name with
:func:`register_score`; :func:`~kerasinit.pruning.prune_at_init`,
:func:`~kerasinit.experiments.sparsity.run_prune_at_init`, the ``kerasinit prune-at-init --methods``
choices and the docs list what :data:`SCORES` holds. Writing one (a file of its own)::

    import numpy as np
    from kerasinit.pruning import Score, register_score

    @register_score("l1_of_column", needs_data=False)
    class ColumnL1(Score):
        \"\"\"|w| summed over each kernel's output axis, broadcast back (whole input rows survive).\"\"\"

        def compute(self, masked):
            return {name: np.broadcast_to(np.abs(w).sum(-1, keepdims=True), w.shape)
                    for name, w in zip(self.names, masked)}

    kerasinit.pruning.prune_at_init(model, 0.9, "l1_of_column")

Scores that need gradients build them through :mod:`kerasinit.backend` (see
:mod:`kerasinit.pruning.scores.snip`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit.pruning.selection import PrunableWeight

Batch = tuple[Any, Any]
S = TypeVar("S", bound=type)


@dataclass
class Scores:
    """The scores of one method.

    Attributes:
        method: the registered name of the score.
        scores: ``{"layer/attr": array}``, the paper's score (GraSP: ``−w ⊙ Hg``).
        keep_largest: True if the largest scores are kept; False for GraSP (largest removed).
        hessian: GraSP only: ``"double-backprop"`` or ``"finite-difference"``.
        batches: how many data batches were averaged (0 for the data-free methods).
        notes: what deviated from the default computation (GraSP's fallback to finite differences).
    """

    method: str
    scores: dict[str, np.ndarray]
    keep_largest: bool = True
    hessian: str | None = None
    batches: int = 0
    notes: list[str] = field(default_factory=list)

    def importance(self) -> dict[str, np.ndarray]:
        """Scores oriented so that larger means keep (GraSP negated), NaN as −inf."""
        sign = 1.0 if self.keep_largest else -1.0
        return {k: np.nan_to_num(sign * v.astype("float64"), nan=-np.inf) for k, v in self.scores.items()}


class Score:
    """Base class of a score: set up once per model, then called with the current masks.

    Class attributes (set by :func:`register_score`): ``name``; ``needs_data`` (an ``(x, y)`` batch
    is required); ``iterations`` (default score-and-prune rounds, e.g. 100 for SynFlow);
    ``iterative`` (False if more than one round means nothing, as for random scores);
    ``options`` (the keyword options this score accepts beyond ``loss`` and ``seed``).
    Subclasses set ``keep_largest = False`` when the largest scores are the ones removed, and
    ``baseline = True`` for a control rather than a method of its own (listed last by default).

    Override :meth:`compute` (``masked`` weights -> ``{name: score}``), or :meth:`__call__` to
    return a :class:`Scores` with more detail.
    """

    name: ClassVar[str] = ""
    needs_data: ClassVar[bool] = False
    iterations: ClassVar[int] = 1
    iterative: ClassVar[bool] = True
    options: ClassVar[tuple[str, ...]] = ()
    keep_largest: ClassVar[bool] = True
    baseline: ClassVar[bool] = False

    def __init__(self, model: keras.layers.Layer, weights: Sequence[PrunableWeight], data: Any = None, *,
                 loss: Any = None, seed: int | None = None, **options: Any) -> None:
        self.model, self.weights = model, list(weights)
        self.names = [w.name for w in self.weights]
        self.data, self.loss, self.seed = data, loss, seed
        self.rng = np.random.default_rng(seed)

    def masked(self, masks: Mapping[str, np.ndarray] | None) -> list[np.ndarray]:
        """The weights' values with ``masks`` (``{"layer/attr": uint8}``) applied."""
        values = [to_numpy(w.variable) for w in self.weights]
        if masks:
            values = [v * masks[w.name].astype(v.dtype) if w.name in masks else v
                      for w, v in zip(self.weights, values, strict=True)]
        return values

    def compute(self, masked: list[np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError(f"score {type(self).__name__} must override compute() or __call__()")

    def __call__(self, masks: Mapping[str, np.ndarray] | None = None) -> Scores:
        """The scores with ``masks`` applied to the weights first."""
        return Scores(self.name, self.compute(self.masked(masks)), keep_largest=self.keep_largest)


#: name -> registered :class:`Score` subclass, in registration order.
SCORES: dict[str, type[Score]] = {}


#: the dynamic sparse-training methods (:data:`kerasinit.pruning.sparse_training.METHODS`): ``run_prune_at_init``
#: and ``kerasinit prune-at-init`` read these names as methods, so no score may take them
RESERVED = ("rigl", "set", "static")


def register_score(name: str, *, needs_data: bool, iterations: int = 1, iterative: bool = True,
                   options: Iterable[str] = ()) -> Callable[[S], S]:
    """Class decorator: register a :class:`Score` subclass under ``name`` (JaxPruner's ``ALGORITHM_REGISTRY``).

    ``needs_data``: the score reads an ``(x, y)`` batch (SNIP, GraSP). ``iterations``: default rounds
    of score-and-prune (the densities follow ``(1 − sparsity)^(k/n)``). ``iterative``: whether more than
    one round is allowed. ``options``: extra keyword options it accepts (GraSP: ``hessian``, ``temperature``).
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"register_score: argument `name` must be an identifier string; received {name!r}.")
    if name in RESERVED:
        raise ValueError(f"register_score: argument `name` {name!r} is a sparse-training method (one of "
                         f"{', '.join(RESERVED)}: SparseTraining), which run_prune_at_init would run instead of the "
                         f"score; choose another name.")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"register_score: argument `iterations` must be an int >= 1; received {iterations!r}.")

    def decorate(cls: S) -> S:
        if not (isinstance(cls, type) and issubclass(cls, Score)):
            raise TypeError(f"register_score({name!r}): expected a subclass of kerasinit.pruning.Score; received {cls!r}.")
        if name in SCORES and SCORES[name] is not cls:
            raise ValueError(f"register_score: a score named {name!r} is registered already ({SCORES[name].__name__}).")
        cls.name, cls.needs_data, cls.iterations, cls.iterative = name, bool(needs_data), iterations, bool(iterative)
        cls.options = tuple(options)
        SCORES[name] = cls
        return cls

    return decorate


def default_methods() -> tuple[str, ...]:
    """Every registered score, the methods before the baselines (``snip, grasp, synflow, magnitude, random``)."""
    return tuple(sorted(SCORES, key=lambda name: SCORES[name].baseline))


def data_methods() -> tuple[str, ...]:
    """The registered scores that need an ``(x, y)`` batch."""
    return tuple(name for name, cls in SCORES.items() if cls.needs_data)


def _tensor(x: Any) -> Any:
    return keras.tree.map_structure(keras.ops.convert_to_tensor, x)


def batches(data: Any, owner: str = "prune_at_init") -> list[Batch]:
    """``data`` as a list of ``(x, y)`` batches: one ``(x, y)`` pair, or an iterable of pairs."""
    if data is None:
        raise ValueError(f"{owner}: argument `data` is required for the methods {list(data_methods())}: an (x, y) batch "
                         "or an iterable of (x, y) batches.")
    if isinstance(data, tuple | list) and len(data) == 2 and (hasattr(data[0], "shape") or isinstance(data[0], dict)):
        pairs: Iterable[Any] = [data]
    else:
        pairs = data
    out = []
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"{owner}: argument `data` must be an (x, y) pair or an iterable of (x, y) pairs; "
                             f"found an item of type {type(pair).__name__}.")
        out.append((_tensor(pair[0]), _tensor(pair[1])))
    if not out:
        raise ValueError(f"{owner}: argument `data` holds no batches.")
    return out


def mean_gradient(grad: Any, targets: list[Any], values: Any, data: list[Batch]) -> list[np.ndarray]:
    """The gradient ``grad(targets, values, x, y)`` averaged over ``data``'s batches, in float64."""
    total: list[np.ndarray] | None = None
    for x, y in data:
        _, g = grad(targets, values, x, y)
        g = [to_numpy(a).astype("float64") for a in g]
        total = g if total is None else [a + b for a, b in zip(total, g, strict=True)]
    assert total is not None
    return [a / len(data) for a in total]
