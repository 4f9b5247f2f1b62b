"""Every kerasinit initializer in real layers: by object and by string, through ``.keras`` files
loaded in a fresh process that imports only kerasinit, JSON configs, ``model.export()``, tf_keras
and ``tf.distribute.MirroredStrategy``."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from conftest import ALL_CLASSES, example, run_python, supports, to_np
from keras import layers

import kerasinit
from kerasinit.initializers.registry import canonical_alias


def build_zoo(use_strings: bool = False) -> keras.Model:
    """One model with a layer per initializer and supported shape: Dense (kernel 8x8), Conv2D
    (3x3x3x4), and Conv1D (16 taps, 1 channel, 9 filters) for STFT. Seeded example objects, or
    registered-name strings with default arguments."""

    def init(cls, seed):
        return f"kerasinit>{cls.__name__}" if use_strings else example(cls, seed=seed)

    x_dense = keras.Input((8,), name="x_dense")
    x_img = keras.Input((6, 6, 3), name="x_img")
    x_seq = keras.Input((32, 1), name="x_seq")
    outs = []
    for i, cls in enumerate(ALL_CLASSES):
        if use_strings and cls.__name__ == "FromArray":
            continue  # needs its values: there is no default to name
        alias = canonical_alias(cls)
        if cls.__name__ == "STFT":
            y = layers.Conv1D(9, 16, kernel_initializer=init(cls, i), name=f"conv1d_{alias}")(x_seq)
            outs.append(layers.Flatten()(y))
            continue
        if supports(cls, (8, 8), defaults=use_strings):
            outs.append(layers.Dense(8, kernel_initializer=init(cls, i), name=f"dense_{alias}")(x_dense))
        if supports(cls, (3, 3, 3, 4), defaults=use_strings):
            y = layers.Conv2D(4, 3, kernel_initializer=init(cls, 100 + i), name=f"conv_{alias}")(x_img)
            outs.append(layers.Flatten()(y))
    y = layers.Concatenate()(outs)
    return keras.Model([x_dense, x_img, x_seq], layers.Dense(1, name="head")(y))


def kernels(model) -> dict[str, np.ndarray]:
    return {layer.name: to_np(layer.kernel) for layer in model.layers if hasattr(layer, "kernel")}


def init_configs(model) -> dict[str, dict]:
    return {layer.name: keras.initializers.serialize(layer.kernel_initializer) for layer in model.layers if hasattr(layer, "kernel")}


@pytest.fixture(scope="module")
def zoo():
    return build_zoo()


def test_every_initializer_works_by_object_in_dense_and_conv(zoo):
    named = {layer.name: layer for layer in zoo.layers}
    for cls in ALL_CLASSES:
        alias = canonical_alias(cls)
        found = [named[n] for n in (f"dense_{alias}", f"conv_{alias}", f"conv1d_{alias}") if n in named]
        assert found, f"{cls.__name__} is in no layer"
        for layer in found:
            assert type(layer.kernel_initializer) is cls
            if cls.is_random or cls.__name__ == "FromArray":  # the kernel is exactly what it draws
                np.testing.assert_array_equal(to_np(layer.kernel), to_np(layer.kernel_initializer(tuple(layer.kernel.shape))))


def test_every_initializer_works_by_string():
    model = build_zoo(use_strings=True)
    for layer in model.layers:
        if hasattr(layer, "kernel") and layer.name != "head":
            assert type(layer.kernel_initializer).__module__ == "kerasinit", layer.name
            assert np.all(np.isfinite(to_np(layer.kernel)))


def test_keras_file_loads_in_a_fresh_process_with_only_kerasinit(zoo, tmp_path):
    path = tmp_path / "zoo.keras"
    zoo.save(path)
    out = run_python(
        """
        import json, sys
        import keras, numpy as np
        import kerasinit  # the only import a user needs
        model = keras.models.load_model(sys.argv[1])
        np.savez(sys.argv[2], **{l.name: keras.ops.convert_to_numpy(l.kernel) for l in model.layers if hasattr(l, "kernel")})
        print(json.dumps({l.name: [type(l.kernel_initializer).__module__, keras.initializers.serialize(l.kernel_initializer)]
                          for l in model.layers if hasattr(l, "kernel")}))
        """,
        str(path), str(tmp_path / "kernels.npz"),
    )
    loaded = json.loads(out.strip().splitlines()[-1])
    expected = init_configs(zoo)
    assert set(loaded) == set(expected)
    for name, (module, config) in loaded.items():
        assert config == json.loads(json.dumps(expected[name])), name
        if name != "head":
            assert module == "kerasinit", name  # not silently the Keras built-in
    weights = np.load(tmp_path / "kernels.npz")
    for name, k in kernels(zoo).items():
        np.testing.assert_array_equal(weights[name], k)
    assert loaded["dense_identity"][1]["config"] == {"gain": 2.0}  # Keras would drop it


def test_json_config_round_trip_redraws_identical_weights(zoo):
    with pytest.warns(UserWarning, match="FromArray placeholder"):  # its values are weights, not config
        clone = keras.models.model_from_json(zoo.to_json())
    assert init_configs(clone) == init_configs(zoo)
    ours, theirs = kernels(zoo), kernels(clone)
    assert not theirs["dense_from_array"].any()  # zeros until weights are loaded, as warned
    clone.set_weights(zoo.get_weights())
    np.testing.assert_array_equal(kernels(clone)["dense_from_array"], ours["dense_from_array"])
    for layer in zoo.layers:
        if hasattr(layer, "kernel") and layer.name not in ("head", "dense_from_array"):
            np.testing.assert_array_equal(ours[layer.name], theirs[layer.name])  # seeded: same draws


def test_export_serves(zoo, tmp_path):
    import tensorflow as tf

    path = str(tmp_path / "exported")
    zoo.export(path, verbose=False)
    served = tf.saved_model.load(path)
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(2, 8)).astype("float32"), rng.normal(size=(2, 6, 6, 3)).astype("float32"),
          rng.normal(size=(2, 32, 1)).astype("float32")]
    np.testing.assert_allclose(served.serve(xs).numpy(), to_np(zoo(xs)), rtol=1e-5, atol=1e-5)


TF_KERAS_SAVE = """
import sys
import kerasinit          # kerasinit first: the import hook registers with tf_keras when it loads
import tf_keras
import numpy as np
names = sys.argv[2].split(",")
inp = tf_keras.Input((8,))
outs = [tf_keras.layers.Dense(8, kernel_initializer=getattr(kerasinit, n)(**({"seed": i} if getattr(kerasinit, n).is_random else {})), name=n)(inp)
        for i, n in enumerate(names)]
outs.append(tf_keras.layers.Dense(4, kernel_initializer="kerasinit>KwonTanhUniform", name="by_string")(inp))
model = tf_keras.Model(inp, tf_keras.layers.Concatenate()(outs))
model.compile("sgd", "mse")
model.fit(np.ones((16, 8)), np.ones((16, 8 * len(names) + 4)), epochs=1, verbose=0)
model.save(sys.argv[1] + "/m.keras")
model.save(sys.argv[1] + "/m.h5")
np.savez(sys.argv[1] + "/w.npz", *model.get_weights())
"""

TF_KERAS_LOAD = """
import sys, json
import tf_keras           # tf_keras first, then kerasinit: registration happens at kerasinit import
import kerasinit
import numpy as np
w = np.load(sys.argv[1] + "/w.npz")
result = {}
for fmt, kwargs in [("keras", {}), ("h5", {"custom_objects": kerasinit.tf_keras_custom_objects()})]:
    model = tf_keras.models.load_model(sys.argv[1] + "/m." + fmt, **kwargs)
    same = all(np.array_equal(a, w[f"arr_{i}"]) for i, a in enumerate(model.get_weights()))
    inits = {l.name: [type(l.kernel_initializer).__name__, type(l.kernel_initializer).__module__,
                      l.kernel_initializer.get_config()] for l in model.layers if hasattr(l, "kernel")}
    result[fmt] = {"same_weights": same, "inits": inits}
print(json.dumps(result))
"""


def test_tf_keras_layers_save_and_load(tmp_path):
    pytest.importorskip("tf_keras")  # installed by `make test` (extra [tfmot])
    names = ["GlorotUniform", "HeNormal", "Identity", "KwonTanhUniform", "XavierUniform", "LeakyHeNormal", "Orthogonal"]
    run_python(TF_KERAS_SAVE, str(tmp_path), ",".join(names))
    result = json.loads(run_python(TF_KERAS_LOAD, str(tmp_path)).strip().splitlines()[-1])
    for fmt in ("keras", "h5"):
        assert result[fmt]["same_weights"], fmt
        inits = result[fmt]["inits"]
        for i, n in enumerate(names):
            cls_name, module, config = inits[n]
            assert (cls_name, module) == (n, "kerasinit"), (fmt, n)
            assert config == json.loads(json.dumps(example_config(n, i))), (fmt, n)
        assert inits["by_string"][:2] == ["KwonTanhUniform", "kerasinit"]


def example_config(name: str, seed: int) -> dict:
    cls = getattr(kerasinit, name)
    return (cls(seed=seed) if cls.is_random else cls()).get_config()


def test_mirrored_strategy_gives_the_same_weights():
    out = run_python(
        """
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras, numpy as np, kerasinit
        def build():
            return keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, kernel_initializer=kerasinit.KwonTanhUniform(seed=4)),
                                     keras.layers.Dense(3, kernel_initializer="kerasinit>XavierNormal")])
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            m = build()
            m.compile("sgd", "mse")
        expected = kerasinit.KwonTanhUniform(seed=4)((6, 5)).numpy()
        print(strategy.num_replicas_in_sync, bool(np.array_equal(m.layers[0].kernel.numpy(), expected)))
        m.fit(np.ones((8, 6)), np.ones((8, 3)), epochs=1, batch_size=4, verbose=0)
        print(bool(np.all(np.isfinite(m.layers[1].kernel.numpy()))))
        """
    )
    lines = out.strip().splitlines()[-2:]
    assert lines[0] == "2 True"  # two replicas; the seeded draw is the same under the strategy
    assert lines[1] == "True"  # and it trains
