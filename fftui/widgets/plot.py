"""A plotext plot that rebuilds only when its figure or its size changed, and times each build."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from rich.text import Text
from textual.app import RenderResult
from textual.strip import Strip
from textual_plotext import PlotextPlot


@dataclass(frozen=True)
class Series:
    x: np.ndarray
    y: np.ndarray
    label: str
    color: str
    lines: bool | None = None   # None: lines when they stay cheap to draw, else points
    marker: str = "braille"
    yside: str = "left"


@dataclass(frozen=True)
class Figure:
    """What one plot shows; ``note`` replaces the plot when there is nothing to draw yet."""

    series: tuple[Series, ...] = ()
    ylim: tuple[float, float] | None = None
    ylim_right: tuple[float, float] | None = None
    xlim: tuple[float, float] | None = None
    xlabel: str | None = None
    title: str | None = None
    hlines: tuple[float, ...] = ()
    note: str = ""
    extra: dict = field(default_factory=dict)


def points_for(width: int) -> int:
    """Braille gives two dots per cell across; more points than that cannot be told apart."""
    return max(8, 2 * max(1, width - 10))


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
        fig = self._figure
        base = self.visual_style.rich_style
        if width < 8 or height < 3:
            lines: list[Text] = []
        elif fig.note and not fig.series:
            lines = [Text(fig.note, style="dim", justify="center")]
        else:
            lines = list(Text.from_ansi(self._build(fig, width, height, theme)).split("\n", allow_blank=True))
        console = self.app.console
        strips = []
        for line in lines[:height]:
            if line.justify == "center" and line.cell_len < width:
                line.pad_left((width - line.cell_len) // 2)
            segments = list(line.render(console))
            strips.append(Strip(segments).adjust_cell_length(width, base))
        self.last_build = time.perf_counter() - start
        self.last_cpu = time.thread_time() - start_cpu
        self.builds += 1
        if self._on_build is not None:
            self._on_build(self.last_cpu, self.last_build)
        self._cache_key, self._strips = key, strips
        return strips

    def render(self) -> RenderResult:
        return Text("\n".join(strip.text for strip in self._current_strips()))

    def _build(self, fig: Figure, width: int, height: int, theme: str) -> str:
        plt = self._plot
        plt.clear_figure()
        plt.plotsize(width, height)
        plt._set_size(width, height)
        plt.theme(theme)
        if fig.title:
            plt.title(fig.title)
        if fig.xlabel:
            plt.xlabel(fig.xlabel)
        drawn = 0
        limits = {"left": fig.ylim, "right": fig.ylim_right}
        for s in fig.series:
            x, y = _finite(s.x, s.y)
            if x.size == 0:
                continue
            lines = s.lines
            if lines is None:
                lines = cheap_lines(x, y, fig.xlim, limits.get(s.yside), width, height)
            draw = plt.plot if lines else plt.scatter
            draw(x.tolist(), y.tolist(), marker=s.marker, color=s.color, label=s.label, yside=s.yside)
            drawn += 1
        if drawn == 0:
            plt.clear_figure()
            plt.plotsize(width, height)
            plt._set_size(width, height)
            plt.theme(theme)
            plt.title(fig.note or "no finite values to draw")
            return plt.build()
        for level in fig.hlines:
            plt.hline(level, color="gray")
        if fig.ylim is not None:
            plt.ylim(*fig.ylim)
        if fig.ylim_right is not None:
            plt.ylim(*fig.ylim_right, yside="right")  # type: ignore[arg-type]  # plotext's default is None, the value a side name
        if fig.xlim is not None and fig.xlim[0] < fig.xlim[1]:
            plt.xlim(*fig.xlim)
        return plt.build()


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


def nice_range(values: list[np.ndarray], pad: float = 0.05) -> tuple[float, float] | None:
    """A y range covering the finite values, padded, never of zero height."""
    finite = [v[np.isfinite(v)] for v in values if v.size]
    finite = [v for v in finite if v.size]
    if not finite:
        return None
    lo = min(float(v.min()) for v in finite)
    hi = max(float(v.max()) for v in finite)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    span = hi - lo
    if span <= 0:
        span = abs(hi) or 1.0
        return lo - pad * span * 10, hi + pad * span * 10
    return lo - pad * span, hi + pad * span
