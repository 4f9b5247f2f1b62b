"""Figure for :func:`kerasinit.instability`: test error along the line between two trained weight sets
(Frankle et al. 2020, Fig. 1 style)."""

from __future__ import annotations

import os
from typing import Any

from kerasinit.plots._common import finish, pyplot


def plot_instability(result: Any, out: str | os.PathLike[str] | None = None) -> Any:
    """Test error against the interpolation coefficient α, the barrier marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(result.alphas, result.errors, "o-", color="C0")
    ax.axhline((result.errors[0] + result.errors[-1]) / 2, color="grey", ls=":", lw=0.8)
    ax.set(xlabel="interpolation α", ylabel="test error",
           title=f"error barrier {result.barrier:.4f} (rewind {result.rewind}, seeds {result.seeds})")
    fig.tight_layout()
    return finish(fig, out)


__all__ = ["plot_instability"]
