"""Issue 23: ``kerasinit.pruning.export`` writes a pruned model as TFLite (sparse or dense encoding), .keras or
SavedModel, checks its outputs against the stripped Keras model, and reports per-layer sparsity and bytes.

Outputs are checked here again, independently of the exporter's own check: the file is run by LiteRT
(``ai_edge_litert``), reloaded by Keras or by ``tf.saved_model.load`` and compared with ``strip(model)``
within 1e-5 (absolute, outputs of order 1).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from kerasinit.pruning import prune, sparsity_report, strip
from kerasinit.pruning.export import ExportMismatchError, export

TOL = 1e-5


def mlp(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(256, activation="relu"),
                             keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)])


def convnet(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    x = keras.Input((16, 16, 3))
    y = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="stem")(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(y)
    y = keras.layers.Conv2D(32, 1, activation="relu", name="pw")(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    return keras.Model(x, keras.layers.Dense(5, name="head")(y))


def batch(model: keras.Model, n: int = 3, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *model.inputs[0].shape[1:])).astype("float32")


def run_tflite(path: str, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=path)
    inp = it.get_input_details()[0]
    it.resize_tensor_input(inp["index"], list(x.shape))
    it.allocate_tensors()
    it.set_tensor(inp["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def kernel_sparsities(model: keras.Model) -> dict[str, float]:
    table = sparsity_report(model)
    return {r.layer: r.sparsity for r in table.itertuples() if r.layer != "total"}


@pytest.mark.parametrize("sparse", [True, False])
def test_tflite_equals_the_stripped_model_and_reports_each_layers_sparsity(tmp_path, sparse):
    model = mlp()
    prune(model, 0.8)
    x = batch(model)
    path = str(tmp_path / "m.tflite")
    report = export(model, path, sparse=sparse)
    np.testing.assert_allclose(run_tflite(path, x), keras.ops.convert_to_numpy(strip(model)(x)), atol=TOL, rtol=0)
    assert report.max_abs_diff <= TOL and report.bytes == os.path.getsize(path)
    reported = {r["layer"]: r for r in report.layers}
    assert set(reported) == set(kernel_sparsities(model))
    for layer, s in kernel_sparsities(model).items():
        assert reported[layer]["sparsity"] == pytest.approx(s, abs=1e-9)
        assert reported[layer]["file_sparsity"] == pytest.approx(s, abs=1e-9)  # the file holds the same zeros
        assert reported[layer]["stored"] == ("sparse" if sparse else "dense")
        assert reported[layer]["op"] == "FULLY_CONNECTED"
    # sparse encoding: values + uint8/uint16 indices, about 0.25 of the dense floats at 80% sparsity
    kernel_bytes = sum(r["bytes"] for r in report.layers)
    dense_bytes = 4 * sum(int(np.prod(r["shape"])) for r in report.layers)
    assert kernel_bytes < 0.35 * dense_bytes if sparse else kernel_bytes == dense_bytes
    assert report.to_dict()["layers"][0]["layer"] == report.layers[0]["layer"] and report.format in str(report)


def test_gzip_of_an_80_percent_pruned_mlp_is_at_most_035_of_the_dense_model(tmp_path):
    dense = export(mlp(), str(tmp_path / "dense.tflite"))
    model = mlp()
    prune(model, 0.8)
    pruned = export(model, str(tmp_path / "pruned.tflite"))
    assert pruned.gzip_bytes <= 0.35 * dense.gzip_bytes, (pruned.gzip_bytes, dense.gzip_bytes)
    assert pruned.bytes <= 0.35 * dense.bytes, (pruned.bytes, dense.bytes)


def test_conv_model_tflite_names_the_ops_and_says_what_runs_sparse(tmp_path):
    model = convnet()
    prune(model, 0.8)
    path = str(tmp_path / "c.tflite")
    report = export(model, path)
    x = batch(model)
    np.testing.assert_allclose(run_tflite(path, x), keras.ops.convert_to_numpy(strip(model)(x)), atol=TOL, rtol=0)
    ops = {r["layer"]: r["op"] for r in report.layers}
    assert ops == {"stem": "CONV_2D", "dw": "DEPTHWISE_CONV_2D", "pw": "CONV_2D", "head": "FULLY_CONNECTED"}, ops
    assert all(r["runs_sparse"].split(":")[0] in ("yes", "no", "unknown") for r in report.layers)
    assert report.xnnpack  # a statement about XNNPack's sparse kernels on this CPU, whatever it is


def test_keras_and_saved_model_exports_equal_the_stripped_model(tmp_path):
    import tensorflow as tf

    model = convnet()
    prune(model, 0.7)
    x = batch(model)
    ref = keras.ops.convert_to_numpy(strip(model)(x))
    export(model, str(tmp_path / "m.keras"), format="keras")
    reloaded = keras.saving.load_model(str(tmp_path / "m.keras"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(reloaded(x)), ref, atol=TOL, rtol=0)
    assert not any("MaskConstraint" in str(type(v.constraint)) for v in reloaded.weights)
    report = export(model, str(tmp_path / "sm"), format="saved_model")
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_allclose(loaded.serve(tf.constant(x)).numpy(), ref, atol=TOL, rtol=0)
    assert report.bytes > 0 and {r["layer"] for r in report.layers} == set(kernel_sparsities(model))


def test_shrink_exports_a_smaller_model_equal_to_the_shrunk_one(tmp_path):
    model = mlp()
    prune(model, 0.5, granularity="channel")
    full = export(model, str(tmp_path / "full.tflite"), sparse=False)
    small = export(model, str(tmp_path / "small.tflite"), sparse=False, shrink=True)
    x = batch(model)
    shrunk = strip(model, shrink=True)
    np.testing.assert_allclose(run_tflite(str(tmp_path / "small.tflite"), x),
                               keras.ops.convert_to_numpy(shrunk(x)), atol=TOL, rtol=0)
    assert small.bytes < 0.6 * full.bytes, (small.bytes, full.bytes)
    assert small.parameters == sum(int(np.prod(w.shape)) for w in shrunk.weights if len(w.shape) == 2)


def test_bad_arguments_are_refused_and_nothing_is_overwritten(tmp_path):
    model = mlp()
    with pytest.raises(ValueError, match="`format`.*'tflite', 'keras', 'saved_model'.*'onnx'"):
        export(model, str(tmp_path / "m.onnx"), format="onnx")
    with pytest.raises(ValueError, match=r"`path` must end with \.tflite"):
        export(model, str(tmp_path / "m.keras"))
    with pytest.raises(TypeError, match="`sparse`"):
        export(model, str(tmp_path / "m.tflite"), sparse="yes")
    with pytest.raises(TypeError, match="`model`"):
        export("model.keras", str(tmp_path / "m.tflite"))
    taken = tmp_path / "taken.tflite"
    taken.write_bytes(b"old")
    with pytest.raises(ValueError, match="exists; pass overwrite=True"):
        export(model, str(taken))
    assert taken.read_bytes() == b"old"
    export(model, str(taken), overwrite=True)
    assert taken.read_bytes()[4:8] == b"TFL3"


def test_a_mismatch_beyond_the_tolerance_raises_and_writes_nothing(tmp_path):
    model = convnet()
    prune(model, 0.5)
    out = tmp_path / "c.tflite"
    # TFLite's convolutions round differently from TensorFlow's (max |diff| ~1e-9 here): 1e-15 must refuse
    with pytest.raises(ExportMismatchError, match="beyond tolerance=1e-15"):
        export(model, str(out), tolerance=1e-15, probe=batch(model, 8))
    assert not out.exists() and os.listdir(tmp_path) == []


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_tflite_export_from_another_backend_goes_through_tensorflow(tmp_path, backend):
    script = textwrap.dedent(f"""
        import keras, numpy as np
        from kerasinit.pruning import prune, strip
        from kerasinit.pruning.export import export
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((32,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(4)])
        prune(m, 0.8)
        r = export(m, {str(tmp_path / 'm.tflite')!r})
        x = np.random.default_rng(1).standard_normal((3, 32)).astype("float32")
        np.save({str(tmp_path / 'x.npy')!r}, x)
        np.save({str(tmp_path / 'ref.npy')!r}, keras.ops.convert_to_numpy(strip(m)(x)))
        print(r.backend, r.converted_in, r.layers[0]["stored"])
    """)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-5:] == [backend, "a", "TensorFlow", "subprocess", "sparse"], proc.stdout
    x = np.load(tmp_path / "x.npy")
    np.testing.assert_allclose(run_tflite(str(tmp_path / "m.tflite"), x), np.load(tmp_path / "ref.npy"), atol=TOL, rtol=0)
