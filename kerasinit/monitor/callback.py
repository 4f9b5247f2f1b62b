"""``VarianceMonitor``: per-layer weight, activation and gradient statistics during training.

Design: a standalone callback that builds ONE multi-output probe model (the model's
prediction plus every tracked layer's output) instead of overriding layers' ``call``; at each
record it runs one forward pass of that model on a fixed probe batch and, for gradients, one
backward pass for all layers together (see :mod:`kerasinit.backend`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import keras
import numpy as np

from kerasinit._arrays import to_numpy
from kerasinit.backend import ProbeSpec, build_probe_function, check_probe
from kerasinit.layers import iter_layers, main_weight
from kerasinit.monitor import stats
from kerasinit.monitor.probe import Probe, probe_from_fit, resolve_probe, validate_probe
from kerasinit.monitor.tracking import Entry, ProbeNet, plan
from kerasinit.monitor.writers import HistogramEntry, MonitorHistory, Writer, make_writer

TRACKABLE: tuple[str, ...] = stats.KINDS
ON_ANOMALY: tuple[str, ...] = ("warn", "stop", "ignore")
#: ``training=`` values: the probe's mode, or "auto" (training mode iff the model has a trainable
#: BatchNormalization layer).
TRAINING: tuple[Any, ...] = ("auto", True, False)


class VarianceAnomalyWarning(UserWarning):
    """NaN/Inf in a tracked tensor, or an activation-std ratio last/first layer out of bounds."""


def kernel_of(layer: Any) -> Any | None:
    """The layer's main weight (its kernel, depthwise kernel or embeddings; :func:`kerasinit.layers.main_weight`) or None."""
    weight = main_weight(layer)
    return None if weight is None else weight.variable


def _is_probability_layer(layer: Any) -> bool:
    """A softmax/sigmoid output: a Softmax layer, or a layer whose activation is one."""
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", str(activation))
    return name in ("softmax", "sigmoid", "log_softmax", "hard_sigmoid")


class VarianceMonitor(keras.callbacks.Callback):
    """Record per-layer statistics of weights, activations and gradients while a model trains.

    At each record the monitor adds one row per (layer, kind) to :attr:`history`, with
    ``epoch`` = completed epochs, ``step`` = optimizer iterations, ``depth`` = the layer's index
    among the tracked layers, ``probe_training`` = the probe's mode (see ``training``), and the
    statistics of :mod:`kerasinit.monitor.stats`:

    * ``"weights"``: mean, std, var, min, max, zero_fraction of the layer kernel;
    * ``"activations"``: mean, std, var, min, max, p98_abs (Glorot & Bengio 2010, Fig. 3),
      dead_fraction (ReLU family), saturated_fraction (sigmoid/tanh) of the layer output on the probe;
    * ``"gradients"``: mean, std, var, min, max, norm of dL/dW on the probe and
      grad_weight_rms_ratio = rms(dL/dW) / rms(W);
    * ``"output_gradients"`` (opt-in): the same for dL/dy of the layer output (Glorot & Bengio 2010,
      Fig. 7).

    A record is taken before the first batch of training (step 0 on a fresh run), at the end of
    every epoch (``every_epoch``) and every ``every_n_batches`` optimizer steps.

    What is tracked (:attr:`tracked_layers`, :mod:`kerasinit.monitor.tracking`): every layer, at
    any depth, with a weight in :mod:`kerasinit.layers`' table. Nested models are walked (a
    ``keras.applications`` backbone's layers are named by path, ``"backbone/Conv1"``, and their
    outputs read inside the backbone's graph); an LSTM/GRU records its cell's kernel under its own
    name with its output, and ``name/recurrent_kernel``; a MultiHeadAttention its projections
    (``mha/query``, ``mha/key``, ``mha/value``, ``mha/attention_output``) and its output under
    ``mha``. Whatever cannot be read is listed with its reason in :attr:`skipped_layers`.

    Args:
        probe: ``"auto"`` (the first training batch, kept fixed), an ``(x, y)`` pair, a PyDataset
            or an iterable of batches such as a ``tf.data.Dataset`` (its first batch).
        layers: names or layer objects to track; layers of nested models by path
            (``"backbone/Conv1"``); a nested model named as a whole is recorded as its output.
            Default: every layer that owns a kernel (Dense, Conv, Embedding, RNN, attention, ...).
        track: any of ``"weights"``, ``"activations"``, ``"gradients"``, ``"output_gradients"``.
        every_n_batches: also record every N optimizer steps (None: only per epoch).
        every_epoch: record at the end of every epoch.
        histograms: also keep histograms (``histogram_bins`` bins) of every tracked tensor in
            :attr:`histograms` and send them to writers (TensorBoard draws them).
        writers: writer objects or paths (``*.csv``, ``*.jsonl``); the in-memory table is always kept.
        on_anomaly: ``"warn"`` (a :class:`VarianceAnomalyWarning`), ``"stop"`` (warn and set
            ``model.stop_training = True``) or ``"ignore"``.
        std_ratio_bounds: the anomaly bounds of std(activations of the last hidden tracked layer) /
            std(activations of the first one); the model's output layers and softmax/sigmoid layers
            are left out of the ratio (:attr:`ratio_layers`), so a probability head whose std is
            ~0 at initialization raises no false alarm.
        training: the mode of the probe pass. ``True``: training mode, the forward pass the
            optimizer differentiates (BatchNormalization normalizes with the probe batch's own
            statistics; dropout is active with the same masks at every record); ``False``:
            inference mode (BatchNormalization uses its moving statistics, dropout is off);
            ``"auto"`` (default): training mode iff the model has a trainable BatchNormalization
            layer, else inference mode. Why: the moving statistics trail the weights (momentum
            0.99: ~100 steps), so early in training an inference-mode probe of a BN network
            measures statistics the network never trains on (MobileNetV2 after 2 steps: its
            last conv's std 0.0004 in inference mode, 0.4 in training mode, a vanished-signal
            false alarm); without BN the two modes differ only by dropout and noise layers, and
            inference mode is their deterministic version. The probe never changes training: the
            model's non-trainable state (BN moving statistics, dropout seed states) is restored
            after each training-mode pass (on JAX the pass is stateless anyway). The mode is
            :attr:`probe_training` and every record's ``probe_training`` column. In inference
            mode the ratio is not judged while a BatchNormalization layer still has its initial
            moving statistics (they normalize nothing yet), and an alarm says the mode.

    Subclassed models have no graph from which inner layer outputs can be read: their weights and
    kernel gradients are recorded, their activations are skipped with a warning naming the layers
    (see :attr:`skipped_layers`); so are shared layers (called more than once). Kernel gradients
    run on TensorFlow, JAX and PyTorch, layer-output gradients on TensorFlow and PyTorch. The loss is the compiled single loss (plus ``model.losses``); models
    with one loss per output go through ``model.compute_loss``, which also updates their per-output
    loss metrics. A tensor the loss does not depend on gets no gradient row (e.g. the output of a
    softmax layer when Keras's cross-entropy reads the logits behind it).
    """

    def __init__(
        self,
        probe: Any = "auto",
        layers: Sequence[str | keras.layers.Layer] | None = None,
        track: Iterable[str] | str = ("weights", "activations", "gradients"),
        every_n_batches: int | None = None,
        every_epoch: bool = True,
        histograms: bool = False,
        writers: Iterable[Any] = (),
        on_anomaly: str = "warn",
        histogram_bins: int = 50,
        std_ratio_bounds: tuple[float, float] = (1e-3, 1e3),
        training: bool | str = "auto",
    ) -> None:
        super().__init__()
        validate_probe(probe)
        track = (track,) if isinstance(track, str) else tuple(track)
        bad = [t for t in track if t not in TRACKABLE]
        if bad or not track:
            raise ValueError(f"track must be a non-empty collection of {list(TRACKABLE)}; got {list(track)!r}")
        check_probe("gradients" in track, "output_gradients" in track)
        if every_n_batches is not None and (isinstance(every_n_batches, bool) or not isinstance(every_n_batches, int) or every_n_batches <= 0):
            raise ValueError(f"every_n_batches must be None or a positive int; got {every_n_batches!r}")
        if on_anomaly not in ON_ANOMALY:
            raise ValueError(f"on_anomaly must be one of {list(ON_ANOMALY)}; got {on_anomaly!r}")
        if layers is not None:
            if isinstance(layers, str | keras.layers.Layer):
                layers = [layers]
            for item in layers:
                if not isinstance(item, str | keras.layers.Layer):
                    raise TypeError(f"layers must be None or a list of layer names or layers; got an item of type {type(item).__name__}")
        if isinstance(histogram_bins, bool) or not isinstance(histogram_bins, int) or histogram_bins <= 0:
            raise ValueError(f"histogram_bins must be a positive int; got {histogram_bins!r}")
        try:
            low, high = (float(b) for b in std_ratio_bounds)
        except (TypeError, ValueError):
            raise ValueError(f"std_ratio_bounds must be a pair (low, high) of numbers; got {std_ratio_bounds!r}") from None
        if not 0 < low < high:
            raise ValueError(f"std_ratio_bounds must be (low, high) with 0 < low < high; got {std_ratio_bounds!r}")
        if not (training == "auto" if isinstance(training, str) else isinstance(training, bool)):
            raise ValueError(f"training must be one of {list(TRAINING)}; got {training!r}")
        if isinstance(writers, str):
            writers = [writers]
        self.training = training
        self._probe_spec = probe
        self._layer_spec = None if layers is None else list(layers)
        self.track: tuple[str, ...] = tuple(k for k in TRACKABLE if k in track)
        self.every_n_batches = every_n_batches
        self.every_epoch = bool(every_epoch)
        self.keep_histograms = bool(histograms)
        self.histogram_bins = histogram_bins
        self.std_ratio_bounds = (float(low), float(high))
        self.on_anomaly = on_anomaly
        self.writers: list[Writer] = [make_writer(w) for w in writers]
        #: The in-memory table of records.
        self.history = MonitorHistory()
        #: Histograms (edges and counts) when ``histograms=True``.
        self.histograms: list[HistogramEntry] = []
        #: Anomalies found: dicts with epoch, step and message.
        self.anomalies: list[dict[str, Any]] = []
        #: Layer name -> why its activations (or everything) are not recorded.
        self.skipped_layers: dict[str, str] = {}
        #: Names of the tracked layers in depth order.
        self.tracked_layers: list[str] = []
        #: The probe's mode once prepared (``training`` resolved): True = training mode.
        self.probe_training: bool | None = None
        #: Probe evaluations run (each is one forward and, with gradients, one backward pass).
        self.probe_passes = 0
        self.probe: Probe | None = None
        self._prepared_for: Any = None
        self._run: Any = None
        self._act_entries: list[Entry] = []
        self.ratio_layers: list[str] = []
        self._kernel_entries: list[Entry] = []
        self._batchnorms: list[Any] = []
        self._state: list[Any] = []
        self._seeds: list[tuple[Any, np.ndarray]] = []
        self._depth: dict[str, int] = {}
        self._epoch = 0
        self._epoch_start_step = 0
        self._seen_step = 0
        self._last_step: int | None = None
        self._pending_initial = False
        if every_n_batches is not None:
            # Only then does the monitor hook batch ends: Keras dispatches batch callbacks
            # asynchronously (no per-batch device sync) unless a callback overrides them.
            self.on_train_batch_end = self._record_every_n_batches  # type: ignore[method-assign]

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _data_loss(model: Any) -> tuple[Any, bool]:
        """The compiled loss as ``(y, y_pred, sample_weight) -> scalar`` and whether the model's
        added losses (regularization) must still be added to it."""
        loss = getattr(model, "loss", None)
        if loss is None or not (isinstance(loss, str | keras.losses.Loss) or callable(loss)):

            def compiled(y: Any, y_pred: Any, sample_weight: Any) -> Any:
                return model.compute_loss(y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)

            return compiled, False
        fn = keras.losses.get(loss)

        def single(y: Any, y_pred: Any, sample_weight: Any) -> Any:
            if isinstance(fn, keras.losses.Loss):
                return fn(y, y_pred, sample_weight=sample_weight)
            per_example = fn(y, y_pred)
            if sample_weight is not None:
                per_example = per_example * keras.ops.cast(sample_weight, per_example.dtype)
            return keras.ops.mean(per_example)

        return single, True

    def _resolve_training(self) -> bool:
        """``training`` with "auto" resolved: training mode iff a trainable BatchNormalization layer
        (one that normalizes with batch statistics in fit's forward pass) is in the model."""
        if self.training != "auto":
            return bool(self.training)
        return any(layer.trainable for layer in self._batchnorms)

    def _prepare(self, model: Any) -> None:
        """Choose layers, build the probe model and the compiled probe function (once per model)."""
        if self._prepared_for is model:
            return
        if self.probe is not None and not all(layer.built for layer in model.layers):
            # a subclassed model may reach fit() with unbuilt sublayers: build them on one example
            model(keras.tree.map_structure(lambda a: a[:1], self.probe.x), training=False)
        entries = plan(model, self._layer_spec)
        self.skipped_layers = {}
        wants_acts = "activations" in self.track or "output_gradients" in self.track
        act_entries: list[Entry] = []
        if wants_acts:
            for entry in entries:
                if not entry.activation:
                    continue
                if entry.site.tensor is None:
                    self.skipped_layers[entry.name] = entry.site.reason or "output not reachable"
                else:
                    act_entries.append(entry)
        if self.skipped_layers:
            names = list(self.skipped_layers.items())
            details = "; ".join(f"'{n}': {why}" for n, why in names[:10])
            more = f"; and {len(names) - 10} more (see skipped_layers)" if len(names) > 10 else ""
            warnings.warn(f"VarianceMonitor skips the activations of {len(names)} layer(s): {details}{more}", stacklevel=2)
        kernel_entries = [entry for entry in entries if entry.weight is not None]
        if not act_entries and not kernel_entries:
            raise ValueError(
                f"layers: nothing to record; the selected layers {sorted({e.site.path for e in entries})} have no "
                "kernel and no reachable output"
            )
        self._act_entries = act_entries
        self._kernel_entries = kernel_entries
        #: layers whose activations the std ratio compares: hidden layers, not the model's outputs nor
        #: probability layers (a softmax head can have std 0 at initialization on a healthy model)
        self.ratio_layers = [e.name for e in act_entries if not e.site.is_output and not _is_probability_layer(e.layer)]
        self._batchnorms = [layer for layer in iter_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
        self.probe_training = self._resolve_training()
        kept = {id(e) for e in act_entries} | {id(e) for e in kernel_entries}
        self.tracked_layers = list(dict.fromkeys(e.name for e in entries if id(e) in kept))
        self._depth = {name: i for i, name in enumerate(self.tracked_layers)}
        net = ProbeNet(model, act_entries, self.probe_training)
        # what a training-mode pass may change (BN moving statistics, seed states...), restored after
        # it; dropout seeds are also set to their values now before each pass: the same masks every record
        self._state = list(net.non_trainable_variables) if self.probe_training else []
        self._seeds = [(sg.state, to_numpy(sg.state)) for layer in iter_layers(model)
                       for sg in getattr(layer, "_seed_generators", ())] if self.probe_training else []

        def split(outputs: Any) -> tuple[Any, list[Any]]:
            return outputs[0], list(outputs[1])

        kernels = [e.weight.variable for e in kernel_entries] if "gradients" in self.track else []
        spec = ProbeSpec(net=net, split=split, kernels=kernels, output_gradients="output_gradients" in self.track)
        if spec.needs_gradients:
            spec.data_loss, spec.add_model_losses = self._data_loss(model)
        needs_eval = spec.needs_gradients or ("activations" in self.track and act_entries)
        self._run = build_probe_function(spec) if needs_eval else None
        self._prepared_for = model

    def _ensure_probe(self, model: Any) -> None:
        if self.probe is None:
            self.probe = probe_from_fit(model) if isinstance(self._probe_spec, str) else resolve_probe(self._probe_spec)
        if self.probe.y is None and ("gradients" in self.track or "output_gradients" in self.track):
            raise ValueError("probe: gradients need targets; pass probe=(x, y) or track only weights/activations")

    # -------------------------------------------------------------- recording
    def _histogram(self, epoch: int, step: int, name: str, kind: str, values: np.ndarray) -> HistogramEntry:
        flat = values.astype(np.float64, copy=False).ravel()
        finite = flat[np.isfinite(flat)]
        counts, edges = np.histogram(finite if finite.size else np.zeros(1), bins=self.histogram_bins)
        return HistogramEntry(epoch, step, name, self._depth[name], kind, edges, counts)

    def record(self, epoch: int, step: int) -> list[dict[str, Any]]:
        """Take one record of every tracked layer now (callbacks call this); return the new rows."""
        model = self.model
        self._ensure_probe(model)
        self._prepare(model)
        rows: list[dict[str, Any]] = []
        hists: list[HistogramEntry] = []

        mode = {"probe_training": self.probe_training}

        def add(name: str, kind: str, values: dict[str, Any], raw: np.ndarray) -> None:
            rows.append({"epoch": epoch, "step": step, "layer": name, "depth": self._depth[name], "kind": kind, **values, **mode})
            if self.keep_histograms:
                hists.append(self._histogram(epoch, step, name, kind, raw))

        weights = {e.name: to_numpy(e.weight.variable) for e in self._kernel_entries}
        if "weights" in self.track:
            for name, w in weights.items():
                add(name, "weights", stats.weight_stats(w), w)
        if self._run is not None:
            probe = self.probe
            acts, kernel_grads, output_grads = self._probe_pass(probe)
            if "activations" in self.track:
                for entry, act in zip(self._act_entries, acts, strict=True):
                    a = to_numpy(act)
                    add(entry.name, "activations", stats.activation_stats(a, stats.activation_name(entry.layer)), a)
            for entry, grad in zip(self._kernel_entries, kernel_grads, strict=False):
                if grad is None:
                    continue
                g = to_numpy(grad)
                add(entry.name, "gradients", stats.gradient_stats(g, weights[entry.name]), g)
            for entry, grad in zip(self._act_entries, output_grads, strict=False):
                if grad is None:
                    continue
                g = to_numpy(grad)
                add(entry.name, "output_gradients", stats.gradient_stats(g), g)
        kind_order = {k: i for i, k in enumerate(stats.KINDS)}
        rows.sort(key=lambda r: (kind_order[r["kind"]], r["depth"]))
        added = self.history.extend(rows)
        for writer in self.writers:
            writer.write(added)
            if hists:
                writer.write_histograms(hists)
        self.histograms.extend(hists)
        self._last_step = step
        self._check(epoch, step, added)
        return added

    def _probe_pass(self, probe: Probe) -> tuple[list[Any], list[Any], list[Any]]:
        """One probe evaluation. In training mode the seed states are set to their values at
        preparation (the same dropout masks at every record) and every non-trainable variable the
        pass may update (BN moving statistics, seed states) is restored afterwards, so the probe
        leaves training exactly as it was."""
        saved = [(v, to_numpy(v)) for v in self._state]  # copies (never a view of torch's storage)
        try:
            for variable, value in self._seeds:
                variable.assign(value)
            out = self._run(probe.x, probe.y, probe.sample_weight)
        finally:
            for variable, value in saved:
                variable.assign(value)
        self.probe_passes += 1
        return out

    def _uncalibrated_batchnorm(self) -> bool:
        """Whether a BatchNormalization layer still holds its initial moving statistics (0 and 1).

        In inference mode (``training=False``) such a layer normalizes nothing: the signal of a
        fresh BN network (MobileNetV2, ResNet) then vanishes through depth although training sees
        normalized activations. The std ratio is not judged until the statistics have moved.
        """
        for layer in self._batchnorms:
            if not (np.all(to_numpy(layer.moving_mean) == 0) and np.all(to_numpy(layer.moving_variance) == 1)):
                continue
            return True
        return False

    def _check(self, epoch: int, step: int, rows: list[dict[str, Any]]) -> None:
        messages = []
        for row in rows:
            if not stats.is_finite_record(row):
                numbers = ", ".join(f"{k}={row.get(k)!r}" for k in ("mean", "std", "min", "max", "norm") if row.get(k) is not None)
                messages.append(f"{row['kind']} of layer '{row['layer']}' contain NaN/Inf ({numbers})")
        hidden = set(self.ratio_layers)
        acts = sorted((r for r in rows if r["kind"] == "activations" and r["layer"] in hidden), key=lambda r: r["depth"])
        if len(acts) >= 2 and (self.probe_training or not self._uncalibrated_batchnorm()):
            first, last = acts[0], acts[-1]
            s0, s1 = first["std"], last["std"]
            ratio = s1 / s0 if s0 > 0 else (float("inf") if s1 > 0 else float("nan"))
            low, high = self.std_ratio_bounds
            if np.isfinite(s0) and np.isfinite(s1) and not low <= ratio <= high:
                hint = ""
                if not self.probe_training and self._batchnorms:
                    hint = (" (probe in inference mode: BatchNormalization uses its moving statistics, which trail "
                            "the weights early in training; training=True measures what training sees)")
                messages.append(
                    f"activation std ratio last/first layer = {ratio:.3g} ('{last['layer']}' std={s1:.3g} / "
                    f"'{first['layer']}' std={s0:.3g}) is outside [{low:g}, {high:g}]{hint}"
                )
        if not messages:
            return
        for message in messages:
            self.anomalies.append({"epoch": epoch, "step": step, "message": message})
        if self.on_anomaly == "ignore":
            return
        action = "; stopping training" if self.on_anomaly == "stop" else ""
        warnings.warn(f"VarianceMonitor at epoch {epoch}, step {step}: " + "; ".join(messages) + action, VarianceAnomalyWarning, stacklevel=2)
        if self.on_anomaly == "stop":
            self.model.stop_training = True

    def _step(self) -> int:
        optimizer = getattr(self.model, "optimizer", None)
        iterations = getattr(optimizer, "iterations", None)
        return int(to_numpy(iterations)) if iterations is not None else 0

    # -------------------------------------------------------------- callbacks
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._ensure_probe(self.model)
        self._prepare(self.model)
        for writer in self.writers:
            writer.open()
        self._pending_initial = True

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._epoch_start_step = self._step()
        self._seen_step = self._epoch_start_step
        if self._pending_initial:
            self._pending_initial = False
            if self._last_step != self._epoch_start_step:
                self.record(epoch, self._epoch_start_step)

    def _record_every_n_batches(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """``on_train_batch_end`` when ``every_n_batches`` is set (see ``__init__``)."""
        n = self.every_n_batches
        if n is None:
            return
        step = self._epoch_start_step + batch + 1
        previous, self._seen_step = self._seen_step, step
        if step // n == previous // n or step == self._last_step:
            return
        steps = (self.params or {}).get("steps")
        last_of_epoch = steps is not None and batch + 1 == steps
        if last_of_epoch and self.every_epoch:
            return
        self.record(self._epoch + 1 if last_of_epoch else self._epoch, step)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.every_epoch:
            return
        step = self._step()
        if step != self._last_step:
            self.record(epoch + 1, step)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        for writer in self.writers:
            writer.close()

    def to_pandas(self) -> Any:
        """Shortcut for ``self.history.to_pandas()``."""
        return self.history.to_pandas()
