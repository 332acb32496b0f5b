"""A live run's files, written behind the training: config.json and metrics.jsonl in a folder that
`engine.headless.prepare_out_dir` claimed, from a thread of their own, so that training never waits
on the disk."""
from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
from pathlib import Path
from typing import Any

from .chunk import MetricsChunk
from .config import Config
from .data import Dataset
from .data.errors import describe
from .headless import run_description


class RunRecorder:
    """Writes ``out_dir/config.json`` and ``out_dir/metrics.jsonl`` (the lines of
    `MetricsChunk.lines`, as a headless run writes them) for a run that the app steers.

    ``chunk`` and ``change`` only queue their argument and return at once (the engine's thread calls
    them); a writer thread does the rest. config.json is `engine.headless.run_description` of the
    starting configuration plus ``"changes"``: one entry per change applied during the run
    (``{"iteration": the batches trained before it, "reset": whether the layer started anew there
    (the records that follow count from iteration 1 again), "config": every parameter from then on}``), rewritten whole
    (through a temporary file) at each change.

    A failure to write (a full disk, a folder gone read-only) stops the writing: every complete line
    stays, a partly written one is cut off, ``error`` says what happened in one line and ``written``
    counts the records in the file. The queue is not bounded: when the disk is slower than training,
    the records wait in memory.
    """

    def __init__(self, out_dir: str | os.PathLike[str], cfg: Config, dataset: Dataset, *,
                 per_sample: bool = True, extra: dict | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.per_sample = per_sample
        self.written = 0
        self.error: str | None = None
        self._description = run_description(cfg, dataset, extra)
        self._changes: list[dict[str, Any]] = []
        self._queue: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name="fftui-writer", daemon=True)
        self._thread.start()

    # -- called from the engine's thread ----------------------------------------------------------
    def chunk(self, chunk: MetricsChunk) -> None:
        """Queue a chunk of records for metrics.jsonl."""
        self._queue.put(("chunk", chunk))

    def change(self, iteration: int, cfg: Config, reset: bool) -> None:
        """Note the configuration that applies after ``iteration`` batches, from a fresh layer if ``reset``."""
        self._queue.put(("change", {"iteration": int(iteration), "reset": bool(reset), "config": cfg.as_dict()}))

    # -- called by the owner -------------------------------------------------------------------------
    def close(self, timeout: float | None = 10.0) -> bool:
        """Write what is queued, close the files; True when everything queued was written in time."""
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive() and self.error is None

    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "metrics.jsonl"

    # -- the writer thread ---------------------------------------------------------------------------
    def _main(self) -> None:
        fd = -1
        try:
            self._write_config()
            fd = os.open(self.metrics_path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            self.error = f"cannot write in {self.out_dir}: {describe(exc)}"
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                if self.error is not None:
                    continue  # nothing more is written; the queue is still emptied
                kind, payload = item
                try:
                    if kind == "chunk":
                        self._append(fd, payload)
                    else:
                        self._changes.append(payload)
                        self._write_config()
                except OSError as exc:
                    self.error = f"writing in {self.out_dir} failed after {self.written:,} records: {describe(exc)}"
        finally:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _append(self, fd: int, chunk: MetricsChunk) -> None:
        """Append the chunk's lines; on a failed write keep only the complete lines, then raise."""
        data = "".join(line + "\n" for line in chunk.lines(self.per_sample)).encode("utf-8")
        start = os.lseek(fd, 0, os.SEEK_END)
        done = 0
        try:
            while done < len(data):
                done += os.write(fd, data[done:])
        except OSError:
            whole = data.rfind(b"\n", 0, done) + 1  # bytes of the complete lines written
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start + whole)
            self.written += data.count(b"\n", 0, whole)
            raise
        self.written += len(chunk)

    def _write_config(self) -> None:
        info = dict(self._description)
        if self._changes:
            info["changes"] = self._changes
        target = self.out_dir / "config.json"
        part = self.out_dir / ".config.json.part"
        try:
            part.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            os.replace(part, target)
        finally:
            with contextlib.suppress(OSError):
                part.unlink()
