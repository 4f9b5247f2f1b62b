"""The score registry: prune_at_init, run_prune_at_init, the CLI and the docs all list kerasinit.pruning.SCORES."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasinit.cli import build_parser
from kerasinit.pruning import SCORES, Score, prune_at_init, register_score
from kerasinit.pruning.scores import default_methods

ROOT = Path(__file__).resolve().parents[2]
BUILT_IN = ["magnitude", "random", "snip", "grasp", "synflow"]


class _Position(Score):
    """Scores each weight by its flat position: the last ones are kept, exactly."""

    def compute(self, masked):
        return {name: np.arange(w.size, dtype="float64").reshape(w.shape) for name, w in zip(self.names, masked, strict=True)}


@pytest.fixture
def position_score():
    cls = register_score("by_position", needs_data=False)(type("ByPosition", (_Position,), {}))
    yield cls
    del SCORES["by_position"]


def _prune_at_init_help() -> str:
    parser = build_parser()
    sub = next(a for a in parser._subparsers._group_actions if a.dest == "command")
    return sub.choices["prune-at-init"].format_help()


def test_the_built_in_scores_in_registration_and_default_order():
    assert list(SCORES)[:5] == BUILT_IN
    assert default_methods()[:5] == ("snip", "grasp", "synflow", "magnitude", "random")  # baselines last
    assert [SCORES[m].needs_data for m in BUILT_IN] == [False, False, True, True, False]
    assert SCORES["synflow"].iterations == 100 and not SCORES["random"].iterative


def test_every_built_in_score_is_in_the_cli_help_and_the_docs():
    """The command's choices are the built-in registry's (kerasinit/cli/names.py, checked equal to it by
    tests/test_cli_names.py): a score registered by the user's own code is for the library, not the command."""
    text = " ".join(_prune_at_init_help().split())
    for name in BUILT_IN:
        assert re.search(rf"\b{name}\b", text), name
    docs = (ROOT / "docs" / "pruning_at_init.md").read_text()
    table = docs[docs.index("## Methods"):docs.index("### Your own score")]
    for name in BUILT_IN:
        assert f'| `"{name}"` |' in table, name


def test_the_installed_command_lists_the_registry():
    script = Path(sys.executable).with_name("kerasinit")
    out = subprocess.run([str(script), "prune-at-init", "--help"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    help_text = " ".join(out.stdout.split())
    assert all(re.search(rf"\b{name}\b", help_text) for name in BUILT_IN), help_text


def test_a_registered_score_prunes_by_its_own_numbers(position_score):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, name="a"), keras.layers.Dense(2, name="b")])
    pruner = prune_at_init(model, 0.5, "by_position", distribution="uniform")
    assert pruner.method == "by_position" and pruner.iterations == 1
    masks = pruner.get_masks()
    assert masks["a/kernel"].ravel().tolist() == [0] * 12 + [1] * 12  # the 12 highest positions kept
    assert masks["b/kernel"].ravel().tolist() == [0] * 6 + [1] * 6


def test_a_score_that_needs_data_is_refused_without_it(position_score):
    cls = register_score("by_position_on_data", needs_data=True)(type("ByPositionOnData", (_Position,), {}))
    try:
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6)])
        with pytest.raises(ValueError, match="argument `data` is required for the methods .*by_position_on_data"):
            prune_at_init(model, 0.5, "by_position_on_data")
    finally:
        del SCORES[cls.name]


def test_register_score_refuses_bad_arguments(position_score):
    with pytest.raises(TypeError, match="subclass of kerasinit.pruning.Score"):
        register_score("plain", needs_data=False)(object)
    with pytest.raises(ValueError, match="registered already"):
        register_score("snip", needs_data=True)(type("Other", (Score,), {}))
    with pytest.raises(ValueError, match="identifier"):
        register_score("not a name", needs_data=False)
    with pytest.raises(ValueError, match="`iterations`"):
        register_score("zero_rounds", needs_data=False, iterations=0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6)])
    with pytest.raises(ValueError, match=r"`method` must be one of \['magnitude', 'random', 'snip', 'grasp', 'synflow', "
                                         r"'by_position'\]"):
        prune_at_init(model, 0.5, "nope")


@pytest.mark.parametrize("name", ["rigl", "set", "static"])
def test_a_score_may_not_take_a_sparse_training_methods_name(name):
    """run_prune_at_init reads rigl/set/static as SparseTraining methods: a score by that name would be shadowed."""
    with pytest.raises(ValueError, match=f"argument `name` '{name}' is a sparse-training method"):
        @register_score(name, needs_data=False)
        class Shadow(Score):
            def compute(self, masked):  # noqa: ANN001, ANN201
                return masked
    assert name not in SCORES
