"""The main screen's footer: the keys that matter most, as many as the terminal's width holds."""
from __future__ import annotations

from collections.abc import Sequence

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # Textual's own key widget (not re-exported)

from ..keys import Key, footer_keys, footer_width

PALETTE_WIDTH = 12   # "^p palette" with its left border and a column to spare


class KeyFooter(Footer):
    """Textual's footer (compact) limited to `fftui.keys.footer_keys` for its width, in that order;
    the command palette's key at the right when there is room left. Every key stays bound: the
    ones left out are in the help screen and the palette.

    Args:
        table: the keys of the main screen (`fftui.keys.key_table`).
    """

    def __init__(self, table: Sequence[Key], **kwargs) -> None:
        super().__init__(compact=True, **kwargs)
        self._table = tuple(table)
        self._hidden: frozenset[str] = frozenset()
        self._shown: tuple[str, ...] | None = None

    def hide(self, names: frozenset[str]) -> None:
        """Leave out the keys of these names (`Key.name`), such as a stack's keys in a one-layer
        run; they stay bound."""
        if names != self._hidden:
            self._hidden = names
            if self.is_mounted:
                self.call_next(self.recompose)  # in the footer's own turn: compose binds its data

    def _width(self) -> int:
        return self.size.width or self.app.size.width

    def _choice(self, width: int) -> tuple[list[Key], bool]:
        """The keys shown and whether the palette's key fits after them."""
        keys = footer_keys([k for k in self._table if k.name not in self._hidden], width)
        used = sum(footer_width(k) for k in keys)
        return keys, width - used >= PALETTE_WIDTH

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        keys, palette = self._choice(self._width())
        self._shown = (*(k.id for k in keys), str(palette))
        active = self.screen.active_bindings
        by_id = {}
        for _node, binding, enabled, tooltip in active.values():
            if binding.id and binding.id not in by_id:
                by_id[binding.id] = (binding, enabled, tooltip)
        for key in keys:
            if key.id not in by_id:
                continue
            binding, enabled, tooltip = by_id[key.id]
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description,
                            binding.action, disabled=not enabled,
                            tooltip=tooltip or key.help).data_bind(compact=Footer.compact)
        palette_key = active.get(self.app.COMMAND_PALETTE_BINDING)
        if palette and self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE and palette_key:
            _node, binding, enabled, tooltip = palette_key
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description,
                            binding.action, classes="-command-palette", disabled=not enabled,
                            tooltip=binding.tooltip or binding.description)

    def on_resize(self, event: events.Resize) -> None:
        keys, palette = self._choice(event.size.width)
        if self._shown is not None and (*(k.id for k in keys), str(palette)) != self._shown:
            self.call_after_refresh(self.recompose)
