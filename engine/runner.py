"""The training thread: owns the trainer, publishes metrics to a bounded queue that never blocks
training, and applies commands from a second queue between batches."""
from __future__ import annotations

import collections
import functools
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from .chunk import MetricsChunk
from .config import FIXED_FIELDS, RESET_FIELDS, VIEW_FIELDS, Config, ConfigError
from .data import Dataset
from .logs import details, log_exception
from .memory import check_fits
from .trainer import EngineError, OutOfMemory, Overflow, Trainer, is_out_of_memory, memory_error


@dataclass(frozen=True)
class Event:
    """Something the user should read: kind is "info", "warning" or "error"; message is one line.
    An error's ``cause`` says what can help: "overflow" (the weights are no longer finite: only a
    reset goes on), "memory" (a smaller batch size or width), "" (anything else). ``changes``: for
    a parameter change that applies from the next batch (after ``iteration``), {name: (old, new)}
    (the app marks it on its plots). ``evaluation``: the goodness classifier's test error
    (engine/evaluate.py Evaluation) measured after ``iteration`` batches; its message is "" when it
    came at the end of an epoch, not asked for."""

    kind: str
    message: str
    iteration: int = 0
    cause: str = ""
    changes: tuple[tuple[str, Any, Any], ...] = ()
    evaluation: Any = None


def error_cause(exc: BaseException) -> str:
    """Event.cause for the exception that stopped training."""
    if isinstance(exc, Overflow):
        return "overflow"
    if isinstance(exc, OutOfMemory) or is_out_of_memory(exc):
        return "memory"
    return ""


@dataclass(frozen=True)
class Command:
    name: str  # pause, resume, step, set, reset, evaluate, stop
    changes: dict[str, Any] | None = None
    config: Config | None = None  # set: the configuration built (parsed and checked) by set_params


class Runner:
    """Trains in a daemon thread. States: paused, running, finished, error, stopped.

    ``graphs`` and ``compile`` go to the `Trainer` (CUDA graphs, torch.compile); ``checkpoint``, a
    recorded run's (engine.store), puts the layer where it left that run (engine/resume.py restore:
    a resume). ``recorder``, when
    given (`engine.recording.Recording`), is called in this thread, between batches: ``chunk(chunk)``
    with every chunk of records (before the bounded queue, so none is dropped here);
    ``change(iteration, old, new, reset)`` as a change of configuration or a reset applies after
    ``iteration`` batches (the batches before it recorded first); ``event(kind, iteration, **fields)``
    for a pause, a resume, an error; ``checkpoint(trainer)`` before a reset, at the end of the run,
    on a clean stop and whenever ``checkpoint_due()``. Each must return at once."""

    def __init__(self, cfg: Config, dataset: Dataset, *, metrics_size: int = 8192,
                 start_paused: bool = False, with_metrics: bool = True, graphs: bool = True,
                 compile: bool = False, recorder: Any = None, checkpoint: Any = None) -> None:
        self.metrics_size = metrics_size  # records the metrics queue holds at most
        self._metrics: collections.deque[MetricsChunk] = collections.deque()
        self._queued = 0
        self._metrics_lock = threading.Lock()
        self.events: queue.Queue[Event] = queue.Queue()
        self.commands: queue.Queue[Command] = queue.Queue()
        self.dataset = dataset
        self.with_metrics = with_metrics
        self.graphs = graphs
        self.compile = compile
        self.recorder = recorder
        self._resume_from = checkpoint  # a run's checkpoint the layer starts from (engine/resume.py)
        self._evaluated: Any = None     # the newest evaluation (engine/evaluate.py), not measured twice
        self.dropped = 0
        self.published = 0
        self._pending = cfg          # the configuration after every queued change
        self._config = cfg           # the configuration the trainer runs now
        self._state = "paused" if start_paused else "running"
        self._steps_wanted = 0
        self._trainer: Trainer | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._main, name="fftui-engine", daemon=True)

    # -- public, called from any thread --------------------------------------------------------
    @property
    def config(self) -> Config:
        return self._config

    @property
    def state(self) -> str:
        return self._state

    @property
    def iteration(self) -> int:
        return self._trainer.iteration if self._trainer is not None else 0

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> Runner:
        self._thread.start()
        return self

    def pause(self) -> None:
        self.commands.put(Command("pause"))

    def resume(self) -> None:
        self.commands.put(Command("resume"))

    def toggle(self) -> None:
        self.commands.put(Command("toggle"))

    def step(self) -> None:
        """Train exactly one batch, then stay paused."""
        self.commands.put(Command("step"))

    def reset(self) -> None:
        self.commands.put(Command("reset"))

    def evaluate(self) -> None:
        """Measure the test error (cfg.evaluate) between two batches; an Event with the
        evaluation follows. Without test digits, an info Event says so."""
        self.commands.put(Command("evaluate"))

    def set_params(self, **changes: Any) -> Config:
        """Validate now (ConfigError with a one-line message; nothing changes) and queue the change.
        Returns the configuration that will apply from the next batch."""
        for name in changes:
            if name in FIXED_FIELDS:
                raise ConfigError(f"{name} is fixed for this run; restart with --{name.replace('_', '-')}")
        with self._lock:
            new = self._pending.replace(**changes)
            check_fits(new, self.dataset.size, self.dataset.device, held=self._config)
            self._pending = new
            self.commands.put(Command("set", dict(changes), new))
        return new

    @property
    def pending_config(self) -> Config:
        return self._pending

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end after the batch in hand and wait for it."""
        self.commands.put(Command("stop"))
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def queued(self) -> int:
        """Records waiting in the metrics queue."""
        return self._queued

    def drain(self, limit: int | None = None) -> list[MetricsChunk]:
        """The queued chunks, oldest first (at most `limit` records; the rest stay queued)."""
        out: list[MetricsChunk] = []
        taken = 0
        with self._metrics_lock:
            while self._metrics and (limit is None or taken < limit):
                chunk = self._metrics[0]
                if limit is not None and taken + len(chunk) > limit:
                    keep = limit - taken
                    out.append(chunk.slice(0, keep))
                    self._metrics[0] = chunk.slice(keep)
                    taken += keep
                    break
                out.append(self._metrics.popleft())
                taken += len(chunk)
            self._queued -= taken
        return out

    def drain_events(self) -> list[Event]:
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    # -- the thread ----------------------------------------------------------------------------
    def _publish(self, chunk: MetricsChunk) -> None:
        """Queue a chunk; beyond metrics_size records the oldest are dropped (and counted)."""
        if self.recorder is not None:
            self.recorder.chunk(chunk)
        with self._metrics_lock:
            self._metrics.append(chunk)
            self._queued += len(chunk)
            self.published += len(chunk)
            while self._queued > self.metrics_size:
                excess = self._queued - self.metrics_size
                oldest = self._metrics[0]
                if len(oldest) <= excess:
                    self._metrics.popleft()
                    gone = len(oldest)
                else:
                    self._metrics[0] = oldest.slice(excess)
                    gone = excess
                self._queued -= gone
                self.dropped += gone

    def _event(self, kind: str, message: str, cause: str = "") -> None:
        self.events.put(Event(kind, message, self.iteration, cause))
        if kind == "error":
            self._record("event", "error", self.iteration, message=message, cause=cause)

    def _record(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Call the recorder's method, if there is a recorder."""
        if self.recorder is not None:
            getattr(self.recorder, method)(*args, **kwargs)

    def _checkpoint(self) -> None:
        """Checkpoint the run being recorded, between batches (after a flush)."""
        if self.recorder is not None and self._trainer is not None:
            self.recorder.checkpoint(self._trainer)

    def _pause(self) -> None:
        self._state = "paused"
        self._guarded(self._trainer.flush)  # type: ignore[union-attr]
        self._record("event", "pause", self.iteration)

    def _failure(self, what: str, exc: Exception) -> tuple[str, str]:
        """The one-line message (with where the traceback was logged) and the cause of a failure;
        an allocation failure is worded by its sizes, never by torch's text."""
        shown: Exception = exc
        if not isinstance(exc, EngineError) and is_out_of_memory(exc):
            shown = memory_error(exc, self._pending, self.dataset.images.device)
        if isinstance(shown, EngineError):
            line = f"{what}{shown}"
        else:
            line = f"{what}{type(exc).__name__}: {exc}".splitlines()[0]
        return line + details(log_exception(line, exc)), error_cause(shown)

    def _guarded(self, work) -> bool:
        """Run trainer work and publish its chunks; an error pauses the run with a message."""
        assert self._trainer is not None
        try:
            for chunk in work():
                self._publish(chunk)
            return True
        except EngineError as exc:
            message, cause = self._failure("", exc)
        except Exception as exc:  # e.g. a CUDA failure: pause and report, never die
            message, cause = self._failure("engine failure: ", exc)
        for chunk in self._trainer.take_ready():
            self._publish(chunk)
        self._state = "error"
        self._steps_wanted = 0
        self._event("error", message, cause)
        return False

    def _handle(self, cmd: Command) -> bool:
        """Apply one command; False means stop."""
        if cmd.name == "stop":
            return False
        trainer = self._trainer
        assert trainer is not None, "commands are handled only once _main has built the layer"
        if cmd.name == "pause":
            if self._state == "running":
                self._pause()
        elif cmd.name == "resume":
            if self._state in ("paused", "error"):
                self._state = "running"
                self._record("event", "resume", self.iteration)
        elif cmd.name == "toggle":
            if self._state == "running":
                self._pause()
            elif self._state in ("paused", "error"):
                self._state = "running"
                self._record("event", "resume", self.iteration)
        elif cmd.name == "step":
            if self._state != "running":
                self._state = "paused"
                self._steps_wanted += 1
        elif cmd.name == "reset":
            if self.recorder is not None:  # the batches before the reset reach the files too
                self._guarded(trainer.flush)
                self._checkpoint()
            before = trainer.iteration
            self._evaluated = None
            trainer.reset()
            self._record("change", before, trainer.cfg, trainer.cfg, True)
            if self._state in ("finished", "error"):
                self._state = "paused"
            self._event("info", "reset: a fresh layer from the seed, iteration 0")
        elif cmd.name == "evaluate":
            self._evaluate(asked=True)
        elif cmd.name == "set":
            assert cmd.changes is not None and cmd.config is not None
            new = cmd.config  # parsed and checked once, by set_params
            old = trainer.cfg
            if self.recorder is not None:
                self._guarded(trainer.flush)
                if any(getattr(old, f) != getattr(new, f) for f in RESET_FIELDS):
                    self._checkpoint()  # the run ends here: its last state
            before = trainer.iteration
            self._evaluated = None
            was_reset = trainer.apply(new)
            self._record("change", before, old, new, was_reset)
            names = ", ".join(f"{k}={_shown(getattr(new, k))}" for k in cmd.changes)
            if was_reset:
                self._event("info", f"{names}: the {'network' if len(new.layer_widths) > 1 else 'layer'} was reset")
            elif set(cmd.changes) <= VIEW_FIELDS:
                pass  # the app shows it at once; nothing changes in the run
            else:
                changed = tuple((k, getattr(old, k), getattr(new, k)) for k in cmd.changes
                                if k not in VIEW_FIELDS and getattr(old, k) != getattr(new, k))
                self.events.put(Event("info", f"{names}: applies from the next batch", self.iteration,
                                      changes=changed))
            self._config = new  # last, so that whoever sees the new config finds its event queued
            if self._state == "finished" and not trainer.finished:
                self._state = "paused"
        return True

    def _evaluate(self, asked: bool) -> None:
        """The goodness classifier's test error now, after every batch trained so far is delivered
        (so that the event follows the batches before it); recorded as an "evaluation" event of the
        run; published as an Event with the evaluation (with a message when asked)."""
        from . import network

        trainer = self._trainer
        assert trainer is not None
        if trainer.test is None:
            if asked:
                self.events.put(Event("info", "no test digits: start with --evaluate to measure the test error",
                                      self.iteration))
            return
        if not self._guarded(trainer.flush):
            return
        result = self._evaluated
        if result is not None and result.iteration == trainer.iteration and not asked:
            return  # measured already after this batch (the epoch's end is the run's end)
        if result is None or result.iteration != trainer.iteration:
            try:
                result = network.evaluate(trainer)
            except Exception as exc:  # e.g. no memory for the test digits: said, training goes on
                message, _cause = self._failure("evaluation failed: ", exc)
                self.events.put(Event("warning", message, self.iteration))
                return
            if result is None:
                return
            self._evaluated = result
            self._record("event", "evaluation", result.iteration, **result.fields())
        self.events.put(Event("info", result.sentence() if asked else "", result.iteration, evaluation=result))

    def _main(self) -> None:
        try:
            check_fits(self._config, self.dataset.size, self.dataset.device)
            self._trainer = Trainer(self._config, self.dataset, graphs=self.graphs, compile=self.compile)
            if self._resume_from is not None:
                from .resume import restore

                restore(self._trainer, self._resume_from)
        except Exception as exc:  # a device or memory failure while building, a checkpoint that does not fit
            message, cause = self._failure("could not build the layer: ", exc)
            self._state = "error"
            self._event("error", message, cause)
            return
        while True:
            # Commands apply between batches; while not training, wait on the queue.
            training = self._state == "running" or self._steps_wanted > 0
            try:
                cmd = self.commands.get_nowait() if training else self.commands.get(timeout=0.5)
            except queue.Empty:
                cmd = None
            if cmd is not None:
                try:
                    keep_going = self._handle(cmd)
                except Exception as exc:  # e.g. no memory for a wider layer: pause and report
                    message, cause = self._failure(f"{cmd.name} failed: ", exc)
                    self._state = "error"
                    self._steps_wanted = 0
                    self._event("error", message, cause)
                    continue
                if not keep_going:
                    assert self._trainer is not None
                    if self._guarded(self._trainer.flush):  # the batches trained so far are all delivered
                        self._checkpoint()
                    self._state = "stopped"
                    return
                continue
            if not training:
                continue
            trainer = self._trainer
            if trainer.finished:
                self._guarded(trainer.flush)
                if self._state != "error":
                    if trainer.test is not None:
                        self._evaluate(asked=False)  # at the end (measured once where an epoch just ended)
                    self._state = "finished"
                    self._event("info", f"finished: {trainer.iteration} iterations")
                    self._checkpoint()
                self._steps_wanted = 0
                continue
            if not self._guarded(functools.partial(trainer.advance, with_metrics=self.with_metrics)):
                continue
            if trainer.test is not None and trainer.batcher.remaining() == trainer.batcher.size:
                self._evaluate(asked=False)  # an epoch ended
            if self.recorder is not None and self.recorder.checkpoint_due():
                self._checkpoint()
            if self._steps_wanted > 0:
                self._steps_wanted -= 1
                if self._steps_wanted == 0 and self._state != "running":
                    self._guarded(trainer.flush)


def _shown(value: Any) -> str:
    """A parameter's value in an event's line: a tuple (widths) as "64,128,64"."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll predicate until it is true or timeout passes (for headless drivers and tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
