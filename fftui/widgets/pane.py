"""The frame every plotting pane shares: a bordered box with a summary line and its plots."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from ..history import History, downsample, smooth
from .plot import Figure, FigurePlot, Series, points_for

GROUP_LABEL = {"pos": "positives", "neg": "negatives", "all": "all samples"}


SMOOTH_WINDOWS = (2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
"""The smoothing windows that + and - step through (iterations)."""


@dataclass(frozen=True)
class View:
    """Display options shared by the panes.

    smoothing: a trailing moving average over ``window`` iterations. difference: the Sparsening
    pane shows actual minus predicted instead of the three fractions. full_range: Hoyer sparsity
    on its whole range 0..1 instead of around the data. log: goodness and loss on log10 axes.
    of_batch: the Sparsening pane's fractions count all N samples of each batch (the report's
    figures and CSVs) instead of the valid samples (active before and after the step)."""

    smoothing: bool = False
    window: int = 25
    difference: bool = False
    full_range: bool = False
    log: bool = False
    of_batch: bool = False


def next_window(window: int, up: bool) -> int:
    """The next of `SMOOTH_WINDOWS` above (or below) ``window``; the last (first) one at the end."""
    if up:
        return next((w for w in SMOOTH_WINDOWS if w > window), SMOOTH_WINDOWS[-1])
    return next((w for w in reversed(SMOOTH_WINDOWS) if w < window), SMOOTH_WINDOWS[0])


class Pane(Vertical):
    """A plotting pane of the main screen (registered in `fftui.panes`). Subclasses implement
    ``fill``; the app's plot scheduler decides when to call it."""

    PLOTS = 2

    def __init__(self, *, on_build: Callable[[float, float], None] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._on_build = on_build
        self._summary_lines = -1
        self._plots: list[FigurePlot] = []
        # held, not queried: a new run may clear the pane before its children are mounted, or after
        self._summary = Static("", classes="summary")

    def compose(self) -> ComposeResult:
        yield self._summary
        with Horizontal(classes="plots"):
            for i in range(self.PLOTS):
                yield FigurePlot(on_build=self._on_build, id=f"{self.id}-plot{i}")

    def on_mount(self) -> None:
        self._plots = list(self.query(FigurePlot))

    @property
    def plots(self) -> list[FigurePlot]:
        return self._plots

    def fill(self, history: History, view: View) -> None:
        """Give every plot its new figure (`FigurePlot.show`) and set the summary line."""
        raise NotImplementedError

    def set_summary(self, text) -> None:
        summary = self._summary
        lines = str(text).count("\n") + 1 if str(text) else 0
        summary.update(text, layout=lines != self._summary_lines)
        self._summary_lines = lines

    def clear(self, note: str = "waiting for the first batch") -> None:
        """Forget what the pane shows, now, shown or hidden: every plot shows ``note`` at once (no
        plot is built for it) and the summary goes. For a new run, mode or set of groups, so that
        a pane never shows another run's data, whenever it is shown again."""
        for plot in self.plots:
            plot.show(Figure(note=note))
            plot.publish()
        self.set_summary("")

    def waiting(self, history: History) -> bool:
        """With no record yet, put the waiting note in every plot and say so."""
        if len(history):
            return False
        for plot in self.plots:
            plot.show(Figure(note="waiting for the first batch"))
        self.set_summary("")
        return True

    def paired_series(self, history: History, view: View, fields: tuple[str, str],
                      labels: tuple[str, str], colors: dict[str, tuple[str, str]]) -> tuple[np.ndarray, list[Series]]:
        """Two per-group fields over iterations, each group in its own pair of colours, for plot 0."""
        keys = [f"{g}.{f}" for g in history.groups for f in fields]
        x, ys = time_series(history, keys, self.plot_width(0), view)
        series = []
        for j, g in enumerate(history.groups):
            c1, c2 = colors.get(g, colors["all"])
            series.append(Series(x, ys[2 * j], f"{labels[0]} {g}", c1))
            series.append(Series(x, ys[2 * j + 1], f"{labels[1]} {g}", c2))
        return x, series

    def plot_width(self, index: int = 0) -> int:
        plots = self.plots
        width = plots[index].size.width if index < len(plots) else 0
        if width <= 0:
            width = max(20, (self.size.width or 80) // max(1, self.PLOTS))
        return width


def time_series(history: History, keys: list[str], width: int, view: View) -> tuple[np.ndarray, list[np.ndarray]]:
    """Iterations and the series under ``keys``, smoothed when asked, downsampled to the plot."""
    x = history.iterations()
    ys = [history.series(k) for k in keys]
    if view.smoothing:
        ys = [smooth(y, view.window) for y in ys]
    return downsample(x, ys, points_for(width))


def x_range(x: np.ndarray) -> tuple[float, float] | None:
    """The first and last x of a time series, None with fewer than two points."""
    if x.size < 2:
        return None
    return float(x[0]), float(x[-1])


def iteration_axis(history: History, x: np.ndarray) -> tuple[float, float] | None:
    """The x range of a time series ending at the newest iteration (downsampling averages the
    last bucket, so its x may fall short of it)."""
    if x.size == 0:
        return None
    last = history.last_iteration
    end = float(last) if last is not None else float(x[-1])
    return (float(x[0]), end) if end > x[0] else None


def event_marks(history: History, xlim: tuple[float, float] | None) -> tuple[tuple[float, str], ...]:
    """The run's event marks (History.marks: parameter changes, a resume) inside the plotted
    iterations, for Figure.vlines; none without a range."""
    marks = getattr(history, "marks", ())
    if xlim is None or not marks:
        return ()
    return tuple((float(at), label) for at, label in marks if xlim[0] <= at <= xlim[1])


def with_hint(line: str, hint: str, width: int) -> str:
    """``line`` followed by a key hint when both fit in ``width`` cells: a hint never takes a line."""
    joined = f"{line} │ {hint}"
    return joined if len(joined) <= width else line


def smoothing_note(view: View) -> str:
    """How the curves are averaged, for a pane's header."""
    return f"smoothed over {view.window} iterations" if view.smoothing else "raw, per batch"
