"""The experiments infer the loss from the model's output (softmax/sigmoid -> probabilities, otherwise
logits), record it, and flag trainings that end at chance level. Real (tiny) trainings, no mocks."""

from __future__ import annotations

import dataclasses
import json
import warnings

import keras
import numpy as np
import pytest

from kerasinit.experiments.compare import run_compare
from kerasinit.experiments.datasets import load
from kerasinit.experiments.lottery import run_lottery
from kerasinit.experiments.sparsity import run_prune_at_init
from kerasinit.experiments.training import ChanceLevelWarning, choose_loss, near_chance, output_form

PROBABILITIES = "sparse_categorical_crossentropy (from_logits=False)"
LOGITS = "sparse_categorical_crossentropy (from_logits=True)"
TINY = {"epochs": 2, "batch_size": 128, "learning_rate": 1e-2}


@pytest.fixture(scope="module")
def digits():
    return load("digits")


@pytest.fixture(scope="module")
def shuffled(digits):
    """Digits with training labels permuted apart from their inputs: nothing to learn."""
    rng = np.random.default_rng(0)
    return dataclasses.replace(digits, y_train=rng.permutation(digits.y_train), y_val=rng.permutation(digits.y_val))


def logits_model():
    """The form Keras's guides recommend: the last Dense has no activation (logits)."""
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])


class SoftmaxNet(keras.Model):
    def __init__(self, softmax=True, **kwargs):
        super().__init__(**kwargs)
        self.softmax = softmax
        self.hidden, self.out = keras.layers.Dense(8, activation="relu"), keras.layers.Dense(10)

    def call(self, x):
        y = self.out(self.hidden(x))
        return keras.ops.softmax(y) if self.softmax else y


def seq(*layers):
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(8, activation="relu"), *layers])


@pytest.mark.parametrize("model, form", [
    (lambda: seq(keras.layers.Dense(10)), "logits"),
    (lambda: seq(keras.layers.Dense(10, activation="softmax")), "probabilities"),
    (lambda: seq(keras.layers.Dense(10), keras.layers.Softmax()), "probabilities"),
    (lambda: seq(keras.layers.Dense(10), keras.layers.Activation("sigmoid")), "probabilities"),
    (lambda: seq(keras.layers.Dense(10, activation="log_softmax")), "logits"),
    (lambda: seq(keras.Sequential([keras.layers.Dense(10, activation="softmax")])), "probabilities"),
    (lambda: seq(keras.Sequential([keras.layers.Dense(10)])), "logits"),
])
def test_output_form_from_the_layers(model, form):
    assert output_form(model())[0] == form


def test_output_form_of_a_subclassed_model_from_a_probe(digits):
    x = digits.x_train[:16]
    for softmax, form in ((True, "probabilities"), (False, "logits")):
        net = SoftmaxNet(softmax)
        net(x)
        assert output_form(net, x)[0] == form


def test_choose_loss_names_the_form_and_keeps_the_zoos_loss():
    from kerasinit.experiments.models import build

    zoo = choose_loss(build("mlp", (64,), 10, 0, depth=1, width=8))
    assert zoo.name == PROBABILITIES and zoo.loss == "sparse_categorical_crossentropy"  # unchanged for the zoo
    assert "inferred" in zoo.source
    user = choose_loss(logits_model())
    assert user.name == LOGITS and user.loss.get_config()["from_logits"] is True
    assert "dense" in user.source and "logits" in user.source
    given = choose_loss(logits_model(), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert given.name == LOGITS and given.source == "given"


def test_a_given_probability_loss_on_logits_warns():
    with pytest.warns(UserWarning, match="from_logits"):
        choose_loss(logits_model(), "sparse_categorical_crossentropy")


def test_lottery_on_a_logits_model_trains_as_with_from_logits(digits, tmp_path):
    inferred = run_lottery(logits_model, digits, rounds=1, controls=[], out=tmp_path, plots=False, **TINY)
    given = run_lottery(logits_model, digits, rounds=1, controls=[], loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), **TINY)
    acc = [r["ticket"]["test_accuracy"] for r in inferred.rows]
    assert acc == [r["ticket"]["test_accuracy"] for r in given.rows]  # bit-identical trainings
    assert min(acc) > 0.8, acc  # on probabilities the same run reaches ~0.64
    assert inferred.config["loss"] == LOGITS
    assert json.loads((tmp_path / "results.json").read_text())["config"]["loss"] == LOGITS
    assert all(r["ticket"]["status"] == "ok" for r in inferred.rows)


def test_compare_and_prune_at_init_infer_and_record_the_loss(digits):
    cmp = run_compare(logits_model, digits, ["glorot_uniform"], seeds=1, optimizer="adam", **TINY)
    assert cmp.config["loss"] == LOGITS and cmp.to_dict()["config"]["loss"] == LOGITS
    assert cmp.runs[0].test_accuracy > 0.8 and cmp.runs[0].status == "ok"
    pai = run_prune_at_init(logits_model, digits, methods=["snip"], sparsities=[0.5], epochs=2, batch_size=128,
                            learning_rate=1e-2)
    assert pai.config["loss"] == LOGITS
    assert pai.rows[0]["test_accuracy"] > 0.8 and pai.rows[0]["status"] == "ok"


def test_near_chance_threshold():
    assert near_chance(0.147, 0.1) and not near_chance(0.2, 0.1)  # chance + 10% of the way to 1
    assert near_chance(0.54, 0.5) and not near_chance(0.56, 0.5)


def test_lottery_flags_training_at_chance_level(shuffled):
    with pytest.warns(ChanceLevelWarning, match=r"chance.*from_logits.*learning rate.*labels") as caught:
        results = run_lottery("mlp", shuffled, model_options={"depth": 1, "width": 16}, rounds=1, controls=["random"],
                              **TINY)
    assert len([w for w in caught if issubclass(w.category, ChanceLevelWarning)]) == 1  # once per experiment
    assert results.rows[0]["ticket"]["status"] == "stalled"
    assert results.rows[1]["random"]["status"] == "stalled"
    assert "stalled" in results.table()
    assert "stalled" in results.display_rows()[0]["status"]


def test_prune_at_init_and_compare_flag_training_at_chance_level(shuffled):
    with pytest.warns(ChanceLevelWarning, match="labels"):
        pai = run_prune_at_init("mlp", shuffled, methods=["random"], sparsities=[0.5], epochs=2, batch_size=128,
                                model_options={"depth": 1, "width": 16})
    assert pai.rows[0]["status"] == "stalled" and "stalled" in pai.table()
    with pytest.warns(ChanceLevelWarning, match="initializer"):
        cmp = run_compare("mlp", shuffled, ["he_normal"], depth=1, width=16, seeds=1, epochs=2)
    assert cmp.runs[0].status == "stalled"


def test_no_chance_warning_when_training_works(digits):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChanceLevelWarning)
        results = run_lottery("mlp", digits, model_options={"depth": 1, "width": 16}, rounds=1, controls=[], **TINY)
    assert results.rows[-1]["ticket"]["status"] == "ok"
    assert results.config["loss"] == PROBABILITIES
