"""A plotext plot that rebuilds only when its figure or its size changed, and times each build.

Every figure is drawn the same way, whatever its numbers: plotext only ever sees coordinates
scaled to 0..1 and the tick labels come from `fftui.widgets.ticks`, so values of 1e35 draw as
well as values of 0.5 and no label is wider than `ticks.LABEL_WIDTH`. The title and the legend sit
in a header above the plot, never on the data; series that coincide say so in the legend."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from plotext._dict import color_codes
from rich.segment import Segment
from rich.text import Text
from textual.app import RenderResult
from textual.strip import Strip
from textual_plotext import PlotextPlot

from . import ticks as tk


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
    legend. note: a line shown above the legend (or alone, without series)."""

    series: tuple[Series, ...] = ()
    ylim: tuple[float, float] | None = None
    ylim_right: tuple[float, float] | None = None
    xlim: tuple[float, float] | None = None
    xlabel: str | None = None
    ylabel: str | None = None
    ylabel_right: str | None = None
    title: str | None = None
    hlines: tuple[tuple[float, str], ...] = ()
    ymin: float | None = None
    ymin_right: float | None = None
    ymax: float | None = None
    ymax_right: float | None = None
    log: bool = False
    log_right: bool = False
    iterations: bool = False
    note: str = ""
    extra: dict = field(default_factory=dict)


def points_for(width: int) -> int:
    """Braille gives two dots per cell across; more points than that cannot be told apart."""
    return max(8, 2 * max(1, width - 10))


def rich_color(color: str) -> str:
    """The rich colour of a plotext colour name (plotext's names are the 16 ANSI colours: its
    "orange" is ANSI 3)."""
    code = color_codes.get(color)
    return f"color({code})" if code is not None else "default"


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


def coincide(a: Series, b: Series, tolerance: float) -> str:
    """"=" when two series have the same points, "≈" when they differ nowhere by more than
    ``tolerance`` (less than a dot apart on the screen), "" otherwise (or when either is empty)."""
    if a.yside != b.yside or a.x.shape != b.x.shape or not np.array_equal(a.x, b.x):
        return ""
    ya, yb = np.asarray(a.y, dtype=float), np.asarray(b.y, dtype=float)
    fa, fb = np.isfinite(ya), np.isfinite(yb)
    if not fa.any() or not np.array_equal(fa, fb):
        return ""
    diff = np.abs(ya[fa] - yb[fb])
    if not diff.any():
        return "="
    return "≈" if float(diff.max()) <= tolerance else ""


def legend_entries(series: tuple[Series, ...], tolerances: dict[str, float]) -> list[list[tuple[Series, str]]]:
    """The legend as groups of series that coincide, in drawing order: each group is a list of
    (series, relation to the previous one: "", "=" or "≈"). Series without a label are left out."""
    groups: list[list[tuple[Series, str]]] = []
    for s in series:
        if not s.label:
            continue
        for group in groups:
            relation = coincide(group[0][0], s, tolerances.get(s.yside, 0.0))
            if relation:
                group.append((s, relation))
                break
        else:
            groups.append([(s, "")])
    return groups


def legend_items(series: tuple[Series, ...], hlines: tuple[tuple[float, str], ...],
                 tolerances: dict[str, float], short: bool = False) -> list[Text]:
    """The legend's entries: a coloured mark and the label of each series; coinciding series joined
    with = or ≈ behind the colour drawn last (the one on top); "(right)" for series on the right
    axis; then the labelled reference lines. ``short``: labels "NAME = definition" as NAME, and
    "→" for "(right)"."""
    items = []
    for group in legend_entries(series, tolerances):
        top = group[-1][0]
        text = Text("━", style=rich_color(top.color))
        for s, relation in group:
            if relation:
                text.append(f" {relation}")
            label = s.label.split(" = ")[0] if short else s.label
            text.append(f" {label}", style=rich_color(s.color))
        if top.yside == "right":
            text.append(" →" if short else " (right)", style="dim")
        items.append(text)
    for level, label in hlines:
        if label:
            items.append(Text.assemble(("┄ ", rich_color("gray")), (f"{tk.tick_labels([level])[0]}: {label}", "dim")))
    return items


def pack(items: list[Text], width: int, most: int) -> list[Text]:
    """Items side by side, two spaces apart, each in the first line of ``width`` cells with room
    for it; at most ``most`` lines: an item wider than a line is cut with …, as is the last line
    if items are left."""
    lines: list[Text] = []
    for item in items:
        for line in lines:
            if line.cell_len + 2 + item.cell_len <= width:
                line.append("  ")
                line.append_text(item)
                break
        else:
            lines.append(item.copy())
    if len(lines) > most:
        lines = lines[:most]
        lines[-1].append(" …")
    for line in lines:
        line.truncate(width, overflow="ellipsis")
    return lines


def header_lines(fig: Figure, width: int, tolerances: dict[str, float], most: int = 3) -> list[Text]:
    """The title, the note and the legend above the plot, packed into at most ``most`` lines
    (with short labels when the full ones need more)."""
    head = [Text(fig.title, style="bold")] if fig.title else []
    if fig.note and fig.series:
        head.append(Text(fig.note, style="dim"))
    for short in (False, True):
        legend = legend_items(fig.series, fig.hlines, tolerances, short=short)
        together = pack(head + legend, width, 2)
        if len(together) == 1:          # all on one line
            return together
        lines = pack(head, width, most) + pack(legend, width, most)   # the legend on lines of its own
        if len(lines) <= most:
            return lines
    return pack(head, width, most) + pack(legend, width, max(1, most - len(pack(head, width, most))))


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
