"""Saliency scores for pruning at initialization (the methods of ``prune_at_init``).

Each score is one array per prunable weight, keyed ``"layer/attr"`` as the masks are:

* ``"magnitude"``: ``|w|``.
* ``"random"``: i.i.d. uniform numbers (a random mask at the chosen densities).
* ``"snip"``: connection sensitivity ``|g ⊙ w|`` with ``g = ∂L/∂w`` on mini-batches (the mean
  gradient when several are given); Lee, Ajanthan & Torr, "SNIP: Single-shot network pruning
  based on connection sensitivity", ICLR 2019.
* ``"grasp"``: gradient signal preservation ``S = −w ⊙ (H g)``, H the Hessian of the loss and g
  its gradient (both averaged over the batches); the weights with the *largest* S are removed.
  Wang, Zhang & Grosse, "Picking winning tickets before training by preserving gradient flow",
  ICLR 2020. H g comes from double backprop on TensorFlow, JAX and PyTorch; ``hessian=
  "finite-difference"`` uses the central difference ``(∇L(w + εg) − ∇L(w − εg)) / 2ε`` instead,
  and ``"auto"`` falls back to it when an operation has no second derivative on the backend
  (PyTorch's fused CPU attention kernel in ``MultiHeadAttention``, for one). :attr:`Scores.hessian`
  says which was used, :attr:`Scores.notes` why.
  g and H are taken over the pruned weights only, the other weights held fixed (as the
  authors' code does: the Hessian block of the prunable kernels).
  ``temperature=T`` divides the logits z by T inside the loss, ``L(softmax(z / T), y)``, for g and
  H g alike, as Wang et al.'s code does with T = 200 (the paper's equations have no T). The default
  T = 1 is the formula as printed and applies to any loss; T ≠ 1 is refused unless the
  objective is a cross-entropy on logits, i.e. where z / T is exact: a probability cross-entropy
  (``"sparse_categorical_crossentropy"``, ...) behind softmax/sigmoid output layers, whose
  pre-activations are used (:func:`linear_outputs`), or a cross-entropy with ``from_logits=True``.
  A large T flattens the softmax (p ≈ 1/K once T ≫ |z|); g shrinks like 1/T and H g like 1/T², so
  only the ranking, not the scale, is comparable across temperatures.
* ``"synflow"``: data-free iterative synaptic flow, ``S = w ⊙ ∂R/∂w`` with every weight and
  bias replaced by its absolute value (BatchNorm's statistics too, BatchNorm in inference mode),
  an all-ones input and ``R = Σ model(1)``; Tanaka, Kunin, Yamins & Ganguli, "Pruning neural
  networks without any data by iteratively conserving synaptic flow", NeurIPS 2020. The model's
  variables are never assigned: the absolute values go through ``stateless_call``, so the signed
  weights are untouched. The output layers' activations (softmax, sigmoid, ...) are replaced by
  the identity while scoring: R is the sum of the logits, as for the paper's logit-output
  models (a softmax output sums to 1 whatever the weights, and ∂R/∂w would vanish). A separate
  ``Softmax`` layer at the output is not seen through: give such a model a logits output.
  One call here is one SynFlow iteration; ``prune_at_init`` iterates.

Gradients are backend-specific and live in ``_grads_tf``, ``_grads_jax`` and ``_grads_torch``,
imported on first use by backend name; this module uses ``keras.ops`` only.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit._validation import check_choice
from kerasinit.pruning._functional import ModelFunction
from kerasinit.pruning.selection import PrunableWeight

METHODS = ("magnitude", "random", "snip", "grasp", "synflow")
DATA_METHODS = ("snip", "grasp")
HESSIANS = ("auto", "double-backprop", "finite-difference")
#: backend name -> module with ``gradient(fn)``, ``hessian_vector(fn)`` and ``HESSIAN``.
GRADIENT_MODULES: dict[str, str] = {
    "tensorflow": "kerasinit.pruning._grads_tf",
    "jax": "kerasinit.pruning._grads_jax",
    "torch": "kerasinit.pruning._grads_torch",
}

Batch = tuple[Any, Any]


@dataclass
class Scores:
    """The scores of one method.

    Attributes:
        method: one of :data:`METHODS`.
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


def _backend_gradients() -> Any:
    backend = keras.backend.backend()
    if backend not in GRADIENT_MODULES:
        raise ValueError(
            f"pruning scores with gradients need one of the backends {sorted(GRADIENT_MODULES)}; running {backend!r}. "
            "Use method 'magnitude' or 'random' on this backend."
        )
    return importlib.import_module(GRADIENT_MODULES[backend])


def _tensor(x: Any) -> Any:
    return keras.tree.map_structure(keras.ops.convert_to_tensor, x)


def batches(data: Any, owner: str = "prune_at_init") -> list[Batch]:
    """``data`` as a list of ``(x, y)`` batches: one ``(x, y)`` pair, or an iterable of pairs."""
    if data is None:
        raise ValueError(f"{owner}: argument `data` is required for the methods {list(DATA_METHODS)}: an (x, y) batch "
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


_PROBABILITY_LOSSES = {  # cross-entropies on probabilities -> (output activation, the same loss on logits)
    "sparse_categorical_crossentropy": ("softmax", keras.losses.sparse_categorical_crossentropy),
    "categorical_crossentropy": ("softmax", keras.losses.categorical_crossentropy),
    "binary_crossentropy": ("sigmoid", keras.losses.binary_crossentropy),
}


def _probability_loss(fn: Any) -> str | None:
    """The name of ``fn`` if it is a cross-entropy on probabilities (function or Loss with from_logits=False)."""
    if isinstance(fn, keras.losses.Loss):
        config = fn.get_config()
        name = getattr(getattr(fn, "fn", None), "__name__", None)
        return name if name in _PROBABILITY_LOSSES and not config.get("from_logits", False) else None
    name = getattr(fn, "__name__", None)
    return name if name in _PROBABILITY_LOSSES else None


def check_temperature(temperature: Any, owner: str = "prune_at_init") -> float:
    """``temperature`` as a float, finite and > 0."""
    if isinstance(temperature, bool) or not isinstance(temperature, int | float | np.integer | np.floating):
        raise TypeError(f"{owner}: argument `temperature` must be a positive number (GraSP's logit temperature, "
                        f"e.g. 200 as in Wang et al.'s code); received {temperature!r}.")
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"{owner}: argument `temperature` must be finite and > 0; received {temperature!r}.")
    return float(temperature)


def _logits_loss(fn: Any) -> bool:
    """True if ``fn`` is a cross-entropy Loss with ``from_logits=True`` (its ``y_pred`` are logits)."""
    if not isinstance(fn, keras.losses.Loss):
        return False
    name = getattr(getattr(fn, "fn", None), "__name__", None)
    return name in _PROBABILITY_LOSSES and bool(fn.get_config().get("from_logits", False))


def loss_objective(model: keras.layers.Layer, loss: Any, owner: str = "prune_at_init") -> tuple[Any, bool]:
    """``(y, y_pred) -> mean loss`` from ``loss`` or the compiled model's loss, and whether it reads logits.

    A cross-entropy on probabilities behind softmax (sigmoid) output layers is computed from the
    logits instead (the output activations linear while scoring, see :func:`linear_outputs`): the same
    loss, without the clipping of saturated probabilities that zeroes the gradient of an untrained
    deep model on JAX and PyTorch (TensorFlow recovers the logits by itself).
    """
    loss = loss if loss is not None else getattr(model, "loss", None)
    if loss is None:
        raise ValueError(f"{owner}: argument `loss` is required for SNIP and GraSP when the model is not compiled "
                         "(e.g. loss='sparse_categorical_crossentropy').")
    fn = keras.losses.get(loss)
    name = _probability_loss(fn)
    outputs = output_layers(model)
    if name is not None and outputs:
        activation, on_logits = _PROBABILITY_LOSSES[name]
        if all(getattr(layer, "activation", None) is getattr(keras.activations, activation) for layer in outputs):
            return (lambda y, y_pred: keras.ops.mean(on_logits(y, y_pred, from_logits=True))), True
    return (lambda y, y_pred: keras.ops.mean(fn(y, y_pred))), False


def _masked(weights: Sequence[PrunableWeight], masks: Mapping[str, np.ndarray] | None) -> list[np.ndarray]:
    values = [to_numpy(w.variable) for w in weights]
    if masks:
        values = [v * masks[w.name].astype(v.dtype) if w.name in masks else v for w, v in zip(weights, values, strict=True)]
    return values


def _mean_gradient(grad: Any, targets: list[Any], values: Any, data: list[Batch]) -> list[np.ndarray]:
    total: list[np.ndarray] | None = None
    for x, y in data:
        _, g = grad(targets, values, x, y)
        g = [to_numpy(a).astype("float64") for a in g]
        total = g if total is None else [a + b for a, b in zip(total, g, strict=True)]
    assert total is not None
    return [a / len(data) for a in total]


def _double_backprop(module: Any, fn: ModelFunction, targets: list[Any], values: Any, data: list[Batch],
                     v: list[Any]) -> list[np.ndarray]:
    hvp = module.hessian_vector(fn)
    total: list[np.ndarray] | None = None
    for x, y in data:
        h = [to_numpy(a).astype("float64") for a in hvp(targets, values, x, y, v)]
        total = h if total is None else [a + b for a, b in zip(total, h, strict=True)]
    assert total is not None
    return [a / len(data) for a in total]


def _finite_difference(grad: Any, targets: list[Any], values: Any, data: list[Batch], g: list[np.ndarray],
                       dtype: list[str]) -> list[np.ndarray]:
    """Central difference of the gradient along g, the step ε·g being 1e-3 of the weights' norm."""
    w = [to_numpy(t).astype("float64") for t in targets]
    g_norm = float(np.sqrt(sum(float((a * a).sum()) for a in g))) or 1.0
    w_norm = float(np.sqrt(sum(float((a * a).sum()) for a in w))) or 1.0
    eps = 1e-3 * w_norm / g_norm
    plus = [keras.ops.convert_to_tensor((a + eps * b).astype(d)) for a, b, d in zip(w, g, dtype, strict=True)]
    minus = [keras.ops.convert_to_tensor((a - eps * b).astype(d)) for a, b, d in zip(w, g, dtype, strict=True)]
    gp = _mean_gradient(grad, plus, values, data)
    gm = _mean_gradient(grad, minus, values, data)
    return [(a - b) / (2 * eps) for a, b in zip(gp, gm, strict=True)]


def _hessian_gradient(module: Any, fn: ModelFunction, grad: Any, targets: list[Any], values: Any, data: list[Batch],
                      g: list[np.ndarray], hessian: str, notes: list[str]) -> tuple[list[np.ndarray], str]:
    """Mean over batches of H_b g and how it was computed.

    ``"auto"``: double backprop where the backend module offers it, and finite differences if an
    operation of the model has no second derivative there (e.g. PyTorch's fused CPU attention
    kernel); the reason goes to ``notes``. ``"double-backprop"`` raises instead of falling back.
    """
    dtype = [keras.backend.standardize_dtype(t.dtype) for t in targets]
    if hessian != "finite-difference" and getattr(module, "HESSIAN", None) == "double-backprop":
        v = [keras.ops.convert_to_tensor(a.astype(d)) for a, d in zip(g, dtype, strict=True)]
        try:
            return _double_backprop(module, fn, targets, values, data, v), "double-backprop"
        except (RuntimeError, NotImplementedError, LookupError) as exc:  # torch / TF: no second derivative of an op
            if hessian == "double-backprop":
                raise ValueError(f"grasp: double backprop failed on this model and backend ({exc}); "
                                 "use hessian='finite-difference' or 'auto'.") from exc
            notes.append(f"H g by finite differences: double backprop failed ({type(exc).__name__}: {str(exc)[:200]})")
    elif hessian == "double-backprop":
        raise ValueError(f"grasp: the {keras.backend.backend()!r} backend offers no double backprop; "
                         "use hessian='finite-difference' or 'auto'.")
    return _finite_difference(grad, targets, values, data, g, dtype), "finite-difference"


def _synflow_input(model: keras.layers.Layer, data: Any) -> Any:
    """All-ones input of batch size 1, shaped like the model's inputs (or like ``data``'s x)."""
    if data is not None:
        x = data[0] if isinstance(data, tuple | list) and len(data) == 2 else data
        return keras.tree.map_structure(lambda a: keras.ops.ones((1, *tuple(a.shape)[1:]), dtype="float32"), x)
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError("synflow: the model has no symbolic inputs (subclassed?); pass `data` (an input batch) "
                         "so that its shape is known.")
    ones = [keras.ops.ones((1, *tuple(i.shape)[1:]), dtype=i.dtype) for i in inputs]
    return ones[0] if len(ones) == 1 else ones


def output_layers(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The layers producing ``model``'s outputs (functional and Sequential models; none otherwise)."""
    outputs = getattr(model, "outputs", None) or []
    found = [getattr(t, "_keras_history", (None,))[0] for t in keras.tree.flatten(outputs)]
    return [layer for layer in found if isinstance(layer, keras.layers.Layer)]


@contextlib.contextmanager
def linear_outputs(model: keras.layers.Layer) -> Iterator[None]:
    """Meanwhile, the output layers' ``activation`` is the identity (SynFlow scores the logits)."""
    swapped = []
    for layer in output_layers(model):
        act = getattr(layer, "activation", None)
        if callable(act) and act is not keras.activations.linear:
            swapped.append((layer, act))
            layer.activation = keras.activations.linear
    try:
        yield
    finally:
        for layer, act in swapped:
            layer.activation = act


class Scorer:
    """Scores of ``weights`` (from ``select(model, ...)``) by ``method``, recomputed on each call with given masks.

    The gradient function is built (and on TensorFlow/JAX compiled) once, so iterating, as SynFlow
    does, traces once. ``data``: SNIP/GraSP: an ``(x, y)`` batch or an iterable of batches
    (gradients averaged); SynFlow: optional, an input batch giving the input shape. ``loss``:
    the SNIP/GraSP objective (default: the compiled model's loss). ``hessian``: how GraSP gets
    H g, one of :data:`HESSIANS`. ``temperature``: GraSP's logit temperature T (the loss sees
    z / T; see the module docstring). ``seed``: the random scores.
    """

    def __init__(self, model: keras.layers.Layer, weights: Sequence[PrunableWeight], method: str, data: Any = None, *,
                 loss: Any = None, seed: int | None = None, hessian: str = "auto", temperature: float = 1.0) -> None:
        self.method = check_choice("method", method, METHODS, owner="prune_at_init")
        self.hessian = check_choice("hessian", hessian, HESSIANS, owner="prune_at_init")
        self.temperature = check_temperature(temperature)
        if self.temperature != 1.0 and self.method != "grasp":
            raise ValueError(f"prune_at_init: argument `temperature` applies to method 'grasp' only; received "
                             f"temperature={temperature!r} with method {self.method!r}.")
        self.model, self.weights = model, list(weights)
        self.names = [w.name for w in self.weights]
        self._rng = np.random.default_rng(seed)
        if self.method in ("magnitude", "random"):
            return
        self._module = _backend_gradients()
        variables = [w.variable for w in self.weights]
        if self.method == "synflow":
            self._fn = ModelFunction(model, variables, lambda y, y_pred: keras.ops.sum(keras.ops.sum(y_pred)))
            # every float weight, bias and BatchNorm statistic by its absolute value (Tanaka et al.'s linearization)
            self._values = tuple([keras.ops.abs(v) if "float" in keras.backend.standardize_dtype(v.dtype) else v
                                  for v in group] for group in self._fn.values())
            self._ones = _synflow_input(model, data)
        else:
            self._data = batches(data)
            objective, self._logits = loss_objective(model, loss)
            if self.temperature != 1.0:
                objective = self._tempered(model, loss, objective)
            self._fn = ModelFunction(model, variables, objective)
            self._values = self._fn.values()
        self._grad = self._module.gradient(self._fn)

    def _tempered(self, model: keras.layers.Layer, loss: Any, objective: Any) -> Any:
        """``objective`` on ``y_pred / T``, where ``y_pred`` are logits (else a ValueError)."""
        fn = keras.losses.get(loss if loss is not None else getattr(model, "loss", None))
        if not (self._logits or _logits_loss(fn)):
            raise ValueError(
                f"grasp: argument `temperature` ({self.temperature:g}) divides the logits, so the loss must be a "
                "cross-entropy on logits: a probability cross-entropy ('sparse_categorical_crossentropy', "
                "'categorical_crossentropy', 'binary_crossentropy') with softmax/sigmoid output layers (their "
                "pre-activations are used), or such a loss with from_logits=True on a logits output; received "
                f"loss={loss!r}. A separate Softmax layer at the output is not seen through. Use temperature=1.")
        t = self.temperature
        return lambda y, y_pred: objective(y, keras.ops.divide(y_pred, t))

    def __call__(self, masks: Mapping[str, np.ndarray] | None = None) -> Scores:
        """The scores with ``masks`` (``{"layer/attr": uint8}``) applied to the weights first."""
        masked = _masked(self.weights, masks)
        names = self.names
        if self.method == "magnitude":
            return Scores(self.method, {n: np.abs(v) for n, v in zip(names, masked, strict=True)})
        if self.method == "random":
            return Scores(self.method, {n: self._rng.random(v.shape) for n, v in zip(names, masked, strict=True)})
        if self.method == "synflow":
            targets = [keras.ops.convert_to_tensor(np.abs(v)) for v in masked]
            with linear_outputs(self.model):
                r, g = self._grad(targets, self._values, self._ones, None)
            out = {n: to_numpy(a).astype("float64") * np.abs(v) for n, a, v in zip(names, g, masked, strict=True)}
            if not np.isfinite(float(to_numpy(r))) or not all(np.isfinite(a).all() for a in out.values()):
                raise ValueError("synflow: R = Σ model(1) overflowed float32 with |w| (a very deep model?); scale the "
                                 "initial weights down (scores are invariant to a per-layer scale) or prune fewer layers.")
            # the flow through the kernels is about R per layer (exactly R without biases, conservation)
            if masks is None and sum(float(a.sum()) for a in out.values()) <= 1e-4 * abs(float(to_numpy(r))):
                raise ValueError("synflow: R = Σ model(1) does not depend on the weights (an output normalized by a "
                                 "Softmax layer?); give the model a logits output for scoring.")
            return Scores(self.method, out)
        targets = [keras.ops.convert_to_tensor(v) for v in masked]
        with linear_outputs(self.model) if self._logits else contextlib.nullcontext():
            g = _mean_gradient(self._grad, targets, self._values, self._data)
            if self.method == "snip":
                return Scores(self.method, {n: np.abs(a * v) for n, a, v in zip(names, g, masked, strict=True)},
                              batches=len(self._data))
            notes: list[str] = []
            hg, how = _hessian_gradient(self._module, self._fn, self._grad, targets, self._values, self._data, g,
                                        self.hessian, notes)
        out = {n: -v.astype("float64") * a for n, a, v in zip(names, hg, masked, strict=True)}
        if self.temperature != 1.0:
            notes.append(f"logits divided by temperature {self.temperature:g}")
        return Scores(self.method, out, keep_largest=False, hessian=how, batches=len(self._data), notes=notes)


def compute_scores(model: keras.layers.Layer, weights: Sequence[PrunableWeight], method: str, data: Any = None, *,
                   loss: Any = None, masks: Mapping[str, np.ndarray] | None = None, seed: int | None = None,
                   hessian: str = "auto", temperature: float = 1.0) -> Scores:
    """One evaluation of :class:`Scorer` (``masks`` applied to the weights first)."""
    return Scorer(model, weights, method, data, loss=loss, seed=seed, hessian=hessian, temperature=temperature)(masks)
