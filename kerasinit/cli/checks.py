"""Checks across arguments and of the paths a command will write, made before Keras loads or any training.

Anything the user typed or pointed at fails here, in two lines, rather than after the work is done.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from kerasinit.cli.errors import UsageError
from kerasinit.experiments import catalog

IMAGE_SUFFIXES = (".png", ".pdf", ".svg")


def writable_folder(flag: str, path: str) -> None:
    """``path`` is (now) a folder this process can write in: created if missing, probed with a temporary file."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a file, not a folder", f"give {flag} a folder name")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"{flag} {path}: cannot write there ({reason})", f"give {flag} a folder you can write to") from None


def writable_file(flag: str, path: str, overwrite: bool) -> None:
    """An image file that may be written: a known suffix, not a folder, not an existing file unless ``overwrite``."""
    if not path.lower().endswith(IMAGE_SUFFIXES):
        raise UsageError(f"{flag} {path}: expected a {', '.join(IMAGE_SUFFIXES)} file name")
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a folder", f"give {flag} a file name such as {os.path.join(path, 'bounds.png')}")
    if os.path.exists(path) and not overwrite:
        raise UsageError(f"{flag} {path} exists", "add --overwrite to replace it, or choose another file name")
    writable_folder(flag, os.path.dirname(path) or ".")


def experiment(args: argparse.Namespace) -> None:
    """What ``compare``/``lottery``/``prune-at-init`` check once every flag parsed."""
    if args.model != "mlp":
        given = [f for f in ("depth", "width", "activation") if getattr(args, f) is not None]
        if given:
            raise UsageError(f"--{given[0]} applies to --model mlp only (received --model {args.model})")
    is_csv = args.dataset.lower().endswith(".csv")
    if args.label is not None and not is_csv:
        raise UsageError(f"--label applies to .csv datasets only (received --dataset {args.dataset})")
    problem = catalog.model_dataset_mismatch(args.model, args.dataset)
    if problem:
        what, _, fits = problem.rstrip(".").partition("; datasets that fit: ")
        raise UsageError(what, f"datasets that fit: {fits}" if fits else None)
    if getattr(args, "instability", None) and max(args.instability) > args.rounds:
        raise UsageError(f"--instability {','.join(map(str, args.instability))}: rounds go from 0 to --rounds "
                         f"{args.rounds}")
    executor(args)
    writable_folder("--out", args.out)
    if getattr(args, "tensorboard", None):
        writable_folder("--tensorboard", args.tensorboard)


def executor(args: argparse.Namespace) -> None:
    """``--address``/``--workers`` go with ``--executor ray``, which needs Ray installed (checked without importing it)."""
    if getattr(args, "executor", "inprocess") != "ray":
        given = [f for f, v in (("--address", getattr(args, "address", None)), ("--workers", getattr(args, "workers", None)))
                 if v is not None]
        if given:
            raise UsageError(f"{given[0]} applies to --executor ray only (received --executor {args.executor})")
        return
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise UsageError("--executor ray needs Ray, which is not installed", "pip install 'kerasinit[ray]'")


def describe(args: argparse.Namespace) -> None:
    if args.shape is not None and (args.fan_in is not None or args.fan_out is not None):
        raise UsageError("give either --shape or --fan-in/--fan-out, not both")


def plot_bounds(args: argparse.Namespace) -> None:
    writable_file("--out", args.out, args.overwrite)


def export_out(model: str, format: str) -> str:
    """The default ``--out`` of ``export``: next to the model, named after it."""
    stem = model[: -len(".keras")] if model.lower().endswith(".keras") else model
    return {"tflite": stem + ".tflite", "keras": stem + ".stripped.keras", "saved_model": stem + "_saved_model"}[format]


def export(args: argparse.Namespace) -> None:
    if args.dense and args.format != "tflite":
        raise UsageError(f"--dense applies to --format tflite only (received --format {args.format})")
    if args.out is None:
        args.out = export_out(args.model, args.format)
    suffix = {"tflite": ".tflite", "keras": ".keras"}.get(args.format)
    if suffix and not args.out.lower().endswith(suffix):
        raise UsageError(f"--out {args.out}: expected a {suffix} file name for --format {args.format}")
    if args.format == "saved_model" and args.out.lower().endswith((".keras", ".tflite")):
        raise UsageError(f"--out {args.out}: --format saved_model writes a folder", "give --out a folder name")
    if os.path.abspath(args.out) == os.path.abspath(args.model):
        raise UsageError(f"--out {args.out} is the model itself", "choose another file name")
    if os.path.exists(args.out) and not args.overwrite:
        raise UsageError(f"--out {args.out} exists", "add --overwrite to replace it, or choose another --out")
    writable_folder("--out", os.path.dirname(os.path.abspath(args.out)))


CHECKS = {"export": export, "describe": describe, "plot-bounds": plot_bounds, "compare": experiment, "lottery": experiment,
          "prune-at-init": experiment}


def check(args: argparse.Namespace) -> None:
    """Run the checks of ``args.command`` (raises :class:`UsageError`)."""
    if args.command in CHECKS:
        CHECKS[args.command](args)


__all__ = ["check", "writable_file", "writable_folder"]
