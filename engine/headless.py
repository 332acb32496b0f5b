"""Headless runs: train in the calling thread, record every batch through the run store's writer
(engine/store) and summarise the run; claim an output folder for one run. How progress and the
summary are shown is the caller's (fftui/headless/)."""
from __future__ import annotations

import contextlib
import math
import os
import platform
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from . import network
from .chunk import MetricsChunk
from .config import Config
from .data import Dataset
from .data.errors import describe
from .evaluate import Evaluation
from .logs import log_exception
from .memory import check_fits
from .metrics import SUMMARY_METRICS, MetricsRecord
from .negatives import check_labels
from .stack import LayerSummary
from .trainer import EngineError, Overflow, Trainer

if TYPE_CHECKING:
    from .store import RunWriter

CHECKPOINT_EVERY = 300.0  # seconds between a recorded headless run's checkpoints (and one at its end)


class OutputError(Exception):
    """The output folder cannot be used; one line for the user."""


# The files whose presence means a folder holds a run (or someone's config.json): never overwritten.
# metrics.jsonl: a run of an older fftui. writer.lock: the claim of a run that has not written yet.
# seeds.json: a preset run once per seed (fftui/headless/seeds.py), its runs in seed-SEED folders.
RUN_FILES = ("run.json", "config.json", "metrics.jsonl", "writer.lock", "seeds.json")
CLAIM = "writer.lock"  # created exclusively by the claim; the run's writer then holds it (engine/store)


def prepare_out_dir(path: str | Path) -> Path:
    """Create the folder and claim it for one run: refuse a folder that already holds a run's file
    (a run's or anything else's config.json is never overwritten), then create writer.lock
    exclusively, so that of two runs given the same folder at the same moment only one gets it
    (the run's RunWriter then takes the lock on that file). Raises OutputError (one line)
    otherwise. `release_claim` gives a claimed folder back when its run never started."""
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create --out folder {out}: {describe(exc)}") from None
    for name in RUN_FILES:
        if (out / name).exists():
            raise OutputError(f"{out} already holds {name}; choose another --out folder")
    try:
        os.close(os.open(out / CLAIM, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        raise OutputError(f"{out} already holds {CLAIM}; choose another --out folder") from None
    except OSError as exc:
        raise OutputError(f"cannot write in --out folder {out}: {describe(exc)}") from None
    return out


def release_claim(folder: Path, remove_folder: bool = False) -> None:
    """Give back a folder claimed by prepare_out_dir whose run never started (the data did not
    load, a signal came first): its claim file goes, and the folder too when remove_folder and it
    is then empty. Never raises."""
    with contextlib.suppress(OSError):
        (folder / CLAIM).unlink()
    if remove_folder:
        with contextlib.suppress(OSError):
            folder.rmdir()


def write_text(path: Path, text: str) -> None:
    """Write a whole small file (config.json, a figure); OutputError (one line) when it fails,
    and no half-written file left behind."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        with contextlib.suppress(OSError):
            path.unlink()
        raise OutputError(f"cannot write {path}: {describe(exc)}") from None


def claim_new_dir(stem: str) -> Path:
    """A fresh run folder named `stem`, or `stem-2`, `stem-3`, ... when another run has it."""
    for n in range(1, 1000):
        candidate = Path(stem if n == 1 else f"{stem}-{n}")
        try:
            return prepare_out_dir(candidate)
        except OutputError:
            if not candidate.is_dir():
                raise
    raise OutputError(f"no free folder name for {stem} (tried {stem}-2 to {stem}-999)")


def run_description(cfg: Config, dataset: Dataset, extra: dict | None = None) -> dict:
    """What config.json holds: every parameter, the data and the machine."""
    info = {
        "config": cfg.as_dict(),
        "dataset": {"source": dataset.source, "description": dataset.description,
                    "size": dataset.size, "note": dataset.note},
        "device": str(dataset.images.device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if extra:
        info.update(extra)
    return info


SUMMARY_KEYS = tuple(m.name for m in SUMMARY_METRICS)


class RunningSummary:
    """Per group, the mean over batches of each summary metric (engine/metrics.py), counting only
    batches where it is finite, and the number of batches without a valid sample (where the ratios
    are NaN). Keeps running sums, not the values: memory stays flat over any run."""

    def __init__(self) -> None:
        self._sums: dict[str, np.ndarray] = {}
        self._counts: dict[str, np.ndarray] = {}
        self._empty: dict[str, int] = {}

    def add(self, chunk: MetricsChunk) -> None:
        """Take a chunk's batches into the running sums."""
        values = np.stack([chunk.columns[key].astype(float) for key in SUMMARY_KEYS])  # keys x r x groups
        finite = np.isfinite(values)
        sums = np.where(finite, values, 0.0).sum(axis=1)
        counts = finite.sum(axis=1)
        for gi, name in enumerate(chunk.groups):
            if name not in self._sums:
                self._sums[name] = np.zeros(len(SUMMARY_KEYS))
                self._counts[name] = np.zeros(len(SUMMARY_KEYS), dtype=np.int64)
                self._empty[name] = 0
            self._sums[name] += sums[:, gi]
            self._counts[name] += counts[:, gi]
            self._empty[name] += int((~finite[SUMMARY_KEYS.index("sparser"), :, gi]).sum())

    def result(self) -> dict[str, dict[str, float]]:
        """{group: {key: mean (NaN when never finite), ..., "batches_without_valid_samples": count}}."""
        out = {}
        for name, sums in self._sums.items():
            counts = self._counts[name]
            row = {key: float(sums[i] / counts[i]) if counts[i] else math.nan for i, key in enumerate(SUMMARY_KEYS)}
            row["batches_without_valid_samples"] = self._empty[name]
            out[name] = row
        return out


# The signals that stop a headless run between batches: ctrl+c, `kill`, a closed terminal.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopRequest:
    """Set by a stop signal (see stop_on_interrupt): which one arrived first, or None."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def is_set(self) -> bool:
        return self.signum is not None


@contextlib.contextmanager
def stop_on_interrupt() -> Iterator[StopRequest]:
    """While inside, SIGINT, SIGTERM and SIGHUP set the request instead of ending the process, so
    that a run stops between two batches with everything it trained delivered; a second signal
    raises KeyboardInterrupt. Only the main thread can take signals: elsewhere nothing changes and
    the request is never set; a signal the process ignores (SIGINT in a background job) stays
    ignored."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.signum = signum

    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum, before in previous.items():
        if before is not signal.SIG_IGN:
            signal.signal(signum, handler)
    try:
        yield stop
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


def run_headless(cfg: Config, dataset: Dataset, writer: RunWriter | None = None, *,
                 on_chunk: Callable[[MetricsChunk], None] | None = None,
                 on_record: Callable[[MetricsRecord], None] | None = None,
                 on_evaluation: Callable[[Evaluation], None] | None = None,
                 graphs: bool = True, compile: bool = False, trainer: Trainer | None = None,
                 checkpoint_every: float = CHECKPOINT_EVERY, clock: Callable[[], float] = time.monotonic,
                 earlier: Any = None, earlier_lines: Sequence[dict] = ()) -> dict:
    """Train for cfg.total_iters batches; returns a summary dict. writer: a started RunWriter
    (engine.store) that records every batch (its summary always: when the writer falls a full
    queue behind, training waits for it), a checkpoint at the end, and the run's status, which
    run_headless closes it with; None records nothing.

    Ctrl+c (SIGINT, see stop_on_interrupt) stops between batches, every batch trained recorded
    (status interrupted). An EngineError stops the run too (diverged for an overflow, else failed):
    its one line is the summary's "error", its traceback goes to the log file, whose path is the
    summary's "log" (None when nothing was logged). So does a recording that stopped (a full disk):
    every complete record stays, the "error" says how many. A configuration that cannot fit in the
    device's memory raises ConfigError before anything is allocated (engine/memory.py). on_chunk
    sees every chunk of records as it lands (for progress), on_record every record (built only
    when asked for), on_evaluation every evaluation. With cfg.evaluate, the goodness classifier's
    test error (engine/evaluate.py) after every epoch and at the end: an "evaluation" event of the
    run and the summary's "evaluations". A stack's summary has "layers": per layer and group the
    means of the summary metrics and of the end-to-end ones (engine/stack.py LayerSummary).

    trainer: one built already for cfg and dataset, e.g. put back where a checkpoint left its run
    (engine/resume.py restore); the run then trains from its iteration to cfg's end. earlier: the
    batches recorded before that iteration (an engine.store Summary), counted in the summary's
    means ("resumed_from": the iteration the call began at, None from 0); earlier_lines: the same
    batches as parsed summary lines, whose "layers" a stack's per-layer means count. With a writer, a
    checkpoint is also written every checkpoint_every seconds (by clock), after every batch trained
    so far is recorded."""
    check_fits(cfg, dataset.size, dataset.images.device)
    check_labels(cfg, dataset.labels)
    if trainer is None:
        trainer = Trainer(cfg, dataset, graphs=graphs, compile=compile)
    total = trainer.total_iters
    if total is None:
        raise OutputError("a headless run needs an end: give --iters or --epochs (at least 1)")
    summary = RunningSummary()
    if earlier is not None and len(earlier):
        summary.add(earlier)
    first = trainer.iteration  # where this call began: 0, or a checkpoint's iteration
    settled = True  # the trainer stands between two batches, every batch trained recorded
    layers = LayerSummary()
    layers.add_records(earlier_lines)
    evaluations: list[Evaluation] = []

    def evaluate() -> None:
        """The classifier's test error after this batch (every epoch and at the end), recorded."""
        result = network.evaluate(trainer)
        if result is None or (evaluations and evaluations[-1].iteration == result.iteration):
            return
        evaluations.append(result)
        if writer is not None:
            writer.event("evaluation", result.iteration, **result.fields())
        if on_evaluation is not None:
            on_evaluation(result)

    interrupted = False
    stopped_by: int | None = None  # the signal that stopped the run, if one did
    error: str | None = None
    status = "finished"
    log: Path | None = None
    started = time.perf_counter()
    last: MetricsChunk | None = None
    last_checkpoint = clock()

    def take(chunk: MetricsChunk) -> None:
        nonlocal last
        last = chunk
        summary.add(chunk)
        layers.add(chunk)
        if writer is not None:
            writer.put(chunk, wait=True)
            if writer.error is not None:
                raise RecordingStopped(recording_error(writer))
        if on_record is not None:
            for record in chunk.records():
                on_record(record)
        if on_chunk is not None:
            on_chunk(chunk)

    try:
        with stop_on_interrupt() as stop:
            while trainer.iteration < total and not stop.is_set():
                for chunk in trainer.advance():
                    take(chunk)
                if writer is not None and clock() - last_checkpoint >= checkpoint_every:
                    for chunk in trainer.flush():  # the checkpoint follows every record before it
                        take(chunk)
                    writer.checkpoint(trainer.iteration, *training_state(trainer))
                    last_checkpoint = clock()
                if trainer.test is not None and trainer.iteration % trainer.batches_per_epoch == 0:
                    evaluate()
            interrupted = stop.is_set()
            stopped_by = stop.signum
            for chunk in trainer.flush():  # every batch trained so far is recorded
                take(chunk)
            if trainer.iteration > 0:
                evaluate()  # at the end, unless the last epoch's evaluation was it
    except KeyboardInterrupt:  # a second ctrl+c, or not in the main thread: what was recorded stays
        interrupted = True
        settled = False  # it may have come mid-batch: the last checkpoint stays the one to resume from
    except EngineError as exc:  # a loss that overflowed: stop, keep what was recorded, say why
        error = str(exc)
        status = "diverged" if isinstance(exc, Overflow) else "failed"
        if isinstance(exc, Overflow):  # the weights are gone: only another run can help
            error += "; lower the learning rate (--lr) and run again"
        log = log_exception(f"headless run stopped: {exc}", exc)
        try:
            for chunk in trainer.take_ready():  # the batches that arrived before the one that failed
                take(chunk)
        except RecordingStopped as write_error:
            error = f"{error}; then {write_error}"
    except RecordingStopped as exc:  # the records cannot be written (a full disk): stop, keep what is there
        error, status = str(exc), "failed"
    if interrupted and status == "finished":
        status = "interrupted"
    if writer is not None:
        if status in ("finished", "interrupted") and settled and trainer.iteration > 0:
            writer.checkpoint(trainer.iteration, *training_state(trainer))
        writer.close(status, error)
        if writer.error is not None and error is None:  # recording stopped at the very end
            error, status = recording_error(writer), "failed"
    elapsed = time.perf_counter() - started
    return {
        "iterations": trainer.iteration,
        "planned": total,
        "dtype": cfg.dtype,
        "interrupted": interrupted,
        "signal": stopped_by,
        "error": error,
        "status": status,
        "log": log,
        "seconds": elapsed,
        "batches_per_second": (trainer.iteration - first) / elapsed if elapsed > 0 else math.nan,
        "resumed_from": first or None,
        "final_loss": float(last.column("loss")[-1]) if last is not None else math.nan,
        "groups": summary.result(),
        "layers": layers.result(),
        "evaluations": evaluations,
        "folder": writer.folder if writer is not None else None,
        "records": writer.written if writer is not None else 0,
    }


class RecordingStopped(Exception):
    """The run's recording stopped (a full disk, a folder turned read-only); one line."""


def recording_error(writer: RunWriter) -> str:
    """The one line of a recording that stopped: why, and how many records are kept where."""
    return (f"recording stopped: {writer.error}; the {writer.written:,} records written before it are kept "
            f"in {writer.folder}")


def training_state(trainer: Trainer) -> tuple[dict, dict, dict]:
    """A checkpoint of the trainer between batches, for RunWriter.checkpoint: the weights
    ({"w": (n, m)}); the optimiser's state (its moment buffers "m" and "v" where it has them, the
    step count "steps" as a 1-element int64 tensor) with the rest of the training state a resume
    needs: "data_generator" (the data generator's state, uint8: batch order and wrong labels),
    "batch_order" (this epoch's permutation of the data set, int64) and "batch_position" (images of
    it used, 1-element int64); string metadata (optimiser kind, epoch, iteration). CPU copies, safe
    to hand to another thread. A stack adds its layers above the first: weights "w1", "w2"...,
    their moment buffers "m1", "v1"...; a linear readout (engine/readout.py) its weights "readout_w"
    and its Adam state "readout_steps", "readout_m", "readout_v"."""
    opt, batcher = trainer.optimizer, trainer.batcher
    weights = {"w": trainer.w.detach().to("cpu", copy=True)}
    optimizer = {"steps": torch.tensor([opt.steps], dtype=torch.int64),
                 "data_generator": batcher.generator.get_state().to("cpu", copy=True),
                 "batch_order": batcher._perm.detach().to("cpu", copy=True),
                 "batch_position": torch.tensor([batcher._pos], dtype=torch.int64)}
    for name in ("m", "v"):
        value = getattr(opt, f"_{name}", None)
        if value is not None:
            optimizer[name] = value.detach().to("cpu", copy=True)
    for layer, up in enumerate(trainer.upper, start=1):  # a stack's layers above the first: w1, m1, v1...
        weights[f"w{layer}"] = up.w.detach().to("cpu", copy=True)
        for name in ("m", "v"):
            value = getattr(up.optimizer, f"_{name}", None)
            if value is not None:
                optimizer[f"{name}{layer}"] = value.detach().to("cpu", copy=True)
    if trainer.readout is not None:
        state = trainer.readout.state()
        weights["readout_w"] = state.pop("readout_w")
        optimizer.update(state)
    meta = {"optimizer": opt.kind, "epoch": str(batcher.epoch), "iteration": str(trainer.iteration)}
    return weights, optimizer, meta
