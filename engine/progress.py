"""One progress bar over an ensemble's fits (members x folds), with elapsed and remaining time."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class _Silent:
    def advance(self, description: str = "") -> None:
        """Nothing to show."""

    def set(self, completed: float, description: str = "") -> None:
        """Nothing to show."""


class _Bar:
    def __init__(self, progress: Progress, task: int) -> None:
        self.progress, self.task = progress, task

    def advance(self, description: str = "") -> None:
        self.progress.update(self.task, advance=1, description=description)

    def set(self, completed: float, description: str = "") -> None:
        self.progress.update(self.task, completed=completed, description=description)


class _Lines:
    """A plain line per step, for logs and pipes (a bar there would be one endless line)."""

    def __init__(self, total: float, title: str) -> None:
        self.total, self.title, self.done = total, title, 0.0
        self.start = time.monotonic()

    def advance(self, description: str = "") -> None:
        self.set(self.done + 1, description)

    def set(self, completed: float, description: str = "") -> None:
        self.done = completed
        minutes, seconds = divmod(int(time.monotonic() - self.start), 60)
        print(f"{self.title} {round(completed)}/{round(self.total)}: {description} "
              f"({minutes}:{seconds:02d} so far)", file=sys.stderr, flush=True)


@contextlib.contextmanager
def fit_progress(total: float, verbose: bool, title: str = "fitting"
                 ) -> Iterator[_Bar | _Lines | _Silent]:
    """A bar on stderr when ``verbose``, or a plain line per step when stderr is not a terminal.

    Call ``advance(description)`` once per finished fit, or ``set(completed,
    description)`` for a bar over something else (seconds of a tuning budget).
    """
    console = Console(stderr=True)
    if not verbose:
        yield _Silent()
        return
    if not sys.stderr.isatty():
        yield _Lines(total, title)
        return
    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("left"),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        yield _Bar(progress, progress.add_task(title, total=total))
