"""The one live progress bar style of the ``kerasinit`` commands (rich, on stderr, with ETA)."""

from __future__ import annotations

from typing import Any


def open_bar(progress: bool | Any, *, desc_width: int, bar_width: int, info_width: int, count: str) -> Any:
    """An entered ``rich.progress.Progress`` (description, bar, count, info, ETA), or None when off.

    ``progress``: False (no bar), True (a stderr console) or a ``rich.console.Console`` to draw on.
    ``count``: ``"m_of_n"`` (e.g. ``12/20``) or ``"percent"``. Close it with ``bar.__exit__``.
    """
    if not progress:
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    counter = MofNCompleteColumn() if count == "m_of_n" else TaskProgressColumn()
    console = None if isinstance(progress, bool) else progress
    bar = Progress(TextColumn(f"{{task.description:<{desc_width}}}"), BarColumn(bar_width=bar_width), counter,
                   TextColumn(f"{{task.fields[info]:<{info_width}}}"), TextColumn("ETA"), TimeRemainingColumn(),
                   console=console or Console(stderr=True))
    bar.__enter__()
    return bar
