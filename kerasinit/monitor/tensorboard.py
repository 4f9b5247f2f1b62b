"""TensorBoard scalars and histograms (imports TensorFlow; loaded only when this writer is used).

Tags: ``"{kind}/{layer}/{stat}"`` for scalars (e.g. ``activations/dense_3/std``) and
``"{kind}_hist/{layer}"`` for histograms; the summary step is the optimizer step. On resume the
writer reads the event files already in ``logdir`` and skips (step, layer, kind) triples present
there, as the file writers do.
"""

from __future__ import annotations

import glob
import os
from typing import Any

from kerasinit.monitor.stats import STAT_COLUMNS
from kerasinit.monitor.writers import HistogramEntry, Writer


def read_tensorboard_scalars(logdir: str | os.PathLike[str]) -> list[tuple[str, int, float]]:
    """Every ``(tag, step, value)`` scalar in the event files under ``logdir`` (for checks and resume)."""
    import tensorflow as tf

    out = []
    for path in sorted(glob.glob(os.path.join(os.fspath(logdir), "**", "events.out.tfevents.*"), recursive=True)):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.HasField("tensor") and value.metadata.plugin_data.plugin_name != "histograms":
                    array = tf.make_ndarray(value.tensor)
                    if array.ndim == 0:
                        out.append((value.tag, int(event.step), float(array)))
                elif value.HasField("simple_value"):
                    out.append((value.tag, int(event.step), float(value.simple_value)))
    return out


def read_tensorboard_histogram_tags(logdir: str | os.PathLike[str]) -> list[tuple[str, int]]:
    """Every ``(tag, step)`` histogram in the event files under ``logdir``."""
    import tensorflow as tf

    out = []
    for path in sorted(glob.glob(os.path.join(os.fspath(logdir), "**", "events.out.tfevents.*"), recursive=True)):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "histograms":
                    out.append((value.tag, int(event.step)))
    return out


def _triple(tag: str, step: int) -> tuple[int, str, str]:
    kind, layer = tag.split("/")[:2]
    return (step, layer, kind.removesuffix("_hist"))


class TensorBoardWriter(Writer):
    """Writes each statistic as a TensorBoard scalar, histograms (when enabled) as histograms."""

    def __init__(self, logdir: str | os.PathLike[str], buckets: int | None = None) -> None:
        if not isinstance(logdir, str | os.PathLike):
            raise TypeError(f"logdir must be a str or os.PathLike; got {type(logdir).__name__}")
        self.logdir = os.fspath(logdir)
        self.buckets = buckets
        self._writer: Any = None
        self._seen: set[tuple[int, str, str]] = set()
        self._seen_hist: set[tuple[int, str, str]] = set()
        self.skipped = 0

    def open(self) -> None:
        if self._writer is not None:
            return
        import tensorflow as tf

        if os.path.isdir(self.logdir):
            self._seen = {_triple(tag, step) for tag, step, _ in read_tensorboard_scalars(self.logdir)}
            self._seen_hist = {_triple(tag, step) for tag, step in read_tensorboard_histogram_tags(self.logdir)}
        self._writer = tf.summary.create_file_writer(self.logdir)

    def write(self, records: list[dict[str, Any]]) -> None:
        import tensorflow as tf

        self.open()
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
                        tf.summary.scalar(f"{record['kind']}/{record['layer']}/{stat}", float(value), step=triple[0])
        self._writer.flush()

    def write_histograms(self, entries: list[HistogramEntry]) -> None:
        import tensorflow as tf

        self.open()
        with self._writer.as_default():
            for entry in entries:
                triple = (entry.step, entry.layer, entry.kind)
                if triple in self._seen_hist or entry.values is None:
                    continue
                self._seen_hist.add(triple)
                buckets = self.buckets or len(entry.counts)
                tf.summary.histogram(f"{entry.kind}_hist/{entry.layer}", entry.values, step=entry.step, buckets=buckets)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
