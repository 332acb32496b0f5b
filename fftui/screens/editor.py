"""The parameter editor: every field, validated as typed; nothing reaches the run until it is valid."""
from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Footer, Input, Label, Static

from engine.config import (DATA_SOURCES, DEVICES, DTYPES, FIELD_NAMES, INITS, LOSSES, MODES, OPTIMIZERS,
                           RESET_FIELDS, Config, ConfigError, parse_value)
from engine.runner import FIXED_FIELDS

from ..widgets.parameters import show_value

CHOICES = {"mode": MODES, "loss": LOSSES, "optimizer": OPTIMIZERS, "init": INITS,
           "device": DEVICES, "dtype": DTYPES, "data": DATA_SOURCES}

HINTS = {
    "lr": "> 0 and ≤ 10",
    "theta": "logistic loss only",
    "batch_size": "N per group",
    "width": "n, hidden units",
    "iters": "blank: epochs decide",
    "epochs": "0: until stopped",
}


class EditorScreen(ModalScreen[dict | None]):
    """Dismisses with the applied changes, or None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="editor.cancel"),
        Binding("ctrl+s", "apply", "Apply", id="editor.apply"),
        Binding("enter", "apply", "Apply", show=False, id="editor.enter"),
    ]

    def __init__(self, pending: Config, apply: Callable[[dict[str, Any]], Config], **kwargs) -> None:
        super().__init__(**kwargs)
        self._apply = apply
        self.pending = pending
        self.values: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self._load_values(pending)

    def _load_values(self, pending: Config) -> None:
        self.pending = pending
        self.values = {name: getattr(pending, name) for name in FIELD_NAMES}
        self.errors = {}

    def load(self, pending: Config) -> None:
        """Show ``pending`` again (the screen is reused between openings)."""
        self._load_values(pending)
        for name in FIELD_NAMES:
            field = self.query_one(f"#field-{name}", Input)
            with field.prevent(Input.Changed):
                field.value = self._text(name)
            self._set_note(name, None)
        self.query_one("#editor-error", Static).update("")
        first = self.query_one("#field-lr", Input)
        first.focus()

    def compose(self) -> ComposeResult:
        with Vertical(id="editor-box") as box:
            box.border_title = "Parameters"
            box.border_subtitle = "enter/ctrl+s apply · esc cancel"
            with VerticalScroll(id="editor-fields"):
                for name in FIELD_NAMES:
                    with Horizontal(classes="field", id=f"row-{name}"):
                        yield Label(name, classes="field-name")
                        yield self._input_for(name)
                        yield Label(self._note(name), classes="field-note", id=f"note-{name}")
            yield Static("", id="editor-error")
            with Horizontal(id="editor-buttons"):
                yield Button("Apply", id="editor-apply", variant="primary", compact=True)
                yield Button("Cancel", id="editor-cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#field-lr", Input).focus()

    def _text(self, name: str) -> str:
        value = getattr(self.pending, name)
        return "" if value is None else show_value(value)

    def _input_for(self, name: str) -> Input:
        fixed = name in FIXED_FIELDS
        choices = CHOICES.get(name) or (("on", "off") if name == "standardize" else None)
        suggester = SuggestFromList(choices, case_sensitive=False) if choices else None
        return Input(self._text(name), compact=True, id=f"field-{name}", disabled=fixed,
                     select_on_focus=True, suggester=suggester)

    def _note(self, name: str) -> str:
        if name in FIXED_FIELDS:
            return "fixed for this run"
        note = HINTS.get(name, "")
        if name in CHOICES:
            note = " | ".join(CHOICES[name]) + (" · " + note if note else "")
        elif name == "standardize":
            note = "on | off"
        if name in RESET_FIELDS:
            note = ("resets · " + note) if note else "resets the layer"
        return note

    def _set_note(self, name: str, error: str | None) -> None:
        label = self.query_one(f"#note-{name}", Label)
        row = self.query_one(f"#row-{name}")
        if error:
            label.update(Text(error))
            row.add_class("-invalid")
        else:
            label.update(self._note(name))
            row.remove_class("-invalid")

    def _check(self, name: str, raw: Any) -> None:
        try:
            self.values[name] = parse_value(name, raw)
            self.pending.replace(**{name: raw})
        except ConfigError as exc:
            self.errors[name] = str(exc)
            self._set_note(name, str(exc))
            return
        self.errors.pop(name, None)
        self._set_note(name, None)

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("field-")
        if name in FIELD_NAMES:
            self._check(name, event.value)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_apply()

    @on(Button.Pressed, "#editor-apply")
    def _apply_pressed(self) -> None:
        self.action_apply()

    @on(Button.Pressed, "#editor-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def changes(self) -> dict[str, Any]:
        return {name: value for name, value in self.values.items()
                if name not in FIXED_FIELDS and value != getattr(self.pending, name)}

    def action_apply(self) -> None:
        error = self.query_one("#editor-error", Static)
        if self.errors:
            name, message = next(iter(self.errors.items()))
            error.update(Text(f"not applied: {message}"))
            return
        changes = self.changes()
        if not changes:
            self.dismiss({})
            return
        try:
            self._apply(changes)
        except ConfigError as exc:
            error.update(Text(f"not applied: {exc}"))
            return
        self.dismiss(changes)

    def action_cancel(self) -> None:
        self.dismiss(None)
