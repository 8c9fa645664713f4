"""A progress bar on stderr while many documents are read, for people watching a terminal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class TerminalProgress:
    """Counts documents to read and read; shows a bar once there are at least ``min_total``.

    Nothing is shown for short runs, and the bar is removed when the run ends, so the terminal
    keeps only the report.
    """

    def __init__(self, min_total: int) -> None:
        self._min_total = min_total
        self._total = 0
        self._done = 0
        self._bar: Any = None
        self._task: Any = None

    def expect(self, count: int) -> None:
        self._total += count
        if self._bar is None and self._total >= self._min_total:
            self._start()
        elif self._bar is not None:
            self._bar.update(self._task, total=self._total)

    def advance(self, count: int) -> None:
        self._done += count
        if self._bar is not None:
            self._bar.update(self._task, completed=self._done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _start(self) -> None:
        # rich is imported only when a bar is shown: most runs never need it.
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._bar = Progress(
            "Reading documents",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._bar.add_task("read", total=self._total, completed=self._done)
        self._bar.start()


@contextmanager
def terminal_progress(show: bool, min_total: int) -> Iterator[TerminalProgress | None]:
    """A :class:`TerminalProgress` when ``show`` (stderr is a terminal), else ``None``."""
    if not show:
        yield None
        return
    progress = TerminalProgress(min_total)
    try:
        yield progress
    finally:
        progress.close()
