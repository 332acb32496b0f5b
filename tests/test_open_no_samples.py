"""`fftui open` of a run recorded with --keep-samples none says that the run kept no per-sample
arrays where the LHS/RHS histograms would be, never that no batch came yet."""
from __future__ import annotations

from engine.store import RunReader
from fftui.replay import ReplayApp
from test_app import run_async, screen_text, wait_until


@run_async
async def test_a_run_that_kept_no_arrays_says_so_in_the_histograms_pane(tmp_path):
    from fftui.cli import main

    folder = tmp_path / "run"
    assert main(["run", "--headless", "--quiet", "--data", "sample", "--width", "24", "--batch-size", "8",
                 "--iters", "6", "--keep-samples", "none", "--out", str(folder)]) == 0
    app = ReplayApp(RunReader(folder))
    async with app.run_test(size=(160, 48)) as pilot:
        assert await wait_until(pilot, lambda: app.recorded is not None and app.recorded.complete)
        await pilot.press("1")  # the LHS/RHS pane alone
        for _ in range(3):
            app.draw_now()
            await pilot.pause()
        text = screen_text(app)
        assert "this run kept no per-sample arrays (--keep-samples none)" in text
        assert "no batch yet" not in text and "waiting for the first batch" not in text
