"""A whole training step and its metrics captured once as a CUDA graph and replayed per batch.

Eligible: CUDA, plain SGD (no momentum, no weight decay), full batches (engine/step.py's plan says
so). The host then does four launches per batch (the indices copied and the wrong-label offsets
drawn into the graph's static inputs, the replay, one copy out) instead of about fifty. Anything
else takes the eager path, which stays the reference."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .inputs import draw_label_shift_

StepFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class CapturedStep:
    """A step function of (image indices, wrong-label offsets) -> packed metrics (or the loss), run
    from static inputs the way a captured graph runs: `run` copies the batch's indices in, draws
    the offsets (ff mode) from `generator`, and returns the output. This base runs the function
    eagerly (the CPU stand-in the tests use); GraphStep captures and replays it."""

    def __init__(self, fn: StepFunction, batch_size: int, *, device: torch.device, mode: str,
                 generator: torch.Generator, with_metrics: bool = True) -> None:
        self.fn = fn
        self.batch_size = batch_size
        self.mode = mode
        self.generator = generator
        self.with_metrics = with_metrics
        self.idx = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.shift = torch.ones(batch_size, dtype=torch.long, device=device)

    def _inputs(self, idx: torch.Tensor) -> None:
        self.idx.copy_(idx)
        if self.mode == "ff":
            draw_label_shift_(self.shift, self.generator)

    def run(self, idx: torch.Tensor) -> torch.Tensor:
        """Train on the images at idx (a full batch); returns the packed metrics (a fresh tensor)."""
        self._inputs(idx)
        return self.fn(self.idx, self.shift)


class GraphStep(CapturedStep):
    """The step captured once as a CUDA graph for one configuration and batch size.

    state: the tensors the step writes (the weights); the warm-up and the capture run the step, so
    they are restored afterwards. compile: capture the torch.compile'd function (fused kernels)."""

    def __init__(self, fn: StepFunction, batch_size: int, *, device: torch.device, mode: str,
                 generator: torch.Generator, state: Sequence[torch.Tensor], with_metrics: bool = True,
                 compile: bool = False) -> None:
        if compile:
            fn = torch.compile(fn, fullgraph=True, dynamic=False)
        super().__init__(fn, batch_size, device=device, mode=mode, generator=generator, with_metrics=with_metrics)
        self.graph = torch.cuda.CUDAGraph()
        saved = [t.clone() for t in state]
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up: compilation, workspaces and kernels chosen before capture
                self.fn(self.idx, self.shift)
        torch.cuda.current_stream(device).wait_stream(side)
        with torch.cuda.graph(self.graph):
            self.out = self.fn(self.idx, self.shift)
        for t, s in zip(state, saved, strict=True):
            t.copy_(s)
        torch.cuda.synchronize(device)

    def run(self, idx: torch.Tensor) -> torch.Tensor:
        """Replay the captured step on the images at idx; returns a copy of its packed metrics."""
        self._inputs(idx)
        self.graph.replay()
        return self.out.clone() if self.with_metrics else self.out
