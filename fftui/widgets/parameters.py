"""Every parameter of the run: the value in use, and a queued value that applies at the next batch."""
from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from engine.config import PARAMS, Config
from engine.params import Param
from engine.params import format_value as show_value  # the name the app and the editor use


def parameters_table(config: Config, pending: Config, params: Sequence[Param] = PARAMS) -> Table:
    """One row per declared parameter: name, value in use (→ queued value), fixed/resets mark."""
    table = Table(box=None, show_header=False, padding=(0, 1), expand=True)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("value", ratio=1)
    table.add_column("", no_wrap=True, style="dim")
    for p in params:
        now = getattr(config, p.name)
        queued = getattr(pending, p.name)
        value = Text(show_value(now))
        if queued != now:
            value.append(" → ", style="bold")
            value.append(show_value(queued), style="bold reverse")
        table.add_row(p.name, value, p.mark())
    return table


class ParametersPane(VerticalScroll):
    """The run's parameters; ``e`` opens the editor."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "5 Parameters"
        self.border_subtitle = "e edit"
        self._shown: tuple | None = None

    def compose(self):
        yield Static("", id="params-table")
        yield Static("→ queued for the next batch · resets: a fresh layer", classes="legend")

    def show(self, config: Config, pending: Config) -> None:
        key = (config, pending)
        if key == self._shown:
            return
        self._shown = key
        self.query_one("#params-table", Static).update(parameters_table(config, pending))
