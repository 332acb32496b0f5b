"""Engine throughput, in one run on one device:
(a) a plain FF step without metrics, (b) the step with every metric, (c) (b) with a consumer that
drains the metrics queue 10 times a second into the app's bounded history (the TUI minus drawing),
(d) the literal per-sample evaluation of the report's sums (CPU, a subset of samples, extrapolated),
and with --scaling a table over n in {500, 2000, 8000} and N in {32, 128, 512}.

    python bench/bench_engine.py [--device cpu|cuda] [--scaling] [--seconds 3]
    python bench/bench_engine.py --widths 1000,1000,1000 --loss logistic --theta 1   # a stack

With --widths the trainer is a stack (every layer steps on every batch; (b) adds every layer's
metrics and the end-to-end outcomes) and (c), (d) and --scaling are skipped: the stack target is
(b)/(a) time at most 1.6 on the CPU.

(a) and (b) alternate in blocks so that both see the same machine load, and so do (b) and (c); figures
are medians of blocks."""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine import reference  # noqa: E402
from engine.config import Config  # noqa: E402
from engine.data import load_dataset, resolve_device  # noqa: E402
from engine.layer import forward  # noqa: E402
from engine.process import keep_freed_blocks_in_heap  # noqa: E402
from engine.runner import Runner, wait_for  # noqa: E402
from engine.trainer import Trainer  # noqa: E402


def rate(trainer: Trainer, with_metrics: bool, seconds: float) -> float:
    """Batches per second over about `seconds`, counting only batches whose metrics reached the host.
    Starts from the initial weights (copied into place, so a captured step stays valid): the report's
    linear loss is unbounded, and a layer trained for tens of thousands of batches at lr 1e-3 overflows."""
    trainer.flush()
    weights = [trainer.w, *(layer.w for layer in trainer.upper)]  # every layer of a stack
    if not hasattr(trainer, "bench_initial_w"):
        trainer.bench_initial_w = [w.clone() for w in weights]
    start = trainer.bench_initial_w

    def restart() -> None:
        for w, w0 in zip(weights, start, strict=True):
            w.copy_(w0)

    restart()
    for _ in range(8):  # a first capture (and compilation) stays out of the time
        trainer.advance(with_metrics)
    trainer.flush()
    restart()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    done = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(16):
            trainer.advance(with_metrics)
        done += 16
    trainer.flush()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return done / (time.perf_counter() - t0)


def alternate(trainer: Trainer, seconds: float, blocks: int) -> tuple[float, float]:
    plain, full = [], []
    for _ in range(blocks):
        plain.append(rate(trainer, False, seconds / blocks))
        full.append(rate(trainer, True, seconds / blocks))
    return statistics.median(plain), statistics.median(full)


def with_consumer(trainer: Trainer, cfg: Config, ds, seconds: float, blocks: int, graphs: bool,
                  compile: bool = False) -> tuple[float, float, int, int]:
    """(b) in this thread against (c), a Runner thread with a consumer draining it 10 times a second
    into fftui's History, in alternating blocks (the rate of one set-up drifts by 10-20 % within a
    minute here, so only pairs compare well). Returns the medians of (b) and (c), and the records
    received and dropped."""
    try:
        from fftui.history import History
    except ImportError:  # the UI packages are not installed: the records are counted only
        History = None
    hist = History() if History else None
    runner = Runner(cfg, ds, with_metrics=True, graphs=graphs, compile=compile, start_paused=True).start()
    stop = threading.Event()
    received = [0]

    def consume() -> None:
        while not stop.is_set():
            chunks = runner.drain()
            received[0] += sum(len(c) for c in chunks)
            if hist is not None:
                hist.add(chunks)
            time.sleep(0.1)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    runner.resume()
    wait_for(lambda: runner.iteration >= 50, timeout=60)  # warm-up, out of the time
    runner.pause()
    wait_for(lambda: runner.state == "paused")
    alone, consumed = [], []
    for _ in range(blocks):
        alone.append(rate(trainer, True, seconds / blocks))
        runner.resume()
        wait_for(lambda: runner.state == "running")
        i0, t0 = runner.iteration, time.perf_counter()
        time.sleep(seconds / blocks)
        i1, t1 = runner.iteration, time.perf_counter()
        runner.pause()
        wait_for(lambda: runner.state == "paused")
        consumed.append((i1 - i0) / (t1 - t0))
    stop.set()
    consumer.join()
    runner.stop()
    return statistics.median(alone), statistics.median(consumed), received[0], runner.dropped


def literal_batch_seconds(trainer: Trainer, subset: int) -> tuple[float, int]:
    """Seconds the literal implementation needs for one whole batch, from `subset` samples of it."""
    x, n_pos = trainer.next_batch()
    with torch.inference_mode():
        x = x.cpu()
        w = trainer.w.cpu()
        _, h = forward(w, x)
        batch = x.shape[0]
        rows = list(range(0, batch, max(1, batch // subset)))[:subset]
        t0 = time.perf_counter()
        xs, hs = x.double(), h.double()
        for i in rows:
            # one sample i against every partner k: the sums of eq. 7-8, then its own outcome
            m_i = (hs[i] > 0).double()
            for k in range(batch):
                hkm = hs[k] * m_i
                cx = reference._cos(xs[k], xs[i])
                _ = float(hkm.sum()) * cx
                _ = float(hkm.norm()) * reference._cos(hs[i], hkm) * cx
            reference.literal_outcome(w, w, x[i:i + 1])
        per_sample = (time.perf_counter() - t0) / len(rows)
    return per_sample * batch, len(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--width", type=int, default=2000)
    p.add_argument("--mode", default="ff", choices=["ff", "descent"])
    p.add_argument("--widths", default=None, help="a stack, e.g. 1000,1000,1000")
    p.add_argument("--loss", default="linear", choices=["linear", "logistic"])
    p.add_argument("--theta", type=float, default=2.0)
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--seconds", type=float, default=6.0, help="time for each of (a) and (b)")
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--subset", type=int, default=4, help="samples the literal implementation is timed on")
    p.add_argument("--scaling", action="store_true", help="also the table over n and N")
    p.add_argument("--no-graphs", action="store_true", help="CUDA: eager only")
    p.add_argument("--compile", action="store_true", help="CUDA: torch.compile the captured step")
    args = p.parse_args()
    keep_freed_blocks_in_heap()  # as the fftui command does on the CPU

    device = resolve_device(args.device)
    ds = load_dataset("sample", device=device)
    graphs = not args.no_graphs
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; data: {ds.description}")
    cfg = Config(mode=args.mode, batch_size=args.batch_size, width=args.width, iters=10**9, device=args.device,
                 loss=args.loss, theta=args.theta, optimizer=args.optimizer)
    if args.widths:
        cfg = cfg.replace(widths=args.widths)
    trainer = Trainer(cfg, ds, graphs=graphs, compile=args.compile)
    rate(trainer, True, 0.5)
    rate(trainer, False, 0.5)
    a, b = alternate(trainer, 2 * args.seconds, args.blocks)
    if args.widths:
        print(f"a stack of {cfg.layer_widths} units, {args.mode} mode, {args.loss} loss, {args.optimizer}, "
              f"N = {args.batch_size}, float32, {device.type}")
        print(f"(a) plain step        {a:10.1f} batches/s  {1e3 / a:8.3f} ms/batch")
        print(f"(b) step + every metric{b:10.1f} batches/s  {1e3 / b:8.3f} ms/batch")
        print(f"(b)/(a) time = {a / b:.2f}   (target: at most 1.6 on the CPU)")
        return
    b_paired, c, received, dropped = with_consumer(trainer, cfg, ds, 2 * args.seconds, args.blocks, graphs,
                                                   args.compile)
    print(f"{args.mode} mode, linear loss, plain SGD, N = {args.batch_size}"
          f"{' per side' if args.mode == 'ff' else ''}, n = {args.width}, float32"
          + (f", CUDA graphs {'on' if trainer.graphs else 'off'}" if device.type == "cuda" else "")
          + (", torch.compile" if args.compile else ""))
    if trainer.graph_error:
        print(trainer.graph_error)
    print(f"(a) plain step                  {a:10.1f} batches/s  {1e3 / a:8.3f} ms/batch")
    print(f"(b) step + every metric         {b:10.1f} batches/s  {1e3 / b:8.3f} ms/batch")
    print(f"(c) (b) + a consumer at 10 Hz   {c:10.1f} batches/s  ({received} records received, {dropped} dropped; "
          f"(b) in the same blocks {b_paired:.1f})")
    line = f"(b)/(a) time = {a / b:.2f}   (c)/(b) rate = {c / b_paired:.2f} (paired)"
    if device.type == "cpu":
        lit, used = literal_batch_seconds(trainer, args.subset)
        d = 1.0 / a + lit
        print(f"(d) step + literal sums         {1 / d:10.3f} batches/s  {d * 1e3:8.0f} ms/batch "
              f"(sums timed on {used} samples, extrapolated)")
        line += f"   (d)/(b) time = {d * b:.0f}"
    print(line)
    if device.type == "cuda" and graphs:
        for label, kw in (("eager, no CUDA graph", dict(graphs=False)),
                          ("CUDA graph, no compile", dict(graphs=True, compile=False))):
            if kw.get("compile") is False and not args.compile:
                continue
            other = Trainer(cfg, ds, **kw)
            rate(other, True, 0.5)
            e = rate(other, True, args.seconds / 2)
            print(f"    (b) {label:24s}{e:10.1f} batches/s  -> this run's (b) is x{b / e:.2f}")
    if args.scaling:
        print("\nscaling: batches/s for (a) plain and (b) with every metric; time ratio (b)/(a)")
        print(f"{'n':>6} {'N':>5} {'(a)':>10} {'(b)':>10} {'(b)/(a)':>8}")
        for n in (500, 2000, 8000):
            for size in (32, 128, 512):
                t = Trainer(cfg.replace(width=n, batch_size=size), ds, graphs=graphs)
                rate(t, True, 0.3)
                rate(t, False, 0.3)
                sa, sb = alternate(t, args.seconds / 3, 2)
                print(f"{n:>6} {size:>5} {sa:10.1f} {sb:10.1f} {sa / sb:8.2f}", flush=True)


if __name__ == "__main__":
    main()
