"""The experiments' names and static facts, readable without Keras or NumPy (the command checks its
arguments with them before importing Keras).

- ``DATASETS`` (built-in datasets), ``DATASET_SHAPES`` (the shape of one of their samples), ``MODELS``
  (the zoo), ``IMAGE_MODELS`` (zoo models that need images), ``OPTIMIZERS`` and ``OPTIMIZER_ALIASES``;
  ``datasets.py`` and ``models.py`` take their names from here;
- ``closest`` / ``did_you_mean``: names nearest a misspelling; ``resolve_optimizer``: a spelling -> its name;
- ``sample_shape(dataset)``: a built-in's sample shape, or a ``.npz``/``.csv`` file's read from its
  headers only; ``model_dataset_mismatch`` / ``check_model_dataset``: a zoo model that needs images
  given vectors, refused with the datasets that fit.
"""

from __future__ import annotations

import os

from kerasinit._suggest import closest, did_you_mean

KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")
GENERATED = ("moons", "circles", "spiral")
#: the built-in datasets (``datasets.load`` names)
DATASETS = ("digits", *GENERATED, *KERAS_DATASETS)
#: the shape of one sample of each built-in dataset, as ``datasets.load`` returns it
DATASET_SHAPES: dict[str, tuple[int, ...]] = {
    "digits": (64,), "moons": (2,), "circles": (2,), "spiral": (2,),
    "mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3), "cifar100": (32, 32, 3),
}
FILE_SUFFIXES = (".npz", ".csv")
#: CSV columns taken as the label by name (case-insensitive), in this order of preference; ``y`` last
#: because it is also a coordinate's name (x, y, class)
LABEL_COLUMNS = ("label", "target", "class", "y")

#: the model zoo (``models.build`` names)
MODELS = ("lenet_300_100", "conv2", "conv4", "conv6", "resnet20", "vgg16", "mlp")
#: zoo models that need images: samples (height, width, channels) or (height, width)
IMAGE_MODELS = ("conv2", "conv4", "conv6", "resnet20", "vgg16")

#: ``experiments.training.make_optimizer`` names (sgd is SGD with momentum 0.9)
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
#: other spellings -> their name: Keras's class names (any case is accepted by ``resolve_optimizer``)
OPTIMIZER_ALIASES = {"SGD": "sgd", "Adam": "adam", "AdamW": "adamw", "RMSprop": "rmsprop"}


def resolve_optimizer(name: str) -> str:
    """The optimizer name (one of ``OPTIMIZERS``) that ``name`` spells: itself, an alias, in any case."""
    if not isinstance(name, str):
        raise TypeError(f"argument `optimizer` must be a string; received {type(name).__name__}.")
    spellings = {**{o: o for o in OPTIMIZERS}, **OPTIMIZER_ALIASES}
    found = {k.lower(): v for k, v in spellings.items()}.get(name.strip().lower())
    if found is None:
        raise ValueError(f"argument `optimizer` must be one of {', '.join(OPTIMIZERS)}; received {name!r}."
                         + did_you_mean(name, OPTIMIZERS))
    return found


def is_image_shape(shape: tuple[int, ...]) -> bool:
    """Samples an image model takes: (height, width, channels) or (height, width)."""
    return len(shape) in (2, 3)


def fitting_datasets() -> str:
    """What an image model can train on, in words."""
    images = [d for d in DATASETS if is_image_shape(DATASET_SHAPES[d])]
    return f"{', '.join(images)}, or an .npz whose x_train (or x) has shape (N, H, W, C) or (N, H, W)"


def image_mismatch(model: str, shape: tuple[int, ...], dataset: str | None = None) -> str | None:
    """Why zoo ``model`` cannot take samples of ``shape`` (None when it can, or is no image model)."""
    if model not in IMAGE_MODELS or is_image_shape(tuple(shape)):
        return None
    got = f"dataset {dataset!r} gives samples of shape {tuple(shape)}" if dataset else f"received {tuple(shape)}"
    return (f"{model} needs images (height, width, channels) or (height, width); {got}; "
            f"datasets that fit: {fitting_datasets()}.")


def sample_shape(dataset: str) -> tuple[int, ...] | None:
    """The shape of one sample of ``dataset`` without loading it: a built-in's from ``DATASET_SHAPES``,
    a ``.npz`` file's from its array headers (``x_train``, ``x`` or ``X``), a ``.csv`` file's from its
    header row (columns - 1: one is the label). None when unknown (other names, missing or unreadable files)."""
    if not isinstance(dataset, str | os.PathLike):
        return None
    text = os.fspath(dataset)
    key = text.lower()
    if key in DATASET_SHAPES:
        return DATASET_SHAPES[key]
    if not os.path.isfile(text):
        return None
    try:
        if key.endswith(".csv"):
            import csv

            with open(text, newline="", encoding="utf-8") as fh:
                header = next(csv.reader(fh), [])
            return (len(header) - 1,) if len(header) >= 2 else None
        if key.endswith(".npz"):
            return _npz_sample_shape(text)
    except (OSError, ValueError, UnicodeDecodeError, StopIteration):
        return None
    return None


def _npz_sample_shape(path: str) -> tuple[int, ...] | None:
    import zipfile

    import numpy as np  # only for a file: the built-in names stay NumPy-free

    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        member = next((f"{k}.npy" for k in ("x_train", "x", "X") if f"{k}.npy" in names), None)
        if member is None:
            return None
        with archive.open(member) as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, _ = read(fh)
    return tuple(int(d) for d in shape[1:]) if len(shape) >= 2 else None


def model_dataset_mismatch(model: str, dataset: str) -> str | None:
    """Why zoo ``model`` cannot train on ``dataset`` (a built-in name or a .npz/.csv path), from static
    facts and file headers; None when it can or when that is only known once loaded (e.g. ``.keras`` models)."""
    if not isinstance(model, str) or model not in IMAGE_MODELS:
        return None
    shape = sample_shape(dataset)
    return None if shape is None else image_mismatch(model, shape, os.fspath(dataset))


def check_model_dataset(model: str, dataset: str) -> None:
    """Raise a ValueError saying :func:`model_dataset_mismatch` when zoo ``model`` cannot take ``dataset``."""
    problem = model_dataset_mismatch(model, dataset)
    if problem is not None:
        raise ValueError(f"arguments `model` and `dataset`: {problem}")


__all__ = ["DATASETS", "DATASET_SHAPES", "FILE_SUFFIXES", "GENERATED", "IMAGE_MODELS", "KERAS_DATASETS",
           "LABEL_COLUMNS", "MODELS", "OPTIMIZERS", "OPTIMIZER_ALIASES", "check_model_dataset", "closest",
           "did_you_mean", "fitting_datasets", "image_mismatch", "is_image_shape", "model_dataset_mismatch",
           "resolve_optimizer", "sample_shape"]
