"""Pilot tests of the live app: keys reach the engine and the screen shows the change."""
from __future__ import annotations

import asyncio
import functools
import html
import math
import re
import time

import numpy as np
import pytest
from textual.widgets import Tab, Tabs

from engine.config import Config, ConfigError
from engine.metrics import GroupStats, MetricsRecord
from engine.runner import FIXED_FIELDS, Event
from fftui.app import FFApp
from fftui.history import History, downsample, fmt, smooth
from fftui.panes import PANES, PaneSpec
from fftui.screens.editor import EditorScreen
from fftui.screens.help import HelpScreen
from fftui.widgets.pane import Pane
from fftui.widgets.plot import Figure


def run_async(fn):
    """Run an async test body in a fresh event loop (no asyncio plugin needed)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))
    return wrapper


# -- a fake engine ------------------------------------------------------------------------------
def make_group(name: str, rng: np.random.Generator, count: int, t: float) -> GroupStats:
    lhs = rng.normal(1.0 + t, 0.5, count)
    rhs = rng.normal(1.3 - 0.2 * t, 0.6, count)
    silenced = np.zeros(count, dtype=bool)
    silenced[: max(1, count // 32)] = True
    lhs[silenced] = np.nan
    rhs[silenced] = np.nan
    actual = np.where(silenced, -1, (rng.random(count) < 0.6 - 0.2 * t).astype(np.int8)).astype(np.int8)
    theorem = (lhs < rhs) & ~silenced
    valid = int((~silenced).sum())
    sparser = float((actual == 1).sum()) / valid
    th = float(theorem.sum()) / valid
    return GroupStats(
        name=name, count=count, goodness=1.0 + t, sparsity=0.4 + 0.1 * t, silenced=silenced.mean(),
        newly_silenced=0, valid=valid, sparser=sparser, theorem=th, general=min(1.0, th + 0.02),
        agree_theorem=0.9 - 0.1 * t, agree_general=0.92 - 0.1 * t, unresolved=0, zero_step=0,
        sparser_of_batch=float((actual == 1).sum()) / count, theorem_of_batch=float(theorem.sum()) / count,
        general_of_batch=float(theorem.sum()) / count, lhs=lhs.astype(np.float32),
        rhs=rhs.astype(np.float32), actual=actual, predicted_theorem=theorem, predicted_general=theorem,
    )


def make_records(n: int, mode: str = "ff", seed: int = 0, count: int = 64, start: int = 1) -> list[MetricsRecord]:
    rng = np.random.default_rng(seed)
    names = ("pos", "neg") if mode == "ff" else ("all",)
    out = []
    for i in range(start, start + n):
        t = i / (start + n)
        out.append(MetricsRecord(
            iteration=i, epoch=1 + i // 40, mode=mode, loss_name="linear", loss=-0.5 * t,
            groups={g: make_group(g, rng, count, t) for g in names},
            sign_flip=0.001 * (1 + t), l2_remainder=0.01 * (1 - t), step_time=0.01, metrics_time=0.01,
        ))
    return out


class FakeRunner:
    """The Runner's interface, recording every command; records and events are fed by the test."""

    def __init__(self, cfg: Config, dataset, records=(), state: str = "running") -> None:
        self.dataset = dataset
        self._config = cfg
        self._pending = cfg
        self.state = state
        self.iteration = 0
        self.dropped = 0
        self.calls: list = []
        self._records = list(records)
        self._events: list[Event] = []

    @property
    def config(self) -> Config:
        return self._config

    @property
    def pending_config(self) -> Config:
        return self._pending

    def start(self):
        self.calls.append("start")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.calls.append("stop")
        self.state = "stopped"

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")

    def toggle(self) -> None:
        self.calls.append("toggle")

    def step(self) -> None:
        self.calls.append("step")

    def reset(self) -> None:
        self.calls.append("reset")

    def set_params(self, **changes) -> Config:
        for name in changes:
            if name in FIXED_FIELDS:
                raise ConfigError(f"{name} is fixed for this run")
        new = self._pending.replace(**changes)
        self._pending = new
        self.calls.append(("set", dict(changes)))
        return new

    def apply(self) -> None:
        """What the engine does at the next batch."""
        self._config = self._pending

    def feed(self, records=(), events=()) -> None:
        self._records.extend(records)
        self._events.extend(events)

    def drain(self, limit=None):
        out, self._records = self._records, []
        if out:
            self.iteration = out[-1].iteration
        return out

    def drain_events(self):
        out, self._events = self._events, []
        return out


class FixedClock:
    def __call__(self) -> float:
        return 1000.0


_SVG_TEXT = re.compile(r'<text class="[^"]*" x="([0-9.]+)" y="[0-9.]+" textLength="[0-9.]+" '
                       r'clip-path="url\(#[^)]*-line-(\d+)\)">([^<]*)</text>')
_SVG_LINE = re.compile(r'<clipPath id="[^"]*-line-0">\s*<rect x="0" y="[0-9.]+" width="([0-9.]+)"')


def screen_text(app) -> str:
    """The screen as lines of text, read back from the app's SVG export (Textual's public API):
    each run of text sits at its cell, found from its x position."""
    svg = app.export_screenshot()
    width, height = app.size
    cell = float(_SVG_LINE.search(svg).group(1)) / width
    rows = [[" "] * width for _ in range(height)]
    for x, row, text in _SVG_TEXT.findall(svg):
        col = round(float(x) / cell)
        for i, ch in enumerate(html.unescape(text).replace("\xa0", " ")):
            if col + i < width:
                rows[int(row)][col + i] = ch
    return "\n".join("".join(r).rstrip() for r in rows)


async def wait_until(pilot, predicate, timeout: float = 10.0) -> bool:
    """Let the app run until ``predicate()`` holds, at most ``timeout`` seconds; whether it held."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await pilot.pause(0.02)
    return True


async def settle(pilot) -> None:
    """Let the app drain the fake engine, then draw every visible pane at once."""
    app = pilot.app
    assert await wait_until(pilot, lambda: app.runner is not None and not app.runner._records)
    for _ in range(3):  # a draw can change sizes (summary lines): draw, let it land, draw what is left
        await pilot.pause()
        app.draw_now()
    await pilot.pause()


def fake_app(dataset, cfg: Config | None = None, records=(), state: str = "running", app_class=FFApp, **kwargs):
    holder = {}

    def factory(c, d):
        holder["runner"] = FakeRunner(c, d, records, state)
        return holder["runner"]

    app = app_class(config=cfg or Config(width=64, batch_size=16), dataset=dataset, runner_factory=factory,
                    clock=FixedClock(), **kwargs)
    return app


# -- pure parts ---------------------------------------------------------------------------------
def test_history_is_bounded_and_starts_anew_on_reset():
    h = History(maxlen=50, batches=3)
    h.add(make_records(80))
    assert len(h) == 50
    assert h.iterations()[-1] == 80
    lhs, rhs = h.sides("pos")
    assert lhs.size == 3 * 64 and rhs.size == 3 * 64
    v = h.version
    h.add(make_records(5, start=1))
    assert len(h) == 5 and h.version > v
    h.add(make_records(2, mode="descent", start=6))
    assert h.groups == ("all",) and len(h) == 2


def test_smooth_and_downsample_skip_nan():
    y = np.array([1.0, np.nan, 3.0, 5.0])
    s = smooth(y, 2)
    assert s[0] == 1.0 and s[1] == 1.0 and s[2] == 3.0 and s[3] == 4.0
    x = np.arange(1000, dtype=float)
    xs, (ys,) = downsample(x, [np.where(x % 2 == 0, np.nan, x)], 10)
    assert xs.size == 10 and np.all(np.isfinite(ys))
    assert fmt(math.nan) == "–" and fmt(None) == "–" and fmt(0.5, percent=True) == "50.0 %"


# -- with a fake engine -------------------------------------------------------------------------
@run_async
async def test_keys_reach_the_engine_and_show(small_sample):
    app = fake_app(small_sample, records=make_records(30))
    async with app.run_test(size=(100, 30)) as pilot:
        runner = app.runner
        assert runner.calls[0] == "start"
        assert await wait_until(pilot, lambda: "it 30/" in screen_text(app))

        await pilot.press("space")
        assert "toggle" in runner.calls
        assert "→ paused" in screen_text(app)
        runner.state = "paused"
        assert await wait_until(pilot, lambda: "⏸ paused" in screen_text(app))

        await pilot.press("right_square_bracket")
        assert ("set", {"lr": 0.002}) in runner.calls
        assert "lr 0.002 at next batch" in screen_text(app)
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert runner.pending_config.lr == pytest.approx(0.0005)

        await pilot.press("b")
        assert runner.pending_config.batch_size == 32
        await pilot.press("B", "B")
        assert runner.pending_config.batch_size == 8

        await pilot.press("w")
        assert runner.pending_config.width == 128
        assert "resets the layer" in screen_text(app)
        await pilot.press("W", "W")
        assert runner.pending_config.width == 32

        await pilot.press("m")
        assert runner.pending_config.mode == "descent"
        await pilot.press("l")
        assert runner.pending_config.loss == "logistic"

        runner.apply()
        assert await wait_until(pilot, lambda: "descent · logistic · sgd · lr 0.0005 · N 8 · n 32" in screen_text(app))
        assert "at next batch" not in screen_text(app)

        await pilot.press("n")
        assert runner.calls[-1] == "step"
        await pilot.press("r")
        assert runner.calls[-1] == "reset"
    assert "stop" in runner.calls


@run_async
async def test_a_refused_value_changes_nothing(small_sample):
    app = fake_app(small_sample, cfg=Config(lr=8.0, width=64, batch_size=16))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("right_square_bracket")
        assert app.runner.pending_config.lr == 8.0
        assert "not applied: lr must be at most 10" in screen_text(app)


@run_async
async def test_panes_tabs_and_grid(small_sample):
    app = fake_app(small_sample, records=make_records(40))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        shown = [p.id for p in app.panes if p.display]
        assert shown == ["lhs"]
        assert "Theorem 2, positives" in screen_text(app)
        await pilot.press("2")
        await settle(pilot)
        assert [p.id for p in app.panes if p.display] == ["sparsening"]
        assert "positives: fraction sparser" in screen_text(app)
        await pilot.press("5")
        await pilot.pause()
        text = screen_text(app)
        assert "batch_size" in text and "normalize" in text
        await pilot.press("3")
        await settle(pilot)
        assert "Hoyer sparsity" in screen_text(app)
        await pilot.press("4")
        await settle(pilot)
        assert "agreement" in screen_text(app)
        await pilot.press("g")                 # the grid does not fit 80x24: still one pane
        await pilot.pause()
        assert [p.id for p in app.panes if p.display] == ["assumptions"]


@run_async
async def test_large_terminal_shows_every_pane(small_sample):
    app = fake_app(small_sample, records=make_records(40))
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        in_grid = {spec.id for spec in PANES if spec.grid}
        assert all(p.display for p in app.panes if p.id in in_grid)
        assert app.query_one("#params").display
        text = screen_text(app)
        for needle in ("Theorem 2, positives", "fraction sparser", "Hoyer sparsity", "agreement", "theta"):
            assert needle in text


@run_async
async def test_the_grid_and_the_sidebar_follow_the_terminal_size(small_sample):
    app = fake_app(small_sample, records=make_records(10))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        params = app.query_one("#params")
        tabs = app.query_one("#tabs")
        # FFApp.GRID_SIZES: 152x47, 158x43, 230x41; the sidebar takes 38 columns more
        for size, grid, sidebar in [((200, 50), True, True), ((160, 50), True, False),
                                    ((160, 42), False, False), ((151, 47), False, False),
                                    ((152, 47), True, False), ((196, 43), True, True)]:
            await pilot.resize_terminal(*size)
            await pilot.pause()
            assert app.size == size
            assert [p.id for p in app.panes if p.display] == (
                ["lhs", "sparsening", "sparsity", "assumptions"] if grid else ["sparsening"]), size
            assert params.display == sidebar and tabs.display == (not grid), size
        await pilot.press("g")                 # from the grid, g goes back to the last single pane
        await pilot.pause()
        assert app.view == "sparsening" and not params.display


@run_async
async def test_smoothing_toggle_redraws(small_sample):
    app = fake_app(small_sample, records=make_records(60))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        assert "raw, per batch" in screen_text(app)
        await pilot.press("s")
        await settle(pilot)
        assert app.view_options.smoothing
        assert "smoothed over 25 iterations" in screen_text(app)


@run_async
async def test_descent_mode_has_one_group(small_sample):
    app = fake_app(small_sample, cfg=Config(mode="descent", width=64, batch_size=16),
                   records=make_records(20, mode="descent"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "Theorem 1, all samples" in text
        assert "positives" not in text


@run_async
async def test_engine_error_is_shown_and_the_app_lives(small_sample):
    app = fake_app(small_sample, records=make_records(5))
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_until(pilot, lambda: len(app.history) == 5)
        app.runner.state = "error"
        message = "the loss became nan at iteration 6"
        app.runner.feed(events=[Event("error", message, 6)])
        assert await wait_until(pilot, lambda: "engine error: the loss became nan at iteration 6" in screen_text(app))
        await pilot.press("left_square_bracket")
        assert app.runner.pending_config.lr == pytest.approx(0.0005)
        await pilot.press("space")
        assert app.runner.calls[-1] == "toggle"
        app.runner.state = "running"
        assert await wait_until(pilot, lambda: "engine error" not in screen_text(app))


@run_async
async def test_nan_and_silenced_are_shown_honestly(small_sample):
    rec = make_records(1)[0]
    g = rec.groups["pos"]
    blank = g.replace(sparser=math.nan, theorem=math.nan, general=math.nan, valid=0,
                      lhs=np.full(g.count, np.nan, np.float32), rhs=np.full(g.count, np.nan, np.float32),
                      silenced=1.0)
    rec = rec.replace(groups={"pos": blank, "neg": rec.groups["neg"]})
    app = fake_app(small_sample, records=[rec])
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert "every sample silenced" in screen_text(app)
        await pilot.press("2")
        await settle(pilot)
        text = screen_text(app)
        assert "pos  sparser – · theorem – · general – · valid 0 · silenced 64" in text


@run_async
async def test_outcomes_within_rounding_are_named(small_sample):
    rec = make_records(1)[0]
    g = rec.groups["neg"]
    fuzzy = g.replace(unresolved=7)
    rec = rec.replace(groups={"pos": rec.groups["pos"], "neg": fuzzy})
    app = fake_app(small_sample, records=[rec])
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        text = screen_text(app)
        assert "7 below rounding" in text
        assert text.count("below rounding") == 1  # the other group has none


@run_async
async def test_help_screen_lists_every_key(small_sample):
    app = fake_app(small_sample)
    async with app.run_test(size=(100, 44)) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for needle in ("space", "Step one batch", "Double the learning rate", "Edit parameters", "ctrl+s", "ctrl+p"):
            assert needle in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark")
        assert not isinstance(app.screen, HelpScreen)


@run_async
async def test_every_action_is_in_the_palette_and_footer(small_sample):
    app = fake_app(small_sample)
    async with app.run_test(size=(100, 30)):
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for title in ("Pause or resume", "Step one batch", "Reset", "Switch mode", "Switch loss",
                      "Double the learning rate", "Halve the learning rate", "Double the batch size",
                      "Halve the batch size", "Double the width", "Halve the width", "Edit parameters",
                      "Toggle smoothing", "Save an SVG screenshot", "Help", "Show all panes",
                      "Run a preset of the report", "Preset fig1a", "Preset fig1b", "Preset fig2", "Preset fig3"):
            assert title in titles
        shown = {b.binding.key for b in app.active_bindings.values() if b.binding.show}
        for key in ("space", "n", "r", "m", "l", "right_square_bracket", "left_square_bracket", "b", "B",
                    "w", "W", "e", "s", "p", "ctrl+s", "q", "1", "2", "3", "4", "5", "g"):
            assert key in shown


@run_async
async def test_palette_command_acts(small_sample):
    app = fake_app(small_sample)
    async with app.run_test(size=(100, 30)) as pilot:
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Double the batch size")
        command.callback()
        await pilot.pause()
        assert app.runner.pending_config.batch_size == 32


@run_async
async def test_editor_refuses_a_bad_value_inline(small_sample):
    app = fake_app(small_sample)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, EditorScreen)
        app.screen.query_one("#field-lr").value = "abc"
        await pilot.pause()
        assert "lr must be a number" in screen_text(app)
        await pilot.press("enter")
        assert isinstance(app.screen, EditorScreen)
        assert "not applied" in screen_text(app)
        assert not any(c[0] == "set" for c in app.runner.calls if isinstance(c, tuple))

        app.screen.query_one("#field-lr").value = "0.01"
        await pilot.pause()
        assert "not applied" not in screen_text(app)  # the error went with the value it was about
        app.screen.query_one("#field-width").value = "96"
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, EditorScreen)
        assert app.runner.pending_config.lr == 0.01 and app.runner.pending_config.width == 96
        assert "resets the layer" in screen_text(app)

        await pilot.press("e")
        await pilot.pause()
        assert app.screen.query_one("#field-lr").value == "0.01"
        assert app.screen.query_one("#field-device").disabled
        await pilot.press("escape")
        assert not isinstance(app.screen, EditorScreen)


@run_async
async def test_screenshot_saves_svg_and_shows_path(small_sample, tmp_path):
    app = fake_app(small_sample, records=make_records(3), screenshot_dir=tmp_path / "shots")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+s")
        await pilot.pause()
        files = list((tmp_path / "shots").glob("*.svg"))
        assert len(files) == 1 and files[0].read_text().startswith("<svg")
        assert str(files[0]) in app._message[0]


@run_async
async def test_sample_data_is_labelled(small_sample):
    app = fake_app(small_sample)
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_until(pilot, lambda: "not full MNIST" in screen_text(app))


# -- with a small real engine -------------------------------------------------------------------


@run_async
async def test_real_engine_pause_step_and_change(small_sample):
    cfg = Config(width=32, batch_size=8, iters=100_000)
    app = FFApp(config=cfg, dataset=small_sample)
    async with app.run_test(size=(100, 30)) as pilot:
        runner = app.runner
        assert await wait_until(pilot, lambda: app.history.total >= 3)
        await pilot.press("space")
        assert await wait_until(pilot, lambda: runner.state == "paused")
        assert await wait_until(pilot, lambda: "⏸ paused" in screen_text(app))
        it = runner.iteration
        await pilot.press("n")
        assert await wait_until(pilot, lambda: runner.iteration == it + 1)
        assert runner.state == "paused"
        await pilot.press("right_square_bracket")
        assert await wait_until(pilot, lambda: runner.config.lr == 0.002)
        await pilot.press("5")
        assert await wait_until(pilot, lambda: "0.002" in screen_text(app) and "→" not in
                                screen_text(app).split("lr", 1)[1].split("\n", 1)[0])
        await pilot.press("w")
        assert await wait_until(pilot, lambda: runner.config.width == 64)
        assert "the layer was reset" in app._message[0] or "resets" in app._message[0]
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#field-batch_size").value = "0"
        await pilot.pause()
        await pilot.press("enter")
        assert isinstance(app.screen, EditorScreen)
        assert "batch_size must be between 1 and 65536" in screen_text(app)
        await pilot.press("escape")
        assert runner.config.batch_size == 8
        assert runner.pending_config.batch_size == 8
        await pilot.press("space")
        assert await wait_until(pilot, lambda: runner.state == "running")
        t0 = time.monotonic()
        await pilot.press("q")
    assert time.monotonic() - t0 < 1.0
    assert not runner.alive


@run_async
async def test_real_engine_error_pauses_and_app_survives(small_sample):
    cfg = Config(width=32, batch_size=8, lr=10.0, loss="linear", iters=100_000)
    app = FFApp(config=cfg, dataset=small_sample)
    async with app.run_test(size=(100, 30)) as pilot:
        runner = app.runner
        # from seed 0, the loss overflows within the first few dozen batches (at 19 here)
        assert await wait_until(pilot, lambda: runner.state == "error", 60)
        assert await wait_until(pilot, lambda: "engine error" in screen_text(app))
        await pilot.press("r")
        assert await wait_until(pilot, lambda: runner.state == "paused")
        assert await wait_until(pilot, lambda: "engine error" not in screen_text(app))
        assert app.is_running


@run_async
async def test_theme_change_redraws_and_dropped_records_show(small_sample):
    app = fake_app(small_sample, records=make_records(30))
    async with app.run_test(size=(100, 30)) as pilot:
        plot = app.panes[0].plots[0]
        assert await wait_until(pilot, lambda: len(app.history) == 30 and plot.builds and not plot.pending)
        builds = plot.builds
        app.theme = "textual-light"
        assert await wait_until(pilot, lambda: plot.builds > builds)
        app.runner.dropped = 7
        assert await wait_until(pilot, lambda: "dropped 7" in screen_text(app))


@run_async
async def test_mode_switch_clears_the_panes(small_sample):
    app = fake_app(small_sample, records=make_records(30))
    async with app.run_test(size=(80, 24)) as pilot:
        assert await wait_until(pilot, lambda: len(app.history) == 30)
        assert app.history.groups == ("pos", "neg")
        await pilot.press("m")
        app.runner.apply()
        app.runner.feed(make_records(3, mode="descent"))
        await settle(pilot)
        assert app.history.groups == ("all",) and len(app.history) == 3
        assert "Theorem 1, all samples" in screen_text(app)


# -- the report's experiments from the app ------------------------------------------------------
@run_async
async def test_preset_key_applies_the_reports_parameters(small_sample):
    from engine.presets import PRESETS
    from fftui.screens.presets import PresetScreen

    app = fake_app(small_sample, records=make_records(5))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, PresetScreen)
        await pilot.press("down", "down", "down", "enter")  # fig3
        await pilot.pause()
        runner = app.runner
        target = PRESETS["fig3"].config
        for field in ("mode", "loss", "optimizer", "lr", "momentum", "width", "batch_size", "iters"):
            assert getattr(runner.pending_config, field) == getattr(target, field), field
        assert "reset" in runner.calls
        assert "preset fig3" in app._message[0]


@run_async
async def test_preset_fig2_from_the_palette(small_sample):
    app = fake_app(small_sample)
    async with app.run_test(size=(100, 30)) as pilot:
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Preset fig2")
        command.callback()
        await pilot.pause()
        cfg = app.runner.pending_config
        assert (cfg.mode, cfg.width, cfg.batch_size, cfg.iters) == ("descent", 2000, 128, 938)
        assert "reset" in app.runner.calls


@run_async
async def test_fig1a_screen_counts_every_sample(small_sample):
    from fftui.screens.figure1 import Figure1Screen

    app = fake_app(small_sample)
    async with app.run_test(size=(120, 40)) as pilot:
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Preset fig1a")
        command.callback()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, Figure1Screen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        result = screen.results[0]
        assert result.samples == small_sample.size
        summary = str(screen.query_one("#fig1-summary").render())
        assert f"of {small_sample.size:,}" in summary
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, Figure1Screen)


@run_async
async def test_fig1b_screen_from_the_command_line_preset(small_sample):
    from fftui.screens.figure1 import Figure1Screen

    app = fake_app(small_sample, preset="fig1b")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await computed_screen(app, pilot, Figure1Screen)
        assert [r.batch_size for r in screen.results] == [2, 4, 8, 16, 32, 64, 128]


async def computed_screen(app, pilot, kind):
    """The screen on top once it is a `kind` and its workers have finished."""
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, kind)
    await app.workers.wait_for_complete()
    await pilot.pause()
    return screen


# -- the registries -----------------------------------------------------------------------------
class ThrowawayPane(Pane):
    """A pane that only this test registers."""

    PLOTS = 1

    def fill(self, history, view) -> None:
        self.plots[0].show(Figure(note="throwaway figure"))
        self.set_summary(f"throwaway pane: {len(history)} iterations")


THROWAWAY = PaneSpec("throwaway", "7", "Throwaway", "Throwaway pane", "Show the throwaway pane",
                     "a pane registered by a test only", ThrowawayPane)


@run_async
async def test_a_registered_pane_appears_everywhere(small_sample):
    registry = (*PANES, THROWAWAY)  # a copy: the real registry stays as it is
    app = fake_app(small_sample, records=make_records(12), app_class=FFApp.with_panes(registry))
    async with app.run_test(size=(110, 70)) as pilot:  # narrow: one pane at a time; tall: all of the help
        # compose: the widget, titled from the registry
        pane = app.query_one("#throwaway", ThrowawayPane)
        assert pane.border_title == "7 Throwaway pane"
        # tabs
        tab = app.query_one("#tabs", Tabs).query_one("#tab-throwaway", Tab)
        assert str(tab.label) == "7 Throwaway"
        # bindings: the footer shows the key and the key shows the pane alone
        bound = {b.binding.key: b.binding for b in app.active_bindings.values()}
        assert bound["7"].id == "fftui.view_throwaway" and bound["7"].description == "Throwaway"
        await pilot.press("7")
        await settle(pilot)
        assert app.view == "throwaway"
        assert [p.id for p in app.panes if p.display] == ["throwaway"]
        assert "throwaway pane: 12 iterations" in screen_text(app)
        await pilot.press("1")
        await pilot.pause()
        assert not pane.display
        # palette: the command shows the pane
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Show throwaway")
        assert command.help == "Show the throwaway pane"
        command.callback()
        await pilot.pause()
        assert app.view == "throwaway" and pane.display
        # help: the key and the pane
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.pause()
        help_text = screen_text(app)
        assert re.search(r"│ +7 Throwaway +a pane registered by a test only", help_text)
        assert re.search(r"│ +7 +Show throwaway", help_text)
    # the real app is untouched
    assert FFApp.PANES == PANES and THROWAWAY not in FFApp.PANES
    assert all(k.name != "view_throwaway" for k in FFApp.KEYS)
    plain = fake_app(small_sample)
    async with plain.run_test(size=(100, 30)):
        keys = {b.binding.key for b in plain.active_bindings.values()}
        assert "6" in keys and "7" not in keys
        assert not plain.query("#throwaway")


@run_async
async def test_a_registry_without_a_pane_drops_its_key(small_sample):
    registry = tuple(spec for spec in PANES if spec.id != "assumptions")
    app = fake_app(small_sample, app_class=FFApp.with_panes(registry))
    async with app.run_test(size=(100, 30)) as pilot:
        keys = {b.binding.key for b in app.active_bindings.values()}
        assert "4" not in keys and {"1", "2", "3", "5", "q", "ctrl+q"} <= keys
        assert not app.query("#assumptions") and not app.query("#tab-assumptions")
        await pilot.press("4")
        assert app.view == "lhs"


def test_every_key_names_an_action_of_the_app_with_a_unique_id():
    ids = [key.id for key in FFApp.KEYS]
    assert len(set(ids)) == len(ids) and all(i.startswith("fftui.") for i in ids)
    for key in FFApp.KEYS:
        assert callable(getattr(FFApp, f"action_{key.action}")), key
    assert [k.keys for k in FFApp.KEYS if k.action == "view"] == [spec.key for spec in PANES]


def test_actions_do_not_override_textuals_own():
    from textual.app import App
    from textual.screen import Screen

    textuals = {name for cls in (App, Screen) for name in dir(cls) if name.startswith("action_")}
    ours = {name for cls in FFApp.__mro__ if cls.__module__.startswith("fftui.")
            for name in vars(cls) if name.startswith("action_")}
    assert {"action_toggle_run", "action_toggle_mode", "action_view"} <= ours
    # quit on purpose: it stops the engine's thread before leaving
    assert ours & textuals == {"action_quit"}


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
def test_q_and_ctrl_c_quit_and_stop_the_engine(small_sample, key):
    @run_async
    async def body():
        app = fake_app(small_sample)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            runner = app.runner
            await pilot.press(key)
            await pilot.pause()
        assert app.return_code == 0 and runner.state == "stopped" and not app.is_running

    body()


def test_figure_1_preset_in_the_app_trains_nothing_behind_its_screen(small_sample):
    from engine.presets import PRESETS

    @run_async
    async def body():
        app = FFApp(config=PRESETS["fig1a"].config.replace(width=32, epochs=0), dataset=small_sample,
                    preset="fig1a")
        async with app.run_test(size=(100, 30)) as pilot:
            await app.workers.wait_for_complete()
            assert await wait_until(pilot, lambda: app.runner.state == "paused")
            await pilot.pause(0.5)
            assert app.runner.iteration == 0
            await pilot.press("escape")
            await pilot.press("space")
            assert await wait_until(pilot, lambda: app.runner.iteration > 0)
            await pilot.press("q")

    body()


@pytest.mark.parametrize("key", ["space", "n"])
def test_space_and_n_on_a_finished_run_say_the_same_and_change_nothing(small_sample, key):
    @run_async
    async def body():
        app = fake_app(small_sample, state="finished")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            runner = app.runner
            await pilot.press(key)
            await pilot.pause()
            assert app._message == ("the run is finished; r resets it", "warning")
            assert runner.state == "finished"
            await pilot.press("q")

    body()


@run_async
async def test_fig1a_screen_is_headed_with_the_width_and_batch_size_it_computes(small_sample):
    from fftui.screens.figure1 import Figure1Screen

    app = fake_app(small_sample, cfg=Config(width=48, batch_size=32), preset="fig1a")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await computed_screen(app, pilot, Figure1Screen)
        assert screen.results[0].width == 48 and screen.results[0].batch_size == 32
        title = str(screen.query_one("#fig1-title").render())
        assert "n = 48, N = 32" in title and "128" not in title
        assert "n = 48" in str(screen.query_one("#fig1-summary").render())
