"""Classification datasets for experiments.

``load(source)`` returns a :class:`Dataset` with fixed train/val/test splits:

- ``"digits"``: scikit-learn's bundled 8x8 digits (1,797 samples, 64 features, 10 classes);
- ``"moons"``, ``"circles"``, ``"spiral"``: generated 2-D sets (``n_samples``, ``noise``, ``seed``);
- ``"mnist"``, ``"fashion_mnist"`` (28x28x1, scaled to [0, 1]), ``"cifar10"``, ``"cifar100"``
  (32x32x3, scaled to [0, 1], then each channel normalized with the training mean and std): read from
  Keras's cache (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``) in the layout
  ``keras.datasets`` writes; a missing file is fetched by ``keras.datasets`` when ``download=True``
  and the network allows, else a ValueError says which file to place where. The official test
  split is kept; validation is a stratified ``val_fraction`` of the training split;
- ``"path/to/file.npz"``: keys ``x``/``X`` and ``y``, or ``x_train``, ``y_train``, ``x_test``,
  ``y_test`` (and optionally ``x_val``, ``y_val``); samples keep their shape (vectors, or images
  (N, H, W, C) / (N, H, W): the zoo's MLPs flatten them, its conv nets take them as they are).
  A ``.npy`` file holds one array, not features and labels: it is refused with the ``np.savez``
  call that makes an ``.npz``;
- ``"path/to/file.csv"``: a header row; the label is the column ``label`` names, else the column
  named label, target, class or y (case-insensitive, that order), else the last column (with a
  warning); ``Dataset.label_column`` and ``Dataset.label_rule`` record which and why;
- a tuple ``(x_train, y_train, x_test, y_test)`` of arrays (any sample shape, e.g. images): the
  validation split is carved from training with ``seed``;
- a pair ``(train, test)`` of ``tf.data.Dataset`` or ``keras.utils.PyDataset`` objects yielding
  ``(x, y)`` batches (or unbatched samples): each is read once into memory (the experiments retrain
  many times on fixed splits with the same data order for a ticket and its controls), then treated
  like the tuple of arrays.

Tabular sets and files are standardized per feature (per pixel for images) with the training
statistics; tuples per input position (``standardize=False`` to keep them as given).
The names and sample shapes of the built-ins live in :mod:`kerasinit.experiments.catalog`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kerasinit.experiments.catalog import (
    DATASETS,
    FILE_SUFFIXES,
    GENERATED,
    KERAS_DATASETS,
    LABEL_COLUMNS,
    closest,
    did_you_mean,
)

BUILTIN = DATASETS
TARGET_COLUMNS = LABEL_COLUMNS


class LabelColumnWarning(UserWarning):
    """A CSV's label column was guessed (the last column) or chosen among several label-like names."""


@dataclass(frozen=True)
class Dataset:
    """Standardized float32 features and int labels ``0..n_classes-1``, split three ways."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    feature_names: tuple[str, ...] | None = None
    class_names: tuple[str, ...] = ()
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    scale: np.ndarray = field(default_factory=lambda: np.ones(0), repr=False)
    #: a CSV's label column and how it was chosen: "given" (``label=``), "found by name" (maybe
    #: ", over 'y'"), or "last column (...)"; None for other sources
    label_column: str | None = None
    label_rule: str | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one sample, e.g. ``(64,)`` or ``(32, 32, 3)``."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def n_features(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def is_2d(self) -> bool:
        """Two input features: decision boundaries can be drawn."""
        return self.input_shape == (2,)

    @property
    def chance(self) -> float:
        """Accuracy of always predicting the most frequent test class."""
        return float(np.bincount(self.y_test, minlength=self.n_classes).max() / len(self.y_test))

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}

    def __str__(self) -> str:
        s = self.sizes()
        what = f"{self.n_features} features" if len(self.input_shape) == 1 else "x".join(map(str, self.input_shape))
        label = f", label column: {self.label_column} ({self.label_rule})" if self.label_column is not None else ""
        return (f"{self.name}: {what}, {self.n_classes} classes, "
                f"train/val/test = {s['train']}/{s['val']}/{s['test']}{label}")


def load(
    name_or_path: str | os.PathLike[str] | tuple[Any, ...] | Dataset,
    seed: int = 0,
    *,
    n_samples: int = 1000,
    noise: float | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    standardize: bool = True,
    download: bool = True,
    label: str | None = None,
) -> Dataset:
    """Load a built-in dataset (see the module docstring), a ``.npz``/``.csv`` file or arrays.

    ``seed`` fixes the generated samples and the stratified split; ``n_samples`` and ``noise``
    apply to the generated sets (noise defaults: moons 0.2, circles 0.1, spiral 0.2).
    ``val_fraction`` and ``test_fraction`` are fractions of all samples (sets with their own
    test split keep it; a missing validation split is ``val_fraction / (1 - test_fraction)`` of
    the training data). ``download``: let ``keras.datasets`` fetch a Keras dataset missing from
    its cache (False: raise at once). ``label``: the label column of a ``.csv`` file (default: the
    column named label, target, class or y, else the last; see ``Dataset.label_column``).
    """
    if label is not None:
        if not isinstance(label, str):
            raise TypeError(f"argument `label` must be a column name (str); received {label!r} "
                            f"(type {type(label).__name__}).")
        is_csv = isinstance(name_or_path, str | os.PathLike) and os.fspath(name_or_path).lower().endswith(".csv")
        if not is_csv:
            source = os.fspath(name_or_path) if isinstance(name_or_path, str | os.PathLike) else \
                type(name_or_path).__name__
            raise ValueError(f"argument `label` names a CSV column; it does not apply to {source!r} (labels of "
                             ".npz files are their y arrays, of built-ins fixed).")
    if isinstance(name_or_path, Dataset):
        return name_or_path
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"argument `seed` must be an int; received {seed!r}.")
    for arg, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value < 1.0:
            raise ValueError(f"argument `{arg}` must be a float in (0, 1); received {value!r}.")
    if val_fraction + test_fraction >= 0.9:
        raise ValueError(f"arguments `val_fraction` + `test_fraction` must be < 0.9; received "
                         f"{val_fraction} + {test_fraction}.")
    if isinstance(name_or_path, tuple | list) and len(name_or_path) == 2 and all(map(is_pipeline, name_or_path)):
        (x_tr, y_tr), (x_te, y_te) = (pipeline_arrays(p, arg) for p, arg in zip(name_or_path, ("train", "test"),
                                                                                   strict=True))
        return _from_arrays((x_tr, y_tr, x_te, y_te), seed, val_fraction / (1.0 - test_fraction), standardize)
    if isinstance(name_or_path, tuple | list):
        return _from_arrays(name_or_path, seed, val_fraction / (1.0 - test_fraction), standardize)
    if not isinstance(name_or_path, str | os.PathLike):
        raise TypeError("argument `name_or_path` must be a dataset name, a file path or a tuple "
                        f"(x_train, y_train, x_test, y_test); received {type(name_or_path).__name__}.")
    text = os.fspath(name_or_path)
    key = text.lower()
    feature_names: tuple[str, ...] | None = None
    splits: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    label_column: str | None = None
    label_rule: str | None = None
    if key == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x, y, name = bunch.data, bunch.target, "digits"
        feature_names = tuple(bunch.feature_names)
    elif key in KERAS_DATASETS:
        return _load_keras(key, seed, val_fraction / (1.0 - test_fraction), download)
    elif key in GENERATED:
        x, y = generate(key, n_samples=n_samples, noise=noise, seed=seed)
        name, feature_names = key, ("x1", "x2")
    elif key.endswith((*FILE_SUFFIXES, ".npy")):
        if not os.path.isfile(text):
            raise ValueError(f"argument `name_or_path`: no such file {text!r}.")
        name = os.path.basename(text)
        if key.endswith(".npy"):
            raise ValueError(_npy_help(text))
        if key.endswith(".npz"):
            loaded = _read_npz(text)
            if "x" in loaded:
                x, y = loaded["x"]
            else:
                splits = {k: _check_xy(xs, ys, f"{name}[{k}]") for k, (xs, ys) in loaded.items()}
                shapes = {k: v[0].shape[1:] for k, v in splits.items()}
                if len(set(shapes.values())) != 1:
                    if all(len(v) == 1 for v in shapes.values()):
                        raise ValueError(f"{name}: splits have different numbers of features: "
                                         f"{ {k: v[0] for k, v in shapes.items()} }.")
                    raise ValueError(f"{name}: splits have different sample shapes: {shapes}.")
                x = np.concatenate([v[0] for v in splits.values()])
                y = np.concatenate([v[1] for v in splits.values()])
        else:
            x, y, feature_names, label_column, label_rule = _read_csv(text, label)
    else:
        raise ValueError(
            f"argument `name_or_path` must be one of {', '.join(BUILTIN)} or a path ending in .npz or .csv; "
            f"received {text!r}." + did_you_mean(text, BUILTIN)
        )
    try:
        return _finish_table(name, x, y, splits, feature_names, seed, val_fraction, test_fraction, standardize,
                             label_column, label_rule)
    except ValueError as exc:
        if label_column is None:
            raise
        raise ValueError(f"{exc} [label column {label_column!r} ({label_rule}); name another with "
                         "argument `label`]") from exc


def _finish_table(name: str, x: Any, y: Any, splits: dict[str, tuple[np.ndarray, np.ndarray]] | None,
                  feature_names: tuple[str, ...] | None, seed: int, val_fraction: float, test_fraction: float,
                  standardize: bool, label_column: str | None, label_rule: str | None) -> Dataset:
    """Check, encode, split and standardize (per feature / per pixel) a built-in table or a file's arrays."""
    x, y = _check_xy(x, y, name)
    class_values, y_all = np.unique(y, return_inverse=True)
    if len(class_values) < 2:
        raise ValueError(f"{name}: the target has a single class ({class_values[0]!r}); need at least 2.")
    class_names = tuple(str(c) for c in class_values)
    if splits is not None:
        # Re-encode each given split with the shared class index.
        encoded = {k: (xs, np.searchsorted(class_values, ys)) for k, (xs, ys) in splits.items()}
        parts = _split_given(encoded, val_fraction / (1.0 - test_fraction), seed, name)
    else:
        parts = _split(x, y_all.astype(np.int64), val_fraction, test_fraction, seed, name)
    if feature_names is not None and x.shape[1:] != (len(feature_names),):
        feature_names = None
    (xtr, ytr), (xva, yva), (xte, yte) = parts
    mean = xtr.mean(axis=0) if standardize else np.zeros(x.shape[1:])
    scale = xtr.std(axis=0) if standardize else np.ones(x.shape[1:])
    scale = np.where(scale > 0, scale, 1.0)  # constant features (digits' blank corners) stay 0

    def norm(a: np.ndarray) -> np.ndarray:
        return ((a - mean) / scale).astype(np.float32)

    return Dataset(name=name, x_train=norm(xtr), y_train=ytr, x_val=norm(xva), y_val=yva, x_test=norm(xte),
                   y_test=yte, n_classes=len(class_values), feature_names=feature_names,
                   class_names=class_names, mean=mean, scale=scale, label_column=label_column,
                   label_rule=label_rule)


def generate(name: str, n_samples: int = 1000, noise: float | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Raw (unsplit, unstandardized) 2-D ``moons``, ``circles`` or ``spiral`` (two interleaved arms)."""
    if name not in GENERATED:
        raise ValueError(f"argument `name` must be one of {', '.join(GENERATED)}; received {name!r}.")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer) or n_samples < 20:
        raise ValueError(f"argument `n_samples` must be an int >= 20; received {n_samples!r}.")
    if noise is not None and (isinstance(noise, bool) or not isinstance(noise, int | float) or not 0 <= noise < 10):
        raise ValueError(f"argument `noise` must be a float in [0, 10); received {noise!r}.")
    from sklearn.datasets import make_circles, make_moons

    if name == "moons":
        return make_moons(n_samples, noise=0.2 if noise is None else noise, random_state=seed)
    if name == "circles":
        return make_circles(n_samples, noise=0.1 if noise is None else noise, factor=0.5, random_state=seed)
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples) % 2
    t = np.sqrt(rng.uniform(0.0, 1.0, n_samples)) * 3.0 * np.pi + 0.5  # radius grows with the angle
    arms = np.stack([t * np.cos(t + np.pi * y), t * np.sin(t + np.pi * y)], axis=1) / (3.0 * np.pi)
    x = arms + rng.normal(0.0, 0.2 if noise is None else noise, arms.shape) * 0.25
    return x, y


def _read_npz(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read as .npz ({exc}).") from exc
    keys = sorted(arrays)
    if "y" in arrays and ("x" in arrays or "X" in arrays):
        return {"x": (arrays["x"] if "x" in arrays else arrays["X"], arrays["y"])}
    if all(k in arrays for k in ("x_train", "y_train", "x_test", "y_test")):
        out = {"train": (arrays["x_train"], arrays["y_train"]), "test": (arrays["x_test"], arrays["y_test"])}
        if "x_val" in arrays or "y_val" in arrays:
            if not ("x_val" in arrays and "y_val" in arrays):
                raise ValueError(f"{path}: has only one of x_val/y_val; give both or neither.")
            out["val"] = (arrays["x_val"], arrays["y_val"])
        return out
    raise ValueError(
        f"{path}: expected keys x (or X) and y, or x_train, y_train, x_test, y_test [, x_val, y_val]; found {keys}."
    )


def _npy_help(path: str) -> str:
    """Why a .npy file is refused, and the np.savez call that makes a usable .npz."""
    try:
        shape = f"one array of shape {np.load(path, mmap_mode='r', allow_pickle=False).shape}"
    except (OSError, ValueError) as exc:
        shape = f"one array (unreadable: {exc})"
    stem = os.path.splitext(path)[0]
    return (f"{path}: a .npy file holds {shape}, not features and labels. Save them together as an .npz: "
            f"np.savez({stem + '.npz'!r}, x=features, y=labels), or with your own test split "
            "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...); features keep their shape "
            "(N, features) or images (N, H, W[, C]).")


def _label_column(path: str, columns: list[str], label: str | None) -> tuple[str, str]:
    """The label column of a CSV and how it was chosen (see ``Dataset.label_rule``)."""
    name = os.path.basename(path)
    if label is not None:
        if label in columns:
            return label, "given"
        near = closest(label, columns, cutoff=0)
        rest = [c for c in columns if c not in near]
        listed = near + rest[:max(0, 20 - len(near))]
        more = f" (and {len(columns) - len(listed)} more)" if len(listed) < len(columns) else ""
        raise ValueError(f"argument `label`: {label!r} is not a column of {name}; its {len(columns)} columns, "
                         f"closest first: {', '.join(listed)}{more}.")
    lowered = [c.strip().lower() for c in columns]
    named = [columns[lowered.index(t)] for t in TARGET_COLUMNS if t in lowered]
    if named:
        if len(named) == 1:
            return named[0], "found by name"
        others = " and ".join(repr(c) for c in named[1:])
        warnings.warn(f"{name}: {named[0]!r} and {others} could both be the label; using {named[0]!r} (preferred "
                      f"order: {', '.join(TARGET_COLUMNS)}); name it with argument `label`.", LabelColumnWarning,
                      stacklevel=4)
        return named[0], f"found by name, over {', '.join(repr(c) for c in named[1:])}"
    wanted = ", ".join(TARGET_COLUMNS[:-1]) + f" or {TARGET_COLUMNS[-1]}"
    warnings.warn(f"{name}: no column named {wanted}; using the last column {columns[-1]!r} as the label; name "
                  "the label column with argument `label`.", LabelColumnWarning, stacklevel=4)
    return columns[-1], f"last column, none named {wanted}"


def _read_csv(path: str, label: str | None = None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], str, str]:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read as CSV ({exc}).") from exc
    columns = [str(c) for c in frame.columns]
    if len(columns) < 2:
        raise ValueError(f"{path}: need at least one feature column and a target column; found columns {columns}.")
    frame.columns = columns
    target, rule = _label_column(path, columns, label)
    features = [c for c in columns if c != target]
    bad = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise ValueError(f"{path}: feature columns must be numeric; non-numeric columns: {bad}.")
    y = frame[target].to_numpy()
    if y.dtype == object and pd.isna(frame[target]).any():
        raise ValueError(f"{path}: target column {target!r} has missing values.")
    return frame[features].to_numpy(dtype=np.float64), y, tuple(features), target, rule


def is_pipeline(obj: Any) -> bool:
    """A ``tf.data.Dataset`` (duck-typed: ``as_numpy_iterator``) or a ``keras.utils.PyDataset``."""
    if hasattr(obj, "as_numpy_iterator"):
        return True
    import keras

    return isinstance(obj, keras.utils.PyDataset)


def pipeline_arrays(pipeline: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read every ``(x, y[, sample_weight])`` element of a tf.data / PyDataset pipeline into two arrays."""
    from kerasinit._arrays import to_numpy

    items = pipeline.as_numpy_iterator() if hasattr(pipeline, "as_numpy_iterator") else \
        (pipeline[i] for i in range(len(pipeline)))
    xs, ys = [], []
    for item in items:
        if not isinstance(item, tuple | list) or len(item) not in (2, 3):
            raise ValueError(f"argument `name_or_path`: the {split} pipeline must yield (x, y) pairs; received an "
                             f"element of type {type(item).__name__}.")
        x, y = to_numpy(item[0]), to_numpy(item[1])
        batched = y.ndim >= 1 and x.ndim >= 1 and len(x) == len(y)
        xs.append(x if batched else x[None])
        ys.append(y if batched else np.reshape(y, (1, *y.shape)))
    if not xs:
        raise ValueError(f"argument `name_or_path`: the {split} pipeline yielded no data.")
    return np.concatenate(xs), np.concatenate(ys)


def _from_arrays(arrays: Any, seed: int, val_share: float, standardize: bool) -> Dataset:
    """``(x_train, y_train, x_test, y_test)`` -> a Dataset keeping the sample shape."""
    if len(arrays) != 4:
        raise ValueError("argument `name_or_path`: a tuple must be (x_train, y_train, x_test, y_test); "
                         f"received {len(arrays)} items.")
    x_tr, y_tr = _check_xy(arrays[0], arrays[1], "x_train/y_train", dtype=np.float32)
    x_te, y_te = _check_xy(arrays[2], arrays[3], "x_test/y_test", dtype=np.float32)
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise ValueError(f"argument `name_or_path`: x_train samples have shape {x_tr.shape[1:]} but x_test samples "
                         f"{x_te.shape[1:]}.")
    return finish_split("arrays", {"train": (x_tr, y_tr), "test": (x_te, y_te)}, seed, val_share,
                        axes=(0,) if standardize else None)


def finish_split(name: str, parts: dict[str, tuple[np.ndarray, np.ndarray]], seed: int, val_share: float,
                 axes: tuple[int, ...] | None, scale: float = 1.0) -> Dataset:
    """Given train/test (and maybe val) splits: encode labels, carve validation from training with
    ``seed``, divide by ``scale`` and normalize over ``axes`` with the training statistics (None: not)."""
    class_values = np.unique(np.concatenate([y for _, y in parts.values()]))
    if len(class_values) < 2:
        raise ValueError(f"{name}: the target has a single class ({class_values[0]!r}); need at least 2.")
    encoded = {k: (x, np.searchsorted(class_values, y)) for k, (x, y) in parts.items()}
    (xtr, ytr), (xva, yva), (xte, yte) = _split_given(encoded, val_share, seed, name)
    xtr = xtr.astype(np.float32) / np.float32(scale)
    mean, std = np.zeros(()), np.ones(())
    if axes is not None:
        mean, std = xtr.mean(axis=axes, keepdims=True), xtr.std(axis=axes, keepdims=True)
        std = np.where(std > 0, std, 1.0)

    def norm(a: np.ndarray, scaled: bool = False) -> np.ndarray:
        a = a if scaled else a.astype(np.float32) / np.float32(scale)
        return ((a - mean) / std).astype(np.float32)

    return Dataset(name=name, x_train=norm(xtr, True), y_train=ytr, x_val=norm(xva), y_val=yva, x_test=norm(xte),
                   y_test=yte, n_classes=len(class_values), class_names=tuple(str(c) for c in class_values),
                   mean=np.squeeze(mean, 0) if mean.ndim else mean, scale=np.squeeze(std, 0) if std.ndim else std)


def _check_xy(x: Any, y: Any, name: str, dtype: Any = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Features as ``dtype`` keeping their sample shape, labels as a 1-D array, or a ValueError."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim < 2:
        raise ValueError(f"{name}: features must have shape (samples, features) or (samples, height, width"
                         f"[, channels]); received shape {x.shape}.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name}: labels must have shape (samples,); received shape {y.shape} "
                         "(one-hot labels: pass their argmax).")
    if len(x) != len(y):
        raise ValueError(f"{name}: features and labels differ in length: {len(x)} vs {len(y)}.")
    if len(x) == 0 or x[0].size == 0:
        raise ValueError(f"{name}: no data (features shape {x.shape}).")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{name}: features must be real numbers; received dtype {x.dtype}.")
    x = x.astype(dtype)
    if not np.isfinite(x).all():
        rows = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
        raise ValueError(f"{name}: features contain NaN or inf in {len(rows)} rows (first: {rows[:5].tolist()}).")
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all():
            raise ValueError(f"{name}: labels contain NaN or inf.")
        if not np.equal(np.round(y), y).all():
            raise ValueError(f"{name}: labels must be class labels (integers or strings); received non-integer "
                             f"floats such as {y[np.round(y) != y][:3].tolist()}.")
        y = y.astype(np.int64)
    return x, y


def _split(x: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float, seed: int,
           name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import train_test_split

    n, n_classes = len(y), int(y.max()) + 1
    n_test, n_val = max(n_classes, round(n * test_fraction)), max(n_classes, round(n * val_fraction))
    counts = np.bincount(y)
    if counts.min() < 3 or n - n_test - n_val < n_classes:
        raise ValueError(f"{name}: too few samples for a stratified train/val/test split ({n} samples, smallest "
                         f"class has {counts.min()}); need at least 3 per class.")
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=n_test, stratify=y, random_state=seed)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=n_val, stratify=y_rest,
                                                      random_state=seed)
    return [(x_train, y_train), (x_val, y_val), (x_test, y_test)]


def _split_given(parts: dict[str, tuple[np.ndarray, np.ndarray]], val_share: float, seed: int,
                 name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import train_test_split

    x_train, y_train = parts["train"]
    if "val" not in parts:
        counts = np.bincount(y_train)
        stratify = y_train if counts[counts > 0].min() >= 2 else None
        x_train, x_val, y_train, y_val = train_test_split(x_train, y_train, test_size=val_share,
                                                          stratify=stratify, random_state=seed)
    else:
        x_val, y_val = parts["val"]
    if len(np.unique(y_train)) < 2:
        raise ValueError(f"{name}: the training split has a single class; need at least 2.")
    return [(x_train, y_train.astype(np.int64)), (x_val, y_val.astype(np.int64)),
            (parts["test"][0], parts["test"][1].astype(np.int64))]


# -- keras.datasets: Keras's cache, read in the layout keras.datasets writes ---------------------------

#: per dataset: files (relative to the cache's ``datasets`` folder; any listed alternative will do),
#: where Keras downloads them from, the scale and the normalization axes of the preprocessing
KERAS_FILES: dict[str, dict[str, Any]] = {
    "mnist": {"files": [["mnist.npz"]], "origin": "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
              "scale": 255.0, "axes": None},
    "fashion_mnist": {"files": [[f"fashion-mnist/{f}"] for f in (
        "train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz")], "origin": "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        "scale": 255.0, "axes": None},
    "cifar10": {"files": [[f"{d}/cifar-10-batches-py" for d in ("cifar-10-batches-py-target",
                                                                  "cifar-10-batches-py_extracted", ".")]],
                "origin": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "scale": 255.0, "axes": (0, 1, 2)},
    "cifar100": {"files": [[f"{d}/cifar-100-python" for d in ("cifar-100-python-target",
                                                                "cifar-100-python_extracted", ".")]],
                 "origin": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "scale": 255.0,
                 "axes": (0, 1, 2)},
}


def keras_cache_dir() -> str:
    """Keras's dataset cache: ``$KERAS_HOME/datasets``, else ``~/.keras/datasets`` (as ``keras.utils.get_file``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets")


def _find(name: str) -> list[str] | None:
    root = keras_cache_dir()
    found = []
    for alternatives in KERAS_FILES[name]["files"]:
        hit = next((os.path.normpath(os.path.join(root, a)) for a in alternatives
                    if os.path.exists(os.path.join(root, a))), None)
        if hit is None:
            return None
        found.append(hit)
    return found


def _read_idx(path: str, offset: int) -> np.ndarray:
    import gzip

    with gzip.open(path, "rb") as fh:
        return np.frombuffer(fh.read(), np.uint8, offset=offset)


def _read_keras_files(name: str, paths: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if name == "mnist":
        with np.load(paths[0], allow_pickle=False) as f:
            return {"train": (f["x_train"][..., None], f["y_train"]), "test": (f["x_test"][..., None], f["y_test"])}
    if name == "fashion_mnist":
        y_tr, y_te = _read_idx(paths[0], 8), _read_idx(paths[2], 8)
        x_tr = _read_idx(paths[1], 16).reshape(len(y_tr), 28, 28, 1)
        x_te = _read_idx(paths[3], 16).reshape(len(y_te), 28, 28, 1)
        return {"train": (x_tr, y_tr), "test": (x_te, y_te)}
    from keras.src.datasets.cifar import (
        load_batch,  # Keras's own (restricted) unpickler of the batches
    )

    folder = paths[0]
    if name == "cifar10":
        batches = [load_batch(os.path.join(folder, f"data_batch_{i}")) for i in range(1, 6)]
        x_tr = np.concatenate([b[0] for b in batches])
        y_tr = np.concatenate([np.asarray(b[1]) for b in batches])
        x_te, y_te = load_batch(os.path.join(folder, "test_batch"))
    else:
        x_tr, y_tr = load_batch(os.path.join(folder, "train"), label_key="fine_labels")
        x_te, y_te = load_batch(os.path.join(folder, "test"), label_key="fine_labels")
    to_nhwc = (0, 2, 3, 1)  # the batches store channels first
    return {"train": (x_tr.transpose(to_nhwc), np.asarray(y_tr)), "test": (x_te.transpose(to_nhwc), np.asarray(y_te))}


def _load_keras(name: str, seed: int, val_share: float, download: bool) -> Dataset:
    """A ``keras.datasets`` set from Keras's cache (fetched by ``keras.datasets`` when missing and ``download``)."""
    spec = KERAS_FILES[name]
    paths = _find(name)
    if paths is None and download:
        import contextlib
        import importlib

        with contextlib.suppress(Exception):  # no network, proxy, ...: the message below says what to do
            importlib.import_module(f"keras.datasets.{name}").load_data()
        paths = _find(name)
    if paths is None:
        want = ", ".join(os.path.join(keras_cache_dir(), alts[0]) for alts in spec["files"])
        raise ValueError(
            f"dataset {name!r} is not in Keras's cache and could not be downloaded: place {want} there "
            f"(from {spec['origin']}; CIFAR archives extracted), or set KERAS_HOME to a folder holding "
            "datasets/ in that layout (run keras.datasets." + name + ".load_data() once on a machine with network)."
        )
    parts = _read_keras_files(name, paths)
    return finish_split(name, parts, seed, val_share, axes=spec["axes"], scale=spec["scale"])


__all__ = ["BUILTIN", "KERAS_DATASETS", "Dataset", "LabelColumnWarning", "finish_split", "generate", "load"]
