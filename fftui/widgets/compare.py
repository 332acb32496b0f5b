"""The Sparsening and Sparsity panes with other recorded runs drawn beside the one shown: each series
of each other run in a colour of its own, named in the legend by the run's name.

The runs compared are the history's ``others`` (`fftui.recording.RecordedHistory`, set by
`fftui.replay.ReplayApp`); a history without them draws as the plain pane. Each other run is drawn up
to the iteration the main run's series end at (the scrubber's), smoothed and downsampled like it."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
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


def matching_groups(other: Any, group: str) -> list[str]:
    """The other run's groups to draw beside a group: the same one, or all of its own where it has
    not got it (a descent run's "all" beside an ff run's positives, and the other way round)."""
    return [group] if group in other.groups else list(other.groups)


def other_series(figure: Figure, others: Sequence[Any], specs: Callable[[Any], Sequence[Spec]], until: int | None,
                 width: int, view: View) -> list[Series]:
    """The series specs(other) gives for each other run, up to iteration ``until`` (the whole run
    when None), in colours the figure does not use yet: labels "<text> <run name>"."""
    used = {s.color for s in figure.series}
    palette = [c for c in OTHER_COLORS if c not in used] or list(OTHER_COLORS)
    out: list[Series] = []
    k = 0
    for other in others:
        rows = other.rows if until is None else other.row_of(until) + 1
        if other.rows == 0 or (until is not None and other.iteration_at(0) > until):
            rows = 0
        x = other.full_series("iteration")[:rows]
        chosen = specs(other)
        ys = [_values(other, key, rows) for key, _, _ in chosen]
        if view.smoothing:
            ys = [smooth(y, view.window) for y in ys]
        x, ys = downsample(x, ys, points_for(width))
        for (_, text, side), y in zip(chosen, ys, strict=True):
            if not np.isfinite(y).any():
                continue  # a series the other run does not have (another mode's groups), or none yet
            out.append(Series(x, y, f"{text} {other.label}", palette[k % len(palette)], yside=side))
            k += 1
    return out


def _add(plot: Any, others: Sequence[Any], specs: Callable[[Any], Sequence[Spec]], until: int | None, width: int,
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
            _add(plot, others, partial(_sparsening_specs, groups[i], view.difference, view.of_batch),
                 history.last_iteration,
                 self.plot_width(i), view)


class CompareSparsityPane(SparsityPane):
    """`SparsityPane` with each other run's Hoyer sparsity and silenced fraction, goodness and loss
    beside the run's own."""

    def fill(self, history: History, view: View) -> None:
        super().fill(history, view)
        others = other_runs(history)
        if not others or not len(history):
            return
        left, right = self.plots
        _add(left, others, _sparsity_specs, history.last_iteration, self.plot_width(0), view)
        _add(right, others, _goodness_specs, history.last_iteration, self.plot_width(1), view)


def _sparsening_specs(group: str, difference: bool, of_batch: bool, other: Any) -> list[Spec]:
    """The other run's fractions beside a group's plot (its group's name added where it differs),
    over the denominator shown (View.of_batch)."""
    from .sparsening import ratio_keys

    out: list[Spec] = []
    for g in matching_groups(other, group):
        tail = "" if g == group else f" {g}"
        sparser, theorem, general = ratio_keys(g, of_batch)
        if difference:
            out += [((sparser, theorem), f"sparser − theorem{tail}", "left"),
                    ((sparser, general), f"sparser − general{tail}", "left")]
        else:
            out += [(theorem, f"theorem{tail}", "left"), (general, f"general{tail}", "left"),
                    (sparser, f"sparser{tail}", "left")]
    return out


def _sparsity_specs(other: Any) -> list[Spec]:
    out: list[Spec] = [(f"{g}.sparsity", f"S {g}", "left") for g in other.groups]
    return out + [(f"{g}.silenced", f"silenced {g}", "right") for g in other.groups]


def _goodness_specs(other: Any) -> list[Spec]:
    return [*((f"{g}.goodness", f"g {g}", "left") for g in other.groups), ("loss", "loss", "right")]
