"""``strip(model)`` on subclassed models: a built, plain copy with the pruned zeros, or a precise error."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import to_np
from keras import layers

from kerasinit import pruning
from kerasinit.pruning.constraint import MaskConstraint

X = np.random.default_rng(0).normal(size=(8, 5)).astype("float32")


@keras.saving.register_keras_serializable("kerasinit_tests")
class ConfigNet(keras.Model):
    """A subclassed model with a proper get_config (the Keras guide's recipe)."""

    def __init__(self, units: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = layers.Dense(units, activation="relu")
        self.out = layers.Dense(3)

    def call(self, x):
        return self.out(self.hidden(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class NoConfigNet(keras.Model):
    """A subclassed model whose constructor takes no config (Keras's get_config gives it trainable/dtype)."""

    def __init__(self):
        super().__init__()
        self.dense = layers.Dense(4)

    def call(self, x):
        return self.dense(x)


def _masks(model):
    return [w for w in model.weights if isinstance(getattr(w, "constraint", None), MaskConstraint)]


def test_strip_copies_a_subclassed_model_built_and_unmasked():
    model = ConfigNet(units=6)
    model(X)
    pruning.prune(model, 0.5)
    expected = to_np(model(X))
    stripped = pruning.strip(model)
    assert stripped is not model and stripped.built and len(stripped.weights) == 4
    np.testing.assert_allclose(to_np(stripped(X)), expected, rtol=1e-6, atol=1e-6)
    kernel = to_np(stripped.hidden.kernel)
    assert (kernel == 0).mean() == pytest.approx(0.5, abs=0.05)  # the pruned zeros are baked in
    assert not _masks(stripped) and _masks(model)  # the copy is plain; the original keeps its masks


def test_strip_of_a_model_that_cannot_be_rebuilt_says_what_to_do():
    model = NoConfigNet()
    model(X)
    pruning.prune(model, 0.5)
    with pytest.raises(ValueError, match=r"NoConfigNet.*strip\(model, copy=False\).*get_config"):
        pruning.strip(model)
    assert _masks(model)  # untouched: still pruned
    in_place = pruning.strip(model, copy=False)
    assert in_place is model and not _masks(model)


_BACKEND_SCRIPT = """
import json
import keras, numpy as np
from keras import layers
from kerasinit import pruning

class Net(keras.Model):
    def __init__(self, units=6, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = layers.Dense(units, activation="relu")
        self.out = layers.Dense(3)
    def call(self, x):
        return self.out(self.hidden(x))
    def get_config(self):
        return {**super().get_config(), "units": self.units}

x = np.random.default_rng(0).normal(size=(8, 5)).astype("float32")
model = Net()
model(x)
pruning.prune(model, 0.5)
stripped = pruning.strip(model)
diff = float(np.abs(keras.ops.convert_to_numpy(stripped(x)) - keras.ops.convert_to_numpy(model(x))).max())
zeros = float((keras.ops.convert_to_numpy(stripped.hidden.kernel) == 0).mean())
print(json.dumps({"backend": keras.backend.backend(), "diff": diff, "zeros": zeros, "n": len(stripped.weights)}))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_strip_copies_a_subclassed_model_on_other_backends(backend):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", _BACKEND_SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == backend and out["n"] == 4 and out["diff"] <= 1e-5
    assert out["zeros"] == pytest.approx(0.5, abs=0.05)
