"""One FF layer trained batch by batch, with every metric of the report's theory per batch."""
from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from . import network
from .chunk import MetricsChunk
from .config import FIELD_NAMES, RESET_FIELDS, VIEW_FIELDS, Config, batches_per_epoch
from .data import Dataset
from .evaluate import TestSet, split_for_evaluation
from .graphs import CapturedStep, GraphStep, StepFunction
from .inputs import Batcher, assemble, pixel_table
from .layer import Optimizer, init_weights, theorem_weights
from .layout import PackMeta
from .metrics import MetricsRecord
from .shipping import Shipper
from .stack import StackMeta, UpperLayer, layer_config, new_optimizer
from .step import StepPlan, StepTensors, measure, plan_step, train_math

DTYPES = {"float32": torch.float32, "float64": torch.float64}


class EngineError(RuntimeError):
    """Training cannot go on (a non-finite loss, a device failure); the message is one line."""


class Overflow(EngineError):
    """The loss stopped being finite: the step that made it has already changed the weights, so
    training can only go on from a fresh layer (a reset), not by resuming."""


class OutOfMemory(EngineError):
    """The device had no room for the layer or a batch: a smaller batch size or width can go on."""


def overflow_error(loss: float, iteration: int) -> Overflow:
    """The one-line error for a loss that is no longer finite at `iteration`; what can help is the
    front end's to say (the app: reset; a headless run: run again with a lower rate)."""
    return Overflow(f"the loss became {loss} at iteration {iteration}")


# The size in torch's allocation failures: CUDA's "Tried to allocate 39.60 GiB", the CPU
# allocator's "you tried to allocate 39600000000 bytes".
_CUDA_SIZE = re.compile(r"[Tt]ried to allocate ([0-9.]+) ([KMGT]i?B|bytes)")
_CPU_SIZE = re.compile(r"allocate (\d+) bytes")
# How torch's allocators word a failure that has no type of its own (the CPU's RuntimeError).
_OOM_WORDS = ("out of memory", "not enough memory", "can't allocate memory", "Cannot allocate memory")
_UNITS = {"bytes": 1, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
          "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def allocation_size(exc: BaseException) -> int | None:
    """The bytes an allocation failure asked for, as torch's message states them; None if it does not."""
    text = str(exc)
    match = _CUDA_SIZE.search(text)
    if match:
        return int(float(match.group(1)) * _UNITS.get(match.group(2), 1))
    match = _CPU_SIZE.search(text)
    return int(match.group(1)) if match else None


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether exc is an allocation failure: torch's OutOfMemoryError (CUDA), MemoryError, or the
    RuntimeError of torch's CPU allocator, which has no type of its own ("can't allocate memory")."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(words in text for words in _OOM_WORDS)


def memory_error(exc: BaseException, cfg: Config, device: torch.device) -> OutOfMemory:
    """The one-line error for an allocation failure while training ``cfg`` on ``device``: the size
    asked for (when torch says it) and the configuration's, never torch's own text."""
    size = allocation_size(exc)
    asked = f" allocating {format_bytes(size)}" if size else ""
    return OutOfMemory(f"out of memory on {device}{asked} at batch size {cfg.batch_size:,}, width "
                       f"{cfg.width:,} ({cfg.dtype}); lower the batch size or the width")


def format_bytes(size: float) -> str:
    """A byte count in the largest binary unit that keeps it at least 1 (``39.6 GiB``)."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if size >= _UNITS[unit]:
            return f"{size / _UNITS[unit]:.3g} {unit}"
    return f"{int(size)} bytes"


class Trainer:
    """Owns the weights, the optimiser state and the batch order of one run.

    One layer (cfg.widths None): `w`, `optimizer` and `plan`; its full batches may be one captured
    CUDA graph. A stack (cfg.widths of two or more): the first layer as above and `upper`, the
    layers above it (engine/stack.py), every batch eager (the CUDA graph captures one layer only),
    its chunks StackChunks with every layer. Negatives other than wrong-label are made eagerly too
    (engine/negatives.py). With cfg.evaluate, `test` holds the digits held out of training and
    engine/network.py `evaluate` scores them; with cfg.readout "linear", `readout` (engine/readout.py)
    takes a step on every batch's positives before the layers step, else it is None."""

    def __init__(self, cfg: Config, dataset: Dataset, *, fast: bool = True, chunk: int = 256,
                 ship_interval: float = 0.05, graphs: bool = True, compile: bool = False) -> None:
        """fast=False takes the straightforward path (a second pass through W', dW as a matrix) that
        the tests compare the shortcuts with. Packed metrics are derived on the host every `chunk`
        batches or every `ship_interval` seconds, whichever comes first."""
        self.test: TestSet | None = None
        if cfg.evaluate:  # the digits it is tested on are never trained on
            dataset, self.test = split_for_evaluation(dataset, cfg)
        self.dataset = dataset
        self.device = dataset.images.device
        self.cfg = cfg
        self.fast = fast
        self.graphs = graphs
        self.compile = compile
        self.graph_error: str | None = None
        self._measured = True  # train_math keeps what the metrics need (off for steps without them)
        self.shipper = Shipper(self.device, chunk, ship_interval)
        self._ready: list[MetricsChunk] = []
        with self._memory_errors():
            self._build()

    @contextlib.contextmanager
    def _memory_errors(self) -> Iterator[None]:
        """An allocation failure inside becomes `OutOfMemory`, one line naming the sizes."""
        try:
            yield
        except EngineError:
            raise
        except Exception as exc:
            if is_out_of_memory(exc):
                raise memory_error(exc, self.cfg, self.device) from exc
            raise

    # -- set-up ---------------------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.cfg
        self.dtype = DTYPES[cfg.dtype]
        self.weight_gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.data_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1_000_003)
        table = pixel_table(self.dataset.images, self.dtype, cfg.normalize)
        self.batcher = Batcher(table, self.dataset.labels, self.data_gen, cfg.label_value)
        self.inputs = table.shape[1]
        self.w = init_weights(cfg.width, self.inputs, cfg.init, self.weight_gen, self.device, self.dtype)
        self.optimizer = self._new_optimizer()
        self.upper: list[UpperLayer] = network.build_upper(self)  # layers above the first (a stack)
        self.readout = network.build_readout(self)  # the linear readout (cfg.readout), or None
        self.test_table = network.test_table(self)
        self.iteration = 0
        self._signs: dict[tuple[str, int, int], torch.Tensor] = {}
        self.shipper.clear()
        self._replan()

    def _new_optimizer(self) -> Optimizer:
        return new_optimizer(self.cfg, 0)

    def _replan(self) -> None:
        """The step plan for the configuration as it is now; captured steps are made anew (lr, loss,
        mode... are baked into them)."""
        # one layer with the report's negatives may be captured; a stack, or other negatives, run eagerly
        graphs = self.graphs and len(self.cfg.layer_widths) == 1 and self.cfg.negatives == "wrong-label"
        self.plan: StepPlan = plan_step(layer_config(self.cfg, 0), self.optimizer, inputs=self.inputs, fast=self.fast,
                                        graphs=graphs, device_type=self.device.type)
        self._captured: dict[bool, CapturedStep] = {}
        self._metas: dict[int, PackMeta] = {}
        self._stack_metas: dict[int, StackMeta] = {}
        network.replan_upper(self)

    def reset(self) -> None:
        """A fresh layer and batch order from the seed; iteration back to 0."""
        with self._memory_errors():
            self._build()

    def apply(self, cfg: Config) -> bool:
        """Take a new configuration from the next batch on. Returns True when it needed a reset."""
        old, self.cfg = self.cfg, cfg
        if all(getattr(old, f) == getattr(cfg, f) for f in FIELD_NAMES if f not in VIEW_FIELDS):
            return False  # only how the app shows the run changed
        if any(getattr(old, f) != getattr(cfg, f) for f in RESET_FIELDS):
            with self._memory_errors():
                self._build()
            return True
        if cfg.optimizer != old.optimizer:
            self.optimizer = self._new_optimizer()
        else:
            self.optimizer.configure(cfg.layer_rates[0], cfg.momentum, cfg.weight_decay, cfg.beta1, cfg.beta2)
        network.configure_upper(self, cfg.optimizer != old.optimizer)
        network.configure_readout(self, old)
        self._replan()
        return False

    @property
    def batches_per_epoch(self) -> int:
        return batches_per_epoch(self.batcher.size, self.cfg.batch_size)

    @property
    def total_iters(self) -> int | None:
        return self.cfg.total_iters(self.batcher.size)

    @property
    def finished(self) -> bool:
        total = self.total_iters
        return total is not None and self.iteration >= total

    def pack_meta(self, batch: int) -> PackMeta:
        """What the host needs to derive this configuration's batches of `batch` samples."""
        meta = self._metas.get(batch)
        if meta is None:
            plan = self.plan
            meta = self._metas[batch] = PackMeta(plan.mode, plan.loss, batch, self.cfg.width,
                                                 plan.gradient_step, plan.theorem_scale)
        return meta

    # -- one batch ------------------------------------------------------------------------------
    def next_batch(self) -> tuple[torch.Tensor, int]:
        if self.cfg.mode == "ff" and self.cfg.negatives != "wrong-label":
            return network.next_batch(self)
        x, _labels, n_pos = self.batcher.batch(self.cfg.mode, self.cfg.batch_size)
        return x, n_pos

    def train_step(self, x: torch.Tensor, n_pos: int) -> StepTensors:
        """Forward, loss weights, closed-form gradient and the optimiser's weight change, applied."""
        out = self.train_math(x, n_pos)
        self.iteration += 1
        return out

    def train_math(self, x: torch.Tensor, n_pos: int) -> StepTensors:
        """train_step's tensor work alone (no host bookkeeping), as a CUDA graph captures it."""
        return train_math(self.plan, self.w, self.optimizer, x, n_pos, self.signs(x.shape[0], n_pos),
                          measured=self._measured)

    def measure(self, x: torch.Tensor, n_pos: int, step: StepTensors) -> dict[str, torch.Tensor]:
        """The packed quantities of the batch's metrics, by name (engine/step.py's measure)."""
        return measure(self.plan, x, step, self.signs(x.shape[0], n_pos))

    def packed(self, x: torch.Tensor, n_pos: int, step: StepTensors) -> torch.Tensor:
        """The batch's packed vector, laid out as its PackMeta says."""
        return self.pack_meta(x.shape[0]).layout.pack(self.measure(x, n_pos, step))

    def step_function(self, batch_size: int, with_metrics: bool = True) -> StepFunction:
        """One full batch as tensor work only, from the image indices and the wrong-label offsets:
        what a CUDA graph captures (and torch.compile traces). Returns the packed metrics, or the loss."""
        batcher, mode = self.batcher, self.cfg.mode
        layout = self.pack_meta(2 * batch_size if mode == "ff" else batch_size).layout

        def math(idx: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
            x = assemble(batcher.table, batcher.labels, idx, shift, mode, batcher.label_value)
            self._measured = with_metrics
            step = self.train_math(x, batch_size)
            if not with_metrics:
                return step.loss.reshape(1)
            return layout.pack(self.measure(x, batch_size, step))

        return math

    def advance(self, with_metrics: bool = True) -> list[MetricsChunk]:
        """Train on the next batch. Its packed metrics wait (on the device, on CUDA) and travel to
        the host in chunks (every `chunk` batches or `ship_interval` seconds); returns the chunks
        that arrived. `step` and `flush` deliver everything. Raises Overflow at a loss that is not
        finite, OutOfMemory when the device has no room for the batch."""
        with self._memory_errors():
            return self._advance(with_metrics)

    def _advance(self, with_metrics: bool) -> list[MetricsChunk]:
        captured = self._advance_captured(with_metrics)
        if captured is not None:
            return captured
        if self.upper:
            return network.advance(self, with_metrics)
        with torch.inference_mode():
            x, n_pos = self.next_batch()
            network.train_readout(self, n_pos)
            epoch = self.batcher.epoch + 1
            t0 = time.perf_counter()
            self._measured = with_metrics
            step = self.train_step(x, n_pos)
            if self.device.type != "cuda":
                self._stop_at_overflow(float(step.loss))
            if not with_metrics:
                return []
            t1 = time.perf_counter()
            packed = self.packed(x, n_pos, step)
            if self.device.type == "cuda":
                return self._ship(packed, x.shape[0], epoch)
            return self._ship(packed, x.shape[0], epoch, (t1 - t0, time.perf_counter() - t1))

    def _advance_captured(self, with_metrics: bool) -> list[MetricsChunk] | None:
        """The captured step when the plan has one and this batch is full; None: take the eager path."""
        n = self.cfg.batch_size
        if not self.plan.captured or self.batcher.remaining() < n:
            return None  # the last, partial batch of an epoch is eager
        with torch.inference_mode():
            captured = self._captured.get(with_metrics)
            if captured is None or captured.batch_size != n:
                try:
                    captured = self._captured[with_metrics] = self._capture(n, with_metrics)
                except Exception as exc:  # capture unsupported here: remember it, stay eager
                    self.graphs = False
                    self._replan()
                    self.graph_error = f"CUDA graphs off: {type(exc).__name__}: {exc}".splitlines()[0]
                    return None
            idx = self.batcher.next_indices(n)
            network.train_readout(self, n)
            epoch = self.batcher.epoch + 1
            packed = captured.run(idx)
            self.iteration += 1
            if not with_metrics:
                return []
            return self._ship(packed, 2 * n if self.cfg.mode == "ff" else n, epoch)

    def _capture(self, n: int, with_metrics: bool) -> CapturedStep:
        """A GraphStep on CUDA; elsewhere the eager stand-in with the same inputs."""
        fn = self.step_function(n, with_metrics)
        mode, generator = self.cfg.mode, self.batcher.generator
        if self.device.type == "cuda":
            return GraphStep(fn, n, device=self.device, mode=mode, generator=generator, state=(self.w,),
                             with_metrics=with_metrics, compile=self.compile)
        return CapturedStep(fn, n, device=self.device, mode=mode, generator=generator, with_metrics=with_metrics)

    def _ship(self, packed: torch.Tensor, batch: int, epoch: int,
              times: tuple[float, float] | None = None) -> list[MetricsChunk]:
        # a stack's StackMeta stands in for a PackMeta: it derives its own layers (engine/stack.py)
        meta: Any = network.stack_meta(self, batch) if self.upper else self.pack_meta(batch)
        return self._checked(self.shipper.add(meta, self.iteration, epoch, packed, times))

    def step(self, with_metrics: bool = True) -> MetricsRecord | None:
        """Train on the next batch and return its record (waits for the device)."""
        chunks = self.advance(with_metrics)
        if with_metrics:
            chunks += self.flush()
        return chunks[-1].record(-1) if chunks else None

    def flush(self) -> list[MetricsChunk]:
        """Every chunk still on its way from the device, waiting for it."""
        return self._checked(self.shipper.flush())

    def _checked(self, chunks: list[MetricsChunk]) -> list[MetricsChunk]:
        """The chunks, or EngineError at the first batch whose loss is not finite; the batches before
        it are kept for take_ready, the ones after it dropped."""
        for i, chunk in enumerate(chunks):
            loss = network.loss_column(chunk)
            bad = np.flatnonzero(~np.isfinite(loss))
            if bad.size:
                k = int(bad[0])
                self._ready = chunks[:i] + ([chunk.slice(0, k)] if k else [])
                self.shipper.clear()
                raise overflow_error(float(loss[k]), int(chunk.column("iteration")[k]))
        return chunks

    def _stop_at_overflow(self, loss: float) -> None:
        """Where the loss is on the host at once (the CPU), stop at the batch that overflowed, as
        the run stood then: the batches before it are delivered (take_ready), not the ones after."""
        if not math.isfinite(loss):
            self._ready = self._checked(self.shipper.flush())
            raise overflow_error(loss, self.iteration)

    def take_ready(self) -> list[MetricsChunk]:
        """Chunks that arrived together with an error, before the batch that failed."""
        ready, self._ready = self._ready, []
        return ready

    def signs(self, batch: int, n_pos: int) -> torch.Tensor:
        """The theorem's c_k (+-1) for a batch layout, made once: never written to."""
        key = (self.cfg.mode, batch, n_pos)
        c = self._signs.get(key)
        if c is None:
            c = self._signs[key] = theorem_weights(self.cfg.mode, batch, n_pos, self.w)
        return c
