"""The live terminal app: trains in the engine's thread and shows the theorems at work.

The panes come from `fftui.panes` and the keys from `fftui.keys`; `fftui.scheduler` decides when
plots are built and `fftui.rate` measures batches per second."""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Container, Horizontal
from textual.reactive import var
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static, Tabs

from engine.config import Config

from . import keys, lifecycle
from .control import recovery_hint
from .history import History, change_label
from .layering import LayerControl
from .panes import PANES, PaneSpec, pane_keys, pane_tabs
from .rate import RateMeter
from .scheduler import PlotScheduler
from .screens.editor import EditorScreen
from .widgets.footer import KeyFooter
from .widgets.pane import Pane, View
from .widgets.parameters import ParametersPane
from .widgets.status import StatusBar, StatusInfo

if TYPE_CHECKING:  # the app's first frame comes before torch is imported: engine.data loads it
    from engine.data import Dataset


def recording_text(runner: Any) -> str:
    """What the status bar says of the recording: the run's folder name, or "recording stopped:
    REASON"; "" when the run is not recorded (`engine.recording.Recording`)."""
    recorder = getattr(runner, "recorder", None)
    return recorder.status_text() if recorder is not None and hasattr(recorder, "status_text") else ""


class FFApp(LayerControl):
    """Watch Forward-Forward training make ReLU activations sparse, beside the theory.

    Args:
        config: the run's parameters (default: `Config()`).
        dataset: the images and labels to train on; or None with ``loader``.
        runner_factory: builds the training thread from (config, dataset); `engine.runner.Runner`
            by default, a fake one in tests. With ``loader`` it is called in the loading thread.
        clock: seconds, for the batches-per-second meter.
        screenshot_dir: where ctrl+s saves (default: `screenshot_folder()`).
        preset: the report's experiment the run came from; fig1a and fig1b open their screen.
        loader: gives the dataset when ``dataset`` is None. It runs in a background thread once
            the first frame is on the screen (which shows "loading"), then the engine starts; an
            exception it raises ends the app (``load_error`` holds it, the return code is 2).
        stop_signals: whether SIGINT, SIGTERM and SIGHUP stop the app as `fftui.lifecycle` says
            (``stop_signal`` names the one that did, the return code is 128 + its number).

    The panes are `PANES` (`FFApp.with_panes` gives the app with others); the keys are `KEYS`.
    """

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))
    TITLE = "fftui"
    PANES: ClassVar[tuple[PaneSpec, ...]] = PANES
    KEYS: ClassVar[tuple[keys.Key, ...]] = keys.key_table(pane_keys(PANES))
    BINDINGS = keys.bindings(KEYS)

    DRAIN_INTERVAL = 0.1      # seconds between queue drains
    STATUS_INTERVAL = 0.5     # the status line follows the run at least this often
    PLOT_INTERVAL = 0.5       # after redrawing everything at once, wait this long
    PLOT_GAP = 0.2            # at least this long between two plot builds
    PLOT_BUDGET = 0.02        # plot building may take at most this much CPU time per second
    PLOT_BURST = 0.1          # seconds of building that may be spent at once after a quiet spell
    SIDE_WIDTH = 38           # columns of the side panes in the grid (app.tcss: .-grid .side-pane)

    wide: var[bool] = var(False, init=False)
    """Whether the grid fits the terminal (`grid_fits`): entering it shows the grid, leaving it one pane."""
    sidebar: var[bool] = var(False, init=False)
    """Whether the grid still fits beside the side panes: the grid shows them too."""
    run_state: var[tuple] = var((), init=False)
    """(state, config in use, queued config) of the engine at the last drain."""
    banner: var[str] = var("", init=False)
    """The engine error line above the panes; empty: hidden."""

    @classmethod
    def with_panes(cls, registry: Sequence[PaneSpec]) -> type[FFApp]:
        """The app with the panes of ``registry`` instead of `PANES`: its layout, tabs, keys,
        command palette and help. A subclass, since Textual reads bindings from the class."""
        table = keys.key_table(pane_keys(tuple(registry)))
        namespace = {"PANES": tuple(registry), "KEYS": table,  # App's own keys, then ours (RunControl has none)
                     "BINDINGS": [*App.BINDINGS, *keys.bindings(table)]}
        return type(cls.__name__, (cls,), namespace, inherit_bindings=False)

    def __init__(self, config: Config | None = None, dataset: Dataset | None = None,
                 runner_factory: Callable[[Config, Dataset], Any] | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 screenshot_dir: str | os.PathLike[str] | None = None, preset: str | None = None,
                 loader: Callable[[], Dataset] | None = None, stop_signals: bool = False) -> None:
        super().__init__()
        if dataset is None and loader is None:
            raise ValueError("FFApp needs a dataset or a loader")
        lifecycle.guard_line_filters(self)
        self.config = config or Config()
        self.preset = preset
        self.dataset: Dataset | None = dataset
        self._loader = loader
        self.load_error: BaseException | None = None
        self.stop_signal: int | None = None
        self._stop_signals = stop_signals
        self._mounted = False
        self._factory = runner_factory
        self.runner: Any = None
        self.history = History()
        self.clock = clock
        self.screenshot_dir = Path(screenshot_dir) if screenshot_dir is not None else None
        self.plots = PlotScheduler(interval=self.PLOT_INTERVAL, gap=self.PLOT_GAP,
                                   budget=self.PLOT_BUDGET, burst=self.PLOT_BURST)
        self.rates = RateMeter()
        self._last_single = self.PANES[0].id
        self.set_reactive(LayerControl.view, self._last_single)
        self.set_reactive(FFApp.view_options, View(window=self.config.smooth))
        self._requested: tuple[str, float] | None = None
        self._message = ("", "info")
        self._error = ""
        self._error_cause = ""
        self._recording_said = ""  # the "recording stopped" line already shown
        self._stopped = False
        self._editor: EditorScreen | None = None
        self._run_shown = self.history.runs   # the history's run that the panes show

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Static("", id="banner")
        yield pane_tabs(self.PANES)
        with Horizontal(id="body"):
            with Container(id="panes"):
                yield from (s.build(on_build=self.plots.spend) for s in self.PANES if s.plots)
            yield from (s.build() for s in self.PANES if not s.plots)
        yield KeyFooter(self.KEYS)

    def on_mount(self) -> None:
        self.panes: list[Pane] = list(self.query(Pane))
        self._pane_widgets: dict[str, Widget] = {s.id: self.query_one(f"#{s.id}") for s in self.PANES}
        self._status = self.query_one(StatusBar)
        self._banner = self.query_one("#banner", Static)
        self._tabs = self.query_one("#tabs", Tabs)
        self._params = self.query_one(ParametersPane)
        self._panes_box = self.query_one("#panes")
        self._tabs.can_focus = False
        self._mounted = True
        if self._stop_signals:
            lifecycle.install_stop_signals(self)
        self._apply_size(self.size.width, self.size.height)
        self._layout()
        self.sync_layers()
        self.set_interval(self.DRAIN_INTERVAL, self._tick, name="drain")
        self.set_interval(self.STATUS_INTERVAL, self._refresh_text, name="status")
        if self.dataset is not None:
            self._start_engine(self.dataset, self._build_runner(self.dataset))
        else:
            self._set_message(lifecycle.loading_message(self.config))
            self._refresh_text()

    def on_ready(self) -> None:
        """The first frame is on the screen: load the data behind it (see `lifecycle.load_in_background`)."""
        if self.dataset is None and self._loader is not None:
            lifecycle.load_in_background(self, self._loader, self._build_runner)

    def _build_runner(self, dataset: Dataset) -> Any:
        factory = self._factory
        if factory is None:
            from engine.runner import Runner

            factory = Runner
        return factory(self.config, dataset)

    def _start_engine(self, dataset: Dataset, runner: Any) -> None:
        """The data are in and the runner built: start training and show it."""
        if self._stopped:
            return
        self.dataset = dataset
        self.runner = runner
        self._set_message(dataset.note or "", "warning" if dataset.note else "info")
        if self.preset in ("fig1a", "fig1b"):
            # Figure 1 evaluates the layer at initialisation: nothing trains until the user asks
            # (the pause is queued before the thread starts, so it comes before any batch)
            self.runner.pause()
            self._set_message("paused: Figure 1 is the layer at initialisation; space trains it")
        self.runner.start()
        self._tick()
        self._refresh_text()
        if self.preset in ("fig1a", "fig1b"):
            from .screens.figure1 import Figure1Screen

            self.push_screen(Figure1Screen(self.preset, dataset, self.config))

    def _load_failed(self, error: BaseException) -> None:
        """The data could not be loaded: end the app; the caller reports ``load_error``."""
        self.load_error = error
        self._stopped = True
        self.exit(return_code=2)

    def on_resize(self, event: events.Resize) -> None:
        if self._mounted:
            self._apply_size(event.size.width, event.size.height)

    def _apply_size(self, width: int, height: int) -> None:
        """Decide the grid and the sidebar from the terminal's size now (after a resize: the new one)."""
        self.sidebar = self.grid_fits(width - self.SIDE_WIDTH, height)
        self.wide = self.grid_fits(width, height)

    def watch_wide(self, wide: bool) -> None:
        self.view = "grid" if wide else self._last_single
        if wide and self._message[0].startswith("the grid needs"):   # said of a smaller terminal
            self._set_message("")

    def watch_view(self, view: str) -> None:
        if view != "grid":
            self._last_single = view
        self._layout()

    def watch_sidebar(self) -> None:
        self._layout()

    def watch_view_options(self) -> None:
        self.plots.hurry()

    def _layout(self) -> None:
        """Show the panes of the view: one with its tab row, or all, with the sidebar if wide enough."""
        view = self.view
        grid = view == "grid"
        self.set_class(grid, "-grid")
        self._tabs.display = not grid
        if not grid:
            self._tabs.active = f"tab-{view}"
        sidebar = grid and self.sidebar
        for spec in self.PANES:
            in_grid = grid and spec.grid and (spec.plots or sidebar)
            self._pane_widgets[spec.id].display = spec.id == view or in_grid
        self._panes_box.display = grid or any(s.plots and s.id == view for s in self.PANES)
        self.plots.hurry()

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        view = (event.tab.id or "").removeprefix("tab-")
        if self.view != "grid" and any(s.id == view for s in self.PANES):
            self.view = view

    # -- the timer ------------------------------------------------------------------------------
    def _tick(self) -> None:
        runner = self.runner
        if runner is None or self._stopped:
            return
        records = runner.drain()
        latest = self.history.latest
        if latest is not None and runner.iteration < latest.iteration and not records:
            self.history.clear()
        if records:
            self.history.add(records)
        if self.history.runs != self._run_shown:
            self._new_run()
        self.sync_layers()
        for event in runner.drain_events():
            self._on_event(event)
        self.rates.update(self.clock(), runner.iteration, runner.state == "running")
        self.run_state = (runner.state, runner.config, runner.pending_config)
        self.history.set_config(runner.config)
        window = runner.pending_config.smooth  # a view parameter: shown at once, never queued
        if window != self.view_options.window:
            self.view_options = replace(self.view_options, window=window)
        self._note_recording(recording_text(runner))
        self._maybe_draw()

    def _note_recording(self, text: str) -> None:
        """A recording that stopped (a full disk) is said once on the message line and in a
        notification, at any width; training goes on."""
        if text.startswith("recording stopped") and text != self._recording_said:
            self._recording_said = text
            self._set_message(text, "error")
            self.notify(f"{text}; training goes on", title="recording stopped", severity="error", timeout=8,
                        markup=False)

    def _new_run(self) -> None:
        """The history started anew (a reset, another mode or set of groups): every pane, shown or
        hidden, drops the old run's picture now, and the ones shown are drawn again soon."""
        self._run_shown = self.history.runs
        note = "drawing…" if len(self.history) else "waiting for the first batch"
        for pane in self.panes:
            pane.clear(note)
        self.plots.hurry()

    def watch_run_state(self) -> None:
        self._refresh_text()

    def _on_event(self, event) -> None:
        if getattr(event, "evaluation", None) is not None:
            self.on_evaluation(event)
            return
        if getattr(event, "changes", ()):  # a parameter change: marked on the plots at its iteration
            self.history.mark(event.iteration, change_label({k: (old, new) for k, old, new in event.changes}))
        if event.kind == "error":
            self._error = event.message
            self._error_cause = getattr(event, "cause", "")
            self.notify(event.message, title="engine error: paused", severity="error", timeout=8, markup=False)
        elif event.kind == "warning":
            self.notify(event.message, severity="warning", markup=False)
        self._set_message(event.message, event.kind)

    def _refresh_text(self) -> None:
        runner = self.runner
        if runner is None or self.dataset is None:
            self._show_loading()
            return
        state = runner.state
        requested = None
        if self._requested is not None:
            want, since = self._requested
            if state == want or time.monotonic() - since > 3.0:
                self._requested = None
            else:
                requested = want
        latest = self.history.latest
        info = StatusInfo(
            state=state,
            requested=requested,
            config=runner.config,
            pending=runner.pending_config,
            data=self.dataset.description,
            sample=self.dataset.source == "sample",
            device=str(self.dataset.images.device),
            epoch=latest.epoch if latest is not None else None,
            iteration=runner.iteration,
            total=runner.config.total_iters(self.dataset.size),
            rate=self.rates.rate() if state == "running" else None,
            dropped=runner.dropped,
            message=self._message[0],
            message_kind=self._message[1],
            data_size=self.dataset.size,
            recording=recording_text(runner),
            layer=self.layer_text(),
            test=self.test_text(),
        )
        self._status.show(info)
        self.banner = (f" engine error: {self._error or 'see the message above'} — the run is paused; "
                       f"{recovery_hint(self._error_cause)}") if state == "error" else ""
        self._params.show(runner.config, runner.pending_config)

    def _show_loading(self) -> None:
        """The status bar before the engine exists: the configuration asked for, "loading"."""
        if self._mounted:
            self._status.show(lifecycle.loading_info(self.config, *self._message))
            self._params.show(self.config, self.config)

    def watch_banner(self, text: str) -> None:
        self._banner.update(Text(text))
        self._banner.display = bool(text)

    # -- plots ----------------------------------------------------------------------------------
    def _pane_key(self, pane: Pane) -> Hashable:
        """What a pane's picture depends on: the data, the options, its size and its plots' widths."""
        return (self.history.version, self.view_options, pane.size, tuple(p.size.width for p in pane.plots))

    def _fill(self, pane: Pane) -> None:
        pane.fill(self.history, self.view_options)

    def _maybe_draw(self, force: bool = False) -> None:
        """Let the plot scheduler fill and publish what is due in the panes shown (nothing while
        another screen is on top, unless forced)."""
        if len(self.screen_stack) > 1 and not force:
            return
        self.plots.step([p for p in self.panes if p.display], self._pane_key, self._fill, force)

    def draw_now(self) -> None:
        """Redraw every visible pane whose data changed, whatever the rate limit."""
        self._maybe_draw(force=True)

    async def action_quit(self) -> None:
        self._stop_runner()
        self.exit()

    def _stop_runner(self) -> None:
        """Stop the engine; an engine still loading never starts."""
        if self._stopped:
            return
        self._stopped = True
        if self.runner is not None:
            self.runner.stop(timeout=0.8)

    def on_unmount(self) -> None:
        self._stop_runner()

    # -- command palette ------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, callback in keys.palette_entries(self.KEYS, self):
            yield SystemCommand(title, help_text, callback)
        for title, help_text, callback in self.layer_commands():
            yield SystemCommand(title, help_text, callback)
        from engine.presets import PRESETS

        for name, preset in PRESETS.items():
            yield SystemCommand(f"Preset {name}", preset.heading(), partial(self.action_preset, name))
