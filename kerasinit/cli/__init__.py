"""The ``kerasinit`` command (thin: checks what was typed, calls the library, prints).

Subcommands: ``list``, ``describe``, ``plot-bounds``, ``compare``, ``lottery``, ``prune-at-init``, ``export``.

One error boundary (:func:`main`): every flag and every path is checked before Keras loads
(:mod:`~kerasinit.cli.parser`, :mod:`~kerasinit.cli.checks`), so a typo is refused in a fraction of
a second with "did you mean"; anything refused prints ``kerasinit <command>: error: <what>`` and at
most one hint line, exit status 2. A traceback appears only with ``--verbose`` or for a bug.
Ctrl-C stops any command with one line saying what was kept and how to resume, exit status 130; a
training that ends at chance level is one ``warning:`` line (``ChanceLevelWarning``).
"""

from __future__ import annotations

import functools
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

from kerasinit.cli.errors import UsageError, run_folder_conflict
from kerasinit.cli.parser import build_parser, check_command, command_of
from kerasinit.cli.startup import (
    LIGHT_BACKEND,
    LIGHT_COMMANDS,
    choose_backend,
    load_keras,
    native_stderr_silenced,
)

#: the exit status of a command stopped by Ctrl-C (128 + SIGINT, as shells report it)
INTERRUPTED = 130
#: the exit status of a refused command line or input (argparse's)
USAGE = 2
#: the exit status of a bug (a traceback was printed)
BUG = 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = command_of(argv)
    verbose = "--verbose" in argv
    try:
        return _run(argv)
    except KeyboardInterrupt as exc:  # Ctrl-C: one line, no traceback
        print(_interrupted_line(command, exc, argv), file=sys.stderr, flush=True)
        return INTERRUPTED
    except UsageError as exc:
        _error(command, exc.message, exc.hint)
        return USAGE
    except (ValueError, TypeError, OSError) as exc:  # the library refused an input (it names the argument)
        if type(exc).__name__ == "RunFolderConflict":
            conflict = run_folder_conflict(exc)
            _error(command, conflict.message, conflict.hint)
            return USAGE
        if verbose:
            traceback.print_exc()
        _error(command, _one_line(exc), None if verbose else "rerun with --verbose for the traceback")
        return USAGE
    except Exception:  # a bug: the traceback is what a report needs
        traceback.print_exc()
        print(f"kerasinit {command or ''}: internal error (a bug in kerasinit: please report it with the traceback "
              "above)".replace("  ", " "), file=sys.stderr)
        return BUG


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}"
    return text


def _error(command: str | None, message: str, hint: str | None) -> None:
    head = f"kerasinit {command}" if command else "kerasinit"
    print(f"{head}: error: {message}", file=sys.stderr)
    if hint:
        print(f"  {hint}", file=sys.stderr)


def _run(argv: list[str]) -> int:
    check_command(argv)
    args = build_parser().parse_args(argv)
    from kerasinit.cli import checks

    checks.check(args)  # paths and combinations: still before Keras
    load_keras(args.command, verbose=args.verbose)
    from kerasinit.cli.commands import COMMANDS

    if args.command in LIGHT_COMMANDS:
        return COMMANDS[args.command](args)
    from kerasinit.experiments.training import interrupts_remembered

    with interrupts_remembered(), warnings.catch_warnings():
        warnings.showwarning = functools.partial(_show_warning, command=args.command, previous=warnings.showwarning)
        return COMMANDS[args.command](args)


def _interrupted_line(command: str | None, exc: KeyboardInterrupt, argv: Sequence[str]) -> str:
    """The one line printed when Ctrl-C stops ``command``: where it stopped, what was kept, how to go on."""
    head = f"kerasinit {command}: interrupted" if command else "kerasinit: interrupted"
    resume = "rerun without --fresh to resume" if "--fresh" in argv else "rerun the same command to resume"
    done, out = getattr(exc, "done", None), getattr(exc, "out", None)
    if done is None:  # outside an experiment's loop (start-up, plots, instability)
        return f"{head}; {resume}" if command in ("lottery", "compare", "prune-at-init") else head
    if out is None:
        return f"{head} {done}; nothing saved"
    if getattr(exc, "resumable", False):
        return f"{head} {done}; {resume} ({out}/)"
    return f"{head} {done}; results so far in {out}/ (a rerun starts over)"


#: warnings shown as one ``kerasinit <command>: warning: ...`` line (the library's "said out loud" ones)
ONE_LINE_WARNINGS = ("ChanceLevelWarning", "LayerCollapseWarning", "LabelColumnWarning", "ExportWarning")


def _show_warning(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None, *, command: str, previous: Any) -> None:
    """kerasinit's own warnings as one line each; other warnings as Python shows them."""
    if category.__name__ in ONE_LINE_WARNINGS:
        print(f"kerasinit {command}: warning: {message}", file=sys.stderr if file is None else file, flush=True)
    else:
        previous(message, category, filename, lineno, file, line)


__all__ = ["INTERRUPTED", "LIGHT_BACKEND", "LIGHT_COMMANDS", "build_parser", "choose_backend", "load_keras", "main",
           "native_stderr_silenced"]
