"""A run overlaid with `o` on a recording is named apart from the recording it is drawn beside."""
from __future__ import annotations

import shutil

from engine.store import RunReader
from fftui.overlay import _add
from fftui.recording import RecordedHistory
from fftui.replay import ReplayApp
from test_app import run_async, screen_text
from test_replay import opened, recorded_runs


@run_async
async def test_an_overlay_sharing_the_recordings_short_name_keeps_its_date(small_sample, tmp_path_factory, tmp_path):
    alpha = recorded_runs(small_sample, tmp_path_factory)["alpha"][0]
    shown, other = tmp_path / "20261129-173000-ff-linear", tmp_path / "20261129-174000-ff-linear"
    shutil.copytree(alpha, shown)
    shutil.copytree(alpha, other)
    app = ReplayApp(RunReader(shown))
    async with app.run_test(size=(160, 48)) as pilot:
        await opened(pilot, app)
        _add(app, RecordedHistory(RunReader(other)))
        await pilot.pause()
        assert [o.label for o in app.history.others] == [other.name]  # "ff-linear" would name both runs
        assert f"overlaid: {other.name}" in screen_text(app)


@run_async
async def test_the_live_app_does_not_offer_the_run_it_records(small_sample, tmp_path_factory, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from engine.store import claim_run_folder
    from fftui.overlay import OverlayScreen
    from test_app import fake_app, make_records, settle, wait_until

    alpha = recorded_runs(small_sample, tmp_path_factory)["alpha"][0]
    monkeypatch.setenv("FFTUI_DATA_DIR", str(tmp_path / "data"))
    runs = {name: claim_run_folder(name) for name in ("earlier", "current")}
    for folder in runs.values():
        shutil.copytree(alpha, folder, dirs_exist_ok=True)
    app = fake_app(small_sample, records=make_records(5))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app.runner.recorder = SimpleNamespace(folder=runs["current"])  # what the app records into
        await pilot.press("o")
        assert await wait_until(pilot, lambda: isinstance(app.screen, OverlayScreen))
        text = screen_text(app)
        assert runs["earlier"].name in text and runs["current"].name not in text
