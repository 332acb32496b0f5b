"""Process-wide settings change only when an entry point asks: never by building engine objects
or the app."""
from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap

from engine.config import Config
from engine.runner import Runner
from engine.trainer import Trainer


def _process_state() -> tuple[float, int]:
    return sys.getswitchinterval(), gc.get_freeze_count()


def test_building_a_trainer_runner_or_app_leaves_process_settings_alone(small_sample):
    from fftui.app import FFApp

    before = _process_state()
    cfg = Config(width=16, batch_size=8, iters=3)
    Trainer(cfg, small_sample).step()
    runner = Runner(cfg, small_sample, start_paused=True).start()
    runner.stop()

    async def open_and_quit() -> None:
        app = FFApp(config=cfg, dataset=small_sample)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("q")

    asyncio.run(open_and_quit())
    assert _process_state() == before


def test_entry_point_tuning_sets_switch_interval_and_freezes(tmp_path):
    # in a fresh interpreter: the settings are process-wide and must not leak into this one
    code = textwrap.dedent("""
        import gc, sys
        from engine.process import APP_SWITCH_INTERVAL, tune_for_training
        assert sys.getswitchinterval() != APP_SWITCH_INTERVAL
        assert gc.get_freeze_count() == 0
        headless = tune_for_training(interactive=False)
        assert sys.getswitchinterval() == 0.005 and gc.get_freeze_count() == 0
        settings = tune_for_training(interactive=True)
        assert sys.getswitchinterval() == APP_SWITCH_INTERVAL == settings.switch_interval
        assert gc.get_freeze_count() > 0
        print(headless.heap_tuned)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("True", "False")
