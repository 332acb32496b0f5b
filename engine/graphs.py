"""A whole training step and its metrics captured once as a CUDA graph and replayed per batch.

Eligible: CUDA, plain SGD (no momentum, no weight decay), full batches. The host then does four
launches per batch (the indices copied and the wrong-label offsets drawn into the graph's static
inputs, the replay, one copy out) instead of about fifty. Anything else takes the eager path, which
stays the reference."""
from __future__ import annotations

import torch

from .inputs import assemble, draw_label_shift_


def step_math(trainer, batch_size: int, with_metrics: bool = True):
    """One full batch as tensor work only, from the image indices and the wrong-label offsets:
    what a CUDA graph captures (and torch.compile traces). Returns the packed metrics, or the loss."""
    mode = trainer.cfg.mode

    def math(idx: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        x = assemble(trainer.batcher.table, trainer.batcher.labels, idx, shift, mode)
        z, h, g, loss, c, dw = trainer.train_math(x, batch_size)
        if not with_metrics:
            return loss.reshape(1)
        return trainer.measure(x, batch_size, z, h, g, loss, c, dw)

    return math


class GraphStep:
    """One captured step for the trainer's current configuration and batch size."""

    def __init__(self, trainer, batch_size: int, with_metrics: bool = True) -> None:
        self.trainer = trainer
        self.batch_size = batch_size
        self.with_metrics = with_metrics
        math = step_math(trainer, batch_size, with_metrics)
        # torch.compile fuses the step's small kernels into a few; compiled once per configuration
        self._fn = torch.compile(math, fullgraph=True, dynamic=False) if trainer.compile else math
        cfg = trainer.cfg
        device = trainer.device
        self.mode = cfg.mode
        self.idx = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.shift = torch.ones(batch_size, dtype=torch.long, device=device)
        self.graph = torch.cuda.CUDAGraph()
        saved = trainer.w.clone()
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up: compilation, workspaces and kernels chosen before capture
                self._body()
        torch.cuda.current_stream(device).wait_stream(side)
        with torch.cuda.graph(self.graph):
            self.out = self._body()
        trainer.w.copy_(saved)
        torch.cuda.synchronize(device)

    def _body(self) -> torch.Tensor:
        return self._fn(self.idx, self.shift)

    def run(self, idx: torch.Tensor) -> torch.Tensor:
        """Train on the images at idx (a full batch); returns the packed metrics (a fresh tensor)."""
        t = self.trainer
        self.idx.copy_(idx)
        if self.mode == "ff":
            draw_label_shift_(self.shift, t.batcher.generator)
        self.graph.replay()
        return self.out.clone() if self.with_metrics else self.out
