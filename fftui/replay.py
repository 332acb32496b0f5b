"""`fftui open RUN [--compare RUN2 ...]`: a recorded run in the live app's panes, with a scrubber.

`ReplayApp` is `fftui.app.FFApp` whose runner is a stand-in that trains nothing (`ReplayRunner`) and
whose history is the recording cut at the scrubbed iteration (`fftui.recording.RecordedHistory`):
left/right step one iteration, page up/down jump a twentieth of the run, home/end go to the first
and the last batch. The LHS/RHS histograms show the scrubbed batch's per-sample arrays (or those of
the last batch before it that kept them). The Sparsening and Sparsity panes draw the runs given with
--compare beside it. Keys that steer training do nothing and say so in one line. A stack's
recording: `>` and `<` (fftui/layering.py, the live app's keys) choose the layer every pane shows.

The first frame comes at once; the summary and the arrays are read behind it (the app's loading
thread), and every series is downsampled to its plot's width when drawn."""
from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, cast

from rich.text import Text
from textual.app import App
from textual.screen import Screen

from engine.config import VIEW_FIELDS, Config, ConfigError

from . import keys
from .app import FFApp
from .keys import Key
from .panes import PANES, PaneSpec, pane_keys
from .recording import RecordedHistory, Recording, load, recorded_config
from .widgets.status import StatusBar, config_line

SCRUB_KEYS: tuple[Key, ...] = (
    Key("left", "scrub", "Back", "One iteration back", "The recording one batch earlier", args=("back",),
        display="←"),
    Key("right", "scrub", "On", "One iteration on", "The recording one batch later", args=("on",), display="→"),
    Key("pageup", "scrub", "Jump back", "Jump back", "A twentieth of the recording earlier", args=("page_back",),
        display="PgUp"),
    Key("pagedown", "scrub", "Jump on", "Jump on", "A twentieth of the recording later", args=("page_on",),
        display="PgDn"),
    Key("home", "scrub", "First", "First iteration", "The recording's first batch", args=("first",), display="Home"),
    Key("end", "scrub", "Last", "Last iteration", "The recording's last batch", args=("last",), display="End"),
)
"""The scrubber's keys."""

STEERING = ("toggle_run", "step", "reset", "toggle_mode", "switch_loss", "lr_up", "lr_down", "batch_up",
            "batch_down", "width_up", "width_down", "edit", "presets", "evaluate")
"""Actions of the live app that steer or measure training (t evaluates the network now): a recording
refuses them and neither its footer nor its help offers them; its recorded test errors show in the
Layers pane."""

REPLAY_PANES: tuple[PaneSpec, ...] = PANES
"""The live app's panes (Sparsening and Sparsity draw the runs compared, fftui/widgets/compare.py)."""


def refusal_line(table: Sequence[Key] = keys.key_table(())) -> str:
    """The one line said when a key that steers training is pressed in a recording."""
    shown = [k.display or k.keys.split(",")[0] for k in table if k.action in STEERING]
    return f"a recording: {', '.join(shown)} do nothing (they steer training); ←/→, PgUp/PgDn, Home/End move through it"


class ReplayRunner:
    """The engine runner's interface over a recording: nothing trains; only the view parameters
    (the smoothing window) change, the others raise ConfigError."""

    def __init__(self, config: Config, recording: Recording) -> None:
        self._config = config
        self.recording = recording
        self.state = "recording"
        self.dropped = 0

    @property
    def config(self) -> Config:
        """The configuration of the batch shown (`RecordedHistory.config`), with the view's own
        parameters (the smoothing window) as set here."""
        shown = self.recording.main.config
        if shown is None:
            return self._config
        return shown.replace(**{name: getattr(self._config, name) for name in VIEW_FIELDS})

    @property
    def pending_config(self) -> Config:
        return self.config

    @property
    def iteration(self) -> int:
        return self.recording.main.last_iteration or 0

    def set_params(self, **changes: Any) -> Config:
        steering = sorted(set(changes) - VIEW_FIELDS)
        if steering:
            raise ConfigError(f"a recording's {', '.join(steering)} cannot change")
        self._config = self._config.replace(**changes)
        return self._config

    def start(self) -> ReplayRunner:
        return self

    def stop(self, timeout: float = 0.0) -> None:
        self.state = "stopped"

    def drain(self, limit: int | None = None) -> list:
        return []

    def drain_events(self) -> list:
        return []


@dataclass(frozen=True)
class RecordingInfo:
    """What the status bar of a recording shows."""

    name: str
    status: str
    iteration: int | None
    row: int
    rows: int
    last: int | None
    epoch: int | None
    config: Config
    data: str
    device: str
    sides: str
    reading: str
    compare: tuple[str, ...]
    message: str
    kind: str
    layer: str = ""  # "layer 2 of 3" for a stack (fftui/layering.py), "" for one layer


def recording_text(info: RecordingInfo, styles: dict[str, str]) -> Text:
    """The four lines of a recording's status bar: what is shown and where the scrubber is; the
    parameters; the data, the device, where the histograms come from, the runs compared; the message."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(" ⏺ recording ", style=styles.get("bold $accent", "bold"))
    text.append(f" {info.name} · {info.status} · ")
    if info.iteration is None:
        text.append("no batch recorded" if info.rows == 0 else "reading…")
    else:
        text.append(f"iteration {info.iteration:,} of {info.last or 0:,}", style="bold")
        numbered = (info.iteration, info.last) == (info.row + 1, info.rows)  # batch k is iteration k
        where = [] if numbered else [f"batch {info.row + 1:,} of {info.rows:,}"]
        where += [f"epoch {info.epoch}"] if info.epoch else []
        text.append(f" ({', '.join(where)})" if where else "")
        if info.layer:
            text.append(f" · {info.layer}", style="bold")
        if info.reading:
            text.append(f" · {info.reading}", style="italic")
    text.append("\n ")
    text.append(config_line(info.config, info.config)[0])
    text.append("\n data ", style="bold")
    text.append(f"{info.data} · device {info.device}")
    if info.sides:
        text.append(f" · {info.sides}")
    if info.compare:
        text.append(" · compared with " + ", ".join(info.compare))
    text.append("\n ")
    kind_style = {"error": "bold $error", "warning": "bold $warning"}.get(info.kind)
    message = info.message or "←/→ one iteration · PgUp/PgDn jump · Home/End · F1/? help"
    text.append(message, style=styles.get(kind_style, "bold") if kind_style else "italic")
    return text


class RecordingBar(StatusBar):
    """The status bar of a recording (`recording_text`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: RecordingInfo | None = None

    def _theme_changed(self, _theme: Any) -> None:
        if self._shown is not None:
            self._text = recording_text(self._shown, self._styles())
        self._strips = None
        self.refresh()

    def show_recording(self, info: RecordingInfo) -> bool:
        """Show info; whether it changed."""
        if info == self._shown:
            return False
        self._shown = info
        self._text = recording_text(info, self._styles())
        self._strips = None
        self.refresh()
        return True


_LIVE_KEYS = keys.key_table(pane_keys(REPLAY_PANES))


class _MainScreen(Screen):
    """The replay's main screen: no widget takes the focus (the arrow keys, page up/down, home and
    end go to the scrubber), also when a screen on top of it closes."""

    AUTO_FOCUS = ""  # not None, which would mean the app's default: focus the first focusable widget


class ReplayApp(FFApp, inherit_bindings=False):
    """A recorded run (engine.store.RunReader) in the live app's panes, with a scrubber; ``compare``:
    runs drawn beside it in the Sparsening and Sparsity panes. The summaries and arrays are read in
    the loading thread behind the first frame; a StoreError there ends the app (``load_error``)."""

    PANES: ClassVar[tuple[PaneSpec, ...]] = REPLAY_PANES
    KEYS: ClassVar[tuple[Key, ...]] = (*SCRUB_KEYS, *(k for k in _LIVE_KEYS if k.action not in STEERING))
    # App's own keys, the scrubber's and the live app's: the steering keys stay bound, to be refused
    BINDINGS = [*App.BINDINGS, *keys.bindings((*SCRUB_KEYS, *_LIVE_KEYS))]
    PLOT_INTERVAL = 0.1   # nothing trains: the plots may follow the scrubber closely
    PLOT_GAP = 0.05
    PLOT_BUDGET = 0.5
    PLOT_BURST = 0.3
    REST_AFTER = 1.0      # seconds after the first part at most before the rest of the summary is read

    def __init__(self, run: Any, compare: Sequence[Any] = (), **kwargs: Any) -> None:
        self.run_reader = run
        self.compared = list(compare)
        self.recording: Recording | None = None
        self._rest: tuple[Any, int, float] | None = None  # the summary's parts still to read, when to
        reader: Any = lambda: load(run, self.compared, progressive=True)  # noqa: E731 - the "dataset" is the recording
        super().__init__(config=recorded_config(run), loader=reader, runner_factory=cast(Any, ReplayRunner),
                         **kwargs)

    def compose(self):
        for widget in super().compose():
            yield RecordingBar(id="status") if type(widget) is StatusBar else widget

    def get_default_screen(self) -> Screen:
        return _MainScreen(id="_default")

    @property
    def recorded(self) -> RecordedHistory | None:
        """The recording shown, once read."""
        return self.recording.main if self.recording is not None else None

    def _start_engine(self, recording: Any, runner: Any) -> None:
        if self._stopped:
            return
        self.recording = recording
        self.runner = runner
        history = recording.main
        history.others = recording.others
        self.history = history  # RecordedHistory serves History's interface to the panes
        self._set_message(recording.note, "warning" if recording.note else "info")
        self.set_focus(None)  # the arrow keys go to the scrubber, not to the tab row
        self._new_run()
        self.sync_layers()
        self._tick()
        self._refresh_text()
        if recording.rest is not None:  # read once the first frame with data is drawn (the GIL is shared)
            self._rest = (recording.rest, self.plots.builds, time.monotonic() + self.REST_AFTER)

    def _read_rest(self, parts: Any) -> None:
        """Read the rest of the summary in a thread; each part joins the recording in the app's thread."""
        def deliver(*args: Any) -> None:
            if self.is_running:
                with contextlib.suppress(RuntimeError):  # the app has ended
                    self.call_from_thread(self._extend, *args)

        def work() -> None:
            try:
                for part in parts:
                    deliver(part)
            except Exception as exc:  # a file that turned unreadable meanwhile: what was read stays
                deliver(None, f"reading stopped: {exc}".splitlines()[0])
                return
            deliver(None)

        threading.Thread(target=work, name="fftui-read", daemon=True).start()

    def _extend(self, part: Any, problem: str = "") -> None:
        history = self.recorded
        if history is None or self._stopped:
            return
        history.extend(part)
        if part is None:
            warnings = [*self.run_reader.warnings, *([problem] if problem else [])]
            if warnings:
                self._set_message("; ".join(warnings), "warning")
        self._refresh_text()

    def _tick(self) -> None:
        runner = self.runner
        if runner is None or self._stopped:
            return
        if self._rest is not None:
            parts, builds, deadline = self._rest
            shown = sum(1 for pane in self.panes if pane.display for plot in pane.plots if plot.display)
            if self.plots.builds - builds >= shown or time.monotonic() > deadline:
                self._rest = None
                self._read_rest(parts)
        window = runner.pending_config.smooth
        if window != self.view_options.window:
            self.view_options = replace(self.view_options, window=window)
        self._maybe_draw()

    def _refresh_text(self) -> None:
        if not self._mounted:
            return
        history = self.recorded
        run = self.run_reader
        description = run.config.get("dataset") or {}
        sides = reading = ""
        iteration = epoch = None
        row = rows = 0
        if history is not None:
            row, rows = history.cursor, history.rows
            if not history.complete:
                reading = f"reading: {rows:,} of {int(run.info.get('records') or 0):,} batches"
            iteration = history.last_iteration
            latest = history.latest
            epoch = latest.epoch if latest is not None else None
            if iteration is not None and history.groups:
                kept = history.sides_iteration(history.groups[0])
                sides = (f"histograms: {history.sides_missing(history.groups[0])}" if kept is None else
                         f"histograms: iteration {kept:,}, the last batch before it that kept its arrays"
                         if kept != iteration else "")
        info = RecordingInfo(
            name=run.name, status=run.status, iteration=iteration, row=row, rows=rows,
            last=self._last_iteration(), epoch=epoch,
            config=self.runner.config if self.runner is not None else self.config,
            data=str(description.get("description") or self.config.data), device=str(run.config.get("device", "?")),
            sides=sides, reading=reading,
            compare=tuple(o.label for o in history.others) if history is not None else (),
            message=self._message[0] if history is not None else f"reading {run.name}…", kind=self._message[1],
            layer=self.layer_text() if history is not None else "")
        bar = self._status
        if isinstance(bar, RecordingBar):
            bar.show_recording(info)
        self._params.show(info.config, info.config)
        self.banner = ""

    def _last_iteration(self) -> int | None:
        """The recording's last iteration: the last read, or run.json's while the summary is read."""
        history = self.recorded
        if history is None or not history.rows:
            return None
        if not history.complete and isinstance(self.run_reader.info.get("iteration"), int):
            return max(int(self.run_reader.info["iteration"]), history.iteration_at(history.rows - 1))
        return history.iteration_at(history.rows - 1)

    # -- the scrubber ---------------------------------------------------------------------------
    def page_rows(self) -> int:
        """Batches a page key jumps: a twentieth of the recording, at least one."""
        history = self.recorded
        return max(1, history.rows // 20) if history is not None else 1

    def action_scrub(self, step: str) -> None:
        """Move the scrubber: back, on (one batch), page_back, page_on, first, last."""
        history = self.recorded
        if history is None:
            self._set_message("still reading the recording", "warning")
            self._refresh_text()
            return
        c, page = history.cursor, self.page_rows()
        target = {"back": c - 1, "on": c + 1, "page_back": c - page, "page_on": c + page, "first": 0,
                  "last": history.rows - 1}[step]
        if history.move_to(target):
            self.plots.hurry()
        self._refresh_text()

    def scrub_to(self, iteration: int) -> None:
        """Put the scrubber at the last batch at or before an iteration."""
        history = self.recorded
        if history is not None and history.move_to(history.row_of(iteration)):
            self.plots.hurry()
            self._refresh_text()

    def _refuse(self, *args: Any) -> None:
        self._set_message(refusal_line(), "warning")
        self._refresh_text()

    action_toggle_run = action_step = action_reset = action_toggle_mode = action_switch_loss = _refuse
    action_lr_up = action_lr_down = action_batch_up = action_batch_down = _refuse
    action_width_up = action_width_down = action_edit = action_presets = _refuse

    def action_preset(self, name: str) -> None:
        self._refuse()


def open_command(args: argparse.Namespace) -> int:
    """Run `fftui open`; the exit status: 2 and one line when a run cannot be opened."""
    from engine.store import RunReader, StoreError

    from .runs_tools import locate
    from .sweep.definition import SweepError
    from .sweep.overlay import is_sweep, setting_runs

    try:
        if is_sweep(args.run):  # a sweep: each setting's mean over its seeds, with a band
            run, others, _ = setting_runs(args.run)
        else:
            run = RunReader(locate(args.run))
            others = []
        others += [RunReader(locate(spec)) for spec in args.compare]
    except (StoreError, SweepError) as exc:
        print(f"fftui open: {exc}", file=sys.stderr)
        return 2
    app = ReplayApp(run, others)
    app.run()
    if app.load_error is not None:
        error = app.load_error
        print(f"fftui open: {error}".splitlines()[0], file=sys.stderr)
        return 2 if isinstance(error, StoreError) else 1
    return 0 if not app.return_code else 1
