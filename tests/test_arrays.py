"""``kerasinit._arrays.to_numpy``: an independent NumPy copy on every backend, without NumPy 2's warning."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import keras
import pytest

CHECK = textwrap.dedent(
    """
    import warnings
    import keras, numpy as np
    from kerasinit._arrays import to_numpy

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # NumPy 2's __array__(copy=...) warning
        v = keras.Variable(np.arange(6, dtype="float32").reshape(2, 3), name="v")
        snapshot = to_numpy(v)
        v.assign(np.zeros((2, 3), "float32"))  # PyTorch: copy_ into the variable's storage
        assert snapshot.tolist() == [[0, 1, 2], [3, 4, 5]], ("assign changed the snapshot", snapshot)
        before = to_numpy(v)
        keras.optimizers.SGD(1.0).apply([keras.ops.ones((2, 3))], [v])  # PyTorch: _foreach_add_ in place
        assert (before == 0).all() and (to_numpy(v) == -1).all(), ("the optimizer changed the snapshot", before)
        t = keras.ops.convert_to_tensor(np.ones(3, "float32"))
        a = to_numpy(t)
        if a.flags.writeable:  # JAX hands back a read-only view of an immutable buffer
            a[0] = 5.0
        assert to_numpy(t).tolist() == [1.0, 1.0, 1.0], "writing the array changed the tensor"
        half = to_numpy(keras.ops.cast(v, "bfloat16"))
        assert half.astype("float32").tolist() == [[-1.0] * 3] * 2, half
    print(keras.backend.backend())
    """
)


def test_to_numpy_is_a_copy_that_later_updates_do_not_change(capsys):
    exec(CHECK, {})  # in-process, on the suite's backend (TensorFlow)
    assert capsys.readouterr().out.split() == [keras.backend.backend()]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_to_numpy_is_a_copy_on_jax_and_torch(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == [backend]
