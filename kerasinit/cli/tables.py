"""The command's one table style (rich), sized for a 100-column terminal when stdout is not one."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

#: the width of tables written to a pipe or a file (a terminal uses its own width)
PIPE_WIDTH = 100


def console() -> Any:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else PIPE_WIDTH, highlight=False)


def render(title: str, rows: Sequence[dict[str, str]], notes: Sequence[str] = ()) -> None:
    """Print ``rows`` (header -> cell text) as one rich table under ``title``, then ``notes`` one per line."""
    from rich import box
    from rich.table import Table

    out = console()
    out.print(title, soft_wrap=True)  # above the table, not its title: a title wraps at the table's width
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for i, col in enumerate(rows[0] if rows else ()):
        table.add_column(col, overflow="fold", justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row.values())
    out.print(table)
    for note in notes:
        out.print(note, soft_wrap=True)


__all__ = ["PIPE_WIDTH", "console", "render"]
