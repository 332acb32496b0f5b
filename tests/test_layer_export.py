"""Every layer of a stack where a recorded run leaves the store: its replay as chunks, its TensorBoard
export, the runs overlaid with `o` in the live app and a sweep's mean curves in `fftui open`. Each
against the chunks the trainer emitted for each layer, or the summary's JSON lines read here; a
one-layer run gives what it gave before."""
from __future__ import annotations

import gzip
import importlib.util
import json
import shutil

import numpy as np
import pytest

from engine.metrics import BATCH_METRICS, GROUP_METRICS, SAMPLE_METRICS
from engine.stack import STACK_METRICS, StackChunk
from engine.store import RunReader, RunWriter, SamplePolicy
from fftui.cli import main
from fftui.history import History
from fftui.recording import RecordedHistory
from fftui.widgets.sparsening import SparseningPane
from test_app import run_async, screen_text, wait_until
from test_replay import opened

WIDTHS = (16, 12, 8)
ITERS = 12
KEEP = "4"
FLAGS = ["run", "--headless", "--data", "sample", "--widths", ",".join(map(str, WIDTHS)), "--batch-size", "8",
         "--dtype", "float64", "--keep-samples", KEEP, "--quiet", "--lr", "0.05", "--iters", str(ITERS)]
GROUPS = ("pos", "neg")


def run_stack(folder, seed: int = 3) -> list:
    """A 3-layer stack run by the CLI into folder; the chunks the trainer handed the writer."""
    emitted: list = []
    put = RunWriter.put

    def spy_put(self, chunk, wait=False):
        emitted.append(chunk)
        return put(self, chunk, wait)

    patch = pytest.MonkeyPatch()
    patch.setattr(RunWriter, "put", spy_put)
    try:
        assert main(FLAGS + ["--seed", str(seed), "--out", str(folder)]) == 0
    finally:
        patch.undo()
    assert emitted and all(isinstance(c, StackChunk) for c in emitted)
    return emitted


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stack") / "run"
    return folder, run_stack(folder)


def emitted_layer(emitted: list, layer: int, name: str) -> np.ndarray:
    """One layer's column of a metric over every batch, from the trainer's own chunks."""
    return np.concatenate([c.layers[layer].columns[name] for c in emitted])


def emitted_end(emitted: list, layer: int, name: str) -> np.ndarray:
    return np.concatenate([c.ends[layer][name] for c in emitted])


def summary_lines(folder) -> list[dict]:
    with gzip.open(folder / "summary.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f]


def line_value(line: dict, layer: int, name: str, group: str | None = None) -> float:
    """A layer's number from one summary line as JSON wrote it (null: NaN)."""
    entry = line["layers"][layer]
    value = entry["groups"][group][name] if group else entry[name]
    return np.nan if value is None else float(value)


# -- RunReader.chunks ---------------------------------------------------------------------------------
def test_a_stacks_replay_gives_every_layer_as_the_trainer_made_it(stack):
    folder, emitted = stack
    replay = RunReader(folder).chunks()
    assert all(isinstance(c, StackChunk) and len(c.layers) == 3 for c in replay)
    assert sum(len(c) for c in replay) == ITERS
    kept = np.flatnonzero(SamplePolicy.parse(KEEP).keep(np.arange(1, ITERS + 1)))
    assert 0 < len(kept) < ITERS  # some batches kept their arrays, some not
    for layer in range(3):
        for m in (*BATCH_METRICS, *GROUP_METRICS):
            if m.dtype == "str":
                assert {c.layers[layer].constants[m.name] for c in replay} == \
                       {c.layers[layer].constants[m.name] for c in emitted}
                continue
            got = np.concatenate([c.layers[layer].columns[m.name] for c in replay])
            np.testing.assert_array_equal(got, emitted_layer(emitted, layer, m.name), err_msg=f"{m.name} {layer}")
        for m in SAMPLE_METRICS:
            got = np.concatenate([c.layers[layer].columns[m.name] for c in replay])
            want = emitted_layer(emitted, layer, m.name)
            np.testing.assert_array_equal(got[kept], want[kept], err_msg=f"{m.name} {layer}")
            dropped = np.setdiff1d(np.arange(ITERS), kept)
            fill = got[dropped]
            assert (np.isnan(fill) if fill.dtype.kind == "f" else (fill == -1) if fill.dtype.kind == "i"
                    else ~fill).all(), m.name
        for m in STACK_METRICS:
            got = np.concatenate([c.ends[layer][m.name] for c in replay])
            if m.level == "sample":  # the store does not keep the end-to-end outcome per sample
                assert got.shape == emitted_end(emitted, layer, m.name).shape and (got == -1).all()
            else:
                np.testing.assert_array_equal(got, emitted_end(emitted, layer, m.name), err_msg=f"{m.name} {layer}")
    # the layers differ, and a slice is the same rows of every layer
    sparser = np.concatenate([c.layer_column("sparser") for c in replay])
    assert not np.array_equal(sparser[:, 0], sparser[:, 1], equal_nan=True)
    part = RunReader(folder).chunks(3, 9)
    assert sum(len(c) for c in part) == 6
    np.testing.assert_array_equal(np.concatenate([c.layer_column("goodness") for c in part]),
                                  np.concatenate([c.layer_column("goodness") for c in emitted])[3:9])


def test_a_one_layer_replay_stays_plain_chunks(tmp_path):
    folder = tmp_path / "one"
    assert main(["run", "--headless", "--data", "sample", "--width", "16", "--batch-size", "8", "--iters", "4",
                 "--quiet", "--out", str(folder)]) == 0
    replay = RunReader(folder).chunks()
    assert replay and not any(isinstance(c, StackChunk) for c in replay)
    lines = summary_lines(folder)
    got = np.concatenate([c.columns["sparser"] for c in replay])
    want = np.array([[np.nan if line["groups"][g]["sparser"] is None else line["groups"][g]["sparser"]
                      for g in GROUPS] for line in lines])
    np.testing.assert_array_equal(got, want)


# -- TensorBoard ----------------------------------------------------------------------------------------
needs_tensorboard = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                                       reason="the tensorboard extra is not installed")


def read_events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    return events


@needs_tensorboard
def test_a_stacks_tensorboard_export_holds_every_layer_tagged_by_it(stack, tmp_path):
    folder, emitted = stack
    assert main(["runs", "export", str(folder), "--tensorboard", str(tmp_path)]) == 0
    events = read_events(tmp_path / folder.name)
    tags = set(events.Tags()["scalars"])
    lines = summary_lines(folder)
    steps = [line["iteration"] for line in lines]
    assert steps == list(range(1, ITERS + 1))
    for layer in range(3):
        tag = f"layer{layer}"  # the records' index: 0 = the first
        for gi, group in enumerate(GROUPS):
            for name in ("sparser", "theorem", "general", "goodness", "count", "silenced"):
                want = emitted_layer(emitted, layer, name)[:, gi].astype(float)
                from_lines = np.array([line_value(line, layer, name, group) for line in lines])
                np.testing.assert_array_equal(want, from_lines)
                ok = np.isfinite(want)
                scalars = events.Scalars(f"{tag}/{group}/{name}")
                assert [e.step for e in scalars] == np.array(steps)[ok].tolist(), (tag, group, name)
                assert [e.value for e in scalars] == pytest.approx(want[ok].tolist(), rel=1e-6), (tag, group, name)
            for name in ("sparser_end", "agree_theorem_end", "valid_end", "input_silenced"):
                want = emitted_end(emitted, layer, name)[:, gi].astype(float)
                ok = np.isfinite(want)
                assert [e.value for e in events.Scalars(f"{tag}/{group}/{name}")] == \
                       pytest.approx(want[ok].tolist(), rel=1e-6), (tag, group, name)
        for name in ("loss", "sign_flip"):
            want = emitted_layer(emitted, layer, name).astype(float)
            assert [e.value for e in events.Scalars(f"{tag}/batch/{name}")] == \
                   pytest.approx(want[np.isfinite(want)].tolist(), rel=1e-6)
        # each layer's histograms of the kept batches
        kept = np.flatnonzero(SamplePolicy.parse(KEEP).keep(np.arange(1, ITERS + 1))) + 1
        lhs = events.Histograms(f"{tag}/pos/lhs")
        assert [h.step for h in lhs] == kept.tolist()
        for h in lhs:
            values = emitted_layer(emitted, layer, "lhs")[h.step - 1, 0]
            values = values[np.isfinite(values)]
            assert h.histogram_value.num == values.size
            assert h.histogram_value.sum == pytest.approx(float(values.sum()), rel=1e-6)
    # the layers' curves differ; what every layer shares keeps its one-layer tag, once
    assert [e.value for e in events.Scalars("layer0/pos/goodness")] != \
           [e.value for e in events.Scalars("layer2/pos/goodness")]
    assert "batch/step_time" in tags and "batch/epoch" in tags and "layer1/batch/step_time" not in tags
    assert not any(t.startswith("layer3/") for t in tags)
    assert "pos/sparser" not in tags and "batch/loss" not in tags
    assert "pos/lhs" not in set(events.Tags()["histograms"])


@needs_tensorboard
def test_a_one_layer_export_keeps_its_tags(tmp_path):
    folder = tmp_path / "one"
    assert main(["run", "--headless", "--data", "sample", "--width", "16", "--batch-size", "8", "--iters", "3",
                 "--keep-samples", "all", "--quiet", "--out", str(folder)]) == 0
    assert main(["runs", "export", str(folder), "--tensorboard", str(tmp_path / "tb")]) == 0
    events = read_events(tmp_path / "tb" / "one")
    want = {f"batch/{m.name}" for m in BATCH_METRICS if m.dtype != "str" and m.name != "iteration"}
    want |= {f"{g}/{m.name}" for g in GROUPS for m in GROUP_METRICS}
    lines = summary_lines(folder)
    finite = {t for t in want if any(  # a series null throughout writes no scalar
        (line.get(t[6:]) if t.startswith("batch/") else line["groups"][t.split("/")[0]][t.split("/")[1]]) is not None
        for line in lines)}
    assert set(events.Tags()["scalars"]) == finite
    assert set(events.Tags()["histograms"]) == {"pos/lhs", "pos/rhs", "neg/lhs", "neg/rhs"}


# -- the live app's overlays ------------------------------------------------------------------------------
@run_async
async def test_the_live_apps_overlays_follow_the_layer_chosen(stack, small_sample, tmp_path, monkeypatch):
    from engine.store import claim_run_folder
    from fftui.overlay import OverlayScreen
    from test_app import settle
    from test_app_layers import STACK, Trainer, stack_app

    folder, emitted = stack
    monkeypatch.setenv("FFTUI_DATA_DIR", str(tmp_path / "data"))
    stored = claim_run_folder("stacked")
    for f in folder.iterdir():
        if f.is_file():
            (stored / f.name).write_bytes(f.read_bytes())
    trainer = Trainer(STACK, small_sample)
    live = []
    for _ in range(20):
        live += trainer.advance()
    live += trainer.flush()
    app = stack_app(small_sample, live)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("greater_than_sign")  # layer 2, before the run is overlaid
        await settle(pilot)
        await pilot.press("o")
        assert await wait_until(pilot, lambda: isinstance(app.screen, OverlayScreen))
        await pilot.press("enter")
        assert await wait_until(pilot, lambda: len(app.history.others) == 1)
        await settle(pilot)
        pane = app.query_one(SparseningPane)

        def overlaid(gi: int) -> np.ndarray:
            return next(s for s in pane.plots[gi].figure.series if s.label == "sparser stacked").y

        for shown in (1, 2, 0):  # >: layer 2; then > once more: 3; then < twice: 1
            assert f"layer {shown + 1} of 3" in app._status.text
            for gi in range(2):
                np.testing.assert_array_equal(overlaid(gi), emitted_layer(emitted, shown, "sparser")[:, gi])
            if shown == 1:
                await pilot.press("greater_than_sign")
            elif shown == 2:
                await pilot.press("less_than_sign", "less_than_sign")
            await settle(pilot)
        assert not np.array_equal(emitted_layer(emitted, 0, "sparser"), emitted_layer(emitted, 1, "sparser"),
                                  equal_nan=True)


def test_a_one_layer_overlay_beside_a_stack_shows_its_only_layer(tmp_path):
    folder = tmp_path / "one"
    assert main(["run", "--headless", "--data", "sample", "--width", "16", "--batch-size", "8", "--iters", "4",
                 "--quiet", "--out", str(folder)]) == 0
    history, other = History(), RecordedHistory(RunReader(folder))
    history.others = [other]
    history.select(2)
    assert history.layer == 2 and other.layer == 2 and other.shown_layer == 0
    want = [np.nan if line["groups"]["neg"]["sparser"] is None else line["groups"]["neg"]["sparser"]
            for line in summary_lines(folder)]
    np.testing.assert_array_equal(other.full_series("neg.sparser"), want)


# -- fftui open of a sweep of stacks ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack_sweep(tmp_path_factory):
    """A sweep folder of one setting, two seeds, whose trials are stacks run here by the CLI."""
    from engine.config import Config
    from fftui.sweep.definition import build
    from fftui.sweep.state import SweepState

    out = tmp_path_factory.mktemp("sweep") / "s"
    state = SweepState.create(out, build({"seeds": 2}, Config(widths=WIDTHS, batch_size=8)))
    for trial in state.trials:
        where = state.trial_folder(trial)
        shutil.rmtree(where, ignore_errors=True)
        run_stack(where, seed=int(trial["config"]["seed"]))
    return out, [state.trial_folder(t) for t in state.trials]


@run_async
async def test_open_of_a_sweep_of_stacks_shows_each_layers_mean_over_seeds(stack_sweep):
    from fftui.replay import ReplayApp
    from fftui.sweep.overlay import setting_runs

    folder, trials = stack_sweep
    lines = [summary_lines(t) for t in trials]

    def per_seed(layer: int, group: str) -> np.ndarray:
        return np.array([[line_value(line, layer, "sparser", group) for line in seed] for seed in lines])

    main_run, others, _ = setting_runs(folder)
    app = ReplayApp(main_run, others)
    async with app.run_test(size=(160, 48)) as pilot:
        await opened(pilot, app)
        pane = app.query_one(SparseningPane)
        assert "layer 1 of 3" in screen_text(app)
        for layer in (0, 1, 2):
            assert f"layer {layer + 1} of 3" in screen_text(app)
            for plot, group in zip(pane.plots, GROUPS, strict=True):
                series = {s.label: s for s in plot.figure.series}
                values = per_seed(layer, group)
                mean, sd = values.mean(axis=0), values.std(axis=0, ddof=1)
                np.testing.assert_allclose(series["sparser"].y, mean, rtol=1e-12)
                band = [k for k in series if k.endswith("+sd")]
                assert len(band) == 1
                np.testing.assert_allclose(series[band[0]].y, mean + sd, rtol=1e-12)
            await pilot.press("greater_than_sign")
            await opened(pilot, app)
        assert "layer 1 of 3" in screen_text(app)  # after the last, the first
        assert not np.allclose(per_seed(0, "pos"), per_seed(2, "pos"), equal_nan=True)
