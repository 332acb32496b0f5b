"""A stack's per-sample arrays in the run store: every layer of every kept batch, each equal to what
the trainer made for that layer and to a literal float64 computation from the weights; a folder
written without the layer column reads as layer 0; a stack resumed records what one uninterrupted
run records; `fftui open` of a stack shows any layer with the live app's keys."""
from __future__ import annotations

import math
import shutil

import numpy as np
import pyarrow as pa
import pytest
import torch

from engine import network
from engine.reference import literal_hoyer, literal_theorem2
from engine.store import RunReader, RunWriter
from engine.trainer import Trainer
from fftui.cli import main
from fftui.recording import RecordedHistory
from fftui.replay import ReplayApp
from fftui.widgets.sparsening import SparseningPane
from test_app import run_async, screen_text, wait_until
from test_replay import expected_counts, shown_counts
from test_resume import same_records

WIDTHS = (16, 12, 8)
N = 8  # positives per batch, and as many negatives
ITERS = 10
FLAGS = ["run", "--headless", "--data", "sample", "--widths", ",".join(map(str, WIDTHS)), "--batch-size", str(N),
         "--dtype", "float64", "--keep-samples", "all", "--quiet", "--seed", "3", "--lr", "0.05"]
SAMPLE_NAMES = ("lhs", "rhs", "actual", "predicted_theorem", "predicted_general")


@pytest.fixture(scope="module")
def stack_run(tmp_path_factory):
    """A 3-layer stack run by the CLI on the shipped sample, every batch's arrays kept; beside the
    folder, the chunks the trainer handed the writer and, per iteration, the batch and every
    layer's weights before its step (spied on while it ran), and the weights after the last step."""
    folder = tmp_path_factory.mktemp("stack") / "run"
    emitted: list = []
    steps: list[tuple[torch.Tensor, int, list[torch.Tensor]]] = []
    put, next_batch = RunWriter.put, Trainer.next_batch

    def spy_put(self, chunk, wait=False):
        emitted.append(chunk)
        return put(self, chunk, wait)

    def spy_batch(self):
        x, n_pos = next_batch(self)
        steps.append((x.detach().clone().double(), n_pos, [w.detach().clone().double() for w in network.weights(self)]))
        return x, n_pos

    patch = pytest.MonkeyPatch()
    patch.setattr(RunWriter, "put", spy_put)
    patch.setattr(Trainer, "next_batch", spy_batch)
    try:
        assert main(FLAGS + ["--iters", str(ITERS), "--out", str(folder)]) == 0
    finally:
        patch.undo()
    checkpoint = RunReader(folder).checkpoint()
    assert checkpoint is not None and checkpoint.iteration == ITERS
    final = [checkpoint.weights[name].double() for name in ("w", "w1", "w2")]
    return folder, emitted, steps, final


def emitted_column(emitted: list, name: str, layer: int, group: int) -> np.ndarray:
    """A SAMPLE metric of one layer and group over every batch, from the trainer's own chunks."""
    return np.concatenate([c.layers[layer].columns[name][:, group] for c in emitted])


def unit_rows(h: torch.Tensor) -> torch.Tensor:
    """Each row scaled to unit length one at a time (a zero row stays zero)."""
    rows = []
    for row in h:
        norm = math.sqrt(sum(float(v) ** 2 for v in row))
        rows.append(row / norm if norm > 0 else row.clone())
    return torch.stack(rows)


def test_every_layer_of_every_kept_batch_is_stored_as_the_trainer_made_it(stack_run):
    folder, emitted, _, _ = stack_run
    samples = RunReader(folder).samples
    assert samples.layers == 3 and samples.groups == ("pos", "neg")
    assert len(samples) == ITERS * 3 * 2  # a row per batch, layer and group
    for layer in range(3):
        for gi, group in enumerate(("pos", "neg")):
            assert samples.iterations(group, layer).tolist() == list(range(1, ITERS + 1))
            for name in SAMPLE_NAMES:
                stored = samples.column(name, group, layer)
                assert stored.shape == (ITERS, N), (name, layer)  # N samples a group, whatever the width
                np.testing.assert_array_equal(stored, emitted_column(emitted, name, layer, gi), err_msg=name)
    # the layers differ (not the first layer's arrays three times)
    assert not np.array_equal(samples.column("lhs", "pos", 0), samples.column("lhs", "pos", 1), equal_nan=True)
    assert samples.column("lhs", "pos", 3).shape[0] == 0  # no fourth layer


def test_every_layers_stored_arrays_against_a_literal_float64_computation(stack_run):
    """From the weights before and after each step and the batch: each layer's input is the unit
    activation of the layer below (before the step), its sides those of Theorem 2, its outcome
    whether its activation's Hoyer sparsity rose with the input held fixed."""
    folder, _, steps, final = stack_run
    samples = RunReader(folder).samples
    assert len(steps) == ITERS
    checked = 0
    for i, (x, n_pos, before) in enumerate(steps):
        after = steps[i + 1][2] if i + 1 < len(steps) else final
        inputs = x
        for layer in range(3):
            h = torch.relu(inputs @ before[layer].T)
            h_new = torch.relu(inputs @ after[layer].T)
            sides = literal_theorem2(inputs, h, n_pos)
            arrays = [samples.at(i + 1, g, layer) for g in ("pos", "neg")]
            lhs = np.concatenate([a["lhs"] for a in arrays])
            rhs = np.concatenate([a["rhs"] for a in arrays])
            actual = np.concatenate([a["actual"] for a in arrays])
            for k, row in enumerate(sides):
                if math.isnan(row["lhs"]):
                    assert math.isnan(lhs[k]) and actual[k] == -1
                    continue
                assert lhs[k] == pytest.approx(row["lhs"], rel=1e-6, abs=1e-9), (i, layer, k)
                assert rhs[k] == pytest.approx(row["rhs"], rel=1e-6, abs=1e-9), (i, layer, k)
                s0, s1 = literal_hoyer(h[k]), literal_hoyer(h_new[k])
                if math.isnan(s1):
                    assert actual[k] == -1
                elif abs(s1 - s0) > 1e-9:
                    assert actual[k] == int(s1 > s0), (i, layer, k)
                    checked += 1
            inputs = unit_rows(h)
    assert checked > ITERS * 3 * N  # most samples decided


def test_a_run_stored_without_the_layer_column_reads_as_its_first_layer(stack_run, tmp_path):
    folder, emitted, _, _ = stack_run
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    table = RunReader(folder).samples.table
    first = table.filter(pa.compute.equal(table["layer"], 0)).drop_columns(["layer"])
    assert "layer" not in first.schema.names
    with pa.ipc.new_stream(old / "samples.arrows", first.schema,
                           options=pa.ipc.IpcWriteOptions(compression="zstd")) as out:
        for batch in first.to_batches():
            out.write_batch(batch)
    samples = RunReader(old).samples
    assert samples.layers == 1
    np.testing.assert_array_equal(samples.column("rhs", "neg"), emitted_column(emitted, "rhs", 0, 1))
    assert samples.iterations("neg", 1).size == 0 and samples.at(3, "pos", 1) is None
    history = RecordedHistory(RunReader(old))
    history.select(1)  # the summary still holds every layer's numbers
    assert history.layers == 3 and history.sides("pos")[0].size == 0
    assert history.sides_missing("pos") == "this run kept the first layer's per-sample arrays only"
    history.select(0)
    np.testing.assert_array_equal(history.sides("pos")[0], emitted_column(emitted, "lhs", 0, 0)[-1])

    # a file holding such a stream, then one with the column (an old stack's run resumed): one table
    with open(old / "samples.arrows", "ab") as f, pa.ipc.new_stream(f, table.schema) as out:
        out.write_table(table.filter(pa.compute.greater(table["iteration"], ITERS - 2)))
    samples = RunReader(old).samples
    assert samples.layers == 3
    assert samples.iterations("pos", 0).tolist() == [*range(1, ITERS + 1), ITERS - 1, ITERS]
    assert samples.iterations("pos", 2).tolist() == [ITERS - 1, ITERS]
    np.testing.assert_array_equal(samples.column("lhs", "pos", 2), emitted_column(emitted, "lhs", 2, 0)[-2:])


def test_a_one_layer_run_stores_what_it_stored_before(tmp_path):
    folder = tmp_path / "one"
    assert main(["run", "--headless", "--data", "sample", "--width", "16", "--batch-size", "8", "--iters", "3",
                 "--keep-samples", "all", "--quiet", "--out", str(folder)]) == 0
    reader = pa.ipc.open_stream(pa.OSFile(str(folder / "samples.arrows")))
    assert reader.schema.names == ["iteration", "group", *SAMPLE_NAMES]
    assert RunReader(folder).samples.layers == 1


def test_the_keep_samples_policy_keeps_a_batch_with_every_layer_or_none(tmp_path):
    folder = tmp_path / "kept"
    flags = [f if f != "all" else "2" for f in FLAGS]  # every batch up to 2, then 4, then 8 (doubling strides)
    assert main([*flags, "--iters", "9", "--out", str(folder)]) == 0
    samples = RunReader(folder).samples
    for layer in range(3):
        assert samples.iterations("pos", layer).tolist() == [1, 2, 4, 8], layer


def test_a_stack_resumed_records_what_one_uninterrupted_run_records(tmp_path, capsys):
    first, whole = tmp_path / "first", tmp_path / "whole"
    assert main(FLAGS + ["--iters", "7", "--out", str(first)]) == 0
    assert main(FLAGS + ["--iters", "12", "--out", str(whole)]) == 0
    assert main(["run", "--headless", "--quiet", "--resume", str(first), "--iters", "12"]) == 0
    same_records(first, whole)
    samples = RunReader(first).samples
    for layer in range(3):
        assert samples.iterations("neg", layer).tolist() == list(range(1, 13))
        np.testing.assert_array_equal(samples.column("lhs", "neg", layer), RunReader(whole).samples.column(
            "lhs", "neg", layer))


def _layer_values(emitted: list, name: str, layer: int, group: int) -> np.ndarray:
    return np.concatenate([c.layer_column(name)[:, layer, group] for c in emitted]).astype(float)


async def _drawn(pilot, app) -> None:
    for _ in range(2):
        app.draw_now()
        await pilot.pause()


@run_async
async def test_open_shows_any_layer_of_a_stack_with_the_live_apps_keys(stack_run):
    folder, emitted, _, _ = stack_run
    app = ReplayApp(RunReader(folder))
    async with app.run_test(size=(160, 48)) as pilot:
        assert await wait_until(pilot, lambda: app.recorded is not None and app.recorded.complete)
        await _drawn(pilot, app)
        assert "layer 1 of 3" in screen_text(app)
        pane = app.query_one(SparseningPane)

        def sparser() -> np.ndarray:
            return next(s for s in pane.plots[0].figure.series if s.label == "sparser").y

        np.testing.assert_allclose(sparser(), _layer_values(emitted, "sparser", 0, 0), rtol=1e-12)
        await pilot.press("greater_than_sign")
        await _drawn(pilot, app)
        assert "layer 2 of 3" in screen_text(app) and pane.border_title.endswith("· layer 2 of 3")
        np.testing.assert_allclose(sparser(), _layer_values(emitted, "sparser", 1, 0), rtol=1e-12)
        assert not np.allclose(sparser(), _layer_values(emitted, "sparser", 0, 0), equal_nan=True)
        # the histograms: layer 2's sides of the batch shown
        lhs, _ = app.recorded.sides("pos")
        np.testing.assert_array_equal(lhs, emitted_column(emitted, "lhs", 1, 0)[-1])
        centres, counts = shown_counts(app)[0]  # the positives' histogram drawn: layer 2's
        np.testing.assert_array_equal(counts, expected_counts(centres, lhs))
        # the newest batch's numbers are layer 2's, its loss too
        latest = app.recorded.latest
        assert latest.loss == pytest.approx(_layer_values_batch(emitted, "loss", 1)[-1], rel=1e-12)
        assert latest.groups["neg"].goodness == pytest.approx(_layer_values(emitted, "goodness", 1, 1)[-1], rel=1e-12)
        await pilot.press("left")  # the scrubber keeps the layer
        await _drawn(pilot, app)
        assert app.recorded.last_iteration == ITERS - 1 and "layer 2 of 3" in screen_text(app)
        np.testing.assert_array_equal(app.recorded.sides("neg")[1], emitted_column(emitted, "rhs", 1, 1)[-2])
        await pilot.press("less_than_sign", "less_than_sign")
        await _drawn(pilot, app)
        assert "layer 3 of 3" in screen_text(app)
        np.testing.assert_allclose(sparser(), _layer_values(emitted, "sparser", 2, 0)[:-1], rtol=1e-12)


def _layer_values_batch(emitted: list, name: str, layer: int) -> np.ndarray:
    return np.concatenate([c.layer_column(name)[:, layer] for c in emitted]).astype(float)


@run_async
async def test_open_of_one_layer_says_the_layer_keys_need_a_stack(tmp_path):
    folder = tmp_path / "one"
    assert main(["run", "--headless", "--data", "sample", "--width", "16", "--batch-size", "8", "--iters", "3",
                 "--quiet", "--out", str(folder)]) == 0
    app = ReplayApp(RunReader(folder))
    async with app.run_test(size=(160, 48)) as pilot:
        assert await wait_until(pilot, lambda: app.recorded is not None and app.recorded.complete)
        await _drawn(pilot, app)
        assert app.layer_count() == 1 and "layer 1 of" not in screen_text(app)
        before = app.recorded.version
        await pilot.press("greater_than_sign")
        await _drawn(pilot, app)
        assert "one layer: < and > choose a layer of a stack" in screen_text(app)
        assert app.recorded.shown_layer == 0 and app.recorded.version == before


def test_bytes_per_batch_per_layer_stay_those_of_one_layer(tmp_path):
    """The arrays of a stack's batch cost each layer about what a one-layer run's batch costs."""
    sizes = {}
    for widths in ("32", "32,32,32"):
        folder = tmp_path / widths.replace(",", "-")
        assert main(["run", "--headless", "--data", "sample", "--widths", widths, "--batch-size", "64", "--iters",
                     "40", "--keep-samples", "all", "--quiet", "--out", str(folder)]) == 0
        sizes[widths] = (folder / "samples.arrows").stat().st_size / 40 / len(widths.split(","))
    assert sizes["32,32,32"] < 1.2 * sizes["32"]


def test_the_runs_compared_show_the_layer_shown(stack_run):
    folder, emitted, _, _ = stack_run
    main_run, other = RecordedHistory(RunReader(folder)), RecordedHistory(RunReader(folder), label="other")
    main_run.others = [other]
    main_run.select(2)
    assert other.shown_layer == 2
    np.testing.assert_array_equal(other.full_series("neg.theorem"), _layer_values(emitted, "theorem", 2, 1))
    np.testing.assert_array_equal(main_run.series("loss", 0), _layer_values_batch(emitted, "loss", 0))


def test_one_writer_given_one_layer_then_a_stack_writes_a_stream_each(small_sample, tmp_path):
    from engine.config import Config
    from engine.store import claim_out_folder

    def chunks(**params) -> list:
        trainer = Trainer(Config(batch_size=8, iters=2, seed=1, **params), small_sample)
        return trainer.advance() + trainer.advance() + trainer.flush()

    one, stack = chunks(width=16), chunks(widths=(16, 8))
    folder = claim_out_folder(tmp_path / "mixed")
    writer = RunWriter(folder, {"config": {}}, keep_samples="all", flush_interval=0.01).start()
    for chunk in one:
        assert writer.put(chunk)
    assert writer.sync(10)
    for chunk in stack:
        assert writer.put(chunk)
    writer.close("finished")
    assert writer.error is None
    samples = RunReader(folder).samples
    assert samples.layers == 2 and samples.table.schema.names[:3] == ["iteration", "layer", "group"]
    lhs = samples.column("lhs", "pos", 0)
    np.testing.assert_array_equal(lhs[:2], np.concatenate([c.columns["lhs"][:, 0] for c in one]))
    np.testing.assert_array_equal(lhs[2:], emitted_column(stack, "lhs", 0, 0))
    np.testing.assert_array_equal(samples.column("lhs", "pos", 1), emitted_column(stack, "lhs", 1, 0))
