"""Event marks on the time-series plots: a live parameter change (lr, batch size, loss...) is marked
at its iteration in the live app, and so are a recorded run's changes and resumes in `fftui open`."""
from __future__ import annotations

import json

import numpy as np

from engine.config import Config
from engine.runner import Event
from engine.store import RunReader
from fftui.history import History, change_label
from fftui.recording import RecordedHistory
from fftui.replay import ReplayApp
from fftui.widgets.pane import event_marks
from fftui.widgets.plot import Figure, FigurePlot, Series
from test_app import fake_app, make_records, run_async, screen_text, settle, wait_until


def _lines(figure: Figure, width: int = 60, height: int = 16) -> list[str]:
    plot = FigurePlot()
    plot.show(figure)
    return [line.plain for line in plot.lines(width, height)]


def _body_columns(lines: list[str]) -> list[int]:
    """Per column of the plot's body (the lines between its frame's top and bottom), how many
    rows hold a mark."""
    top = next(i for i, line in enumerate(lines) if "┌" in line)
    bottom = next(i for i, line in enumerate(lines) if "└" in line)
    body = lines[top + 1:bottom]
    width = max(len(line) for line in body)
    return [sum(1 for line in body if c < len(line) and line[c] != " ") for c in range(width)]


def test_a_mark_is_a_vertical_line_at_its_iteration_named_in_the_legend():
    x = np.arange(1, 101, dtype=float)
    flat = Figure(series=(Series(x, np.full(100, 0.2), "sparser", "green"),), ylim=(0.0, 1.0), xlim=(1.0, 100.0),
                  iterations=True, title="t")
    marked = Figure(series=flat.series, ylim=flat.ylim, xlim=flat.xlim, iterations=True, title="t",
                    vlines=((50.0, "lr 0.001→0.01"),))
    plain, with_mark = _lines(flat), _lines(marked)
    assert not any("lr 0.001→0.01" in line for line in plain)
    assert any("50: lr 0.001→0.01" in line for line in with_mark)
    a, b = _body_columns(plain), _body_columns(with_mark)
    rows = max(b)
    grown = [c for c in range(min(len(a), len(b))) if b[c] > a[c]]
    assert grown and rows >= 5  # one column that now holds a mark in (nearly) every row
    column = grown[0]
    # the column sits 49/99 of the way across the frame (x = 50 of 1..100)
    top = next(line for line in with_mark if "┌" in line)
    left, right = top.index("┌"), top.index("┐")
    assert abs(column - (left + (right - left) * 49 / 99)) <= 1.5


def test_the_legend_names_the_last_marks_and_counts_the_earlier_ones():
    x = np.arange(1, 101, dtype=float)
    marks = tuple((float(i), f"lr {i}") for i in (10, 20, 30, 40))
    lines = _lines(Figure(series=(Series(x, x / 100, "s", "green"),), xlim=(1.0, 100.0), iterations=True,
                          vlines=marks), width=100, height=20)
    text = "\n".join(lines)
    assert "2 earlier" in text and "30: lr 30" in text and "40: lr 40" in text and "10: lr 10" not in text


def test_marks_outside_the_plotted_iterations_are_left_out():
    history = History()
    history.mark(5, "a")
    history.mark(40, "b")
    assert event_marks(history, (10.0, 50.0)) == ((40.0, "b"),)
    assert event_marks(history, None) == ()
    history.clear()  # a new run: its marks start anew
    assert history.marks == []


def test_a_change_label_says_each_parameter_from_and_to():
    assert change_label({"lr": (0.001, 0.01), "loss": ("linear", "logistic")}) == \
        "lr 0.001→0.01, loss linear→logistic"


def test_the_runner_says_which_parameters_change_at_which_iteration(small_sample):
    from engine.runner import Runner

    runner = Runner(Config(width=16, batch_size=8, epochs=0), small_sample).start()
    try:
        assert _wait(lambda: runner.iteration >= 2)
        runner.pause()
        assert _wait(lambda: runner.state == "paused")
        at = runner.iteration
        runner.set_params(lr=0.01, smooth=5)
        events = []
        assert _wait(lambda: bool(events.extend(runner.drain_events()) or any(e.changes for e in events)))
    finally:
        runner.stop()
    (change,) = [e for e in events if e.changes]
    assert change.iteration == at and change.changes == (("lr", 0.001, 0.01),)  # smooth is the view's: no mark


def _wait(predicate, timeout: float = 20.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@run_async
async def test_the_live_app_marks_a_parameter_change_on_its_plots(small_sample):
    app = fake_app(small_sample, records=make_records(30))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        runner = app.runner
        runner.feed(events=[Event("info", "lr=0.01: applies from the next batch", 20,
                                  changes=(("lr", 0.001, 0.01),))], records=make_records(10, start=31))
        await settle(pilot)
        assert await wait_until(pilot, lambda: app.history.marks == [(20, "lr 0.001→0.01")])
        await settle(pilot)
        assert "20: lr 0.001→0.01" in screen_text(app)


@run_async
async def test_fftui_open_marks_recorded_changes_and_resumes(tmp_path):
    from fftui.cli import main

    folder = tmp_path / "run"
    fast = ["run", "--headless", "--quiet", "--data", "sample", "--width", "24", "--batch-size", "8"]
    assert main(fast + ["--iters", "12", "--out", str(folder)]) == 0
    assert main(["run", "--headless", "--quiet", "--resume", str(folder), "--iters", "30"]) == 0
    with open(folder / "events.jsonl", "a") as f:  # a change as the app records one (engine/recording.py)
        f.write(json.dumps({"kind": "change", "iteration": 20, "time": 0.0, "changes": {"lr": [0.001, 0.01]}}) + "\n")
    recorded = RecordedHistory(RunReader(folder))
    assert recorded.marks == [(12, "resumed"), (20, "lr 0.001→0.01")]
    app = ReplayApp(RunReader(folder))
    async with app.run_test(size=(160, 48)) as pilot:
        assert await wait_until(pilot, lambda: app.recorded is not None and app.recorded.complete)
        for _ in range(2):
            app.draw_now()
            await pilot.pause()
        text = screen_text(app)
        assert "12: resumed" in text and "20: lr 0.001→0.01" in text
