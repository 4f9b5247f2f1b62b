"""The ``kerasinit`` command (thin: parses, calls the library, prints).

Subcommands: ``list``, ``describe``, ``plot-bounds``, ``compare``, ``lottery``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kerasinit", description="Weight initialization for Keras 3: choose, see, test.")
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
    return parser


def _unit_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], received {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], received {text!r}")
    return value


def _add_compare_parser(sub: Any) -> None:
    from kerasinit.compare import ACTIVATIONS, DEFAULT_INITS, OPTIMIZERS

    p = sub.add_parser("compare", help="train the same MLP under several initializers and seeds; table and plots")
    p.add_argument("--inits", default=",".join(DEFAULT_INITS),
                   help=f"comma-separated initializer names (default {','.join(DEFAULT_INITS)})")
    p.add_argument("--dataset", default="digits", help="digits (default), moons, circles, spiral, or a .npz/.csv file")
    p.add_argument("--depth", type=_positive_int, default=5, help="hidden layers (default 5)")
    p.add_argument("--width", type=_positive_int, default=100, help="units per hidden layer (default 100)")
    p.add_argument("--activation", choices=ACTIVATIONS, default="relu", help="hidden activation (default relu)")
    p.add_argument("--epochs", type=_positive_int, default=20, help="epochs per run (default 20)")
    p.add_argument("--seeds", type=_positive_int, default=3, help="seeds 0..N-1 per initializer (default 3)")
    p.add_argument("--target", type=_unit_float, default=0.9, help="validation accuracy to reach (default 0.9)")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="batch size (default 64)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd", help="sgd (momentum 0.9, default) or adam")
    p.add_argument("--learning-rate", type=float, default=0.01, help="learning rate (default 0.01)")
    p.add_argument("--out", default="kerasinit_compare", help="folder for JSON, CSV and plots (default kerasinit_compare/)")
    p.add_argument("--no-plots", action="store_true", help="write JSON and CSV only")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout (progress goes to stderr)")


def _open_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), received {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), received {text!r}")
    return value


def _add_lottery_parser(sub: Any) -> None:
    from kerasinit.compare import ACTIVATIONS

    p = sub.add_parser("lottery", help="iterative magnitude pruning (lottery tickets) with controls; table and plot")
    p.add_argument("--dataset", default="digits", help="digits (default), moons, circles, spiral, or a .npz/.csv file")
    p.add_argument("--arch", default="300,100", help="hidden widths (default 300,100: LeNet-300-100)")
    p.add_argument("--activation", choices=ACTIVATIONS, default="relu", help="hidden activation (default relu)")
    p.add_argument("--init", default="glorot_uniform", help="initializer name (default glorot_uniform)")
    p.add_argument("--rounds", type=_positive_int, default=6, help="pruning rounds after the dense one (default 6)")
    p.add_argument("--rate", type=_open_rate, default=0.2,
                   help="fraction of the remaining weights pruned per round (default 0.2; output layer at half)")
    p.add_argument("--scope", choices=("layer", "global"), default="layer", help="layer (default) or global pruning")
    p.add_argument("--rewind", default="init", help="init (default), epoch:K or step:K")
    p.add_argument("--controls", default="reinit,random", help="comma-separated: reinit, random (default both; '' none)")
    p.add_argument("--epochs", type=_positive_int, default=25, help="epochs per training (default 25)")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="batch size (default 64)")
    p.add_argument("--eval-every", type=_positive_int, default=10, help="validation every N steps (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of θ0, data order and controls (default 0)")
    p.add_argument("--out", default="kerasinit_lottery", help="folder for results, masks and θ0 (default kerasinit_lottery/)")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming a run found in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout (progress goes to stderr)")


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
    from kerasinit.describe import summarize
    from kerasinit.initializers.registry import get

    if args.shape is not None:
        if args.fan_in is not None or args.fan_out is not None:
            raise ValueError("give either --shape or --fan-in/--fan-out, not both")
        shape = args.shape
    elif args.fan_in is None:
        raise ValueError("give --fan-in N (and optionally --fan-out M) or --shape 3,3,16,32")
    else:
        shape = (args.fan_in, args.fan_out if args.fan_out is not None else args.fan_in)
    init = get(args.name)
    summary = summarize(init, shape=shape, n=args.samples, seed=args.seed)
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
    from kerasinit.compare import run_compare

    results = run_compare(args.inits, dataset=args.dataset, depth=args.depth, width=args.width,
                          activation=args.activation, epochs=args.epochs, seeds=args.seeds, target=args.target,
                          batch_size=args.batch_size, optimizer=args.optimizer, learning_rate=args.learning_rate,
                          out=args.out, plots=not args.no_plots, progress=not args.quiet)
    if args.json:
        print(results.to_json())
        return 0
    from rich.table import Table

    rows = results.display_rows()
    c = results.config
    table = Table(title=f"{results.dataset}; {c['depth']}x{c['width']} {c['activation']} MLP, {c['epochs']} epochs, "
                        f"seeds {c['seeds']}")
    for col in rows[0]:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row.values())
    _console().print(table)
    print(f"wrote {args.out}/ (results.json, runs.csv, summary.csv, history.csv{'' if args.no_plots else ', plots'})")
    return 0


def cmd_lottery(args: argparse.Namespace) -> int:
    from kerasinit.lottery import display_row, run_lottery

    controls = [c.strip() for c in args.controls.split(",") if c.strip()]
    widths: list[int] = []

    def on_round(row: dict[str, Any]) -> None:
        cells = display_row(row, controls)
        if not widths:
            widths.extend(max(len(h), 8) for h in cells)
            print("  ".join(h.rjust(w) for h, w in zip(cells, widths, strict=True)), flush=True)
        print("  ".join(v.rjust(w) for v, w in zip(cells.values(), widths, strict=True)), flush=True)

    results = run_lottery(args.dataset, arch=args.arch, activation=args.activation, initializer=args.init,
                          rounds=args.rounds, rate=args.rate, scope=args.scope, rewind=args.rewind, controls=controls,
                          epochs=args.epochs, batch_size=args.batch_size, eval_every=args.eval_every, seed=args.seed,
                          out=args.out, resume=not args.fresh, progress=not args.quiet,
                          on_round=None if args.json else on_round)
    if args.json:
        print(results.to_json())
        return 0
    resumed = [r["round"] for r in results.rows if r["round"] not in results.trained_rounds]
    if resumed and not results.trained_rounds:
        print(results.table())
    if resumed:
        print(f"rounds {resumed[0]}-{resumed[-1]} resumed from {args.out}/")
    print(f"wrote {args.out}/ (results.json, rounds.csv, lottery.png, theta0.npz, masks_round_<k>.npz)")
    return 0


COMMANDS = {"list": cmd_list, "describe": cmd_describe, "plot-bounds": cmd_plot_bounds, "compare": cmd_compare,
            "lottery": cmd_lottery}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, TypeError) as exc:
        print(f"kerasinit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
