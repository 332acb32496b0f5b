"""Packed metric vectors on their way from the device to the host, in chunks.

Each batch's packed vector stays where it was made until a chunk is due (`chunk` batches, or
`interval` seconds since the last shipment); then the pending vectors go to pinned host memory in
one non-blocking copy, marked by an event. A later call collects every copy that has landed and
derives it into MetricsChunks, so the training loop never waits for the device. On the CPU the
vectors are already on the host: a shipment lands at once, and deriving a chunk costs a fraction of
deriving its batches one by one."""
from __future__ import annotations

import time
from typing import NamedTuple

import torch

from .chunk import MetricsChunk
from .derive import derive_runs
from .layout import PackMeta


class _Pending(NamedTuple):
    meta: PackMeta
    iteration: int
    epoch: int
    packed: torch.Tensor
    times: tuple[float, float] | None  # measured step and metrics seconds (CPU), or None


class _Shipment(NamedTuple):
    done: torch.cuda.Event | None  # None: already on the host
    host: torch.Tensor
    metas: list[PackMeta]
    iterations: list[int]
    epochs: list[int]
    step_times: list[float]
    metrics_times: list[float]


class Shipper:
    """Collects packed vectors (one per batch) and delivers them to the host as MetricsChunks."""

    def __init__(self, device: torch.device, chunk: int = 256, interval: float = 0.05) -> None:
        self.device = device
        self.chunk = chunk
        self.interval = interval
        self._pending: list[_Pending] = []
        self._inflight: list[_Shipment] = []
        self._last = time.perf_counter()

    def clear(self) -> None:
        """Forget every vector not delivered yet (a reset, or an error)."""
        self._pending, self._inflight = [], []

    def add(self, meta: PackMeta, iteration: int, epoch: int, packed: torch.Tensor,
            times: tuple[float, float] | None = None) -> list[MetricsChunk]:
        """Keep a batch's vector; ship the pending ones when due. Returns what has landed meanwhile.
        times: the batch's step and metrics seconds where they were measured (the CPU); without them
        a batch's step time is the time between shipments over the batches shipped, metrics time 0."""
        self._pending.append(_Pending(meta, iteration, epoch, packed, times))
        if len(self._pending) >= self.chunk or time.perf_counter() - self._last >= self.interval:
            self._ship()
        return self.collect(block=False)

    def flush(self) -> list[MetricsChunk]:
        """Ship what is pending and deliver everything, waiting for the device."""
        self._ship()
        return self.collect(block=True)

    def _ship(self) -> None:
        """Start one copy of every pending vector into (pinned) host memory."""
        now = time.perf_counter()
        pending, self._pending = self._pending, []
        if pending:
            flat = torch.cat([p.packed for p in pending])
            done = None
            if flat.device.type == "cuda":
                host = torch.empty(flat.shape, dtype=flat.dtype, pin_memory=True)
                host.copy_(flat, non_blocking=True)
                done = torch.cuda.Event()
                done.record()
            else:
                host = flat
            average = (now - self._last) / len(pending)
            self._inflight.append(_Shipment(
                done, host, [p.meta for p in pending], [p.iteration for p in pending], [p.epoch for p in pending],
                [p.times[0] if p.times else average for p in pending],
                [p.times[1] if p.times else 0.0 for p in pending]))
        self._last = now

    def collect(self, block: bool) -> list[MetricsChunk]:
        """The chunks of every shipment that has landed, in order; block waits for all of them."""
        out: list[MetricsChunk] = []
        while self._inflight:
            shipment = self._inflight[0]
            if shipment.done is not None:
                if block:
                    shipment.done.synchronize()
                elif not shipment.done.query():
                    break
            self._inflight.pop(0)
            out += derive_runs(shipment.host.numpy(), shipment.metas, shipment.iterations, shipment.epochs,
                               shipment.step_times, shipment.metrics_times)
        return out
