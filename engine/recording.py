"""The live app's recording: the runs the engine's thread trains, one RunWriter (engine/store) at a
time. A reset, or a change that resets the layer (mode, width, loss..., see RESET_FIELDS), ends the
run being recorded (kept, status finished) and starts the next one in a folder of its own; any other
change of parameters is an event of the run with its iteration, as are pauses and engine errors.

Every method the engine's thread calls returns at once (the writer thread does the writing), except
a new run's start, which claims its folder and writes its config.json (a few small files)."""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import FIELD_NAMES, VIEW_FIELDS, Config
from .data import Dataset
from .headless import OutputError, claim_new_dir, run_description, training_state
from .store import RunWriter, SamplePolicy, StoreError, claim_run_folder, run_name


class Recording:
    """Records the app's runs. folder: the first run's folder, already claimed (engine.headless
    prepare_out_dir for --out, engine.store.claim_run_folder in the store). out: the --out folder
    when there is one: the next runs go to OUT-2, OUT-3...; else into the store (root: its folder,
    default engine.store.store_root()), named after the mode and loss. extra: what config.json
    holds beside run_description (the first run's only: a preset names the first run alone).
    checkpoint_every: seconds between the checkpoints `checkpoint_due` asks for. writer_options go
    to every RunWriter (opener, flush_interval...), first_options to the first one alone (a resumed
    run's lock and carried counts: engine/resume.py).

    A folder that cannot be claimed or written stops the recording (`error` says why, one line)
    and the training goes on; so does a RunWriter that stops (a full disk)."""

    def __init__(self, folder: Path, dataset: Dataset, cfg: Config, *, out: str | Path | None = None,
                 keep_samples: SamplePolicy | str = "auto", extra: dict | None = None,
                 checkpoint_every: float = 300.0, root: Path | None = None,
                 clock: Callable[[], float] = time.monotonic, first_options: dict | None = None,
                 **writer_options: Any) -> None:
        self.dataset = dataset
        self.out = Path(out).expanduser() if out is not None else None
        self.root = root
        self.policy = keep_samples if isinstance(keep_samples, SamplePolicy) else SamplePolicy.parse(keep_samples)
        self.checkpoint_every = checkpoint_every
        self.clock = clock
        self.writer_options = writer_options
        self.folders: list[Path] = []   # every run recorded, in order
        self.writer: RunWriter | None = None
        self._failure: str | None = None  # why no writer could be started
        self._ended: list[RunWriter] = []
        self._diverged = False
        self._chunks = 0                  # chunks given to the run being recorded
        self._preset: str | None = None   # the preset the run being recorded came from
        self.next_preset: str | None = None  # the preset the next run comes from (set by the app)
        self._last_checkpoint = clock()
        self._start(folder, cfg, extra or {}, **(first_options or {}))

    # -- what the app shows -------------------------------------------------------------------
    @property
    def folder(self) -> Path | None:
        """The folder of the run being recorded (None when recording stopped before it began)."""
        return self.writer.folder if self.writer is not None else None

    @property
    def error(self) -> str | None:
        """Why recording stopped, one line; None while it works."""
        if self.writer is not None and self.writer.error is not None:
            return self.writer.error
        return self._failure

    def status_text(self) -> str:
        """A few words for the status bar: "run NAME", or "recording stopped: REASON"."""
        if self.error is not None:
            return f"recording stopped: {self.error}"
        return f"run {self.folder.name}" if self.folder is not None else ""

    # -- called from the engine's thread --------------------------------------------------------
    def chunk(self, chunk: Any) -> None:
        """A chunk of records of the run being recorded (dropped, and counted, when the writer is
        too far behind: training never waits for the disk)."""
        if self.writer is not None:
            self._chunks += 1
            self.writer.put(chunk)

    def change(self, iteration: int, old: Config, new: Config, reset: bool) -> None:
        """The configuration `new` applies after `iteration` batches. reset: the layer starts anew
        (a reset, or a change of a RESET field): the run ends and the next one begins with `new`;
        otherwise an event "change" at `iteration` (the last batch trained before it) with
        {"changes": {name: [old, new]}} for each parameter that changed (the view's are left out)."""
        if reset:
            self._next(new)
            return
        changes = {f: [getattr(old, f), getattr(new, f)] for f in FIELD_NAMES
                   if f not in VIEW_FIELDS and getattr(old, f) != getattr(new, f)}
        if changes and self.writer is not None:
            self.writer.event("change", iteration, changes=changes)

    def event(self, kind: str, iteration: int, **fields: Any) -> None:
        """An event of the run being recorded (pause, resume, error: fields such as "message").
        An error with cause "overflow" marks the run diverged."""
        if kind == "error" and fields.get("cause") == "overflow":
            self._diverged = True
        if self.writer is not None:
            self.writer.event(kind, iteration, **fields)

    def checkpoint(self, trainer: Any) -> None:
        """Checkpoint the trainer now (CPU copies of its weights and optimiser state, taken here,
        between two batches); nothing for a run that has not trained or has diverged."""
        self._last_checkpoint = self.clock()
        if self.writer is None or trainer.iteration == 0 or self._diverged:
            return
        self.writer.checkpoint(trainer.iteration, *training_state(trainer))

    def checkpoint_due(self) -> bool:
        """Whether checkpoint_every seconds have passed since the last checkpoint."""
        return self.writer is not None and self.clock() - self._last_checkpoint >= self.checkpoint_every

    # -- the owner's -------------------------------------------------------------------------------
    def close(self, interrupted: bool = False, timeout: float = 10.0) -> None:
        """End the run being recorded (interrupted, diverged or finished) and wait up to timeout
        seconds for every run's files to be written."""
        self._end("interrupted" if interrupted else None, wait=False)
        deadline = time.monotonic() + timeout
        for writer in self._ended:
            writer.wait(max(0.0, deadline - time.monotonic()))

    def summary(self) -> str:
        """A few words on what was recorded, for the app's last line ("" when nothing was)."""
        if not self.folders:
            return f"recording stopped: {self._failure}" if self._failure else ""
        earlier = len(self.folders) - 1
        runs = "" if not earlier else f" (and {earlier} earlier run{'s' if earlier > 1 else ''} beside it)"
        last = self._ended[-1] if self._ended else None
        if last is not None and last.error is not None:
            return f"recording stopped: {last.error}; {last.written:,} records kept in {last.folder}{runs}"
        if self._failure:
            return f"recording stopped: {self._failure}; earlier runs are in {self.folders[-1]}"
        return f"recorded in {self.folders[-1]}{runs}"

    # -- inside ---------------------------------------------------------------------------------
    def _start(self, folder: Path, cfg: Config, extra: dict, **options: Any) -> None:
        try:
            writer = RunWriter(folder, run_description(cfg, self.dataset, {**extra, "app": True}),
                               keep_samples=self.policy, **{**self.writer_options, **options})
        except StoreError as exc:
            self._failure = str(exc)
            return
        self.writer = writer.start()
        self.folders.append(folder)
        self._diverged = False
        self._chunks = writer.records  # a resumed run's records count: it is never an empty run
        self._preset = extra.get("preset")
        self._last_checkpoint = self.clock()

    def _end(self, status: str | None, wait: bool) -> None:
        writer, self.writer = self.writer, None
        if writer is None:
            return
        status = status or ("diverged" if self._diverged else "finished")
        writer.close(status, timeout=None if wait else 0.0)
        self._ended.append(writer)

    def _next(self, cfg: Config) -> None:
        """End the run being recorded and start the next one with cfg. A run that recorded no batch
        (two resets in a row, a preset's change and its reset) is not kept: its folder goes, unless
        it is the --out folder itself."""
        if self.writer is None and self._failure is not None:
            return  # recording stopped: it stays stopped
        empty = self.writer is not None and self._chunks == 0
        self._end(None, wait=empty)
        if empty and self.folders[-1] != self.out:
            shutil.rmtree(self.folders.pop(), ignore_errors=True)
            self._ended.pop()
        preset = self.next_preset or (self._preset if empty else None)  # an empty run's preset carries over
        self.next_preset = None
        try:
            if self.out is not None:
                folder = claim_new_dir(str(self.out))
            else:
                folder = claim_run_folder(run_name(cfg.mode, cfg.loss, preset), self.root)
        except (OutputError, StoreError) as exc:
            self._failure = f"no folder for the next run: {exc}"
            return
        self._start(folder, cfg, {"preset": preset})
