"""The live app under a record rate no CPU here can train at: is it still responsive?

    python bench/ui_load.py [--rates 1000,5000,10000] [--seconds 10] [--size 80x24]

A stand-in for the training thread publishes records at a fixed rate, the way the CUDA path
delivers them: every 50 ms one chunk of packed metric vectors (made by real steps of the layer on
the CPU) goes through the host-side derivation (`derive_runs`, the work the engine thread does per
chunk) into the runner's bounded queue. The app drains and draws as it does in a terminal
(Textual's pilot at the given size). Printed per rate: records published and received by the app,
records the queue dropped, CPU of the UI thread and of the publishing thread (% of one core), and
the slowest of eight key presses from the key to the screen."""
from __future__ import annotations

import argparse
import asyncio
import queue
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tui_bench import key_latencies  # noqa: E402  (bench/ is the script's folder)

from engine.config import Config  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.derive import derive_runs  # noqa: E402
from engine.process import keep_freed_blocks_in_heap  # noqa: E402
from engine.runner import Runner  # noqa: E402
from engine.trainer import Trainer  # noqa: E402


def packed_batches(cfg: Config, dataset, count: int):
    """`count` packed metric vectors of consecutive real steps, with their metas."""
    trainer = Trainer(cfg, dataset)
    vectors, metas = [], []
    with torch.inference_mode():
        for _ in range(count):
            x, n_pos = trainer.next_batch()
            out = trainer.train_step(x, n_pos)
            vectors.append(trainer.packed(x, n_pos, out).numpy().copy())
            metas.append(trainer.pack_meta(x.shape[0]))
    return vectors, metas


class ReplayRunner(Runner):
    """Runner whose thread publishes replayed records at `rate` per second instead of training."""

    def __init__(self, cfg: Config, dataset, rate: float, vectors, metas) -> None:
        super().__init__(cfg, dataset)
        self.rate = rate
        self._vectors, self._metas = vectors, metas
        self._iteration = 0
        self.cpu = 0.0
        self.behind = 0
        self.wall = float('nan')

    @property
    def iteration(self) -> int:
        return self._iteration

    def _main(self) -> None:
        c0 = time.thread_time()
        t0 = time.perf_counter()
        k = len(self._vectors)
        while True:
            try:
                cmd = self.commands.get_nowait()
            except queue.Empty:
                cmd = None
            if cmd is not None and cmd.name == "stop":
                self._state = "stopped"
                break
            due = int(self.rate * (time.perf_counter() - t0)) - self._iteration - self.behind
            if due > self.rate * 0.1:  # slower than the rate: what cannot be made is not owed later
                self.behind += due - int(self.rate * 0.1)
                due = int(self.rate * 0.1)
            if due > 0:
                first = self._iteration
                picks = [(first + j) % k for j in range(due)]
                flat = np.concatenate([self._vectors[p] for p in picks])
                metas = [self._metas[p] for p in picks]
                iterations = list(range(first + 1, first + due + 1))
                for chunk in derive_runs(flat, metas, iterations, [1] * due, 1.0 / self.rate, 0.0):
                    self._publish(chunk)
                self._iteration = first + due
            time.sleep(0.05)
        self.cpu = time.thread_time() - c0
        self.wall = time.perf_counter() - t0


def measure(cfg: Config, dataset, rate: float, seconds: float, size: tuple[int, int], vectors, metas) -> dict:
    from fftui.app import FFApp

    async def go() -> dict:
        made: list[ReplayRunner] = []

        def factory(c, d):
            made.append(ReplayRunner(c, d, rate, vectors, metas))
            return made[0]

        app = FFApp(config=cfg, dataset=dataset, runner_factory=factory)
        async with app.run_test(size=size) as pilot:
            await asyncio.sleep(1.0)
            runner = made[0]
            i0, h0, d0 = runner.iteration, app.history.total, runner.dropped
            c0, t0 = time.thread_time(), time.perf_counter()
            await asyncio.sleep(seconds)
            latencies = await key_latencies(app, 8, 0.25)
            elapsed = time.perf_counter() - t0
            out = {
                "published": (runner.iteration - i0) / elapsed,
                "received": (app.history.total - h0) / elapsed,
                "dropped": runner.dropped - d0,
                "ui_cpu": (time.thread_time() - c0) / elapsed,
                "latency": max(latencies),
                "median_latency": sorted(latencies)[len(latencies) // 2],
            }
            await pilot.press("q")
        made[0].stop()
        out["producer_cpu"] = made[0].cpu / made[0].wall
        return out

    return asyncio.run(go())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", default="1000,5000,10000", help="records per second, comma separated")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--size", default="80x24", help="terminal size, COLSxROWS")
    p.add_argument("--mode", default="ff")
    p.add_argument("--width", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=128)
    args = p.parse_args()
    keep_freed_blocks_in_heap()  # as the fftui command does on the CPU
    cols, rows = (int(v) for v in args.size.lower().split("x"))
    cfg = Config(mode=args.mode, width=args.width, batch_size=args.batch_size, iters=10**9)
    dataset = load_dataset("sample")
    vectors, metas = packed_batches(cfg, dataset, 32)
    print(f"{cfg.mode} mode, n={cfg.width}, N={cfg.batch_size}; terminal {cols}x{rows}; "
          f"{args.seconds:g} s per rate; CPU, {torch.get_num_threads()} torch threads")
    for rate in (float(r) for r in args.rates.split(",")):
        r = measure(cfg, dataset, rate, args.seconds, (cols, rows), vectors, metas)
        print(f"rate {rate:>7.0f}/s: published {r['published']:8.0f}/s, app received {r['received']:8.0f}/s, "
              f"dropped {r['dropped']}; UI thread {100 * r['ui_cpu']:.0f} % of a core, publisher "
              f"{100 * r['producer_cpu']:.0f} %; key to screen median {1000 * r['median_latency']:.0f} ms, "
              f"slowest {1000 * r['latency']:.0f} ms", flush=True)


if __name__ == "__main__":
    main()
