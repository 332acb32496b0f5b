"""Pilot tests of the plots in the live app at 80x24 and 120x36: values that blew up still draw
with compact ticks, legends sit above the plots, coinciding curves say so, and the view keys
(d, z, y, + and -) and the editor's smoothing window act on the panes and never on the run."""
from __future__ import annotations

import re

import numpy as np
import pytest

from engine.config import Config
from fftui.screens.editor import EditorScreen
from fftui.widgets.plot import FigurePlot
from fftui.widgets.ticks import LABEL_WIDTH
from test_app import fake_app, make_records, run_async, screen_text, settle, wait_until

SIZES = [(80, 24), (120, 36)]
NUMBER = re.compile(r"(?<![\w.])-?\d[\d.]*(?:e-?\d+)?(?![\w.])")


def blown_up_records(n: int = 300):
    """``n`` batches whose goodness and loss grow as e^(80 i / n), up to about 5e34, with inf and
    NaN among them (what --lr 10 --width 100 --batch-size 16 does)."""
    out = []
    for i, rec in enumerate(make_records(n)):
        scale = float(np.exp(i * 80 / n))
        groups = {k: g.replace(goodness=g.goodness * scale, lhs=(g.lhs * scale).astype(np.float32))
                  for k, g in rec.groups.items()}
        loss = float("inf") if i % 37 == 5 else (float("nan") if i % 41 == 7 else -scale)
        out.append(rec.replace(loss=loss, groups=groups))
    return out


def plot_rows(text: str) -> list[str]:
    """The screen's lines that belong to plots (inside a frame or on a tick row), without the
    status line and footer."""
    return [line for line in text.splitlines() if "┤" in line or "├" in line or "┬" in line]


@pytest.mark.parametrize("size", SIZES)
@run_async
async def test_values_that_blew_up_still_draw_with_compact_ticks(small_sample, size):
    app = fake_app(small_sample, records=blown_up_records())
    async with app.run_test(size=size) as pilot:
        await pilot.press("3")
        await settle(pilot)
        text = screen_text(app)
        plots = [p for p in app.query(FigurePlot) if p.display and p.region.width]
        assert plots and all(p.figure.series for p in plots)
        assert text.count("┌") >= 2 and text.count("└") >= 2      # both frames are drawn
        # every number on a plot row is a compact tick label: no 35-digit integers
        numbers = [n for line in plot_rows(text) for n in NUMBER.findall(line)]
        assert numbers and max(len(n) for n in numbers) <= LABEL_WIDTH, numbers
        assert any(re.fullmatch(r"-?\d(\.\d+)?e3\d", n) for n in numbers), numbers
        # the x ticks: whole iterations in increasing order, the last one the current iteration
        lines = text.splitlines()
        for i, line in enumerate(lines[:-1]):
            if "└" in line and "┬" in line:
                ticks = [int(t) for t in lines[i + 1].strip("│ ").split()]
                halves = [ticks[: len(ticks) // 2], ticks[len(ticks) // 2:]] if len(plots) == 2 else [ticks]
                for half in halves:
                    assert half == sorted(half) and half[-1] == 300, lines[i + 1]
                break
        else:
            raise AssertionError("no x tick row")


@pytest.mark.parametrize("size", SIZES)
@run_async
async def test_legends_sit_above_the_plots(small_sample, size):
    app = fake_app(small_sample, records=make_records(60))
    async with app.run_test(size=size) as pilot:
        await pilot.press("2")
        await settle(pilot)
        lines = screen_text(app).splitlines()
        top = next(i for i, line in enumerate(lines) if "┌" in line)
        bottom = next(i for i, line in enumerate(lines) if "└" in line)
        legend = [i for i, line in enumerate(lines) if "━" in line and "sparser" in line]
        assert legend and all(i < top for i in legend)
        assert not any("theorem" in line for line in lines[top:bottom])
        assert any("0.5: half the samples" in line for line in lines[:top])
        # fractions: quarters at this size or halves at the smallest, never sixths
        labels = {n for line in lines[top:bottom] for n in NUMBER.findall(line)}
        assert labels <= {"0", "0.25", "0.5", "0.75", "1", "0.2", "0.4", "0.6", "0.8"}, labels


def _expected_counts(rec, group):
    """Valid samples of a group, and where the theorem's prediction equals the outcome and the
    general prediction, counted sample by sample here."""
    g = rec.groups[group]
    valid = same_outcome = same_general = 0
    for a, t, p in zip(g.actual.tolist(), g.predicted_theorem.tolist(), g.predicted_general.tolist(), strict=True):
        if a < 0:
            continue
        valid += 1
        same_outcome += int(t == (a == 1))
        same_general += int(t == p)
    return valid, same_outcome, same_general


@run_async
async def test_the_header_counts_where_the_predictions_coincide(small_sample):
    records = make_records(40)
    app = fake_app(small_sample, records=records)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        text = screen_text(app)
        for group in ("pos", "neg"):
            valid, outcome, general = _expected_counts(records[-1], group)
            assert (f"{group}: theorem = actual on {outcome}/{valid} valid · theorem = general on "
                    f"{general}/{valid}") in text
        assert "linear loss, plain SGD: theorem = general" in text


@pytest.mark.parametrize("changes", [{"momentum": 0.9}, {"optimizer": "adam"}, {"weight_decay": 0.01},
                                     {"loss": "logistic"}])
@run_async
async def test_theorem_equals_general_is_not_claimed_where_it_does_not_hold(small_sample, changes):
    app = fake_app(small_sample, cfg=Config(width=64, batch_size=16, **changes), records=make_records(20))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        text = screen_text(app)
        assert "raw, per batch" in text and "theorem = general" not in text.replace("theorem = general on", "")


@run_async
async def test_d_shows_actual_minus_predicted(small_sample):
    app = fake_app(small_sample, records=make_records(60))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        assert app.view_options.difference
        text = screen_text(app)
        assert "positives: actual − predicted" in text and "0: prediction = outcome" in text
        plot = app.query_one("#sparsening-plot0", FigurePlot)
        pos = app.history.series("pos.sparser") - app.history.series("pos.theorem")
        assert np.nanmax(plot.figure.series[0].y) == pytest.approx(np.nanmax(pos))
        await pilot.press("d")
        await settle(pilot)
        assert "positives: fraction sparser" in screen_text(app)


@run_async
async def test_z_and_y_switch_the_sparsity_axes(small_sample):
    app = fake_app(small_sample, records=make_records(60))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        left = app.query_one("#sparsity-plot0", FigurePlot)
        right = app.query_one("#sparsity-plot1", FigurePlot)
        assert left.figure.ylim is None and not right.figure.log     # autoscaled, linear
        # make_records' sparsity goes from 0.4 to 0.5: an axis around it, not 0..1
        lines = screen_text(app).splitlines()
        assert any(re.match(r"│ *0\.4\d*┤", line) for line in lines)
        await pilot.press("z", "y")
        await settle(pilot)
        assert left.figure.ylim == (0.0, 1.0) and right.figure.log and right.figure.log_right
        text = screen_text(app)
        assert "right axis linear: values ≤ 0" in text          # the ff linear loss is negative
        assert "goodness |h|² (log)" in text


@run_async
async def test_the_smoothing_window_follows_the_keys_and_the_editor_and_never_reaches_the_run(small_sample):
    app = fake_app(small_sample, records=make_records(60))
    async with app.run_test(size=(120, 36)) as pilot:
        runner = app.runner
        await pilot.press("2", "s", "plus")
        await settle(pilot)
        assert runner.pending_config.smooth == 50 and app.view_options.window == 50
        assert "smoothed over 50 iterations" in screen_text(app)
        assert "smooth 25 → 50: applies now" in screen_text(app)
        await pilot.press("minus", "minus")
        await settle(pilot)
        assert app.view_options.window == 10
        await pilot.press("e")
        assert await wait_until(pilot, lambda: isinstance(app.screen, EditorScreen))
        field = app.screen.query_one("#field-smooth")
        field.value = "7"
        await pilot.pause()
        await pilot.press("enter")
        assert await wait_until(pilot, lambda: not isinstance(app.screen, EditorScreen))
        await settle(pilot)
        assert app.view_options.window == 7 and "smoothed over 7 iterations" in screen_text(app)
        assert "reset" not in runner.calls
        assert all(set(call[1]) == {"smooth"} for call in runner.calls if isinstance(call, tuple))


@run_async
async def test_the_smoothing_window_starts_from_the_configuration(small_sample):
    app = fake_app(small_sample, cfg=Config(width=64, batch_size=16, smooth=100), records=make_records(30))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "s")
        await settle(pilot)
        assert "smoothed over 100 iterations" in screen_text(app)


@pytest.mark.parametrize("size", SIZES)
@run_async
async def test_lhs_rhs_says_what_each_side_is_and_what_off_range_means(small_sample, size):
    app = fake_app(small_sample, records=make_records(30))
    async with app.run_test(size=size) as pilot:
        await pilot.press("1")
        await settle(pilot)
        text = screen_text(app)
        assert "LHS2 = |h|₂(A⁺−A⁻)" in text and "RHS2 = |h|₁(B⁺−B⁻)" in text
        assert "predicted sparser where LHS2 < RHS2" in text
        assert "off-range: outside the 1st–99th percentile" in text


@run_async
async def test_no_color_draws_the_waiting_note(small_sample, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = fake_app(small_sample, records=())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "waiting for the first batch" in screen_text(app)
        app.runner.feed(make_records(10))
        await settle(pilot)
        assert "fraction" in screen_text(app) or "Theorem 2" in screen_text(app)
