"""The log file: a failure's traceback lands there, and the one line the user reads names it."""
import logging
import os
import subprocess
import sys

import pytest

from engine import logs
from engine.config import Config
from engine.runner import Runner, wait_for
from fftui.cli import main

SMALL = dict(width=32, batch_size=16, iters=100000)


@pytest.fixture
def log_dir(tmp_path, monkeypatch):
    folder = tmp_path / "logs"
    monkeypatch.setenv("FFTUI_LOG_DIR", str(folder))
    return folder


def _fail_deep_inside():
    raise RuntimeError("the device fell over")


def test_the_traceback_lands_in_the_file(log_dir):
    try:
        _fail_deep_inside()
    except RuntimeError as exc:
        path = logs.log_exception("while testing", exc)
    assert path == log_dir / "fftui.log"
    text = path.read_text()
    assert "while testing" in text
    assert "Traceback (most recent call last)" in text
    assert "in _fail_deep_inside" in text and "RuntimeError: the device fell over" in text
    assert logs.details(path) == f" (details: {path})"


def test_the_exception_being_handled_is_the_default(log_dir):
    try:
        _fail_deep_inside()
    except RuntimeError:
        path = logs.log_exception("no exception passed")
    assert "in _fail_deep_inside" in path.read_text()


def test_an_unwritable_folder_logs_nothing_and_says_nothing(tmp_path, monkeypatch, capfd):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log folder should be")
    monkeypatch.setenv("FFTUI_LOG_DIR", str(blocker))
    try:
        _fail_deep_inside()
    except RuntimeError as exc:
        assert logs.log_exception("nowhere to go", exc) is None
    assert logs.details(None) == ""
    assert capfd.readouterr() == ("", "")
    assert blocker.read_text() == "a file where the log folder should be"


def test_the_file_follows_the_variable(tmp_path, monkeypatch):
    for name in ("first", "second"):
        monkeypatch.setenv("FFTUI_LOG_DIR", str(tmp_path / name))
        path = logs.log_exception(f"into {name}", RuntimeError(name))
        assert path == tmp_path / name / "fftui.log"
        assert f"into {name}" in path.read_text()
    assert "into second" not in (tmp_path / "first" / "fftui.log").read_text()


def test_the_log_is_bounded_in_size(log_dir):
    chunk = "x" * 50_000
    for i in range(60):  # 3 MB of messages
        logs.log_exception(f"{i} {chunk}", RuntimeError(str(i)))
    files = sorted(p.name for p in log_dir.iterdir())
    assert files == ["fftui.log", "fftui.log.1", "fftui.log.2"]
    assert all((log_dir / name).stat().st_size <= 1_000_000 + 60_000 for name in files)
    assert "59 x" in (log_dir / "fftui.log").read_text()


def test_records_do_not_reach_the_root_logger(log_dir, monkeypatch):
    seen = []

    class Catch(logging.Handler):
        def emit(self, record):
            seen.append(record)

    catcher = Catch()
    logging.getLogger().addHandler(catcher)
    try:
        logs.log_exception("only in the file", RuntimeError("x"))
    finally:
        logging.getLogger().removeHandler(catcher)
    assert seen == []


def test_importing_creates_no_file(tmp_path):
    folder = tmp_path / "never"
    code = "import engine.logs, engine.runner, engine.headless, fftui.cli"
    env = dict(os.environ, FFTUI_LOG_DIR=str(folder))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert not folder.exists()


# --- the runner's events ----------------------------------------------------------------------


def _errors(runner):
    """The error events, once the first has been queued (the state changes just before)."""
    assert wait_for(lambda: not runner.events.empty())
    return [e.message for e in runner.drain_events() if e.kind == "error"]


def _errors_of_a_failing_batch(small_sample, monkeypatch) -> list[str]:
    """A runner whose every batch fails deep inside the trainer: the error events it queues."""
    from engine.trainer import Trainer

    def advance(self, with_metrics=True):
        _fail_deep_inside()
        yield  # pragma: no cover

    monkeypatch.setattr(Trainer, "advance", advance)
    r = Runner(Config(**SMALL), small_sample).start()
    try:
        assert wait_for(lambda: r.state == "error")
        return _errors(r)
    finally:
        r.stop()


def test_a_failing_batch_logs_and_names_the_file(small_sample, log_dir, monkeypatch):
    errors = _errors_of_a_failing_batch(small_sample, monkeypatch)
    log = log_dir / "fftui.log"
    assert errors == [f"engine failure: RuntimeError: the device fell over (details: {log})"]
    assert "in _fail_deep_inside" in log.read_text()


def test_a_layer_that_cannot_be_built_logs_and_names_the_file(small_sample, log_dir, monkeypatch):
    import engine.runner

    def no_room(*args, **kwargs):
        raise MemoryError("no room for the layer\nsecond line")

    monkeypatch.setattr(engine.runner, "Trainer", no_room)
    r = Runner(Config(**SMALL), small_sample).start()
    try:
        assert wait_for(lambda: r.state == "error")
        errors = _errors(r)
    finally:
        r.stop()
    log = log_dir / "fftui.log"
    # an allocation failure is worded by the sizes, torch's (here MemoryError's) text goes to the log
    assert errors == [f"could not build the layer: out of memory on cpu at batch size {SMALL['batch_size']:,}, "
                      f"width {SMALL['width']:,} (float32); lower the batch size or the width (details: {log})"]
    assert "in no_room" in log.read_text() and "second line" in log.read_text()


def test_a_failing_command_logs_and_names_the_file(small_sample, log_dir, monkeypatch):
    r = Runner(Config(**SMALL), small_sample, start_paused=True).start()
    try:
        assert wait_for(lambda: r._trainer is not None)

        def refuse(cfg):
            raise MemoryError("cannot allocate the wider layer")

        monkeypatch.setattr(r._trainer, "apply", refuse)
        r.set_params(width=4096)
        assert wait_for(lambda: r.state == "error")
        errors = _errors(r)
    finally:
        r.stop()
    log = log_dir / "fftui.log"
    assert errors == [f"set failed: out of memory on cpu at batch size {SMALL['batch_size']:,}, width 4,096 "
                      f"(float32); lower the batch size or the width (details: {log})"]
    assert "in refuse" in log.read_text()


def test_without_a_log_the_event_is_just_the_line(small_sample, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("FFTUI_LOG_DIR", str(blocker))
    errors = _errors_of_a_failing_batch(small_sample, monkeypatch)
    assert errors == ["engine failure: RuntimeError: the device fell over"]


# --- the command line -------------------------------------------------------------------------


def test_an_unexpected_error_is_one_line_status_1_and_logged(log_dir, monkeypatch, capsys):
    import engine.headless

    def broken(*args, **kwargs):
        _fail_deep_inside()

    monkeypatch.setattr(engine.headless, "run_headless", broken)
    rc = main(["run", "--headless", "--data", "sample", "--width", "16", "--iters", "1", "--quiet"])
    assert rc == 1
    err = capsys.readouterr().err
    log = log_dir / "fftui.log"
    assert err.strip().splitlines()[-1] == (f"fftui: unexpected error: RuntimeError: the device fell over "
                                            f"(details: {log})")
    assert "Traceback" not in err
    assert "in _fail_deep_inside" in log.read_text()


def test_user_errors_are_not_logged(log_dir, capsys):
    assert main(["run", "--headless", "--lr", "fast"]) == 2
    assert "details" not in capsys.readouterr().err
    assert not log_dir.exists()
