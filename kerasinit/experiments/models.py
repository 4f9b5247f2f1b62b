"""The model zoo of the lottery-ticket literature, and fresh copies of any Keras model.

``build(name, input_shape, num_classes, seed=None, **options)``:

| name | architecture | parameters |
|---|---|---|
| ``lenet_300_100`` | Dense 300-100-classes, ReLU (LeCun et al. 1998; Frankle & Carbin 2019) | 266,610 on 28x28x1 |
| ``conv2`` / ``conv4`` / ``conv6`` | [2/4/6 3x3 convs 64-64(-128-128(-256-256)), max-pool after each pair], Dense 256-256-classes (Frankle & Carbin 2019, Fig. 2) | 4.30M / 2.43M / 2.26M on 32x32x3, 10 classes |
| ``resnet20`` | He et al. 2016 CIFAR ResNet: 3x3 conv 16, 3 stages x 3 basic blocks (16, 32, 64 filters, BN, 1x1 projection shortcuts), global average pool | 0.27M on 32x32x3 |
| ``vgg16`` | CIFAR VGG-16 (13 3x3 convs with BN, 5 max-pools, global pool, one Dense; Frankle et al. 2020) | 14.7M on 32x32x3 |
| ``mlp`` | ``depth`` Dense(``width``, ``activation``) and a softmax output | 5x100 on 64 inputs: 47,910 |

The image models (``conv2``..., ``resnet20``, ``vgg16``: ``catalog.IMAGE_MODELS``) take samples
(height, width, channels), or (height, width) given a channel axis by a first ``Reshape``; vectors are
refused with the datasets that fit. The MLPs flatten whatever sample shape they get (``Flatten`` first).

Every kernel is drawn by ``kernel_initializer`` (Glorot normal for LeNet/Conv-k as in Frankle &
Carbin, He normal for ResNet/VGG), each layer with its own seed ``seed * 1000 + i`` when ``seed`` is
given; biases are zero. Layers are named (``hidden_1``..., ``conv_1``..., ``output``).

:func:`instantiate` turns what the experiments accept (a zoo name, a ``.keras`` path, a
``keras.Model`` or a zero-argument callable) into a fresh, built model drawn with a seed.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np

from kerasinit.experiments.catalog import MODELS, image_mismatch

ZOO = MODELS
ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "selu", "gelu", "swish", "leaky_relu", "linear")


def seeded(init: Any, seed: int | None) -> Any:
    """A copy of initializer ``init`` (name or instance) with integer ``seed`` (unseeded-by-design ones as they are)."""
    init = keras.initializers.get(init) if isinstance(init, str | dict) else init
    config = init.get_config()
    if seed is None or "seed" not in config:
        return init
    return type(init).from_config({**config, "seed": seed})


class _Layers:
    """Names layers and hands out per-layer seeded kernel initializers."""

    def __init__(self, init: Any, seed: int | None) -> None:
        self.init, self.seed, self.count = init, seed, 0

    def kernel(self) -> Any:
        self.count += 1
        return seeded(self.init, None if self.seed is None else self.seed * 1000 + self.count - 1)

    def dense(self, units: int, name: str, activation: str | None = "relu") -> keras.layers.Dense:
        return keras.layers.Dense(units, activation=activation, kernel_initializer=self.kernel(), name=name)

    def conv(self, filters: int, name: str, kernel_size: int = 3, strides: int = 1, activation: str | None = "relu",
             bias: bool = True) -> keras.layers.Conv2D:
        return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same", activation=activation,
                                   use_bias=bias, kernel_initializer=self.kernel(), name=name)


def _inputs(input_shape: tuple[int, ...], flat: bool) -> tuple[Any, Any]:
    inputs = keras.Input(input_shape, name="x")
    return inputs, (keras.layers.Flatten(name="flatten")(inputs) if flat and len(input_shape) > 1 else inputs)


def _mlp(input_shape: tuple[int, ...], num_classes: int, mk: _Layers, widths: list[int], activation: str,
         name: str) -> keras.Model:
    inputs, h = _inputs(input_shape, flat=True)
    for i, w in enumerate(widths):
        h = mk.dense(w, f"hidden_{i + 1}", activation)(h)
    return keras.Model(inputs, mk.dense(num_classes, "output", "softmax")(h), name=name)


def _image_inputs(input_shape: tuple[int, ...]) -> tuple[Any, Any]:
    """The input of an image model; (height, width) samples get a channel axis (``Reshape``, no weights)."""
    inputs = keras.Input(input_shape, name="x")
    if len(input_shape) == 2:
        return inputs, keras.layers.Reshape((*input_shape, 1), name="add_channel")(inputs)
    return inputs, inputs


def _conv_k(input_shape: tuple[int, ...], num_classes: int, mk: _Layers, pairs: int) -> keras.Model:
    inputs, h = _image_inputs(input_shape)
    n = 0
    for p in range(pairs):
        for _ in range(2):
            n += 1
            h = mk.conv(64 * 2 ** p, f"conv_{n}")(h)
        h = keras.layers.MaxPooling2D(2, name=f"pool_{p + 1}")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    h = mk.dense(256, "hidden_1")(h)
    h = mk.dense(256, "hidden_2")(h)
    return keras.Model(inputs, mk.dense(num_classes, "output", "softmax")(h), name=f"conv{2 * pairs}")


def _resnet20(input_shape: tuple[int, ...], num_classes: int, mk: _Layers) -> keras.Model:
    inputs, h = _image_inputs(input_shape)
    bn = keras.layers.BatchNormalization
    h = keras.layers.ReLU()(bn(name="bn_stem")(mk.conv(16, "conv_stem", activation=None, bias=False)(h)))
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            tag = f"s{stage + 1}b{block + 1}"
            strides = 2 if stage > 0 and block == 0 else 1
            y = mk.conv(filters, f"{tag}_conv1", strides=strides, activation=None, bias=False)(h)
            y = keras.layers.ReLU()(bn(name=f"{tag}_bn1")(y))
            y = bn(name=f"{tag}_bn2")(mk.conv(filters, f"{tag}_conv2", activation=None, bias=False)(y))
            if strides != 1 or h.shape[-1] != filters:  # projection shortcut (1x1 conv + BN)
                h = bn(name=f"{tag}_bn_short")(mk.conv(filters, f"{tag}_short", 1, strides, None, False)(h))
            h = keras.layers.ReLU()(keras.layers.Add(name=f"{tag}_add")([h, y]))
    h = keras.layers.GlobalAveragePooling2D(name="pool")(h)
    return keras.Model(inputs, mk.dense(num_classes, "output", "softmax")(h), name="resnet20")


VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def _vgg16(input_shape: tuple[int, ...], num_classes: int, mk: _Layers) -> keras.Model:
    inputs, h = _image_inputs(input_shape)
    n, p = 0, 0
    for item in VGG16:
        if item == "M":
            p += 1
            h = keras.layers.MaxPooling2D(2, padding="same", name=f"pool_{p}")(h)
        else:
            n += 1
            h = mk.conv(int(item), f"conv_{n}", activation=None)(h)
            h = keras.layers.ReLU()(keras.layers.BatchNormalization(name=f"bn_{n}")(h))
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inputs, mk.dense(num_classes, "output", "softmax")(h), name="vgg16")


def build(name: str, input_shape: tuple[int, ...] | int, num_classes: int, seed: int | None = None,
          **options: Any) -> keras.Model:
    """A zoo model (see the module table) for ``input_shape`` and ``num_classes``.

    ``options``: ``kernel_initializer`` (any model); ``depth``, ``width``, ``activation`` (``mlp``).
    """
    from kerasinit._validation import check_choice, check_int

    check_choice("name", name, ZOO)
    shape = (input_shape,) if isinstance(input_shape, int) else tuple(int(d) for d in input_shape)
    check_int("num_classes", num_classes, 2)
    problem = image_mismatch(name, shape)
    if problem is not None:
        raise ValueError(f"argument `input_shape`: {problem}")
    defaults = {"resnet20": "he_normal", "vgg16": "he_normal", "mlp": "glorot_uniform"}
    init = options.pop("kernel_initializer", defaults.get(name, "glorot_normal"))
    from kerasinit.initializers.registry import get

    mk = _Layers(get(init), seed)
    allowed = {"mlp": {"depth", "width", "activation"}}.get(name, set())
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"build({name!r}): unknown options {sorted(unknown)}; allowed: "
                         f"{sorted(allowed | {'kernel_initializer'})}.")
    if name == "lenet_300_100":
        return _mlp(shape, num_classes, mk, [300, 100], "relu", "lenet_300_100")
    if name == "mlp":
        depth, width = check_int("depth", options.get("depth", 5), 1), check_int("width", options.get("width", 100), 1)
        activation = check_choice("activation", options.get("activation", "relu"), ACTIVATIONS)
        return _mlp(shape, num_classes, mk, [width] * depth, activation, "mlp")
    if name.startswith("conv"):
        return _conv_k(shape, num_classes, mk, int(name[4:]) // 2)
    return _resnet20(shape, num_classes, mk) if name == "resnet20" else _vgg16(shape, num_classes, mk)


# -- fresh copies of any model -----------------------------------------------------------------------------


def _reseed(config: Any, seed: int, counter: list[int]) -> Any:
    """``config`` with every serialized initializer that takes a seed given ``seed * 1000 + i``."""
    if isinstance(config, list):
        return [_reseed(c, seed, counter) for c in config]
    if not isinstance(config, dict):
        return config
    out = {}
    for key, value in config.items():
        inner = value.get("config") if isinstance(value, dict) else None
        if key.endswith("_initializer") and isinstance(inner, dict) and "seed" in inner:
            out[key] = {**value, "config": {**inner, "seed": seed * 1000 + counter[0]}}
            counter[0] += 1
        else:
            out[key] = _reseed(value, seed, counter)
    return out


def _built(model: keras.Model, input_shape: tuple[int, ...] | None) -> keras.Model:
    if not model.built:
        if input_shape is None:
            raise ValueError(f"argument `model`: {model.name!r} is not built and no input shape is known; build it.")
        model(np.zeros((1, *input_shape), "float32"))
    return model


def clone(model: keras.Model, seed: int, input_shape: tuple[int, ...] | None = None,
          kernel_initializer: Any = None) -> keras.Model:
    """A fresh copy of ``model``'s architecture, every weight re-drawn from its initializers with ``seed``.

    Sequential and functional models are cloned layer by layer (``keras.models.clone_model``) with
    each seeded initializer given ``seed * 1000 + i``; ``kernel_initializer`` replaces every kernel
    initializer. A subclassed model is rebuilt with ``type(model).from_config(model.get_config())``:
    its ``get_config()`` must return its constructor arguments (Keras's rule for saving
    subclassed models); a clone that fails or whose weights differ in shape raises a ValueError
    saying so. Unseeded initializers draw after ``keras.utils.set_random_seed(seed)``.
    """
    keras.utils.set_random_seed(seed)
    counter = [0]

    def config_of(config: dict[str, Any]) -> dict[str, Any]:
        config = copy.deepcopy(config)
        if kernel_initializer is not None:
            config = _swap_kernels(config, kernel_initializer)
        return _reseed(config, seed, counter)

    if isinstance(model, keras.Sequential) or getattr(model, "_is_graph_network", False) or \
            type(model).__name__ == "Functional":
        fresh = keras.models.clone_model(model, clone_function=lambda layer: type(layer).from_config(
            config_of(layer.get_config())))
    else:
        try:
            fresh = type(model).from_config(config_of(model.get_config()))
        except Exception as exc:  # noqa: BLE001 - any failure of a user's from_config
            raise ValueError(_clone_help(model, f"from_config failed: {exc}")) from exc
    fresh = _built(fresh, input_shape or _input_shape(model))
    want = [tuple(v.shape) for v in model.weights]
    got = [tuple(v.shape) for v in fresh.weights]
    if want != got:
        raise ValueError(_clone_help(model, f"the clone's weights have shapes {got[:4]}... instead of {want[:4]}..."))
    return fresh


def _clone_help(model: keras.Model, problem: str) -> str:
    return (f"argument `model`: cannot clone subclassed model {type(model).__name__!r} ({problem}). Give the class a "
            "get_config() returning its constructor arguments (e.g. {**super().get_config(), 'units': self.units}), "
            "or pass a zero-argument function that builds a fresh model instead.")


def _swap_kernels(config: Any, init: Any) -> Any:
    """Every ``kernel_initializer`` (and ``depthwise``/``pointwise``/``recurrent``) in ``config`` set to ``init``."""
    keys = ("kernel_initializer", "depthwise_initializer", "pointwise_initializer", "recurrent_initializer",
            "embeddings_initializer")
    if isinstance(config, list):
        return [_swap_kernels(c, init) for c in config]
    if not isinstance(config, dict):
        return config
    return {k: keras.initializers.serialize(init) if k in keys and v is not None else _swap_kernels(v, init)
            for k, v in config.items()}


def _input_shape(model: keras.Model) -> tuple[int, ...] | None:
    try:
        shape = model.inputs[0].shape
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    return tuple(int(d) for d in shape[1:]) if all(d is not None for d in shape[1:]) else None


def describe_spec(model: Any) -> str:
    """A JSON-friendly name for what the user passed as ``model`` (kept in the results' settings)."""
    if isinstance(model, str | os.PathLike):
        return os.fspath(model)
    if isinstance(model, keras.Model):
        return f"{type(model).__name__}:{model.name}"
    return getattr(model, "__qualname__", type(model).__name__)


def instantiate(model: Any, input_shape: tuple[int, ...], num_classes: int, seed: int,
                options: Mapping[str, Any] | None = None, kernel_initializer: Any = None) -> keras.Model:
    """A fresh model drawn with ``seed`` from ``model``: a zoo name (built for ``input_shape`` and
    ``num_classes``, with ``options``), a ``.keras`` file (its architecture), a ``keras.Model``
    (:func:`clone`) or a zero-argument callable (called after ``keras.utils.set_random_seed(seed)``).
    ``kernel_initializer`` replaces every kernel initializer (``run_compare``)."""
    if isinstance(model, str | os.PathLike) and os.fspath(model).endswith(".keras"):
        if not os.path.isfile(model):
            raise ValueError(f"argument `model`: no such file {os.fspath(model)!r}.")
        model = keras.models.load_model(model, compile=False)
    if isinstance(model, str):
        opts = dict(options or {})
        if kernel_initializer is not None:
            opts["kernel_initializer"] = kernel_initializer
        return build(model, input_shape, num_classes, seed, **opts)
    if isinstance(model, keras.Model):
        return clone(model, seed, input_shape, kernel_initializer)
    if callable(model):
        keras.utils.set_random_seed(seed)
        fresh = model()
        if not isinstance(fresh, keras.Model):
            raise TypeError(f"argument `model`: the callable returned {type(fresh).__name__}, not a keras.Model.")
        fresh = _built(fresh, input_shape)
        return clone(fresh, seed, input_shape, kernel_initializer) if kernel_initializer is not None else fresh
    raise TypeError(f"argument `model` must be a zoo name ({', '.join(ZOO)}), a .keras file, a keras.Model or a "
                    f"zero-argument callable returning one; received {type(model).__name__}.")


def model_weights(model: keras.Model) -> dict[str, np.ndarray]:
    """Every weight as NumPy, keyed ``"<index>:<path>"`` (positions match across fresh copies)."""
    from kerasinit._arrays import to_numpy

    return {f"{i}:{v.path}": to_numpy(v).copy() for i, v in enumerate(model.weights)}


def assign_weights(model: keras.Model, weights: Mapping[str, np.ndarray] | list[np.ndarray]) -> None:
    """Set every weight from :func:`model_weights` output (matched by position and shape)."""
    values = list(weights.values()) if isinstance(weights, Mapping) else list(weights)
    if len(values) != len(model.weights):
        raise ValueError(f"expected {len(model.weights)} weight arrays, received {len(values)}.")
    for v, value in zip(model.weights, values, strict=True):
        v.assign(value)


Builder = Callable[[], keras.Model]

__all__ = ["ACTIVATIONS", "ZOO", "assign_weights", "build", "clone", "describe_spec", "instantiate", "model_weights",
           "seeded"]
