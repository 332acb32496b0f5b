"""The editor refuses, through the engine's own validation, what the command line refuses: values
past the dtype's range and configurations that need more memory than the device has."""
from __future__ import annotations

import engine.memory
from engine.config import Config
from fftui.app import FFApp
from fftui.screens.editor import EditorScreen
from test_app import run_async, screen_text, wait_until


async def _apply(app, pilot, **values: str) -> None:
    """Open the editor, type the values, press enter."""
    await pilot.press("e")
    await pilot.pause()
    assert isinstance(app.screen, EditorScreen)
    for name, value in values.items():
        app.screen.query_one(f"#field-{name}").value = value
        await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()


@run_async
async def test_the_editor_refuses_what_cannot_run_and_changes_nothing(small_sample, monkeypatch):
    monkeypatch.setattr(engine.memory, "available_memory", lambda device: 2_000_000_000)
    app = FFApp(config=Config(width=32, batch_size=8, iters=100_000), dataset=small_sample)
    async with app.run_test(size=(160, 40)) as pilot:
        runner = app.runner
        assert await wait_until(pilot, lambda: runner.iteration >= 1)
        before = runner.pending_config
        cases = [({"batch_size": "65536", "width": "1000000"}, "need about"),
                 ({"loss": "logistic", "theta": "1e300"}, "overflows float32"),
                 ({"weight_decay": "1e30"}, "grow without bound")]
        for values, needle in cases:
            await _apply(app, pilot, **values)
            assert isinstance(app.screen, EditorScreen)  # refused: the editor stays open, saying why
            text = screen_text(app)
            assert "not applied" in text and needle in text
            assert runner.pending_config is before
            await pilot.press("escape")
            await pilot.pause()
        await _apply(app, pilot, seed="1e30")
        assert isinstance(app.screen, EditorScreen) and "seed must be a whole number" in screen_text(app)
        await pilot.press("escape")
        assert runner.pending_config is before and runner.config.width == 32
