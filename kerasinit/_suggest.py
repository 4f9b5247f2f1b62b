"""Names nearest a misspelling (difflib ratio, case-insensitive): the one "did you mean" of the package.

Imports nothing heavy: the command line uses it before Keras loads.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, options: Iterable[str], n: int = 5, cutoff: float = 0.6) -> list[str]:
    """Up to ``n`` of ``options`` most similar to ``word``, best first (ties keep the order of ``options``).

    Only those with a similarity ratio >= ``cutoff`` (0: all, ranked), plus options that start with
    ``word`` (a prefix is close whatever its ratio).
    """
    options = list(dict.fromkeys(options))
    key = str(word).lower()
    ratio = {o: difflib.SequenceMatcher(None, key, o.lower()).ratio() for o in options}
    ranked = sorted((o for o in options if ratio[o] >= cutoff), key=lambda o: -ratio[o])
    prefixed = [o for o in options if key and o.lower().startswith(key)]
    return list(dict.fromkeys(ranked + prefixed))[:n]


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """``" Did you mean 'x'?"`` for the nearest option with ratio >= 0.6 (library messages), else ``""``."""
    near = closest(word, options, n=1)
    return f" Did you mean {near[0]!r}?" if near else ""


__all__ = ["closest", "did_you_mean"]
