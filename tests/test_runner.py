"""The training thread: commands between batches, a queue that never blocks training."""
import subprocess
import sys
import time

import pytest

from engine.chunk import MetricsChunk
from engine.config import Config, ConfigError
from engine.runner import Runner, wait_for
from engine.trainer import Trainer

SMALL = dict(width=64, batch_size=16, iters=100000)


def iterations(chunks) -> list[int]:
    return [int(i) for c in chunks for i in c.column("iteration")]


def round_trip(r: Runner) -> list:
    """Send a command that changes nothing and wait until the thread has handled it: whatever the
    thread does between commands (a batch, or nothing while paused) has happened by then. Returns
    the events drained on the way."""
    seen: list = []
    r.set_params(lr=r.pending_config.lr)
    assert wait_for(lambda: seen.extend(r.drain_events()) or any("lr=" in e.message for e in seen))
    return seen


def test_pause_step_resume_stop(small_sample):
    r = Runner(Config(**SMALL), small_sample, start_paused=True).start()
    try:
        round_trip(r)
        assert r.state == "paused" and r.iteration == 0 and r.queued == 0
        r.step()
        assert wait_for(lambda: r.iteration == 1)
        assert wait_for(lambda: r.queued >= 1)  # the count moves before the record lands
        round_trip(r)
        assert r.iteration == 1 and r.state == "paused"
        assert iterations(r.drain()) == [1]
        r.step()
        r.step()
        assert wait_for(lambda: r.iteration == 3)
        r.resume()
        assert wait_for(lambda: r.iteration >= 10)
        assert r.state == "running"
        r.pause()
        assert wait_for(lambda: r.state == "paused")
        held = r.iteration  # commands are handled between batches: none runs once paused
        round_trip(r)
        round_trip(r)
        assert r.iteration == held
        r.resume()
        assert wait_for(lambda: r.iteration > held)
    finally:
        t0 = time.monotonic()
        r.stop()
        stopped_in = time.monotonic() - t0
    assert not r.alive and r.state == "stopped"
    assert stopped_in < 2.0


def test_full_queue_never_blocks_training(small_sample):
    r = Runner(Config(**SMALL), small_sample, metrics_size=4)
    r.start()
    try:
        assert wait_for(lambda: r.iteration >= 40, timeout=30)
    finally:
        r.stop()
    # nobody drained: the queue holds the newest 4 and counted every record it dropped
    its = iterations(r.drain())
    assert len(its) == 4 and r.queued == 0
    assert r.dropped == r.published - 4 >= 36
    assert its == list(range(r.iteration - 3, r.iteration + 1))


def test_queue_bound_and_drain_count_records(small_sample):
    trainer = Trainer(Config(**SMALL), small_sample, chunk=1)
    chunks = [c for _ in range(10) for c in trainer.advance()]
    r = Runner(Config(**SMALL), small_sample, metrics_size=7)  # never started: the queue alone
    r._publish(MetricsChunk.concat(chunks[:5]))
    r._publish(MetricsChunk.concat(chunks[5:9]))  # 9 records: the 2 oldest go, out of the first chunk
    assert (r.queued, r.published, r.dropped) == (7, 9, 2)
    r._publish(MetricsChunk.concat(chunks[9:]))
    assert (r.queued, r.published, r.dropped) == (7, 10, 3)
    first = r.drain(limit=2)
    assert iterations(first) == [4, 5] and r.queued == 5
    assert iterations(r.drain()) == [6, 7, 8, 9, 10] and r.queued == 0 and r.drain() == []


def test_bad_parameter_refused_and_nothing_changes(small_sample):
    r = Runner(Config(**SMALL), small_sample, start_paused=True).start()
    try:
        before = r.pending_config
        for bad in [dict(lr="fast"), dict(lr=-1), dict(batch_size=0), dict(mode="sideways"),
                    dict(momentum=1.5), dict(width="2k"), dict(nonsense=1), dict(device="cpu")]:
            with pytest.raises(ConfigError) as info:
                r.set_params(**bad)
            assert "\n" not in str(info.value) and str(info.value)
        assert r.pending_config == before and r.commands.qsize() == 0  # refused before it was queued
        assert r.config == before
        assert not [e for e in r.drain_events() if e.kind == "info" and "=" in e.message]
    finally:
        r.stop()


def test_set_params_applies_between_batches_and_reports_reset(small_sample):
    r = Runner(Config(**SMALL), small_sample, start_paused=True).start()
    try:
        new = r.set_params(lr="0.002")
        assert new.lr == 0.002
        assert wait_for(lambda: r.config.lr == 0.002)
        r.step()
        assert wait_for(lambda: r.iteration == 1)
        r.set_params(width=32)
        assert wait_for(lambda: r.config.width == 32)
        assert r.iteration == 0  # a new width means a fresh layer
        events = [e.message for e in r.drain_events()]
        assert any("lr=0.002" in m and "next batch" in m for m in events)
        assert any("width=32" in m and "reset" in m for m in events)
        r.set_params(mode="descent")
        r.step()
        # the iteration counts up before the batch's record is published: wait for the record itself
        got = []
        assert wait_for(lambda: got.extend(r.drain()) or any(c.mode == "descent" for c in got))
        rec = got[-1].record(-1)
        assert rec.mode == "descent" and rec.iteration == 1 and set(rec.groups) == {"all"}
    finally:
        r.stop()


def test_nan_pauses_with_message_and_reset_recovers(small_sample):
    r = Runner(Config(**SMALL), small_sample, start_paused=True).start()
    try:
        assert wait_for(lambda: r._trainer is not None)
        r._trainer.w.fill_(float("nan"))  # what a diverging run ends in
        r.resume()
        assert wait_for(lambda: r.state == "error", timeout=30)
        assert r.alive
        errors = [e for e in r.drain_events() if e.kind == "error"]
        assert errors and "loss became" in errors[0].message
        r.set_params(lr=1e-3)
        r.reset()
        r.resume()
        assert wait_for(lambda: r.state == "running" and r.iteration >= 3, timeout=30)
    finally:
        r.stop()


def test_finishes_after_iters(small_sample):
    r = Runner(Config(width=32, batch_size=16, iters=5), small_sample).start()
    try:
        assert wait_for(lambda: r.state == "finished", timeout=30)
        assert r.iteration == 5 and iterations(r.drain()) == [1, 2, 3, 4, 5]
        r.set_params(iters=7)
        r.resume()
        assert wait_for(lambda: r.iteration == 7 and r.state == "finished", timeout=30)
    finally:
        r.stop()


def test_engine_imports_no_textual():
    code = ("import sys, engine, engine.runner, engine.trainer, engine.headless, engine.data, "
            "engine.theory, engine.reference, engine.metrics;"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'textual_plotext', 'fftui')];"
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_epochs_zero_runs_until_stopped(small_sample):
    r = Runner(Config(width=32, batch_size=64, epochs=0), small_sample).start()
    try:
        # 512 digits in batches of 64: 8 a epoch; well past two epochs it is still running
        assert wait_for(lambda: r.iteration >= 20, timeout=30)
        assert r.state == "running"
    finally:
        r.stop()


def test_a_failing_command_pauses_with_a_message_and_the_thread_lives(small_sample, monkeypatch):
    r = Runner(Config(**SMALL), small_sample, start_paused=True).start()
    try:
        assert wait_for(lambda: r._trainer is not None)

        def no_memory(cfg):
            raise MemoryError("cannot allocate the wider layer")

        monkeypatch.setattr(r._trainer, "apply", no_memory)
        r.set_params(width=4096)
        assert wait_for(lambda: r.state == "error")
        errors = [e.message for e in r.drain_events() if e.kind == "error"]
        assert errors and "out of memory on cpu at batch size" in errors[0] and "width 4,096" in errors[0]
        assert r.alive
        monkeypatch.undo()
        r.step()
        assert wait_for(lambda: r.iteration == 1)
    finally:
        r.stop()
