"""The live terminal app: trains in the engine's thread and shows the theorems at work."""
from __future__ import annotations

import os
import time
from collections import deque
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static, Tab, Tabs

from engine.config import RESET_FIELDS, Config, ConfigError
from engine.data import Dataset

from .history import History
from .screens.editor import EditorScreen
from .screens.figure1 import Figure1Screen
from .screens.help import HelpScreen
from .screens.presets import PresetScreen
from .widgets.assumptions import AssumptionsPane
from .widgets.lhs_rhs import LhsRhsPane
from .widgets.pane import Pane, View
from .widgets.parameters import ParametersPane, show_value
from .widgets.sparsening import SparseningPane
from .widgets.sparsity import SparsityPane
from .widgets.status import StatusBar, StatusInfo

VIEWS = ("lhs", "sparsening", "sparsity", "assumptions", "params")
VIEW_TITLES = {"lhs": "1 LHS/RHS", "sparsening": "2 Sparsening", "sparsity": "3 Sparsity",
               "assumptions": "4 Assumptions", "params": "5 Parameters"}

# (key, action, footer text, palette title, palette help)
KEYS: tuple[tuple[str, str, str, str, str], ...] = (
    ("space", "toggle", "Pause/Run", "Pause or resume", "Pause training, or resume it"),
    ("n", "step", "Step", "Step one batch", "Train exactly one batch, then stay paused"),
    ("r", "reset", "Reset", "Reset", "A fresh layer from the seed, iteration 0"),
    ("m", "switch_mode", "Mode", "Switch mode", "ff <-> descent (resets the layer)"),
    ("l", "switch_loss", "Loss", "Switch loss", "linear <-> logistic, from the next batch"),
    ("right_square_bracket", "lr_up", "lr×2", "Double the learning rate", "lr × 2 from the next batch"),
    ("left_square_bracket", "lr_down", "lr÷2", "Halve the learning rate", "lr ÷ 2 from the next batch"),
    ("b", "batch_up", "N×2", "Double the batch size", "batch_size × 2 from the next batch"),
    ("B", "batch_down", "N÷2", "Halve the batch size", "batch_size ÷ 2 from the next batch"),
    ("w", "width_up", "n×2", "Double the width", "width × 2 (resets the layer)"),
    ("W", "width_down", "n÷2", "Halve the width", "width ÷ 2 (resets the layer)"),
    ("e", "edit", "Edit", "Edit parameters", "Open the editor for every parameter"),
    ("s", "smoothing", "Smooth", "Toggle smoothing", "Moving average over the plotted iterations"),
    ("1", "view('lhs')", "LHS/RHS", "Show LHS/RHS", "Histograms of the theorem's two sides"),
    ("2", "view('sparsening')", "Sparsening", "Show sparsening", "Actual vs predicted sparser ratios"),
    ("3", "view('sparsity')", "Sparsity", "Show sparsity", "Hoyer sparsity, silenced, goodness, loss"),
    ("4", "view('assumptions')", "Assumptions", "Show assumptions", "Agreement, sign flips, remainder"),
    ("5", "view('params')", "Params", "Show parameters", "Every parameter of the run"),
    ("g", "grid", "All panes", "Show all panes", "All panes at once, or back to one"),
    ("p", "presets", "Presets", "Run a preset of the report", "fig1a, fig1b, fig2 or fig3 with the report's parameters"),
    ("ctrl+s", "svg", "SVG", "Save an SVG screenshot", "Write the screen to an SVG file"),
    ("f1,question_mark", "help", "Help", "Help", "Every key and what each pane shows"),
    ("q", "quit", "Quit", "Quit", "Stop training and leave"),
)

KEY_DISPLAY = {"right_square_bracket": "]", "left_square_bracket": "[", "f1,question_mark": "F1"}


def _binding(key: str, action: str, text: str) -> Binding:
    ident = action.split("(")[0] if "(" not in action else "view_" + action.split("'")[1]
    return Binding(key, action, text, key_display=KEY_DISPLAY.get(key), id=f"fftui.{ident}")


def screenshot_folder() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("fftui")) / "screenshots"


class FFApp(App):
    """Watch Forward-Forward training make ReLU activations sparse, beside the theory."""

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))
    TITLE = "fftui"
    BINDINGS = [_binding(k, a, t) for k, a, t, _, _ in KEYS]

    DRAIN_INTERVAL = 0.1      # seconds between queue drains and status updates
    PLOT_INTERVAL = 0.5       # after redrawing everything at once, wait this long
    PLOT_GAP = 0.2            # at least this long between two plot builds
    STATUS_INTERVAL = 0.5     # the status line follows the run at most this often
    PLOT_BUDGET = 0.02        # plot building may take at most this much CPU time per second
    PLOT_BURST = 0.1          # seconds of building that may be spent at once after a quiet spell
    WIDE = (120, 36)          # from this size on, all panes at once
    SIDEBAR = 150             # from this width on, the parameters beside the panes

    def __init__(self, config: Config | None = None, dataset: Dataset | None = None,
                 runner_factory: Callable[[Config, Dataset], Any] | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 screenshot_dir: str | os.PathLike[str] | None = None, preset: str | None = None) -> None:
        super().__init__()
        if dataset is None:
            raise ValueError("FFApp needs a dataset")
        self.config = config or Config()
        self.preset = preset
        self.dataset = dataset
        self._factory = runner_factory
        self.runner: Any = None
        self.history = History()
        self.view_options = View()
        self.clock = clock
        self.screenshot_dir = Path(screenshot_dir) if screenshot_dir is not None else None
        self.view = "lhs"
        self._last_single = "lhs"
        self._wide: bool | None = None
        self._requested: tuple[str, float] | None = None
        self._message = ("", "info")
        self._error = ""
        self._rates: deque[tuple[float, int]] = deque()
        self._next_draw = 0.0
        self._hurry_since: float | None = None
        self._tokens = self.PLOT_BURST
        self._tokens_at = time.monotonic()
        self.plot_builds = 0
        self.plot_seconds = 0.0
        self.plot_wall = 0.0
        self._stopped = False
        self._editor: EditorScreen | None = None
        self._text_at = 0.0
        self._text_marks: tuple = ()
        self._banner_text = ""

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Static("", id="banner")
        yield Tabs(*[Tab(VIEW_TITLES[v], id=f"tab-{v}") for v in VIEWS], id="tabs")
        with Horizontal(id="body"):
            with Container(id="panes"):
                yield LhsRhsPane(id="lhs", on_build=self._built)
                yield SparseningPane(id="sparsening", on_build=self._built)
                yield SparsityPane(id="sparsity", on_build=self._built)
                yield AssumptionsPane(id="assumptions", on_build=self._built)
            yield ParametersPane(id="params")
        yield Footer()

    def on_mount(self) -> None:
        self.panes: list[Pane] = list(self.query(Pane))
        self._status = self.query_one(StatusBar)
        self._banner = self.query_one("#banner", Static)
        self._tabs = self.query_one("#tabs", Tabs)
        self._params = self.query_one(ParametersPane)
        self._panes_box = self.query_one("#panes")
        self._tabs.can_focus = False
        factory = self._factory
        if factory is None:
            from engine.runner import Runner

            factory = Runner
        self.runner = factory(self.config, self.dataset)
        if self.dataset.note:
            self._set_message(self.dataset.note, "warning")
        self._apply_size(self.size.width, self.size.height)
        self.runner.start()
        self.set_interval(self.DRAIN_INTERVAL, self._tick, name="drain")
        self._tick()
        if self.preset in ("fig1a", "fig1b"):
            self.push_screen(Figure1Screen(self.preset, self.dataset))

    def on_resize(self, event) -> None:
        if self.runner is not None:
            self._apply_size(event.size.width, event.size.height)

    def _apply_size(self, width: int, height: int) -> None:
        wide = width >= self.WIDE[0] and height >= self.WIDE[1]
        if wide == self._wide:
            self._set_view(self.view)
            return
        self._wide = wide
        self._set_view("grid" if wide else self._last_single)

    def _set_view(self, view: str) -> None:
        self.view = view
        grid = view == "grid"
        if not grid:
            self._last_single = view
        self.set_class(grid, "-grid")
        self._tabs.display = not grid
        if not grid:
            self._tabs.active = f"tab-{view}"
        for pane in self.panes:
            pane.display = grid or pane.id == view
        self._panes_box.display = grid or view != "params"
        self._params.display = (grid and self.size.width >= self.SIDEBAR) or view == "params"
        self._hurry()

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        view = (event.tab.id or "").removeprefix("tab-")
        if view in VIEWS and view != self.view and self.view != "grid":
            self._set_view(view)

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
        for event in runner.drain_events():
            self._on_event(event)
        self._update_rate()
        now = time.monotonic()
        marks = (self.runner.state, self.runner.config, self.runner.pending_config)
        if now - self._text_at >= self.STATUS_INTERVAL or marks != self._text_marks:
            self._refresh_text()
        self._maybe_draw()

    def _on_event(self, event) -> None:
        if event.kind == "error":
            self._error = event.message
            self.notify(event.message, title="engine error: paused", severity="error", timeout=8, markup=False)
        elif event.kind == "warning":
            self.notify(event.message, severity="warning", markup=False)
        self._set_message(event.message, event.kind)

    def _update_rate(self) -> None:
        now = self.clock()
        iteration = self.runner.iteration
        rates = self._rates
        if rates and (iteration < rates[-1][1] or self.runner.state != "running"):
            rates.clear()
        rates.append((now, iteration))
        while len(rates) > 2 and now - rates[0][0] > 3.0:
            rates.popleft()

    def rate(self) -> float | None:
        rates = self._rates
        if len(rates) < 2:
            return None
        (t0, i0), (t1, i1) = rates[0], rates[-1]
        if t1 - t0 < 0.5 or i1 <= i0:
            return None
        return (i1 - i0) / (t1 - t0)

    def _set_message(self, text: str, kind: str = "info") -> None:
        self._message = (" ".join(str(text).split()), kind)

    def _refresh_text(self) -> None:
        runner = self.runner
        state = runner.state
        self._text_at = time.monotonic()
        self._text_marks = (state, runner.config, runner.pending_config)
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
            rate=self.rate() if state == "running" else None,
            dropped=runner.dropped,
            message=self._message[0],
            message_kind=self._message[1],
        )
        self._status.show(info)
        banner = self._banner
        if state == "error":
            text = (f" engine error: {self._error or 'see the message above'} — the run is paused; "
                    "[ halves lr, r resets, space resumes")
            if text != self._banner_text:
                self._banner_text = text
                banner.update(Text(text))
            banner.display = True
        elif banner.display:
            banner.display = False
        self._params.show(runner.config, runner.pending_config)

    # -- plots ----------------------------------------------------------------------------------
    def _built(self, cpu: float, wall: float) -> None:
        self.plot_builds += 1
        self.plot_seconds += cpu
        self.plot_wall += wall
        self._tokens -= cpu

    def _pane_key(self, pane: Pane) -> tuple:
        return (self.history.version, self.view_options, pane.size.width, pane.size.height)

    def _maybe_draw(self, force: bool = False) -> None:
        """Fill the panes with new data and publish their plots, one plot per call, so that no frame
        waits on more than one plotext build. Every build spends its CPU time (measured where it
        happens) from a budget that refills at PLOT_BUDGET seconds per second; a draw waits while
        the budget is spent."""
        if len(self.screen_stack) > 1 and not force:
            return
        visible = [p for p in self.panes if p.display]
        now = time.monotonic()
        waiting = [plot for pane in visible for plot in pane.plots if plot.pending and plot.display]
        if self._hurry_since is not None:
            behind = [p for p in visible if p.drawn_at < self._hurry_since and p.stale(self._pane_key(p))]
            if not behind and not waiting:
                self._hurry_since = None
        self._tokens = min(self.PLOT_BURST, self._tokens + (now - self._tokens_at) * self.PLOT_BUDGET)
        self._tokens_at = now
        if not force and self._hurry_since is None and (now < self._next_draw or self._tokens < 0):
            return
        if not waiting:
            stale = [p for p in visible if p.stale(self._pane_key(p))]
            if not stale:
                return
            for pane in (stale if force else [min(stale, key=lambda p: p.drawn_at)]):
                pane.draw(self.history, self.view_options)
                pane.drawn = self._pane_key(pane)
            waiting = [plot for pane in visible for plot in pane.plots if plot.pending and plot.display]
        if force:
            for plot in waiting:
                plot.publish()
            self._next_draw = now + self.PLOT_INTERVAL
            return
        if waiting:
            waiting[0].publish()
            self._next_draw = now + self.PLOT_GAP

    def _hurry(self) -> None:
        """Bring every visible pane up to date soon, still one plot build per tick."""
        self._hurry_since = time.monotonic()

    def draw_now(self) -> None:
        """Redraw every visible pane whose data changed, whatever the rate limit."""
        self._maybe_draw(force=True)

    # -- actions --------------------------------------------------------------------------------
    def _change(self, **changes: Any) -> None:
        runner = self.runner
        old = runner.pending_config
        try:
            new = runner.set_params(**changes)
        except ConfigError as exc:
            self._set_message(f"not applied: {exc}", "error")
            self.notify(str(exc), title="not applied", severity="error", markup=False)
            self._refresh_text()
            return
        self._report_change(old, new, list(changes))

    def _report_change(self, old: Config, new: Config, names: Iterable[str]) -> None:
        parts = [f"{n} {show_value(getattr(old, n))} → {show_value(getattr(new, n))}" for n in names]
        resets = any(getattr(old, f) != getattr(new, f) for f in RESET_FIELDS)
        when = "resets the layer at the next batch" if resets else "applies at the next batch"
        text = f"{', '.join(parts)}: {when}"
        self._set_message(text, "warning" if resets else "info")
        if resets:
            self.notify(text, title="reset", severity="warning", timeout=3, markup=False)
        self._refresh_text()

    def action_toggle(self) -> None:
        state = self.runner.state
        want = "paused" if state == "running" else "running"
        if state in ("finished", "stopped"):
            self._set_message(f"the run is {state}; r resets it", "warning")
            self._refresh_text()
            return
        self.runner.toggle()
        self._requested = (want, time.monotonic())
        self._refresh_text()

    def action_step(self) -> None:
        if self.runner.state == "running":
            self.runner.pause()
        self.runner.step()
        self._requested = ("paused", time.monotonic())
        self._set_message("one batch, then paused")
        self._refresh_text()

    def action_reset(self) -> None:
        self.runner.reset()
        self._set_message("reset requested: a fresh layer from the seed")
        self._refresh_text()

    def action_switch_mode(self) -> None:
        mode = self.runner.pending_config.mode
        self._change(mode="descent" if mode == "ff" else "ff")

    def action_switch_loss(self) -> None:
        loss = self.runner.pending_config.loss
        self._change(loss="logistic" if loss == "linear" else "linear")

    def action_lr_up(self) -> None:
        self._change(lr=self.runner.pending_config.lr * 2)

    def action_lr_down(self) -> None:
        self._change(lr=self.runner.pending_config.lr / 2)

    def action_batch_up(self) -> None:
        self._change(batch_size=self.runner.pending_config.batch_size * 2)

    def action_batch_down(self) -> None:
        self._change(batch_size=max(1, self.runner.pending_config.batch_size // 2))

    def action_width_up(self) -> None:
        self._change(width=self.runner.pending_config.width * 2)

    def action_width_down(self) -> None:
        self._change(width=max(2, self.runner.pending_config.width // 2))

    def action_smoothing(self) -> None:
        on = not self.view_options.smoothing
        self.view_options = View(smoothing=on, window=self.view_options.window)
        self._set_message(f"smoothing {'on, ' + str(self.view_options.window) + ' iterations' if on else 'off'}")
        self._refresh_text()
        self._hurry()

    def action_view(self, view: str) -> None:
        if view in VIEWS:
            self._set_view(view)

    def action_grid(self) -> None:
        self._set_view(self._last_single if self.view == "grid" else "grid")

    def action_edit(self) -> None:
        def applied(changes: dict | None) -> None:
            if changes:
                self._report_change(old, self.runner.pending_config, list(changes))

        old = self.runner.pending_config
        if self._editor is None:
            self._editor = EditorScreen(old, self._apply_changes)
            self.install_screen(self._editor, "editor")
        else:
            self._editor.load(old)
        self.push_screen("editor", applied)

    def _apply_changes(self, changes: dict[str, Any]) -> Config:
        return self.runner.set_params(**changes)

    def action_presets(self) -> None:
        def chosen(name: str | None) -> None:
            if name:
                self.action_preset(name)

        self.push_screen(PresetScreen(), chosen)

    def action_preset(self, name: str) -> None:
        """fig1a, fig1b: Theorem 1 at initialisation over the whole data set, in its own screen.
        fig2, fig3: the report's parameters for the run, from a fresh layer at iteration 0."""
        from engine.presets import PRESETS
        from engine.runner import FIXED_FIELDS

        if name in ("fig1a", "fig1b"):
            self.push_screen(Figure1Screen(name, self.dataset))
            return
        target = PRESETS[name].config
        current = self.runner.pending_config
        changes = {f: getattr(target, f) for f in target.as_dict()
                   if f not in FIXED_FIELDS and getattr(target, f) != getattr(current, f)}
        try:
            if changes:
                self.runner.set_params(**changes)
        except ConfigError as exc:
            self._set_message(f"preset {name} not applied: {exc}", "error")
            self._refresh_text()
            return
        self.runner.reset()
        if self.runner.state != "running":
            self.runner.resume()
        self.preset = name
        text = f"preset {name}: {PRESETS[name].title}; the layer was reset"
        self._set_message(text, "warning")
        self.notify(text, title="preset", severity="information", timeout=4, markup=False)
        self._refresh_text()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(HelpScreen([(k if k != "f1,question_mark" else "f1,?", text)
                                     for k, _, _, text, _ in KEYS]))

    def action_svg(self) -> None:
        folder = self.screenshot_dir or screenshot_folder()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = self.save_screenshot(path=str(folder))
        except OSError:
            path = self.save_screenshot(path=os.getcwd())
        self._set_message(f"screenshot saved: {path}")
        self.notify(path, title="SVG screenshot saved", timeout=8, markup=False)
        self._refresh_text()

    async def action_quit(self) -> None:
        self._stop_runner()
        self.exit()

    def _stop_runner(self) -> None:
        if self.runner is not None and not self._stopped:
            self._stopped = True
            self.runner.stop(timeout=0.8)

    def on_unmount(self) -> None:
        self._stop_runner()

    # -- command palette ------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for _key, action, _text, title, help_text in KEYS:
            if action == "quit":
                continue
            if action.startswith("view("):
                callback = partial(self.action_view, action.split("'")[1])
            else:
                callback = getattr(self, f"action_{action}")
            yield SystemCommand(title, help_text, callback)
        from engine.presets import PRESETS

        for name, preset in PRESETS.items():
            yield SystemCommand(f"Preset {name}", preset.title, partial(self.action_preset, name))
