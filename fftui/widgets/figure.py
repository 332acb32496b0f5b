"""What a plot shows: its curves (`Series`) and everything else about it (`Figure`), as plain data
that the panes build and `fftui.widgets.plot.FigurePlot` draws."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Series:
    """One curve: x and y (NaN and inf are skipped), its legend label (empty: none; "NAME =
    definition" shortens to NAME where the legend has no room), a plotext colour name, lines or
    points (None: lines when they stay cheap to draw), the marker, and the y axis it reads on
    ("left" or "right")."""

    x: np.ndarray
    y: np.ndarray
    label: str
    color: str
    lines: bool | None = None   # None: lines when they stay cheap to draw, else points
    marker: str = "braille"
    yside: str = "left"


@dataclass(frozen=True)
class Figure:
    """What one plot shows; ``note`` replaces the plot when there is nothing to draw yet.

    ylim / ylim_right: fixed y ranges (None: nice ranges around the data). xlim: the x range.
    xlabel, ylabel, ylabel_right: the axes' titles, with units. ymin / ymin_right, ymax /
    ymax_right: the least and the greatest value the quantity can take (0 for goodness, 1 for
    fractions): an automatic range never reaches past them.
    log / log_right: a log10 axis, when every drawn value on it is positive (else linear, and the
    legend says why). iterations: x is the iteration: ticks at whole iterations ending at the last.
    hlines: horizontal reference lines as (level, label) on the left axis, in grey, labelled in the
    legend. vlines: marks at iterations where something happened to the run (a parameter change,
    a resume) as (x, label), drawn as vertical lines in bright yellow and named in the legend.
    note: a line shown above the legend (or alone, without series). histogram: the series are
    counts per bin, so series that coincide have the same counts, which the legend says in
    words ("X and Y: same counts per bin"), never as "X = Y" (that would read as LHS = RHS)."""

    series: tuple[Series, ...] = ()
    ylim: tuple[float, float] | None = None
    ylim_right: tuple[float, float] | None = None
    xlim: tuple[float, float] | None = None
    xlabel: str | None = None
    ylabel: str | None = None
    ylabel_right: str | None = None
    title: str | None = None
    hlines: tuple[tuple[float, str], ...] = ()
    vlines: tuple[tuple[float, str], ...] = ()
    ymin: float | None = None
    ymin_right: float | None = None
    ymax: float | None = None
    ymax_right: float | None = None
    log: bool = False
    log_right: bool = False
    iterations: bool = False
    note: str = ""
    histogram: bool = False
    extra: dict = field(default_factory=dict)
