"""Every kerasinit feature on the running Keras backend: the checks behind the README's feature table.

``KERAS_BACKEND=jax python tests/backend_features.py`` runs every check on that backend in this
process and prints one JSON object ``{feature: {"ok": bool, "detail": str}}``;
``python tests/backend_features.py --table`` prints the README table that
``tests/test_backend_matrix.py`` derives from these same checks (it runs this file on TensorFlow,
JAX and PyTorch and asserts every check and the README table). A check that cannot run on a
backend is listed in :data:`REFUSED` with the reason, and the test asserts that it raises.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable

BACKENDS = ("tensorflow", "jax", "torch")
#: feature -> what the README table calls it
FEATURES: dict[str, str] = {
    "backend_neutral": "`import kerasinit`, initializers, policies, pruning and `fit` without importing TensorFlow",
    "initializers": "every initializer draws; Keras mirrors bit-identical to Keras",
    "serialization": "initializers saved and loaded (`.keras`), `import kerasinit` only",
    "policies": "`reinitialize`, `lsuv`",
    "lsuv_architectures": "`lsuv` recurses into a nested Conv-BN backbone, refuses a vanished input signal (frozen "
                          "backbone), says why it skips Embedding, MultiHeadAttention and LSTM",
    "modern_init": "ZerO; `reinitialize(policy=\"fixup\"|\"skipinit\")` on the residual blocks it finds; μP optimizer in `fit`",
    "monitor": "`VarianceMonitor()` defaults: weights, activations, kernel gradients (= analytic)",
    "monitor_output_gradients": "`VarianceMonitor(track=\"output_gradients\")` (dL/dy per layer)",
    "monitor_probe_batchnorm": "`VarianceMonitor(training=\"auto\")` on BatchNorm networks after 2 steps: training-mode "
                               "probe, no false vanished-signal alarm, BN statistics untouched (MobileNetV2; JAX: a "
                               "nested 8-layer BN backbone, MobileNetV2 compiles for minutes there)",
    "monitor_architectures": "`VarianceMonitor` tracks MultiHeadAttention projections, LSTM kernels and nested models; "
                             "a subclassed model's inner layers listed in `skipped_layers` with the reason",
    "sparse_gradients": "Embedding (sparse gradients): `VarianceMonitor` kernel gradients (= analytic) and "
                        "SNIP, GraSP, SynFlow scores (only the rows read are scored)",
    "prune_fit": "`PruningCallback` in `fit` (Adam, SGD+momentum): scheduled updates, exact zeros after every step",
    "prune_in_step": "mask updates at frequency 1 computed inside the compiled step: the host's masks at every step, bit-identical weights",
    "prune_no_retrace": "mask updates without re-tracing the compiled step",
    "prune_resume": "masks and step saved with the model; resumed run = uninterrupted run",
    "prune_transformer": "pruned Transformer block (MultiHeadAttention): masks survive `load_model` and training",
    "prune_lstm": "pruned LSTM (kernel and recurrent kernel) through `fit`, save, load",
    "prune_applications": "`keras.applications` MobileNetV2 and ResNet50 pruned, saved, loaded: every weight still masked",
    "prune_keras_hub": "KerasHub `BertBackbone` (from config) pruned, saved, `pruning.load_model`: every weight masked, same outputs",
    "prune_structured": "`PruningCallback(pattern=\"2:4\")` and `granularity=\"channel\"` in `fit`: N:M groups, whole channels, zeros kept",
    "prune_blocks": "block sparsity `block_size=(1, 4)` (TFMOT's pooled blocks) in `PruningCallback` and `prune_at_init`: "
                    "whole blocks pruned, exact zeros after every step",
    "sparse_training": "`SparseTraining` RigL and SET in `fit`: each layer's sparsity constant at every step, grown "
                       "weights start at 0, masks saved and loaded",
    "prune_at_init": "`prune_at_init`: SNIP, GraSP (double backprop), SynFlow, ERK, 2:4; masks hold through `fit`",
    "layer_collapse": "layer collapse: SynFlow drains a residual branch, `LayerCollapseWarning` and `pruner.collapsed` "
                      "name it, `sparsity_report` marks it, `min_density` keeps every weight at the same sparsity",
    "prune_custom_loop": "pruning in a custom training loop (`Pruner.step`; JAX: `stateless_apply`)",
    "distributed": "`PruningCallback` + `VarianceMonitor` on 2 devices (TF: `MirroredStrategy`; JAX: "
                   "`keras.distribution.DataParallel`): same masks as one device",
}
#: (feature, backend) -> why it is refused (the check asserts the clear error instead)
REFUSED: dict[tuple[str, str], str] = {
    ("monitor_output_gradients", "jax"): "JAX differentiates functions of the kernels, not of intermediate outputs",
    ("distributed", "torch"): "Keras offers no distribution API on PyTorch",
}


def _np(x):  # noqa: ANN001, ANN202
    import keras
    import numpy as np

    return np.asarray(keras.ops.convert_to_numpy(x))


def _data(n: int = 128, d: int = 12, k: int = 3, seed: int = 0):  # noqa: ANN202
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype("float32"), rng.integers(0, k, n)


def _mlp(optimizer: str = "adam"):  # noqa: ANN202
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(32, activation="relu", name="h"),
                              keras.layers.Dense(16, activation="tanh", name="h2"), keras.layers.Dense(3, name="out")])
    opt = keras.optimizers.Adam(1e-2) if optimizer == "adam" else keras.optimizers.SGD(0.05, momentum=0.9)
    model.compile(opt, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def check_backend_neutral() -> str:
    import keras

    import kerasinit
    from kerasinit import pruning

    # (keras.utils.set_random_seed imports TensorFlow when it is installed: seeded initializers instead)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    kerasinit.reinitialize(model, policy="auto", seed=0)
    pruning.prune(model, 0.5)
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    imported = "tensorflow" in sys.modules
    assert keras.backend.backend() == "tensorflow" or not imported, "TensorFlow was imported"
    return "TensorFlow is the backend" if keras.backend.backend() == "tensorflow" else "TensorFlow not imported"


def check_initializers() -> str:
    import keras
    import numpy as np

    import kerasinit
    from kerasinit.initializers import KERAS_MIRRORS

    differs = []
    for name, cls in kerasinit.CATALOGUE.items():
        init = cls.example() if name == "FromArray" else (cls(seed=3) if cls.is_random else cls())
        out = np.asarray(init(cls.example_shape))
        assert out.shape == cls.example_shape, name
        if name in KERAS_MIRRORS and name != "Orthogonal":
            theirs = getattr(keras.initializers, name)(**({"seed": 3} if cls.is_random else {}))(cls.example_shape)
            if not np.array_equal(out, np.asarray(theirs)):
                differs.append(name)
    assert not differs, f"differ from Keras: {differs}"
    q = np.asarray(kerasinit.Orthogonal(seed=3)((6, 4)))
    assert np.allclose(q.T @ q, np.eye(4), atol=1e-5)
    return f"{len(kerasinit.CATALOGUE)} initializers"


def check_serialization() -> str:
    import keras
    import numpy as np

    import kerasinit

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, kernel_initializer=kerasinit.KwonTanhUniform(seed=1)),
                              keras.layers.Dense(3, kernel_initializer="kerasinit>PlainHeNormal")])
    path = os.path.join(tempfile.mkdtemp(), "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True))
    names = [type(layer.kernel_initializer).__name__ for layer in loaded.layers]
    assert names == ["KwonTanhUniform", "PlainHeNormal"], names
    return "round trip exact"


def check_policies() -> str:
    import numpy as np

    import kerasinit

    model = _mlp()
    rows = len(kerasinit.reinitialize(model, policy="auto", seed=0))
    report = kerasinit.lsuv(model, np.random.default_rng(0).normal(size=(64, 12)).astype("float32"), verbose=False, seed=0)
    assert rows == 3 and bool(report.converged.all())
    return "reinitialize 3 kernels; lsuv converged"


def check_modern_init() -> str:
    import keras
    import numpy as np

    import kerasinit

    a, b = (keras.ops.convert_to_numpy(kerasinit.ZerO()((16, 32))) for _ in range(2))
    assert np.array_equal(a, b) and np.count_nonzero(a) > 0
    inputs = keras.Input((12,))
    stem = h = keras.layers.Dense(16, name="stem")(inputs)
    for i in range(4):  # normalization-free residual blocks of two Dense layers
        r = keras.layers.Dense(16, activation="relu", name=f"b{i}_1")(h)
        h = keras.layers.Add(name=f"add{i}")([h, keras.layers.Dense(16, name=f"b{i}_2")(r)])
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(h))
    probe = keras.Model(inputs, [stem, h])
    x, y = _data()
    ratios = {}
    for policy in ("fixup", "skipinit"):
        report = kerasinit.reinitialize(model, policy=policy, seed=0)
        assert len(kerasinit.find_residual_blocks(model)) == 4 and len(report) > 0
        first, last = (np.std(keras.ops.convert_to_numpy(t)) for t in probe(x))
        ratios[policy] = float(last / first)
        assert ratios[policy] <= 2.0, ratios
    model.compile(kerasinit.mup.optimizer(model, 8, "adam", 1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loss = model.fit(x, y, epochs=2, batch_size=32, verbose=0).history["loss"]
    assert all(np.isfinite(loss)), loss
    return (f"ZerO deterministic; 4 residual blocks found; output/stem std fixup {ratios['fixup']:.2f}, "
            f"skipinit {ratios['skipinit']:.2f}; μP optimizer in fit")


def _analytic_dense_gradient(x, y, w, b):  # noqa: ANN001, ANN202
    import numpy as np

    z = x @ w + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return x.T @ p / len(y)


def _monitored(track):  # noqa: ANN001, ANN202
    import keras

    import kerasinit

    x, y = _data()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(3, name="out")])
    model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    w, b = (_np(v) for v in model.layers[0].weights)
    monitor = kerasinit.VarianceMonitor(probe=(x[:64], y[:64]), track=track)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])
    return monitor.history.to_pandas(), _analytic_dense_gradient(x[:64], y[:64], w, b)


def check_monitor() -> str:
    import numpy as np

    table, expected = _monitored(("weights", "activations", "gradients"))
    row = table[(table.kind == "gradients") & (table.step == 0)].iloc[0]
    assert np.isclose(row["norm"], np.linalg.norm(expected), rtol=1e-4), (row["norm"], np.linalg.norm(expected))
    assert np.isclose(row["std"], expected.std(), rtol=1e-3), (row["std"], expected.std())
    assert {"weights", "activations", "gradients"} <= set(table.kind)
    return f"|dL/dW| = {row['norm']:.6f} (analytic {np.linalg.norm(expected):.6f})"


def check_monitor_output_gradients() -> str:
    table, _ = _monitored(("activations", "output_gradients"))
    rows = table[table.kind == "output_gradients"]
    assert len(rows) > 0
    return f"{len(rows)} records"


def _schedule():  # noqa: ANN202
    from kerasinit import pruning

    return pruning.PolynomialDecay(0.2, 0.8, begin_step=4, end_step=20, frequency=4)


class _ZeroWatch:
    """A Keras callback that syncs the weights after every step and checks the pruned ones are 0."""

    @staticmethod
    def make():  # noqa: ANN205
        import keras

        from kerasinit import pruning

        class Watch(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.steps = 0
                self.bad: list[int] = []

            def on_train_batch_end(self, batch, logs=None):  # noqa: ANN001
                if hasattr(self.model, "jax_state_sync"):
                    self.model.jax_state_sync()
                self.steps += 1
                for w, mask in pruning.masked_weights(self.model):
                    if (_np(w.variable)[mask.numpy() == 0] != 0).any():
                        self.bad.append(self.steps)

        return Watch()


def check_prune_fit() -> str:
    import numpy as np

    from kerasinit import pruning

    x, y = _data()
    details = []
    for optimizer in ("adam", "sgd"):
        model = _mlp(optimizer)
        callback, watch = pruning.PruningCallback(_schedule()), _ZeroWatch.make()
        model.fit(x, y, epochs=6, batch_size=32, verbose=0, callbacks=[callback, watch])
        assert [s for s, _ in callback.updates] == [4, 8, 12, 16, 20], callback.updates
        assert watch.bad == [] and watch.steps == 24, (watch.bad, watch.steps)
        for w, mask in pruning.masked_weights(model):
            m = mask.numpy()
            assert abs(1 - m.mean() - 0.8) < 0.02, (w.name, m.mean())
            assert (_np(w.variable)[m == 0] == 0).all()
        details.append(f"{optimizer}: sparsity {np.mean([1 - m.numpy().mean() for _, m in pruning.masked_weights(model)]):.3f}")
    return "; ".join(details) + "; " + _exact_select()


def _exact_select() -> str:
    """The mask select of this backend (PyTorch: a bit-pattern product, in place) is ``where(mask, w, +0.0)`` exactly."""
    import keras
    import numpy as np

    from kerasinit.backend.select import keep_where, keep_where_in_place

    w = np.array([[np.inf, -np.inf, np.nan, -0.0, -1.5], [np.nan, -0.0, 2.0, -np.inf, 3.0]])
    mask = np.array([[False, False, False, False, True], [True, True, True, True, False]])
    expected = np.where(mask, w, 0.0)
    dtypes = ["float16", "bfloat16", "float32", "float64"]
    for dtype in dtypes:
        for in_place in (False, True):
            variable = keras.Variable(keras.ops.cast(w, dtype), dtype=dtype, trainable=True)
            value = keep_where_in_place(mask, variable) if in_place else keep_where(mask, variable)
            variable.assign(value)
            got = _np(keras.ops.cast(variable, "float64"))
            np.testing.assert_array_equal(got, expected)  # NaN where kept; kept -0.0 and infinities kept
            assert not np.signbit(got[~mask]).any() and np.signbit(got[1, 1]), (dtype, in_place, got)
    return f"select exact (inf, NaN, -0.0 -> +0.0; kept bits unchanged) in {', '.join(dtypes)}"


def check_prune_structured() -> str:
    from kerasinit import pruning

    x, y = _data()
    details = []
    for kwargs in ({"pattern": "2:4"}, {"granularity": "channel", "norm": "l1"}):
        model = _mlp()
        callback, watch = pruning.PruningCallback(_schedule(), layers=["h", "h2"], **kwargs), _ZeroWatch.make()
        model.fit(x, y, epochs=6, batch_size=32, verbose=0, callbacks=[callback, watch])
        assert watch.bad == [] and len(callback.updates) == 5, (watch.bad, callback.updates)
        for name, m in callback.pruner.get_masks().items():
            w = _np(model.get_layer(name.split("/")[0]).kernel)
            if "pattern" in kwargs:  # every group of 4 along the input axis keeps exactly 2
                groups = m.reshape(m.shape[0] // 4, 4, m.shape[1]).sum(axis=1)
                assert (groups == 2).all(), name
            else:  # whole output channels, 20% of them kept (0.8 sparsity), the rest exactly 0
                kept = m.any(axis=0)
                assert (m == kept[None, :]).all() and kept.sum() == round(m.shape[1] * 0.2), (name, kept.sum())
                assert not w[:, ~kept].any(), name
        details.append(f"{next(iter(kwargs.values()))}: sparsity {callback.pruner.sparsity:.2f}")
    return "; ".join(details) + "; 0 pruned weights nonzero after every step"


def _whole_blocks(mask, block=(1, 4)) -> bool:  # noqa: ANN001
    m = mask.reshape(-1, mask.shape[-1])
    r, c = block
    for i in range(0, m.shape[0], r):
        for j in range(0, m.shape[1], c):
            tile = m[i:i + r, j:j + c]
            if tile.any() and not tile.all():
                return False
    return True


def check_prune_blocks() -> str:
    from kerasinit import pruning

    x, y = _data()
    model = _mlp()
    callback, watch = pruning.PruningCallback(_schedule(), layers=["h", "h2"], block_size=(1, 4)), _ZeroWatch.make()
    model.fit(x, y, epochs=6, batch_size=32, verbose=0, callbacks=[callback, watch])
    masks = callback.pruner.get_masks()
    assert watch.bad == [] and len(callback.updates) == 5, (watch.bad, callback.updates)
    assert all(_whole_blocks(m) for m in masks.values()), "a block is partly pruned"
    fit_sparsity = sum((m == 0).sum() for m in masks.values()) / sum(m.size for m in masks.values())
    at_init = pruning.prune_at_init(_mlp(), 0.75, "magnitude", block_size=(1, 4), distribution="uniform")
    assert all(_whole_blocks(m) for m in at_init.get_masks().values()), "prune_at_init: a block is partly pruned"
    return (f"fit: {len(masks)} weights in whole 1x4 blocks, sparsity {fit_sparsity:.2f}, 0 pruned weights nonzero "
            f"after every step; prune_at_init: whole blocks")


def check_sparse_training() -> str:
    import os
    import tempfile

    import keras
    import numpy as np

    from kerasinit import pruning

    x, y = _data()
    details = []
    for method in ("rigl", "set"):
        model = _mlp()
        counts: list[dict[str, int]] = []

        class Counts(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None, counts=counts):  # noqa: ANN001
                if hasattr(self.model, "jax_state_sync"):
                    self.model.jax_state_sync()
                counts.append({w.name: int(m.numpy().sum()) for w, m in pruning.masked_weights(self.model)})

        st = pruning.SparseTraining(method, sparsity=0.8, update_every=2, seed=0, data=(x, y) if method == "rigl" else None)
        model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[st, Counts()])
        assert len(counts) == 12 and all(c == counts[0] for c in counts), counts
        moved = sum(r["grown"] - r.get("regrown", 0) for r in st.history)
        assert st.history and moved > 0, st.history
        path = os.path.join(tempfile.mkdtemp(), "m.keras")
        model.save(path)
        loaded = pruning.load_model(path)
        before = {w.name: m.numpy() for w, m in pruning.masked_weights(model)}
        after = {w.name: m.numpy() for w, m in pruning.masked_weights(loaded)}
        assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)
        details.append(f"{method}: {len(st.history)} layer updates, {moved} connections moved")
    return "; ".join(details) + "; per-layer counts constant over 12 steps, masks equal after load"


def check_prune_in_step() -> str:
    import keras
    import numpy as np

    from kerasinit import pruning

    x, y = _data()

    def train(in_graph: bool, tied: bool = False):  # noqa: ANN202
        model = _mlp()
        if tied:  # every magnitude equal and frozen: each update cuts through ties (top_k's order among them
            for v in model.trainable_variables:  # differs between backends; the host keeps the lowest indices)
                v.assign(np.full(v.shape, 0.5, "float32"))
            model.optimizer.learning_rate.assign(0.0)
        schedule = pruning.PolynomialDecay(0.0, 0.9, begin_step=0, end_step=20, frequency=1)
        callback, seen = pruning.PruningCallback(schedule, in_graph=in_graph), []

        class Record(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):  # noqa: ANN001
                if keras.backend.backend() == "jax":
                    callback.pruner.model.jax_state_sync()
                seen.append(callback.pruner.get_masks())

        model.fit(x, y, epochs=6, batch_size=32, verbose=0, callbacks=[callback, Record()])
        return seen, [_np(v) for v in model.weights], callback

    host, host_weights, _ = train(False)
    step, step_weights, callback = train(True)
    assert callback._plan is not None  # noqa: SLF001
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(host, step, strict=True) for k in a)
    assert all(np.array_equal(a, b) for a, b in zip(host_weights, step_weights, strict=True))
    tied_host, tied_step = train(False, tied=True)[0], train(True, tied=True)[0]
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(tied_host, tied_step, strict=True) for k in a)
    return f"{len(step)} steps, same masks at each (and with every weight tied); sparsity {callback.pruner.sparsity:.3f}"


def check_prune_no_retrace() -> str:
    import keras

    from kerasinit import pruning

    if keras.backend.backend() == "torch":
        return "eager: nothing is traced"
    traces = []

    class Count(keras.layers.Layer):
        def call(self, x, training=None):  # noqa: ANN001, ANN201
            if training:
                traces.append(1)  # Python runs once per trace
            return x

    def fit(callbacks):  # noqa: ANN001, ANN202
        traces.clear()
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16), Count(), keras.layers.Dense(3)])
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        x, y = _data()
        model.fit(x, y, epochs=6, batch_size=32, verbose=0, callbacks=callbacks)
        return len(traces)

    dense = fit([])
    callback = pruning.PruningCallback(_schedule())
    pruned = fit([callback])
    assert len(callback.updates) == 5 and pruned == dense, (callback.updates, pruned, dense)
    return f"{len(callback.updates)} updates, {pruned} trace(s) as without pruning"


def check_prune_resume() -> str:
    import keras
    import numpy as np

    from kerasinit import pruning

    x, y = _data()
    full = _mlp()
    full.fit(x, y, epochs=6, batch_size=32, verbose=0, shuffle=False, callbacks=[pruning.PruningCallback(_schedule())])
    part = _mlp()
    first = pruning.PruningCallback(_schedule())
    part.fit(x, y, epochs=3, batch_size=32, verbose=0, shuffle=False, callbacks=[first])
    path = os.path.join(tempfile.mkdtemp(), "p.keras")
    part.save(path)
    resumed = keras.models.load_model(path)
    second = pruning.PruningCallback(_schedule())
    resumed.fit(x, y, epochs=6, initial_epoch=3, batch_size=32, verbose=0, shuffle=False, callbacks=[second])
    assert [s for s, _ in first.updates] == [4, 8] and [s for s, _ in second.updates] == [12, 16, 20]
    for (wa, ma), (wb, mb) in zip(pruning.masked_weights(full), pruning.masked_weights(resumed), strict=True):
        assert np.array_equal(ma.numpy(), mb.numpy()), wa.name
        assert np.allclose(_np(wa.variable), _np(wb.variable), atol=1e-5), wa.name
    return "updates [4, 8] + [12, 16, 20]; same masks and weights as one run"


def _report_after_reload(model, x, y, sparsity: float):  # noqa: ANN001, ANN202
    import keras

    from kerasinit import pruning

    pruning.prune(model, sparsity)
    path = os.path.join(tempfile.mkdtemp(), "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    if x is not None:
        loaded.fit(x, y, epochs=2, batch_size=16, verbose=0)
    report = pruning.sparsity_report(loaded)
    body = report[report.layer != "total"]
    assert body.masked.all(), body[~body.masked]
    assert (abs(body.sparsity - sparsity) < 0.02).all(), body
    return report


def check_prune_transformer() -> str:
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((6, 16))
    att = keras.layers.MultiHeadAttention(2, 8, name="mha")(inp, inp)
    h = keras.layers.LayerNormalization()(keras.layers.Add()([inp, att]))
    f = keras.layers.Dense(16)(keras.layers.Dense(32, activation="relu")(h))
    h = keras.layers.LayerNormalization()(keras.layers.Add()([h, f]))
    model = keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(h)))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(64, 6 * 16)
    report = _report_after_reload(model, x.reshape(64, 6, 16), y, 0.5)
    return f"{len(report) - 1} masked kernels (query/key/value/output among them)"


def check_prune_lstm() -> str:
    import keras

    from kerasinit import pruning

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5, 4)), keras.layers.LSTM(8), keras.layers.Dense(3)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(64, 20)
    x = x.reshape(64, 5, 4)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[pruning.PruningCallback(pruning.ConstantSparsity(0.5, 0, frequency=2))])
    report = _report_after_reload(model, x, y, 0.5)
    assert set(report.weight) >= {"kernel", "recurrent_kernel"}
    return "kernel, recurrent_kernel masked after reload and training"


def check_prune_applications() -> str:
    import keras

    counts = []
    for build in (keras.applications.MobileNetV2, keras.applications.ResNet50):
        keras.utils.set_random_seed(0)
        report = _report_after_reload(build(weights=None, input_shape=(32, 32, 3), classes=10), None, None, 0.5)
        counts.append(f"{build.__name__} {len(report) - 1}")
    return "masked weights: " + ", ".join(counts)


def check_prune_keras_hub() -> str:
    import warnings

    import keras
    import keras_hub
    import numpy as np

    from kerasinit import pruning

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16,
                                             intermediate_dim=32, max_sequence_length=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruning.prune(backbone, 0.5)
    assert any("pruning.load_model" in str(w.message) for w in caught)  # keras.models.load_model alone would lose them
    path = os.path.join(tempfile.mkdtemp(), "bert.keras")
    backbone.save(path)
    loaded = pruning.load_model(path)
    report = pruning.sparsity_report(loaded)
    body = report[report.layer != "total"]
    assert body.masked.all() and (abs(body.sparsity - 0.5) < 0.02).all(), body
    x = {"token_ids": np.random.default_rng(0).integers(0, 50, (4, 8)), "segment_ids": np.zeros((4, 8), "int32"),
         "padding_mask": np.ones((4, 8), "int32")}
    same = np.allclose(_np(backbone(x)["pooled_output"]), _np(loaded(x)["pooled_output"]), atol=1e-6)
    assert same
    return f"{len(body)} masked weights restored, same pooled output"


def check_prune_at_init() -> str:
    import keras

    from kerasinit.pruning import prune_at_init

    x, y = _data()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    details = []
    for method, kwargs in (("snip", {"data": (x, y), "loss": loss}), ("grasp", {"data": (x, y), "loss": loss}),
                           ("synflow", {"distribution": "erk", "iterations": 10}), ("magnitude", {"pattern": "2:4"})):
        model = _mlp()
        pruner = prune_at_init(model, None if "pattern" in kwargs else 0.8, method, **kwargs)
        if method == "grasp":
            assert pruner.scores.hessian == "double-backprop", pruner.scores.notes
        model.compile(keras.optimizers.Adam(1e-2), loss)
        model.fit(x, y, epochs=2, batch_size=32, verbose=0)
        masks = pruner.get_masks()
        nonzero = sum(int((_np(w.variable)[masks[w.name] == 0] != 0).sum()) for w in pruner.weights)
        assert nonzero == 0 and 0.45 < pruner.sparsity < 0.85, (method, nonzero, pruner.sparsity)
        details.append(f"{method} {pruner.sparsity:.2f}")
    return ", ".join(details) + "; 0 pruned weights nonzero after fit"


def check_prune_custom_loop() -> str:
    import keras

    from kerasinit import pruning

    x, y = _data()
    model = _mlp()
    optimizer, loss_fn = model.optimizer, model.loss
    pruner = pruning.Pruner(model, _schedule())
    updates = []
    if keras.backend.backend() == "jax":  # the documented example's loop: stateless_call / stateless_apply
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
        from prune_jax_custom_loop import train_pruned

        updates = train_pruned(model, pruner, x, y, steps=24)
    else:
        for step in range(24):
            if pruner.step(step):
                updates.append(step)
            i = (step * 32) % 128
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                with tf.GradientTape() as tape:
                    loss = loss_fn(y[i:i + 32], model(x[i:i + 32], training=True))
                grads = tape.gradient(loss, model.trainable_variables)
            else:
                model.zero_grad()
                loss = loss_fn(keras.ops.convert_to_tensor(y[i:i + 32]), model(x[i:i + 32], training=True))
                loss.backward()
                grads = [v.value.grad for v in model.trainable_variables]
            optimizer.apply(grads, model.trainable_variables)
    assert updates == [4, 8, 12, 16, 20], updates
    for w, mask in pruning.masked_weights(model):
        m = mask.numpy()
        assert abs(1 - m.mean() - 0.8) < 0.02 and (_np(w.variable)[m == 0] == 0).all(), w.name
    return f"updates {updates}, exact zeros"


def check_lsuv_architectures() -> str:
    import warnings

    import keras
    import numpy as np
    from keras import layers

    import kerasinit

    def backbone():  # noqa: ANN202
        x = keras.Input((16, 16, 3))
        h = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(8, 3, strides=2, use_bias=False, name="c1")(x)))
        h = layers.ReLU()(layers.BatchNormalization()(layers.DepthwiseConv2D(3, use_bias=False, name="dw")(h)))
        h = layers.BatchNormalization(name="last_bn")(layers.Conv2D(16, 1, use_bias=False, name="c2")(h))
        return keras.Model(x, layers.GlobalAveragePooling2D()(layers.ReLU()(h)), name="backbone")

    batch = np.random.default_rng(0).normal(size=(16, 16, 16, 3)).astype("float32")
    details = []
    for trainable in (True, False):
        keras.utils.set_random_seed(0)
        bb = backbone()
        if not trainable:  # moving statistics that do not fit the data: the frozen backbone's output is ~1e-11
            bn = bb.get_layer("last_bn")
            bn.moving_variance.assign(np.full(bn.moving_variance.shape, 1e22, "float32"))
        bb.trainable = trainable
        x = keras.Input((16, 16, 3))
        model = keras.Model(x, layers.Dense(10, name="head")(bb(x)))
        head_before = _np(model.get_layer("head").kernel).copy()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = kerasinit.lsuv(model, batch, seed=0, verbose=False)
        rows = report.set_index("layer")
        if trainable:  # recursed: the backbone's three convs by path, then the head
            rescaled = sorted(n for n in rows.index[rows.converged.eq(True)])
            assert rescaled == ["backbone/c1", "backbone/c2", "backbone/dw", "head"], rescaled
            details.append(f"{len(rescaled)} kernels rescaled (3 inside the nested backbone)")
        else:
            assert rows.loc["head", "note"].startswith("refused"), rows.loc["head", "note"]
            assert any("vanished" in str(w.message) for w in caught), [str(w.message) for w in caught]
            assert np.array_equal(head_before, _np(model.get_layer("head").kernel))
            details.append("vanished input refused, head untouched")
    tokens = keras.Input((10,), dtype="int32")
    h = layers.Embedding(50, 16, name="emb")(tokens)
    h = layers.MultiHeadAttention(2, 8, name="mha")(h, h)
    model = keras.Model(tokens, layers.Dense(4, name="out")(layers.LSTM(8, name="lstm")(h)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = kerasinit.lsuv(model, np.random.default_rng(1).integers(0, 50, (64, 10)).astype("int32"), seed=0,
                                verbose=False)
    notes = dict(zip(report.layer, report.note, strict=True))
    assert notes["emb"].startswith("skipped: Embedding") and notes["mha"].startswith("skipped: MultiHeadAttention")
    assert notes["lstm"].startswith("skipped: recurrent"), notes
    return "; ".join(details) + "; Embedding, MultiHeadAttention, LSTM skipped with reasons"


BN_BACKBONE_NOTE = "nested 8-layer Dense-BN backbone"


def _bn_network():  # noqa: ANN202
    """MobileNetV2 (alpha 0.35, 32x32) on TensorFlow and PyTorch; a nested Dense-BN backbone on JAX (speed)."""
    import keras

    keras.utils.set_random_seed(0)
    if keras.backend.backend() != "jax":
        model = keras.applications.MobileNetV2(alpha=0.35, weights=None, input_shape=(32, 32, 3), classes=10)
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(), run_eagerly=True)
        return model, "MobileNetV2", ("Conv1", "Conv_1"), (1e-3, 1e3)
    h = first = keras.Input((16,))
    for i in range(8):  # std 0.03 kernels: without normalization each layer shrinks the signal ~6x
        h = keras.layers.Dense(32, kernel_initializer=keras.initializers.RandomNormal(stddev=0.03), name=f"d{i}")(h)
        h = keras.layers.ReLU()(keras.layers.BatchNormalization(name=f"bn{i}")(h))
    backbone = keras.Model(first, h, name="backbone")
    inputs = keras.Input((16,))
    model = keras.Model(inputs, keras.layers.Dense(10, name="head")(backbone(inputs)))
    model.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, BN_BACKBONE_NOTE, ("backbone/d0", "backbone/d7"), (1e-2, 1e2)


def check_monitor_probe_batchnorm() -> str:
    import warnings

    import keras
    import numpy as np

    from kerasinit.monitor import VarianceAnomalyWarning, VarianceMonitor

    rng = np.random.default_rng(0)
    jax = keras.backend.backend() == "jax"
    x = rng.normal(size=(32, 16) if jax else (32, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, 32)
    model, name, (first, last), bounds = _bn_network()
    monitor = VarianceMonitor(probe=(x[:16], y[:16]), std_ratio_bounds=bounds)
    with warnings.catch_warnings():
        warnings.simplefilter("error", VarianceAnomalyWarning)
        model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])  # 2 steps
    assert monitor.probe_training is True and monitor.anomalies == [], monitor.anomalies
    before = [_np(v).copy() for v in model.non_trainable_variables]
    rows = {(r["layer"], r["kind"]): r for r in monitor.record(1, 99)}  # (1, 2) is the epoch-end record
    for old, v in zip(before, model.non_trainable_variables, strict=True):
        assert np.array_equal(old, _np(v)), v.path
    ratio = rows[last, "activations"]["std"] / rows[first, "activations"]["std"]
    assert bounds[0] < ratio < bounds[1] and rows[last, "activations"]["probe_training"] is True, ratio
    inference = VarianceMonitor(probe=(x[:16], y[:16]), std_ratio_bounds=bounds, training=False, on_anomaly="ignore")
    inference.set_model(model)
    inference.record(1, 2)
    assert inference.anomalies and "probe in inference mode" in inference.anomalies[0]["message"]
    return (f"{name}: {len(monitor.tracked_layers)} layers, training-mode probe, std ratio {ratio:.3g}, no alarm; "
            "inference-mode probe flags the vanished signal")


def check_monitor_architectures() -> str:
    import warnings

    import keras
    import numpy as np

    from kerasinit.monitor import VarianceMonitor

    class Block(keras.Model):  # subclassed: no graph inside
        def __init__(self) -> None:
            super().__init__(name="block")
            self.d = keras.layers.Dense(8, name="d")

        def call(self, x):  # noqa: ANN001, ANN201
            return self.d(x)

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 50, (32, 8)).astype("int32"), rng.integers(0, 3, 32)
    first = keras.Input((8,))
    inner = keras.Model(first, keras.layers.Dense(8, activation="relu", name="d1")(first), name="inner")
    tokens = keras.Input((8,), dtype="int32")
    e = keras.layers.Embedding(50, 16, name="embedding")(tokens)
    h = keras.layers.LSTM(8, name="lstm")(keras.layers.MultiHeadAttention(2, 8, name="mha")(e, e))
    model = keras.Model(tokens, keras.layers.Dense(3, name="out")(Block()(inner(h))))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = VarianceMonitor(probe=(x[:16], y[:16]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])
    expected = ["embedding", "mha/query", "mha/key", "mha/value", "mha/attention_output", "mha", "lstm",
                "lstm/recurrent_kernel", "inner/d1", "block/d", "out"]
    assert monitor.tracked_layers == expected, monitor.tracked_layers
    assert list(monitor.skipped_layers) == ["block/d"] and "subclassed" in monitor.skipped_layers["block/d"]
    assert any("block/d" in str(w.message) for w in caught)
    rows = {(r["layer"], r["kind"]): r for r in monitor.history if r["step"] == 2}
    for name in ("mha/query", "mha/attention_output", "lstm", "lstm/recurrent_kernel", "inner/d1", "block/d"):
        assert rows[name, "gradients"]["norm"] > 0, name
    attention = keras.Model(model.input, model.get_layer("mha").output)
    std = float(np.std(_np(attention(x[:16], training=False)).astype("float64")))
    assert abs(rows["mha", "activations"]["std"] - std) <= 1e-5 * std, (rows["mha", "activations"]["std"], std)
    return f"{len(expected)} tracked (MHA projections, LSTM kernels, nested 'inner/d1'); skipped: 'block/d' (subclassed)"


def check_sparse_gradients() -> str:
    import keras
    import numpy as np

    from kerasinit import pruning
    from kerasinit.monitor import VarianceMonitor

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 50, (32, 8)).astype("int32"), rng.integers(0, 2, 32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,), dtype="int32"), keras.layers.Embedding(50, 8, name="embedding"),
                              keras.layers.Flatten(), keras.layers.Dense(2, name="dense")])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.SGD(0.0), loss)
    monitor = VarianceMonitor(probe=(x[:16], y[:16]))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[monitor])
    row = next(r for r in monitor.history if r["step"] == 0 and r["layer"] == "embedding" and r["kind"] == "gradients")
    # known answer: d loss / d table by hand (logits = flatten(E[x]) W + b), rows not read are 0
    table = _np(model.get_layer("embedding").embeddings)
    w, b = (_np(v) for v in model.get_layer("dense").weights)
    logits = table[x[:16]].reshape(16, -1) @ w + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(16), y[:16]] -= 1
    grad = np.zeros_like(table)
    np.add.at(grad, x[:16], ((p / 16) @ w.T).reshape(16, 8, 8))
    assert abs(row["norm"] - np.linalg.norm(grad)) <= 1e-4 * np.linalg.norm(grad), (row["norm"], np.linalg.norm(grad))
    for method in ("snip", "grasp", "synflow"):
        data = (x, y) if method != "synflow" else None
        scores = pruning.compute_scores(model, pruning.select(model), method, data, loss=loss).scores["embedding/embeddings"]
        read = np.unique(x if method != "synflow" else np.ones_like(x))
        unread = np.setdiff1d(np.arange(50), read)
        assert np.isfinite(scores).all() and np.count_nonzero(scores[read]) > 0, method
        assert np.count_nonzero(scores[unread]) == 0, method
    return f"|dL/dE| = {row['norm']:.6f} (analytic {np.linalg.norm(grad):.6f}); snip, grasp, synflow score only rows read"


def _residual_mlp():  # noqa: ANN202
    """32 -> stem 16 -> [expand 64 (ReLU6) -> project 16] + identity skip -> head 4; weights from NumPy (same on every backend)."""
    import keras
    import numpy as np

    x = keras.Input((32,))
    h = keras.layers.Dense(16, activation="relu", name="stem")(x)
    b = keras.layers.Dense(16, name="project")(keras.layers.Dense(64, activation="relu6", name="expand")(h))
    model = keras.Model(x, keras.layers.Dense(4, name="head")(keras.layers.Add()([h, b])))
    rng = np.random.default_rng(0)
    for v in model.weights:
        shape = tuple(v.shape)
        limit = np.sqrt(6.0 / sum(shape)) if len(shape) == 2 else 0.1
        v.assign(rng.uniform(-limit, limit, shape).astype("float32"))
    return model


def check_layer_collapse() -> str:
    import warnings

    import numpy as np

    from kerasinit import pruning
    from kerasinit.pruning.masks import LayerCollapseWarning, keep_count

    model = _residual_mlp()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruner = pruning.prune_at_init(model, 0.995, "synflow")
    drained = ["expand/kernel", "project/kernel"]  # the branch; the identity skip keeps the network connected
    messages = [str(w.message) for w in caught if issubclass(w.category, LayerCollapseWarning)]
    assert pruner.collapsed == drained and len(messages) == 1 and str(drained) in messages[0], (pruner.collapsed, messages)
    report = pruning.sparsity_report(model)
    body = report[report.layer != "total"]
    assert [f"{lay}/{w}" for lay, w in zip(body.layer[body.collapsed], body.weight[body.collapsed], strict=True)] == drained
    masks = pruner.get_masks()
    total = sum(m.size for m in masks.values())
    assert masks["stem/kernel"].any() and masks["head/kernel"].any()
    model = _residual_mlp()
    with warnings.catch_warnings():
        warnings.simplefilter("error", LayerCollapseWarning)
        floored = pruning.prune_at_init(model, 0.995, "synflow", min_density=0.002)
    masks = floored.get_masks()
    assert floored.collapsed == [] and all(m.sum() >= max(1, np.ceil(0.002 * m.size)) for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == keep_count(total, 0.995)
    return f"SynFlow 99.5%: {drained} emptied, named, marked; min_density=0.002: none, {keep_count(total, 0.995)} kept"


DISTRIBUTED = """
import os, sys
backend = sys.argv[1]
if backend == "jax":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
else:
    import tensorflow as tf
    tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
import contextlib, json
import numpy as np, keras, kerasinit
from kerasinit import pruning
rng = np.random.default_rng(0)
x, y = rng.normal(size=(128, 12)).astype("float32"), rng.integers(0, 3, 128)
def run(distributed):
    scope = contextlib.nullcontext()
    if distributed and backend == "jax":
        import jax
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
    elif distributed:
        scope = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope()
    with scope:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(32, activation="relu", name="h"), keras.layers.Dense(3, name="out")])
        model.compile(keras.optimizers.SGD(0.05, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    kernel = model.layers[0].kernel.value
    devices = len(kernel.sharding.device_set) if backend == "jax" else len(getattr(kernel, "values", [kernel]))
    callback = pruning.PruningCallback(pruning.PolynomialDecay(0.2, 0.8, begin_step=4, end_step=20, frequency=4))
    monitor = kerasinit.VarianceMonitor(probe=(x[:64], y[:64]))
    model.fit(x, y, epochs=6, batch_size=32, verbose=0, shuffle=False, callbacks=[callback, monitor])
    if backend == "jax":
        keras.distribution.set_distribution(None)
    masks = {w.name: m.numpy().tolist() for w, m in pruning.masked_weights(model)}
    return {"devices": devices, "updates": [s for s, _ in callback.updates], "records": len(monitor.history.to_pandas()), "masks": masks}
print(json.dumps({"one": run(False), "two": run(True)}))
"""


def check_distributed() -> str:
    import subprocess

    import keras

    backend = keras.backend.backend()
    if backend not in ("tensorflow", "jax"):
        raise ValueError(f"distributed training: no Keras distribution API on the {backend!r} backend")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", DISTRIBUTED, backend], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    one, two = out["one"], out["two"]
    assert two["devices"] == 2 and one["updates"] == two["updates"] == [4, 8, 12, 16, 20], (one["updates"], two)
    assert one["records"] == two["records"] > 0 and one["masks"] == two["masks"]
    return f"2 devices: updates {two['updates']}, {two['records']} monitor records, masks equal"


CHECKS: dict[str, Callable[[], str]] = {name: globals()[f"check_{name}"] for name in FEATURES}


def run_all() -> dict[str, dict[str, object]]:
    import keras

    backend = keras.backend.backend()
    results: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        try:
            detail = check()
            ok = (name, backend) not in REFUSED
        except Exception as exc:  # every check reports; the test names each failure
            detail = f"{type(exc).__name__}: {exc}"
            ok = False
            if (name, backend) not in REFUSED:
                detail += "\n" + traceback.format_exc()[-2000:]
        results[name] = {"ok": ok, "detail": detail}
    return results


def table() -> str:
    """The README feature × backend table (✓ = checked on that backend by tests/test_backend_matrix.py)."""
    names = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
    lines = ["| feature | " + " | ".join(names[b] for b in BACKENDS) + " |", "|---|" + "---|" * len(BACKENDS)]
    for name, text in FEATURES.items():
        cells = [f"no: {REFUSED[(name, b)]}" if (name, b) in REFUSED else "✓" for b in BACKENDS]
        lines.append(f"| {text} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if "--table" in sys.argv:
        print(table())
    else:
        only = [a for a in sys.argv[1:] if not a.startswith("-")]
        if only:
            CHECKS = {k: v for k, v in CHECKS.items() if k in only}
        print(json.dumps(run_all()))
