"""A run folder on disk: its file names, its format version, run.json, where the store lives, how a
new run folder is named and claimed, and whether a run's writer is still alive.

Errors the user can cause (a folder that is not a run, from another format, a name that matches no
run) are StoreError: one line, which the CLI prints with exit status 2."""
from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

import orjson

FORMAT = 1  # the run folder's format; a reader refuses any other

RUN_JSON = "run.json"              # status, last iteration, counts, final ratios: rewritten atomically
CONFIG_JSON = "config.json"        # every parameter, the data and the machine (written once)
SUMMARY = "summary.jsonl.gz"       # one JSON line per batch, gzip stream flushed in whole lines
SAMPLES = "samples.arrows"         # per-sample arrays: Arrow IPC stream, one row per group of a kept batch
EVENTS = "events.jsonl"            # parameter changes, pauses, errors: one JSON line each
CHECKPOINT = "checkpoint.safetensors"  # the last checkpoint: weights/NAME and optimizer/NAME tensors
LOCK = "writer.lock"               # held (flock) by the live writer; free once it is gone
LEGACY_METRICS = "metrics.jsonl"   # the records of an older fftui's run (no run.json): not readable here
REQUIRED = (RUN_JSON, CONFIG_JSON, SUMMARY)

STATUSES = ("running", "finished", "interrupted", "diverged", "failed")

ENV_DATA_DIR = "FFTUI_DATA_DIR"  # overrides the data folder (tests); runs live in its runs/


class StoreError(Exception):
    """A run folder or run name that cannot be used; the message is one line."""


def store_root() -> Path:
    """The folder that holds recorded runs: ``$FFTUI_DATA_DIR/runs`` when that variable is set, else
    ``platformdirs.user_data_dir("fftui")/runs`` (``~/.local/share/fftui/runs`` on Linux). Absolute;
    not created here."""
    override = os.environ.get(ENV_DATA_DIR, "").strip()
    if override:
        base = Path(override).expanduser()
    else:
        import platformdirs

        base = Path(platformdirs.user_data_dir("fftui"))
    return Path(os.path.abspath(base / "runs"))


_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def run_stem(name: str, when: float | None = None) -> str:
    """A run folder's name without its uniqueness suffix: ``YYYYMMDD-HHMMSS-name`` in local time,
    the name reduced to letters, digits and ``_.+-`` (``run`` when nothing is left)."""
    safe = _UNSAFE.sub("-", name).strip("-.") or "run"
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(when)) + "-" + safe


def claim_run_folder(name: str, root: Path | None = None, when: float | None = None) -> Path:
    """Create and claim a fresh run folder ``root/YYYYMMDD-HHMMSS-name`` (``-2``, ``-3``... when
    another run took it, even in the same second), through engine/headless.py's exclusive claim
    (writer.lock created exclusively), so that two processes never get the same folder. Raises
    StoreError when the store cannot be written."""
    from engine.headless import OutputError, claim_new_dir

    root = store_root() if root is None else root
    try:
        root.mkdir(parents=True, exist_ok=True)
        return claim_new_dir(str(root / run_stem(name, when)))
    except (OutputError, OSError) as exc:
        raise StoreError(f"cannot create a run folder in {root}: {getattr(exc, 'strerror', None) or exc} "
                         "(--no-record runs without recording)") from None


def claim_out_folder(path: str | Path) -> Path:
    """Claim a folder given by the user (``--out DIR``) for one run; StoreError when it is taken or
    cannot be written."""
    from engine.headless import OutputError, prepare_out_dir

    try:
        return prepare_out_dir(path)
    except OutputError as exc:
        raise StoreError(str(exc)) from None


def dumps(value: Any) -> bytes:
    """Compact JSON (orjson): NaN and infinities as null, numpy scalars and arrays as numbers, other
    values JSON has no type for as their str()."""
    return orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def write_json_atomic(path: Path, value: Any) -> None:
    """Write value as indented JSON to path through a temporary file and a rename, so that a reader
    (or a crash) sees the old file or the new one, never half of one. Values JSON has no type for
    (paths) are written as their str(). Raises OSError."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        exc.filename = str(path)  # the file meant, not its temporary stand-in
        raise


def read_json(path: Path, what: str) -> dict:
    """A JSON object from path; StoreError naming the file when it is missing, unreadable or not
    an object. `what` names the folder in the message."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StoreError(f"{what} has no {path.name}: not a recorded run, or half-written") from None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise StoreError(f"{path} is not valid JSON (half-written or damaged)") from None
    if not isinstance(value, dict):
        raise StoreError(f"{path} does not hold a JSON object")
    return value


def machine() -> str:
    """This machine's name, to tell whether a writer's process id can be checked here."""
    return socket.gethostname()


class WriterLock:
    """An exclusive advisory lock (flock) on the run folder's writer.lock, held while a writer
    records: a reader that can take the lock knows the writer is gone (killed, crashed). Where flock
    does not exist (Windows) the lock is not taken and held() reports from the process id."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK
        self._fd: int | None = None

    PATIENCE = 2.0  # seconds to wait for readers (writer_alive holds a shared lock for an instant)

    def acquire(self) -> None:
        """Take the lock for this process; OSError when the file cannot be made, or when another
        process still holds the lock after PATIENCE seconds (a reader's shared lock is let go at once).
        Nothing when this WriterLock holds it already."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl
        except ImportError:
            self._fd = fd
            return
        deadline = time.monotonic() + self.PATIENCE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
                os.close(fd)
                raise
            except OSError:
                os.close(fd)
                raise
        self._fd = fd

    def release(self) -> None:
        """Let the lock go (closing the file releases it)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def writer_alive(folder: Path, info: dict) -> bool:
    """Whether the process that records into folder is still at it: its writer.lock is held (flock),
    or, without flock, its process id is alive on this machine."""
    try:
        import fcntl
    except ImportError:
        return _pid_alive(info)
    try:
        fd = os.open(folder / LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True  # someone holds it exclusively: the writer
    finally:
        os.close(fd)
    return False


def _pid_alive(info: dict) -> bool:
    pid = info.get("pid")
    if not isinstance(pid, int) or info.get("machine") != machine():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def folder_size(folder: Path) -> int:
    """Bytes of the files directly in folder (a run folder has no subfolders)."""
    total = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
    return total
