"""Backend neutrality: the core runs on JAX and PyTorch without TensorFlow (SPEC: "works on any Keras backend").

Run in a fresh interpreter with KERAS_BACKEND=jax or torch (both in the dev extra; torch pinned to
the local CPU build): every initializer draws, the Keras mirrors are bit-identical to Keras's own on
that backend, a model saves and loads, reinitialize/lsuv run, one-shot pruning holds through fit
and the pruning callback either runs (torch) or refuses (JAX); TensorFlow is never imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

CODE = """
import json, os, sys, tempfile
import numpy as np
import keras
import kerasinit
from kerasinit.initializers import KERAS_MIRRORS

report = {"backend": keras.backend.backend(), "tensorflow_imported": "tensorflow" in sys.modules,
          "failures": [], "differs": []}
for name, cls in kerasinit.CATALOGUE.items():
    init = cls.example() if name == "FromArray" else (cls(seed=3) if cls.is_random else cls())
    try:
        out = np.asarray(init(cls.example_shape))
        assert out.shape == cls.example_shape
        init.describe(cls.example_shape)
        if name in KERAS_MIRRORS and not (name == "Orthogonal"):
            theirs = getattr(keras.initializers, name)(**({"seed": 3} if cls.is_random else {}))(cls.example_shape)
            if not np.array_equal(out, np.asarray(theirs)):
                report["differs"].append(name)
    except Exception as exc:  # report, do not stop: the parent test lists every failure
        report["failures"].append(f"{name}: {type(exc).__name__}: {exc}")
q = np.asarray(kerasinit.Orthogonal(seed=3)((6, 4)))
report["orthogonal_ok"] = bool(np.allclose(q.T @ q, np.eye(4), atol=1e-5))

model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="tanh", kernel_initializer=kerasinit.KwonTanhUniform(seed=1)),
                          keras.layers.Dense(8, activation="relu", kernel_initializer="kerasinit>PlainHeNormal"),
                          keras.layers.Dense(3, kernel_initializer=kerasinit.FromArray(np.ones((8, 3), "float32")))])
report["reinitialize_rows"] = len(kerasinit.reinitialize(model, policy={"Dense": "he_uniform"}, seed=0))
lsuv = kerasinit.lsuv(model, np.random.default_rng(0).normal(size=(64, 8)).astype("float32"), verbose=False, seed=0)
report["lsuv_converged"] = bool(lsuv.converged.all())

from kerasinit import pruning
net = keras.Sequential([keras.Input((20,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3)])
net.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
rng = np.random.default_rng(0)
x, y = rng.normal(size=(256, 20)).astype("float32"), rng.integers(0, 3, 256)
net.fit(x, y, epochs=1, batch_size=32, verbose=0)
pruning.prune(net, 0.7)
net.fit(x, y, epochs=2, batch_size=32, verbose=0)
report["pruned_sparsity"] = float(pruning.sparsity_report(net).iloc[0]["sparsity"])
try:
    callback = pruning.PruningCallback(pruning.PolynomialDecay(0.7, 0.9, begin_step=24, end_step=40, frequency=4))
    net.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[callback])
    report["callback_error"] = None
    report["callback_updates"] = [step for step, _ in callback.updates]
    kernel = np.asarray(keras.ops.convert_to_numpy(net.layers[0].kernel))
    mask = net.layers[0].kernel.constraint.numpy()
    report["callback_sparsity"] = float(1 - mask.mean())
    report["callback_exact_zeros"] = bool((kernel[mask == 0] == 0).all())
except RuntimeError as exc:
    report["callback_error"] = str(exc)
report["tensorflow_imported_at_end"] = "tensorflow" in sys.modules  # Keras's own save may import it: check first
path = os.path.join(tempfile.mkdtemp(), "m.keras")
model.save(path)
loaded = keras.models.load_model(path)
report["save_load_same"] = all(np.array_equal(a, b) for a, b in zip(model.get_weights(), loaded.get_weights()))
report["loaded_classes"] = [type(layer.kernel_initializer).__name__ for layer in loaded.layers]
print(json.dumps(report))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_core_runs_without_tensorflow(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(CODE)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["backend"] == backend
    assert report["failures"] == [] and report["differs"] == []
    assert report["orthogonal_ok"]
    assert report["save_load_same"] and report["reinitialize_rows"] == 3 and report["lsuv_converged"]
    assert report["loaded_classes"] == ["KwonTanhUniform", "PlainHeNormal", "FromArray"]
    assert report["pruned_sparsity"] == pytest.approx(0.7, abs=1e-3)  # one-shot masks hold through the backend's fit
    if backend == "jax":
        assert "JAX backend" in report["callback_error"]  # a schedule during fit is refused, not silently lost
    else:  # torch's fit works on the variables themselves: the schedule runs (optimizer steps 24..47 of this fit)
        assert report["callback_error"] is None
        assert report["callback_updates"] == [24, 28, 32, 36, 40]
        assert report["callback_sparsity"] == pytest.approx(0.9, abs=1e-3) and report["callback_exact_zeros"]
    assert not report["tensorflow_imported"] and not report["tensorflow_imported_at_end"]


@pytest.mark.parametrize("module", ["kerasinit.compat", "kerasinit.describe", "kerasinit.initializers"])
def test_core_modules_do_not_import_tensorflow_directly(module):
    import importlib
    import inspect

    source = inspect.getsource(importlib.import_module(module))
    assert "import tensorflow" not in source and "import tf_keras" not in source


def test_submodules_load_lazily_from_the_package():
    import kerasinit

    assert kerasinit.pruning.Pruner.__name__ == "Pruner"
    assert kerasinit.VarianceMonitor.__module__ == "kerasinit.monitor.callback"
    assert callable(kerasinit.run_compare)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        kerasinit.nope  # noqa: B018
