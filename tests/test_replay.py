"""`fftui open`: a recorded run in the app's panes with a scrubber, compared runs, refused keys, and the
summary read in parts; the numbers on screen checked against the arrays the training produced."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.config import Config
from engine.store import RunReader, RunWriter, claim_out_folder
from engine.store.files import SUMMARY
from engine.trainer import Trainer
from fftui import recording
from fftui.cli import main
from fftui.recording import RecordedHistory, summary_in_parts
from fftui.replay import ReplayApp, refusal_line
from fftui.widgets.lhs_rhs import LhsRhsPane
from fftui.widgets.sparsening import SparseningPane
from test_app import run_async, screen_text, wait_until

A_KEPT = [*range(1, 9), 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56]  # --keep-samples 8 over 60 iterations


def train(dataset, iters: int, **params) -> list:
    """The chunks of a real run: 512 digits in batches of 48 (an epoch ends with a batch of 32)."""
    cfg = Config(**{"mode": "ff", "width": 64, "batch_size": 48, "iters": iters, "seed": 3, **params})
    trainer = Trainer(cfg, dataset, chunk=8)
    chunks = []
    while trainer.iteration < iters:
        chunks += trainer.advance()
    return chunks + trainer.flush()


def record(folder: Path, chunks: list, keep: str, **params) -> Path:
    cfg = Config(**{"mode": "ff", "width": 64, "batch_size": 48, "iters": sum(len(c) for c in chunks) or 1,
                    "seed": 3, **params})
    writer = RunWriter(claim_out_folder(folder), {"config": cfg.as_dict(), "device": "cpu",
                                                  "dataset": {"description": "512 shipped digits"}},
                       keep_samples=keep).start()
    for chunk in chunks:
        assert writer.put(chunk)
    writer.close("finished")
    return folder


@pytest.fixture(scope="module")
def runs(small_sample, tmp_path_factory):
    return recorded_runs(small_sample, tmp_path_factory)


def recorded_runs(small_sample, tmp_path_factory) -> dict:
    """Two recorded runs: alpha (60 iterations, linear, arrays kept for A_KEPT) and beta (40
    iterations, logistic, every batch's arrays), with the chunks they were recorded from."""
    root = tmp_path_factory.mktemp("runs")
    a, b = train(small_sample, 60), train(small_sample, 40, loss="logistic")
    return {"alpha": (record(root / "alpha", a, "8"), a),
            "beta": (record(root / "beta", b, "all", loss="logistic"), b)}


def column(chunks: list, name: str, group: int | None = None) -> np.ndarray:
    values = np.concatenate([c.columns[name] for c in chunks])
    return values if group is None else values[:, group]


def batch_arrays(chunks: list, iteration: int, name: str, group: int) -> np.ndarray:
    for c in chunks:
        rows = np.flatnonzero(c.columns["iteration"] == iteration)
        if rows.size:
            return c.columns[name][rows[0], group]
    raise KeyError(iteration)


async def opened(pilot, app) -> None:
    assert await wait_until(pilot, lambda: app.recorded is not None and app.recorded.complete)
    for _ in range(2):
        app.draw_now()
        await pilot.pause()


def shown_counts(app) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per group plot of the LHS/RHS pane: its bins' centres and the LHS counts drawn."""
    pane = app.query_one(LhsRhsPane)
    return [(p.figure.series[0].x, p.figure.series[0].y) for p in pane.plots if p.display and p.figure.series]


def expected_counts(centres: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Counts of the finite values in equal bins around the centres (the edges halfway between)."""
    half = (centres[1] - centres[0]) / 2
    edges = np.concatenate([centres - half, [centres[-1] + half]])
    return np.histogram(values[np.isfinite(values)], edges)[0].astype(float)


@run_async
async def test_the_scrubber_moves_the_iteration_and_the_histograms_show_that_batch(runs):
    folder, chunks = runs["alpha"]
    app = ReplayApp(RunReader(folder))
    async with app.run_test(size=(160, 48)) as pilot:
        await opened(pilot, app)
        assert "iteration 60 of 60" in screen_text(app)

        async def at(key: str, iteration: int, arrays_of: int) -> None:
            await pilot.press(key)
            for _ in range(2):
                app.draw_now()
                await pilot.pause()
            assert app.recorded.last_iteration == iteration
            assert f"iteration {iteration} of 60" in screen_text(app)
            if arrays_of != iteration:
                assert f"histograms: iteration {arrays_of}," in screen_text(app)
            shown = shown_counts(app)
            assert len(shown) == 2
            for gi, (centres, counts) in enumerate(shown):
                lhs = batch_arrays(chunks, arrays_of, "lhs", gi)
                assert counts.sum() > 0
                np.testing.assert_array_equal(counts, expected_counts(centres, lhs.astype(float)))

        # page keys jump a twentieth of the run: 3 batches
        await at("left", 59, 56)    # 59 kept no arrays: the last batch before it that did
        await at("pageup", 56, 56)
        await at("home", 1, 1)
        await at("pagedown", 4, 4)
        await at("right", 5, 5)
        await at("end", 60, 56)
        before = [c.copy() for _, c in shown_counts(app)]
        await at("pageup", 57, 56)
        await at("left", 56, 56)
        await at("left", 55, 48)
        assert any(not np.array_equal(a, c) for a, (_, c) in zip(before, shown_counts(app), strict=True))
        # the Sparsening summary is the scrubbed batch's own, from the summary
        sparser = column(chunks, "sparser", 0)[54]
        assert f"pos  sparser {100 * sparser:.1f} %" in screen_text(app)


@run_async
async def test_keys_that_steer_training_are_refused_in_one_line(runs):
    folder, _ = runs["alpha"]
    app = ReplayApp(RunReader(folder))
    async with app.run_test(size=(160, 48)) as pilot:
        await opened(pilot, app)
        await pilot.press("left")
        config = app.runner.config
        for key in ("space", "r", "n", "m", "l", "right_square_bracket", "b", "w", "e", "p"):
            await pilot.press(key)
            assert app._message == (refusal_line(), "warning"), key
            assert len(app.screen_stack) == 1 and app.runner.config == config
            assert app.recorded.last_iteration == 59
        assert refusal_line() in screen_text(app)
        assert refusal_line().startswith("a recording: space, n, r, m, l")
        await pilot.press("plus")  # a view parameter still changes
        assert app.runner.config.smooth == 50
        assert await wait_until(pilot, lambda: app.view_options.window == 50)


@run_async
async def test_compare_draws_each_series_of_the_other_run_by_its_name(runs):
    (a, a_chunks), (b, b_chunks) = runs["alpha"], runs["beta"]
    app = ReplayApp(RunReader(a), [RunReader(b)])
    async with app.run_test(size=(160, 48)) as pilot:
        await opened(pilot, app)
        assert "compared with beta" in screen_text(app)
        for _ in range(25):  # to iteration 35: beta's first 35 batches beside alpha's
            await pilot.press("left")
        for _ in range(2):
            app.draw_now()
            await pilot.pause()
        pane = app.query_one(SparseningPane)
        for gi, plot in enumerate(pane.plots):
            series = {s.label: s for s in plot.figure.series}
            assert {"theorem", "general", "sparser", "theorem beta", "general beta", "sparser beta"} <= series.keys()
            other = series["sparser beta"]
            np.testing.assert_array_equal(other.x, np.arange(1, 36))
            np.testing.assert_array_equal(other.y, column(b_chunks, "sparser", gi)[:35])
            np.testing.assert_array_equal(series["theorem beta"].y, column(b_chunks, "theorem", gi)[:35])
            np.testing.assert_array_equal(series["sparser"].y, column(a_chunks, "sparser", gi)[:35])
            assert other.color not in {series[k].color for k in ("theorem", "general", "sparser")}
        sparsity = app.query_one("#sparsity")
        labels = {s.label for p in sparsity.plots for s in p.figure.series}
        assert {"S pos beta", "silenced neg beta", "g pos beta", "loss beta"} <= labels
        await pilot.press("2")
        await pilot.pause()
        app.draw_now()
        await pilot.pause()
        assert "beta" in screen_text(app)  # named in the legend


def test_the_summary_read_in_parts_is_the_summary_read_whole(runs, monkeypatch, tmp_path):
    folder, chunks = runs["alpha"]
    monkeypatch.setattr(recording, "FIRST_ROWS", 7)
    monkeypatch.setattr(recording, "PART_ROWS", 11)
    monkeypatch.setattr(recording, "_PIECE", 300)
    parts = list(summary_in_parts(RunReader(folder)))
    assert [len(p) for p in parts] == [7, 11, 11, 11, 11, 9]
    history = RecordedHistory(RunReader(folder), summary=parts[0])
    history.move_to(3)
    for part in parts[1:]:
        history.extend(part)
    history.extend(None)
    assert history.complete and history.rows == 60 and history.cursor == 3
    np.testing.assert_array_equal(history.full_series("pos.sparser"), column(chunks, "sparser", 0))
    np.testing.assert_array_equal(history.full_series("loss"), column(chunks, "loss"))
    # a summary cut short: the parts up to the cut, then the reader's rows after them, with its warning
    cut = tmp_path / "cut"
    cut.mkdir()
    for f in folder.iterdir():
        if f.is_file():
            (cut / f.name).write_bytes(f.read_bytes())
    data = (folder / SUMMARY).read_bytes()
    (cut / SUMMARY).write_bytes(data[:len(data) * 2 // 3])
    run = RunReader(cut)
    parts = list(summary_in_parts(run))
    got = np.concatenate([p.column("iteration") for p in parts])
    assert got.tolist() == list(range(1, len(got) + 1)) and 20 < len(got) < 60
    assert len(run.warnings) == 1 and run.warnings[0].startswith(SUMMARY)
    np.testing.assert_array_equal(np.concatenate([p.group_column("sparser", "neg") for p in parts]),
                                  column(chunks, "sparser", 1)[:len(got)])


def _state(folder: Path) -> list:
    return sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir())


def test_open_refuses_what_is_not_a_run_in_one_line_and_changes_nothing(runs, tmp_path, capsys):
    folder, _ = runs["alpha"]
    empty = tmp_path / "empty"
    empty.mkdir()
    half = tmp_path / "half"
    half.mkdir()
    for f in folder.iterdir():
        if f.is_file() and f.name != SUMMARY:
            (half / f.name).write_bytes(f.read_bytes())
    cases = [([str(empty)], "has no run.json"), ([str(half)], "lacks summary.jsonl.gz"),
             ([str(tmp_path / "nothing")], "does not exist"), (["no-such-run"], "no run named"),
             ([str(folder), "--compare", str(empty)], "has no run.json")]
    before = {p: _state(p) for p in (empty, half, folder)}
    for argv, words in cases:
        assert main(["open", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("fftui open: ") and words in err, err
    assert {p: _state(p) for p in before} == before
    assert not (tmp_path / "nothing").exists()


def test_run_names_in_legends_drop_the_date_when_that_keeps_them_apart():
    assert recording.short_names(["20261129-173000-ff-linear", "20261129-174000-ff-logistic"]) == \
        ["ff-linear", "ff-logistic"]
    same = ["20261129-173000-ff", "20261129-174000-ff"]
    assert recording.short_names(same) == same
    assert recording.short_names(["alpha", "beta"]) == ["alpha", "beta"]


@run_async
async def test_the_live_app_overlays_a_recorded_run_picked_with_o(runs, small_sample, tmp_path, monkeypatch):
    from engine.store import claim_run_folder
    from fftui.overlay import OverlayScreen
    from test_app import fake_app, make_records, settle

    monkeypatch.setenv("FFTUI_DATA_DIR", str(tmp_path / "data"))
    folder = claim_run_folder("overlaid")
    for f in runs["beta"][0].iterdir():
        if f.is_file() and f.name != "metrics.jsonl":
            (folder / f.name).write_bytes(f.read_bytes())
    chunks = runs["beta"][1]
    app = fake_app(small_sample, records=make_records(30))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("o")
        assert await wait_until(pilot, lambda: isinstance(app.screen, OverlayScreen))
        assert folder.name in screen_text(app)
        await pilot.press("enter")
        assert await wait_until(pilot, lambda: len(app.history.others) == 1)
        await settle(pilot)
        label = "overlaid"  # the run's name without its date
        pane = app.query_one(SparseningPane)
        for gi, plot in enumerate(pane.plots):
            series = {s.label: s for s in plot.figure.series}
            np.testing.assert_array_equal(series[f"sparser {label}"].x, np.arange(1, 31))  # to the live iteration
            np.testing.assert_array_equal(series[f"sparser {label}"].y, column(chunks, "sparser", gi)[:30])
        assert f"overlaid: {label}" in screen_text(app)
        await pilot.press("o")
        assert await wait_until(pilot, lambda: isinstance(app.screen, OverlayScreen))
        await pilot.press("enter")  # the first option now takes the overlay away
        assert await wait_until(pilot, lambda: app.history.others == [])
        await settle(pilot)
        assert all(not s.label.endswith(label) for p in pane.plots for s in p.figure.series)


@run_async
async def test_a_run_whose_arrays_cannot_be_read_ends_the_app_with_one_line(runs, tmp_path):
    import pyarrow as pa

    folder, _ = runs["alpha"]
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in folder.iterdir():
        if f.is_file():
            (bad / f.name).write_bytes(f.read_bytes())
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, pa.schema([("other", pa.int64())])) as writer:
        writer.write_batch(pa.record_batch([pa.array([1, 2])], names=["other"]))
    (bad / "samples.arrows").write_bytes(sink.getvalue().to_pybytes())
    app = ReplayApp(RunReader(bad))
    async with app.run_test(size=(160, 48)) as pilot:
        assert await wait_until(pilot, lambda: app.load_error is not None)
    assert app.return_code == 2
    assert "other per-sample columns" in str(app.load_error) and "\n" not in str(app.load_error)


@run_async
async def test_a_run_of_the_other_mode_is_drawn_beside_each_group(runs, small_sample, tmp_path):
    folder, _ = runs["alpha"]
    chunks = train(small_sample, 10, mode="descent")
    descent = record(tmp_path / "descent", chunks, "none", mode="descent")
    app = ReplayApp(RunReader(folder), [RunReader(descent)])
    async with app.run_test(size=(160, 48)) as pilot:
        await opened(pilot, app)
        for plot in app.query_one(SparseningPane).plots:
            series = {s.label: s for s in plot.figure.series}
            np.testing.assert_array_equal(series["sparser all descent"].y, column(chunks, "sparser", 0))
            assert "theorem all descent" in series


def test_the_configuration_shown_follows_the_recorded_changes(small_sample, tmp_path):
    """A run changed mid-way (lr, loss): each scrubbed batch is shown with the parameters it was
    trained with, so that the 'theorem = general' caption and the status bar hold for that batch."""
    from engine.config import theorem_is_general

    chunks = train(small_sample, 12)
    folder = tmp_path / "changed"
    cfg = Config(mode="ff", width=64, batch_size=48, iters=12, seed=3)
    writer = RunWriter(claim_out_folder(folder), {"config": cfg.as_dict(), "device": "cpu"},
                       keep_samples="all").start()
    for chunk in chunks:
        assert writer.put(chunk)
    writer.event("change", 4, changes={"lr": [0.001, 0.002]})
    writer.event("change", 8, changes={"loss": ["linear", "logistic"], "batch_size": [48, 96]})
    writer.close("finished")
    history = RecordedHistory(RunReader(folder))
    seen = {}
    for row in range(12):
        history.move_to(row)
        shown = history.config
        seen[history.last_iteration] = (shown.lr, shown.loss, shown.batch_size, theorem_is_general(shown))
    assert seen[1] == seen[4] == (0.001, "linear", 48, True)      # changes apply after their batch
    assert seen[5] == seen[8] == (0.002, "linear", 48, True)
    assert seen[9] == seen[12] == (0.002, "logistic", 96, False)
