"""A codebase that swaps Keras's classes for kerasinit's globally keeps working (no recursion)."""

from __future__ import annotations

import numpy as np
from conftest import run_python


def test_swapping_keras_classes_for_the_mirrors_does_not_recurse():
    out = run_python("""
        import keras, numpy as np
        import kerasinit
        for name in ("VarianceScaling", "GlorotUniform", "HeNormal", "Identity", "Orthogonal", "RandomNormal"):
            setattr(keras.initializers, name, getattr(kerasinit, name))   # the whole codebase now uses kerasinit
        draws = {}
        for name in ("VarianceScaling", "GlorotUniform", "HeNormal", "LecunNormal", "KwonTanhUniform",
                     "XavierUniform", "LeakyHeNormal", "Orthogonal", "Identity"):
            init = getattr(kerasinit, name)(seed=1) if name != "Identity" else kerasinit.Identity()
            draws[name] = float(np.std(keras.ops.convert_to_numpy(init((40, 30)))))
        layer = keras.layers.Dense(30, kernel_initializer=keras.initializers.VarianceScaling(seed=1))
        layer.build((None, 40))
        errors = []
        for bad in (lambda: kerasinit.Identity()((2, 2, 2)), lambda: kerasinit.Orthogonal()((3,)),
                    lambda: kerasinit.VarianceScaling(scale=-1.0)):
            try:
                bad()
            except ValueError as exc:
                errors.append(str(exc)[:40])
        print(draws["VarianceScaling"], draws["GlorotUniform"], draws["Identity"], len(errors),
              float(np.std(keras.ops.convert_to_numpy(layer.kernel))))
    """)
    vs, glorot, identity, errors, dense = (float(v) for v in out.split()[-5:])
    assert abs(vs - (1 / 40) ** 0.5) < 0.02 and abs(glorot - (2 / 70) ** 0.5) < 0.02  # the right distributions
    assert abs(identity - np.std(np.eye(40, 30))) < 1e-6
    assert errors == 3  # each refusal is Keras's ValueError, not a RecursionError
    assert abs(dense - (1 / 40) ** 0.5) < 0.02
