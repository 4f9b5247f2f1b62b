"""The subcommands: each turns checked arguments into one library call and prints its result."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from kerasinit.cli.tables import render

#: ``describe``'s kernel when neither --fan-in nor --shape is given
DEFAULT_FAN = 100


def cmd_list(args: argparse.Namespace) -> int:
    from kerasinit.initializers.registry import REGISTERED, canonical_alias

    rows = []
    for name, cls in REGISTERED.items():
        init = cls.example()
        d = init.describe(cls.example_shape)
        rows.append({"name": canonical_alias(cls), "class": name, "distribution": d.distribution,
                     "formula": init.formula_text(), "reference": cls.reference})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    render(f"kerasinit initializers ({len(rows)})",
           [{k: r[k] for k in ("name", "class", "distribution", "formula")} for r in rows])
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from kerasinit.initializers.describe import summarize

    if args.shape is not None:
        shape = args.shape
    else:
        fan_in = args.fan_in if args.fan_in is not None else DEFAULT_FAN
        shape = (fan_in, args.fan_out if args.fan_out is not None else fan_in)
    summary = summarize(args.name, shape=shape, n=args.samples, seed=args.seed)
    if args.json:
        print(json.dumps({"name": args.name, **summary.to_dict()}, indent=2))
        return 0
    print(f"{args.name} -> {summary}")
    if args.shape is None and args.fan_in is None:
        print(f"(a {DEFAULT_FAN}x{DEFAULT_FAN} kernel by default: --fan-in N [--fan-out M] or --shape 3,3,16,32 for others)")
    return 0


def cmd_plot_bounds(args: argparse.Namespace) -> int:
    from kerasinit.plots.bounds import plot_bounds

    plot_bounds(args.names, fan_in=args.fan_in, fan_out=args.fan_out, out=args.out)
    print(f"wrote {args.out}")
    return 0


def _mlp_options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in (("depth", args.depth), ("width", args.width), ("activation", args.activation))
            if v is not None}


def _dataset(args: argparse.Namespace) -> Any:
    """The ``--dataset`` as the library takes it: a CSV is read here with its ``--label`` (and says which column)."""
    if not args.dataset.lower().endswith(".csv"):
        return args.dataset
    from kerasinit.experiments.datasets import load

    ds = load(args.dataset, label=args.label)
    if not args.json:
        print(f"label column: {ds.label_column} ({ds.label_rule})", flush=True)
    return ds


def _optimizer(args: argparse.Namespace) -> str:
    from kerasinit.experiments.catalog import resolve_optimizer

    return resolve_optimizer(args.optimizer)


def _loss_line(config: dict[str, Any]) -> str:
    """``loss: sparse_categorical_crossentropy (from_logits=True), inferred: logits (...)``."""
    source = config.get("loss_source", "given")
    return f"loss: {config['loss']}" + ("" if source == "given" else f", {source}")


def _table(results: Any) -> None:
    render(results.title, results.display_rows(), results.notes)


def _wrote(out: str, results: Any) -> str:
    """``wrote out/ (a, b, c)``, or why nothing was written (a smaller rerun of a larger saved run)."""
    names = sorted({os.path.relpath(p, out).split(os.sep)[0] for p in results.written})
    if not names:
        return f"read {out}/ (it holds a larger run: nothing rewritten)"
    return f"wrote {out}/ ({', '.join(names)})"


def _executor(args: argparse.Namespace) -> Any:
    """``--executor``/``--address``/``--workers`` as the library's ``executor=`` (None: in process)."""
    if args.executor != "ray":
        return None
    from kerasinit.experiments.executor import RayExecutor

    return RayExecutor(address=args.address, workers=args.workers)


def cmd_compare(args: argparse.Namespace) -> int:
    from kerasinit.experiments.compare import run_compare

    results = run_compare(args.model, _dataset(args), args.inits, **_mlp_options(args), epochs=args.epochs,
                          seeds=args.seeds, target=args.target, batch_size=args.batch_size, optimizer=_optimizer(args),
                          learning_rate=args.lr, out=args.out, plots=not args.no_plots, progress=not args.quiet,
                          resume=not args.fresh, executor=_executor(args))
    if args.json:
        print(results.to_json())
        return 0
    _table(results)
    print(_loss_line(results.config))
    print(_wrote(args.out, results))
    return 0


def _round_line(row: dict[str, Any], controls: list[str], several: bool) -> str:
    """One finished round as it lands: ``round 2: 27.9% of the weights; test acc % ticket 49.6, reinit 30.6``."""
    from kerasinit.experiments.lottery import display_row

    cells = display_row(row, controls)
    accs = ", ".join(f"{kind} {cells[f'{kind} acc']}" for kind in ("ticket", *controls) if cells.get(f"{kind} acc", "-") != "-")
    status = "" if cells["status"] == "ok" else f" ({cells['status']})"
    seed = f" seed {cells['seed']}" if several else ""
    return f"round {cells['round']}{seed}: {cells['weights']} of the weights; test acc % {accs}{status}"


def cmd_lottery(args: argparse.Namespace) -> int:
    from kerasinit.experiments.lottery import run_lottery

    def on_round(row: dict[str, Any]) -> None:  # a log of the rounds as they finish; the table comes at the end
        print(_round_line(row, args.controls, len(args.seeds) > 1), flush=True)

    results = run_lottery(args.model, _dataset(args), model_options=_mlp_options(args), optimizer=_optimizer(args),
                          learning_rate=args.lr, rounds=args.rounds, rate=args.rate, scope=args.scope,
                          rewind=args.rewind, controls=args.controls, epochs=args.epochs, batch_size=args.batch_size,
                          eval_every=args.eval_every, seeds=args.seeds, out=args.out, resume=not args.fresh,
                          progress=not args.quiet, tensorboard=args.tensorboard,
                          on_round=None if args.json else on_round, executor=_executor(args))
    reports = []
    if args.instability:
        from kerasinit.experiments.instability import instability_of_tickets

        reports = instability_of_tickets(results, args.model, args.dataset, args.instability,
                                         model_options=_mlp_options(args), progress=not args.quiet,
                                         executor=_executor(args))
    if args.json:
        data = results.to_dict()
        if reports:
            data["instability"] = [r.to_dict() for r in reports]
        print(json.dumps(data, indent=2))
        return 0
    _table(results)
    resumed = sorted({r["round"] for r in results.rows} - set(results.trained_rounds))
    if resumed:
        print(f"rounds {resumed[0]}-{resumed[-1]} resumed from {args.out}/")
    for report in reports:
        print(report.summary_line())
    print(_loss_line(results.config))
    print(_wrote(args.out, results))
    return 0


def cmd_prune_at_init(args: argparse.Namespace) -> int:
    from kerasinit.experiments.sparsity import run_prune_at_init

    results = run_prune_at_init(args.model, _dataset(args), args.methods, args.sparsities, args.seeds,
                                distribution=args.distribution, ablation=args.ablation or None,
                                iterations=args.iterations, epochs=args.epochs, batch_size=args.batch_size,
                                optimizer=_optimizer(args), learning_rate=args.lr, model_options=_mlp_options(args),
                                out=args.out, plots=not args.no_plots, with_lottery=args.with_lottery,
                                resume=not args.fresh, progress=not args.quiet, tensorboard=args.tensorboard,
                                update_every=args.update_every, drop_fraction=args.drop_fraction,
                                drop_schedule=args.drop_schedule, executor=_executor(args))
    if args.json:
        print(results.to_json())
        return 0
    _table(results)
    for r in results.lottery:
        print(f"IMP ticket at sparsity {r['sparsity']:.3f}: test acc {r['test_accuracy_mean']:.4f}")
    print(_loss_line(results.config))
    print(_wrote(args.out, results))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from kerasinit.pruning.export import export
    from kerasinit.pruning.persistence import load_model

    model = load_model(args.model, compile=False)
    report = export(model, args.out, format=args.format, sparse=not args.dense, shrink=args.shrink,
                    tolerance=args.tolerance, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    render(report.title(), report.display_rows(), report.all_notes())
    print(f"wrote {report.path}")
    return 0


COMMANDS = {"export": cmd_export, "list": cmd_list, "describe": cmd_describe, "plot-bounds": cmd_plot_bounds, "compare": cmd_compare,
            "lottery": cmd_lottery, "prune-at-init": cmd_prune_at_init}

__all__ = ["COMMANDS"]
