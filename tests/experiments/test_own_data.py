"""Your own data (issue 22): image .npz files keep their shape and fit both MLPs and conv nets, .npy is
refused with what to do, a CSV's label column is named or found and recorded, a model/dataset mismatch
lists the datasets that fit, and the keras-free catalog checks names before Keras is imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pandas as pd
import pytest

from kerasinit.experiments.datasets import BUILTIN, load
from kerasinit.experiments.models import ZOO, build


def _images(n: int, shape: tuple[int, ...], n_classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Tiny separable images: class k lights up row k (plus noise), integer pixels 0..16 like digits."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    x = rng.integers(0, 4, size=(n, *shape)).astype(np.float64)
    for k in range(n_classes):
        x[y == k, k] += 12.0
    return x, y


# -- .npz keeps the sample shape -------------------------------------------------------------------------


def test_image_npz_keeps_its_shape_and_equals_the_flat_file_reshaped(tmp_path):
    x, y = _images(100, (8, 8, 1))
    np.savez(tmp_path / "img.npz", x_train=x[:80], y_train=y[:80], x_test=x[80:], y_test=y[80:])
    np.savez(tmp_path / "flat.npz", x_train=x[:80].reshape(80, -1), y_train=y[:80], x_test=x[80:].reshape(20, -1),
             y_test=y[80:])
    img, flat = load(tmp_path / "img.npz", seed=1), load(tmp_path / "flat.npz", seed=1)
    assert img.input_shape == (8, 8, 1) and flat.input_shape == (64,)
    assert img.n_features == 64 and "8x8x1" in str(img)
    # the same per-pixel standardization as before, only not flattened (tolerance: float32 rounding)
    for split in ("x_train", "x_val", "x_test"):
        a, b = getattr(img, split), getattr(flat, split)
        assert a.dtype == np.float32
        np.testing.assert_allclose(a.reshape(len(a), -1), b, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(img.y_val, flat.y_val)
    # an MLP flattens images itself: the same seed gives the same function on both files
    on_images, on_vectors = build("mlp", img.input_shape, 3, seed=7), build("mlp", flat.input_shape, 3, seed=7)
    np.testing.assert_allclose(on_images.predict(img.x_test, verbose=0), on_vectors.predict(flat.x_test, verbose=0),
                               rtol=0, atol=1e-6)
    # x/y keys and grayscale (N, H, W) samples stay images too
    np.savez(tmp_path / "gray.npz", x=x[..., 0], y=y)
    gray = load(tmp_path / "gray.npz")
    assert gray.input_shape == (8, 8) and sum(gray.sizes().values()) == 100


def test_npz_splits_with_different_image_shapes_are_refused(tmp_path):
    x, y = _images(40, (8, 8, 1))
    np.savez(tmp_path / "mixed.npz", x_train=x[:30], y_train=y[:30], x_test=x[30:, :4], y_test=y[30:])
    with pytest.raises(ValueError, match=r"mixed\.npz: splits have different sample shapes"):
        load(tmp_path / "mixed.npz")


@pytest.mark.parametrize("shape", [(8, 8, 1), (8, 8)])
def test_image_npz_trains_with_mlp_lenet_and_conv4(tmp_path, shape):
    x, y = _images(96, shape)
    np.savez(tmp_path / "img.npz", x=x, y=y)
    ds = load(tmp_path / "img.npz")
    for name in ("mlp", "lenet_300_100", "conv4"):
        model = build(name, ds.input_shape, ds.n_classes, seed=0)
        assert tuple(model.inputs[0].shape[1:]) == shape
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        keras.utils.set_random_seed(0)  # the shuffling
        hist = model.fit(ds.x_train, ds.y_train, epochs=3, batch_size=16, verbose=0)
        assert np.isfinite(hist.history["loss"]).all()
        _, acc = model.evaluate(ds.x_test, ds.y_test, verbose=0)
        # the classes differ by a bright row: far above chance (1/3) after 3 epochs on 57 samples
        assert acc >= 0.8, (name, acc)


def test_npy_is_refused_with_what_to_do(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((12, 8, 8, 1)))
    with pytest.raises(ValueError, match=r"x\.npy.*one array of shape \(12, 8, 8, 1\).*np\.savez") as info:
        load(tmp_path / "x.npy")
    assert "x_train=" in str(info.value) and "y=" in str(info.value)


# -- CSV: the label column ------------------------------------------------------------------------------


def _pixels_csv(path, first: str | None = "class", last: str | None = None, n: int = 60) -> pd.DataFrame:
    x, y = _images(n, (8,))
    frame = pd.DataFrame(x.astype(int), columns=[f"p{i}" for i in range(8)])
    if first:
        frame.insert(0, first, y)
    if last:
        frame[last] = y
    frame.to_csv(path, index=False)
    return frame


def test_csv_label_named_class_in_first_column_is_found_by_name(tmp_path):
    _pixels_csv(tmp_path / "px.csv")
    ds = load(tmp_path / "px.csv")
    assert ds.n_classes == 3 and ds.feature_names == tuple(f"p{i}" for i in range(8))
    assert (ds.label_column, ds.label_rule) == ("class", "found by name")
    assert "label column: class (found by name)" in str(ds)


def test_csv_label_argument_names_the_column(tmp_path):
    frame = _pixels_csv(tmp_path / "k.csv", first="kind")
    ds = load(tmp_path / "k.csv", label="kind")
    assert (ds.label_column, ds.label_rule, ds.n_classes) == ("kind", "given", 3)
    assert "kind" not in ds.feature_names and len(ds.feature_names) == 8
    frame["group"] = np.arange(len(frame)) % 2
    frame.to_csv(tmp_path / "k.csv", index=False)
    ds2 = load(tmp_path / "k.csv", label="group")  # any column can be the label; the others are the features
    assert (ds2.label_column, ds2.n_classes) == ("group", 2) and "kind" in ds2.feature_names


def test_csv_label_that_is_not_a_column_lists_the_closest_columns_first(tmp_path):
    _pixels_csv(tmp_path / "px.csv")
    with pytest.raises(ValueError, match=r"argument `label`: 'clas' is not a column of px\.csv") as info:
        load(tmp_path / "px.csv", label="clas")
    listed = str(info.value).split("closest first: ")[1]
    assert listed.startswith("class, ")
    assert all(f"p{i}" in listed for i in range(8))  # 9 columns: all listed
    with pytest.raises(TypeError, match="argument `label` must be a column name"):
        load(tmp_path / "px.csv", label=3)


def test_label_for_something_that_is_not_a_csv_is_refused(tmp_path):
    x, y = _images(40, (4,))
    np.savez(tmp_path / "a.npz", x=x, y=y)
    with pytest.raises(ValueError, match="argument `label` names a CSV column"):
        load(tmp_path / "a.npz", label="y")
    with pytest.raises(ValueError, match="argument `label` names a CSV column"):
        load("moons", label="y")


def test_csv_without_a_label_name_takes_the_last_column_and_says_so(tmp_path):
    _pixels_csv(tmp_path / "last.csv", first=None, last="kind")
    with pytest.warns(UserWarning, match=r"last\.csv: no column named label, target, class or y; using the last "
                                         r"column 'kind' as the label"):
        ds = load(tmp_path / "last.csv")
    assert ds.label_column == "kind" and ds.label_rule.startswith("last column")
    assert "label column: kind (last column" in str(ds)


def test_csv_last_column_failure_names_the_label_column(tmp_path):
    # the file: the label first under an unrecognized name, pixels after it; the last pixel is no label
    frame = _pixels_csv(tmp_path / "issue.csv", first="digit")
    frame["p7"] = np.arange(len(frame)) % 30  # 30 values, 2 samples each: too few for a stratified split
    frame.to_csv(tmp_path / "issue.csv", index=False)
    with pytest.raises(ValueError, match=r"label column 'p7' \(last column.*`label`"), pytest.warns(UserWarning):
        load(tmp_path / "issue.csv")
    assert load(tmp_path / "issue.csv", label="digit").n_classes == 3


def test_csv_with_two_label_like_names_prefers_label_target_class_over_y_and_says_so(tmp_path):
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x": rng.normal(size=60), "y": rng.normal(size=60), "class": np.arange(60) % 2})
    frame.to_csv(tmp_path / "pts.csv", index=False)
    with pytest.warns(UserWarning, match=r"'class' and 'y' could both be the label; using 'class'"):
        ds = load(tmp_path / "pts.csv")
    assert ds.label_column == "class" and ds.feature_names == ("x", "y") and ds.is_2d
    assert ds.label_rule == "found by name, over 'y'"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load(tmp_path / "pts.csv", label="class").label_rule == "given"


# -- model/dataset mismatch ----------------------------------------------------------------------------


FIT = "datasets that fit: mnist, fashion_mnist, cifar10, cifar100, or an .npz"


@pytest.mark.parametrize("name", ["conv2", "conv4", "conv6", "resnet20", "vgg16"])
def test_image_models_on_vectors_list_the_datasets_that_fit(name):
    with pytest.raises(ValueError, match=rf"argument `input_shape`: {name} needs images \(height, width, channels\) "
                                         rf"or \(height, width\); received \(64,\); {FIT}"):
        build(name, (64,), 10)


def test_check_model_dataset_agrees_with_the_builder_and_the_loaded_shapes():
    from kerasinit.experiments import catalog

    assert catalog.DATASETS == BUILTIN and catalog.MODELS == ZOO
    assert set(catalog.DATASET_SHAPES) == set(catalog.DATASETS) and set(catalog.IMAGE_MODELS) < set(ZOO)
    for data in ("digits", "moons"):
        assert load(data).input_shape == catalog.DATASET_SHAPES[data]
    for model in ZOO:
        for data in catalog.DATASETS:
            shape = catalog.DATASET_SHAPES[data]
            message = catalog.model_dataset_mismatch(model, data)
            assert (message is not None) == (model in catalog.IMAGE_MODELS and len(shape) == 1), (model, data)
    with pytest.raises(ValueError, match=rf"conv4 needs images .*; dataset 'digits' gives samples of shape \(64,\); "
                                         rf"{FIT}"):
        catalog.check_model_dataset("conv4", "digits")
    catalog.check_model_dataset("conv4", "cifar10")
    catalog.check_model_dataset("mlp", "digits")
    catalog.check_model_dataset("my_model.keras", "digits")  # not a zoo name: checked when built
    build("conv2", catalog.DATASET_SHAPES["mnist"], 10)  # what the catalog lets through builds


def test_check_model_dataset_reads_file_headers_only(tmp_path):
    from kerasinit.experiments import catalog

    x, y = _images(20, (8, 8, 1))
    np.savez(tmp_path / "img.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    np.savez(tmp_path / "flat.npz", X=x.reshape(20, -1), y=y)
    _pixels_csv(tmp_path / "px.csv")
    assert catalog.sample_shape(str(tmp_path / "img.npz")) == (8, 8, 1)
    assert catalog.sample_shape(str(tmp_path / "flat.npz")) == (64,)
    assert catalog.sample_shape(str(tmp_path / "px.csv")) == (8,)
    assert catalog.sample_shape(str(tmp_path / "absent.npz")) is None
    assert catalog.sample_shape("imagenet") is None
    catalog.check_model_dataset("conv4", str(tmp_path / "img.npz"))
    for bad in ("flat.npz", "px.csv"):
        with pytest.raises(ValueError, match=f"dataset '.*{bad}' gives samples of shape"):
            catalog.check_model_dataset("resnet20", str(tmp_path / bad))


def test_catalog_refuses_a_mismatch_fast_without_importing_keras_or_numpy():
    code = textwrap.dedent(
        """
        import sys, time
        start = time.perf_counter()
        from kerasinit.experiments.catalog import check_model_dataset
        try:
            check_model_dataset("conv4", "digits")
        except ValueError as err:
            message = str(err)
        elapsed = time.perf_counter() - start
        print(elapsed, "keras" in sys.modules, "numpy" in sys.modules)
        print(message)
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, message = proc.stdout.splitlines()[:2]
    elapsed, keras_loaded, numpy_loaded = first.split()
    assert (keras_loaded, numpy_loaded) == ("False", "False")
    assert float(elapsed) < 0.5, elapsed
    assert "conv4 needs images" in message and FIT in message


# -- names for "did you mean" --------------------------------------------------------------------------


def test_closest_names_and_optimizers():
    from kerasinit.experiments import catalog
    from kerasinit.experiments.training import OPTIMIZERS

    assert catalog.OPTIMIZERS == OPTIMIZERS
    assert catalog.closest("mnsit", catalog.DATASETS)[0] == "mnist"
    assert catalog.closest("conv5", catalog.MODELS, n=3) == ["conv2", "conv4", "conv6"]  # ties: catalog order
    assert catalog.closest("ResNet", catalog.MODELS)[0] == "resnet20"
    assert len(catalog.closest("x", catalog.MODELS, n=3, cutoff=0)) == 3  # cutoff 0: all, ranked
    assert catalog.did_you_mean("fashion-mnist", catalog.DATASETS) == " Did you mean 'fashion_mnist'?"
    assert catalog.did_you_mean("zzzz", catalog.DATASETS) == ""
    for spelled, name in (("Adam", "adam"), ("SGD", "sgd"), ("RMSprop", "rmsprop"), ("adamw", "adamw"),
                          ("AdamW", "adamw")):
        assert catalog.resolve_optimizer(spelled) == name
    assert set(catalog.OPTIMIZER_ALIASES.values()) <= set(catalog.OPTIMIZERS)
    with pytest.raises(ValueError, match=r"argument `optimizer` must be one of sgd, adam, adamw, rmsprop; "
                                         r"received 'adma'\. Did you mean 'adam'\?"):
        catalog.resolve_optimizer("adma")
    with pytest.raises(ValueError, match=r"one of digits, .*received 'mnsit'.*Did you mean 'mnist'\?"):
        load("mnsit")


@pytest.mark.slow
def test_image_npz_with_conv4_on_jax_and_torch(tmp_path):
    x, y = _images(48, (8, 8))
    np.savez(tmp_path / "img.npz", x=x, y=y)
    code = textwrap.dedent(
        f"""
        import keras, numpy as np
        from kerasinit.experiments.datasets import load
        from kerasinit.experiments.models import build
        ds = load({str(tmp_path / "img.npz")!r})
        model = build("conv4", ds.input_shape, ds.n_classes, seed=0)  # (8, 8) samples: a channel axis added
        model.compile("adam", "sparse_categorical_crossentropy")
        loss = model.fit(ds.x_train, ds.y_train, epochs=1, batch_size=16, verbose=0).history["loss"][-1]
        assert np.isfinite(loss), loss
        print(keras.backend.backend(), ds.input_shape)
        """
    )
    for backend in ("jax", "torch"):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.split()[-3:] == [backend, "(8,", "8)"]
