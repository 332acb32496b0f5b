"""Median time of the plain step and of the step with every metric, timed in alternating pairs on
the same weights (less exposed to a noisy machine than blocks of seconds).

    python bench/step_pairs.py [--width 2000] [--batch-size 128] [--pairs 40] [--device cpu]"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.config import Config  # noqa: E402
from engine.data import load_dataset, resolve_device  # noqa: E402
from engine.process import keep_freed_blocks_in_heap  # noqa: E402
from engine.trainer import Trainer  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--pairs", type=int, default=40)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    keep_freed_blocks_in_heap()  # as the fftui command does on the CPU
    device = resolve_device(args.device)
    trainer = Trainer(Config(width=args.width, batch_size=args.batch_size, iters=10**9, device=args.device),
                      load_dataset("sample", device=device))
    start = trainer.w.clone()

    def timed(with_metrics: bool) -> float:
        trainer.w.copy_(start)
        t0 = time.perf_counter()
        trainer.advance(with_metrics)
        trainer.flush()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    for _ in range(2):
        timed(False), timed(True)
    plain, full = [], []
    for _ in range(args.pairs):
        plain.append(timed(False))
        full.append(timed(True))
    a, b = statistics.median(plain), statistics.median(full)
    print(f"n = {args.width}, N = {args.batch_size}, {device}: (a) {a * 1e3:.1f} ms, (b) {b * 1e3:.1f} ms, "
          f"(b)/(a) {b / a:.2f} (medians of {args.pairs} pairs)")


if __name__ == "__main__":
    main()
