"""One FF layer trained batch by batch, with every metric of the report's theory per batch."""
from __future__ import annotations

import math
import time

import torch

from . import theory
from .config import RESET_FIELDS, Config, batches_per_epoch
from .data import Dataset
from .inputs import Batcher, pixel_table
from .graphs import GraphStep
from .layer import Optimizer, forward, gradient, goodness, init_weights, loss_and_weights, theorem_weights
from .metrics import MetricsRecord, PackMeta, unpack, unpack_many

DTYPES = {"float32": torch.float32, "float64": torch.float64}




class EngineError(RuntimeError):
    """Training cannot go on (a non-finite loss, a device failure); the message is one line."""


class Trainer:
    """Owns the weights, the optimiser state and the batch order of one run."""

    def __init__(self, cfg: Config, dataset: Dataset, *, fast: bool = True, chunk: int = 256,
                 ship_interval: float = 0.05, graphs: bool = True, compile: bool = False) -> None:
        """fast=False takes the straightforward path (a second pass through W', dW as a matrix) that
        the tests compare the shortcuts with. On CUDA, packed metrics go to the host every `chunk`
        batches or every `ship_interval` seconds, whichever comes first."""
        self.dataset = dataset
        self.device = dataset.images.device
        self.cfg = cfg
        self.fast = fast
        self.graphs = graphs
        self.compile = compile
        self.graph_error: str | None = None
        self._graphs: dict[bool, GraphStep] = {}
        self.chunk = chunk
        self.ship_interval = ship_interval
        self._pending: list = []
        self._inflight: list = []
        self._ready: list[MetricsRecord] = []
        self._last_ship = time.perf_counter()
        self._build()

    # -- set-up ---------------------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.cfg
        self.dtype = DTYPES[cfg.dtype]
        self.weight_gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.data_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1_000_003)
        table = pixel_table(self.dataset.images, self.dtype, cfg.standardize)
        self.batcher = Batcher(table, self.dataset.labels, self.data_gen)
        self.inputs = table.shape[1]
        self.w = init_weights(cfg.width, self.inputs, cfg.init, self.weight_gen, self.device, self.dtype)
        self.optimizer = self._new_optimizer()
        self.iteration = 0
        self._signs: dict[tuple[str, int, int], torch.Tensor] = {}
        self._pending, self._inflight = [], []
        self._graphs = {}

    def _new_optimizer(self) -> Optimizer:
        c = self.cfg
        return Optimizer(c.optimizer, c.lr, c.momentum, c.weight_decay, c.beta1, c.beta2)

    def reset(self) -> None:
        """A fresh layer and batch order from the seed; iteration back to 0."""
        self._build()

    def apply(self, cfg: Config) -> bool:
        """Take a new configuration from the next batch on. Returns True when it needed a reset."""
        old, self.cfg = self.cfg, cfg
        self._graphs = {}  # lr, loss, mode... are baked into a captured step
        if any(getattr(old, f) != getattr(cfg, f) for f in RESET_FIELDS):
            self._build()
            return True
        if cfg.optimizer != old.optimizer:
            self.optimizer = self._new_optimizer()
        else:
            self.optimizer.configure(cfg.lr, cfg.momentum, cfg.weight_decay, cfg.beta1, cfg.beta2)
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

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # -- one batch ------------------------------------------------------------------------------
    def next_batch(self) -> tuple[torch.Tensor, int]:
        x, _labels, n_pos = self.batcher.batch(self.cfg.mode, self.cfg.batch_size)
        return x, n_pos

    def train_step(self, x: torch.Tensor, n_pos: int):
        """Forward, loss weights, closed-form gradient and the optimiser's weight change, applied."""
        out = self.train_math(x, n_pos)
        self.iteration += 1
        return out

    def train_math(self, x: torch.Tensor, n_pos: int):
        """train_step's tensor work alone (no host bookkeeping), as a CUDA graph captures it."""
        cfg = self.cfg
        z, h = forward(self.w, x)
        g = goodness(h)
        loss, c = loss_and_weights(cfg.mode, cfg.loss, g, n_pos, cfg.theta, self.signs(x.shape[0], n_pos))
        if self.optimizer.is_plain_sgd and not cfg.weight_decay and self.fast:
            # W' = W - lr * 2 (c H)^T X in one fused product; dW is never needed as a matrix
            self.w.addmm_((h * c.unsqueeze(1)).T, x, alpha=-2.0 * cfg.lr)
            dw = None
        else:
            dw = self.optimizer.delta(gradient(h, x, c), self.w)
            self.w.add_(dw)
        return z, h, g, loss, c, dw

    def _meta(self, n_pos: int, batch: int, epoch: int) -> PackMeta:
        groups = ("pos", "neg") if self.cfg.mode == "ff" else ("all",)
        return PackMeta(self.iteration, epoch, self.cfg.mode, self.cfg.loss, groups, n_pos, batch,
                        self.cfg.width, self.optimizer.is_plain_sgd, self.general_scale())

    def advance(self, with_metrics: bool = True) -> list[MetricsRecord]:
        """Train on the next batch. On the CPU returns its record. On CUDA the packed metrics stay on
        the device and travel to the host in chunks; returns the records whose copy has finished."""
        via_graph = self._advance_graph(with_metrics)
        if via_graph is not None:
            return via_graph
        with torch.inference_mode():
            x, n_pos = self.next_batch()
            epoch = self.batcher.epoch + 1
            if self.device.type != "cuda":
                t0 = time.perf_counter()
                z, h, g, loss, c, dw = self.train_step(x, n_pos)
                if not with_metrics:
                    return []
                t1 = time.perf_counter()
                packed = self.measure(x, n_pos, z, h, g, loss, c, dw)
                host = packed.cpu().numpy()
                t2 = time.perf_counter()
                record = unpack(host, self._meta(n_pos, x.shape[0], epoch), t1 - t0, t2 - t1)
                self._check(record)
                return [record]
            z, h, g, loss, c, dw = self.train_step(x, n_pos)
            if not with_metrics:
                return []
            packed = self.measure(x, n_pos, z, h, g, loss, c, dw)
            return self._queue_packed(packed, n_pos, x.shape[0], epoch)

    def _advance_graph(self, with_metrics: bool) -> list[MetricsRecord] | None:
        """The CUDA-graph step when it applies to this batch; None means take the eager path."""
        cfg = self.cfg
        if not (self.graphs and self.device.type == "cuda" and self.fast
                and self.optimizer.is_plain_sgd and not cfg.weight_decay):
            return None
        n = cfg.batch_size
        if self.batcher.remaining() < n:
            return None  # the last, partial batch of an epoch: eager
        with torch.inference_mode():
            graph = self._graphs.get(with_metrics)
            if graph is None or graph.batch_size != n:
                try:
                    graph = self._graphs[with_metrics] = GraphStep(self, n, with_metrics)
                except Exception as exc:  # capture unsupported here: remember it, stay eager
                    self._graphs.clear()
                    self.graphs = False
                    self.graph_error = f"CUDA graphs off: {type(exc).__name__}: {exc}".splitlines()[0]
                    return None
            idx = self.batcher.next_indices(n)
            epoch = self.batcher.epoch + 1
            packed = graph.run(idx)
            self.iteration += 1
            if not with_metrics:
                return []
            return self._queue_packed(packed, n, 2 * n if cfg.mode == "ff" else n, epoch)

    def _queue_packed(self, packed: torch.Tensor, n_pos: int, batch: int, epoch: int) -> list[MetricsRecord]:
        """Keep a batch's packed metrics on the device; ship a chunk when it is due."""
        self._pending.append((self._meta(n_pos, batch, epoch), packed))
        if len(self._pending) >= self.chunk or time.perf_counter() - self._last_ship >= self.ship_interval:
            self._ship()
        return self._collect(block=False)

    def step(self, with_metrics: bool = True) -> MetricsRecord | None:
        """Train on the next batch and return its record (waits for the device)."""
        records = self.advance(with_metrics)
        if self.device.type == "cuda" and with_metrics:
            records += self.flush()
        return records[-1] if records else None

    def flush(self) -> list[MetricsRecord]:
        """Every record still on its way from the device, waiting for it."""
        if self.device.type != "cuda":
            return []
        self._ship()
        return self._collect(block=True)

    def _check(self, record: MetricsRecord) -> None:
        if not math.isfinite(record.loss):
            raise EngineError(f"the loss became {record.loss} at iteration {record.iteration}; "
                              "lower the learning rate and reset")

    def _ship(self) -> None:
        """Start one asynchronous copy of every pending packed record into pinned host memory."""
        now = time.perf_counter()
        if not self._pending:
            self._last_ship = now
            return
        metas = [m for m, _ in self._pending]
        flat = torch.cat([p for _, p in self._pending])
        host = torch.empty(flat.shape, dtype=flat.dtype, pin_memory=True)
        host.copy_(flat, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        per_batch = (now - self._last_ship) / len(metas)
        self._inflight.append((done, host, metas, per_batch))
        self._pending = []
        self._last_ship = now

    def _collect(self, block: bool) -> list[MetricsRecord]:
        out: list[MetricsRecord] = []
        while self._inflight:
            done, host, metas, per_batch = self._inflight[0]
            if block:
                done.synchronize()
            elif not done.query():
                break
            self._inflight.pop(0)
            for record in unpack_many(host.numpy(), metas, per_batch, 0.0):
                try:
                    self._check(record)
                except EngineError:
                    self._inflight.clear()
                    self._ready = out
                    raise
                out.append(record)
        return out

    def take_ready(self) -> list[MetricsRecord]:
        """Records that arrived together with an error, before the batch that failed."""
        ready, self._ready = self._ready, []
        return ready

    def signs(self, batch: int, n_pos: int) -> torch.Tensor:
        """The theorem's c_k (+-1) for a batch layout, made once: never written to."""
        key = (self.cfg.mode, batch, n_pos)
        c = self._signs.get(key)
        if c is None:
            c = self._signs[key] = theorem_weights(self.cfg.mode, batch, n_pos, self.w)
        return c

    def general_scale(self) -> float | None:
        """The factor s with dZ = s E when the applied change is the theorem's direction (plain SGD,
        linear loss, no weight decay, fast path); None when the generalised predictor needs dZ itself."""
        cfg = self.cfg
        if self.fast and cfg.loss == "linear" and self.optimizer.is_plain_sgd and not cfg.weight_decay:
            return -2.0 * cfg.lr
        return None

    def measure(self, x, n_pos, z, h, g, loss, c, dw) -> torch.Tensor:
        """What the metrics need from the B x n activations, as one packed vector on the device
        (see PackMeta): the loss, then per sample |h|^2, |h|_1, |h'|^2, |h'|_1, P, |h|_2 Q (and the
        generalised first-order changes when they are not a multiple of P and Q), the numbers of
        units active before, after and in both, and m_i . sum_k m_k."""
        cfg = self.cfg
        batch = x.shape[0]
        kernel = theory.input_kernel(x)
        drive = theory.kernel_drive(kernel, c, h)
        # Post-step pre-activations: for plain SGD from the batch kernel (SPEC.md's Z' shortcut),
        # cheaper than a pass through W' while the batch is smaller than the input.
        dz = None
        if self.fast and (dw is None or (self.optimizer.is_plain_sgd and batch < self.inputs)):
            if cfg.weight_decay:
                dz = drive.mul(-2.0 * cfg.lr).add_(z, alpha=-cfg.lr * cfg.weight_decay)
                h_new = torch.add(z, dz).relu_()
            else:
                h_new = torch.add(z, drive, alpha=-2.0 * cfg.lr).relu_()
        elif dw is None:
            raise AssertionError("the fused update needs the fast path")
        else:
            dz = x @ dw.T
            h_new = torch.add(z, dz).relu_()
        mask = theory.active_mask(h)

        if cfg.loss == "linear":
            drive_theorem = drive
        else:
            drive_theorem = theory.kernel_drive(kernel, self.signs(batch, n_pos), h)
        p, q_scaled = theory.kernel_sums(drive_theorem, h, mask)
        rows = [g, h.sum(dim=1), goodness(h_new), h_new.sum(dim=1), p, q_scaled]
        if self.general_scale() is None:
            if dz is None:  # plain SGD, other loss weights than the theorem's: dz = -2 lr E
                dz = drive.mul(-2.0 * cfg.lr)
            rows += theory.first_order_changes(dz, h, mask)
        mask_new = theory.active_mask(h_new)
        # Active units before, after and in both (the sign flips), and m_i . sum_k m_k, which equals
        # the first count exactly when a sample shares no unit with another: they find the samples
        # whose outcome is a tie in exact arithmetic (one active unit, or no shared unit), which
        # float sums would otherwise decide by rounding
        rows += [mask.sum(dim=1), mask_new.sum(dim=1), torch.linalg.vecdot(mask, mask_new),
                 torch.mv(mask, mask.sum(dim=0))]
        return torch.cat([loss.reshape(1), *rows])
