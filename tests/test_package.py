"""``import kerasinit``: the same light import in every process, and registration with Keras whenever Keras loads."""

from __future__ import annotations

import json

import pytest
from conftest import run_python

_LOADED = """
    import json, sys
    sys.argv = {argv!r}
    import kerasinit
    loaded = sorted(m for m in sys.modules if m == "kerasinit" or m.startswith("kerasinit."))
    heavy = sorted(m for m in ("keras", "tensorflow", "jax", "torch", "numpy") if m in sys.modules)
    import keras
    registered = keras.saving.get_registered_object("kerasinit>KwonTanhUniform") is not None
    alias = keras.layers.Dense(2, kernel_initializer="kwon_tanh_uniform").kernel_initializer
    print(json.dumps({{"loaded": loaded, "heavy": heavy, "registered": registered,
                      "alias": type(alias).__module__ + "." + type(alias).__name__}}))
"""


def test_import_kerasinit_is_the_same_whatever_sys_argv_holds():
    seen = [json.loads(run_python(_LOADED.format(argv=argv)).splitlines()[-1])
            for argv in (["kerasinit", "compare"], ["python"], ["-m"])]
    assert seen[0] == seen[1] == seen[2], seen
    assert seen[0]["heavy"] == [] and seen[0]["loaded"] == ["kerasinit", "kerasinit.compat"]
    # Keras imported after kerasinit: the initializers registered as Keras finished loading
    assert seen[0]["registered"] and seen[0]["alias"] == "kerasinit.KwonTanhUniform"  # the registered class


def test_keras_first_then_kerasinit_registers_at_once_and_names_load_on_use():
    out = run_python("""
        import sys, keras
        import kerasinit
        assert keras.saving.get_registered_object("kerasinit>XavierUniform") is kerasinit.XavierUniform
        assert "kerasinit.pruning" not in sys.modules and "kerasinit.monitor" not in sys.modules
        assert kerasinit.mup is __import__("kerasinit.policies.mup", fromlist=["plan"])
        import kerasinit.mup as old_path
        assert old_path.plan is kerasinit.policies.mup.plan
        assert kerasinit.reinitialize is kerasinit.policies.reinitialize and kerasinit.lsuv is kerasinit.policies.lsuv
        assert "KwonTanhUniform" in dir(kerasinit) and "VarianceMonitor" in kerasinit.__all__
        print("ok")
    """)
    assert out.strip().endswith("ok")


@pytest.mark.parametrize("first", [
    "from kerasinit.experiments.sparsity import run_prune_at_init",  # Keras first imported by a kerasinit module
    "import kerasinit.pruning",
    "from kerasinit.monitor import VarianceMonitor",
    "import keras, kerasinit.layers",
    "import kerasinit.cli",
])
def test_every_first_import_registers_the_initializers(first):
    out = run_python(f"""
        {first}
        import keras
        print(keras.saving.get_registered_object("kerasinit>KwonTanhUniform") is not None)
    """)
    assert out.strip().splitlines()[-1] == "True"
