"""A plotext plot that rebuilds only when its figure or its size changed, and times each build.

Every figure is drawn the same way, whatever its numbers: plotext only ever sees coordinates
scaled to 0..1 and the tick labels come from `fftui.widgets.ticks`, so values of 1e35 draw as
well as values of 0.5 and no label is wider than `ticks.LABEL_WIDTH`. The title and the legend sit
in a header above the plot, never on the data; series that coincide say so in the legend."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rich.segment import Segment
from rich.text import Text
from textual.app import RenderResult
from textual.strip import Strip
from textual_plotext import PlotextPlot

from . import ticks as tk
from .figure import Figure, Series
from .legend import header_lines

__all__ = ["AxisPlan", "Figure", "FigurePlot", "Series", "cheap_lines", "plan_axis", "points_for"]


MARK_COLOR = "orange+"  # the vertical marks of a run's events (Figure.vlines): bright yellow, no pane's series


def points_for(width: int) -> int:
    """Braille gives two dots per cell across; more points than that cannot be told apart."""
    return max(8, 2 * max(1, width - 10))


@dataclass(frozen=True)
class AxisPlan:
    """One y axis as drawn: the range and ticks in the data's units (log10 of them on a log axis)."""

    lo: float
    hi: float
    ticks: list[float]
    labels: list[str]
    log: bool

    def scale(self, y: np.ndarray) -> np.ndarray:
        """Values in 0..1 over the axis (outside it where the data are)."""
        v = np.log10(y) if self.log else y
        span = self.hi - self.lo
        # divide first: hi - lo and v - lo may overflow for values near the float limit
        return v / span - self.lo / span

    def tick_positions(self) -> list[float]:
        """The ticks in 0..1 over the axis, where plotext draws them."""
        span = self.hi - self.lo
        return [t / span - self.lo / span for t in self.ticks]


def plan_axis(values: list[np.ndarray], intervals: int, *, ylim: tuple[float, float] | None = None,
              floor: float | None = None, ceiling: float | None = None, log: bool = False) -> AxisPlan | None:
    """The y axis for the finite values given: nice ticks over a fixed ``ylim`` or over the data,
    never below ``floor`` nor above ``ceiling`` when the data are not; a log10 axis when asked and every value is
    positive. None when there is no finite value."""
    finite = [v[np.isfinite(v)] for v in values if v.size]
    finite = [v for v in finite if v.size]
    if not finite and ylim is None:
        return None
    log = log and bool(finite) and all(bool((v > 0).all()) for v in finite)
    if ylim is not None and not log:
        lo, hi = ylim
    else:
        data = [np.log10(v) for v in finite] if log else finite
        lo = min(float(v.min()) for v in data)
        hi = max(float(v.max()) for v in data)
    if log:
        a, b, ticks = tk.nice_axis(math.floor(lo), math.ceil(hi), intervals)
        if any(t != int(t) for t in ticks):    # whole powers of ten only
            ticks = [t for t in ticks if t == int(t)] or [a, b]
        return AxisPlan(a, b, ticks, tk.power_labels(ticks), True)
    fixed = ylim is not None and ylim[0] < ylim[1]
    # a bound holds for data within rounding of it (float32 gives Hoyer sparsity 1 + 1e-7)
    slack = 1e-5 * max(abs(lo), abs(hi), 1e-300)
    floor = floor if floor is not None and lo >= floor - slack else None
    ceiling = ceiling if ceiling is not None and hi <= ceiling + slack else None
    if floor is not None:
        lo = max(lo, floor)
    if ceiling is not None:
        hi = min(hi, ceiling)
    # fewer ticks when the labels cannot tell them apart; then a wider axis (a narrow range far
    # from zero, such as 3.35e-114 to 3.45e-114, has no short labels that tell its ticks apart)
    tries = [(n, 0) for n in range(max(2, intervals), 1, -1)] + [(2, k) for k in range(1, 40)]
    for n, widen in tries:
        pad = (hi - lo) * (2.0 ** widen - 1) / 2 if widen else 0.0
        low = lo - pad if floor is None else max(floor, lo - pad)
        high = hi + pad if ceiling is None else min(ceiling, hi + pad)
        a, b, ticks = tk.nice_axis(low, high, n, floor=floor, ceiling=ceiling)
        if fixed and not widen:
            a, b = lo, hi
            ticks = [t for t in ticks if lo - 1e-12 * abs(hi - lo) <= t <= hi + 1e-12 * abs(hi - lo)]
        step = ticks[1] - ticks[0] if len(ticks) > 1 else None
        labels = tk.tick_labels(ticks, step)
        if tk.labels_read_back(ticks, labels):
            break
    return AxisPlan(a, b, ticks, labels, False)


class FigurePlot(PlotextPlot):
    """Shows a ``Figure``. Builds with plotext at most once per (figure, size, theme), and reports
    each build's CPU and wall seconds to ``on_build``."""

    DEFAULT_CSS = """
    FigurePlot { width: 1fr; height: 1fr; }
    """

    def __init__(self, *, on_build: Callable[[float, float], None] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._figure = Figure(note="waiting for the first batch")
        self._figure_version = 0
        self._cache_key: tuple | None = None
        self._strips: list[Strip] | None = None
        self._on_build = on_build
        self.builds = 0
        self.last_build = 0.0
        self.last_cpu = 0.0
        self.pending = False

    @property
    def figure(self) -> Figure:
        return self._figure

    def show(self, figure: Figure) -> None:
        """Take a new figure; it is drawn when ``publish`` is called (the app spreads the cost)."""
        self._figure = figure
        self._figure_version += 1
        self.pending = True

    def publish(self) -> None:
        self.pending = False
        self.refresh()

    def render_line(self, y: int) -> Strip:
        strips = self._current_strips()
        if 0 <= y < len(strips):
            return strips[y]
        return Strip.blank(self.size.width, self.visual_style.rich_style)

    def _current_strips(self) -> list[Strip]:
        width, height = self.size.width, self.size.height
        theme = self._get_plotext_theme_name(self.app.theme)
        key = (width, height, self._figure_version, theme)
        if key == self._cache_key and self._strips is not None:
            return self._strips
        start, start_cpu = time.perf_counter(), time.thread_time()
        base = self.visual_style.rich_style
        lines = self.lines(width, height, theme)
        console = self.app.console
        strips = []
        for line in lines[:height]:
            if line.justify == "center" and line.cell_len < width:
                line.pad_left((width - line.cell_len) // 2)
            # every segment gets a style: Textual's filters (NO_COLOR) expect one
            segments = list(Segment.apply_style(line.render(console), base))
            strips.append(Strip(segments).adjust_cell_length(width, base))
        self.last_build = time.perf_counter() - start
        self.last_cpu = time.thread_time() - start_cpu
        self.builds += 1
        if self._on_build is not None:
            self._on_build(self.last_cpu, self.last_build)
        self._cache_key, self._strips = key, strips
        return strips

    def lines(self, width: int, height: int, theme: str = "default") -> list[Text]:
        """The figure as lines of text for a plot of ``width`` x ``height`` cells."""
        fig = self._figure
        if width < 8 or height < 3:
            return []
        if not fig.series:
            return [Text(fig.note, style="dim", justify="center")] if fig.note else []
        return self._build(fig, width, height, theme)

    def render(self) -> RenderResult:
        return Text("\n".join(strip.text for strip in self._current_strips()))

    def _build(self, fig: Figure, width: int, height: int, theme: str) -> list[Text]:
        drawn = [s for s in fig.series if _finite(s.x, s.y)[0].size]
        if not drawn:
            return [Text(fig.title or "", style="bold"),
                    Text(fig.note or "no finite values to draw", style="dim", justify="center")]
        header_guess = 2 if width < 60 else 1
        rows = max(1, height - header_guess - 2 - (1 if height >= 10 else 0))  # frame and x ticks
        intervals = int(np.clip(rows // 3, 1, 5))
        sides = {}
        for side, ylim, floor, ceiling, log in (
                ("left", fig.ylim, fig.ymin, fig.ymax, fig.log),
                ("right", fig.ylim_right, fig.ymin_right, fig.ymax_right, fig.log_right)):
            values = [np.asarray(s.y, dtype=float) for s in drawn if s.yside == side]
            if values:
                if side == "left":
                    values += [np.array([level]) for level, _ in fig.hlines if fig.ylim is None]
                axis = plan_axis(values, intervals, ylim=ylim, floor=floor, ceiling=ceiling, log=log)
                if axis is not None:
                    sides[side] = axis
        tolerances = {side: 0.0 if a.log else (a.hi - a.lo) / (8 * rows) for side, a in sides.items()}
        header = header_lines(fig, width - 1, tolerances, most=2 if height < 10 else (3 if height < 20 else 4))
        for side, log in (("left", fig.log), ("right", fig.log_right)):
            if log and side in sides and not sides[side].log:
                header.append(Text(f"{side} axis linear: values ≤ 0", style="dim"))
        plot_height = height - len(header)
        if plot_height < 5:  # the frame, the x ticks and two rows of data at least
            return [*header[:max(0, min(len(header), height - 1))],
                    Text("too small to draw: show this pane alone or enlarge the terminal", style="dim")][:height]

        xs = np.concatenate([_finite(s.x, s.y)[0] for s in drawn])
        x0, x1 = (fig.xlim if fig.xlim is not None and fig.xlim[0] < fig.xlim[1]
                  else (float(xs.min()), float(xs.max())))
        if fig.iterations:
            x_ticks: list[float] = [float(t) for t in tk.iteration_ticks(x0, round(x1), max(2, width // 9))]
            x_labels = tk.tick_labels(x_ticks, 1.0) if x1 >= 1e6 else [str(int(t)) for t in x_ticks]
            if x1 - x0 < 1:
                x0, x1 = x1 - 1, x1
        else:
            if x0 == x1:
                x0, x1 = x0 - 0.5, x1 + 0.5
            x0, x1, x_ticks = tk.nice_axis(x0, x1, max(2, width // 10))
            x_labels = tk.tick_labels(x_ticks)
        xspan = x1 - x0

        def xscale(x: np.ndarray) -> np.ndarray:
            return x / xspan - x0 / xspan

        plt = self._plot
        plt.clear_figure()
        plot_width = width - 1  # a blank last column: the labels of a plot beside never touch these
        plt.plotsize(plot_width, plot_height)
        plt._set_size(plot_width, plot_height)
        plt.theme(theme)
        for s in drawn:
            axis = sides.get(s.yside)
            if axis is None:
                continue
            x, y = _finite(s.x, s.y)
            if axis.log:
                keep = y > 0
                x, y = x[keep], y[keep]
            px, py = xscale(x), axis.scale(y)
            lines = s.lines
            if lines is None:
                lines = cheap_lines(px, py, (0.0, 1.0), (0.0, 1.0), width, plot_height)
            draw = plt.plot if lines else plt.scatter
            draw(px.tolist(), py.tolist(), marker=s.marker, color=s.color, yside=s.yside)
        left = sides.get("left")
        if left is not None:
            for level, _ in fig.hlines:
                if level > 0 or not left.log:
                    plt.hline(float(left.scale(np.array([level]))[0]), color="gray")
        for at, _ in fig.vlines:
            if x0 <= at <= x1:
                plt.vline(float(xscale(np.array([at]))[0]), color=MARK_COLOR)
        for side, axis in sides.items():
            plt.ylim(0.0, 1.0, yside=side)  # type: ignore[arg-type]  # plotext's default is None, the value a side name
            plt.yticks(axis.tick_positions(), axis.labels, yside=side)  # type: ignore[arg-type]
        plt.xlim(0.0, 1.0)
        plt.xticks(xscale(np.array(x_ticks)).tolist(), x_labels)
        if plot_height >= 10:
            if fig.xlabel:
                plt.xlabel(fig.xlabel)
            if fig.ylabel and "left" in sides:
                plt.ylabel(fig.ylabel + (" (log)" if sides["left"].log else ""), yside="left")  # type: ignore[call-arg]
            if fig.ylabel_right and "right" in sides:
                plt.ylabel(fig.ylabel_right + (" (log)" if sides["right"].log else ""), yside="right")  # type: ignore[call-arg]
        body = list(Text.from_ansi(plt.build()).split("\n", allow_blank=True))
        return header + body[:plot_height]


def cheap_lines(x: np.ndarray, y: np.ndarray, xlim, ylim, width: int, height: int) -> bool:
    """Whether joining the points stays within about three braille dots per column: plotext's cost
    grows with the dots a line covers, and a noisy series joined up costs ten times its points."""
    if x.size < 2:
        return False
    x0, x1 = xlim if xlim is not None else (float(x.min()), float(x.max()))
    y0, y1 = ylim if ylim is not None else (float(y.min()), float(y.max()))
    sx = 2 * width / (x1 - x0) if x1 > x0 else 0.0
    sy = 4 * height / (y1 - y0) if y1 > y0 else 0.0
    length = np.maximum(np.abs(np.diff(x)) * sx, np.abs(np.diff(y)) * sy).sum()
    return bool(length <= 6 * width)


def _finite(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]
