"""The run store: what a trained run's chunks become on disk and what reads back (engine/store/)."""
from __future__ import annotations

import errno
import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from engine.config import Config
from engine.metrics import BATCH_METRICS, GROUP_METRICS, SAMPLE_METRICS
from engine.store import RunReader, RunWriter, SamplePolicy, StoreError, claim_run_folder, run_stem
from engine.store.files import EVENTS, SAMPLES, SUMMARY
from engine.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent


def train_chunks(dataset, mode: str, iters: int, batch_size: int) -> list:
    """The chunks of a real run (8 batches a chunk at most). 512 digits in batches of 48 end every
    epoch with a batch of 32: the chunks then differ in batch size."""
    cfg = Config(mode=mode, width=64, batch_size=batch_size, iters=iters, seed=3)
    trainer = Trainer(cfg, dataset, chunk=8)
    chunks = []
    while trainer.iteration < iters:
        chunks += trainer.advance()
    return chunks + trainer.flush()


@pytest.fixture(scope="module")
def ff_chunks(small_sample):
    return train_chunks(small_sample, "ff", 30, 48)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("FFTUI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "runs"


def record(folder: Path, chunks, keep="all", sync_each=False, **kw) -> RunWriter:
    writer = RunWriter(folder, {"config": Config().as_dict()}, keep_samples=keep, **kw).start()
    for k, chunk in enumerate(chunks):
        assert writer.put(chunk)
        writer.event("set", chunk.last_iteration, changes={"lr": 1e-3 * (k + 1)})
        if sync_each:
            assert writer.sync(10)
    return writer


def expected_batch_values(chunks, name: str) -> np.ndarray:
    return np.concatenate([c.column(name) if name in c.constants else c.columns[name] for c in chunks])


@pytest.mark.parametrize("mode", ["ff", "descent"])
def test_a_recorded_run_reads_back_as_the_chunks_column_by_column(store, small_sample, ff_chunks, mode):
    chunks = ff_chunks if mode == "ff" else train_chunks(small_sample, "descent", 25, 48)
    assert len({c.per for c in chunks}) > 1 and len(chunks) > 2  # several chunks, two batch sizes
    folder = claim_run_folder(mode)
    record(folder, chunks).close("finished")
    run = RunReader(folder)
    assert run.status == "finished" and run.warnings == []
    summary = run.summary
    assert len(summary) == sum(len(c) for c in chunks)
    for m in BATCH_METRICS:
        want = expected_batch_values(chunks, m.name)
        got = summary.column(m.name)
        assert np.array_equal(got, want, equal_nan=m.dtype.startswith("float")), m.name
    for m in GROUP_METRICS:
        want = np.concatenate([c.columns[m.name] for c in chunks])
        assert np.array_equal(summary.column(m.name), want, equal_nan=m.dtype.startswith("float")), m.name
    groups = chunks[0].groups
    assert run.samples.groups == groups
    for gi, group in enumerate(groups):
        its = np.concatenate([c.columns["iteration"] for c in chunks])
        assert np.array_equal(run.samples.iterations(group), its)
        for c in chunks:
            for k, it in enumerate(c.columns["iteration"]):
                arrays = run.samples.at(int(it), group)
                for m in SAMPLE_METRICS:
                    want = c.columns[m.name][k, gi]
                    assert arrays[m.name].dtype == want.dtype
                    assert np.array_equal(arrays[m.name], want, equal_nan=m.dtype.startswith("float")), m.name
    assert [e["iteration"] for e in run.events] == [c.last_iteration for c in chunks]


def test_the_files_are_plain_gzip_json_lines_and_an_arrow_stream(store, ff_chunks):
    """Read with the standard library and pyarrow alone, not the store's reader."""
    folder = claim_run_folder("plain")
    record(folder, ff_chunks).close("finished")
    with gzip.open(folder / SUMMARY, "rt") as f:
        lines = [json.loads(line) for line in f]
    assert [line["iteration"] for line in lines] == list(range(1, 31))
    first = ff_chunks[0]
    assert lines[0]["groups"]["neg"]["sparser"] == first.columns["sparser"][0, 1]
    assert lines[0]["loss"] == first.columns["loss"][0]
    table = pa.ipc.open_stream((folder / SAMPLES).read_bytes()).read_all()
    assert table.num_rows == 30 * 2
    assert table.column("lhs")[1].as_py() == pytest.approx(first.columns["lhs"][0, 1].tolist(), nan_ok=True)
    info = json.loads((folder / "run.json").read_text())
    last = np.concatenate([c.columns["sparser"] for c in ff_chunks])[-100:]
    assert info["final"]["pos"]["sparser"] == pytest.approx(np.nanmean(last[:, 0]))
    assert info["iteration"] == 30 and info["records"] == 30 and info["status"] == "finished"


def test_the_sample_policy_keeps_every_batch_then_doubling_strides():
    policy = SamplePolicy(4)
    kept = np.flatnonzero(policy.keep(np.arange(1, 33))) + 1
    assert kept.tolist() == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32]
    assert SamplePolicy.parse("all").keep(np.arange(1, 9)).all()
    assert not SamplePolicy.parse("none").keep(np.arange(1, 9)).any()
    assert SamplePolicy.parse("auto").full == SamplePolicy.DEFAULT_FULL
    for bad in ("-1", "lots", "1.5", ""):
        with pytest.raises(StoreError, match="--keep-samples"):
            SamplePolicy.parse(bad)


def test_a_thinned_run_keeps_the_policys_batches(store, ff_chunks):
    folder = claim_run_folder("thin")
    record(folder, ff_chunks, keep="8").close("finished")
    run = RunReader(folder)
    assert run.samples.iterations("pos").tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28]
    assert run.info["sample_records"] == 15 and len(run.summary) == 30


def test_a_run_replays_as_chunks_with_the_arrays_it_kept(store, ff_chunks):
    folder = claim_run_folder("replay")
    record(folder, ff_chunks, keep="8").close("finished")
    run = RunReader(folder)
    replay = run.chunks()
    assert [c.per for c in replay] == [48, 32, 48, 32, 48]  # 512 digits: 10 batches of 48, then one of 32
    assert sum(len(c) for c in replay) == 30 and len(run.chunks(5, 9)) == 1 and len(run.chunks(5, 9)[0]) == 4
    got = [r for c in replay for r in c.records()]
    want = [r for c in ff_chunks for r in c.records()]
    kept = {1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28}
    for g, w in zip(got, want, strict=True):
        assert g.iteration == w.iteration and g.mode == w.mode and g.loss == w.loss
        for name in ("pos", "neg"):
            a, b = g.groups[name], w.groups[name]
            assert a.sparser == b.sparser or (np.isnan(a.sparser) and np.isnan(b.sparser))
            for m in SAMPLE_METRICS:
                if g.iteration in kept:
                    assert np.array_equal(getattr(a, m.name), getattr(b, m.name), equal_nan=True), m.name
            if g.iteration not in kept:
                assert np.isnan(a.lhs).all() and (a.actual == -1).all() and not a.predicted_theorem.any()


def _message_ends(data: bytes) -> list[int]:
    """Byte offsets where each message of an Arrow IPC stream ends (schema first)."""
    reader = pa.BufferReader(data)
    ends = []
    while True:
        try:
            message = pa.ipc.read_message(reader)
        except (OSError, EOFError, pa.ArrowInvalid, StopIteration):
            return ends
        if message is None:
            return ends
        ends.append(reader.tell())


@pytest.mark.parametrize("name", [SUMMARY, SAMPLES, EVENTS])
def test_a_file_cut_anywhere_reads_to_its_last_complete_record_with_one_warning(store, ff_chunks, tmp_path, name):
    folder = claim_run_folder("cut")
    record(folder, ff_chunks, sync_each=True).close("finished")
    data = (folder / name).read_bytes()
    rng = np.random.default_rng(12)
    for cut in sorted({*rng.integers(1, len(data), 12).tolist(), len(data) - 1}):
        if name == SUMMARY:
            text = zlib.decompressobj(31).decompress(data[:cut])
            want = text.count(b"\n")
            if text.endswith(b"\n"):
                continue  # cut where a flush ended: nothing to warn about
        elif name == EVENTS:
            want = data[:cut].count(b"\n")
            if data[cut - 1:cut] == b"\n":
                continue
        else:
            ends = _message_ends(data)
            if cut in ends:
                continue
            complete_batches = sum(1 for end in ends[1:] if end <= cut)  # ends[0]: the schema
            batches = pa.ipc.open_stream(data).read_all().to_batches()
            assert len(batches) == len(ends) - 1 > 3
            want = len({it for b in batches[:complete_batches] for it in b.column("iteration").to_pylist()})
        copy = tmp_path / f"copy-{cut}"
        shutil.copytree(folder, copy)
        (copy / name).write_bytes(data[:cut])
        run = RunReader(copy)
        if name == SUMMARY:
            got = len(run.summary)
            assert run.summary.column("iteration").tolist() == list(range(1, want + 1))
        elif name == EVENTS:
            got = len(run.events)
        else:
            got = len(run.samples.iterations("pos"))
        assert got == want, cut
        assert len(run.warnings) == 1, (cut, run.warnings)
        assert run.warnings[0].startswith(name) and f"read {want}" in run.warnings[0]


def test_a_damaged_line_inside_the_summary_ends_it_there_with_one_warning(store, ff_chunks):
    folder = claim_run_folder("bad-line")
    record(folder, ff_chunks).close("finished")
    lines = gzip.decompress((folder / SUMMARY).read_bytes()).split(b"\n")
    lines[9] = lines[9][:40]
    (folder / SUMMARY).write_bytes(gzip.compress(b"\n".join(lines)))
    run = RunReader(folder)
    assert run.summary.column("iteration").tolist() == list(range(1, 10))
    assert run.warnings == [f"{SUMMARY}: cut short or damaged after 9 complete records; read 9"]


def test_a_folder_that_is_not_a_current_run_is_refused_in_one_line_and_left_alone(tmp_path, store, ff_chunks):
    cases = {}
    cases["empty"] = tmp_path / "empty"
    cases["empty"].mkdir()
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text("{}")
    (old / "metrics.jsonl").write_text('{"iteration": 1}\n')
    cases["older fftui"] = old
    good = claim_run_folder("good")
    record(good, ff_chunks[:1]).close("finished")
    for label, change in (("format", lambda p: p.write_text(p.read_text().replace('"format": 1', '"format": 0'))),
                          ("damaged", lambda p: p.write_text(p.read_text()[:20]))):
        copy = tmp_path / label
        shutil.copytree(good, copy)
        change(copy / "run.json")
        cases[label] = copy
    lacking = tmp_path / "lacking"
    shutil.copytree(good, lacking)
    (lacking / SUMMARY).unlink()
    cases["lacking"] = lacking
    cases["file"] = tmp_path / "file.txt"
    cases["file"].write_text("x")
    cases["missing"] = tmp_path / "nothing-here"
    expected = {"empty": "no run.json", "older fftui": "older fftui", "format": "format 0", "damaged": "not valid JSON",
                "lacking": "lacks summary.jsonl.gz", "file": "not a folder", "missing": "does not exist"}
    def listing(path: Path) -> list:
        return sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in path.iterdir()) if path.is_dir() else []

    for label, path in cases.items():
        before = listing(path)
        with pytest.raises(StoreError) as info:
            RunReader(path)
        assert expected[label] in str(info.value) and "\n" not in str(info.value), label
        assert listing(path) == before


def test_two_runs_claimed_in_the_same_second_get_their_own_folders(store):
    when = time.time()
    a, b = claim_run_folder("fig3", when=when), claim_run_folder("fig3", when=when)
    assert a != b and b.name == a.name + "-2" and a.parent == b.parent == store
    assert run_stem("ff / logistic..", when).endswith("-ff-logistic")
    assert run_stem("///", when).endswith("-run")


def test_a_second_writer_is_refused_a_folder_being_recorded(store):
    folder = claim_run_folder("busy")
    first = RunWriter(folder, {"config": {}}).start()
    try:
        with pytest.raises(StoreError, match="cannot record into"):
            RunWriter(folder, {"config": {"other": 1}})
        assert RunReader(folder).status == "running"
    finally:
        first.close("finished")
    assert json.loads((folder / "config.json").read_text()) == {"config": {}}


def test_a_checkpoint_reads_back_with_its_iteration(store):
    folder = claim_run_folder("ckpt")
    writer = RunWriter(folder, {"config": {}}).start()
    w = torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(7).get_state()
    writer.checkpoint(12, {"w": w}, {"m": w * 2, "data_generator": gen}, {"optimizer": "sgd"})
    writer.close("finished")
    ckpt = RunReader(folder).checkpoint()
    assert ckpt.iteration == 12 and ckpt.metadata["optimizer"] == "sgd"
    assert torch.equal(ckpt.weights["w"], w) and torch.equal(ckpt.optimizer["m"], w * 2)
    assert torch.equal(ckpt.optimizer["data_generator"], gen)
    (folder / "checkpoint.safetensors").write_bytes((folder / "checkpoint.safetensors").read_bytes()[:40])
    with pytest.raises(StoreError, match="checkpoint.safetensors cannot be read"):
        RunReader(folder).checkpoint()
    assert RunReader(folder).info["checkpoint_iteration"] == 12


class FailingFile:
    """A real file whose writes fail with `code` once `budget` bytes went through (the last write
    goes through in part, as a full disk does)."""

    def __init__(self, path: Path, budget: int, code: int) -> None:
        self.file = open(path, "ab", buffering=0)  # noqa: SIM115
        self.budget, self.code = budget, code

    def write(self, data) -> int:
        if self.budget <= 0:
            raise OSError(self.code, os.strerror(self.code))
        n = self.file.write(bytes(data)[: self.budget])
        self.budget -= n
        return n

    def truncate(self, size: int) -> int:
        return self.file.truncate(size)

    def close(self) -> None:
        self.file.close()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_disk_error_stops_recording_and_keeps_what_was_written(store, ff_chunks, code):
    folder = claim_run_folder("full")
    writer = RunWriter(folder, {"config": {}}, keep_samples="all",
                       opener=lambda path: FailingFile(path, 20000 if path.name == SAMPLES else 10**9, code)).start()
    for chunk in ff_chunks:
        writer.put(chunk)
        writer.sync(10)
    assert writer.error == f"{os.strerror(code).lower()} ({SAMPLES})"
    assert not writer.put(ff_chunks[0])  # recording has stopped: dropped, counted
    writer.close("finished")
    run = RunReader(folder)
    assert run.info["recording_error"] == writer.error and run.info["status"] == "finished"
    assert run.warnings == [] and (folder / SAMPLES).stat().st_size <= 20000
    n = len(run.samples.iterations("pos"))
    assert run.warnings == []
    assert 0 < n < 30 and len(run.summary) >= n
    assert run.summary.column("iteration").tolist() == list(range(1, len(run.summary) + 1))
    assert writer.dropped_records == 30 - len(run.summary) + len(ff_chunks[0])


def test_a_folder_that_turns_read_only_stops_recording_and_keeps_the_files(store, ff_chunks, monkeypatch):
    import engine.store.writer as writer_module

    folder = claim_run_folder("read-only")
    writer = record(folder, ff_chunks[:3], sync_each=True)
    written = len(RunReader(folder).summary)

    def read_only(path, value):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(writer_module, "write_json_atomic", read_only)
    writer.put(ff_chunks[3])
    writer.sync(10)
    assert writer.error == f"{os.strerror(errno.EROFS).lower()} (run.json)"
    writer.close("finished")
    run = RunReader(folder)
    assert run.status == "interrupted"  # run.json could not say more; its writer is gone
    assert run.warnings == [] and len(run.summary) >= written == sum(len(c) for c in ff_chunks[:3])


def test_a_full_small_file_system_stops_recording_and_every_file_reads_back(tmp_path, monkeypatch, ff_chunks):
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        monkeypatch.setenv("FFTUI_DATA_DIR", str(mount))
        folder = claim_run_folder("tiny")
        writer = RunWriter(folder, {"config": {}}, keep_samples="all").start()
        for _ in range(20):
            for chunk in ff_chunks:
                writer.put(chunk)
            writer.sync(10)
            if writer.error:
                break
        writer.close("finished")
        assert writer.error is not None and writer.error.startswith("no space left on device")
        run = RunReader(folder)
        assert run.summary.column("iteration")[:30].tolist() == list(range(1, 31))
        assert len(run.samples) > 0 and run.warnings == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)


class SlowFile:
    def __init__(self, path: Path) -> None:
        self.file = open(path, "ab", buffering=0)  # noqa: SIM115

    def write(self, data) -> int:
        time.sleep(0.05)
        return self.file.write(data)

    def truncate(self, size: int) -> int:
        return self.file.truncate(size)

    def close(self) -> None:
        self.file.close()


def test_the_caller_never_waits_for_a_slow_disk_and_drops_are_counted(store, ff_chunks):
    folder = claim_run_folder("slow")
    writer = RunWriter(folder, {"config": {}}, keep_samples="all", max_queued=24, flush_interval=0.0,
                       opener=SlowFile).start()
    puts = []
    sent = 0
    for _ in range(10):
        for chunk in ff_chunks:
            t0 = time.perf_counter()
            writer.put(chunk)
            puts.append(time.perf_counter() - t0)
            sent += len(chunk)
    assert sum(puts) < 0.25 and max(puts) < 0.05  # the writer needs at least 0.15 s a flush
    assert writer.dropped_records > 0
    writer.close("finished")
    assert writer.dropped_samples > 0
    run = RunReader(folder)
    assert len(run.summary) + writer.dropped_records == sent
    assert run.info["sample_records"] + run.info["dropped_samples"] == len(run.summary)
    assert len(run.samples.iterations("pos")) == run.info["sample_records"]


KILLED_WRITER = textwrap.dedent("""
    import sys, torch
    from engine.config import Config
    from engine.data import load_dataset
    from engine.store import RunWriter
    from engine.trainer import Trainer
    from pathlib import Path
    dataset = load_dataset("sample", device="cpu")
    cfg = Config(mode="ff", width=32, batch_size=16, iters=100000, seed=1)
    trainer = Trainer(cfg, dataset, chunk=4)
    writer = RunWriter(Path(sys.argv[1]), {"config": cfg.as_dict()}, keep_samples="all", flush_interval=0.01).start()
    while True:
        for chunk in trainer.advance():
            writer.put(chunk)
            if chunk.last_iteration % 10 < len(chunk):
                writer.event("set", chunk.last_iteration, changes={"lr": 0.001})
                writer.checkpoint(chunk.last_iteration, {"w": trainer.w.clone()}, {}, {})
""")


def test_every_file_reads_back_after_the_writer_is_killed(store, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(KILLED_WRITER)
    rng = np.random.default_rng()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for k in range(2):
        folder = claim_run_folder(f"killed-{k}")
        proc = subprocess.Popen([sys.executable, str(script), str(folder)], env=env)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                info = json.loads((folder / "run.json").read_bytes() or b"{}") if (folder / "run.json").exists() else {}
                if info.get("records", 0) >= 20:
                    break
                time.sleep(0.05)
            time.sleep(float(rng.uniform(0, 0.5)))
        finally:
            proc.kill()
            proc.wait()
        run = RunReader(folder)
        assert run.status == "interrupted"
        n = len(run.summary)
        assert n >= 20 and run.summary.column("iteration").tolist() == list(range(1, n + 1))
        its = run.samples.iterations("neg")
        assert its.tolist() == list(range(1, len(its) + 1))
        assert all(e["kind"] == "set" for e in run.events)
        ckpt = run.checkpoint()
        assert ckpt is not None and ckpt.weights["w"].shape == (32, 784)
        assert len(run.warnings) <= 3
