"""Recording a run: a writer thread that takes metrics chunks, events and checkpoints from the
training thread through a bounded queue and writes the run folder (see engine/store/__init__.py).

The caller never waits for the disk: put() only appends to a queue under a lock. When the writer
falls behind, chunks keep their summary but lose their per-sample arrays (counted); when even the
summary cannot be queued, the chunk is dropped (counted). A disk error (full, read-only, no
permission) stops the recording: every file is cut back to its last complete record, the reason is
kept in `error`, and the training goes on."""
from __future__ import annotations

import collections
import contextlib
import errno
import os
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

from engine.chunk import MetricsChunk
from engine.logs import log_exception
from engine.metrics import BY_NAME

from .checkpoint import write_checkpoint
from .columns import SamplePolicy, sample_rows, summary_lines
from .files import (
    CONFIG_JSON,
    EVENTS,
    FORMAT,
    RUN_JSON,
    SAMPLES,
    STATUSES,
    SUMMARY,
    StoreError,
    WriterLock,
    dumps,
    machine,
    write_json_atomic,
)

DISK_ERRORS = frozenset(getattr(errno, name) for name in ("ENOSPC", "EROFS", "EACCES", "EPERM", "EDQUOT", "EFBIG",
                                                          "EIO") if hasattr(errno, name))
FINAL_METRICS = ("sparser", "agree_theorem", "agree_general")  # run.json's "final", per group
FINAL_WINDOW = 100  # batches that "final" averages over
GZIP_LEVEL = 3  # summary.jsonl.gz: 6.5 times smaller than the text at 14 us a record (level 6: 7.7, 31 us)
if not set(FINAL_METRICS) <= BY_NAME.keys():
    raise ImportError(f"run.json's final metrics {FINAL_METRICS} are not all declared in engine/metrics.py")

Opener = Callable[[Path], BinaryIO]


def open_append(path: Path) -> BinaryIO:
    """The default opener: path for appending, unbuffered (each write is one system call)."""
    return open(path, "ab", buffering=0)  # noqa: SIM115 - closed by _Out.close


class _Out:
    """One append-only file: bytes gathered in memory, written out by drain(); `good` is the size
    after the last complete drain, where rollback() cuts the file back to."""

    def __init__(self, path: Path, opener: Opener) -> None:
        self.path = path
        self.file = opener(path)
        self.pending = bytearray()
        self.good = 0

    def write(self, data: Any) -> int:  # the Arrow stream writer's sink
        self.pending += memoryview(data)
        return len(data)

    closed = False

    def flush(self) -> None:  # called by the Arrow stream writer; drain() does the writing
        pass

    def drain(self) -> None:
        if not self.pending:
            return
        data = bytes(self.pending)
        self.pending.clear()
        view = memoryview(data)
        try:
            while view:
                written = self.file.write(view)
                view = view[written if written is not None else len(view):]
        except OSError as exc:  # a write names no file: say which
            if exc.filename is None:
                exc.filename = str(self.path)
            raise
        self.good += len(data)

    def rollback(self) -> None:
        with contextlib.suppress(Exception):
            self.file.truncate(self.good)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.file.close()


class RunWriter:
    """Records one run into a claimed folder (engine.store.files.claim_run_folder / claim_out_folder).

    description: what config.json holds (engine/headless.py run_description: "config" with every
    parameter, the data, the machine), written at once. keep_samples: a SamplePolicy or its text.
    max_queued: records the queue holds at most; above half of it new chunks keep only their
    summary. flush_interval: seconds between writes to disk (a kill loses at most that much).
    opener: how files are opened for appending (default: open_append, looked up when the writer is
    made, so that tests can replace it with failing or slow files). lock: the folder's WriterLock
    when the caller holds it already; carried: a resumed run's counts (engine/store/resume.py).
    Raises StoreError (one line) when the folder cannot be written at all. Call start(), then put()
    chunks, event() and checkpoint() from the training thread, and close(status) at the end."""

    def __init__(self, folder: Path, description: Mapping[str, Any], *, keep_samples: SamplePolicy | str = "auto",
                 max_queued: int = 8192, flush_interval: float = 1.0, opener: Opener | None = None,
                 lock: WriterLock | None = None, carried: Any = None) -> None:
        self.folder = Path(folder)
        self.policy = keep_samples if isinstance(keep_samples, SamplePolicy) else SamplePolicy.parse(keep_samples)
        self.max_queued = max_queued
        self.flush_interval = flush_interval
        self.records = 0           # batches whose summary is on disk (or about to be, at the next flush)
        self.written = 0           # batches whose summary line is in the file (complete, after a flush)
        self.sample_records = 0    # batches whose per-sample arrays are
        self.dropped_samples = 0   # batches the policy would keep whose arrays were dropped: writer behind
        self._refused = 0          # batches dropped whole: the queue was full or recording had stopped
        self.last_iteration = 0
        self.error: str | None = None  # why recording stopped, one line; None while it works
        self._status = "running"
        self._run_error: str | None = None
        self._checkpoint_iteration: int | None = None
        self._groups: tuple[str, ...] = ()
        self._final: dict[str, np.ndarray] = {}
        self._constants: dict[str, str] = {}
        self._created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self._lock = threading.Condition()
        self._items: collections.deque[tuple] = collections.deque()
        self._queued = 0
        self._closing = False
        self._stopped = False
        self._thread = threading.Thread(target=self._main, name="fftui-store", daemon=True)
        self._lock_file = lock or WriterLock(self.folder)  # lock: already taken (a resume holds it while it cuts)
        if carried is not None:  # a resumed run: engine/store/resume.py's Carried
            carried.apply(self)
        self._zip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        self._compressed = False  # bytes went into the compressor since its last flush
        self._arrow: pa.ipc.RecordBatchStreamWriter | None = None
        self._arrow_schema: pa.Schema = pa.schema([])  # the open stream's
        self._batches: list[pa.RecordBatch] = []
        outs: list[_Out] = []
        opener = opener or open_append
        made = [self.folder / name for name in (SUMMARY, SAMPLES, EVENTS) if not (self.folder / name).exists()]
        try:
            self._lock_file.acquire()
            for name in (SUMMARY, SAMPLES, EVENTS):
                outs.append(_Out(self.folder / name, opener))
            write_json_atomic(self.folder / CONFIG_JSON, dict(description))
            self._write_info()  # last: a folder with run.json has every file
        except OSError as exc:
            for out in outs:
                out.close()
            for path in made:  # a writer that cannot start leaves no file of its own behind
                with contextlib.suppress(OSError):
                    path.unlink()
            self._lock_file.release()
            raise StoreError(f"cannot record into {self.folder}: {exc.strerror or exc}") from None
        self._summary, self._samples, self._events = outs
        self._outs = (self._summary, self._samples, self._events)

    # -- the caller's side: never waits for the disk -------------------------------------------
    def start(self) -> RunWriter:
        """Start the writer thread; returns self."""
        self._thread.start()
        return self

    @property
    def dropped_records(self) -> int:
        """Batches dropped whole (summary too): the queue was full, or recording had stopped."""
        return self._refused

    @property
    def queued(self) -> int:
        """Records waiting for the writer thread."""
        return self._queued

    def put(self, chunk: MetricsChunk, wait: bool = False) -> bool:
        """Queue a chunk (kept by reference: its columns must not change afterwards). Returns at
        once; False when it was dropped whole (queue full, or recording stopped). wait=True (a
        headless run, which keeps every batch's summary): when the queue is full, wait for the
        writer to make room instead of dropping the chunk; it is still dropped once recording has
        stopped."""
        n = len(chunk)
        with self._lock:
            while (wait and not self._stopped and not self._closing and self._queued
                   and self._queued + n > self.max_queued):
                self._lock.wait(0.02)  # the writer thread takes the queue as a whole: room comes soon
            if self._stopped or self._closing or self._queued + n > self.max_queued:
                self._refused += n
                return False
            behind = self._queued + n > self.max_queued // 2
            self._items.append(("chunk", chunk, behind))
            self._queued += n
            self._lock.notify()
        return True

    def event(self, kind: str, iteration: int, **fields: Any) -> None:
        """Queue one event (a parameter change, a pause, an error): kind, iteration, wall time and
        the fields, as one line of events.jsonl. Events are never dropped while recording works."""
        line = {"kind": kind, "iteration": int(iteration), "time": time.time(), **fields}
        with self._lock:
            if not self._stopped:
                self._items.append(("event", line))
                self._lock.notify()

    def checkpoint(self, iteration: int, weights: Mapping[str, Any], optimizer: Mapping[str, Any],
                   metadata: Mapping[str, str] | None = None) -> None:
        """Queue a checkpoint: tensors by name (torch, CPU copies the caller will not change), the
        optimiser's (and random generators') state, string metadata. A checkpoint still waiting is
        replaced by the newer one. Written as one checkpoint.safetensors (tensors "weights/NAME" and
        "optimizer/NAME", the iteration in its metadata) through a temporary file and a rename, so
        that a crash leaves the previous checkpoint or this one whole."""
        item = ("checkpoint", int(iteration), dict(weights), dict(optimizer), dict(metadata or {}))
        with self._lock:
            if self._stopped:
                return
            for k, old in enumerate(self._items):
                if old[0] == "checkpoint":
                    del self._items[k]
                    break
            self._items.append(item)
            self._lock.notify()

    def sync(self, timeout: float | None = None) -> bool:
        """Wait until everything queued before this call is on disk (run.json included); False when
        the writer thread is not running or timeout seconds passed first."""
        done = threading.Event()
        with self._lock:
            if self._closing or not self._thread.is_alive():
                return False
            self._items.append(("sync", done))
            self._lock.notify()
        return done.wait(timeout)

    def close(self, status: str = "finished", error: str | None = None, timeout: float | None = 60.0) -> None:
        """End the run: status one of finished, interrupted, diverged, failed (error: its one line).
        Waits up to timeout seconds for the queue to be written; run.json then holds the status."""
        if status not in STATUSES or status == "running":
            raise ValueError(f"a run ends finished, interrupted, diverged or failed, not {status!r}")
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._items.append(("close", status, error))
            self._lock.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        elif self._thread.ident is None:  # never started: write here
            self._main()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to timeout seconds for a closing writer to finish writing; True when it has (or
        never started)."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the writer thread ----------------------------------------------------------------------
    def _main(self) -> None:
        last_flush = time.monotonic()
        dirty = False  # something was taken since the last flush
        done = False
        while not done:
            with self._lock:
                if not self._items:
                    wait = max(0.0, self.flush_interval - (time.monotonic() - last_flush)) if dirty else None
                    self._lock.wait(wait)
                items = list(self._items)
                self._items.clear()
            synced = []
            for item in items:
                if item[0] == "sync":
                    synced.append(item[1])
                    continue
                if item[0] == "chunk":
                    with self._lock:
                        self._queued -= len(item[1])
                        if self._stopped:
                            self._refused += len(item[1])
                            continue
                elif self._stopped and item[0] != "close":
                    continue
                dirty = True
                try:
                    done = self._take(item) or done
                except Exception as exc:  # a disk error, or a fault: recording stops, training goes on
                    self._stop(exc)
            if done or synced or (dirty and time.monotonic() - last_flush >= self.flush_interval):
                if not self._stopped:
                    try:
                        self._flush(final=done)
                    except Exception as exc:
                        self._stop(exc)
                elif done:  # recording had stopped: say how the run ended, if run.json can still be written
                    with contextlib.suppress(Exception):
                        self._write_info()
                last_flush, dirty = time.monotonic(), False
            for event in synced:
                event.set()
        for out in self._outs:
            out.close()
        self._lock_file.release()

    def _take(self, item: tuple) -> bool:
        kind = item[0]
        if kind == "chunk":
            self._add_chunk(item[1], item[2])
        elif kind == "event":
            self._events.write(dumps(item[1]) + b"\n")
        elif kind == "checkpoint":  # the records it follows reach the disk first: a resume finds them all
            self._flush()
            self._write_checkpoint(*item[1:])
            self._write_info()
        elif kind == "close":
            self._status, self._run_error = item[1], item[2]
            return True
        return False

    def _add_chunk(self, chunk: MetricsChunk, behind: bool) -> None:
        if not len(chunk):
            return
        self._summary.write(self._zip.compress(summary_lines(chunk)))
        self._compressed = True
        self.records += len(chunk)
        self.last_iteration = chunk.last_iteration
        self._constants = dict(chunk.constants)
        self._note_final(chunk)
        keep = self.policy.keep(chunk.columns["iteration"])
        if behind:
            self.dropped_samples += int(keep.sum())
            return
        rows = sample_rows(chunk, keep)
        if rows is not None:
            self._batches.append(rows)
            self.sample_records += int(keep.sum())

    def _note_final(self, chunk: MetricsChunk) -> None:
        if chunk.groups != self._groups:
            self._groups, self._final = chunk.groups, {}
        for name in FINAL_METRICS:
            col = chunk.columns[name][-FINAL_WINDOW:]
            old = self._final.get(name)
            self._final[name] = col if old is None else np.concatenate([old, col])[-FINAL_WINDOW:]

    def _flush(self, final: bool = False) -> None:
        while self._batches:
            # the run's float dtype and, for a stack, the layer column (engine/store/columns.py); rows of
            # another schema than the stream's (a stack's after one layer's) begin a stream of their own
            schema = self._batches[0].schema
            same = next((i for i, b in enumerate(self._batches) if not b.schema.equals(schema)), len(self._batches))
            if self._arrow is not None and not self._arrow_schema.equals(schema):
                self._arrow.close()
                self._arrow = None
            if self._arrow is None:
                options = pa.ipc.IpcWriteOptions(compression="zstd")
                self._arrow = pa.ipc.new_stream(self._samples, schema, options=options)
                self._arrow_schema = schema
            table = pa.Table.from_batches(self._batches[:same], schema=schema).combine_chunks()
            self._batches = self._batches[same:]
            for batch in table.to_batches():
                self._arrow.write_batch(batch)
        if final and self._arrow is not None:
            self._arrow.close()  # the end-of-stream marker
        if self._compressed or final:
            self._summary.write(self._zip.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH))
            self._compressed = False
        taken = self.records
        self._summary.drain()
        self.written = taken  # every line taken so far is complete in the file
        for out in self._outs:
            out.drain()
        self._write_info()

    def _write_checkpoint(self, iteration: int, weights: dict, optimizer: dict, metadata: dict) -> None:
        write_checkpoint(self.folder, iteration, weights, optimizer, metadata)
        self._checkpoint_iteration = iteration

    def _stop(self, exc: Exception) -> None:
        """Stop recording after exc: cut every file back to its last complete record, keep the reason."""
        with self._lock:
            self._stopped = True
            dropped = sum(len(item[1]) for item in self._items if item[0] == "chunk")
            self._items = collections.deque(item for item in self._items if item[0] == "close")
            self._queued -= dropped
            self._refused += dropped
        for out in self._outs:
            out.rollback()
        self.records = self.written  # what the summary holds after the rollback
        if isinstance(exc, OSError) and exc.errno is not None and exc.errno in DISK_ERRORS:
            where = Path(exc.filename).name if exc.filename else None
            self.error = os.strerror(exc.errno).lower() + (f" ({where})" if where else "")
        else:
            self.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            log_exception(f"recording stopped: {self.error}", exc)
        with contextlib.suppress(Exception):
            self._write_info()

    def _write_info(self) -> None:
        final = {}
        for gi, group in enumerate(self._groups):
            final[group] = {name: _nanmean(col[:, gi]) for name, col in self._final.items()}
        info = {
            "format": FORMAT, "name": self.folder.name, "status": self._status, "error": self._run_error,
            "created": self._created, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "iteration": self.last_iteration, "records": self.records, "sample_records": self.sample_records,
            "dropped_samples": self.dropped_samples, "dropped_records": self.dropped_records,
            "keep_samples": self.policy.text, "groups": list(self._groups), "constants": self._constants,
            "final": final, "final_window": FINAL_WINDOW, "checkpoint_iteration": self._checkpoint_iteration,
            "recording_error": self.error, "pid": os.getpid(), "machine": machine(),
        }
        write_json_atomic(self.folder / RUN_JSON, info)


def _nanmean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None
