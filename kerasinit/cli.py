"""The ``kerasinit`` command (thin: parses, calls the library, prints).

Subcommands: ``list``, ``describe``, ``plot-bounds``.
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
    return parser


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


COMMANDS = {"list": cmd_list, "describe": cmd_describe, "plot-bounds": cmd_plot_bounds}


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
