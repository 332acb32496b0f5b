"""The UI's history appends chunks of columns into bounded buffers; the headless summary keeps
running sums; both read their keys from the metric declaration."""
import math

import numpy as np
import pytest

from engine.chunk import MetricsChunk
from engine.config import Config
from engine.headless import SUMMARY_KEYS, RunningSummary
from engine.metrics import BATCH_METRICS, GROUP_METRICS, SUMMARY_METRICS
from engine.trainer import Trainer
from fftui.history import History, SeriesBuffer


@pytest.fixture(scope="module")
def chunks(small_sample):
    """Fifty real batches, delivered as chunks of 1 to 13 batches (as the CUDA path ships them)."""
    trainer = Trainer(Config(mode="ff", width=40, batch_size=8, lr=0.05, dtype="float64"), small_sample, chunk=1)
    ones = [c for _ in range(50) for c in trainer.advance()]
    sizes, out, i = [1, 13, 4, 7, 2, 11, 5, 7], [], 0
    for size in sizes:
        out.append(MetricsChunk.concat(ones[i:i + size]))
        i += size
    assert i == 50
    return out


def test_series_buffer_keeps_the_newest_values_in_order():
    buf = SeriesBuffer(rows=2, maxlen=5)
    seen: list[float] = []
    for n in (3, 1, 4, 0, 2, 9, 1, 5):
        values = np.arange(len(seen), len(seen) + n, dtype=float)
        buf.extend(np.stack([values, -values]))
        seen.extend(values)
        assert buf.row(0).tolist() == seen[-5:] and buf.row(1).tolist() == [-v for v in seen[-5:]]
    assert buf._data.shape == (2, 10)  # never grows


def test_history_series_are_the_chunks_columns_laid_end_to_end(chunks):
    h = History(maxlen=30, batches=6)
    for chunk in chunks[:3]:
        assert h.add([chunk])
    assert h.add(chunks[3:]) and not h.add([])  # several chunks at once: appended together
    assert len(h) == 30 and h.total == 50 and h.groups == ("pos", "neg") and h.mode == "ff"
    for m in BATCH_METRICS:
        if m.dtype != "str":
            want = np.concatenate([c.column(m.name) for c in chunks])[-30:].astype(float)
            np.testing.assert_array_equal(h.series(m.name), want)
    for m in GROUP_METRICS:
        for gi, g in enumerate(("pos", "neg")):
            want = np.concatenate([c.column(m.name)[:, gi] for c in chunks])[-30:].astype(float)
            np.testing.assert_array_equal(h.series(f"{g}.{m.name}"), want)
    assert h.iterations().tolist() == list(range(21, 51))
    lhs, rhs = h.sides("neg")
    want = np.concatenate([c.column("lhs")[:, 1] for c in chunks])[-6:].ravel()
    np.testing.assert_array_equal(lhs, want.astype(float))
    assert h.sides_batches("neg") == 6 and rhs.size == lhs.size
    last = chunks[-1].record(-1)
    assert h.latest.iteration == 50 and h.latest.loss == last.loss
    assert h.group("pos").sparser == last.groups["pos"].sparser or math.isnan(last.groups["pos"].sparser)


def test_history_starts_anew_when_iterations_go_back_or_the_mode_changes(chunks, small_sample):
    h = History(maxlen=100)
    h.add(chunks[:3])
    v = h.version
    h.add([chunks[0]])  # iteration 1 again: a reset
    assert len(h) == 1 and h.total == 1 and h.version > v
    h.add(Trainer(Config(mode="descent", width=40, batch_size=8), small_sample, chunk=1).advance())
    assert h.groups == ("all",) and len(h) == 1 and h.mode == "descent"
    h.add([chunks[0].record(0)])  # records are taken as chunks
    assert h.groups == ("pos", "neg") and h.latest.iteration == 1


def test_running_summary_is_the_mean_over_batches_of_finite_values(chunks):
    summary = RunningSummary()
    for chunk in chunks:
        summary.add(chunk)
    result = summary.result()
    assert set(SUMMARY_KEYS) == {m.name for m in SUMMARY_METRICS}
    for gi, g in enumerate(("pos", "neg")):
        for key in SUMMARY_KEYS:
            values = np.concatenate([c.column(key)[:, gi] for c in chunks]).astype(float)
            finite = values[np.isfinite(values)]
            want = finite.mean() if finite.size else math.nan
            assert result[g][key] == pytest.approx(want, rel=1e-12, nan_ok=True), key
        sparser = np.concatenate([c.column("sparser")[:, gi] for c in chunks])
        assert result[g]["batches_without_valid_samples"] == int(np.isnan(sparser).sum())


def test_running_summary_counts_batches_without_valid_samples(chunks):
    rec = chunks[0].record(0)
    pos = rec.groups["pos"].replace(sparser=0.25, theorem=0.5, valid=4)
    blank = rec.groups["pos"].replace(sparser=math.nan, theorem=math.nan, valid=0)
    summary = RunningSummary()
    summary.add(MetricsChunk.from_records([rec.replace(groups={"pos": pos, "neg": rec.groups["neg"]})]))
    summary.add(MetricsChunk.from_records([rec.replace(iteration=2, groups={"pos": blank, "neg": rec.groups["neg"]})]))
    row = summary.result()["pos"]
    assert row["batches_without_valid_samples"] == 1
    assert row["sparser"] == 0.25 and row["theorem"] == 0.5 and row["valid"] == 2.0
