"""Every layer of a stack side by side: per layer the fraction that became sparser with its input
held fixed beside the theorem's prediction, the end-to-end outcome, Hoyer sparsity and the silenced
fraction over iterations, and the goodness classifier's test error over epochs.

Ratios are pooled over the groups (positives and negatives together): a ratio's numerator summed
over the groups over its denominator summed, so a layer's line reads as one number per batch."""
from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal

from ..history import History, downsample, fmt, smooth
from .pane import Pane, View, event_marks, iteration_axis
from .plot import Figure, FigurePlot, Series, points_for

LAYER_COLORS = ("green", "cyan", "magenta", "orange", "blue", "red", "yellow", "white")
"""One colour per layer, in order (again from the first after eight layers)."""

ONE_LAYER = "one layer: see the other panes (--widths 1000,1000,1000 trains a stack of three)"


def pooled(history: History, name: str, weight: str, layer: int) -> np.ndarray:
    """A group ratio of one layer pooled over the groups: sum over groups of ratio x weight over
    the sum of the weights (weight: the count the ratio is a fraction of, e.g. "valid"); NaN where
    the weights sum to 0."""
    num = den = None
    for g in history.groups:
        ratio, count = history.series(f"{g}.{name}", layer), history.series(f"{g}.{weight}", layer)
        part = np.where(count > 0, np.nan_to_num(ratio) * count, 0.0)
        num = part if num is None else num + part
        den = count if den is None else den + count
    if num is None or den is None:
        return np.empty(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def layer_ratios(history: History, layer: int) -> dict[str, np.ndarray]:
    """One layer's pooled series: sparser, theorem, general (of the valid samples, input held
    fixed), sparser_end (of the samples valid end to end), sparsity (of the active samples: weight
    count minus silenced), silenced (of all samples)."""
    out = {name: pooled(history, name, "valid", layer) for name in ("sparser", "theorem", "general")}
    out["sparser_end"] = pooled(history, "sparser_end", "valid_end", layer)
    silenced_count = None
    total = None
    active_sum = None
    for g in history.groups:
        count = history.series(f"{g}.count", layer)
        silenced = history.series(f"{g}.silenced", layer) * count
        active = count - silenced
        s = np.where(active > 0, np.nan_to_num(history.series(f"{g}.sparsity", layer)) * active, 0.0)
        silenced_count = silenced if silenced_count is None else silenced_count + silenced
        total = count if total is None else total + count
        active_sum = (active, s) if active_sum is None else (active_sum[0] + active, active_sum[1] + s)
    if total is None or active_sum is None or silenced_count is None:
        return out
    with np.errstate(invalid="ignore", divide="ignore"):
        out["sparsity"] = np.where(active_sum[0] > 0, active_sum[1] / np.where(active_sum[0] > 0, active_sum[0], 1),
                                   np.nan)
        out["silenced"] = np.where(total > 0, silenced_count / np.where(total > 0, total, 1), np.nan)
    return out


def test_digits(evaluation) -> str:
    """The test digits of an evaluation in a few words: "1,000 held-out digits of the sample" or
    "10,000 MNIST test digits"."""
    if "sample" in evaluation.description:
        return f"{evaluation.total:,} held-out digits of the sample"
    return f"{evaluation.total:,} MNIST test digits"


def test_error_text(evaluation) -> str:
    """"test error 4.2 % after epoch 3 (1,000 held-out digits of the sample)"; with a linear readout
    "test error 4.2 % (linear readout 3.1 %) after epoch 3 (...)"."""
    when = f"after epoch {evaluation.epoch}" if evaluation.epoch else "at iteration 0"
    beside = evaluation.readout_text() if hasattr(evaluation, "readout_text") else ""
    return f"test error {100 * evaluation.error:.1f} %{beside} {when} ({test_digits(evaluation)})"


class LayersPane(Pane):
    """Every layer of a stack side by side (engine/stack.py), one colour per layer: the fraction
    sparser with the input held fixed (lines) and the theorem's fraction (dots); the end-to-end
    fraction sparser; Hoyer sparsity (lines) and the silenced fraction (dots); the test error over
    epochs. A line per layer sums up the newest batch, the generalised predictor's fraction too."""

    PLOTS = 4
    TWO_ROWS = 24   # rows inside the pane from which both rows of plots show (else the first row only)

    def compose(self) -> ComposeResult:
        yield self._summary
        for row in range(2):
            with Horizontal(classes="plots", id=f"{self.id}-row{row}"):
                for i in (2 * row, 2 * row + 1):
                    yield FigurePlot(on_build=self._on_build, id=f"{self.id}-plot{i}")

    def on_resize(self) -> None:
        """A short pane keeps its first row of plots (the lines above hold every number)."""
        for row in self.query(f"#{self.id}-row1"):
            row.display = self.size.height >= self.TWO_ROWS

    def fill(self, history: History, view: View) -> None:
        layers = getattr(history, "layers", 1)
        if layers < 2:
            for plot in self.plots:
                plot.show(Figure(note=ONE_LAYER))
            self.set_summary(Text(ONE_LAYER))
            return
        if self.waiting(history):
            return
        fixed, end, state, test = self.plots
        x_all = history.iterations()
        per_layer = [layer_ratios(history, layer) for layer in range(layers)]
        names = ("sparser", "theorem", "sparser_end", "sparsity", "silenced")
        drawn: dict[str, list[Series]] = {"fixed": [], "end": [], "state": []}
        xs = {}
        for layer, ratios in enumerate(per_layer):
            color = LAYER_COLORS[layer % len(LAYER_COLORS)]
            ys = [ratios.get(k, np.full(x_all.size, np.nan)) for k in names]
            if view.smoothing:
                ys = [smooth(y, view.window) for y in ys]
            xs["fixed"], (sparser, theorem) = downsample(x_all, ys[:2], points_for(self.plot_width(0)))
            xs["end"], (sparser_end,) = downsample(x_all, ys[2:3], points_for(self.plot_width(1)))
            xs["state"], (hoyer, silenced) = downsample(x_all, ys[3:], points_for(self.plot_width(2)))
            name = f"L{layer + 1}"
            drawn["fixed"] += [Series(xs["fixed"], sparser, f"{name} sparser", color),
                               Series(xs["fixed"], theorem, f"{name} theorem", color, lines=False)]
            drawn["end"].append(Series(xs["end"], sparser_end, f"{name} end-to-end", color))
            drawn["state"] += [Series(xs["state"], hoyer, f"{name} S", color),
                               Series(xs["state"], silenced, f"{name} silenced", color, lines=False,
                                      yside="right")]
        titles = {"fixed": "sparser, theorem (dots): input fixed", "end": "sparser end to end",
                  "state": "Hoyer S, silenced (dots)"}
        for key, plot in (("fixed", fixed), ("end", end), ("state", state)):
            xlim = iteration_axis(history, xs[key])
            state_plot = key == "state"
            plot.show(Figure(series=tuple(drawn[key]), ylim=(0.0, 1.0), xlim=xlim, iterations=True,
                             vlines=event_marks(history, xlim), xlabel="iteration", title=titles[key],
                             ylabel="Hoyer S" if state_plot else "fraction of valid samples",
                             ylim_right=(0.0, 1.0) if state_plot else None,
                             ylabel_right="silenced" if state_plot else None))
        test.show(test_figure(history))
        width = (self.size.width or 80) - 2
        short = any(len(layer_line(history, k, r)) > width for k, r in enumerate(per_layer))
        summary = Text()
        for layer, ratios in enumerate(per_layer):  # the layer shown in bold
            summary.append(layer_line(history, layer, ratios, short) + "\n",
                           style="bold" if layer == history.shown_layer else "")
        summary.append(SHORT_NOTE if short else LONG_NOTE)
        self.set_summary(summary)


LONG_NOTE = ("the newest batch, positives and negatives pooled; theorem, general: predicted with the layer's "
             "input held fixed")
SHORT_NOTE = "newest batch, pos+neg · thm, gen: predicted, input fixed · e2e: end to end"


def layer_line(history: History, layer: int, ratios: dict[str, np.ndarray], short: bool = False) -> str:
    """One layer's newest batch in a line: its pooled ratios, Hoyer S and silenced fraction (short:
    abbreviated names, for a narrow pane)."""
    def last(name: str) -> float | None:
        y = ratios.get(name)
        return float(y[-1]) if y is not None and y.size else None

    widths = history.config.layer_widths if history.config is not None else ()
    units = f" ({widths[layer]:,})" if layer < len(widths) else ""
    shown = " ◂ shown" if layer == history.shown_layer else ""
    if short:
        def pc(name: str) -> str:
            return fmt(last(name), percent=True).replace(" %", "%")

        return (f"L{layer + 1}{units}: sparser {pc('sparser')} · thm {pc('theorem')} · gen {pc('general')}"
                f" · e2e {pc('sparser_end')} · S {fmt(last('sparsity'), '.2f')} · sil {pc('silenced')}")
    return (f"L{layer + 1}{units}: sparser {fmt(last('sparser'), percent=True)}"
            f" · theorem {fmt(last('theorem'), percent=True)} · general {fmt(last('general'), percent=True)}"
            f" · end-to-end {fmt(last('sparser_end'), percent=True)} · S {fmt(last('sparsity'), '.3f')}"
            f" · silenced {fmt(last('silenced'), percent=True)}{shown}")


def test_figure(history: History) -> Figure:
    """The test error (percent) after each evaluation of the run, over epochs; a note without one."""
    evaluations = list(getattr(history, "evaluations", ()))
    config = history.config
    if not evaluations:
        if config is not None and not config.evaluate:
            return Figure(note="no test error: start with --evaluate")
        return Figure(note="test error: after the first epoch (t: now)")
    x = np.array([e.epoch for e in evaluations], dtype=float)
    errors = np.array([100 * e.error for e in evaluations])
    series = [Series(x, errors, "test error", "red", lines=len(x) > 1)]
    if any(getattr(e, "readout_error", None) is not None for e in evaluations):
        readout = np.array([np.nan if e.readout_error is None else 100 * e.readout_error for e in evaluations])
        series.append(Series(x, readout, "linear readout", "blue", lines=len(x) > 1))
    return Figure(series=tuple(series), ymin=0.0, ymax=100.0,
                  xlabel="epoch", ylabel="test error %", title=f"test error: {test_digits(evaluations[-1])}")
