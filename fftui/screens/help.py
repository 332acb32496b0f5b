"""The help screen: every key, and what each pane shows."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from engine.config import PARAMS
from engine.params import reset_sentence


def key_label(key: str) -> str:
    names = {"space": "space", "left_square_bracket": "[", "right_square_bracket": "]",
             "question_mark": "?", "ctrl+s": "ctrl+s", "ctrl+p": "ctrl+p", "f1": "F1", "escape": "esc",
             "plus": "+", "minus": "-", "greater_than_sign": ">", "less_than_sign": "<"}
    return ", ".join(names.get(k.strip(), k.strip()) for k in key.split(","))


class HelpScreen(ModalScreen[None]):
    """Lists the app's keys; any of escape, q, F1 or ? closes it."""

    BINDINGS = [
        Binding("escape,q,f1,question_mark", "close", "Close help", id="help.close"),
    ]

    def __init__(self, bindings: list[tuple[str, str]], panes: list[tuple[str, str]], **kwargs) -> None:
        """``bindings``: (Textual key names, description) rows; ``panes``: (name, what it shows) rows."""
        super().__init__(**kwargs)
        self._keys = bindings
        self._panes = panes

    def compose(self) -> ComposeResult:
        keys = Table(box=None, show_header=False, padding=(0, 1), expand=True)
        keys.add_column("key", style="bold", no_wrap=True)
        keys.add_column("action", ratio=1)
        for key, description in self._keys:
            keys.add_row(key_label(key), description)
        keys.add_row("ctrl+p", "command palette: every action above, by name")
        panes = Table(box=None, show_header=False, padding=(0, 1), expand=True)
        panes.add_column("pane", style="bold", no_wrap=True)
        panes.add_column("shows", ratio=1)
        for name, what in self._panes:
            panes.add_row(name, what)
        with VerticalScroll(id="help-body") as body:
            body.border_title = "fftui help"
            body.border_subtitle = "esc close"
            yield Static(Text("Keys", style="bold underline"))
            yield Static(keys)
            yield Static(Text("\nPanes", style="bold underline"))
            yield Static(panes)
            yield Static(Text(
                f"\n{reset_sentence(PARAMS)} NaN shows as –. An engine error pauses the run: lower lr, "
                "reset or resume.", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
