"""``get``/``serialize``/``deserialize`` and bad input (SPEC §2, §8), with a hypothesis fuzz."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import ALL_CLASSES, example, to_np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kerasinit


@pytest.mark.parametrize(
    "identifier, cls",
    [
        ("kerasinit>KwonTanhUniform", kerasinit.KwonTanhUniform),
        ("KwonTanhUniform", kerasinit.KwonTanhUniform),
        ("kwon_tanh_uniform", kerasinit.KwonTanhUniform),
        ("xavier_uniform", kerasinit.XavierUniform),
        ("normalized_xavier_uniform", kerasinit.NormalizedXavierUniform),
        ("glorot_uniform", kerasinit.GlorotUniform),
        ("he_normal", kerasinit.HeNormal),
        ("normal", kerasinit.RandomNormal),
        ("uniform", kerasinit.RandomUniform),
        ("zero", kerasinit.Zeros),
        ("IdentityInitializer", kerasinit.Identity),
        ("OrthogonalInitializer", kerasinit.Orthogonal),
        ("STFTInitializer", kerasinit.STFT),
        (kerasinit.LeakyHeUniform, kerasinit.LeakyHeUniform),
        ({"class_name": "HeUniform", "config": {"seed": 3}}, kerasinit.HeUniform),
        ({"class_name": "KwonUniform", "config": {"activation": "tanh"}, "registered_name": "kerasinit>KwonUniform"}, kerasinit.KwonUniform),
    ],
)
def test_get_resolves_every_kind_of_identifier(identifier, cls):
    init = kerasinit.get(identifier)
    assert type(init) is cls


def test_get_passes_instances_callables_and_none_through():
    init = kerasinit.XavierNormal(seed=1)
    assert kerasinit.get(init) is init
    fn = lambda shape, dtype=None: keras.ops.zeros(shape, dtype)  # noqa: E731
    assert kerasinit.get(fn) is fn
    assert kerasinit.get(None) is None
    builtin = keras.initializers.GlorotUniform()
    assert kerasinit.get(builtin) is builtin


def test_keras_builtin_config_resolves_to_the_mirror():
    config = keras.initializers.serialize(keras.initializers.GlorotUniform(seed=5))
    init = kerasinit.get(config)
    assert type(init) is kerasinit.GlorotUniform
    np.testing.assert_array_equal(to_np(init((4, 3))), to_np(keras.initializers.GlorotUniform(seed=5)((4, 3))))


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_serialize_deserialize_round_trip(cls):
    init = example(cls)
    config = kerasinit.serialize(init)
    assert config == keras.initializers.serialize(init)
    assert config["registered_name"] == f"kerasinit>{cls.__name__}"
    assert config["module"] == "kerasinit"
    clone = kerasinit.deserialize(config)
    assert type(clone) is cls and clone.get_config() == init.get_config()
    # Keras's own deserializer finds the class through the registration alone
    assert type(keras.initializers.deserialize(config)) is cls


def test_snake_case_names_work_in_layers():
    layer = keras.layers.Dense(3, kernel_initializer="kwon_tanh_uniform")
    assert type(layer.kernel_initializer) is kerasinit.KwonTanhUniform
    # Keras's own names still give Keras's classes in layers (we never shadow them)
    assert type(keras.layers.Dense(3).kernel_initializer) is keras.initializers.GlorotUniform


BAD_INPUT = [
    (lambda: kerasinit.VarianceScaling(scale=-1.0), ValueError, "scale"),
    (lambda: kerasinit.VarianceScaling(scale=0.0), ValueError, "scale"),
    (lambda: kerasinit.VarianceScaling(scale="big"), TypeError, "scale"),
    (lambda: kerasinit.VarianceScaling(mode="fan_sum"), ValueError, "mode.*fan_avg"),
    (lambda: kerasinit.VarianceScaling(distribution="cauchy"), ValueError, "distribution.*uniform"),
    (lambda: kerasinit.KwonUniform(activation="softplus"), ValueError, "activation.*tanh"),
    (lambda: kerasinit.KwonUniform(factor=-2.0), ValueError, "factor"),
    (lambda: kerasinit.LeakyHeNormal(negative_slope="x"), TypeError, "negative_slope"),
    (lambda: kerasinit.RandomNormal(stddev=0.0), ValueError, "stddev"),
    (lambda: kerasinit.RandomNormal(mean=float("nan")), ValueError, "mean"),
    (lambda: kerasinit.RandomUniform(minval=1.0, maxval=0.0), ValueError, "minval < maxval"),
    (lambda: kerasinit.Orthogonal(gain=0.0), ValueError, "gain"),
    (lambda: kerasinit.HeNormal(truncated="no"), TypeError, "truncated"),
    (lambda: kerasinit.GlorotUniform(seed="abc"), ValueError, "seed"),  # Keras raises ValueError
    (lambda: kerasinit.GlorotUniform(seed=1.5), ValueError, "seed"),
    # a zero fan is an empty kernel, which Keras draws (drop-in: so do we); its expected std is undefined
    (lambda: kerasinit.GlorotUniform().describe((0, 10)), ValueError, "shape.*fan"),
    (lambda: kerasinit.VarianceScaling(mode="fan_out").describe((3, 0)), ValueError, "shape.*fan"),
    (lambda: kerasinit.GlorotUniform()((3, -1)), ValueError, "shape"),
    (lambda: kerasinit.GlorotUniform()("3x3"), TypeError, "shape"),
    (lambda: kerasinit.RandomNormal()((3, 3), dtype="int32"), TypeError, "dtype.*float32"),
    (lambda: kerasinit.GlorotUniform()((3, 3), dtype="int32"), TypeError, "dtype"),
    (lambda: kerasinit.Identity()((3, 3, 3)), ValueError, "shape.*2-D"),
    (lambda: kerasinit.Orthogonal()((5,)), ValueError, "shape.*rank"),
    (lambda: kerasinit.STFT()((5, 5)), ValueError, "shape"),
    (lambda: kerasinit.STFT(side="left"), ValueError, "side.*real"),
    (lambda: kerasinit.get("kerasinit>Nope"), ValueError, "Allowed names.*glorot_uniform"),
    (lambda: kerasinit.get(3.5), ValueError, "^Could not interpret initializer identifier: 3.5 .*identifier"),
    (lambda: kerasinit.deserialize({"class_name": "Nope", "config": {}}), ValueError, "Nope"),
    (lambda: kerasinit.deserialize({"config": {}}), ValueError, "class_name"),
    (lambda: kerasinit.deserialize({"class_name": "GlorotUniform", "config": {"bogus": 1}}), TypeError, "bogus.*seed"),
    (lambda: kerasinit.deserialize({"class_name": "GlorotUniform", "config": {"seed": {"x": 1}}}), ValueError, "seed"),
    (lambda: kerasinit.describe("glorot_uniform", (0, 4)), ValueError, "shape"),
]


@pytest.mark.parametrize("make, exc, pattern", BAD_INPUT, ids=[p for _, _, p in BAD_INPUT])
def test_bad_input_gets_a_clear_error(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


# ----------------------------------------------------------------------------- fuzz
NAMES = [*kerasinit.CATALOGUE, "glorot_uniform", "kerasinit>KwonTanhUniform", "normal", "Nope", "", "Initializer"]
KEYS = ["seed", "scale", "mode", "distribution", "mean", "stddev", "minval", "maxval", "gain", "value", "activation",
        "factor", "negative_slope", "truncated", "input_axes", "output_axes", "side", "window", "scaling", "periodic",
        "groups", "nonzero_per_unit", "sparsity", "shape", "values", "dtype", "sha256", "bogus"]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-5, 5), st.text(max_size=6),
    st.sampled_from(["fan_in", "fan_avg", "uniform", "normal", "NORMAL", "tanh", "relu", "hann", "real", "imag", "density",
                     "float32", "int32", "float64"]),
    st.sampled_from([[8, 8], [10, 10], [30, 10], [16, 1, 9], [3, 3, 4, 8], [3, 3, 4, 4]]),
    st.lists(st.integers(-3, 3), max_size=3), st.lists(st.floats(-2, 2), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
CONFIGS = st.fixed_dictionaries(
    {"class_name": st.sampled_from(NAMES)},
    optional={
        "config": st.one_of(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4), st.none(), st.integers()),
        "module": st.sampled_from(["kerasinit", "keras.initializers", None]),
        "registered_name": st.one_of(st.none(), st.sampled_from(NAMES)),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIGS)
def test_fuzz_config_builds_a_working_initializer_or_raises_clearly(config):
    try:
        init = kerasinit.get(config)
    except (ValueError, TypeError):
        return
    except AttributeError as exc:  # what Keras itself raises (e.g. distribution=5): its type, our detail appended
        assert "[kerasinit:" in str(exc) and "argument `" in str(exc), exc
        return
    shape = type(init).example_shape
    try:
        out = init(shape)
    except ValueError as exc:  # only shape-dependent arguments (axes, window length) may fail here
        assert "shape" in str(exc), exc
        return
    assert tuple(out.shape) == shape
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


# ----------------------------------------------------------------------------- names (issue 22)
def test_canonical_names_read_as_words():
    """The snake_case name `kerasinit list` prints: no one-letter word from a stylized class name
    (ZerO gave 'zer_o', AlexNetNormal 'alex_net_normal'), one name per class, resolving to it."""
    from kerasinit.initializers.registry import REGISTERED, canonical_alias, resolve

    assert canonical_alias(kerasinit.ZerO) == "zero_init"
    assert canonical_alias(kerasinit.AlexNetNormal) == "alexnet_normal"
    assert canonical_alias(kerasinit.MimeticQueryKey) == "mimetic_qk"
    assert canonical_alias(kerasinit.MimeticValueOutput) == "mimetic_vo"
    assert canonical_alias(kerasinit.STFT) == "stft" and canonical_alias(kerasinit.KwonTanhUniform) == "kwon_tanh_uniform"
    canonical = {canonical_alias(cls): cls for cls in REGISTERED.values()}
    assert len(canonical) == len(REGISTERED)  # unique
    for name, cls in canonical.items():
        assert all(len(word) > 1 for word in name.split("_")), name
        assert resolve(name) is cls
    # names accepted before keep resolving (saved configs and layer arguments still load)
    for old, cls in (("zer_o", kerasinit.ZerO), ("alex_net_normal", kerasinit.AlexNetNormal), ("alexnet", kerasinit.AlexNetNormal),
                     ("mimetic_query_key", kerasinit.MimeticQueryKey), ("mimetic_value_output", kerasinit.MimeticValueOutput)):
        assert type(kerasinit.get(old)) is cls and type(keras.initializers.get(old)) is cls


def test_registered_holds_every_class_get_resolves():
    """`kerasinit list` shows REGISTERED: every class a name resolves to (describe accepts them all),
    the catalogue plus the structured halves kept out of it (mimetic pair)."""
    from kerasinit.initializers.registry import _NAMES, REGISTERED

    assert set(REGISTERED.values()) == set(_NAMES.values())
    assert set(kerasinit.CATALOGUE.items()) <= set(REGISTERED.items())
    assert {"MimeticQueryKey", "MimeticValueOutput"} <= set(REGISTERED) - set(kerasinit.CATALOGUE)
    with pytest.raises(ValueError, match="Allowed names.*mimetic_qk.*zero_init"):
        kerasinit.get("no_such_initializer")


def test_register_refuses_a_name_taken_by_another_class():
    from kerasinit.initializers.registry import register

    with pytest.raises(ValueError, match="zero_init.*ZerO"):
        @register("zero_init")
        class ClashingInit(kerasinit.Zeros):
            pass
    # refused before anything was registered anywhere
    assert "ClashingInit" not in kerasinit.initializers.registry.REGISTERED
    assert "kerasinit>ClashingInit" not in keras.saving.get_custom_objects()
    assert type(kerasinit.get("zero_init")) is kerasinit.ZerO
