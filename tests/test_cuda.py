"""The CUDA path: the same metrics as on the CPU, records delivered in chunks without loss.
Skipped where no CUDA device exists."""
import time
import warnings

import numpy as np
import pytest
import torch

from engine.config import Config
from engine.data import Dataset
from engine.runner import Runner, wait_for
from engine.trainer import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(scope="module")
def cuda_sample(small_sample):
    return Dataset(images=small_sample.images.cuda(), labels=small_sample.labels.cuda(),
                   source="sample", description="512 shipped digits on CUDA", note=None)


def test_cuda_matches_cpu_in_float64(small_sample, cuda_sample):
    cfg = Config(width=256, batch_size=32, dtype="float64", lr=0.01)
    cpu = Trainer(cfg, small_sample)
    gpu = Trainer(cfg, cuda_sample, graphs=False)
    # the same seed draws different numbers on the two devices: same weights, same batches
    gpu.w.copy_(cpu.w)
    draw = cpu.next_batch
    for _ in range(4):
        x_cpu, n_pos = draw()
        x_gpu = x_cpu.cuda()
        cpu.next_batch = lambda x=x_cpu, n=n_pos: (x, n)
        gpu.next_batch = lambda x=x_gpu, n=n_pos: (x, n)
        a, b = cpu.step(), gpu.step()
        assert a.loss == pytest.approx(b.loss, rel=1e-9)
        for name in a.groups:
            assert a.groups[name].sparser == pytest.approx(b.groups[name].sparser)
            assert a.groups[name].theorem == pytest.approx(b.groups[name].theorem)
            np.testing.assert_allclose(a.groups[name].lhs, b.groups[name].lhs, rtol=1e-6)


def test_chunked_delivery_keeps_every_record_in_order(cuda_sample):
    t = Trainer(Config(width=256, batch_size=32, iters=10**6), cuda_sample, chunk=16, ship_interval=10.0)
    got = []
    for _ in range(100):
        got += t.advance()
    got += t.flush()
    assert np.concatenate([c.column("iteration") for c in got]).tolist() == list(range(1, 101))
    assert all(np.isfinite(c.column("loss")).all() for c in got)


def test_runner_on_cuda_delivers_fresh_records(cuda_sample):
    r = Runner(Config(width=256, batch_size=32, iters=10**6), cuda_sample).start()
    try:
        assert wait_for(lambda: r.iteration > 50, timeout=60)
        r.drain()
        time.sleep(0.5)
        fresh = r.drain()
        assert len(fresh) >= 5  # at least 10 deliveries (chunks) a second
        r.pause()
        assert wait_for(lambda: r.state == "paused")
        time.sleep(0.2)
        r.drain()
        held = r.iteration
        r.step()
        assert wait_for(lambda: r.iteration == held + 1)
        assert wait_for(lambda: r.queued >= 1)
        assert r.drain()[-1].last_iteration == held + 1
    finally:
        r.stop()


@pytest.mark.parametrize("mode", ["ff", "descent"])
def test_graph_step_equals_eager(cuda_sample, mode):
    cfg = Config(mode=mode, width=256, batch_size=32, iters=10**6, lr=0.01)
    graph = Trainer(cfg, cuda_sample, graphs=True)
    eager = Trainer(cfg, cuda_sample, graphs=False)
    a = [graph.step() for _ in range(20)]   # 512 / 32 = 16 full batches, then a new epoch
    b = [eager.step() for _ in range(20)]
    assert graph._captured and graph.graph_error is None, graph.graph_error
    for ra, rb in zip(a, b, strict=True):
        assert ra.iteration == rb.iteration and ra.epoch == rb.epoch
        assert ra.loss == pytest.approx(rb.loss, rel=1e-4, abs=1e-6)
        for name in ra.groups:
            np.testing.assert_allclose(ra.groups[name].lhs, rb.groups[name].lhs, rtol=1e-3, atol=1e-5)
            # float32 on the same kernels: outcomes may differ only at near-ties
            assert np.mean(ra.groups[name].actual == rb.groups[name].actual) >= 0.95
    graph.apply(cfg.replace(lr=0.02))  # a change recaptures
    assert not graph._captured
    graph.step()
    assert graph._captured


def test_compiled_graph_step_equals_eager(cuda_sample):
    cfg = Config(mode="ff", width=256, batch_size=32, iters=10**6, lr=0.01)
    compiled = Trainer(cfg, cuda_sample, graphs=True, compile=True)
    eager = Trainer(cfg, cuda_sample, graphs=False)
    a = [compiled.step() for _ in range(6)]
    b = [eager.step() for _ in range(6)]
    assert compiled.graph_error is None, compiled.graph_error
    for ra, rb in zip(a, b, strict=True):
        assert ra.loss == pytest.approx(rb.loss, rel=1e-4, abs=1e-6)
        for name in ra.groups:
            np.testing.assert_allclose(ra.groups[name].lhs, rb.groups[name].lhs, rtol=1e-3, atol=1e-4)
            assert abs(ra.groups[name].sparser - rb.groups[name].sparser) <= 0.05


@pytest.mark.parametrize("graphs, extra", [
    (True, {}),                                            # captured steps, an eager partial batch an epoch
    (False, {"loss": "logistic", "optimizer": "adam"}),    # the eager path with another optimiser
])
def test_training_loop_never_waits_for_the_device(cuda_sample, graphs, extra):
    # 512 digits in batches of 48: ten full batches and one of 32 an epoch
    cfg = Config(width=256, batch_size=48, iters=10**6, lr=0.01, **extra)
    t = Trainer(cfg, cuda_sample, graphs=graphs, chunk=16, ship_interval=10.0)
    t.advance()  # the first full batch captures the graph, which waits for the device once
    torch.cuda.synchronize()
    got = []
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(60):  # five epochs, three chunks shipped and collected
                got += t.advance()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    waits = [str(w.message).splitlines()[0] for w in caught if "synchroniz" in str(w.message).lower()]
    assert not waits, waits
    got += t.flush()
    assert got[-1].last_iteration == 61
    assert t.graph_error is None, t.graph_error
    assert bool(t._captured) == graphs
