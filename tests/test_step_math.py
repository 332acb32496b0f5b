"""The tensor work a CUDA graph captures, run on the CPU: the same records as the eager step, and
one traceable graph for torch.compile (no graph break), so the CUDA paths stay checked here."""
import numpy as np
import pytest
import torch

from engine.config import Config
from engine.graphs import step_math
from engine.inputs import label_shift
from engine.metrics import unpack
from engine.trainer import Trainer


def graph_like_step(trainer, math):
    """What GraphStep.run and the trainer do around a replay, without the graph."""
    n = trainer.cfg.batch_size
    with torch.inference_mode():
        idx = trainer.batcher.next_indices(n)
        epoch = trainer.batcher.epoch + 1
        shift = label_shift(n, trainer.batcher.generator, trainer.device) if trainer.cfg.mode == "ff" else \
            torch.ones(n, dtype=torch.long)
        packed = math(idx, shift)
    trainer.iteration += 1
    batch = 2 * n if trainer.cfg.mode == "ff" else n
    return unpack(packed.numpy(), trainer._meta(n, batch, epoch), 0.0, 0.0)


@pytest.mark.parametrize("mode,loss", [("ff", "linear"), ("ff", "logistic"), ("descent", "linear")])
def test_captured_math_equals_eager_step(small_sample, mode, loss):
    cfg = Config(mode=mode, loss=loss, width=150, batch_size=32, dtype="float64", lr=0.01, theta=1.0)
    eager, captured = Trainer(cfg, small_sample), Trainer(cfg, small_sample)
    math = step_math(captured, cfg.batch_size)
    for _ in range(18):  # 512 / 32 = 16 batches an epoch: into the second epoch
        a, b = eager.step(), graph_like_step(captured, math)
        assert (a.iteration, a.epoch) == (b.iteration, b.epoch)
        assert b.loss == pytest.approx(a.loss, rel=1e-12)
        for name, ga in a.groups.items():
            gb = b.groups[name]
            np.testing.assert_array_equal(gb.actual, ga.actual)
            np.testing.assert_array_equal(gb.predicted_general, ga.predicted_general)
            np.testing.assert_allclose(gb.lhs, ga.lhs, rtol=1e-6)
    np.testing.assert_allclose(captured.w.numpy(), eager.w.numpy(), rtol=1e-12, atol=1e-15)


def test_captured_math_traces_as_one_graph(small_sample):
    cfg = Config(mode="ff", width=64, batch_size=16, lr=0.01)
    trainer = Trainer(cfg, small_sample)
    compiled = torch.compile(step_math(trainer, cfg.batch_size), fullgraph=True, dynamic=False, backend="eager")
    idx = torch.arange(cfg.batch_size)
    shift = torch.ones(cfg.batch_size, dtype=torch.long)
    with torch.inference_mode():
        w0 = trainer.w.clone()
        traced = compiled(idx, shift)  # fullgraph=True raises on a graph break
        trainer.w.copy_(w0)
        plain = step_math(trainer, cfg.batch_size)(idx, shift)
    torch.testing.assert_close(traced, plain)
