"""The sweep's progress bar (rich, on standard error): trials done, running, failed and remaining,
fed by the Tune callback through SweepState."""
from __future__ import annotations

import sys
from typing import Any


class SweepProgress:
    """A context manager around a rich Progress; `update` redraws it from the sweep's counts. Draws
    nothing when not enabled."""

    def __init__(self, state: Any, enabled: bool = True) -> None:
        self.state = state
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> SweepProgress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("trials"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.description}"), TimeElapsedColumn(),
                                  console=Console(file=sys.stderr), transient=False)
        self._progress.start()
        self._task = self._progress.add_task(self.text(), total=len(self.state.trials))
        self.update()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self.update()
            self._progress.stop()

    def text(self) -> str:
        """"done D · running R · failed F · remaining M" (diverged trials count as done, and are named)."""
        c = self.state.counts()
        done = c["finished"] + c["diverged"]
        failed = c["failed"]
        running = c["running"]
        remaining = len(self.state.trials) - done - failed - running
        diverged = f" ({c['diverged']} diverged)" if c["diverged"] else ""
        return f"done {done}{diverged} · running {running} · failed {failed} · remaining {remaining}"

    def update(self) -> None:
        if self._progress is None:
            return
        c = self.state.counts()
        self._progress.update(self._task, completed=c["finished"] + c["diverged"] + c["failed"],
                              description=self.text())
