"""Seeing the signal: per-layer statistics of weights, activations and gradients during training.

``import kerasinit.monitor`` works on every Keras backend and imports neither TensorFlow nor JAX:
the gradient evaluation imports its backend module on first use (TensorFlow or JAX), and
:class:`TensorBoardWriter` imports TensorFlow.

>>> monitor = VarianceMonitor(probe=(x[:256], y[:256]), writers=["run/monitor.csv"])
>>> model.fit(x, y, epochs=3, callbacks=[monitor])
>>> monitor.to_pandas().query("kind == 'activations'")
"""

from __future__ import annotations

from typing import Any

from kerasinit.monitor.callback import VarianceAnomalyWarning, VarianceMonitor, kernel_of
from kerasinit.monitor.probe import Probe
from kerasinit.monitor.stats import COLUMNS, KINDS
from kerasinit.monitor.writers import (
    CSVWriter,
    HistogramEntry,
    JSONLinesWriter,
    MonitorHistory,
    Writer,
    load_history,
)


def __getattr__(name: str) -> Any:
    if name == "TensorBoardWriter":
        from kerasinit.monitor.tensorboard import TensorBoardWriter

        return TensorBoardWriter
    raise AttributeError(f"module 'kerasinit.monitor' has no attribute {name!r}")


__all__ = [
    "COLUMNS",
    "KINDS",
    "CSVWriter",
    "HistogramEntry",
    "JSONLinesWriter",
    "MonitorHistory",
    "Probe",
    "TensorBoardWriter",
    "VarianceAnomalyWarning",
    "VarianceMonitor",
    "Writer",
    "kernel_of",
    "load_history",
]
