"""The main screen's layout at 80x24, 120x36 and 200x50 and across resizes: the grid only where it
fits, the sidebar from the size now, panes that never show another run, a footer of whole keys, a
screenshot path and editor errors shown whole, and the batch size the engine really trains on."""
from __future__ import annotations

import re

import pytest
import torch
from textual.widgets._toast import Toast

from engine.config import Config
from engine.trainer import Trainer
from fftui import keys
from fftui.app import FFApp
from fftui.screens.editor import EditorScreen
from fftui.widgets.status import batch_in_use
from test_app import fake_app, make_records, run_async, screen_text, settle, wait_until

PLOTTING = ("lhs", "sparsening", "sparsity", "assumptions")


def rows_of(app, widget) -> list[str]:
    """The screen's text inside ``widget``'s region, row by row."""
    lines = screen_text(app).splitlines()
    region = widget.region
    out = []
    for y in range(region.y, region.bottom):
        line = lines[y] if y < len(lines) else ""
        out.append(line[region.x:region.right].ljust(region.width))
    return out


def frame_rows(lines: list[str]) -> int:
    """Rows of data between a plot's top and bottom frame, from the text shown (-1: no frame)."""
    top = next((i for i, line in enumerate(lines) if "┌" in line), None)
    bottom = next((i for i, line in enumerate(lines) if "└" in line), None)
    return -1 if top is None or bottom is None else bottom - top - 1


# -- the grid: where it fits, and only there ----------------------------------------------------
@pytest.mark.parametrize("size", FFApp.GRID_SIZES)
def test_at_each_measured_grid_size_every_pane_shows_whole(small_sample, size):
    @run_async
    async def body():
        app = fake_app(small_sample, cfg=Config(width=64, batch_size=16), records=make_records(60), state="paused")
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            assert app.view == "grid"
            for pane_id in PLOTTING:
                pane = app.query_one(f"#{pane_id}")
                assert pane.display
                box = rows_of(app, pane)
                assert pane.border_title in box[0], (size, pane_id)     # the title whole
                summary = "".join(box[1:]).replace("│", " ")
                for group in ("pos", "neg"):                             # both groups' summary lines
                    assert re.search(rf"\b{group}\b", summary), (size, pane_id, group)
                assert "╰" in box[-1]                                    # the bottom border shows
                for plot in pane.plots:
                    if plot.display:                                     # a plot with room for data
                        assert frame_rows(rows_of(app, plot)) >= 5, (size, plot.id)
    body()


@run_async
async def test_below_the_grid_sizes_one_pane_shows_and_g_says_why(small_sample):
    app = fake_app(small_sample, records=make_records(30))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await pilot.pause()
        assert app.view == "lhs" and [p.id for p in app.panes if p.display] == ["lhs"]
        lines = screen_text(app).splitlines()
        said = [line for line in lines if "the grid needs" in line]
        assert len(said) == 1 and said[0].rstrip().endswith("1-5 show one pane")   # one whole line
        assert "this is 80x24" in said[0]
        assert all(f"{w}x{h}" in said[0] for w, h in FFApp.GRID_SIZES)
        for size in ((120, 36), *((w - 1, h) for w, h in FFApp.GRID_SIZES), *((w, h - 1) for w, h in FFApp.GRID_SIZES)):
            if any(size[0] >= w and size[1] >= h for w, h in FFApp.GRID_SIZES):
                continue   # another measured size covers it
            await pilot.resize_terminal(*size)
            await pilot.pause()
            assert app.view != "grid", size
            await pilot.press("g")
            await pilot.pause()
            assert app.view != "grid", size


@run_async
async def test_the_sidebar_follows_the_size_after_each_resize(small_sample):
    app = fake_app(small_sample, records=make_records(20))
    async with app.run_test(size=(200, 50)) as pilot:
        params = app.query_one("#params")
        panes_box = app.query_one("#panes")
        for size in ((200, 50), (120, 36), (200, 50), (120, 36)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            await pilot.pause()
            wide = size == (200, 50)
            assert app.view == ("grid" if wide else "lhs"), size
            assert params.display == wide, size
            # the panes take the whole width the side panes leave them
            assert panes_box.region.width == size[0] - (params.region.width if wide else 0), size
            if wide:
                assert "theta" in screen_text(app)


# -- a pane never shows another run -------------------------------------------------------------
@run_async
async def test_hidden_panes_drop_the_old_run_at_once(small_sample):
    app = fake_app(small_sample, records=make_records(40))
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        await pilot.press("2")                          # one pane; the others hidden, holding ff plots
        await settle(pilot)
        hidden = [p for p in app.panes if not p.display and p.id != "layers"]  # layers: a stack's only
        assert hidden and all(any(plot.figure.series for plot in p.plots) for p in hidden)
        await pilot.press("m")
        app.runner.apply()
        app.runner.feed(make_records(5, mode="descent"))
        app._tick()                                     # the drain that brings the new mode in
        for pane in hidden:                             # dropped in that very drain, not later
            assert all(not plot.figure.series for plot in pane.plots), pane.id
            assert "pos" not in str(pane.query_one(".summary").content)
        await pilot.press("e")                          # the editor on top: nothing is drawn ...
        await pilot.pause()
        await pilot.resize_terminal(120, 36)
        await pilot.pause()
        await pilot.resize_terminal(200, 50)            # ... while the grid comes back
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        for _ in range(10):                             # whatever the timers have done by now
            text = screen_text(app)
            assert "positives" not in text and "pos " not in text and "neg " not in text
            await pilot.pause(0.05)
        await settle(pilot)
        assert "Theorem 1, all samples" in screen_text(app)


@run_async
async def test_a_reset_clears_every_pane(small_sample):
    app = fake_app(small_sample, records=make_records(30))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.runner.iteration = 0                        # the engine went back to iteration 0
        app._tick()
        assert len(app.history) == 0
        for pane in app.panes:
            assert all(not plot.figure.series for plot in pane.plots), pane.id
        await pilot.pause()
        assert "waiting for the first batch" in screen_text(app)


# -- the footer ---------------------------------------------------------------------------------
@pytest.mark.parametrize("width", [80, 120, 200])
def test_footer_shows_the_most_important_keys_whole(small_sample, width):
    @run_async
    async def body():
        app = fake_app(small_sample)
        async with app.run_test(size=(width, 36)) as pilot:
            await pilot.pause()
            await pilot.pause()
            footer = screen_text(app).splitlines()[-1]
            assert len(footer) <= width
            wanted = ["space Pause/Run", "n Step", "e Edit", "g Grid", "p Presets", "^s SVG", "F1/? Help", "q Quit"]
            at = [footer.find(w) for w in wanted]
            assert all(i >= 0 for i in at) and at == sorted(at), footer    # all there, in this order
            shown = [k for k in app.KEYS if f"{k.display or k.keys.split(',')[0]} {k.footer}" in footer]
            order = {a: i for i, a in enumerate(keys.FOOTER_PRIORITY)}
            ranks = sorted(order[k.action] for k in shown)
            assert ranks == sorted(ranks) and len(shown) >= 8
            if width >= 200:
                assert len(shown) >= 15
            await pilot.resize_terminal(80 if width > 80 else 200, 36)   # the footer follows a resize

            def whole() -> bool:
                line = screen_text(app).splitlines()[-1].rstrip()
                ends_whole = any(line.endswith(f" {k.footer}") for k in app.KEYS)   # no key cut short
                return ends_whole and "q Quit" in line and (len(line) > 120 if width == 80 else True)
            assert await wait_until(pilot, whole), screen_text(app).splitlines()[-1]
    body()


# -- the screenshot path ------------------------------------------------------------------------
@run_async
async def test_screenshot_path_whole_at_80_columns(small_sample, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    folder = tmp_path / ".local" / "share" / "fftui" / "screenshots"
    app = fake_app(small_sample, records=make_records(3), screenshot_dir=folder)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await pilot.press("ctrl+s")
        await pilot.press("ctrl+s")                     # twice in a second: two files
        await pilot.pause()
        files = sorted(folder.glob("*.svg"))
        assert len(files) == 2 and all(f.read_text().startswith("<svg") for f in files)
        newest = max(files, key=lambda f: (len(f.name), f.name))
        shown = "~/.local/share/fftui/screenshots/" + newest.name
        text = screen_text(app)
        assert f"screenshot saved: {shown}" in text     # the status line, whole
        assert await wait_until(pilot, lambda: len(app.screen.query(Toast)) == 2)
        await pilot.pause(0.3)                          # the toasts fade in
        toast = list(app.screen.query(Toast))[-1]       # the notification: the name on a line of its own
        assert any(line.strip(" ▌") == newest.name for line in rows_of(app, toast)), rows_of(app, toast)


# -- the editor ---------------------------------------------------------------------------------
@run_async
async def test_editor_errors_wrap_at_80_columns_and_go_when_fixed(small_sample):
    app = fake_app(small_sample)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, EditorScreen)
        field = app.screen.query_one("#field-batch_size")
        field.value = "0"
        await pilot.pause()
        note = app.screen.query_one("#note-batch_size")
        message = app.screen.errors["batch_size"]
        assert "65536" in message
        shown = " ".join(line.strip() for line in rows_of(app, note))
        assert " ".join(shown.split()) == message          # every word of it on screen
        field.value = "64"
        await pilot.pause()
        text = screen_text(app)
        assert "must be" not in text and not app.screen.errors
        await pilot.press("escape")


# -- the batch size in use ----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["ff", "descent"])
@pytest.mark.parametrize("asked", [16, 65536])
def test_status_shows_the_batch_the_engine_trains_on(small_sample, mode, asked):
    cfg = Config(mode=mode, width=16, batch_size=asked, device="cpu")
    with torch.inference_mode():
        x, n_pos = Trainer(cfg, small_sample).next_batch()        # what the engine really takes
    per_group = n_pos if mode == "ff" else x.shape[0]
    assert x.shape[0] == (2 * n_pos if mode == "ff" else n_pos)
    expected = f"{per_group} pos + {per_group} neg" if mode == "ff" else f"{per_group}"
    if per_group < asked:
        expected += f" ({asked} asked)"
    assert batch_in_use(cfg, small_sample.size) == expected

    @run_async
    async def body():
        app = fake_app(small_sample, cfg=cfg)
        async with app.run_test(size=(80, 24)) as pilot:
            assert await wait_until(pilot, lambda: f"N {expected} ·" in screen_text(app))
    body()



@run_async
async def test_screenshot_falls_back_to_the_working_folder_then_says_why(small_sample, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    app = fake_app(small_sample, records=make_records(3), screenshot_dir=blocker / "shots")
    async with app.run_test(size=(200, 24)) as pilot:
        await pilot.press("ctrl+s")
        await pilot.pause()
        saved = list(work.glob("fftui-*.svg"))
        assert len(saved) == 1 and f"screenshot saved: {saved[0]}" in screen_text(app)

        def full(folder, stem, text):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr("fftui.viewing.save_new", full)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "screenshot not saved: No space left on device" in screen_text(app)
        assert list(work.glob("fftui-*.svg")) == saved
