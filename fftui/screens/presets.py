"""Pick one of the report's experiments to run in the app."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from engine.presets import PRESETS


class PresetScreen(ModalScreen[str | None]):
    """Returns the chosen preset's name, or None."""

    BINDINGS = [Binding("escape,q,p", "cancel", "Close", id="presets.close")]
    DEFAULT_CSS = """
    PresetScreen { align: center middle; }
    PresetScreen > Vertical { width: 90; max-width: 95%; height: auto; border: round $accent;
                              background: $surface; padding: 0 1; }
    PresetScreen OptionList { height: auto; max-height: 12; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("The report's experiments, with its parameters (enter runs, esc closes):")
            yield OptionList(*[Option(f"{name}  {p.heading()}", id=name) for name, p in PRESETS.items()])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
