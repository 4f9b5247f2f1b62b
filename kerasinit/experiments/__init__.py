"""Experiments composed over Keras's own ``fit``: initializer comparisons, lottery tickets and
linear-mode-connectivity instability, on any Keras model and dataset.

- ``datasets``: built-in, ``keras.datasets`` (from Keras's cache), file and array datasets (``load``);
- ``models``: the zoo (``build``: LeNet-300-100, Conv-2/4/6, ResNet-20, VGG-16, MLP) and fresh copies;
- ``training``: the one trainer (``train``: ``model.fit`` with bookkeeping callbacks);
- ``compare`` (``run_compare``), ``lottery`` (``run_lottery``), ``instability`` (``instability``);
- ``results``: atomic writes, resumable folders, JSON/CSV; ``progress``: the progress bar;
- ``executor``: where the trainings of a sweep run (``InProcess``, ``RayExecutor``: ``executor=`` of each experiment).
"""

from __future__ import annotations

from typing import Any

_NAMES = {"run_compare": "compare", "run_lottery": "lottery", "instability": "instability",
          "run_prune_at_init": "sparsity", "InProcess": "executor", "RayExecutor": "executor"}


def __getattr__(name: str) -> Any:  # PEP 562: keep `import kerasinit.experiments` light
    import importlib

    if name in _NAMES:
        return getattr(importlib.import_module(f"kerasinit.experiments.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'kerasinit.experiments' has no attribute {name!r}")


__all__ = ["InProcess", "RayExecutor", "instability", "run_compare", "run_lottery", "run_prune_at_init"]
