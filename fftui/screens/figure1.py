"""Figure 1 of the report in the app: Theorem 1 at initialisation over the whole data set, as the
two overlaid histograms (fig1a) or as the LHS < RHS ratio against the batch size (fig1b)."""
from __future__ import annotations

import math

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from engine.config import Config
from engine.data import Dataset
from engine.figure1 import InitResult, theorem1_at_init
from engine.presets import FIG1B_SIZES, PRESETS

from ..widgets.lhs_rhs import histograms
from ..widgets.plot import Figure, FigurePlot, Series


def fig1a_figure(result: InitResult, bins: int = 60) -> Figure:
    hist = histograms(result.lhs, result.rhs, bins)
    if hist is None:
        return Figure(note="every sample is silenced: no sides to draw")
    centres, cl, cr, outside = hist
    note = f"; {outside} values beyond the 1st-99th percentile not drawn" if outside else ""
    return Figure(series=(Series(centres, cl, "LHS=|h|1/|h|2", "cyan", lines=True),
                          Series(centres, cr, "RHS=P/Q", "orange", lines=True)),
                  xlabel="value" + note, title=f"N = {result.batch_size}: samples per bin", ymin=0.0,
                  histogram=True)


def fig1b_figure(results: list[InitResult]) -> Figure:
    x = np.array([math.log2(r.batch_size) for r in results])
    y = np.array([r.ratio for r in results])
    return Figure(series=(Series(x, y, "ratio with LHS < RHS", "cyan", lines=True),),
                  xlabel="log2 N  (N = " + ", ".join(str(r.batch_size) for r in results) + ")",
                  title="share of all samples with LHS < RHS", ymin=0.0, ymax=1.0)


def describe(results: list[InitResult], dataset: Dataset) -> str:
    parts = [f"N = {r.batch_size}: {r.satisfied:,} of {r.samples:,} ({100 * r.ratio:.2f} %) with LHS < RHS"
             + (f", {r.predicted_sparser:,} predicted sparser (product form)" if r.predicted_sparser != r.satisfied
                else "")
             + (f", {r.silenced} silenced" if r.silenced else "") for r in results]
    width = results[0].width if results else 0
    return f"{dataset.description}; n = {width} at initialisation. " + "; ".join(parts)


class Figure1Screen(ModalScreen[None]):
    """Computes in a worker thread (the training thread goes on) and shows the figure when done."""

    BINDINGS = [Binding("escape,q", "close", "Close", id="figure1.close")]
    DEFAULT_CSS = """
    Figure1Screen { align: center middle; }
    Figure1Screen > Vertical { width: 95%; height: 90%; border: round $accent; background: $surface; }
    Figure1Screen #fig1-title { text-style: bold; padding: 0 1; }
    Figure1Screen #fig1-summary { padding: 0 1; color: $text-muted; }
    """

    def __init__(self, preset: str, dataset: Dataset, config: Config | None = None) -> None:
        super().__init__()
        if preset not in ("fig1a", "fig1b"):
            raise ValueError(preset)
        self.preset = preset
        self.dataset = dataset
        self.config = config or PRESETS[preset].config
        self.results: list[InitResult] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(PRESETS[self.preset].heading(self.config), id="fig1-title")
            yield Static(f"computing over {self.dataset.size:,} samples...", id="fig1-summary")
            yield FigurePlot(id="fig1-plot")
            yield Static("The report: " + PRESETS[self.preset].claim + ".  esc closes.", id="fig1-claim")

    def on_mount(self) -> None:
        self.run_worker(self._compute, thread=True, exclusive=True, name="figure1")

    def _compute(self) -> None:
        sizes = FIG1B_SIZES if self.preset == "fig1b" else (self.config.batch_size,)
        results = [theorem1_at_init(self.dataset, self.config, n) for n in sizes]
        self.app.call_from_thread(self._show, results)

    def _show(self, results: list[InitResult]) -> None:
        self.results = results
        figure = fig1a_figure(results[0]) if self.preset == "fig1a" else fig1b_figure(results)
        plot = self.query_one(FigurePlot)
        plot.show(figure)
        plot.publish()
        self.query_one("#fig1-summary", Static).update(describe(results, self.dataset))

    def action_close(self) -> None:
        self.dismiss(None)
