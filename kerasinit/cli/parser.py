"""The command's arguments: every flag of every subcommand, parsed and checked before Keras loads.

Decision (issue 22): argparse from the standard library, not Click or Typer. What the command needs
beyond parsing is domain checking (initializer, score, dataset and model names from kerasinit's
registries, numeric ranges, paths), which is our code under any library; what argparse lacks, the
"did you mean" for misspelled flags and subcommands, is the 20 lines of :class:`Parser`. Click
would add a dependency and a second idiom, and Typer starts slower (its import alone costs about
what our whole rejection of a bad argument may take).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn

from kerasinit.cli import names, types
from kerasinit.cli.errors import UsageError
from kerasinit.cli.startup import LIGHT_BACKEND, LIGHT_COMMANDS
from kerasinit.cli.suggest import did_you_mean, unknown
from kerasinit.experiments import catalog

COMMANDS = ("list", "describe", "plot-bounds", "compare", "lottery", "prune-at-init", "export")
#: what `kerasinit export --format` accepts (kerasinit.pruning.export.FORMATS)
EXPORT_FORMATS = ("tflite", "keras", "saved_model")


class Parser(argparse.ArgumentParser):
    """argparse whose errors are a :class:`UsageError` (no usage dump) with "did you mean" for flags."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, f"see `{self.prog} --help`")

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = self._subparser(getattr(parsed, "command", None))
            word = extras[0]
            if word.startswith("-"):
                options = [o for o in command._option_string_actions if o.startswith("--")]
                command.error(f"unrecognized argument {word.split('=')[0]}{did_you_mean(word.split('=')[0], options)}")
            command.error(f"unexpected argument {word!r}")
        return parsed

    def _subparser(self, name: str | None) -> Parser:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and name in action.choices:
                return action.choices[name]  # type: ignore[return-value]
        return self


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kerasinit")
    except PackageNotFoundError:  # a source tree on sys.path, not installed
        return "unknown (not installed)"


def model(text: str) -> str:
    """A zoo model name or a saved ``.keras`` file."""
    if text.lower().endswith((".keras", ".h5")) or "/" in text or "\\" in text:
        return types.existing_file("a saved Keras model", (".keras",))(text)
    return types.choice("a zoo model", catalog.MODELS)(text)  # type: ignore[return-value]


def dataset(text: str) -> str:
    """A built-in dataset name or a data file (:data:`catalog.FILE_SUFFIXES`)."""
    if text.lower().endswith(catalog.FILE_SUFFIXES) or "/" in text or "\\" in text:
        return types.existing_file("a data file", catalog.FILE_SUFFIXES)(text)
    if text not in catalog.DATASETS:
        raise argparse.ArgumentTypeError(unknown("a built-in dataset", text, catalog.DATASETS)
                                         + f"; or give a {'/'.join(catalog.FILE_SUFFIXES)} file")
    return text


def _add_experiment_arguments(p: Any, model_default: str, optimizer: str, lr: float, epochs: int, seeds: str) -> None:
    """Arguments shared by `compare`, `lottery` and `prune-at-init` (model, data, optimizer, seeds, output)."""
    p.add_argument("--model", type=model, default=model_default,
                   help=f"zoo name ({', '.join(catalog.MODELS)}) or a saved .keras file, re-initialized "
                        f"(default {model_default})")
    p.add_argument("--depth", type=types.positive_int, default=None, help="mlp: hidden layers (default 5)")
    p.add_argument("--width", type=types.positive_int, default=None, help="mlp: units per hidden layer (default 100)")
    p.add_argument("--activation", type=types.choice("a Keras activation", names.ACTIVATIONS), default=None,
                   help="mlp: hidden activation (default relu)")
    p.add_argument("--dataset", type=dataset, default="digits",
                   help=f"{', '.join(catalog.DATASETS)} (default digits), or a {'/'.join(catalog.FILE_SUFFIXES)} file")
    p.add_argument("--label", default=None, metavar="COLUMN",
                   help="CSV datasets: the label column (default: one named label, target, y or class, else the last)")
    p.add_argument("--optimizer", type=types.choice("an optimizer", catalog.OPTIMIZERS, also=tuple(catalog.OPTIMIZER_ALIASES)), default=optimizer,
                   help=f"{', '.join(catalog.OPTIMIZERS)} (sgd with momentum 0.9; default {optimizer})")
    p.add_argument("--lr", "--learning-rate", dest="lr", type=types.positive_float, default=lr,
                   help=f"learning rate (default {lr:g})")
    p.add_argument("--epochs", type=types.positive_int, default=epochs, help=f"epochs per training (default {epochs})")
    p.add_argument("--batch-size", type=types.positive_int, default=64, help="batch size (default 64)")
    p.add_argument("--seeds", type=types.seeds, default=types.seeds(seeds), help=f"N (seeds 0..N-1) or 0,1,2 (default {seeds})")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming the run found in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout (progress goes to stderr)")
    p.add_argument("--executor", type=types.choice("an executor", names.EXECUTORS), default="inprocess",
                   help="where the trainings run: inprocess (default, one after the other) or ray (parallel Ray tasks; "
                        "pip install 'kerasinit[ray]')")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="--executor ray: the cluster, auto or ray://head:10001 (default: a local Ray on this machine)")
    p.add_argument("--workers", type=types.positive_int, default=None, metavar="N",
                   help="--executor ray: trainings at once, one CPU each (default: the cluster's CPUs)")


def build_parser() -> Parser:
    """The whole command line (imports no Keras)."""
    parser = Parser(
        prog="kerasinit", description="Weight initialization for Keras 3: choose, see, test.",
        epilog=f"{', '.join(LIGHT_COMMANDS)} run on Keras's {LIGHT_BACKEND} backend (when JAX is installed) unless "
               "KERAS_BACKEND (or keras.json) names another; compare, lottery and prune-at-init use Keras's configured "
               "backend.")
    parser.add_argument("--version", action="version", version=f"kerasinit {_version()}")
    parser.add_argument("--verbose", action="store_true",
                        help="show the Keras backend, native libraries' start-up messages and full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("list", help="every initializer with its distribution and formula")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("describe", help="bounds, expected and sampled statistics for one initializer")
    p.add_argument("name", type=types.initializer, help="initializer name, e.g. xavier_uniform, kwon_tanh_uniform, "
                                                        "he_normal (see `kerasinit list`)")
    p.add_argument("--fan-in", type=types.positive_int, default=None, help="fan-in of a 2-D kernel (default 100)")
    p.add_argument("--fan-out", type=types.positive_int, default=None, help="fan-out (default: equal to fan-in)")
    p.add_argument("--shape", type=types.shape, default=None,
                   help="full kernel shape instead of fans, e.g. 3,3,16,32 (conv kernels: delta_orthogonal, dirac)")
    p.add_argument("--samples", type=types.positive_int, default=1000, help="how many weights to draw (default 1000)")
    p.add_argument("--seed", type=types.nonnegative_int, default=0, help="seed of the draws (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("plot-bounds", help="plot each initializer's range against fan-in")
    p.add_argument("names", nargs="+", type=types.initializer, help="initializer names")
    p.add_argument("--fan-in", type=types.fan_range, default=list(range(1, 101)), help="1:100 (default), 1:100:5 or 10,20,50")
    p.add_argument("--fan-out", type=types.positive_int, default=None, help="fixed fan-out (default: equal to fan-in)")
    p.add_argument("--out", required=True, help="output image file (.png, .pdf, .svg)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")

    inits = "zeros,random_normal,glorot_uniform,he_normal,kwon_tanh_uniform"
    p = sub.add_parser("compare", help="train the same model under several initializers and seeds; table and plots")
    p.add_argument("--inits", type=types.initializers, default=inits.split(","),
                   help=f"comma-separated initializer names (default {inits}; see `kerasinit list`)")
    _add_experiment_arguments(p, "mlp", "sgd", 0.01, 20, "3")
    p.add_argument("--target", type=types.interval(0, 1, False, True), default=0.9,
                   help="validation accuracy to reach (default 0.9)")
    p.add_argument("--out", default="kerasinit_compare", help="folder for JSON, CSV and plots (default kerasinit_compare/)")
    p.add_argument("--no-plots", action="store_true", help="write JSON and CSV only")

    p = sub.add_parser("lottery", help="iterative magnitude pruning (lottery tickets) with controls; table and plot")
    _add_experiment_arguments(p, "lenet_300_100", "adam", 1.2e-3, 15, "1")
    p.add_argument("--rounds", type=types.positive_int, default=6, help="pruning rounds after the dense one (default 6)")
    p.add_argument("--rate", type=types.interval(0, 1, False, False), default=0.5,
                   help="fraction of the remaining weights pruned per round (default 0.5; output layer at half)")
    p.add_argument("--scope", type=types.choice("a scope", names.SCOPES), default="layer",
                   help="layer (default) or global pruning")
    p.add_argument("--rewind", type=types.rewind, default="init", help="init (default), epoch:K or step:K")
    p.add_argument("--controls", type=types.choices("a control", names.CONTROLS, allow_empty=True),
                   default=list(names.CONTROLS), help="comma-separated: reinit, random (default both; '' none)")
    p.add_argument("--eval-every", type=types.positive_int, default=1, help="validate every N epochs (default 1)")
    p.add_argument("--instability", type=types.rounds_list, default=None,
                   help="also measure the linear-mode-connectivity instability of the tickets of these rounds (e.g. 0,3)")
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="write each round's per-layer sparsity and threshold for TensorBoard under DIR")
    p.add_argument("--out", default="kerasinit_lottery", help="folder for results, masks and θ0 (default kerasinit_lottery/)")

    p = sub.add_parser("prune-at-init", help="prune at initialization (SNIP, GraSP, SynFlow, magnitude, random...), "
                                             "train, compare test accuracy against sparsity")
    _add_experiment_arguments(p, "lenet_300_100", "adam", 1.2e-3, 10, "1")
    p.add_argument("--methods", type=types.choices("a pruning score or sparse-training method",
                                                   (*names.SCORES, *names.SPARSE_TRAINING)), default=None,
                   help=f"comma-separated, among the registered scores: {', '.join(names.SCORES)} (default all); "
                        f"sparse training from scratch: {', '.join(names.SPARSE_TRAINING)}")
    p.add_argument("--update-every", type=types.positive_int, default=100,
                   help="rigl/set: steps between mask updates (default 100)")
    p.add_argument("--drop-fraction", type=types.interval(0.0, 1.0, False, True), default=0.3,
                   help="rigl/set: fraction of each layer's connections moved at the first update, in (0, 1] (default 0.3)")
    p.add_argument("--drop-schedule", type=types.choice("a drop schedule", names.DROP_SCHEDULES), default="cosine",
                   help="rigl/set: how the moved fraction decays: cosine (default), constant or linear")
    p.add_argument("--sparsities", type=types.sparsities, default=types.sparsities("0.5,0.8,0.9,0.95,0.98"),
                   help="comma-separated sparsities in [0, 1) (default 0.5,0.8,0.9,0.95,0.98)")
    p.add_argument("--distribution", type=types.choice("a distribution", names.DISTRIBUTIONS), default="global",
                   help="global (default), uniform or erk")
    p.add_argument("--iterations", type=types.positive_int, default=None,
                   help="score-and-prune rounds (default: SynFlow 100, others 1)")
    p.add_argument("--ablation", type=types.choices("an ablation", names.ABLATIONS, allow_empty=True), default=[],
                   help="comma-separated controls of Frankle et al. 2021: shuffle, reinit, invert")
    p.add_argument("--with-lottery", action="store_true", help="also run IMP (run_lottery) for its tickets as a reference line")
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="write each run's per-layer sparsity and threshold for TensorBoard under DIR")
    p.add_argument("--out", default="kerasinit_prune_at_init", help="folder for results and plot (default kerasinit_prune_at_init/)")
    p.add_argument("--no-plots", action="store_true", help="write JSON and CSV only")

    p = sub.add_parser("export", help="strip a pruned .keras model and export it (TFLite with sparse encoding, .keras, "
                                      "SavedModel), checked against Keras; prints sizes and what runs sparse")
    p.add_argument("model", type=types.existing_file("a saved Keras model", (".keras",)), help="a saved .keras model")
    p.add_argument("--format", type=types.choice("an export format", EXPORT_FORMATS), default="tflite",
                   help="tflite (default), keras or saved_model")
    p.add_argument("--out", default=None, help="output file (folder for saved_model); default: next to MODEL "
                                               "(m.tflite, m.stripped.keras, m_saved_model/)")
    p.add_argument("--dense", action="store_true", help="tflite: no sparse tensor encoding (for comparison)")
    p.add_argument("--shrink", action="store_true", help="also remove dead channels (strip(shrink=True))")
    p.add_argument("--tolerance", type=types.interval(0, 1, False, False), default=1e-5,
                   help="outputs must equal Keras's within |a-b| <= tol*(1+|b|) (default 1e-5)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand in ``argv`` (the first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def check_command(argv: Sequence[str]) -> None:
    """A misspelled subcommand: "did you mean" instead of argparse's list (before any parsing)."""
    word = command_of(argv)
    if word is not None and word not in COMMANDS:
        raise UsageError(unknown("a command", word, COMMANDS), "see `kerasinit --help`")


__all__ = ["COMMANDS", "EXPORT_FORMATS", "Parser", "build_parser", "check_command", "command_of"]
