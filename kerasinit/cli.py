"""The ``kerasinit`` command (thin: parses, calls the library, prints).

Subcommands: ``list``, ``describe``, ``plot-bounds``, ``compare``, ``lottery``, ``prune-at-init``.

Ctrl-C stops any of them with one line on stderr saying what was finished and kept (``lottery``:
rerun the same command to resume) and exit status 130; a training that ends at chance level is
shown as one ``warning:`` line (``ChanceLevelWarning``), not a Python warning with its source line.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

#: Subcommands whose numbers do not depend on the backend (formulas, bounds, a few thousand draws):
#: they run on Keras's NumPy backend, which never loads TensorFlow, unless the user chose a backend.
LIGHT_COMMANDS = ("list", "describe", "plot-bounds")
LIGHT_BACKEND = "numpy"
#: the exit status of a command stopped by Ctrl-C (128 + SIGINT, as shells report it)
INTERRUPTED = 130


def _fan_range(text: str) -> list[int]:
    """``"1:100"`` (inclusive), ``"1:100:5"`` or ``"10,20,50"`` -> list of positive ints."""
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            start, stop = parts[0], parts[1]
            step = parts[2] if len(parts) == 3 else 1
            values = list(range(start, stop + 1, step))
        else:
            values = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--fan-in must look like 1:100, 1:100:5 or 10,20,50; received {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--fan-in values must be >= 1; received {text!r}")
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shape must look like 3,3,16,32; received {text!r}") from None
    if not dims or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"--shape sizes must be >= 1; received {text!r}")
    return dims


def build_parser(methods: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command's parser; ``methods``: the registered scores offered by ``prune-at-init`` (see :func:`main`)."""
    parser = argparse.ArgumentParser(
        prog="kerasinit", description="Weight initialization for Keras 3: choose, see, test.",
        epilog=f"{', '.join(LIGHT_COMMANDS)} run on Keras's {LIGHT_BACKEND} backend (when JAX is installed) unless "
               "KERAS_BACKEND (or keras.json) names another; compare, lottery and prune-at-init use Keras's configured "
               "backend.")
    parser.add_argument("--verbose", action="store_true",
                        help="show the Keras backend in use and its native libraries' start-up messages (TensorFlow, CUDA)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="every initializer with its distribution and formula")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("describe", help="bounds, expected and sampled statistics for one initializer")
    p.add_argument("name", help="initializer name, e.g. xavier_uniform, kwon_tanh_uniform, he_normal")
    p.add_argument("--fan-in", type=_positive_int, default=None, help="fan-in of the layer (a 2-D kernel)")
    p.add_argument("--fan-out", type=_positive_int, default=None, help="fan-out (default: equal to fan-in)")
    p.add_argument("--shape", type=_shape, default=None,
                   help="full kernel shape instead of fans, e.g. 3,3,16,32 (conv kernels: delta_orthogonal, dirac)")
    p.add_argument("--samples", type=_positive_int, default=1000, help="how many weights to draw (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("plot-bounds", help="plot each initializer's range against fan-in")
    p.add_argument("names", nargs="+", help="initializer names")
    p.add_argument("--fan-in", type=_fan_range, default=list(range(1, 101)), help="1:100 (default), 1:100:5 or 10,20,50")
    p.add_argument("--fan-out", type=_positive_int, default=None, help="fixed fan-out (default: equal to fan-in)")
    p.add_argument("--out", required=True, help="output image file (.png, .pdf, .svg)")

    _add_compare_parser(sub)
    _add_lottery_parser(sub)
    _add_prune_at_init_parser(sub, methods)
    return parser


def _unit_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], received {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], received {text!r}")
    return value


def _seeds(text: str) -> list[int]:
    """``"3"`` (seeds 0, 1, 2) or ``"0,1,2"`` -> a list of distinct ints >= 0."""
    try:
        values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds must look like 3 (seeds 0..2) or 0,1,2; received {text!r}") from None
    if "," not in text and len(values) == 1:
        values = list(range(values[0]))
    if not values or min(values) < 0 or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"--seeds must be N >= 1 or distinct ints >= 0; received {text!r}")
    return values


def _add_experiment_arguments(p: Any, model: str, optimizer: str, lr: float, epochs: int, seeds: str) -> None:
    """Arguments shared by `compare` and `lottery` (model, data, optimizer, seeds, output)."""
    p.add_argument("--model", default=model, help=f"zoo name (lenet_300_100, conv2, conv4, conv6, resnet20, vgg16, mlp) "
                                                  f"or a saved .keras file, re-initialized (default {model})")
    p.add_argument("--depth", type=_positive_int, default=None, help="mlp: hidden layers (default 5)")
    p.add_argument("--width", type=_positive_int, default=None, help="mlp: units per hidden layer (default 100)")
    p.add_argument("--activation", default=None, help="mlp: hidden activation (default relu)")
    p.add_argument("--dataset", default="digits", help="digits (default), moons, circles, spiral, mnist, fashion_mnist, "
                                                        "cifar10, cifar100 (Keras's cache), or a .npz/.csv file")
    p.add_argument("--optimizer", default=optimizer, help=f"sgd (momentum 0.9), adam, adamw, rmsprop (default {optimizer})")
    p.add_argument("--lr", "--learning-rate", dest="lr", type=float, default=lr, help=f"learning rate (default {lr:g})")
    p.add_argument("--epochs", type=_positive_int, default=epochs, help=f"epochs per training (default {epochs})")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="batch size (default 64)")
    p.add_argument("--seeds", type=_seeds, default=_seeds(seeds), help=f"N (seeds 0..N-1) or 0,1,2 (default {seeds})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout (progress goes to stderr)")


def _mlp_options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in (("depth", args.depth), ("width", args.width), ("activation", args.activation))
            if v is not None}


def _add_compare_parser(sub: Any) -> None:
    inits = "zeros,random_normal,glorot_uniform,he_normal,kwon_tanh_uniform"
    p = sub.add_parser("compare", help="train the same model under several initializers and seeds; table and plots")
    p.add_argument("--inits", default=inits, help=f"comma-separated initializer names (default {inits})")
    _add_experiment_arguments(p, "mlp", "sgd", 0.01, 20, "3")
    p.add_argument("--target", type=_unit_float, default=0.9, help="validation accuracy to reach (default 0.9)")
    p.add_argument("--out", default="kerasinit_compare", help="folder for JSON, CSV and plots (default kerasinit_compare/)")
    p.add_argument("--no-plots", action="store_true", help="write JSON and CSV only")


def _open_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), received {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), received {text!r}")
    return value


def _rounds_list(text: str) -> list[int]:
    try:
        values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--instability must list rounds like 0,3; received {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"--instability must list rounds >= 0 like 0,3; received {text!r}")
    return values


def _add_lottery_parser(sub: Any) -> None:
    p = sub.add_parser("lottery", help="iterative magnitude pruning (lottery tickets) with controls; table and plot")
    _add_experiment_arguments(p, "lenet_300_100", "adam", 1.2e-3, 15, "1")
    p.add_argument("--rounds", type=_positive_int, default=6, help="pruning rounds after the dense one (default 6)")
    p.add_argument("--rate", type=_open_rate, default=0.5,
                   help="fraction of the remaining weights pruned per round (default 0.5; output layer at half)")
    p.add_argument("--scope", choices=("layer", "global"), default="layer", help="layer (default) or global pruning")
    p.add_argument("--rewind", default="init", help="init (default), epoch:K or step:K")
    p.add_argument("--controls", default="reinit,random", help="comma-separated: reinit, random (default both; '' none)")
    p.add_argument("--eval-every", type=_positive_int, default=1, help="validate every N epochs (default 1)")
    p.add_argument("--instability", type=_rounds_list, default=None,
                   help="also measure the linear-mode-connectivity instability of the tickets of these rounds (e.g. 0,3)")
    p.add_argument("--out", default="kerasinit_lottery", help="folder for results, masks and θ0 (default kerasinit_lottery/)")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming a run found in --out")


def _sparsity_list(text: str) -> list[float]:
    try:
        values = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sparsities must list numbers in [0, 1) like 0.5,0.9; received {text!r}") from None
    if not values or not all(0.0 <= v < 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"--sparsities must list numbers in [0, 1) like 0.5,0.9; received {text!r}")
    return values


def _names(text: str) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (checked against the registry by the library)."""
    return [m.strip() for m in text.split(",") if m.strip()]


def _add_prune_at_init_parser(sub: Any, methods: Sequence[str] | None) -> None:
    """``methods``: the registered scores (:func:`kerasinit.pruning.scores.default_methods`), or None when
    another command runs (the registry imports Keras, which the other commands' parsing must not)."""
    p = sub.add_parser("prune-at-init", help="prune at initialization (SNIP, GraSP, SynFlow, magnitude, random...), "
                                             "train, compare test accuracy against sparsity")
    _add_experiment_arguments(p, "lenet_300_100", "adam", 1.2e-3, 10, "1")
    listed = "registered scores" if methods is None else f"registered scores: {', '.join(methods)}"
    p.add_argument("--methods", type=_names, default=None, help=f"comma-separated, among the {listed} (default all)")
    p.add_argument("--sparsities", type=_sparsity_list, default=_sparsity_list("0.5,0.8,0.9,0.95,0.98"),
                   help="comma-separated sparsities in [0, 1) (default 0.5,0.8,0.9,0.95,0.98)")
    p.add_argument("--distribution", default="global", help="global (default), uniform or erk")
    p.add_argument("--iterations", type=_positive_int, default=None, help="score-and-prune rounds (default: SynFlow 100, others 1)")
    p.add_argument("--ablation", default="", help="comma-separated controls of Frankle et al. 2021: shuffle, reinit, invert")
    p.add_argument("--with-lottery", action="store_true", help="also run IMP (run_lottery) for its tickets as a reference line")
    p.add_argument("--out", default="kerasinit_prune_at_init", help="folder for results and plot (default kerasinit_prune_at_init/)")
    p.add_argument("--no-plots", action="store_true", help="write JSON and CSV only")


def cmd_prune_at_init(args: argparse.Namespace) -> int:
    from kerasinit.experiments.sparsity import run_prune_at_init

    ablation = [a.strip() for a in args.ablation.split(",") if a.strip()] or None
    results = run_prune_at_init(args.model, args.dataset, args.methods,
                                args.sparsities, args.seeds, distribution=args.distribution, ablation=ablation,
                                iterations=args.iterations, epochs=args.epochs, batch_size=args.batch_size,
                                optimizer=args.optimizer, learning_rate=args.lr, model_options=_mlp_options(args),
                                out=args.out, plots=not args.no_plots, with_lottery=args.with_lottery)
    if args.json:
        print(results.to_json())
        return 0
    print(("mean ± std over seeds\n" if len(args.seeds) > 1 else "") + results.table())
    for r in results.lottery:
        print(f"IMP ticket at sparsity {r['sparsity']:.3f}: test acc {r['test_accuracy_mean']:.4f}")
    print(_loss_line(results.config))
    print(f"wrote {args.out}/ (results.json, runs.csv{'' if args.no_plots else ', accuracy_vs_sparsity.png'})")
    return 0


def _loss_line(config: dict[str, Any]) -> str:
    """``loss: sparse_categorical_crossentropy (from_logits=True), inferred: logits (...)``."""
    source = config.get("loss_source", "given")
    return f"loss: {config['loss']}" + ("" if source == "given" else f", {source}")


def _console() -> Any:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def cmd_list(args: argparse.Namespace) -> int:
    from kerasinit.initializers.registry import CATALOGUE, canonical_alias

    rows = []
    for name, cls in CATALOGUE.items():
        init = cls.example()
        d = init.describe(cls.example_shape)
        rows.append({"name": canonical_alias(cls), "class": name, "distribution": d.distribution,
                     "formula": init.formula_text(), "reference": cls.reference})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    table = Table(title=f"kerasinit initializers ({len(rows)})")
    for col in ("name", "class", "distribution", "formula"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["class"], r["distribution"], r["formula"])
    _console().print(table)
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from kerasinit.initializers.describe import summarize

    if args.shape is not None:
        if args.fan_in is not None or args.fan_out is not None:
            raise ValueError("give either --shape or --fan-in/--fan-out, not both")
        shape = args.shape
    elif args.fan_in is None:
        raise ValueError("give --fan-in N (and optionally --fan-out M) or --shape 3,3,16,32")
    else:
        shape = (args.fan_in, args.fan_out if args.fan_out is not None else args.fan_in)
    summary = summarize(args.name, shape=shape, n=args.samples, seed=args.seed)
    if args.json:
        print(json.dumps({"name": args.name, **summary.to_dict()}, indent=2))
    else:
        print(f"{args.name} -> {summary}")
    return 0


def cmd_plot_bounds(args: argparse.Namespace) -> int:
    from kerasinit.plots.bounds import plot_bounds

    plot_bounds(args.names, fan_in=args.fan_in, fan_out=args.fan_out, out=args.out)
    print(f"wrote {args.out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from kerasinit.experiments.compare import run_compare

    results = run_compare(args.model, args.dataset, args.inits, **_mlp_options(args), epochs=args.epochs,
                          seeds=args.seeds, target=args.target, batch_size=args.batch_size, optimizer=args.optimizer,
                          learning_rate=args.lr, out=args.out, plots=not args.no_plots, progress=not args.quiet)
    if args.json:
        print(results.to_json())
        return 0
    from rich.table import Table

    rows = results.display_rows()
    c = results.config
    arch = f"{c['depth']}x{c['width']} {c['activation']} MLP" if c["model"] == "mlp" else c["model"]
    table = Table(title=f"{results.dataset}; {arch}, {c['epochs']} epochs, seeds {c['seeds']}")
    for col in rows[0]:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row.values())
    _console().print(table)
    print(_loss_line(c))
    print(f"wrote {args.out}/ (results.json, runs.csv, summary.csv, history.csv{'' if args.no_plots else ', plots'})")
    return 0


def cmd_lottery(args: argparse.Namespace) -> int:
    from kerasinit.experiments.lottery import display_row, run_lottery

    controls = [c.strip() for c in args.controls.split(",") if c.strip()]
    widths: list[int] = []
    several = len(args.seeds) > 1

    def on_round(row: dict[str, Any]) -> None:
        cells = display_row(row, controls)
        status = cells.pop("status")
        if not several:
            cells.pop("seed")
        if not widths:
            widths.extend(max(len(h), 8) for h in cells)
            print("  ".join(h.rjust(w) for h, w in zip(cells, widths, strict=True)), flush=True)
        line = "  ".join(v.rjust(w) for v, w in zip(cells.values(), widths, strict=True))
        print(line + ("" if status == "ok" else f"  {status}"), flush=True)

    results = run_lottery(args.model, args.dataset, model_options=_mlp_options(args), optimizer=args.optimizer,
                          learning_rate=args.lr, rounds=args.rounds, rate=args.rate, scope=args.scope,
                          rewind=args.rewind, controls=controls, epochs=args.epochs, batch_size=args.batch_size,
                          eval_every=args.eval_every, seeds=args.seeds, out=args.out, resume=not args.fresh,
                          progress=not args.quiet, on_round=None if args.json else on_round)
    reports = []
    if args.instability:
        from kerasinit.experiments.instability import instability_of_tickets

        reports = instability_of_tickets(results, args.model, args.dataset, args.instability, model_options=_mlp_options(args),
                                         progress=not args.quiet)
    if args.json:
        data = results.to_dict()
        if reports:
            data["instability"] = [r.to_dict() for r in reports]
        print(json.dumps(data, indent=2))
        return 0
    if several:  # one seed: the live rows (resumed ones first) are the table
        print("mean ± std over seeds\n" + results.table())
    resumed = sorted({r["round"] for r in results.rows} - set(results.trained_rounds))
    if resumed:
        print(f"rounds {resumed[0]}-{resumed[-1]} resumed from {args.out}/")
    for report in reports:
        print(report.summary_line())
    print(_loss_line(results.config))
    print(f"wrote {args.out}/ (results.json, rounds.csv, summary.csv, lottery.png, seed_<s>/ masks and θ0)")
    return 0


COMMANDS = {"list": cmd_list, "describe": cmd_describe, "plot-bounds": cmd_plot_bounds, "compare": cmd_compare,
            "lottery": cmd_lottery, "prune-at-init": cmd_prune_at_init}


def _keras_json_backend() -> str | None:
    """The ``backend`` entry of Keras's ``keras.json`` (``$KERAS_HOME`` or ``~/.keras``), if any."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as f:
            backend = json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return backend if isinstance(backend, str) else None


def choose_backend(command: str) -> str | None:
    """Before Keras loads, put ``command`` on :data:`LIGHT_BACKEND` if it is light, nobody chose a backend
    and JAX (which Keras's NumPy backend imports) is installed.

    ``KERAS_BACKEND`` always wins, and so does a ``keras.json`` naming another backend than the
    ``"tensorflow"`` Keras writes there by itself. Returns the backend chosen here, or ``None``.
    """
    if command not in LIGHT_COMMANDS or "keras" in sys.modules or os.environ.get("KERAS_BACKEND"):
        return None
    if _keras_json_backend() not in (None, "tensorflow"):
        return None
    if not _light_backend_installed():  # `pip install kerasinit` alone: Keras's default backend
        return None
    os.environ["KERAS_BACKEND"] = LIGHT_BACKEND
    return LIGHT_BACKEND


def _light_backend_installed() -> bool:
    """Keras's NumPy backend imports JAX (for its FFT and a few other ops): usable only where JAX is installed."""
    import importlib.util

    try:
        return importlib.util.find_spec("jax") is not None
    except (ImportError, ValueError):
        return False


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Meanwhile, send what native code writes to file descriptor 2 to /dev/null; ``sys.stderr`` still shows.

    TensorFlow's absl and CUDA stubs print start-up lines straight to descriptor 2 whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says. Python's ``sys.stderr`` moves to a copy of the original descriptor
    for the duration, so warnings and tracebacks still reach the terminal; both are restored after.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no real descriptor 2 (embedded interpreters)
        yield
        return
    python_stderr = sys.stderr
    encoding = getattr(python_stderr, "encoding", None) or "utf-8"
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    temporary = sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=encoding, errors="backslashreplace")
    try:
        yield
    finally:
        sys.stderr = python_stderr
        _repoint_log_handlers(temporary, python_stderr)
        temporary.close()
        os.dup2(saved, 2)
        os.close(saved)


def _repoint_log_handlers(old: Any, new: Any) -> None:
    """Logging handlers created meanwhile (TensorFlow's, absl's) captured ``old``: hand them ``new``."""
    import logging

    loggers = [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values()
                                      if isinstance(lg, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is old:
                handler.setStream(new)


def load_keras(command: str, verbose: bool = False) -> None:
    """Import Keras for ``command`` (light commands on :data:`LIGHT_BACKEND`, see :func:`choose_backend`).

    Unless ``verbose``, TensorFlow's native start-up lines stay off the terminal: ``TF_CPP_MIN_LOG_LEVEL``
    defaults to 3 in this process and descriptor 2 is silenced during the import only.
    """
    if "keras" in sys.modules:  # called from Python: Keras and its backend are the caller's
        return
    choose_backend(command)
    if verbose:
        import keras

        print(f"kerasinit: Keras {keras.__version__}, backend {keras.config.backend()}", file=sys.stderr)
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_stderr_silenced():
        import keras  # noqa: F401


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand in ``argv`` (the first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def _interrupted_line(command: str | None, exc: KeyboardInterrupt, argv: Sequence[str]) -> str:
    """The one line printed when Ctrl-C stops ``command``: where it stopped, what was kept, how to go on."""
    head = f"kerasinit {command}: interrupted" if command else "kerasinit: interrupted"
    resume = "rerun without --fresh to resume" if "--fresh" in argv else "rerun the same command to resume"
    done, out = getattr(exc, "done", None), getattr(exc, "out", None)
    if done is None:  # outside an experiment's loop (start-up, plots, instability)
        return f"{head}; {resume}" if command == "lottery" else head
    if out is None:
        return f"{head} {done}; nothing saved"
    if getattr(exc, "resumable", False):
        return f"{head} {done}; {resume} ({out}/)"
    return f"{head} {done}; results so far in {out}/ (a rerun starts over)"


def _show_warning(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None, *, command: str, previous: Any) -> None:
    """``ChanceLevelWarning`` as one ``kerasinit <command>: warning: ...`` line; other warnings as Python shows them."""
    if category.__name__ == "ChanceLevelWarning":
        print(f"kerasinit {command}: warning: {message}", file=sys.stderr if file is None else file, flush=True)
    else:
        previous(message, category, filename, lineno, file, line)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _run(argv)
    except KeyboardInterrupt as exc:  # Ctrl-C: one line, no traceback
        print(_interrupted_line(_command_of(argv), exc, argv), file=sys.stderr, flush=True)
        return INTERRUPTED


def _run(argv: list[str]) -> int:
    methods = None
    if _command_of(argv) == "prune-at-init":  # its --methods choices come from the score registry, which needs Keras
        load_keras("prune-at-init", verbose="--verbose" in argv)
        from kerasinit.pruning.scores import default_methods

        methods = default_methods()
    parser = build_parser(methods)
    args = parser.parse_args(argv)
    load_keras(args.command, verbose=args.verbose)
    try:
        if args.command in LIGHT_COMMANDS:
            return COMMANDS[args.command](args)
        from kerasinit.experiments.training import interrupts_remembered

        with interrupts_remembered(), warnings.catch_warnings():
            warnings.showwarning = functools.partial(_show_warning, command=args.command,
                                                     previous=warnings.showwarning)
            return COMMANDS[args.command](args)
    except (ValueError, TypeError) as exc:
        print(f"kerasinit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
