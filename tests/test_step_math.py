"""The captured-step path run on the CPU: the trainer's own code for full batches of plain SGD
(the step function a CUDA graph captures, its static inputs, the chunked shipping of packed
vectors), with the eager stand-in where CUDA replays a graph. It must give the eager step's
records bit for bit, and the step function must trace as one graph for torch.compile."""
import dataclasses

import numpy as np
import pytest
import torch

from engine.config import Config
from engine.graphs import CapturedStep
from engine.metrics import BATCH_METRICS, GROUP_METRICS, SAMPLE_METRICS
from engine.trainer import Trainer

TIMES = ("step_time", "metrics_time")


def captured_on_cpu(trainer: Trainer) -> Trainer:
    """Make the trainer take its captured-step path, as on CUDA."""
    trainer.plan = dataclasses.replace(trainer.plan, captured=True)
    return trainer


def assert_same_record(a, b):
    for m in BATCH_METRICS:
        if m.name not in TIMES:
            assert getattr(a, m.name) == pytest.approx(getattr(b, m.name), rel=0, abs=0, nan_ok=True), m.name
    for name, ga in a.groups.items():
        gb = b.groups[name]
        for m in GROUP_METRICS:
            assert getattr(ga, m.name) == pytest.approx(getattr(gb, m.name), rel=0, abs=0, nan_ok=True), m.name
        for m in SAMPLE_METRICS:
            np.testing.assert_array_equal(getattr(ga, m.name), getattr(gb, m.name), err_msg=m.name)


@pytest.mark.parametrize("mode,loss", [("ff", "linear"), ("ff", "logistic"), ("descent", "linear")])
def test_captured_path_equals_eager_step(small_sample, mode, loss):
    cfg = Config(mode=mode, loss=loss, width=150, batch_size=32, dtype="float64", lr=0.01, theta=1.0)
    eager, captured = Trainer(cfg, small_sample), captured_on_cpu(Trainer(cfg, small_sample))
    for _ in range(18):  # 512 / 32 = 16 batches an epoch: into the second epoch
        assert_same_record(captured.step(), eager.step())
    assert isinstance(captured._captured[True], CapturedStep) and not eager._captured
    assert torch.equal(captured.w, eager.w)


def test_captured_path_ships_in_chunks_and_loses_no_batch(small_sample):
    # 512 digits in batches of 48: ten full batches (captured) and one of 32 (eager) an epoch
    cfg = Config(width=64, batch_size=48, iters=10**6, lr=0.01)
    t = captured_on_cpu(Trainer(cfg, small_sample, chunk=4, ship_interval=3600.0))
    arrivals = [t.advance() for _ in range(25)]
    # every batch waits for a chunk of 4; batch 11 (32 + 32 samples, eager) is a chunk of its own
    assert [[len(c) for c in a] for a in arrivals[:12]] == [[]] * 3 + [[4]] + [[]] * 3 + [[4]] + [[]] * 3 + [[2, 1, 1]]
    assert [c.per for c in arrivals[11]] == [48, 32, 48]
    got = [c for a in arrivals for c in a] + t.flush()
    iterations = np.concatenate([c.column("iteration") for c in got])
    assert iterations.tolist() == list(range(1, 26))


def test_captured_math_traces_as_one_graph(small_sample):
    cfg = Config(mode="ff", width=64, batch_size=16, lr=0.01)
    trainer = Trainer(cfg, small_sample)
    compiled = torch.compile(trainer.step_function(cfg.batch_size), fullgraph=True, dynamic=False, backend="eager")
    idx = torch.arange(cfg.batch_size)
    shift = torch.ones(cfg.batch_size, dtype=torch.long)
    with torch.inference_mode():
        w0 = trainer.w.clone()
        traced = compiled(idx, shift)  # fullgraph=True raises on a graph break
        trainer.w.copy_(w0)
        plain = trainer.step_function(cfg.batch_size)(idx, shift)
    torch.testing.assert_close(traced, plain)
