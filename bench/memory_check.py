"""Does a long run hold its memory steady? Trains through the Runner thread while a consumer drains
the metrics queue ten times a second into the app's bounded History, and prints the process's
resident memory (and CUDA memory) at ten checkpoints.

    python bench/memory_check.py [--batches 1000000] [--width 32] [--batch-size 8] [--device cpu]"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.config import Config  # noqa: E402
from engine.data import load_dataset, resolve_device  # noqa: E402
from engine.process import keep_freed_blocks_in_heap  # noqa: E402
from engine.runner import Runner  # noqa: E402
from fftui.history import History  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=1_000_000)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--mode", default="ff")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--compile", action="store_true")
    args = p.parse_args()
    keep_freed_blocks_in_heap()  # as the fftui command does on the CPU
    device = resolve_device(args.device)
    ds = load_dataset("sample", device=device)
    cfg = Config(mode=args.mode, width=args.width, batch_size=args.batch_size, lr=args.lr,
                 iters=args.batches, device=args.device)
    runner = Runner(cfg, ds, compile=args.compile).start()
    history = History()
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            history.add(runner.drain())
            time.sleep(0.1)

    threading.Thread(target=consume, daemon=True).start()
    t0 = time.perf_counter()
    print(f"{args.batches:,} batches, {cfg.mode} mode, n = {cfg.width}, N = {cfg.batch_size}, {device}")
    print(f"{'batches':>10} {'seconds':>8} {'RSS MiB':>8} {'CUDA MiB':>9} {'history':>8} {'queued':>7} {'dropped':>8}")
    marks = [args.batches * k // 10 for k in range(1, 11)]
    for mark in marks:
        while runner.iteration < mark and runner.state == "running":
            time.sleep(0.05)
        cuda = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else 0.0
        print(f"{runner.iteration:>10,} {time.perf_counter() - t0:8.0f} {rss_mib():8.1f} {cuda:9.1f} "
              f"{len(history):>8} {runner.queued:>7} {runner.dropped:>8}", flush=True)
        if runner.state != "running":
            print(f"runner {runner.state}: {[e.message for e in runner.drain_events()][-1:]}")
            break
    stop.set()
    runner.stop()


if __name__ == "__main__":
    main()
