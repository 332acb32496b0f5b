"""The live app's start and end: the first frame before the data, a failed load, NO_COLOR, the
recovery hints, the flags the app honours or refuses, and --out written behind the training."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import threading

import pytest
import torch
from rich.segment import Segment
from textual.color import Color
from textual.filter import Monochrome

from engine.config import Config
from engine.data import DataError
from engine.runner import Event, Runner, wait_for
from engine.trainer import OutOfMemory, Overflow, Trainer, allocation_size
from fftui import lifecycle
from fftui.app import FFApp
from fftui.cli import AppStart, config_from_args, failure, main, parse
from test_app import FakeRunner, FixedClock, fake_app, make_records, run_async, screen_text, wait_until


class GatedLoader:
    """A loader that blocks until the test opens the gate, like a slow disk or download."""

    def __init__(self, dataset=None, error: BaseException | None = None) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.dataset = dataset
        self.error = error
        self.thread: threading.Thread | None = None

    def __call__(self):
        self.thread = threading.current_thread()
        self.started.set()
        assert self.gate.wait(30)
        if self.error is not None:
            raise self.error
        return self.dataset


def loading_app(loader, **kwargs) -> FFApp:
    runners: list[FakeRunner] = []

    def factory(cfg, dataset):
        runners.append(FakeRunner(cfg, dataset, make_records(4)))
        return runners[-1]

    return FFApp(config=Config(width=64, batch_size=16), loader=loader, runner_factory=factory,
                 clock=FixedClock(), **kwargs)


# -- the first frame comes before the data --------------------------------------------------------
@run_async
async def test_first_frame_shows_loading_before_the_data(small_sample):
    loader = GatedLoader(small_sample)
    app = loading_app(loader)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await wait_until(pilot, loader.started.is_set)
        text = screen_text(app)
        assert "loading" in text.splitlines()[0]                # the status bar's state
        assert "ff · linear · sgd" in text                      # the configuration asked for
        assert "LHS / RHS" in text                              # the panes are there
        assert app.runner is None and app.dataset is None
        assert loader.thread is not threading.main_thread()     # loading happens behind the screen
        await pilot.press("space")                              # steering waits for the engine
        assert app.runner is None
        assert "still loading the data" in screen_text(app)
        loader.gate.set()
        assert await wait_until(pilot, lambda: app.runner is not None and "start" in app.runner.calls)
        assert app.dataset is small_sample
        assert await wait_until(pilot, lambda: "512 shipped digits" in screen_text(app))
        assert await wait_until(pilot, lambda: len(app.history) == 4)
        await pilot.press("space")
        assert app.runner.calls[-1] == "toggle"


@run_async
async def test_quitting_while_loading_ends_at_once(small_sample):
    loader = GatedLoader(small_sample)
    app = loading_app(loader)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await wait_until(pilot, loader.started.is_set)
        await pilot.press("q")
        assert app._stopped
        app._start_engine(small_sample, FakeRunner(app.config, small_sample))  # the load ends late
    loader.gate.set()
    assert app.runner is None and not app.return_code


@run_async
async def test_a_failed_load_ends_the_app_with_status_2_and_one_line():
    error = DataError("no MNIST training files in /nowhere (expected train-images-idx3-ubyte[.gz] and ...)")
    loader = GatedLoader(error=error)
    app = loading_app(loader)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await wait_until(pilot, loader.started.is_set)
        loader.gate.set()
        assert await wait_until(pilot, lambda: not app.is_running)
    assert app.load_error is error and app.return_code == 2
    assert failure(error) == (2, f"fftui: {error}")


def test_the_app_and_its_first_frame_do_not_import_torch():
    code = ("import sys, fftui.app, fftui.cli, fftui.lifecycle; "
            "print(sorted(m for m in ('torch', 'engine.data', 'engine.runner') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- NO_COLOR: a segment without a style --------------------------------------------------------------
def test_monochrome_filter_takes_segments_without_a_style():
    segments = [Segment("waiting for the first batch"), Segment("x")]
    with pytest.raises(AttributeError):  # Textual's filter on its own
        Monochrome().apply(segments, Color(0, 0, 0))

    class Holder:
        _filters = [Monochrome()]

    lifecycle.guard_line_filters(Holder)  # type: ignore[arg-type]
    out = Holder._filters[0].apply(segments, Color(0, 0, 0))
    assert [s.text for s in out] == ["waiting for the first batch", "x"]
    assert all(s.style is not None and s.style.color is None for s in out)


@run_async
async def test_no_color_app_draws_its_first_frame(small_sample, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = fake_app(small_sample)  # no record: every plot shows its unstyled note
    assert any(isinstance(f, Monochrome) for f in app.get_line_filters())
    async with app.run_test(size=(80, 24)) as pilot:
        assert await wait_until(pilot, lambda: "waiting for the first batch" in screen_text(app))
        await pilot.press("2")
        await pilot.pause()
        assert app.is_running
    assert not app.return_code  # no crash (Textual sets 1)


@run_async
async def test_no_color_app_while_loading(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    loader = GatedLoader(None)
    app = loading_app(loader)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await wait_until(pilot, loader.started.is_set)
        assert "loading" in screen_text(app)
        assert app.is_running
        await pilot.press("q")
    loader.gate.set()
    assert not app.return_code  # no crash (Textual sets 1)


# -- recovery hints -----------------------------------------------------------------------------------
@pytest.mark.parametrize("cause,says,never", [
    ("overflow", "r resets the layer", "space resumes"),
    ("memory", "B halves the batch size, W the width", "r resets"),
    ("", "[ halves lr, r resets, space resumes", "no longer finite"),
])
@run_async
async def test_the_banner_hint_follows_the_cause(small_sample, cause, says, never):
    app = fake_app(small_sample, records=make_records(3))
    async with app.run_test(size=(200, 40)) as pilot:
        assert await wait_until(pilot, lambda: len(app.history) == 3)
        app.runner.state = "error"
        app.runner.feed(events=[Event("error", "something failed at iteration 4", 4, cause)])
        assert await wait_until(pilot, lambda: "engine error" in screen_text(app))
        # the hint follows the error event's cause, which may reach the banner a refresh later
        assert await wait_until(pilot, lambda: says in str(app._banner.render()))
        assert never not in str(app._banner.render())


def test_an_overflowing_loss_is_an_overflow(small_sample):
    trainer = Trainer(Config(width=32, batch_size=8, lr=10.0, loss="linear", iters=1000), small_sample)
    with pytest.raises(Overflow, match="^the loss became -?(inf|nan) at iteration [0-9]+$"):
        for _ in range(1000):
            trainer.advance()
            trainer.flush()


def test_a_real_allocation_failure_is_one_line_with_its_size(small_sample, monkeypatch):
    def no_room(self, x, n_pos):
        torch.empty(10**14, dtype=torch.uint8)  # a real failure of torch's CPU allocator, at once

    monkeypatch.setattr(Trainer, "train_math", no_room)
    runner = Runner(Config(width=32, batch_size=16, iters=100, seed=3), small_sample, graphs=False).start()
    try:
        assert wait_for(lambda: runner.state == "error", 30)
        errors = [e for e in runner.drain_events() if e.kind == "error"]
    finally:
        runner.stop()
    assert len(errors) == 1 and errors[0].cause == "memory"
    tib = 10**14 / 2**40  # 90.95
    line = errors[0].message
    assert line.startswith(f"out of memory on cpu allocating {tib:.3g} TiB at batch size 16, width 32 (float32); "
                           "lower the batch size or the width")
    assert "Allocator" not in line and "enforce" not in line and "\n" not in line


def test_allocation_sizes_as_torch_words_them():
    cuda = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 39.60 GiB. GPU 0 has a total "
                                       "capacity of 139.8 GiB of which 12 GiB is free.")
    assert allocation_size(cuda) == int(39.60 * 2**30)
    assert allocation_size(RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate "
                                        "123 bytes.")) == 123
    assert allocation_size(RuntimeError("something else")) is None
    assert issubclass(OutOfMemory, RuntimeError)


# -- flags in the app ---------------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--quiet"])
def test_headless_only_flags_are_refused_by_the_app(flag, capsys):
    assert main(["run", "--data", "sample", flag]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"fftui run: {flag} is for --headless runs"


def test_compile_and_graph_flags_reach_the_apps_engine(small_sample, tmp_path):
    args = parse(["run", "--data", "sample", "--no-cuda-graphs", "--compile", "--width", "16"])
    start = AppStart(args, config_from_args(args), tune=False)
    runner = start.runner(start.cfg, small_sample)
    assert runner.graphs is False and runner.compile is True and runner.recorder is None
    plain = parse(["run", "--data", "sample"])
    runner = AppStart(plain, config_from_args(plain), tune=False).runner(Config(), small_sample)
    assert runner.graphs is True and runner.compile is False


@run_async
async def test_out_writes_the_live_run_behind_the_training(tmp_path):
    out = tmp_path / "live"
    args = parse(["run", "--data", "sample", "--device", "cpu", "--width", "16", "--batch-size", "8",
                  "--out", str(out), "--keep-samples", "all"])
    start = AppStart(args, config_from_args(args).replace(epochs=0), tune=False)
    app = FFApp(config=start.cfg, loader=start.load, runner_factory=start.runner, clock=FixedClock())
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_until(pilot, lambda: app.runner is not None and app.runner.iteration >= 5, 60)
        await pilot.press("right_square_bracket")                  # lr 0.001 -> 0.002
        assert await wait_until(pilot, lambda: app.runner.config.lr == 0.002, 30)
        it = app.runner.iteration
        assert await wait_until(pilot, lambda: app.runner.iteration >= it + 3, 60)
        await pilot.press("q")
    ended_at = app.runner.iteration
    assert start.close() == f"; recorded in {out}"
    from engine.store import RunReader
    from run_files import events, run_info, summary_lines

    records = summary_lines(out)
    assert [r["iteration"] for r in records] == list(range(1, ended_at + 1))
    samples = RunReader(out).samples                                            # per-sample arrays, as headless
    assert samples.iterations("pos").tolist() == list(range(1, ended_at + 1))
    assert samples.column("lhs", "pos").shape == (ended_at, 8)
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["width"] == 16 and config["config"]["lr"] == 0.001
    assert config["dataset"]["source"] == "sample" and config["app"] is True
    (change,) = [e for e in events(out) if e["kind"] == "change"]
    assert change["changes"] == {"lr": [0.001, 0.002]} and 5 <= change["iteration"] < ended_at
    assert not math.isnan(records[-1]["loss"])
    info = run_info(out)
    assert info["status"] == "finished" and info["checkpoint_iteration"] == ended_at


@run_async
async def test_out_on_a_used_folder_ends_the_app_with_status_2(tmp_path):
    out = tmp_path / "used"
    out.mkdir()
    (out / "config.json").write_text("{}")
    args = parse(["run", "--data", "sample", "--device", "cpu", "--out", str(out)])
    start = AppStart(args, config_from_args(args), tune=False)
    app = FFApp(config=start.cfg, loader=start.load, runner_factory=start.runner, clock=FixedClock())
    async with app.run_test(size=(80, 24)) as pilot:
        assert await wait_until(pilot, lambda: not app.is_running, 60)
    status, line = failure(app.load_error)
    assert status == 2 and line == f"fftui: {out} already holds config.json; choose another --out folder"
    assert (out / "config.json").read_text() == "{}"


def test_a_layer_too_large_for_memory_is_one_line_and_status_1(monkeypatch, capsys, tmp_path):
    import engine.trainer

    def no_room(self):
        torch.empty(10**14, dtype=torch.uint8)

    monkeypatch.setenv("FFTUI_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(engine.trainer.Trainer, "_build", no_room)
    rc = main(["run", "--headless", "--data", "sample", "--device", "cpu", "--width", "16", "--iters", "2",
               "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert err[-1] == (f"fftui: out of memory on cpu allocating {10**14 / 2**40:.3g} TiB at batch size 128, width 16 "
                       f"(float32); lower the batch size or the width (details: {tmp_path / 'logs' / 'fftui.log'})")
