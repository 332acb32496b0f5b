"""SVG snapshots of the main screen and the help screen, fed fixed records through a fake engine.

Update after an intended change with: pytest tests/test_snapshots.py --snapshot-update"""
from __future__ import annotations

from engine.config import Config
from test_app import fake_app, make_records, settle


def test_main_screen_small(snap_compare, small_sample):
    app = fake_app(small_sample, cfg=Config(width=64, batch_size=16), records=make_records(120))
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_sparsening_smoothed_small(snap_compare, small_sample):
    app = fake_app(small_sample, cfg=Config(width=64, batch_size=16), records=make_records(120))
    async def keys_then_settle(pilot) -> None:
        await settle(pilot)
        await pilot.press("2", "s")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=keys_then_settle)


def test_main_screen_large(snap_compare, small_sample):
    app = fake_app(small_sample, cfg=Config(width=64, batch_size=16), records=make_records(120))
    assert snap_compare(app, terminal_size=(200, 50), run_before=settle)


def test_help_screen(snap_compare, small_sample):
    app = fake_app(small_sample, cfg=Config(width=64, batch_size=16), records=make_records(10))
    assert snap_compare(app, terminal_size=(80, 24), press=["f1"], run_before=settle)
