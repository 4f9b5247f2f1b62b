"""Argument types of the command: each parses one flag's text or raises ``ArgumentTypeError`` saying what fits.

Nothing here imports Keras: a bad value is refused before any backend loads.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from kerasinit.cli import names
from kerasinit.cli.suggest import unknown

Parse = Callable[[str], object]
_LIST = "see `kerasinit list`"


def number(convert: Callable[[str], float], fits: Callable[[float], bool], expected: str) -> Parse:
    """A number ``convert(text)`` for which ``fits`` holds, else "expected <expected>, received '...'"."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, received {text!r}") from None
        if not fits(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, received {text!r}")
        return value

    return parse


positive_int = number(int, lambda v: v >= 1, "a positive integer")
nonnegative_int = number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = number(float, lambda v: math.isfinite(v) and v > 0, "a positive number")


def interval(low: float, high: float, closed_low: bool, closed_high: bool) -> Parse:
    """A float in the interval, e.g. ``interval(0, 1, False, True)`` for (0, 1]."""
    text = f"{'[' if closed_low else '('}{low:g}, {high:g}{']' if closed_high else ')'}"
    return number(float, lambda v: (v >= low if closed_low else v > low) and (v <= high if closed_high else v < high),
                  f"a number in {text}")


def choice(kind: str, options: Sequence[str], see: str | None = None, also: Sequence[str] = ()) -> Parse:
    """One of ``options`` or of their other spellings ``also`` (exact), else "not <kind>; did you mean ...?"
    (suggestions are taken from ``options``: the names a user should read)."""

    def parse(text: str) -> str:
        if text in options or text in also:
            return text
        raise argparse.ArgumentTypeError(unknown(kind, text, options, see))

    return parse


def choices(kind: str, options: Sequence[str], allow_empty: bool = False, see: str | None = None,
            also: Sequence[str] = ()) -> Parse:
    """A comma-separated subset of ``options`` (``""`` only when ``allow_empty``), duplicates refused."""

    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        if not values and not allow_empty:
            raise argparse.ArgumentTypeError(f"expected one or more of {', '.join(options[:8])}, comma-separated")
        for v in values:
            if v not in options and v not in also:
                raise argparse.ArgumentTypeError(unknown(kind, v, options, see))
        if len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"a name is given twice in {text!r}")
        return values

    return parse


def initializer(text: str) -> str:
    return choice("an initializer", names.INITIALIZERS, _LIST, also=names.INITIALIZER_ALIASES)(text)  # type: ignore[return-value]


initializers = choices("an initializer", names.INITIALIZERS, see=_LIST, also=names.INITIALIZER_ALIASES)


def fan_range(text: str) -> list[int]:
    """``"1:100"`` (inclusive), ``"1:100:5"`` or ``"10,20,50"`` -> list of positive ints."""
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            step = parts[2] if len(parts) == 3 else 1
            values = list(range(parts[0], parts[1] + 1, step))
        else:
            values = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 1:100, 1:100:5 or 10,20,50; received {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"fan-in values must be >= 1; received {text!r}")
    return values


def _items(text: str, convert: Callable[[str], Any], expected: str, blanks: bool = True,
           typed: str | None = None) -> list[Any]:
    """The comma-separated values of ``text`` (blank items skipped if ``blanks``, else refused), or
    "expected <expected>; received '...'" (``typed``: what the user typed, when ``text`` was rewritten)."""
    try:
        return [convert(p) for p in text.split(",") if p.strip() or not blanks]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}; received {(typed or text)!r}") from None


def shape(text: str) -> tuple[int, ...]:
    dims = tuple(_items(text.replace("x", ","), int, "sizes like 3,3,16,32", blanks=False, typed=text))
    if not dims or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be >= 1; received {text!r}")
    return dims


def seeds(text: str) -> list[int]:
    """``"3"`` (seeds 0, 1, 2) or ``"0,1,2"`` -> a list of distinct ints >= 0."""
    values = _items(text, int, "3 (seeds 0..2) or 0,1,2")
    if "," not in text and len(values) == 1:
        values = list(range(values[0]))
    if not values or min(values) < 0 or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"expected N >= 1 or distinct integers >= 0; received {text!r}")
    return values


def sparsities(text: str) -> list[float]:
    values = _items(text, float, "numbers in [0, 1) like 0.5,0.9")
    if not values or not all(0.0 <= v < 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"expected numbers in [0, 1) like 0.5,0.9; received {text!r}")
    return values


def rounds_list(text: str) -> list[int]:
    values = _items(text, int, "rounds like 0,3")
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected rounds >= 0 like 0,3; received {text!r}")
    return values


def rewind(text: str) -> str:
    """``init``, ``epoch:K`` or ``step:K`` (K >= 0)."""
    if text == "init":
        return text
    kind, _, k = text.partition(":")
    if kind in ("epoch", "step") and k.isdigit():
        return text
    raise argparse.ArgumentTypeError(f"expected init, epoch:K or step:K (K >= 0); received {text!r}"
                                     + ("; did you mean init?" if text.lower().startswith("ini") else ""))


def existing_file(kind: str, suffixes: Sequence[str]) -> Callable[[str], str]:
    """A path to an existing readable file with one of ``suffixes``."""

    def check(text: str) -> str:
        if not text.lower().endswith(tuple(suffixes)):
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind} (a {' or '.join(suffixes)} file)")
        if not os.path.isfile(text):
            raise argparse.ArgumentTypeError(f"no such file: {text!r}")
        if not os.access(text, os.R_OK):
            raise argparse.ArgumentTypeError(f"cannot read {text!r} (permission denied)")
        return text

    return check


__all__ = ["choice", "choices", "existing_file", "fan_range", "initializer", "initializers", "interval",
           "nonnegative_int", "number", "positive_float", "positive_int", "rewind", "rounds_list", "seeds", "shape", "sparsities"]
