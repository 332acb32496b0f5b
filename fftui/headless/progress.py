"""Progress of a headless run on standard error: a rich progress bar on a terminal, a plain line
every tenth of the run on a pipe or a file (so logs stay readable)."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column

from engine.chunk import MetricsChunk

from . import write_or_silence
from .summary import short_status


def _fixed() -> Column:
    """A column that keeps its width: numbers are never squeezed by the status text."""
    return Column(no_wrap=True)


class RunProgress:
    """Shows `done` of `total` steps (batches, or digits for Figure 1) with a short status text.

    `update` may be called on every step: the terminal bar redraws at most ten times a second
    (rich's refresh), the plain form writes a line only when another tenth is complete."""

    def __init__(self, total: int, stream: IO[str] | None = None, unit: str = "it", start_at: int = 0) -> None:
        self.total = max(1, int(total))
        self.start_at = start_at  # steps done before this bar began (a resumed run's): not in its rate
        self.stream = stream if stream is not None else sys.stderr
        self.unit = unit
        self.start = time.perf_counter()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._tenth = -1
        self._done = -1
        self._bar: Progress | None = None
        self._text = ""
        if self.tty:
            console = Console(file=self.stream, stderr=self.stream is sys.stderr)
            self._bar = Progress(
                BarColumn(bar_width=20, table_column=_fixed()),
                MofNCompleteColumn(table_column=_fixed()),
                TextColumn("{task.fields[rate]}", table_column=_fixed()),
                TextColumn("eta", table_column=_fixed()),
                TimeRemainingColumn(table_column=_fixed()),
                # the run's look gets what width is left, cut with an ellipsis, never the numbers
                TextColumn("{task.fields[status]}", table_column=Column(no_wrap=True, overflow="ellipsis",
                                                                          ratio=1)),
                console=console, transient=False, refresh_per_second=10, expand=True)
            self._task = self._bar.add_task("run", total=self.total, completed=start_at, rate="", status="")
            self._bar.start()

    def rate(self, done: int) -> float:
        """Steps per second since the start."""
        elapsed = time.perf_counter() - self.start
        return (done - self.start_at) / elapsed if elapsed > 0 else 0.0

    def update(self, done: int, text: str = "", force: bool = False) -> None:
        """`done` steps finished; `text` says how the run looks now. `force` writes even when no
        tenth was completed (the last update of a run that stopped early)."""
        rate = self.rate(done)
        self._text = text
        if self._bar is not None:
            self._bar.update(self._task, completed=min(done, self.total), status=text,
                             rate=f"{rate:.1f} {self.unit}/s", refresh=force)
            return
        fraction = min(1.0, done / self.total)
        tenth = int(fraction * 10)
        if tenth != self._tenth or (force and done != self._done):
            self._tenth, self._done = tenth, done
            line = f"{done}/{self.total} ({fraction:4.0%}) {rate:.1f} {self.unit}/s {text}\n"
            write_or_silence(self.stream, line)  # a full disk: the run goes on, its progress unseen

    def finish(self, done: int | None) -> None:
        """Show where the run ended (`done` steps; None: leave the last update) and close."""
        if done is not None:
            self.update(done, self._text, force=True)
        self.close()

    def close(self) -> None:
        """Leave the bar's last state on the terminal."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def chunk_progress(bar: RunProgress, label: str = "") -> Callable[[MetricsChunk], None]:
    """An on_chunk callback for run_headless that moves `bar` to the chunk's last iteration; label
    (the seed of a run of several) goes before the status."""
    tag = f"{label}  " if label else ""
    return lambda chunk: bar.update(chunk.last_iteration, tag + short_status(chunk.record(-1)))
