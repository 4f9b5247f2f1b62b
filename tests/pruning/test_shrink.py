"""``shrink`` / ``strip(model, shrink=True)``: dead channels removed, predictions identical.

Every comparison: ``np.testing.assert_allclose(small, original, rtol=1e-5, atol=1e-5)`` on a fixed
random batch (the removed channels' constants are folded into float32 biases, so the sums differ
only by rounding).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from kerasinit.pruning import masked_weights, prune_at_init, shrink, strip

RTOL = ATOL = 1e-5


def sizes(model: keras.Model) -> dict[str, int]:
    return {layer.name: layer.get_config().get("units", layer.get_config().get("filters"))
            for layer in model.layers if isinstance(layer, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D))}


def assert_same_predictions(small: keras.Model, model: keras.Model, x: np.ndarray) -> None:
    np.testing.assert_allclose(keras.ops.convert_to_numpy(small(x, training=False)),
                               keras.ops.convert_to_numpy(model(x, training=False)), rtol=RTOL, atol=ATOL)


def perturb(model: keras.Model, seed: int = 0) -> None:
    """Nonzero biases and BatchNorm statistics, so that dead channels output nonzero constants."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        v = keras.ops.convert_to_numpy(w)
        if "variance" in w.path:
            w.assign(np.abs(rng.normal(size=v.shape)).astype("float32") + 0.5)
        elif v.ndim == 1:
            w.assign((v + 0.3 * rng.normal(size=v.shape)).astype("float32"))


def mlp(functional: bool) -> keras.Model:
    keras.utils.set_random_seed(0)
    layers = [keras.layers.Dense(16, activation="relu"), keras.layers.Dropout(0.2), keras.layers.Dense(12),
              keras.layers.Activation("tanh"), keras.layers.Dense(5)]
    if not functional:
        return keras.Sequential([keras.Input((20,)), *layers])
    x = inp = keras.Input((20,))
    for layer in layers:
        x = layer(x)
    return keras.Model(inp, x)


@pytest.mark.parametrize("functional", [False, True])
def test_mlp_loses_half_its_hidden_units_with_identical_predictions(functional):
    model = mlp(functional)
    perturb(model)  # nonzero biases: the dead units' constants are folded into the next Dense's bias
    prune_at_init(model, 0.5, "magnitude", distribution="uniform", granularity="channel")
    small = strip(model, shrink=True)
    assert type(small) is type(model)
    assert list(sizes(small).values()) == [8, 6, 5]  # the output layer keeps its 5 units (2 of them dead)
    assert small.count_params() == (20 * 8 + 8) + (8 * 6 + 6) + (6 * 5 + 5) == 257
    assert model.count_params() == (20 * 16 + 16) + (16 * 12 + 12) + (12 * 5 + 5) == 605
    x = np.random.default_rng(1).normal(size=(7, 20)).astype("float32")
    assert_same_predictions(small, model, x)
    assert masked_weights(model)  # the original keeps its masks


def test_sequential_conv_bn_conv():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(8, 3, padding="same", activation="relu"), keras.layers.BatchNormalization(),
        keras.layers.Conv2D(12, 3, padding="same"), keras.layers.BatchNormalization(), keras.layers.ReLU(),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)])
    prune_at_init(model, 0.5, "magnitude", distribution="uniform", granularity="channel")
    small = strip(model, shrink=True)
    # zero biases and fresh BatchNorms: the dead filters output exactly 0, so they go even before a "same" Conv
    assert list(sizes(small).values()) == [4, 6, 4]
    assert small.count_params() == (27 * 4 + 4) + 4 * 4 + (36 * 6 + 6) + 6 * 4 + (6 * 4 + 4) == 402
    x = np.random.default_rng(2).normal(size=(5, 8, 8, 3)).astype("float32")
    assert_same_predictions(small, model, x)


def test_nonzero_constants_kept_before_a_same_conv_and_folded_elsewhere():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(8, 3, activation="relu"), keras.layers.BatchNormalization(),
        keras.layers.Conv2D(12, 3, padding="same"), keras.layers.BatchNormalization(), keras.layers.ReLU(),
        keras.layers.MaxPooling2D(), keras.layers.Flatten(), keras.layers.Dense(10, activation="tanh"),
        keras.layers.Dense(6, activation="relu"), keras.layers.Dense(3)])
    perturb(model)
    prune_at_init(model, 0.5, "magnitude", distribution="uniform", granularity="channel")
    plain = strip(model)
    small = shrink(plain)
    # conv 1 keeps its dead filters (a Conv with zero padding follows and they are nonzero constants);
    # conv 2's reach a Dense through BN/ReLU/pool/flatten and are folded into its bias; Dense 10 -> 5, 6 -> 3
    assert list(sizes(small).values()) == [8, 6, 5, 3, 3]
    assert small.count_params() < plain.count_params() // 2
    x = np.random.default_rng(0).normal(size=(5, 8, 8, 3)).astype("float32")
    assert_same_predictions(small, plain, x)
    assert_same_predictions(shrink(model), model, x)  # a masked model is stripped first


@pytest.mark.parametrize("padding, kept", [("valid", 3), ("same", 6), ("causal", 6)])
def test_conv1d_folds_constants_only_without_padding(padding, kept):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((12, 2)), keras.layers.Conv1D(6, 3, activation="sigmoid"),
                              keras.layers.Conv1D(4, 3, padding=padding, dilation_rate=2), keras.layers.GlobalMaxPooling1D()])
    perturb(model)
    prune_at_init(model, 0.5, "magnitude", distribution="uniform", granularity="channel", layers=[model.layers[0].name])
    small = strip(model, shrink=True)
    assert list(sizes(small).values()) == [kept, 4]  # sigmoid(bias) is never 0: removable only into a "valid" Conv
    x = np.random.default_rng(3).normal(size=(4, 12, 2)).astype("float32")
    assert_same_predictions(small, model, x)


def residual_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inp)
    y = keras.layers.Conv2D(8, 3, padding="same", name="branch_a")(x)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.ReLU()(y)
    y = keras.layers.Conv2D(8, 3, padding="same", name="branch_b")(y)
    z = keras.layers.Add()([x, y])
    z = keras.layers.GlobalAveragePooling2D()(z)
    z = keras.layers.Dense(10, activation="relu", name="head")(z)
    return keras.Model(inp, keras.layers.Dense(3, name="out")(z))


def test_functional_residual_shrinks_only_the_branch_interior():
    model = residual_model()
    prune_at_init(model, 0.5, "magnitude", distribution="uniform", granularity="channel")
    small = strip(model, shrink=True)
    # the stem fans out to the branch and the Add, branch_b meets the Add: both keep 8 filters
    assert sizes(small) == {"stem": 8, "branch_a": 4, "branch_b": 8, "head": 5, "out": 3}
    expected = (27 * 8 + 8) + (72 * 4 + 4) + 4 * 4 + (36 * 8 + 8) + (8 * 5 + 5) + (5 * 3 + 3)
    assert small.count_params() == expected == 891
    assert model.count_params() == 1547
    x = np.random.default_rng(4).normal(size=(3, 8, 8, 3)).astype("float32")
    assert_same_predictions(small, model, x)


def test_barriers_leave_channels_in_place():
    """Softmax mixes channels, a Concatenate merges, a shared layer and a model output are left alone."""
    keras.utils.set_random_seed(5)
    inp = keras.Input((6,))
    a = keras.layers.Dense(8, name="a")(inp)
    a = keras.layers.Activation("softmax")(a)
    b = keras.layers.Dense(8, name="b")(inp)
    c = keras.layers.Concatenate()([a, b])
    shared = keras.layers.Dense(16, activation="relu", name="shared")
    d = keras.layers.Dense(4, name="d")(shared(shared(c)))
    e = keras.layers.Dense(6, name="e")(inp)
    model = keras.Model(inp, [d, e, keras.layers.Dense(2, name="f")(e)])
    perturb(model)
    prune_at_init(model, 0.5, "magnitude", distribution="uniform", granularity="channel")
    small = strip(model, shrink=True)
    assert sizes(small) == {"a": 8, "b": 8, "shared": 16, "d": 4, "e": 6, "f": 2}
    assert small.count_params() == model.count_params()
    x = np.random.default_rng(5).normal(size=(4, 6)).astype("float32")
    for s, m in zip(small(x), model(x), strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(s), keras.ops.convert_to_numpy(m), rtol=RTOL, atol=ATOL)


def test_mobilenet_v2_shrinks_where_allowed_with_identical_outputs():
    """A model we did not write: channel masks on its Conv2D layers; predictions must not change."""
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), alpha=0.35, classes=10)
    perturb(model)
    convs = [layer.name for layer in model.layers if type(layer) is keras.layers.Conv2D]
    prune_at_init(model, 0.25, "magnitude", distribution="uniform", granularity="channel", layers=convs)
    small = strip(model, shrink=True)
    x = np.random.default_rng(6).normal(size=(2, 32, 32, 3)).astype("float32")
    assert_same_predictions(small, model, x)
    before, after = sizes(model), sizes(small)
    shrunk = {name for name in before if after[name] < before[name]}
    # Projections into an Add or a fan-out keep their filters; the two projections that feed a 1x1 expand conv
    # directly, and Conv_1 (-> BN -> ReLU6 -> GAP -> Dense), shrink. Expand convs (-> BN -> ReLU6 -> [pad] ->
    # DepthwiseConv -> BN -> ReLU6 -> project) shrink through the depthwise where their dead channels' constant
    # (random BN statistics here) is 0 after ReLU6; the others stay (zero padding would make them vary).
    # The 1x1 convs had no bias: they get one for the folded constants.
    expands = {layer.name for layer in model.layers if layer.name.endswith("_expand")}
    assert {"expanded_conv_project", "block_16_project", "Conv_1"} <= shrunk, shrunk
    assert shrunk - {"expanded_conv_project", "block_16_project", "Conv_1"} <= expands | {"Conv1"}, shrunk
    assert shrunk & expands, shrunk
    assert small.get_layer("block_1_expand").use_bias and small.get_layer("Conv_1").use_bias
    assert not small.get_layer("block_2_expand").use_bias
    print("mobilenet_v2 params", model.count_params(), "->", small.count_params())
    assert small.count_params() < model.count_params()


def test_zoo_resnet20_shrinks_the_inside_of_each_residual_branch():
    """kerasinit's ResNet-20 (BN after every conv, Add at the end of each block), random BN statistics."""
    from kerasinit.experiments.models import build

    model = build("resnet20", (32, 32, 3), 10, seed=0)
    perturb(model)
    prune_at_init(model, 0.5, "magnitude", distribution="uniform", granularity="channel")
    small = strip(model, shrink=True)
    x = np.random.default_rng(8).normal(size=(2, 32, 32, 3)).astype("float32")
    assert_same_predictions(small, model, x)
    before, after = sizes(model), sizes(small)
    shrunk = {name for name in before if after[name] < before[name]}
    # conv1 -> BN -> ReLU -> conv2 (3x3, "same"): the dead filters whose constant ReLU turns into 0 go;
    # conv2, the shortcuts and the stem feed an Add (or fan out) and keep every filter
    assert shrunk == {f"s{stage}b{block}_conv1" for stage in (1, 2, 3) for block in (1, 2, 3)}
    assert small.count_params() < model.count_params()


def test_saved_shrunk_model_loads_with_plain_keras(tmp_path):
    model = residual_model()
    prune_at_init(model, 0.5, "magnitude", distribution="uniform", granularity="channel")
    small = strip(model, shrink=True)
    assert "kerasinit" not in json.dumps(small.get_config())
    path = tmp_path / "small.keras"
    small.save(path)
    x = np.random.default_rng(7).normal(size=(3, 8, 8, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    script = f"""
        import sys, numpy as np, keras
        model = keras.saving.load_model({str(path)!r})
        np.save({str(tmp_path / 'y.npy')!r}, keras.ops.convert_to_numpy(model(np.load({str(tmp_path / 'x.npy')!r}))))
        assert not any(name.startswith("kerasinit") for name in sys.modules), "kerasinit was imported"
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=300,
                          env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), keras.ops.convert_to_numpy(model(x)), rtol=RTOL, atol=ATOL)


def test_bad_input():
    model = mlp(functional=False)
    with pytest.raises(ValueError, match="`shrink=True` builds a new, smaller model and needs `copy=True`"):
        strip(model, copy=False, shrink=True)
    with pytest.raises(TypeError, match="argument `shrink` must be True or False"):
        strip(model, shrink="yes")
    with pytest.raises(TypeError, match="argument `model` must be a keras.Model"):
        shrink(model.layers[0])

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(x)

    sub = Sub()
    sub(np.zeros((1, 4), "float32"))
    with pytest.raises(TypeError, match="must be a Sequential or functional keras.Model to shrink"):
        shrink(sub)
    with pytest.raises(TypeError, match="must be a Sequential or functional keras.Model to shrink"):
        strip(sub, shrink=True)
    with pytest.raises(ValueError, match="argument `model` is not built yet"):
        shrink(keras.Sequential([keras.layers.Dense(3)]))


def test_shrink_removes_channels_through_depthwise_and_zero_padding_in_mobilenetv2():
    """Issue 23: expand → BN → ReLU6 → (ZeroPadding) → depthwise → BN → ReLU6 → project loses the dead expand
    channels with their depthwise filters, the outputs unchanged (at initialization every constant is 0)."""
    from kerasinit import pruning

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(alpha=0.35, input_shape=(32, 32, 3), weights=None)
    names = pruning.shrinkable_layers(model)
    expands = [layer.name for layer in model.layers if layer.name.endswith("_expand")]
    # not the projections into Adds or fan-outs; the two that feed an expand conv directly are
    assert sorted(names) == sorted(["Conv1", "Conv_1", "expanded_conv_project", "block_16_project", *expands]), names
    pruning.prune(model, 0.5, layers=names, granularity="channel")
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
    plain, small = pruning.strip(model), pruning.strip(model, shrink=True)
    np.testing.assert_allclose(small.predict_on_batch(x), plain.predict_on_batch(x), atol=1e-6)
    for name in expands:  # each block's depthwise filters follow its expand convolution's kept channels
        block = name[: -len("_expand")]
        kept = small.get_layer(name).filters
        assert kept == round(plain.get_layer(name).filters * 0.5), (name, kept)
        assert small.get_layer(f"{block}_depthwise").kernel.shape[-2] == kept
        assert small.get_layer(f"{block}_project").kernel.shape[-2] == kept
    assert small.count_params() < 0.6 * plain.count_params(), (small.count_params(), plain.count_params())


def test_shrink_keeps_a_nonzero_constant_channel_behind_zero_padding():
    """A dead channel whose constant is nonzero (a bias) becomes position-dependent behind zero padding: kept."""
    from kerasinit import pruning

    keras.utils.set_random_seed(1)
    x_in = keras.Input((8, 8, 2))
    h = keras.layers.Conv2D(4, 1, name="expand")(x_in)
    h = keras.layers.ZeroPadding2D(1, name="pad")(h)
    h = keras.layers.DepthwiseConv2D(3, name="dw")(h)
    model = keras.Model(x_in, keras.layers.Conv2D(3, 1, name="project")(h))
    kernel = keras.ops.convert_to_numpy(model.get_layer("expand").kernel).copy()
    kernel[..., :2] = 0  # channels 0 and 1 dead
    model.get_layer("expand").kernel.assign(kernel)
    model.get_layer("expand").bias.assign(np.array([0.0, 0.5, 0.1, 0.2], "float32"))  # channel 1: constant 0.5
    small = pruning.shrink(model)
    assert small.get_layer("expand").filters == 3  # channel 0 (constant 0) removed, channel 1 kept
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 2)).astype("float32")
    np.testing.assert_allclose(small.predict_on_batch(x), model.predict_on_batch(x), atol=1e-5)
