"""`fftui run --headless --resume RUN`: a run stopped (at its end, by ctrl+c, by kill -9) and resumed
records exactly what one uninterrupted run records, every metric bit for bit; bad input is one line,
status 2, nothing changed."""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from fftui.cli import main
from stop_signals import interruptible
from test_app import run_async

ROOT = Path(__file__).resolve().parents[1]
FAST = ["run", "--headless", "--data", "sample", "--width", "24", "--batch-size", "8", "--quiet"]
TIMES = ("step_time", "metrics_time")  # wall-clock seconds: the only values two runs may differ in


# -- the files, read here straight from their formats -------------------------------------------------
def lines_of(folder: Path) -> list[dict]:
    """Every complete line of summary.jsonl.gz, over all its gzip members, timings left out."""
    data = (folder / "summary.jsonl.gz").read_bytes()
    text = b""
    while data:
        z = zlib.decompressobj(31)
        text += z.decompress(data)
        data = z.unused_data if z.eof else b""
    out = []
    for line in text.split(b"\n")[:-1]:
        record = json.loads(line)
        for key in TIMES:
            record.pop(key, None)
        out.append(record)
    return out


def samples_of(folder: Path) -> list[dict]:
    """Every row of samples.arrows, over all its Arrow streams, as Python values."""
    data = (folder / "samples.arrows").read_bytes()
    source = pa.BufferReader(data)
    rows: list[dict] = []
    while source.tell() < len(data):
        reader = pa.ipc.open_stream(source)
        for batch in reader:
            rows += batch.to_pylist()
    return rows


def events_of(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def same_records(resumed: Path, whole: Path) -> None:
    """The two runs' summary lines and per-sample rows are equal, value for value (floats as JSON
    writes them, i.e. to the last bit; the per-sample floats as Arrow holds them)."""
    a, b = lines_of(resumed), lines_of(whole)
    assert [r["iteration"] for r in a] == list(range(1, len(b) + 1))
    assert a == b
    sa, sb = samples_of(resumed), samples_of(whole)
    assert len(sa) == len(sb) > 0
    for x, y in zip(sa, sb, strict=True):
        assert x.keys() == y.keys()
        for key in x:
            if isinstance(x[key], list) and x[key] and isinstance(x[key][0], float):
                assert np.array_equal(np.array(x[key], np.float32).view(np.int32),
                                      np.array(y[key], np.float32).view(np.int32)), key
            else:
                assert x[key] == y[key], key


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# -- resume equals uninterrupted ----------------------------------------------------------------------
@pytest.mark.parametrize("extra", [[], ["--optimizer", "adam", "--lr", "3e-3"],
                                   ["--mode", "descent", "--loss", "logistic", "--momentum", "0.9"]])
def test_a_run_resumed_past_its_end_records_what_one_longer_run_records(tmp_path, capsys, extra):
    first, whole = tmp_path / "first", tmp_path / "whole"
    assert main(FAST + extra + ["--iters", "13", "--keep-samples", "all", "--out", str(first)]) == 0
    assert main(FAST + extra + ["--iters", "30", "--keep-samples", "all", "--out", str(whole)]) == 0
    assert main(["run", "--headless", "--quiet", "--resume", str(first), "--iters", "30"]) == 0
    out = capsys.readouterr()
    assert "30 of 30 iterations (resumed at 13)" in out.out
    same_records(first, whole)
    info = json.loads((first / "run.json").read_text())
    assert info["status"] == "finished" and info["iteration"] == 30 and info["records"] == 30
    assert info["checkpoint_iteration"] == 30
    whole_info = json.loads((whole / "run.json").read_text())
    assert info["final"] == whole_info["final"]  # means of the last batches, carried over the resume
    (resumed,) = [e for e in events_of(first) if e["kind"] == "resumed"]
    assert resumed["iteration"] == 13
    config = json.loads((first / "config.json").read_text())
    assert config["config"]["iters"] == 30 and [r["iteration"] for r in config["resumed"]] == [13]
    # the same run read back by fftui's reader: one run of 30 batches, nothing damaged
    from engine.store import RunReader

    run = RunReader(first)
    assert list(run.summary.column("iteration")) == list(range(1, 31)) and not run.warnings
    group = run.samples.groups[0]
    assert list(run.samples.iterations(group)) == list(range(1, 31)) and not run.warnings


def test_a_run_stopped_by_ctrl_c_resumes_to_its_planned_end(tmp_path, capsys, small_sample):
    """Stopped between batches by SIGINT (the clean stop writes a checkpoint), then resumed with no
    --iters: it goes on to the end it had."""
    from engine.config import Config
    from engine.headless import run_description, run_headless
    from engine.store import RunWriter

    cfg = Config(data="sample", width=24, batch_size=8, iters=600, optimizer="adam", lr=3e-3)
    stopped, whole = tmp_path / "stopped", tmp_path / "whole"
    for folder, stop_at in ((stopped, 1), (whole, None)):  # stopped at its first chunk (256 batches at most)
        folder.mkdir()
        writer = RunWriter(folder, run_description(cfg, small_sample), keep_samples="all").start()

        sent = []

        def on_chunk(chunk, stop_at=stop_at, sent=sent):
            if stop_at is not None and chunk.last_iteration >= stop_at and not sent:
                sent.append(True)
                os.kill(os.getpid(), signal.SIGINT)

        with interruptible():
            result = run_headless(cfg, small_sample, writer, on_chunk=on_chunk)
        assert result["status"] == ("interrupted" if stop_at else "finished")
    k = json.loads((stopped / "run.json").read_text())["checkpoint_iteration"]
    assert 1 <= k < 600 and len(lines_of(stopped)) == k
    capsys.readouterr()
    # the data of config.json are the 512-digit sample's; the command line loads the whole sample
    # (5,000): refused as not the run's data, nothing changed
    before = snapshot(stopped)
    assert main(["run", "--headless", "--quiet", "--resume", str(stopped)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not the run's data" in err[0]
    assert snapshot(stopped) == before
    from engine.resume import plan_resume, restore
    from engine.store.resume import cut_run
    from engine.trainer import Trainer

    plan = plan_resume(stopped)
    trainer = Trainer(plan.cfg, small_sample)
    restore(trainer, plan.checkpoint)
    carried = cut_run(stopped, plan.iteration, plan.reader.info)
    writer = RunWriter(stopped, plan.description(run_description(plan.cfg, small_sample)), keep_samples="all",
                       lock=plan.lock, carried=carried).start()
    result = run_headless(plan.cfg, small_sample, writer, trainer=trainer)
    assert result["status"] == "finished" and result["iterations"] == 600
    same_records(stopped, whole)


def _wait(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _checkpoint_iteration(folder: Path) -> int | None:
    from safetensors import safe_open

    path = folder / "checkpoint.safetensors"
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            return int(f.metadata()["iteration"])
    except Exception:
        return None


def _complete_lines(folder: Path) -> int:
    try:
        return len(lines_of(folder))
    except (zlib.error, json.JSONDecodeError, OSError):
        return 0


def test_a_run_killed_after_a_checkpoint_resumes_from_it_and_drops_the_records_after_it(tmp_path, capsys):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "fftui", *FAST, "--iters", "1000000", "--keep-samples", "all",
                             "--checkpoint-every", "2", "--out", str(killed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # a checkpoint, and records past it on disk: each checkpoint first writes every record before it,
        # so records past it appear only at the writer's own flushes (every second) before the next one
        assert _wait(lambda: (_checkpoint_iteration(killed) or 0) >= 5
                     and _complete_lines(killed) > (_checkpoint_iteration(killed) or 0) + 3, 120)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    k = _checkpoint_iteration(killed)
    assert k is not None and _complete_lines(killed) > k  # the kill left records after the checkpoint
    assert json.loads((killed / "run.json").read_text())["status"] == "running"
    total = k + 25
    assert main(["run", "--headless", "--quiet", "--resume", str(killed), "--iters", str(total)]) == 0
    assert main(FAST + ["--iters", str(total), "--keep-samples", "all", "--out", str(whole)]) == 0
    assert f"resuming killed at iteration {k:,}" in capsys.readouterr().err
    same_records(killed, whole)
    (resumed,) = [e for e in events_of(killed) if e["kind"] == "resumed"]
    assert resumed["iteration"] == k and resumed["dropped_records"] > 0
    info = json.loads((killed / "run.json").read_text())
    assert info["status"] == "finished" and info["records"] == total


# -- bad input: one line, status 2, nothing changed ---------------------------------------------------
@pytest.fixture
def finished_run(tmp_path):
    folder = tmp_path / "run"
    assert main(FAST + ["--iters", "4", "--out", str(folder)]) == 0
    return folder


def _refused(capsys, folder: Path, argv: list[str], words: str) -> None:
    before = snapshot(folder)
    capsys.readouterr()
    assert main(["run", "--headless", "--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert snapshot(folder) == before


def test_a_run_without_a_checkpoint_is_refused(finished_run, capsys):
    (finished_run / "checkpoint.safetensors").unlink()
    _refused(capsys, finished_run, ["--resume", str(finished_run), "--iters", "9"], "has no checkpoint")


def test_a_run_whose_configuration_no_longer_validates_is_refused(finished_run, capsys):
    path = finished_run / "config.json"
    config = json.loads(path.read_text())
    config["config"]["lr"] = -1.0
    path.write_text(json.dumps(config))
    _refused(capsys, finished_run, ["--resume", str(finished_run), "--iters", "9"], "no longer validates")


def test_a_run_being_recorded_is_refused(finished_run, capsys):
    fd = os.open(finished_run / "writer.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a live writer holds it
        _refused(capsys, finished_run, ["--resume", str(finished_run), "--iters", "9"], "being recorded now")
    finally:
        os.close(fd)


def test_a_folder_that_is_not_a_run_is_refused(tmp_path, capsys):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("mine")
    _refused(capsys, folder, ["--resume", str(folder)], "run.json")


def test_a_finished_run_without_a_new_end_is_refused(finished_run, capsys):
    _refused(capsys, finished_run, ["--resume", str(finished_run)], "--iters above 4")
    _refused(capsys, finished_run, ["--resume", str(finished_run), "--iters", "3"], "--iters 3 is not past it")


def test_a_flag_that_would_change_the_run_is_refused(finished_run, capsys):
    _refused(capsys, finished_run, ["--resume", str(finished_run), "--iters", "9", "--lr", "0.1"], "--lr")
    _refused(capsys, finished_run, ["--resume", str(finished_run), "--out", "x"], "--out")


def test_a_preset_that_trains_nothing_is_refused(finished_run, capsys):
    path = finished_run / "config.json"
    config = json.loads(path.read_text())
    config["preset"] = "fig1b"
    path.write_text(json.dumps(config))
    _refused(capsys, finished_run, ["--resume", str(finished_run), "--iters", "9"], "trains nothing")


def test_a_run_name_resolves_in_the_store_like_fftui_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FFTUI_DATA_DIR", str(tmp_path / "data"))
    assert main(FAST + ["--iters", "3"]) == 0
    (run,) = (tmp_path / "data" / "runs").iterdir()
    assert main(["run", "--headless", "--quiet", "--resume", run.name[:10], "--iters", "5"]) == 0
    assert [r["iteration"] for r in lines_of(run)] == [1, 2, 3, 4, 5]
    _refused(capsys, run, ["--resume", "nosuchrun"], "no run named")


def test_a_preset_resumed_writes_the_figure_of_the_whole_run(tmp_path, capsys):
    first, whole = tmp_path / "first", tmp_path / "whole"
    preset = ["run", "--headless", "--quiet", "--data", "sample", "--preset", "fig2"]
    assert main(preset + ["--iters", "9", "--keep-samples", "all", "--out", str(first)]) == 0
    assert main(preset + ["--iters", "21", "--keep-samples", "all", "--out", str(whole)]) == 0
    assert main(["run", "--headless", "--quiet", "--resume", str(first), "--iters", "21"]) == 0
    same_records(first, whole)
    csv_first, csv_whole = (first / "fig2.csv").read_text(), (whole / "fig2.csv").read_text()
    assert len(csv_whole.splitlines()) == 22 and csv_first == csv_whole


def test_parameters_changed_live_before_the_checkpoint_stay_changed_after_the_resume(tmp_path, sample):
    """A run of the app changed lr after batch 10 (an event "change"); resumed from that batch, it
    goes on with the new lr, as a trainer given the change at that batch does; config.json keeps the
    configuration the run started with (the event still applies over it)."""
    from engine.config import Config
    from engine.store.columns import summary_lines
    from engine.trainer import Trainer

    folder = tmp_path / "run"
    assert main(FAST + ["--iters", "10", "--out", str(folder)]) == 0
    with open(folder / "events.jsonl", "a") as f:
        f.write(json.dumps({"kind": "change", "iteration": 10, "time": 0.0, "changes": {"lr": [0.001, 0.004]}}) + "\n")
    assert main(["run", "--headless", "--quiet", "--resume", str(folder), "--iters", "20"]) == 0

    trainer = Trainer(Config(data="sample", width=24, batch_size=8, iters=20), sample)
    chunks = []
    while trainer.iteration < 10:
        chunks += trainer.advance()
    chunks += trainer.flush()
    trainer.apply(trainer.cfg.replace(lr=0.004))
    while trainer.iteration < 20:
        chunks += trainer.advance()
    chunks += trainer.flush()
    expected = [json.loads(line) for c in chunks for line in summary_lines(c).splitlines()]
    for record in expected:
        for key in TIMES:
            record.pop(key, None)
    assert lines_of(folder) == expected
    config = json.loads((folder / "config.json").read_text())
    assert config["config"]["lr"] == 0.001 and config["config"]["iters"] == 20


@run_async
async def test_the_live_app_resumes_a_run_and_records_what_one_uninterrupted_run_records(tmp_path):
    """`fftui run --resume RUN` (no --headless): the app trains on from the checkpoint to the new
    end, in the run's folder; its records are those of one headless run of that length."""
    from fftui.app import FFApp
    from fftui.cli import parse
    from fftui.resume import ResumeStart, locate_plan
    from test_app import FixedClock, wait_until

    first, whole = tmp_path / "first", tmp_path / "whole"
    assert main(FAST + ["--iters", "15", "--keep-samples", "all", "--out", str(first)]) == 0
    assert main(FAST + ["--iters", "40", "--keep-samples", "all", "--out", str(whole)]) == 0
    args = parse(["run", "--resume", str(first), "--iters", "40"])
    start = ResumeStart(args, locate_plan(args), tune=False)
    app = FFApp(config=start.cfg, loader=start.load, runner_factory=start.runner, clock=FixedClock())
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_until(pilot, lambda: app.runner is not None and app.runner.state == "finished", 120)
        await pilot.press("q")
    start.close()
    same_records(first, whole)
    assert json.loads((first / "run.json").read_text())["status"] == "finished"
    assert [e["iteration"] for e in events_of(first) if e["kind"] == "resumed"] == [15]


def test_the_live_app_refuses_what_cannot_be_resumed_before_it_starts(finished_run, capsys):
    (finished_run / "checkpoint.safetensors").unlink()
    before = snapshot(finished_run)
    assert main(["run", "--resume", str(finished_run), "--iters", "9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no checkpoint" in err[0]
    assert snapshot(finished_run) == before


def test_a_headless_run_checkpoints_every_few_minutes_after_every_batch_before_it(tmp_path, small_sample):
    """With checkpoint_every = 40 s on a clock that moves 1 s a batch, checkpoints come about every
    40 batches and at the end, each after every batch up to it was handed to the writer."""
    from engine.config import Config
    from engine.headless import run_description, run_headless
    from engine.store import RunWriter

    cfg = Config(data="sample", width=16, batch_size=8, iters=130)
    writer = RunWriter(tmp_path, run_description(cfg, small_sample)).start()
    put, taken = writer.put, []
    calls: list[tuple[int, int]] = []

    def spy_put(chunk, wait=False):
        taken.append(chunk.last_iteration)
        return put(chunk, wait=wait)

    def spy_checkpoint(iteration, *args):
        calls.append((iteration, taken[-1] if taken else 0))
        return RunWriter.checkpoint(writer, iteration, *args)

    writer.put, writer.checkpoint = spy_put, spy_checkpoint
    ticks = iter(range(100_000))
    run_headless(cfg, small_sample, writer, checkpoint_every=40.0, clock=lambda: float(next(ticks)))
    iterations = [i for i, _ in calls]
    assert all(i == last for i, last in calls)  # the records up to a checkpoint were all handed over first
    assert iterations[-1] == 130 and len(iterations) >= 4
    assert all(0 < b - a <= 41 for a, b in zip([0, *iterations[:-2]], iterations[:-1], strict=True))
