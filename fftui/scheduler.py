"""When the app may fill a pane and publish a plot: a token bucket of CPU time, one plot per call.

Building a plot with plotext costs milliseconds of the UI thread, and the engine's thread wants the
GIL meanwhile. The app calls `PlotScheduler.step` on every timer tick with the panes on screen;
the scheduler decides whether anything is done now, fills the pane that has waited longest, and
publishes one plot. Every build reports its CPU seconds to `spend`, which takes them from a budget
refilled at `budget` CPU seconds per second, capped at `burst`. No Textual here: panes and plots
are anything with the small interfaces below, and the clock is a parameter, so the policy can be
tested on its own with a fake clock.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from typing import Protocol, TypeVar


class Plot(Protocol):
    """What the scheduler needs of a plot: a figure waiting to be drawn, and a way to draw it."""

    @property
    def pending(self) -> bool:
        """A new figure was given and has not been published yet."""

    @property
    def display(self) -> bool:
        """Shown: a hidden plot is never published."""

    def publish(self) -> None:
        """Draw the waiting figure (the expensive build happens when the plot is next rendered)."""


class Pane(Protocol):
    """What the scheduler needs of a pane: a name, and its plots."""

    @property
    def id(self) -> str | None: ...

    @property
    def plots(self) -> Sequence[Plot]: ...


P = TypeVar("P", bound=Pane)

_NEVER: tuple[Hashable, float] = (object(), float("-inf"))


class PlotScheduler:
    """Spreads plot building over time and caps the CPU it takes.

    Args:
        clock: seconds, monotonic (``time.monotonic`` in the app, a fake one in tests).
        interval: seconds to wait after a full redraw (``step(force=True)``).
        gap: seconds at least between two publications in normal running.
        budget: CPU seconds that building may take per second of the clock (the refill rate).
        burst: CPU seconds that may be spent at once after a quiet spell (the bucket's size).

    A pane is filled again when its key (whatever the app says determines its picture: data version,
    display options, size) differs from the key it was last filled with. After `hurry` (a change of
    view or of display options) the time limits and the budget are ignored until every pane shown
    has been filled since and each of its plots published; still one plot per call.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, interval: float = 0.5,
                 gap: float = 0.2, budget: float = 0.02, burst: float = 0.1) -> None:
        self.clock = clock
        self.interval = interval
        self.gap = gap
        self.budget = budget
        self.burst = burst
        self.tokens = burst            # CPU seconds that may be spent now; negative: in debt
        self._tokens_at = clock()
        self._next = float("-inf")     # no publication before this time (unless hurrying)
        self._hurry_since: float | None = None
        self._drawn: dict[str | None, tuple[Hashable, float]] = {}   # pane id -> (key, filled at)
        self.builds = 0                # plot builds reported to `spend`
        self.cpu_seconds = 0.0         # their CPU time
        self.wall_seconds = 0.0        # their wall time

    def spend(self, cpu: float, wall: float = 0.0) -> None:
        """Account for one plot build that took ``cpu`` CPU seconds and ``wall`` seconds."""
        self.builds += 1
        self.cpu_seconds += cpu
        self.wall_seconds += wall
        self.tokens -= cpu

    def hurry(self) -> None:
        """Bring every pane shown up to date soon, whatever the budget."""
        self._hurry_since = self.clock()

    @property
    def hurrying(self) -> bool:
        return self._hurry_since is not None

    def stale(self, pane: Pane, key: Hashable) -> bool:
        """Whether ``pane`` was never filled or last filled with another key."""
        return self._drawn.get(pane.id, _NEVER)[0] != key

    def filled_at(self, pane: Pane) -> float:
        """When ``pane`` was last filled (minus infinity: never)."""
        return self._drawn.get(pane.id, _NEVER)[1]

    def step(self, panes: Sequence[P], key: Callable[[P], Hashable],
             fill: Callable[[P], None], force: bool = False) -> None:
        """Do what is due for the panes on screen: publish one waiting plot, or fill the stale pane
        that waited longest and publish its first plot. With ``force``, fill every stale pane and
        publish every waiting plot now, whatever the budget, then wait ``interval``."""
        now = self.clock()
        waiting = _waiting(panes)
        if self._hurry_since is not None:
            since = self._hurry_since
            behind = [p for p in panes if self.filled_at(p) < since and self.stale(p, key(p))]
            if not behind and not waiting:
                self._hurry_since = None
        self.tokens = min(self.burst, self.tokens + (now - self._tokens_at) * self.budget)
        self._tokens_at = now
        if not force and self._hurry_since is None and (now < self._next or self.tokens < 0):
            return
        if force:
            for pane in [p for p in panes if self.stale(p, key(p))]:
                self._fill(pane, key, fill, now)
            for plot in _waiting(panes):
                plot.publish()
            self._next = now + self.interval
            return
        if not waiting:
            stale = [p for p in panes if self.stale(p, key(p))]
            if not stale:
                return
            self._fill(min(stale, key=self.filled_at), key, fill, now)
            waiting = _waiting(panes)
        if waiting:
            waiting[0].publish()
            self._next = now + self.gap

    def _fill(self, pane: P, key: Callable[[P], Hashable], fill: Callable[[P], None], now: float) -> None:
        fill(pane)
        self._drawn[pane.id] = (key(pane), now)


def _waiting(panes: Sequence[Pane]) -> list[Plot]:
    return [plot for pane in panes for plot in pane.plots if plot.pending and plot.display]
