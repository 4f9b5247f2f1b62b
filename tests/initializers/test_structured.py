"""DeltaOrthogonal, Dirac, SparseNormal and FromArray (SPEC §2.4): structure, behaviour, errors."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
from conftest import to_np

import kerasinit


@pytest.mark.parametrize("shape", [(3, 4, 8), (3, 3, 4, 8), (5, 5, 6, 6), (3, 3, 3, 2, 4)])
def test_delta_orthogonal_structure(shape):
    gain = 1.3
    w = to_np(kerasinit.DeltaOrthogonal(gain=gain, seed=2)(shape)).astype("float64")
    centre = tuple(k // 2 for k in shape[:-2])
    h = w[centre]
    np.testing.assert_allclose(h @ h.T, gain**2 * np.eye(shape[-2]), atol=1e-5)  # orthonormal rows * gain
    off = w.copy()
    off[centre] = 0.0
    assert not off.any()  # zeros away from the centre
    # the centre is Keras's Orthogonal draw for (in, out) with the same seed (parity)
    np.testing.assert_array_equal(h, to_np(keras.initializers.Orthogonal(gain=gain, seed=2)(shape[-2:])).astype("float64"))
    d = kerasinit.describe(kerasinit.DeltaOrthogonal(gain=gain), shape)
    assert np.mean(w**2) == pytest.approx(d.std**2, rel=1e-4)


def test_delta_orthogonal_keeps_norms_through_a_deep_linear_cnn():
    """Dynamical isometry at init: a linear stack of delta-orthogonal convs preserves the centre signal."""
    x = np.random.default_rng(0).normal(size=(4, 9, 9, 8)).astype("float32")
    y = x
    for i in range(10):
        y = to_np(keras.layers.Conv2D(8, 3, padding="same", use_bias=False,
                                      kernel_initializer=kerasinit.DeltaOrthogonal(seed=i))(y))
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-4)


def test_delta_orthogonal_errors():
    with pytest.raises(ValueError, match="in_channels=8 > out_channels=4"):
        kerasinit.DeltaOrthogonal()((3, 3, 8, 4))
    with pytest.raises(ValueError, match="shape.*rank 3 to 5"):
        kerasinit.DeltaOrthogonal()((8, 8))
    with pytest.raises(ValueError, match="gain"):
        kerasinit.DeltaOrthogonal(gain=-1.0)


@pytest.mark.parametrize("groups, channels", [(1, 5), (2, 4), (4, 8)])
def test_dirac_conv_copies_its_input(groups, channels):
    x = np.random.default_rng(1).normal(size=(2, 7, 7, channels)).astype("float32")
    conv = keras.layers.Conv2D(channels, 3, padding="same", groups=groups, use_bias=False,
                               kernel_initializer=kerasinit.Dirac(groups=groups))
    np.testing.assert_allclose(to_np(conv(x)), x, atol=1e-6)


def test_dirac_matches_torch_semantics_on_a_small_case():
    # torch: dirac_(w) with w (out=4, in/groups=1, 3), groups=2 sets w[g*2 + d, d, 1] = 1 for d < min(1, 2)
    w = to_np(kerasinit.Dirac(groups=2)((3, 1, 4)))  # Keras layout (k, in/groups, out)
    expected = np.zeros((3, 1, 4), "float32")
    expected[1, 0, 0] = expected[1, 0, 2] = 1.0
    np.testing.assert_array_equal(w, expected)
    # more outputs than inputs: extra filters stay zero
    w = to_np(kerasinit.Dirac()((1, 2, 3)))
    np.testing.assert_array_equal(w[0], [[1, 0, 0], [0, 1, 0]])


def test_dirac_errors():
    with pytest.raises(ValueError, match="divisible by groups=3"):
        kerasinit.Dirac(groups=3)((3, 3, 2, 4))
    with pytest.raises(ValueError, match="groups"):
        kerasinit.Dirac(groups=0)
    with pytest.raises(ValueError, match="rank 3 to 5"):
        kerasinit.Dirac()((4, 4))


@pytest.mark.parametrize("shape", [(100, 30), (3, 3, 8, 16)])
def test_sparse_normal_has_exactly_k_inputs_per_unit(shape):
    k = 7
    w = to_np(kerasinit.SparseNormal(nonzero_per_unit=k, seed=3)(shape)).reshape(-1, shape[-1])
    assert (np.count_nonzero(w, axis=0) == k).all()
    patterns = {tuple(np.flatnonzero(col)) for col in w.T}
    assert len(patterns) > shape[-1] // 2  # positions drawn per unit, not shared
    again = to_np(kerasinit.SparseNormal(nonzero_per_unit=k, seed=3)(shape)).reshape(-1, shape[-1])
    np.testing.assert_array_equal(w, again)


def test_sparse_normal_sparsity_and_defaults():
    w = to_np(kerasinit.SparseNormal(sparsity=0.9, seed=1)((50, 20)))
    assert (np.count_nonzero(w, axis=0) == 50 - math.ceil(0.9 * 50)).all()  # torch sparse_'s count
    w = to_np(kerasinit.SparseNormal(seed=1)((40, 5)))
    assert (np.count_nonzero(w, axis=0) == 15).all()  # Martens's k = 15
    d = kerasinit.describe(kerasinit.SparseNormal(nonzero_per_unit=10, stddev=2.0), (40, 5))
    assert d.std == pytest.approx(2.0 * math.sqrt(10 / 40))


def test_sparse_normal_errors():
    with pytest.raises(ValueError, match="not both"):
        kerasinit.SparseNormal(nonzero_per_unit=3, sparsity=0.5)
    with pytest.raises(ValueError, match="sparsity.*\\[0, 1\\)"):
        kerasinit.SparseNormal(sparsity=1.0)
    with pytest.raises(ValueError, match="nonzero_per_unit"):
        kerasinit.SparseNormal(nonzero_per_unit=0)
    with pytest.raises(ValueError, match="nonzero_per_unit.*=15 exceeds the fan_in=8"):
        kerasinit.SparseNormal()((8, 4))
    with pytest.raises(ValueError, match="shape"):
        kerasinit.SparseNormal()((40,))


def test_from_array_returns_the_values_and_keeps_them_out_of_the_config(tmp_path):
    values = np.random.default_rng(0).normal(size=(300, 200)).astype("float32")
    init = kerasinit.FromArray(values)
    np.testing.assert_array_equal(to_np(init((300, 200))), values)
    assert to_np(init((300, 200), dtype="float64")).dtype == np.float64
    config = kerasinit.serialize(init)
    assert len(json.dumps(config)) < 500  # 60,000 numbers are not in the JSON
    model = keras.Sequential([keras.Input((300,)), keras.layers.Dense(200, kernel_initializer=init)])
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # the values come back from the weights archive
    np.testing.assert_array_equal(to_np(loaded.layers[0].kernel), values)
    restored = loaded.layers[0].kernel_initializer
    assert restored.is_placeholder and restored.verify(loaded.layers[0].kernel)
    assert not restored.verify(values + 1)


def test_from_array_snapshot_of_a_variable_and_errors():
    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    snap = kerasinit.FromArray(layer.kernel)  # a copy: later training does not change it
    before = to_np(layer.kernel).copy()
    layer.kernel.assign(layer.kernel * 0)
    np.testing.assert_array_equal(to_np(snap((4, 3))), before)
    assert type(kerasinit.get({"class_name": "snapshot", "config": {"shape": [4, 3]}})) is kerasinit.FromArray
    with pytest.raises(ValueError, match="shape.*\\(4, 3\\)"):
        snap((3, 4))
    with pytest.raises(ValueError, match="NaN"):
        kerasinit.FromArray(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="values.*required"):
        kerasinit.FromArray()
    with pytest.raises(TypeError, match="values"):
        kerasinit.FromArray(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="sha256"):
        kerasinit.FromArray(np.ones(3), sha256="0" * 64)
