"""Every parameter of the run: the value in use, and a queued value that applies at the next batch."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from engine.config import FIELD_NAMES, RESET_FIELDS, Config
from engine.runner import FIXED_FIELDS


def show_value(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parameters_table(config: Config, pending: Config) -> Table:
    table = Table(box=None, show_header=False, padding=(0, 1), expand=True)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("value", ratio=1)
    table.add_column("", no_wrap=True, style="dim")
    for name in FIELD_NAMES:
        now = getattr(config, name)
        queued = getattr(pending, name)
        value = Text(show_value(now))
        if queued != now:
            value.append(" → ", style="bold")
            value.append(show_value(queued), style="bold reverse")
        mark = "fixed" if name in FIXED_FIELDS else ("resets" if name in RESET_FIELDS else "")
        table.add_row(name, value, mark)
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
