"""The one live progress bar of the experiments (rich, on stderr, with ETA), fed by a Keras callback."""

from __future__ import annotations

import math
from typing import Any

import keras


class Progress:
    """One rich bar counting epochs over a whole experiment; a no-op when ``progress`` is false.

    ``progress``: False, True (a stderr console) or a ``rich.console.Console``. ``total`` and
    ``done``: epochs in the experiment and already finished (resumed runs). Use as a context manager;
    ``describe`` names the current training (and clears the note), ``note`` shows its loss or result
    (call it after the training it belongs to, before the next ``describe``), ``callback()`` is the Keras
    callback that advances the bar once per epoch with the loss and validation accuracy.
    """

    def __init__(self, progress: bool | Any, total: int, done: int = 0) -> None:
        self.enabled = bool(progress)
        self._spec = progress
        self.total, self.done = total, done
        self._bar: Any = None
        self._task: Any = None
        self._expected: int | None = None  # epochs of the training now described, and how many ticked
        self._ticked = 0

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            console = None if isinstance(self._spec, bool) else self._spec
            self._bar = RichProgress(TextColumn("{task.description:<26}"), BarColumn(bar_width=16), MofNCompleteColumn(),
                                     TextColumn("{task.fields[info]:<24}"), TextColumn("ETA"), TimeRemainingColumn(),
                                     console=console or Console(stderr=True))
            self._bar.__enter__()
            self._task = self._bar.add_task("", total=self.total, completed=self.done, info="")
        return self

    def describe(self, text: str, note: str = "", epochs: int | None = None) -> None:
        """Name the training now running; its ``note`` (default none) replaces the previous training's, so a
        result shown on the line always belongs to the training the line names. ``epochs``: what this
        training counts for on the bar; one that stops early (diverged) is topped up when the next starts."""
        if self.enabled:
            self._settle()
            self._expected, self._ticked = epochs, 0
            self._bar.update(self._task, description=text, info=note)

    def _settle(self) -> None:
        """Advance over the epochs the last described training did not run (it stopped early)."""
        if self._expected is not None and self._ticked < self._expected:
            self._bar.advance(self._task, self._expected - self._ticked)
        self._expected, self._ticked = None, 0

    def note(self, text: str) -> None:
        if self.enabled:
            self._bar.update(self._task, info=text)

    def advance(self, n: int = 1) -> None:
        if self.enabled:
            self._ticked += n
            self._bar.advance(self._task, n)

    def sweep(self, done: int, running: int, failed: int, waiting: int = 0) -> None:
        """Name the state of a sweep whose tasks run elsewhere (Ray): trainings done, running, failed
        (and waiting); the bar advances by each task's epochs as it finishes (:meth:`advance`)."""
        if self.enabled:
            self._bar.update(self._task, description=f"{done} done, {running} running",
                             info=f"{failed} failed" + (f", {waiting} waiting" if waiting else ""))

    def callback(self) -> keras.callbacks.Callback | None:
        """A callback advancing the bar at each epoch end (no batch hooks: Keras keeps async dispatch)."""
        if not self.enabled:
            return None
        bar = self

        class _Tick(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                logs = logs or {}
                bar.note(f"loss {logs.get('loss', math.nan):.3f} val {logs.get('val_accuracy', math.nan):.3f}")
                bar.advance(1)

        return _Tick()

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            if exc[0] is None:
                self._settle()
            self._bar.__exit__(*exc)


__all__ = ["Progress"]
