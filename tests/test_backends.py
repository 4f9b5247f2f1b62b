"""Backend neutrality of the sources and the lazy package (the features themselves run on every
backend in tests/test_backend_matrix.py)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("module", ["kerasinit.compat", "kerasinit.initializers.describe", "kerasinit.initializers"])
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
