"""A run folder just claimed, whose writer holds writer.lock but has not yet written run.json, is a
run being recorded: `fftui runs rm` and `prune` leave it alone."""
from __future__ import annotations

import pytest

from engine.store import StoreError, claim_run_folder
from engine.store.catalog import list_runs, prune, remove
from engine.store.files import WriterLock


@pytest.fixture
def claimed(tmp_path):
    """A claimed folder in a store at tmp_path whose writer holds its lock, without run.json yet."""
    folder = claim_run_folder("fresh", root=tmp_path)
    lock = WriterLock(folder)
    lock.acquire()
    yield folder
    lock.release()


def test_remove_refuses_a_folder_whose_writer_holds_the_lock(tmp_path, claimed):
    assert not (claimed / "run.json").exists()
    with pytest.raises(StoreError, match="being recorded"):
        remove([claimed.name], root=tmp_path)
    assert claimed.is_dir()


def test_prune_spares_a_folder_whose_writer_holds_the_lock(tmp_path, claimed):
    assert prune(keep=0, root=tmp_path) == []
    assert claimed.is_dir()
    assert [e.status for e in list_runs(tmp_path)] == ["running"]


def test_a_folder_without_run_json_and_no_writer_can_go(tmp_path):
    folder = claim_run_folder("left", root=tmp_path)
    lock = WriterLock(folder)
    lock.acquire()
    lock.release()  # a writer that died before writing run.json
    assert [e.status for e in list_runs(tmp_path)] == ["damaged"]
    assert remove([folder.name], root=tmp_path) == [folder]
    assert not folder.exists()


def test_a_reader_checking_the_lock_at_the_moment_of_the_claim_does_not_stop_the_writer(tmp_path):
    """`fftui runs` takes writer.lock shared for an instant (writer_alive); a writer taking it at
    that moment waits for it instead of failing."""
    import fcntl
    import os
    import threading

    from engine.store.files import LOCK, WriterLock

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK).touch()
    reader = os.open(folder / LOCK, os.O_RDONLY)
    fcntl.flock(reader, fcntl.LOCK_SH)
    threading.Timer(0.2, os.close, (reader,)).start()  # the reader lets go a moment later
    lock = WriterLock(folder)
    lock.acquire()
    try:
        other = os.open(folder / LOCK, os.O_RDONLY)
        try:  # held exclusively now: a second taker is refused
            try:
                fcntl.flock(other, fcntl.LOCK_SH | fcntl.LOCK_NB)
                raise AssertionError("the writer's lock was not exclusive")
            except BlockingIOError:
                pass
        finally:
            os.close(other)
    finally:
        lock.release()
