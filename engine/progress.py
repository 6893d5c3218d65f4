"""One progress bar over an ensemble's fits (members x folds), with elapsed and remaining time."""

from __future__ import annotations

import contextlib
import sys
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


@contextlib.contextmanager
def fit_progress(total: float, verbose: bool, title: str = "fitting") -> Iterator[_Bar | _Silent]:
    """A bar on stderr when ``verbose`` and stderr is a terminal; otherwise nothing.

    Call ``advance(description)`` once per finished fit, or ``set(completed,
    description)`` for a bar over something else (seconds of a tuning budget).
    """
    console = Console(stderr=True)
    if not verbose or not sys.stderr.isatty():
        yield _Silent()
        return
    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("left"),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        yield _Bar(progress, progress.add_task(title, total=total))
