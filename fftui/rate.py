"""Batches per second over the last few seconds of a run, for the status line."""
from __future__ import annotations

from collections import deque


class RateMeter:
    """Iterations per second from (time, iteration) readings taken while the run goes on.

    Args:
        window: seconds of readings kept (the oldest beyond it are dropped, two always stay).
        min_span: seconds the kept readings must span before a rate is given.

    A reading taken while the run is not running, or one whose iteration went back (a reset),
    starts the meter afresh: a pause does not count as slow training.
    """

    def __init__(self, window: float = 3.0, min_span: float = 0.5) -> None:
        self.window = window
        self.min_span = min_span
        self._readings: deque[tuple[float, int]] = deque()

    def update(self, now: float, iteration: int, running: bool = True) -> None:
        """Add a reading: ``now`` in seconds (any monotonic clock), the run's iteration count."""
        readings = self._readings
        if readings and (iteration < readings[-1][1] or not running):
            readings.clear()
        readings.append((now, iteration))
        while len(readings) > 2 and now - readings[0][0] > self.window:
            readings.popleft()

    def rate(self) -> float | None:
        """Iterations per second over the kept readings; None while they span less than
        ``min_span`` seconds or show no progress."""
        readings = self._readings
        if len(readings) < 2:
            return None
        (t0, i0), (t1, i1) = readings[0], readings[-1]
        if t1 - t0 < self.min_span or i1 <= i0:
            return None
        return (i1 - i0) / (t1 - t0)
