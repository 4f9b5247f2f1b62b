"""kerasinit.experiments.datasets: bundled digits, generated 2-D sets, keras.datasets from Keras's cache,
user .npz/.csv files and arrays, and their errors. Nothing downloads."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from kerasinit.experiments.datasets import BUILTIN, Dataset, generate, keras_cache_dir, load


def _class_shares(y: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(y, minlength=n_classes) / len(y)


def test_digits_splits_standardization_and_stratification():
    ds = load("digits")
    assert isinstance(ds, Dataset)
    assert (ds.n_features, ds.n_classes, ds.is_2d) == (64, 10, False)
    sizes = ds.sizes()
    assert sum(sizes.values()) == 1797
    assert sizes == {"train": 1079, "val": 359, "test": 359}
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    # standardized with the training statistics: mean 0, std 1 (constant pixels stay 0)
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0.0, atol=1e-5)
    stds = ds.x_train.std(axis=0)
    assert np.all((np.abs(stds - 1.0) < 1e-4) | (stds == 0.0))
    assert (stds == 0).sum() >= 1  # digits has blank corner pixels
    # ... and not with the test statistics (the test set is only transformed)
    assert not np.allclose(ds.x_test.mean(axis=0), 0.0, atol=1e-3)
    # stratified: each split has the class shares of the whole set within one sample per class
    full = _class_shares(np.concatenate([ds.y_train, ds.y_val, ds.y_test]), 10)
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert np.all(np.abs(_class_shares(y, 10) - full) <= 1.0 / len(y) + 1e-9)
    # the splits are disjoint: no test row also appears in train
    train_rows = {row.tobytes() for row in ds.x_train}
    assert sum(row.tobytes() in train_rows for row in ds.x_test) < 5  # digits has a few duplicate images


def test_digits_split_fixed_and_seeded():
    a, b, c = load("digits"), load("digits"), load("digits", seed=1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)


@pytest.mark.parametrize("name", ["moons", "circles", "spiral"])
def test_generated_shapes_balance_determinism(name):
    ds = load(name, n_samples=400, seed=3)
    assert (ds.n_features, ds.n_classes, ds.is_2d, ds.feature_names) == (2, 2, True, ("x1", "x2"))
    assert sum(ds.sizes().values()) == 400
    y = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    assert np.bincount(y).tolist() == [200, 200]
    assert ds.chance == pytest.approx(0.5, abs=0.01)
    again = load(name, n_samples=400, seed=3)
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    other = load(name, n_samples=400, seed=4)
    assert not np.array_equal(ds.x_train, other.x_train)
    x, _ = generate(name, n_samples=400, noise=0.0, seed=3)
    assert x.shape == (400, 2) and np.isfinite(x).all()


def test_spiral_arms_are_point_symmetric_without_noise():
    x, y = generate("spiral", n_samples=200, noise=0.0, seed=0)
    radius = np.hypot(x[:, 0], x[:, 1])
    assert radius.max() <= 1.2 and radius.min() > 0
    # arm 1 is arm 0 rotated by pi: same radii distribution, opposite angle offset
    assert abs(np.median(radius[y == 0]) - np.median(radius[y == 1])) < 0.15


def test_unknown_name_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="digits, moons, circles, spiral, mnist, fashion_mnist, cifar10, cifar100") as info:
        load("imagenet")
    assert "'imagenet'" in str(info.value)
    assert BUILTIN == ("digits", "moons", "circles", "spiral", "mnist", "fashion_mnist", "cifar10", "cifar100")


@pytest.mark.parametrize("kwargs, match", [
    ({"val_fraction": 0.0}, "val_fraction"),
    ({"test_fraction": 1.5}, "test_fraction"),
    ({"val_fraction": 0.5, "test_fraction": 0.45}, "val_fraction"),
    ({"seed": 1.5}, "seed"),
    ({"n_samples": 5}, "n_samples"),
    ({"noise": -1.0}, "noise"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        load("moons", **kwargs)


def test_npz_xy_and_X_keys(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(90, 4)), np.repeat([3, 5, 7], 30)
    np.savez(tmp_path / "a.npz", x=x, y=y)
    np.savez(tmp_path / "b.npz", X=x, y=y)
    a, b = load(tmp_path / "a.npz"), load(str(tmp_path / "b.npz"))
    assert a.n_classes == 3 and a.class_names == ("3", "5", "7")
    assert set(a.y_train.tolist()) == {0, 1, 2}
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.name == "a.npz" and a.feature_names is None


def test_npz_with_given_splits(tmp_path):
    rng = np.random.default_rng(1)
    parts = {k: rng.normal(size=(n, 3)) for k, n in (("x_train", 60), ("x_test", 20))}
    np.savez(tmp_path / "s.npz", y_train=np.arange(60) % 2, y_test=np.arange(20) % 2, **parts)
    ds = load(tmp_path / "s.npz", val_fraction=0.2, test_fraction=0.2)
    assert len(ds.y_test) == 20  # the given test split is kept
    assert len(ds.y_train) + len(ds.y_val) == 60 and len(ds.y_val) == 15
    np.savez(tmp_path / "v.npz", y_train=np.arange(60) % 2, y_test=np.arange(20) % 2,
             x_val=rng.normal(size=(10, 3)), y_val=np.arange(10) % 2, **parts)
    assert load(tmp_path / "v.npz").sizes() == {"train": 60, "val": 10, "test": 20}


def test_csv_label_column_and_last_column(tmp_path):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"label": ["cat", "dog"] * 20, "a": rng.normal(size=40), "b": rng.normal(size=40)})
    frame.to_csv(tmp_path / "l.csv", index=False)
    ds = load(tmp_path / "l.csv")
    assert ds.feature_names == ("a", "b") and ds.class_names == ("cat", "dog") and ds.is_2d
    frame2 = pd.DataFrame({"f1": rng.normal(size=40), "f2": rng.normal(size=40), "f3": rng.normal(size=40),
                           "target": [0.0, 1.0] * 20})
    frame2.to_csv(tmp_path / "last.csv", index=False)
    ds2 = load(tmp_path / "last.csv")
    assert ds2.feature_names == ("f1", "f2", "f3") and ds2.n_classes == 2


def _write(tmp_path, name, writer):
    path = tmp_path / name
    writer(path)
    return path


MALFORMED = {
    "missing keys": ("bad.npz", lambda p: np.savez(p, features=np.zeros((10, 2)), y=np.zeros(10)),
                     "expected keys x .*found \\['features', 'y'\\]"),
    "x 1-D": ("flat.npz", lambda p: np.savez(p, x=np.zeros(10), y=np.arange(10) % 2), "shape \\(samples, features\\)"),
    "y 2-D": ("onehot.npz", lambda p: np.savez(p, x=np.zeros((10, 2)), y=np.eye(2)[np.arange(10) % 2]),
              "labels must have shape \\(samples,\\)"),
    "length mismatch": ("len.npz", lambda p: np.savez(p, x=np.zeros((10, 2)), y=np.arange(9) % 2), "10 vs 9"),
    "NaN features": ("nan.npz", lambda p: np.savez(p, x=np.where(np.eye(10, 2) > 0, np.nan, 1.0), y=np.arange(10) % 2),
                     "NaN or inf in 2 rows"),
    "single class": ("one.npz", lambda p: np.savez(p, x=np.ones((10, 2)), y=np.zeros(10)), "single class"),
    "continuous target": ("reg.npz", lambda p: np.savez(p, x=np.ones((10, 2)), y=np.linspace(0, 1, 10)),
                          "class labels"),
    "only x_val": ("val.npz", lambda p: np.savez(p, x_train=np.ones((10, 2)), y_train=np.arange(10) % 2,
                                                x_test=np.ones((4, 2)), y_test=np.arange(4) % 2,
                                                x_val=np.ones((4, 2))), "x_val/y_val"),
    "split widths": ("w.npz", lambda p: np.savez(p, x_train=np.ones((10, 2)), y_train=np.arange(10) % 2,
                                                x_test=np.ones((4, 3)), y_test=np.arange(4) % 2),
                     "different numbers of features"),
    "not an npz": ("junk.npz", lambda p: p.write_text("hello"), "cannot read as .npz"),
    "csv one column": ("one.csv", lambda p: p.write_text("label\n0\n1\n"), "at least one feature column"),
    "csv text feature": ("text.csv", lambda p: p.write_text("a,b,label\n1,x,0\n2,y,1\n"),
                         "non-numeric columns: \\['b'\\]"),
    "csv NaN": ("nan.csv", lambda p: p.write_text("a,b,y\n1,2,0\n,3,1\n4,5,0\n"), "NaN or inf in 1 rows"),
    "csv empty": ("empty.csv", lambda p: p.write_text(""), "cannot read as CSV"),
    "csv single class": ("single.csv", lambda p: p.write_text("a,label\n1,x\n2,x\n3,x\n"), "single class"),
    "too few per class": ("few.csv", lambda p: p.write_text("a,y\n1,0\n2,0\n3,0\n4,1\n5,0\n"), "at least 3 per class"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_files_raise_clear_errors(tmp_path, case):
    name, writer, match = MALFORMED[case]
    path = _write(tmp_path, name, writer)
    with pytest.raises(ValueError, match=match) as info:
        load(path)
    assert name in str(info.value) or "name_or_path" in str(info.value)


def test_missing_file_and_bad_type(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load(tmp_path / "absent.csv")
    with pytest.raises(TypeError, match="name_or_path"):
        load(42)


# -- keras.datasets through Keras's cache: tiny files in the exact layout keras.datasets writes --------


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    root = tmp_path / "kh" / "datasets"
    root.mkdir(parents=True)
    return root


def _images(rng, n, shape):
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def test_mnist_from_keras_cache(keras_home):
    rng = np.random.default_rng(0)
    np.savez(keras_home / "mnist.npz", x_train=_images(rng, 60, (28, 28)), y_train=np.arange(60) % 10,
             x_test=_images(rng, 20, (28, 28)), y_test=np.arange(20) % 10)
    assert keras_cache_dir() == str(keras_home)
    ds = load("mnist", download=False)
    assert ds.input_shape == (28, 28, 1) and ds.n_classes == 10
    assert ds.sizes() == {"train": 45, "val": 15, "test": 20}  # the official test split is kept
    assert ds.x_train.dtype == np.float32 and ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0  # scaled /255


def test_fashion_mnist_idx_files(keras_home):
    import gzip

    rng = np.random.default_rng(1)
    folder = keras_home / "fashion-mnist"
    folder.mkdir()
    for prefix, n in (("train", 40), ("t10k", 10)):
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as fh:
            fh.write(b"\0" * 8 + (np.arange(n) % 10).astype(np.uint8).tobytes())
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as fh:
            fh.write(b"\0" * 16 + _images(rng, n, (28, 28)).tobytes())
    ds = load("fashion_mnist", download=False)
    assert ds.input_shape == (28, 28, 1) and len(ds.y_test) == 10 and ds.n_classes == 10


@pytest.mark.parametrize("name, folder, files, key", [
    ("cifar10", "cifar-10-batches-py-target/cifar-10-batches-py",
     [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels"),
    ("cifar100", "cifar-100-python-target/cifar-100-python", ["train", "test"], b"fine_labels"),
])
def test_cifar_batches_and_per_channel_normalization(keras_home, name, folder, files, key):
    import pickle

    rng = np.random.default_rng(2)
    target = keras_home / folder
    target.mkdir(parents=True)
    for f in files:
        n = 40
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        data[:, :1024] //= 4  # the red channel darker: normalization must be per channel
        with open(target / f, "wb") as fh:
            pickle.dump({b"data": data, key: (np.arange(n) % 10).tolist()}, fh)
    ds = load(name, download=False)
    assert ds.input_shape == (32, 32, 3) and ds.n_classes == 10
    means = ds.x_train.mean(axis=(0, 1, 2))
    stds = ds.x_train.std(axis=(0, 1, 2))
    np.testing.assert_allclose(means, 0.0, atol=1e-4)
    np.testing.assert_allclose(stds, 1.0, atol=1e-3)


def test_missing_keras_dataset_says_what_to_place_where(keras_home):
    with pytest.raises(ValueError, match=r"cifar10.*place .*kh/datasets/cifar-10-batches-py-target/cifar-10-batches-py"):
        load("cifar10", download=False)
    with pytest.raises(ValueError, match=r"mnist\.npz"):
        load("mnist", download=False)


def test_arrays_tuple_keeps_shape_and_carves_validation():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(100, 6, 6, 2)).astype("float32"), np.arange(100) % 4
    ds = load((x[:80], y[:80], x[80:], y[80:]), seed=1)
    assert ds.input_shape == (6, 6, 2) and ds.sizes() == {"train": 60, "val": 20, "test": 20}
    again = load((x[:80], y[:80], x[80:], y[80:]), seed=1)
    np.testing.assert_array_equal(ds.x_val, again.x_val)
    with pytest.raises(ValueError, match="x_train samples have shape"):
        load((x[:80], y[:80], x[80:, :3], y[80:]))
    with pytest.raises(ValueError, match="tuple must be"):
        load((x, y))


class _Batches(keras.utils.PyDataset):
    """A PyDataset over arrays, in batches of 16."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, y

    def __len__(self):
        return -(-len(self.x) // 16)

    def __getitem__(self, i):
        return self.x[16 * i:16 * (i + 1)], self.y[16 * i:16 * (i + 1)]


def test_tf_data_and_py_dataset_pairs_equal_the_arrays_tuple():
    import tensorflow as tf

    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(100, 4, 4, 2)).astype("float32"), np.arange(100) % 4
    arrays = load((x[:80], y[:80], x[80:], y[80:]), seed=2)
    batched = load((tf.data.Dataset.from_tensor_slices((x[:80], y[:80])).batch(7),
                    tf.data.Dataset.from_tensor_slices((x[80:], y[80:])).batch(7)), seed=2)
    unbatched = load((tf.data.Dataset.from_tensor_slices((x[:80], y[:80])),
                      tf.data.Dataset.from_tensor_slices((x[80:], y[80:]))), seed=2)
    py = load((_Batches(x[:80], y[:80]), _Batches(x[80:], y[80:])), seed=2)
    for ds in (batched, unbatched, py):
        assert ds.input_shape == (4, 4, 2) and ds.sizes() == arrays.sizes()
        for split in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            np.testing.assert_array_equal(getattr(ds, split), getattr(arrays, split))
    with pytest.raises(ValueError, match="train pipeline must yield"):
        load((tf.data.Dataset.from_tensor_slices(x[:80]), tf.data.Dataset.from_tensor_slices(x[80:])))
    with pytest.raises(ValueError, match="test pipeline yielded no data"):
        load((tf.data.Dataset.from_tensor_slices((x[:80], y[:80])), tf.data.Dataset.from_tensor_slices((x[:0], y[:0]))))
