"""Dynamic sparse training (RigL, SET) and static sparse training: ``kerasinit.pruning.sparse_training``.

Small real models trained with ``fit`` (TensorFlow in-process; JAX and PyTorch in subprocesses);
an observer callback listed after ``SparseTraining`` reads masks, weights and Adam's moments
between steps. Exact checks (counts, zeros, positions) unless a tolerance is stated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from kerasinit._arrays import to_numpy
from kerasinit.monitor import VarianceMonitor
from kerasinit.pruning import keep_count, load_model, strip
from kerasinit.pruning.constraint import MaskConstraint
from kerasinit.pruning.distributions import erk_densities
from kerasinit.pruning.sparse_training import SparseTraining, drop_fraction_at, optimizer_slots

RNG = np.random.default_rng(0)
X = RNG.standard_normal((128, 12)).astype("float32")
Y = RNG.integers(0, 4, 128)


def _mlp(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(32, activation="relu", name="h1"),
                              keras.layers.Dense(16, activation="relu", name="h2"),
                              keras.layers.Dense(4, activation="softmax", name="out")])
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    return model


class Observer(keras.callbacks.Callback):
    """After each batch: masks, kernels; before each batch (after SparseTraining's update): kernels and Adam slots."""

    def __init__(self, st: SparseTraining) -> None:
        super().__init__()
        self.st, self.after, self.before = st, [], []

    def _state(self) -> dict:
        pruner = self.st.pruner
        out = {}
        for w in pruner.weights:
            slots = optimizer_slots(self.model.optimizer, w.variable)
            out[w.name] = (pruner.masks[w.name].numpy().astype(bool), to_numpy(w.variable),
                           [to_numpy(s) for s in slots])
        return out

    def on_train_batch_begin(self, batch, logs=None):
        self.before.append(self._state())

    def on_train_batch_end(self, batch, logs=None):
        self.after.append(self._state())


def _fit(method: str, epochs: int = 3, **kwargs) -> tuple[keras.Model, SparseTraining, Observer]:
    model = _mlp()
    args = {"sparsity": 0.8, "update_every": 3, "drop_fraction": 0.5, "end_step": 15, "seed": 3}
    args.update(kwargs)
    st = SparseTraining(method, data=(X, Y) if method == "rigl" else None, **args)
    observer = Observer(st)
    model.fit(X, Y, batch_size=16, epochs=epochs, shuffle=False, verbose=0, callbacks=[st, observer])
    return model, st, observer


@pytest.mark.parametrize("method", ["rigl", "set"])
def test_constant_sparsity_per_layer_at_every_step(method):
    model, st, obs = _fit(method)
    shapes = [tuple(w.variable.shape) for w in st.pruner.weights]
    densities = erk_densities(shapes, 0.2)
    expected = {w.name: keep_count(int(np.prod(s)), 1 - d) for w, s, d in zip(st.pruner.weights, shapes, densities, strict=True)}
    assert len(obs.after) == 24
    for state in obs.after:
        for name, (mask, w, _) in state.items():
            assert int(mask.sum()) == expected[name], name
            assert np.all(w[~mask] == 0), name  # exact zeros outside the mask
    # the masks did move: 5 updates (steps 3, 6, 9, 12, 15), each dropping and growing entries
    assert sorted({r["step"] for r in st.history}) == [3, 6, 9, 12, 15]
    assert all(r["dropped"] == r["grown"] for r in st.history)
    moved = [not np.array_equal(a["h1/kernel"][0], b["h1/kernel"][0]) for a, b in zip(obs.after, obs.after[1:], strict=False)]
    assert sum(moved) >= 4


def test_grown_weights_and_adam_moments_start_at_zero():
    _, st, obs = _fit("rigl")
    checked = 0
    for step in (3, 6, 9, 12, 15):  # before[step]: seen right after the update at step `step`
        for name, (mask, w, slots) in obs.before[step].items():
            old_mask, _, old_slots = obs.after[step - 1][name]
            fresh = mask & ~old_mask
            if not fresh.any():
                continue
            assert len(slots) == 2  # Adam: m and v
            assert np.all(w[fresh] == 0)
            for slot, old in zip(slots, old_slots, strict=True):
                assert np.any(old[fresh] != 0)  # the dense gradient had filled them: the zeroing is the callback's
                assert np.all(slot[fresh] == 0)
                kept = mask & old_mask
                np.testing.assert_array_equal(slot[kept], old[kept])  # the rest untouched
            checked += 1
    assert checked >= 5


def test_rigl_grows_the_largest_dense_gradient_on_a_hand_built_dense():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, use_bias=False, name="d")])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    w0 = np.array([[0.9, -0.1, 0.5], [0.2, -0.8, 0.05], [0.3, 0.7, -0.6], [-0.4, 0.15, 1.0]], "float32")
    mask = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 0], [1, 0, 0]], "uint8")  # 6 active of 12: sparsity 0.5
    st = SparseTraining("rigl", 0.5, distribution="uniform", update_every=10, drop_fraction=0.5,
                        drop_schedule="constant", end_step=100, seed=0).build(model)
    model.get_layer("d").kernel.assign(w0)
    st.pruner.set_masks({"d/kernel": mask})
    x = np.random.default_rng(1).standard_normal((8, 4)).astype("float32")
    y = np.random.default_rng(2).standard_normal((8, 3)).astype("float32")
    assert not st.update(5, x, y)  # not an update step
    assert st.update(10, x, y)
    sparse = w0 * mask
    grad = 2.0 / (8 * 3) * x.T @ (x @ sparse - y)  # d mean((xW - y)^2) / dW, dense
    k = 3  # round(0.5 * 6)
    active = np.flatnonzero(mask.ravel())
    dropped = active[np.argsort(np.abs(sparse.ravel()[active]), kind="stable")[:k]]
    kept = np.setdiff1d(active, dropped)
    candidates = np.setdiff1d(np.arange(12), kept)
    grown = candidates[np.argsort(-np.abs(grad.ravel()[candidates]), kind="stable")[:k]]
    expected = np.zeros(12, "uint8")
    expected[np.concatenate([kept, grown])] = 1
    np.testing.assert_array_equal(st.masks["d/kernel"].ravel(), expected)
    new_w = to_numpy(model.get_layer("d").kernel).ravel()
    fresh = np.setdiff1d(grown, active)
    assert fresh.size and np.all(new_w[fresh] == 0)
    np.testing.assert_array_equal(new_w[kept], w0.ravel()[kept])
    [record] = st.history
    assert (record["dropped"], record["grown"], record["regrown"]) == (3, 3, int(np.isin(grown, dropped).sum()))


def test_set_grows_at_random_seeded_and_reproducible():
    runs = {seed: _fit("set", epochs=1, seed=seed)[1] for seed in (3, 4)}
    again = _fit("set", epochs=1, seed=3)[1]
    for name in runs[3].masks:
        np.testing.assert_array_equal(runs[3].masks[name], again.masks[name])
    assert runs[3].history == again.history
    assert any(not np.array_equal(runs[3].masks[n], runs[4].masks[n]) for n in runs[3].masks)


def test_static_never_changes_the_mask():
    _, st, obs = _fit("static", epochs=2)
    first = obs.after[0]
    for state in obs.after:
        for name, (mask, _, _) in state.items():
            np.testing.assert_array_equal(mask, first[name][0])
    assert st.history == []


def test_no_update_after_end_step():
    _, st, obs = _fit("set", epochs=3, end_step=7, drop_schedule="constant")
    assert sorted({r["step"] for r in st.history}) == [3, 6]
    for a, b in zip(obs.after[6:], obs.after[7:], strict=False):
        for name in a:
            np.testing.assert_array_equal(a[name][0], b[name][0])


def test_cosine_schedule_formula():
    assert drop_fraction_at(0, 0.3, 100) == pytest.approx(0.3)
    assert drop_fraction_at(50, 0.3, 100) == pytest.approx(0.15)
    assert drop_fraction_at(100, 0.3, 100) == pytest.approx(0.0, abs=1e-12)
    assert drop_fraction_at(25, 0.3, 100, "linear") == pytest.approx(0.225)


@pytest.mark.parametrize("method", ["rigl", "set"])
def test_resume_from_saved_model_equals_an_uninterrupted_run(method, tmp_path):
    args = {"sparsity": 0.8, "update_every": 3, "drop_fraction": 0.5, "seed": 5, "batch_size": 32}
    data = (X, Y)
    full = _mlp()
    full.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0,
             callbacks=[SparseTraining(method, data=data, **args)])  # end_step: 0.75 * 16 = 12
    half = _mlp()  # the same fit, interrupted after its first epoch
    stop = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: setattr(half, "stop_training", True))
    half.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0,
             callbacks=[SparseTraining(method, data=data, **args), stop])
    half.save(tmp_path / "half.keras")
    resumed = load_model(str(tmp_path / "half.keras"))
    st = SparseTraining(method, data=data, **args)
    resumed.fit(X, Y, batch_size=16, epochs=2, initial_epoch=1, shuffle=False, verbose=0, callbacks=[st])
    assert st.end_step == 12 and [r["step"] for r in st.history][::3] == [9, 12]
    for a, b in zip(full.weights, resumed.weights, strict=True):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=0, atol=1e-6)
    for name, mask in st.masks.items():
        layer, attr = name.split("/")
        full_mask = getattr(full.get_layer(layer), attr).constraint.for_variable(getattr(full.get_layer(layer), attr))
        np.testing.assert_array_equal(full_mask.numpy(), mask)


def test_works_with_variance_monitor_and_strip():
    model = _mlp()
    st = SparseTraining("set", 0.8, update_every=3, end_step=12, seed=0)
    monitor = VarianceMonitor(probe=(X[:32], Y[:32]), every_n_batches=4)
    model.fit(X, Y, batch_size=16, epochs=2, verbose=0, callbacks=[st, monitor])
    assert len(st.history) == 4 * 3 and len(monitor.history) > 0
    masks = st.masks
    plain = strip(model)
    for w in plain.weights:
        assert not isinstance(w.constraint, MaskConstraint)
    for name, mask in masks.items():
        layer, attr = name.split("/")
        kernel = to_numpy(getattr(plain.get_layer(layer), attr))
        np.testing.assert_array_equal(kernel != 0, mask.astype(bool) & (kernel != 0))
        assert int((kernel != 0).sum()) <= int(mask.sum())


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"method": "snip"}, ValueError, r"`method`.*'rigl', 'set', 'static'"),
    ({"sparsity": 1.0}, ValueError, r"`sparsity` must be in \[0, 1\)"),
    ({"sparsity": "0.9"}, TypeError, r"`sparsity` must be a real number"),
    ({"distribution": "global"}, ValueError, r"`distribution` must be one of \['erk', 'uniform'\]"),
    ({"update_every": 0}, ValueError, r"`update_every` must be an int >= 1"),
    ({"drop_fraction": 0.0}, ValueError, r"`drop_fraction` must be in \(0, 1\]"),
    ({"drop_schedule": "step"}, ValueError, r"`drop_schedule`.*'cosine', 'constant', 'linear'"),
    ({"end_step": 0}, ValueError, r"`end_step` must be an int >= 1"),
    ({"seed": 1.5}, TypeError, r"`seed` must be an int"),
    ({"data": np.zeros(3)}, TypeError, r"`data` must be None, an \(x, y\) pair or a callable"),
    ({"batch_size": 8}, ValueError, r"`batch_size` draws samples from an \(x, y\) `data`"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        SparseTraining(**kwargs)


def test_rigl_in_fit_without_data_and_unknown_layer_are_refused():
    with pytest.raises(ValueError, match=r"method 'rigl' in fit needs argument `data`"):
        _mlp().fit(X, Y, epochs=1, verbose=0, callbacks=[SparseTraining("rigl", end_step=5)])
    with pytest.raises(ValueError, match=r"`distribution` names \['nope'\]"):
        SparseTraining("set", distribution={"nope": 0.5}).build(_mlp())
    with pytest.raises(ValueError, match=r"`end_step` is needed outside fit"):
        SparseTraining("set").build(_mlp()).update(100)


BACKEND_SCRIPT = textwrap.dedent("""
    import json
    import keras
    import numpy as np
    from kerasinit._arrays import to_numpy
    from kerasinit.pruning.sparse_training import SparseTraining, optimizer_slots

    TRACES = [0]

    class Count(keras.layers.Layer):
        def call(self, x):
            TRACES[0] += 1  # Python runs only while a step is traced (JAX); every call on PyTorch
            return x

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((96, 10)).astype("float32"), rng.integers(0, 3, 96)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(24, activation="relu", name="h"), Count(),
                              keras.layers.Dense(3, activation="softmax", name="out")])
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    st = SparseTraining("rigl", 0.75, update_every=2, drop_fraction=0.5, end_step=16, seed=0, data=(x, y), batch_size=32)
    counts, traces, fresh_ok = [], [], []

    class Observe(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            m = st.pruner.model
            if keras.backend.backend() == "jax":
                m.jax_state_sync()
            for w in st.pruner.weights:
                mask = st.pruner.masks[w.name].numpy().astype(bool)
                prev = self.prev.get(w.name, mask)
                fresh = mask & ~prev
                value = to_numpy(w.variable)
                slots = [to_numpy(s) for s in optimizer_slots(m.optimizer, w.variable)]
                fresh_ok.append(bool(np.all(value[fresh] == 0) and all(np.all(s[fresh] == 0) for s in slots)))
            self.prev = {}

        def on_train_batch_end(self, batch, logs=None):
            m = st.pruner.model
            if keras.backend.backend() == "jax":
                m.jax_state_sync()
            self.prev = {n: k.numpy().astype(bool) for n, k in st.pruner.masks.items()}
            counts.append({w.name: [int(self.prev[w.name].sum()), int((to_numpy(w.variable) != 0).sum())]
                           for w in st.pruner.weights})
            traces.append(TRACES[0])

    obs = Observe()
    obs.prev = {}
    model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, callbacks=[st, obs])
    print(json.dumps({"counts": counts, "traces": traces, "fresh_ok": all(fresh_ok),
                      "steps": sorted({r["step"] for r in st.history}),
                      "moved": sum(r["dropped"] - r["regrown"] for r in st.history)}))
""")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends_constant_sparsity_zero_growth_and_no_retrace(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", BACKEND_SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["counts"]) == 18
    first = out["counts"][0]
    for step in out["counts"]:
        for name, (kept, nonzero) in step.items():
            assert kept == first[name][0] and nonzero <= kept, (name, step)
    assert first["h/kernel"][0] == keep_count(240, 1 - erk_densities([(10, 24), (24, 3)], 0.25)[0])
    assert out["steps"] == [2, 4, 6, 8, 10, 12, 14, 16] and out["moved"] > 0 and out["fresh_ok"]
    if backend == "jax":  # traced in the first steps (train step, RigL's gradient); never again for a new mask
        traces = out["traces"]
        assert traces[-1] == traces[3], traces
