"""Shared figure plumbing: a non-interactive backend and saving."""

from __future__ import annotations

import os
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend unless the user chose one (no display needed)."""
    import matplotlib

    if "MPLBACKEND" not in os.environ and matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def finish(fig: Any, out: str | os.PathLike[str] | None) -> Any:
    """Save ``fig`` to ``out`` (parent folders created) when given; return it."""
    if out is not None:
        path = os.fspath(out)
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig
