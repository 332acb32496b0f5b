"""The live app records its runs: into the store by default, a reset starting the next run in a
folder of its own, the run's name in the status bar, and "recording stopped: REASON" there while
training goes on."""
from __future__ import annotations

import re

import pytest

from fftui.app import FFApp
from fftui.cli import AppStart, config_from_args, parse
from run_files import events, iterations, run_info, store_runs
from test_app import FixedClock, run_async, screen_text, wait_until
from test_recording import filling_opener

ARGS = ["run", "--data", "sample", "--device", "cpu", "--width", "16", "--batch-size", "8"]


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("FFTUI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "runs"


def _app(argv, **options):
    args = parse(argv)
    start = AppStart(args, config_from_args(args).replace(epochs=0), tune=False, recording_options=options)
    app = FFApp(config=start.cfg, loader=start.load, runner_factory=start.runner, clock=FixedClock())
    return start, app


@run_async
async def test_a_reset_in_the_app_ends_the_run_and_records_the_next_in_a_new_folder(store):
    start, app = _app(ARGS)
    async with app.run_test(size=(170, 40)) as pilot:
        assert await wait_until(pilot, lambda: app.runner is not None and app.runner.iteration >= 5, 60)
        first = start.recorder.folder
        assert first.parent == store and re.fullmatch(r"\d{8}-\d{6}-ff-linear", first.name)
        await pilot.pause(0.6)  # the status bar follows twice a second
        assert f"run {first.name}" in screen_text(app)
        await pilot.press("r")
        assert await wait_until(pilot, lambda: len(start.recorder.folders) == 2, 30)
        second = start.recorder.folder
        assert await wait_until(pilot, lambda: app.runner.iteration >= 3, 60)
        await pilot.pause(0.6)
        assert f"run {second.name}" in screen_text(app)
        await pilot.press("q")
    assert start.close() == f"; recorded in {second} (and 1 earlier run beside it)"
    assert store_runs(store) == sorted([first, second])
    ended = iterations(first)
    assert ended == list(range(1, len(ended) + 1)) and len(ended) >= 5
    assert run_info(first)["status"] == "finished" and run_info(first)["checkpoint_iteration"] == len(ended)
    assert iterations(second)[:3] == [1, 2, 3]
    assert run_info(second)["status"] == "finished"


@run_async
async def test_a_paused_run_records_its_pause(store):
    start, app = _app(ARGS)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_until(pilot, lambda: app.runner is not None and app.runner.iteration >= 3, 60)
        await pilot.press("space")
        assert await wait_until(pilot, lambda: app.runner.state == "paused", 30)
        paused_at = app.runner.iteration
        await pilot.press("q")
    start.close()
    (run,) = store_runs(store)
    assert ("pause", paused_at) in [(e["kind"], e["iteration"]) for e in events(run)]


@run_async
async def test_no_record_in_the_app_writes_nothing_and_shows_no_run(store):
    start, app = _app([*ARGS, "--no-record"])
    async with app.run_test(size=(170, 40)) as pilot:
        assert await wait_until(pilot, lambda: app.runner is not None and app.runner.iteration >= 3, 60)
        await pilot.pause(0.6)
        assert " · run " not in screen_text(app)
        await pilot.press("q")
    assert start.close() == ""
    assert not store.exists()


@run_async
async def test_recording_stopped_shows_in_the_status_bar_while_training_goes_on(store):
    start, app = _app(ARGS, opener=filling_opener, flush_interval=0.01)
    async with app.run_test(size=(80, 24)) as pilot:  # too narrow for the data line's end: the message line says it
        assert await wait_until(pilot, lambda: app.runner is not None and start.recorder.error is not None, 60)
        at = app.runner.iteration
        assert await wait_until(pilot, lambda: app.runner.iteration > at + 5, 60)
        await pilot.pause(0.6)
        assert "recording stopped: no space left on device (summary.jsonl.gz)" in screen_text(app)
        assert app.runner.state == "running"
        await pilot.press("q")
    line = start.close()
    (run,) = store_runs(store)
    kept = iterations(run)
    assert kept == list(range(1, len(kept) + 1))
    assert line == (f"; recording stopped: no space left on device (summary.jsonl.gz); {len(kept):,} records "
                    f"kept in {run}")


@run_async
async def test_quitting_while_the_data_load_leaves_no_run_folder(store, monkeypatch):
    import threading

    import engine.data

    loading, release = threading.Event(), threading.Event()
    real = engine.data.load_dataset

    def slow(*args, **kwargs):
        loading.set()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.data, "load_dataset", slow)
    start, app = _app(ARGS)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_until(pilot, loading.is_set, 60)
        assert len(store_runs(store)) == 1  # claimed before the data load
        await pilot.press("q")
    assert start.close() == ""
    assert store_runs(store) == []
    release.set()
