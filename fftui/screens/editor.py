"""The parameter editor: every field, validated as typed; nothing reaches the run until it is valid."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Footer, Input, Label, Static

from engine.config import PARAMS, Config, ConfigError
from engine.params import Param

from ..widgets.parameters import show_value


@dataclass(frozen=True)
class EditorRow:
    """One field of the editor: the text shown for its value, its note, the words it suggests,
    and whether it is fixed for this run (shown, not editable)."""

    name: str
    text: str
    note: str
    suggestions: tuple[str, ...]
    fixed: bool


def editor_rows(pending: Config, params: Sequence[Param] = PARAMS) -> list[EditorRow]:
    """The editor's rows for ``pending``, one per declared parameter, in declaration order."""
    rows = []
    for p in params:
        value = getattr(pending, p.name)
        rows.append(EditorRow(p.name, "" if value is None else show_value(value), p.note(),
                              p.choice_texts(), p.fixed))
    return rows


class EditorScreen(ModalScreen[dict | None]):
    """Dismisses with the applied changes (typed values), or None when cancelled. ``params``
    declares the fields (the real configuration's by default)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="editor.cancel"),
        Binding("ctrl+s", "apply", "Apply", id="editor.apply"),
        Binding("enter", "apply", "Apply", show=False, id="editor.enter"),
    ]

    def __init__(self, pending: Config, apply: Callable[[dict[str, Any]], Config],
                 params: Sequence[Param] = PARAMS, **kwargs) -> None:
        super().__init__(**kwargs)
        self._apply = apply
        self.params = tuple(params)
        self._params = {p.name: p for p in self.params}
        self.pending = pending
        self.values: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self._load_values(pending)

    def _load_values(self, pending: Config) -> None:
        self.pending = pending
        self.values = {name: getattr(pending, name) for name in self._params}
        self.errors = {}

    def load(self, pending: Config) -> None:
        """Show ``pending`` again (the screen is reused between openings)."""
        self._load_values(pending)
        for row in editor_rows(pending, self.params):
            field = self.query_one(f"#field-{row.name}", Input)
            with field.prevent(Input.Changed):
                field.value = row.text
            self._set_note(row.name, None)
        self.query_one("#editor-error", Static).update("")
        first = self.query_one("#field-lr", Input)
        first.focus()

    def compose(self) -> ComposeResult:
        with Vertical(id="editor-box") as box:
            box.border_title = "Parameters"
            box.border_subtitle = "enter/ctrl+s apply · esc cancel"
            with VerticalScroll(id="editor-fields"):
                for row in editor_rows(self.pending, self.params):
                    with Horizontal(classes="field", id=f"row-{row.name}"):
                        yield Label(row.name, classes="field-name")
                        suggester = SuggestFromList(row.suggestions, case_sensitive=False) \
                            if row.suggestions else None
                        yield Input(row.text, compact=True, id=f"field-{row.name}", disabled=row.fixed,
                                    select_on_focus=True, suggester=suggester)
                        yield Label(row.note, classes="field-note", id=f"note-{row.name}")
            yield Static("", id="editor-error")
            with Horizontal(id="editor-buttons"):
                yield Button("Apply", id="editor-apply", variant="primary", compact=True)
                yield Button("Cancel", id="editor-cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#field-lr", Input).focus()

    def _set_note(self, name: str, error: str | None) -> None:
        label = self.query_one(f"#note-{name}", Label)
        row = self.query_one(f"#row-{name}")
        if error:
            label.update(Text(error))
            row.add_class("-invalid")
        else:
            label.update(self._params[name].note())
            row.remove_class("-invalid")

    def _check(self, name: str, raw: Any) -> None:
        try:
            self.values[name] = self._params[name].parse(raw)  # typed and checked, once
        except ConfigError as exc:
            self.errors[name] = str(exc)
            self._set_note(name, str(exc))
            return
        self.errors.pop(name, None)
        self._set_note(name, None)
        if not self.errors:  # "not applied: ..." spoke of a value that is fixed now
            self.query_one("#editor-error", Static).update("")

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("field-")
        if name in self._params:
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
                if not self._params[name].fixed and value != getattr(self.pending, name)}

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
