"""'Did you mean' for the command's names, choices and flags, in its own wording (see :mod:`kerasinit._suggest`)."""

from __future__ import annotations

from collections.abc import Iterable

from kerasinit._suggest import closest

#: a list longer than this is cut to the closest names (plus where to see them all)
LIST_LIMIT = 8


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """``" did you mean adam?"`` (or ``""`` when nothing is close)."""
    near = closest(word, options, n=1)
    return f"; did you mean {near[0]}?" if near else ""


def unknown(kind: str, word: str, options: Iterable[str], see: str | None = None) -> str:
    """``"'adm' is not an optimizer; did you mean adam? (choose from sgd, adam, adamw, rmsprop)"``.

    Lists longer than :data:`LIST_LIMIT` become the 5 closest and ``see`` (e.g. "see `kerasinit list`").
    """
    options = list(dict.fromkeys(options))
    head = f"{word!r} is not {kind}{did_you_mean(word, options)}"
    if len(options) <= LIST_LIMIT:
        return f"{head} (choose from {', '.join(options)})"
    near = closest(word, options, n=5, cutoff=0.4)
    if near:
        return f"{head} (closest: {', '.join(near)}; {see or 'see --help'})"
    return f"{head} ({see or 'see --help'})"


__all__ = ["LIST_LIMIT", "closest", "did_you_mean", "unknown"]
