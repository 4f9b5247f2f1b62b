"""The TFMOT bridge (SPEC §4.3), against the real TFMOT and tf_keras.

Importing TFMOT sets ``TF_USE_LEGACY_KERAS=1`` in its process, so every check runs in fresh
interpreters (two per test, checks combined) and the pytest worker stays on Keras 3.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_python

SEMANTICS = """
import json, sys
import kerasinit.pruning as P
imported = sorted(m for m in ("tensorflow_model_optimization", "tf_keras") if m in sys.modules)
import numpy as np, tensorflow as tf, keras
from kerasinit.pruning import tfmot as B
import os
env_after_import = os.environ.get("TF_USE_LEGACY_KERAS")
tf_keras_is_keras3 = tf.keras.__name__.startswith("keras") and not tf.keras.__name__.startswith("tf_keras")
import tensorflow_model_optimization as tfmot

def run(schedule, steps):
    out = []
    for t in steps:
        due, s = schedule(tf.constant(t, tf.int64))
        out.append((bool(due), float(s)))
    return out

report = {"imported": imported, "diffs": {}, "env_after_import": env_after_import,
          "tf_keras_is_keras3": tf_keras_is_keras3}
same = [P.ConstantSparsity(0.6, 5, 95, 10), P.ConstantSparsity(0.3, 0, -1, 7),
        P.PolynomialDecay(0.1, 0.85, 10, 210, power=3, frequency=20), P.PolynomialDecay(0.0, 0.5, 0, 100, power=1.5, frequency=1)]
steps = list(range(0, 260))
for s in same:
    theirs = run(B.to_tfmot_schedule(s), steps)
    assert type(B.to_tfmot_schedule(s)).__module__.startswith("tensorflow_model_optimization")
    ours = [(s.should_prune(t), s.sparsity(t)) for t in steps]
    report["diffs"][repr(s)] = [max(abs(a[1] - b[1]) for a, b in zip(ours, theirs)), sum(a[0] != b[0] for a, b in zip(ours, theirs))]
# TFMOT's flaws, and the aligned kerasinit schedule TFMOT runs through the bridge
flat = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.8, 50, 50, frequency=10)
report["tfmot_nan"] = str(float(flat(tf.constant(50, tf.int64))[1]))
short = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.8, 0, 250, frequency=100)
report["tfmot_short"] = [t for t in range(400) if bool(short(tf.constant(t, tf.int64))[0])]
aligned = []
for s in same + [P.PolynomialDecay(0.0, 0.8, 50, 50, frequency=10), P.PolynomialDecay(0.0, 0.8, 0, 250, frequency=100)]:
    ks = B.KerasinitSchedule(s)
    got = run(ks, [t + 1 for t in steps])
    aligned.append(sum(g[0] != s.should_prune(t) or abs(g[1] - s.sparsity(t)) > 1e-6 for g, t in zip(got, steps)))
    assert B.KerasinitSchedule.from_config(ks.get_config()["config"]).schedule == s
report["aligned_mismatches"] = aligned

# masks: the same weights pruned natively (Keras 3) and by TFMOT (tf_keras)
import tf_keras as k
import kerasinit
def tfk_net():
    return k.Sequential([k.Input((8, 8, 1)), k.layers.Conv2D(4, 3, name="conv", kernel_initializer=kerasinit.HeNormal(seed=2)),
                         k.layers.Flatten(name="flat"), k.layers.Dense(16, name="hidden", kernel_initializer=kerasinit.GlorotUniform(seed=1)),
                         k.layers.Dense(3, name="out")])
tm = tfk_net()
native = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, name="conv"), keras.layers.Flatten(name="flat"),
                           keras.layers.Dense(16, name="hidden"), keras.layers.Dense(3, name="out")])
native.set_weights(tm.get_weights())
native_masks = P.prune(native, 0.7).get_masks()
pm = B.prune_low_magnitude(tm, P.ConstantSparsity(0.7, 0, frequency=1))
pm.compile(k.optimizers.SGD(0.0), "mse")
x = np.random.default_rng(0).normal(size=(8, 8, 8, 1)).astype("float32")
pm.fit(x, np.zeros((8, 3), "float32"), batch_size=8, epochs=1, verbose=0, callbacks=B.callbacks())
tfmot_masks = B.get_masks(pm)
report["mask_keys"] = [sorted(native_masks), sorted(tfmot_masks)]
report["mask_differences"] = {n: int((native_masks[n] != tfmot_masks[n]).sum()) for n in native_masks}
report["mask_sparsity"] = {n: float(1 - m.mean()) for n, m in tfmot_masks.items()}
report["tfmot_mask_dtype"] = [str(m.dtype) for _, m, _ in pm.layers[0].pruning_vars]
errors = []
for make in (lambda: B.prune_low_magnitude(tfk_net(), P.ConstantSparsity(0.5, 0), scope="global"),
             lambda: B.prune_low_magnitude(tfk_net(), P.ConstantSparsity(0.5, 0), layers=["nope"]),
             lambda: B.prune_low_magnitude(tfk_net(), P.ConstantSparsity(0.5, 0), layers=["flat"]),
             lambda: B.prune_low_magnitude(native, P.ConstantSparsity(0.5, 0)),
             lambda: B.prune_low_magnitude(tfk_net(), 0.5)):
    try:
        make()
        errors.append(None)
    except (TypeError, ValueError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
report["errors"] = errors
print(json.dumps(report))
"""


def test_schedules_and_masks_agree_with_tfmot():
    out = json.loads(run_python(SEMANTICS).strip().splitlines()[-1])
    assert out["imported"] == []  # import kerasinit.pruning stays free of TFMOT and tf_keras
    assert out["env_after_import"] is None and out["tf_keras_is_keras3"]  # the bridge leaves the caller's env alone
    for name, (max_sparsity_diff, due_mismatches) in out["diffs"].items():
        assert due_mismatches == 0, name
        assert max_sparsity_diff < 1e-6, name
    assert out["tfmot_nan"] == "nan"  # TFMOT's begin == end flaw, fixed here
    assert out["tfmot_short"] == [0, 100, 200]  # TFMOT never updates at end_step=250
    assert out["aligned_mismatches"] == [0] * 6
    assert out["mask_keys"][0] == out["mask_keys"][1] == ["conv/kernel", "hidden/kernel", "out/kernel"]
    assert out["mask_differences"] == {"conv/kernel": 0, "hidden/kernel": 0, "out/kernel": 0}
    assert all(s == pytest.approx(0.7, abs=0.03) for s in out["mask_sparsity"].values())
    assert out["tfmot_mask_dtype"] == ["<dtype: 'float32'>"]  # 4 bytes per weight; native: uint8
    e = out["errors"]
    assert e[0].startswith("ValueError") and "scope" in e[0] and "global" in e[0]
    assert e[1].startswith("ValueError") and "nope" in e[1] and "layers" in e[1]
    assert e[2].startswith("ValueError") and "nothing to prune" in e[2]
    assert e[3].startswith("TypeError") and "tf_keras.Model" in e[3] and "Pruner" in e[3]
    assert e[4].startswith("TypeError") and "schedule" in e[4]


TRAIN = """
import json, sys
import numpy as np, tf_keras as k
import kerasinit
from kerasinit import pruning as P
from kerasinit.pruning import tfmot as B
k.utils.set_random_seed(0)
model = k.Sequential([k.Input((20,)), k.layers.Dense(32, activation="relu", name="hidden", kernel_initializer=kerasinit.KwonReluUniform(seed=1)),
                      k.layers.Dense(3, name="out", kernel_initializer="kerasinit>XavierUniform")])
pm = B.prune_low_magnitude(model, P.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=45, frequency=10), overrides={"out": 0.5})
pm.compile(k.optimizers.Adam(1e-2), k.losses.SparseCategoricalCrossentropy(from_logits=True))
rng = np.random.default_rng(0)
x, y = rng.normal(size=(512, 20)).astype("float32"), rng.integers(0, 3, 512)
pm.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=B.callbacks())  # 32 steps: updates at 0, 10, 20, 30
pm.save(sys.argv[1])
masks = {n: m.tolist() for n, m in B.get_masks(pm).items()}
report = B.sparsity_report(pm)
print(json.dumps({"masks": masks, "sparsity": report.set_index("layer")["sparsity"].to_dict(),
                  "step": int(pm.layers[0].pruning_step.numpy())}))
"""

RESUME = """
import json, sys
import numpy as np, tf_keras as k
from kerasinit.pruning import tfmot as B
pm = B.load_model(sys.argv[1])
masks = {n: m.tolist() for n, m in B.get_masks(pm).items()}
step0 = int(pm.layers[0].pruning_step.numpy())
rng = np.random.default_rng(1)
x, y = rng.normal(size=(512, 20)).astype("float32"), rng.integers(0, 3, 512)
pm.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=B.callbacks())  # steps 32..47: updates at 40, 45
final = B.sparsity_report(pm).set_index("layer")["sparsity"].to_dict()
plain = B.strip(pm)
print(json.dumps({"masks": masks, "step0": step0, "final": final, "stripped": B.sparsity_report(plain).set_index("layer")["sparsity"].to_dict(),
                  "plain_layers": [type(l).__name__ for l in plain.layers], "init": type(plain.layers[0].kernel_initializer).__name__}))
"""


def test_tf_keras_model_with_kerasinit_initializers_prunes_trains_saves_and_resumes(tmp_path):
    path = str(tmp_path / "pruned.keras")
    first = json.loads(run_python(TRAIN, path).strip().splitlines()[-1])
    assert first["step"] == 32
    assert first["sparsity"]["hidden"] == pytest.approx(0.8 * (1 - (1 - 30 / 45) ** 3), abs=3e-3)
    assert first["sparsity"]["out"] == pytest.approx(0.4 * (1 - (1 - 30 / 45) ** 3), abs=0.02)
    second = json.loads(run_python(RESUME, path).strip().splitlines()[-1])
    assert second["step0"] == 32
    for name, mask in first["masks"].items():
        np.testing.assert_array_equal(np.array(second["masks"][name]), np.array(mask))
    assert second["final"]["hidden"] == pytest.approx(0.8, abs=3e-3)  # end_step 45 reached (TFMOT alone stops at 40)
    assert second["final"]["out"] == pytest.approx(0.4, abs=0.02)
    assert second["stripped"]["hidden"] == pytest.approx(0.8, abs=3e-3)
    assert second["plain_layers"] == ["Dense", "Dense"] and second["init"] == "KwonReluUniform"
