"""What the keys that change the view do: one pane or the grid, display options, help, screenshots.

`ViewControl` sits between `fftui.control.RunControl` (the keys that steer the run) and
`fftui.app.FFApp` (the screen: layout, timer, plots), which sets the attributes it names.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from textual.reactive import var

from . import keys
from .control import RunControl
from .panes import PaneSpec, pane_help
from .screens.help import HelpScreen
from .screenshot import home_relative, save_new, screenshot_folder
from .widgets.pane import View, next_window


class ViewControl(RunControl):
    """The app's actions on what is shown (not on the run): panes, grid, display options, help,
    screenshots. The subclass provides ``PANES``, ``KEYS``, ``screenshot_dir`` and ``_last_single``
    (the pane shown when the grid is left)."""

    PANES: ClassVar[tuple[PaneSpec, ...]]
    KEYS: ClassVar[tuple[keys.Key, ...]]
    screenshot_dir: Path | None
    _last_single: str

    GRID_SIZES: ClassVar[tuple[tuple[int, int], ...]] = ((152, 47), (158, 43), (230, 41))
    """(columns, rows): the grid of every plotting pane fits a terminal at least as large as one of
    these, each pane with its whole title, every summary line and a usable plot (20x5 cells of
    data). Measured with bench/grid_fit.py (how: see there; every 6th width from 140): fewest rows 45
    from 152 columns, 41 from 158, 39 from 230 (none below 152: the plots' titles and axes need the
    width; the legend and title lines above each plot need the rows); two rows added to each: one
    for an engine-error banner, one for a summary line that wraps. Below them the panes show one
    at a time and ``g`` says why."""
    view: var[str] = var("", init=False)
    """The pane shown alone (its id), or "grid": every pane at once."""
    view_options: var[View] = var(View(), init=False)
    """Display options the panes share (smoothing)."""

    @classmethod
    def grid_fits(cls, width: int, height: int) -> bool:
        """Whether every plotting pane fits at once in a terminal of ``width`` x ``height`` cells."""
        return any(width >= w and height >= h for w, h in cls.GRID_SIZES)

    def pane_count(self) -> int:
        """The panes offered (keys 1 to this one)."""
        return len(self.PANES)

    # -- actions --------------------------------------------------------------------------------
    def _toggle_view(self, name: str, on: str, off: str) -> None:
        """Flip one of the panes' display options and say which way it went."""
        options = self.view_options = replace(self.view_options, **{name: not getattr(self.view_options, name)})
        self._set_message(on if getattr(options, name) else off)
        self._refresh_text()

    def action_difference(self) -> None:
        self._toggle_view("difference", "Sparsening: actual minus predicted", "Sparsening: the fractions")

    def action_denominator(self) -> None:
        self._toggle_view("of_batch", "Sparsening: fractions of all N samples of each batch (the report's)",
                          "Sparsening: fractions of the valid samples (active before and after)")

    def action_full_range(self) -> None:
        self._toggle_view("full_range", "Hoyer sparsity on 0..1", "Hoyer sparsity around the data")

    def action_log_scale(self) -> None:
        self._toggle_view("log", "goodness and loss on log scales", "goodness and loss on linear scales")

    def action_window_up(self) -> None:
        self._change(smooth=next_window(self.runner.pending_config.smooth, up=True))

    def action_window_down(self) -> None:
        self._change(smooth=next_window(self.runner.pending_config.smooth, up=False))

    def action_smoothing(self) -> None:
        options = self.view_options = replace(self.view_options, smoothing=not self.view_options.smoothing)
        self._set_message(f"smoothing on, {options.window} iterations" if options.smoothing else "smoothing off")
        self._refresh_text()

    def action_view(self, view: str) -> None:
        if any(s.id == view for s in self.PANES):
            self.view = view

    def action_grid(self) -> None:
        if self.view == "grid":
            self.view = self._last_single
        elif self.grid_fits(*self.size):
            self.view = "grid"
        else:
            sizes = [f"{w}x{h}" for w, h in self.GRID_SIZES]
            need = " or ".join(filter(None, (", ".join(sizes[:-1]), sizes[-1])))
            self._set_message(f"the grid needs {need}; this is {self.size.width}x{self.size.height}: "
                              f"1-{self.pane_count()} show one pane", "warning")
            self._refresh_text()

    def action_overlay(self) -> None:
        """Pick a recorded run to draw beside this one (fftui/overlay.py)."""
        from .overlay import pick_overlay

        pick_overlay(self)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(HelpScreen(keys.help_rows(self.KEYS), pane_help(self.PANES)))

    def action_svg(self) -> None:
        """Save the screen as SVG in the screenshot folder (else the working folder) under a new name;
        the status line and a notification show the path whole, relative to ~ where it can be."""
        svg = self.export_screenshot()
        stem = time.strftime("fftui-%Y%m%d-%H%M%S")
        try:
            path = save_new(self.screenshot_dir or screenshot_folder(), stem, svg)
        except OSError:
            try:
                path = save_new(Path.cwd(), stem, svg)
            except OSError as exc:
                self._set_message(f"screenshot not saved: {exc.strerror or exc}", "error")
                self._refresh_text()
                return
        shown = home_relative(path)
        self._set_message(f"screenshot saved: {shown}")
        folder, _, name = shown.rpartition(os.sep)
        # the folder and the file name on lines of their own: a narrow toast never splits the name
        self.notify(f"{folder}{os.sep}\n{name}", title="SVG screenshot saved", timeout=8, markup=False)
        self._refresh_text()
