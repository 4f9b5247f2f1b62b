"""register_policy: reinitialize(model, policy=name) finds structure-aware policies in one registry."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import to_np

import kerasinit
from kerasinit.policies import POLICIES, register_policy


def test_the_built_in_policies_are_registered():
    assert list(POLICIES) == ["fixup", "skipinit", "gpt2", "t_fixup", "mimetic"]


def test_a_registered_policy_runs_through_reinitialize():
    calls = []

    @register_policy("halve_everything")
    def halve(model, seed=None):
        calls.append(seed)
        rows = []
        for layer in model.layers:
            layer.kernel.assign(to_np(layer.kernel) / 2)
            rows.append({"layer": layer.name, "weight": "kernel"})
        return pd.DataFrame(rows)

    try:
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, kernel_initializer="ones")])
        report = kerasinit.reinitialize(model, policy="halve_everything", seed=7)
        assert calls == [7] and list(report.layer) == [model.layers[0].name]
        assert np.all(to_np(model.layers[0].kernel) == 0.5)
    finally:
        del POLICIES["halve_everything"]


def test_register_policy_refuses_bad_arguments():
    with pytest.raises(ValueError, match="reserved"):
        register_policy("auto")
    with pytest.raises(ValueError, match="identifier"):
        register_policy("two words")
    with pytest.raises(ValueError, match="registered already"):
        register_policy("fixup")(lambda model, seed=None: None)
    with pytest.raises(TypeError, match="expected a function"):
        register_policy("not_callable")(3)
