"""The Sparsening and Sparsity panes with other recorded runs drawn beside the one shown: each series
of each other run in a colour of its own, named in the legend by the run's name.

The runs compared are the history's ``others`` (`fftui.recording.RecordedHistory`, set by
`fftui.replay.ReplayApp`); a history without them draws as the plain pane. Each other run is drawn up
to the iteration the main run's series end at (the scrubber's), smoothed and downsampled like it."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..history import History, downsample, smooth
from .pane import View
from .plot import Figure, Series, points_for
from .sparsening import SparseningPane
from .sparsity import SparsityPane

OTHER_COLORS = ("yellow", "red", "cyan", "orange", "white", "gray", "green", "magenta", "blue")
"""Colours for the other runs' series, in order, skipping those the plot already uses."""

# (series key, or (a, b) for a - b; the legend's text before the run's name; the y axis)
Spec = tuple[str | tuple[str, str], str, str]


def other_runs(history: Any) -> Sequence[Any]:
    """The recorded runs to draw beside ``history`` (none for a live history)."""
    return getattr(history, "others", ())


def _values(other: Any, key: str | tuple[str, str], rows: int) -> np.ndarray:
    if isinstance(key, tuple):
        return other.full_series(key[0])[:rows] - other.full_series(key[1])[:rows]
    return other.full_series(key)[:rows]


def other_series(figure: Figure, others: Sequence[Any], specs: Sequence[Spec], until: int | None, width: int,
                 view: View) -> list[Series]:
    """The series of ``specs`` for each other run, up to iteration ``until`` (the whole run when
    None), in colours the figure does not use yet: labels "<text> <run name>"."""
    used = {s.color for s in figure.series}
    palette = [c for c in OTHER_COLORS if c not in used] or list(OTHER_COLORS)
    out: list[Series] = []
    k = 0
    for other in others:
        rows = other.rows if until is None else other.row_of(until) + 1
        if other.rows == 0 or (until is not None and other.iteration_at(0) > until):
            rows = 0
        x = other.full_series("iteration")[:rows]
        ys = [_values(other, key, rows) for key, _, _ in specs]
        if view.smoothing:
            ys = [smooth(y, view.window) for y in ys]
        x, ys = downsample(x, ys, points_for(width))
        for (_, text, side), y in zip(specs, ys, strict=True):
            out.append(Series(x, y, f"{text} {other.label}", palette[k % len(palette)], yside=side))
            k += 1
    return out


def _add(plot: Any, others: Sequence[Any], specs: Sequence[Spec], until: int | None, width: int,
         view: View) -> None:
    figure = plot.figure
    if not figure.series:
        return  # a note ("waiting", "every sample silenced"): nothing to draw beside
    extra = other_series(figure, others, specs, until, width, view)
    plot.show(replace(figure, series=(*figure.series, *extra)))


class CompareSparseningPane(SparseningPane):
    """`SparseningPane` with each other run's sparser, theorem and general fractions (or, with ``d``,
    its sparser minus each prediction) beside the run's own, per group."""

    def fill(self, history: History, view: View) -> None:
        super().fill(history, view)
        others = other_runs(history)
        if not others or not len(history):
            return
        groups = history.groups or ("pos", "neg")
        for i, plot in enumerate(self.plots):
            if i >= len(groups):
                continue
            g = groups[i]
            if view.difference:
                specs: list[Spec] = [((f"{g}.sparser", f"{g}.theorem"), "sparser − theorem", "left"),
                                     ((f"{g}.sparser", f"{g}.general"), "sparser − general", "left")]
            else:
                specs = [(f"{g}.theorem", "theorem", "left"), (f"{g}.general", "general", "left"),
                         (f"{g}.sparser", "sparser", "left")]
            _add(plot, others, specs, history.last_iteration, self.plot_width(i), view)


class CompareSparsityPane(SparsityPane):
    """`SparsityPane` with each other run's Hoyer sparsity and silenced fraction, goodness and loss
    beside the run's own."""

    def fill(self, history: History, view: View) -> None:
        super().fill(history, view)
        others = other_runs(history)
        if not others or not len(history):
            return
        groups = history.groups
        left, right = self.plots
        specs: list[Spec] = [(f"{g}.sparsity", f"S {g}", "left") for g in groups]
        specs += [(f"{g}.silenced", f"silenced {g}", "right") for g in groups]
        _add(left, others, specs, history.last_iteration, self.plot_width(0), view)
        goodness: list[Spec] = [(f"{g}.goodness", f"g {g}", "left") for g in groups]
        _add(right, others, [*goodness, ("loss", "loss", "right")], history.last_iteration, self.plot_width(1), view)
