"""The batches-per-second meter on its own, with readings the test makes up."""
from __future__ import annotations

import pytest

from fftui.rate import RateMeter


def test_rate_over_the_last_seconds_follows_a_change_of_speed():
    meter = RateMeter(window=3.0, min_span=0.5)
    for step in range(101):               # every 0.1 s for 10 s: 20 it/s for 5 s, then 50 it/s
        t = step / 10
        iteration = round(20 * t) if t <= 5 else 100 + round(50 * (t - 5))
        meter.update(t, iteration)
    # kept: the readings of the last 3 s (7.0 to 10.0), all at 50 it/s
    assert meter.rate() == pytest.approx(50.0)


def test_a_window_spanning_the_change_averages_it():
    meter = RateMeter(window=3.0)
    for step in range(61):                # to t = 6: the kept readings span 3.0 .. 6.0
        t = step / 10
        meter.update(t, round(20 * t) if t <= 5 else 100 + round(50 * (t - 5)))
    # 3.0 -> 60, 6.0 -> 150: 90 iterations in 3 s
    assert meter.rate() == pytest.approx(30.0)


def test_no_rate_before_half_a_second_or_without_progress():
    meter = RateMeter(min_span=0.5)
    assert meter.rate() is None
    meter.update(0.0, 0)
    assert meter.rate() is None
    meter.update(0.4, 10)
    assert meter.rate() is None           # 0.4 s: too short
    meter.update(0.6, 12)
    assert meter.rate() == pytest.approx(12 / 0.6)
    stuck = RateMeter()
    stuck.update(0.0, 5)
    stuck.update(2.0, 5)
    assert stuck.rate() is None


def test_a_pause_or_a_reset_starts_afresh():
    meter = RateMeter()
    meter.update(0.0, 0)
    meter.update(1.0, 100)
    assert meter.rate() == pytest.approx(100.0)
    meter.update(1.5, 100, running=False)  # paused: the pause does not count as slow training
    assert meter.rate() is None
    meter.update(2.5, 110)
    assert meter.rate() == pytest.approx(10.0)    # from the pause's reading on
    meter.update(3.0, 3)                   # reset: iteration 3 of a fresh layer
    assert meter.rate() is None
    meter.update(4.0, 13)
    assert meter.rate() == pytest.approx(10.0)
