"""The command's Keras-free copy of the registries' names (kerasinit/cli/names.py) equals the registries."""

from __future__ import annotations

from kerasinit.cli import names
from kerasinit.cli.names import _generated

FIX = "the registries changed: run `python -m kerasinit.cli.names` to rewrite kerasinit/cli/names.py"


def test_the_commands_names_are_the_registries():
    namespace: dict = {}
    exec(_generated(), namespace)  # the block `python -m kerasinit.cli.names` would write
    for key in ("INITIALIZERS", "INITIALIZER_ALIASES", "SCORES", "ACTIVATIONS"):
        assert getattr(names, key) == namespace[key], f"{key}: {FIX}"


def test_every_name_the_command_accepts_resolves():
    from kerasinit.initializers.registry import resolve
    from kerasinit.pruning.scores import score_class

    for name in names.INITIALIZERS + names.INITIALIZER_ALIASES:
        resolve(name)  # the class (some need arguments to be built, e.g. from_array's values)
    for name in names.SCORES:
        score_class(name)


def test_the_commands_sparse_training_names_are_the_librarys():
    from kerasinit.pruning import sparse_training
    from kerasinit.pruning.scores.base import RESERVED

    assert names.SPARSE_TRAINING == sparse_training.METHODS == RESERVED
    assert sorted(names.DROP_SCHEDULES) == sorted(sparse_training.DROP_SCHEDULES)
