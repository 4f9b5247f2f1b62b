"""The command's one error boundary: what the user typed or pointed at, reported in at most two lines."""

from __future__ import annotations

from typing import Any

#: library argument -> the flag a user types for it (refusals name flags, not keyword arguments)
FLAGS = {
    "model": "--model", "dataset": "--dataset", "inits": "--inits", "epochs": "--epochs", "optimizer": "--optimizer",
    "learning_rate": "--lr", "batch_size": "--batch-size", "seeds": "--seeds", "depth": "--depth", "width": "--width",
    "activation": "--activation", "model_options": "--depth/--width/--activation", "target": "--target",
    "rounds": "--rounds", "rate": "--rate", "rate_overrides": "--rate", "scope": "--scope", "rewind": "--rewind",
    "controls": "--controls", "eval_every": "--eval-every", "methods": "--methods", "sparsities": "--sparsities",
    "distribution": "--distribution", "iterations": "--iterations", "ablation": "--ablation",
    "with_lottery": "--with-lottery", "out": "--out", "resume": "--fresh", "label": "--label", "loss": "the model's output",
    "dataset_seed": "the dataset's split seed", "format": "--format",
    "sparse": "--dense", "shrink": "--shrink", "tolerance": "--tolerance", "path": "--out", "overwrite": "--overwrite", "layers": "the pruned layers", "score_samples": "the scoring batch",
    "update_every": "--update-every", "drop_fraction": "--drop-fraction", "drop_schedule": "--drop-schedule",
    "executor": "--executor", "address": "--address", "workers": "--workers",
}
#: the library function behind each command (a folder written by another experiment names its command)
EXPERIMENTS = {"run_compare": "compare", "run_lottery": "lottery", "run_prune_at_init": "prune-at-init"}


class UsageError(Exception):
    """A problem with the command line or the files it names: ``error: <message>`` and an optional ``hint`` line."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def flag(argument: str) -> str:
    """The flag for a library argument name (the name itself when the command has no such flag)."""
    return FLAGS.get(argument, f"`{argument}`")


def _short(value: Any) -> str:
    text = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def run_folder_conflict(exc: Any) -> UsageError:
    """A library ``RunFolderConflict`` (saved settings differ from the command's) in flags, with the ways out."""
    differences = dict(getattr(exc, "differences", {}) or {})
    if "experiment" in differences:
        saved, now = differences["experiment"]
        return UsageError(f"{exc.out}/ holds the results of `kerasinit {EXPERIMENTS.get(saved, saved)}`, "
                          f"not of `kerasinit {EXPERIMENTS.get(now, now)}`", "choose another --out")
    if "inits" in differences:  # a label naming another initializer than before: the values are hashes
        differences["inits"] = ("other initializers", "under the same names")
    parts = [f"{flag(k)} {_short(saved)} there, {_short(now)} now" for k, (saved, now) in differences.items()]
    what = "; ".join(parts) if parts else "other settings"
    return UsageError(f"{exc.out}/ holds a run with other settings ({what})",
                      "rerun with its settings to resume it, add --fresh to start over there, or choose another --out")


__all__ = ["FLAGS", "UsageError", "flag", "run_folder_conflict"]
