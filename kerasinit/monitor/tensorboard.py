"""TensorBoard scalars and histograms (imports TensorFlow; loaded only when this writer is used).

Events are written with TensorFlow's core ``tf.summary.write`` in the formats of TensorBoard's
scalar and histogram plugins, so the ``tensorboard`` package is needed to *view* them but not to
write them. Tags: ``"{kind}/{layer}/{stat}"`` for scalars (e.g. ``activations/dense_3/std``) and
``"{kind}_hist/{layer}"`` for histograms (the monitor's own buckets: rows of
``(left edge, right edge, count)``); the summary step is the optimizer step. On resume the writer
reads the event files already in ``logdir`` and skips (step, layer, kind) triples present there,
as the file writers do.
"""

from __future__ import annotations

import glob
import os
from typing import Any

import numpy as np

from kerasinit.monitor.stats import STAT_COLUMNS
from kerasinit.monitor.writers import HistogramEntry, Writer

SCALARS_PLUGIN = "scalars"
HISTOGRAMS_PLUGIN = "histograms"


def _events(logdir: str | os.PathLike[str]) -> Any:
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    pattern = os.path.join(os.fspath(logdir), "**", "events.out.tfevents.*")
    for path in sorted(glob.glob(pattern, recursive=True)):
        for raw in tf.data.TFRecordDataset(path):
            yield event_pb2.Event.FromString(raw.numpy())


def read_tensorboard_scalars(logdir: str | os.PathLike[str]) -> list[tuple[str, int, float]]:
    """Every ``(tag, step, value)`` scalar in the event files under ``logdir``."""
    import tensorflow as tf

    out = []
    for event in _events(logdir):
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == SCALARS_PLUGIN:
                out.append((value.tag, int(event.step), float(tf.make_ndarray(value.tensor))))
            elif value.HasField("simple_value"):
                out.append((value.tag, int(event.step), float(value.simple_value)))
    return out


def read_tensorboard_histograms(logdir: str | os.PathLike[str]) -> list[tuple[str, int, np.ndarray]]:
    """Every ``(tag, step, buckets)`` histogram under ``logdir``; ``buckets`` rows are (left, right, count)."""
    import tensorflow as tf

    out = []
    for event in _events(logdir):
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == HISTOGRAMS_PLUGIN:
                out.append((value.tag, int(event.step), tf.make_ndarray(value.tensor)))
    return out


def _triple(tag: str, step: int) -> tuple[int, str, str]:
    kind, layer = tag.split("/")[:2]
    return (step, layer, kind.removesuffix("_hist"))


def _metadata(plugin: str) -> bytes:
    from tensorflow.core.framework import summary_pb2

    meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin))
    return meta.SerializeToString()


class TensorBoardWriter(Writer):
    """Writes each statistic as a TensorBoard scalar and, with ``histograms=True`` on the monitor,
    each tensor's histogram."""

    def __init__(self, logdir: str | os.PathLike[str]) -> None:
        if not isinstance(logdir, str | os.PathLike):
            raise TypeError(f"logdir must be a str or os.PathLike; got {type(logdir).__name__}")
        self.logdir = os.fspath(logdir)
        self._writer: Any = None
        self._seen: set[tuple[int, str, str]] = set()
        self._seen_hist: set[tuple[int, str, str]] = set()
        #: Records skipped because their (step, layer, kind) was already in ``logdir`` (resume).
        self.skipped = 0

    def open(self) -> None:
        if self._writer is not None:
            return
        import tensorflow as tf

        if os.path.isdir(self.logdir):
            self._seen = {_triple(tag, step) for tag, step, _ in read_tensorboard_scalars(self.logdir)}
            self._seen_hist = {_triple(tag, step) for tag, step, _ in read_tensorboard_histograms(self.logdir)}
        self._writer = tf.summary.create_file_writer(self.logdir)

    def write(self, records: list[dict[str, Any]]) -> None:
        import tensorflow as tf

        self.open()
        meta = _metadata(SCALARS_PLUGIN)
        with self._writer.as_default():
            for record in records:
                triple = (int(record["step"]), str(record["layer"]), str(record["kind"]))
                if triple in self._seen:
                    self.skipped += 1
                    continue
                self._seen.add(triple)
                for stat in STAT_COLUMNS:
                    value = record.get(stat)
                    if value is not None:
                        tag = f"{record['kind']}/{record['layer']}/{stat}"
                        tf.summary.write(tag, tf.constant(float(value), tf.float32), step=triple[0], metadata=meta)
        self._writer.flush()

    def write_histograms(self, entries: list[HistogramEntry]) -> None:
        import tensorflow as tf

        self.open()
        meta = _metadata(HISTOGRAMS_PLUGIN)
        with self._writer.as_default():
            for entry in entries:
                triple = (entry.step, entry.layer, entry.kind)
                if triple in self._seen_hist:
                    continue
                self._seen_hist.add(triple)
                edges = np.asarray(entry.edges, dtype=np.float64)
                buckets = np.stack([edges[:-1], edges[1:], np.asarray(entry.counts, dtype=np.float64)], axis=1)
                tf.summary.write(f"{entry.kind}_hist/{entry.layer}", tf.constant(buckets), step=entry.step, metadata=meta)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
