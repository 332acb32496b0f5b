"""Every key of the main screen, declared once: the bindings, the footer, the command palette and the
help screen's list of keys all come from these tables.

A `Key` names an action of the app (``action_<name>`` on `fftui.app.FFApp`, with optional
arguments). The keys that show a pane come from the pane registry (`fftui.panes`) and sit between
`RUN_KEYS` and `SCREEN_KEYS` (`key_table`), in the order of the help screen. The footer shows the
keys that matter most first, as many as fit (`FOOTER_PRIORITY`, `footer_keys`); every key is in the
help screen, and all but quit in the command palette.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class Key:
    """One key of the main screen.

    Attributes:
        keys: Textual key names, comma separated (``"f1,question_mark"``).
        action: the action's name, without ``action_``.
        footer: the footer's short text.
        title: the command palette's title, also the help screen's description.
        help: the command palette's one-line help.
        args: arguments of the action (strings), e.g. a pane's id.
        display: how the footer shows the key, where Textual's own name does not suit.
        palette: whether the command palette lists it.
    """

    keys: str
    action: str
    footer: str
    title: str
    help: str
    args: tuple[str, ...] = ()
    display: str | None = None
    palette: bool = True

    @property
    def name(self) -> str:
        """The action with its arguments, as one identifier: ``view_lhs``, ``help``."""
        return "_".join((self.action, *self.args))

    @property
    def id(self) -> str:
        """The binding's id, for Textual keymaps: ``fftui.<name>``."""
        return f"fftui.{self.name}"

    @property
    def action_string(self) -> str:
        """The action as Textual parses it: ``view('lhs')``."""
        if not self.args:
            return self.action
        return f"{self.action}({', '.join(repr(a) for a in self.args)})"

    def binding(self) -> Binding:
        return Binding(self.keys, self.action_string, self.footer, key_display=self.display, id=self.id)

    def callback(self, target: Any) -> Callable[[], Any]:
        """The action bound to ``target`` (the app), ready to call with no argument."""
        return partial(getattr(target, f"action_{self.action}"), *self.args)


RUN_KEYS: tuple[Key, ...] = (
    Key("space", "toggle_run", "Pause/Run", "Pause or resume", "Pause training, or resume it"),
    Key("n", "step", "Step", "Step one batch", "Train exactly one batch, then stay paused"),
    Key("r", "reset", "Reset", "Reset", "A fresh layer from the seed, iteration 0"),
    Key("m", "toggle_mode", "Mode", "Switch mode", "ff <-> descent (resets the layer)"),
    Key("l", "switch_loss", "Loss", "Switch loss", "linear <-> logistic, from the next batch"),
    Key("right_square_bracket", "lr_up", "lr×2", "Double the learning rate", "lr × 2 from the next batch",
        display="]"),
    Key("left_square_bracket", "lr_down", "lr÷2", "Halve the learning rate", "lr ÷ 2 from the next batch",
        display="["),
    Key("b", "batch_up", "N×2", "Double the batch size", "batch_size × 2 from the next batch"),
    Key("B", "batch_down", "N÷2", "Halve the batch size", "batch_size ÷ 2 from the next batch"),
    Key("w", "width_up", "n×2", "Double the width", "width × 2 (resets the layer; a stack: "
        "the layer shown's, the network resets)"),
    Key("W", "width_down", "n÷2", "Halve the width", "width ÷ 2 (resets the layer; a stack: "
        "the layer shown's, the network resets)"),
    Key("e", "edit", "Edit", "Edit parameters", "Open the editor for every parameter"),
    Key("s", "smoothing", "Smooth", "Toggle smoothing", "Moving average over the plotted iterations"),
    Key("plus", "window_up", "Window+", "Widen the smoothing window", "Average over more iterations (editor: smooth)",
        display="+"),
    Key("minus", "window_down", "Window−", "Narrow the smoothing window", "Average over fewer iterations",
        display="-"),
    Key("d", "difference", "Act−pred", "Actual minus predicted",
        "Sparsening: the fraction sparser minus each predicted fraction, or the fractions"),
    Key("a", "denominator", "Of all", "Fractions of all samples or of valid ones",
        "Sparsening: fractions of all N samples of each batch (the report's figures), or of the valid samples"),
    Key("z", "full_range", "S 0..1", "Hoyer sparsity on 0..1", "Hoyer sparsity around the data, or on 0..1"),
    Key("y", "log_scale", "Log y", "Log scale for goodness and loss", "Goodness and loss on log10 axes, or linear"),
    Key("greater_than_sign", "layer_next", "Layer+", "Show the next layer",
        "A stack (--widths): every pane shows the next layer (after the last, the first)", display=">"),
    Key("less_than_sign", "layer_previous", "Layer−", "Show the previous layer",
        "A stack (--widths): every pane shows the layer below (before the first, the last)", display="<"),
    Key("t", "evaluate", "Test", "Evaluate the test error now",
        "With --evaluate: the goodness classifier's test error now, between two batches (also every epoch)"),
)
"""Keys that steer the run or the display, before the pane keys."""

SCREEN_KEYS: tuple[Key, ...] = (
    Key("g", "grid", "Grid", "Show all panes", "All panes at once, or back to one"),
    Key("p", "presets", "Presets", "Run a preset of the report",
        "fig1a, fig1b, fig2 or fig3 with the report's parameters"),
    Key("o", "overlay", "Overlay", "Overlay a recorded run",
        "Draw a recorded run's series beside this one in Sparsening and Sparsity, or take overlays away"),
    Key("ctrl+s", "svg", "SVG", "Save an SVG screenshot", "Write the screen to an SVG file", display="^s"),
    Key("f1,question_mark", "help", "Help", "Help", "Every key and what each pane shows", display="F1/?"),
    Key("q,ctrl+c", "quit", "Quit", "Quit", "Stop training and leave", palette=False),  # Textual's palette has Quit
)
"""Keys after the pane keys: layout, presets, screenshot, help, quit."""


FOOTER_PRIORITY: tuple[str, ...] = (
    "scrub",  # a recording's (fftui/replay.py)
    "toggle_run", "step", "edit", "grid", "presets", "svg", "help", "quit",
    "reset", "toggle_mode", "layer_next", "layer_previous", "evaluate", "view", "smoothing", "switch_loss",
    "lr_up", "lr_down",
    "batch_up", "batch_down", "width_up", "width_down",
)
"""Actions in the order the footer offers their keys (the pane keys under "view", in pane order);
the footer shows a prefix of this list, as long as the terminal is wide. An action missing here is
never in the footer."""


def footer_width(key: Key) -> int:
    """Columns a key takes in the compact footer: its key, a space, its text, a space after."""
    display = key.display or key.keys.split(",")[0]
    return len(display) + 1 + len(key.footer) + 1


def footer_keys(table: Iterable[Key], width: int) -> list[Key]:
    """The keys of ``table`` the footer shows in ``width`` columns: in `FOOTER_PRIORITY` order, up
    to the first that does not fit (so a less important key never shows in place of a more
    important one)."""
    rank = {action: i for i, action in enumerate(FOOTER_PRIORITY)}
    ordered = sorted((k for k in table if k.action in rank), key=lambda k: rank[k.action])  # stable: pane order kept
    shown, used = [], 0
    for key in ordered:
        used += footer_width(key)
        if used > width:
            break
        shown.append(key)
    return shown


def key_table(pane_keys: Iterable[Key]) -> tuple[Key, ...]:
    """Every key of the main screen in footer order, with the pane keys given."""
    return (*RUN_KEYS, *pane_keys, *SCREEN_KEYS)


def bindings(table: Iterable[Key]) -> list[BindingType]:
    """Textual bindings for the keys of ``table``."""
    return [key.binding() for key in table]


def help_rows(table: Iterable[Key]) -> list[tuple[str, str]]:
    """(keys, description) rows for the help screen."""
    return [(key.keys, key.title) for key in table]


def palette_entries(table: Iterable[Key], target: Any) -> Iterator[tuple[str, str, Callable[[], Any]]]:
    """(title, help, callback) for each key the command palette lists, bound to ``target``."""
    for key in table:
        if key.palette:
            yield key.title, key.help, key.callback(target)
