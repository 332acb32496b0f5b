"""Axis ticks a reader can take in at a glance: nice steps (1, 2, 2.5, 5 times a power of ten),
whole iterations on a time axis ending at the current one, and compact labels of bounded width.

Pure functions of numbers: `fftui.widgets.plot` draws with them, and the tests check them against
values worked out by hand."""
from __future__ import annotations

import math
from collections.abc import Sequence

NICE = (1.0, 2.0, 2.5, 5.0)
"""Mantissas of a nice step: the step is one of these times a power of ten."""
LABEL_WIDTH = 8
"""No tick label is wider than this many characters."""
FIXED_RANGE = (1e-3, 1e4)
"""Magnitudes written in plain decimals; outside it labels use scientific notation (2.5e12)."""


def nice_step(span: float, intervals: int, integer: bool = False) -> float:
    """The smallest nice step that covers ``span`` in at most ``intervals`` steps (span > 0, finite).
    ``integer``: whole numbers only (1, 2, 5, 10, 20, 25, 50, ...). Example: (1.0, 4) -> 0.25."""
    if not (span > 0 and math.isfinite(span)):
        raise ValueError(f"span must be positive and finite, not {span!r}")
    raw = span / max(1, intervals)
    exponent = math.floor(math.log10(raw))
    for k in (exponent - 1, exponent, exponent + 1):
        for m in NICE:
            step = m * 10.0 ** k
            if integer and (k < 0 or (k == 0 and m == 2.5)):
                continue
            if step >= raw * (1 - 1e-9):
                return step
    return 10.0 ** (exponent + 2)  # not reached: 10 ** (exponent + 1) >= raw always


def nice_axis(lo: float, hi: float, intervals: int = 4, floor: float | None = None,
              ceiling: float | None = None) -> tuple[float, float, list[float]]:
    """An axis from a to b covering [lo, hi], with a and b multiples of a nice step, at most
    ``intervals`` steps between them (two at least); returns (a, b, ticks from a to b).

    ``floor``: the lowest value the quantity can take (0 for goodness, fractions): an axis over data
    at or above it never reaches below it; ``ceiling`` likewise the highest (1 for fractions and
    Hoyer sparsity). A single value gets an axis around it. Works for any
    finite lo <= hi, however large (1e300): the step is found on values scaled to about 1.
    Example: (0.01, 0.97, 4) -> (0.0, 1.0, [0.0, 0.25, 0.5, 0.75, 1.0])."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f"need finite lo <= hi, not {lo!r}, {hi!r}")
    if lo == hi:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
        if floor is not None and lo < floor <= hi - pad:
            lo = floor
        if ceiling is not None and hi > ceiling >= lo + pad:
            hi = ceiling
    magnitude = max(abs(lo), abs(hi))
    scale = 10.0 ** math.floor(math.log10(magnitude))
    slo, shi = lo / scale, hi / scale   # about 1 to 10 in magnitude: no overflow below
    intervals = max(2, intervals)       # a range across 0 needs two
    step = nice_step(shi - slo, intervals)
    while True:
        first, last = math.floor(slo / step + 1e-9), math.ceil(shi / step - 1e-9)
        if last - first <= intervals:
            break
        step = nice_step(step * 1.0001, 1)  # the next nice step up
    ticks = [float(f"{i * step * scale:.12g}") for i in range(first, last + 1)]
    if not math.isfinite(ticks[-1]):   # past the largest float: the axis ends at the data
        ticks[-1] = hi
    if not math.isfinite(ticks[0]):
        ticks[0] = lo
    if floor is not None and ticks[0] < floor <= lo:
        ticks = [t for t in ticks if t >= floor]
        if not ticks or ticks[0] > floor:
            ticks.insert(0, floor)
    if ceiling is not None and ticks[-1] > ceiling >= hi:
        ticks = [t for t in ticks if t <= ceiling]
        if not ticks or ticks[-1] < ceiling:
            ticks.append(ceiling)
    return ticks[0], ticks[-1], ticks


def iteration_ticks(first: float, last: int, most: int) -> list[int]:
    """Whole iterations for a time axis from ``first`` to ``last`` (the current iteration): the
    multiples of a nice whole step inside it, then ``last`` itself; a multiple closer to ``last``
    than half a step is left out so that the two labels do not run together; at most about
    ``most`` ticks. Example: (1, 300, 4) -> [100, 200, 300]; (1, 317, 4) -> [100, 200, 317]."""
    last = int(last)
    if last <= first or most < 2:
        return [last]
    step = int(nice_step(last - first, most, integer=True))
    while True:
        start = math.ceil(first / step) * step
        ticks = [*(t for t in range(start, last, step) if last - t >= step / 2), last]
        if len(ticks) <= most:
            return ticks
        step = int(nice_step(step * 1.0001, 1, integer=True))


def _decimals(step: float) -> int:
    """Decimals that write a multiple of ``step`` exactly (0.25 -> 2, 5 -> 0), at most 6."""
    for d in range(7):
        if abs(round(step, d) - step) <= 1e-9 * abs(step):
            return d
    return 6


def format_tick(value: float, decimals: int) -> str:
    """One label in plain decimals without trailing zeros: 0.5, 1, 0.25; '-0' is written '0'."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def scientific(value: float, decimals: int) -> str:
    """``value`` in scientific notation with at most ``decimals`` mantissa decimals, trailing
    zeros and the exponent's plus sign and leading zeros dropped: 2.5e12, -1e35, 3e-5."""
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.{decimals}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def tick_labels(ticks: Sequence[float], step: float | None = None) -> list[str]:
    """Labels for the ticks of one axis, in one style: plain decimals for magnitudes from 1e-3 to
    1e4 (as many decimals as the step needs: 0.25 -> '0.25'), else scientific with mantissa
    decimals enough for the step ('2.5e12', '5e11'); never wider than `LABEL_WIDTH` (fewer
    mantissa digits if need be).
    ``step``: the spacing of the ticks (default: the smallest gap between two)."""
    values = [float(t) for t in ticks]
    if not values:
        return []
    if step is None:
        gaps = [abs(b - a) for a, b in zip(values, values[1:], strict=False) if b != a]
        step = min(gaps) if gaps else (abs(values[0]) or 1.0)
    magnitude = max(abs(v) for v in values)
    if magnitude == 0:
        return ["0"] * len(values)
    low, high = FIXED_RANGE
    if low <= magnitude < high and step >= low / 10:
        labels = [format_tick(v, _decimals(step)) for v in values]
        if max(len(s) for s in labels) <= LABEL_WIDTH:
            return labels
    exponent = math.floor(math.log10(magnitude))
    decimals = min(3, _decimals(step / 10.0 ** exponent))
    while True:
        labels = [scientific(v, decimals) for v in values]
        if max(len(s) for s in labels) <= LABEL_WIDTH or decimals == 0:
            return labels
        decimals -= 1


def labels_read_back(ticks: Sequence[float], labels: Sequence[str]) -> bool:
    """Whether every label reads back as its tick to within half the smallest gap between ticks:
    the labels tell the ticks apart and misplace none."""
    if len(ticks) < 2:
        return True
    gap = min(abs(b - a) for a, b in zip(ticks, ticks[1:], strict=False))
    try:
        return all(abs(float(s) - t) <= gap / 2 * (1 + 1e-9) for t, s in zip(ticks, labels, strict=True))
    except ValueError:
        return False


def power_labels(exponents: Sequence[float]) -> list[str]:
    """Labels of a log10 axis whose ticks are whole exponents: 0.01, 0.1, 1, 10, 100, 1000, 1e4."""
    out = []
    for k in exponents:
        k = int(round(k))
        out.append(format_tick(10.0 ** k, max(0, -k)) if -3 <= k <= 3 else f"1e{k}")
    return out
