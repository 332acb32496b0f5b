"""The panes of the main screen, registered once: the app's layout, the tabs, the number keys, the
command palette and the help screen's list of panes all come from `PANES`.

To add a pane: write its widget (a `fftui.widgets.pane.Pane` subclass that fills its plots from the
history, or any widget the app updates itself, as the parameters are), then add a `PaneSpec` here.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.widget import Widget
from textual.widgets import Tab, Tabs

from .keys import Key
from .widgets.assumptions import AssumptionsPane
from .widgets.compare import CompareSparseningPane as SparseningPane  # with recorded runs overlaid, if any
from .widgets.compare import CompareSparsityPane as SparsityPane
from .widgets.layers import LayersPane
from .widgets.lhs_rhs import LhsRhsPane
from .widgets.parameters import ParametersPane


@dataclass(frozen=True)
class PaneSpec:
    """One pane of the main screen.

    Attributes:
        id: the widget's id and the view's name (``"lhs"``).
        key: the key that shows it alone (``"1"``).
        label: its short name, on its tab and in the footer (``"LHS/RHS"``).
        title: its border title, after the key (``"LHS / RHS"``).
        summary: one line for the command palette.
        help: what it shows, for the help screen.
        widget: the widget class; built with ``id`` (and ``on_build`` when it plots).
        plots: whether it draws plots from the history (the app schedules those). The others have
            the CSS class ``side-pane``: in the grid they sit beside the plots where the grid
            still fits next to them (`fftui.app.FFApp.SIDE_WIDTH`); the app updates them itself.
        footer: the footer's text, when it is not ``label``.
        grid: whether the grid shows it (else only alone).
        layers: the least layers of a run that it shows something for: with fewer its tab and
            footer key are left out (its key still shows it, saying why it is empty).
    """

    id: str
    key: str
    label: str
    title: str
    summary: str
    help: str
    widget: Callable[..., Widget]
    plots: bool = True
    footer: str = ""
    grid: bool = True
    layers: int = 1

    @property
    def tab_label(self) -> str:
        return f"{self.key} {self.label}"

    @property
    def border_title(self) -> str:
        return f"{self.key} {self.title}"

    def key_entry(self) -> Key:
        """The key that shows this pane alone: ``action_view(id)``."""
        noun = self.label if self.label[:2].isupper() else self.label[:1].lower() + self.label[1:]
        return Key(self.key, "view", self.footer or self.label, f"Show {noun}", self.summary, args=(self.id,))

    def build(self, on_build: Callable[[float, float], None] | None = None) -> Widget:
        """The pane's widget, titled; ``on_build`` receives each plot build's CPU and wall seconds."""
        if self.plots:
            widget = self.widget(id=self.id, on_build=on_build)
        else:
            widget = self.widget(id=self.id, classes="side-pane")
        widget.border_title = self.border_title
        return widget


PANES: tuple[PaneSpec, ...] = (
    PaneSpec("lhs", "1", "LHS/RHS", "LHS / RHS", "Histograms of the theorem's two sides",
             "histograms of the theorem's two sides per sample over the recent batches (Figure 1A); "
             "Theorem 1 in descent mode, Theorem 2 in ff mode, positives and negatives apart; "
             "silenced samples have no sides and are counted, not drawn", LhsRhsPane),
    PaneSpec("sparsening", "2", "Sparsening", "Sparsening: actual vs predicted",
             "Actual vs predicted sparser ratios",
             "per iteration, the fraction of valid samples whose Hoyer sparsity rose, beside the fraction "
             "the report's theorem (c = ±1) and the generalised predictor (the trained loss and optimiser) "
             "predicted (Figures 2 and 3); d shows actual minus predicted; coinciding curves are named "
             "together, and the header counts the samples where theorem and outcome agree", SparseningPane),
    PaneSpec("sparsity", "3", "Sparsity", "Sparsity, goodness, loss", "Hoyer sparsity, silenced, goodness, loss",
             "mean Hoyer sparsity of the active samples (around the data; z: 0..1), fraction silenced, "
             "mean goodness |h|², loss (y: log scales)",
             SparsityPane),
    PaneSpec("assumptions", "4", "Assumptions", "Assumptions: agreement, sign flips",
             "Agreement, sign flips, remainder",
             "per-sample agreement of each prediction with the outcome, fraction of pre-activations "
             "whose sign flipped in the step, second-order remainder of the change of |h|₂", AssumptionsPane),
    PaneSpec("params", "5", "Parameters", "Parameters", "Every parameter of the run",
             "the values in use; a queued change shows with → and applies at the next batch; "
             "'resets' marks changes that need a fresh layer", ParametersPane, plots=False, footer="Params"),
    PaneSpec("layers", "6", "Layers", "Layers side by side", "Every layer of a stack side by side",
             "a stack (--widths): per layer, one colour each, the fraction sparser with the layer's input held "
             "fixed beside the theorem's, the fraction sparser end to end (the layers below stepped too), "
             "Hoyer sparsity and the silenced fraction, pooled over positives and negatives; the test error "
             "over epochs (--evaluate; t: now); a line per layer with the generalised predictor's fraction",
             LayersPane, grid=False, layers=2),
)
"""The panes in key order."""


def pane_keys(panes: tuple[PaneSpec, ...]) -> list[Key]:
    """The keys that show each pane alone."""
    return [spec.key_entry() for spec in panes]


def pane_tabs(panes: tuple[PaneSpec, ...]) -> Tabs:
    """The tab row of the single-pane view: one tab per pane, id ``tab-<pane id>``."""
    return Tabs(*[Tab(spec.tab_label, id=f"tab-{spec.id}") for spec in panes], id="tabs")


def pane_help(panes: tuple[PaneSpec, ...]) -> list[tuple[str, str]]:
    """(name, what it shows) rows for the help screen."""
    return [(spec.tab_label, spec.help) for spec in panes]
