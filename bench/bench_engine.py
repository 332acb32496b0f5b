"""Time per batch of (a) a plain FF step, (b) the step with every metric, (c) the literal
per-sample evaluation of the report's sums (on a subset of samples, extrapolated).

    python bench/bench_engine.py [--batch-size 128] [--width 2000] [--mode ff] [--device cpu]

(a) and (b) alternate in blocks so that both see the same machine load; the figures are medians."""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine import reference  # noqa: E402
from engine.config import Config  # noqa: E402
from engine.data import load_dataset, resolve_device  # noqa: E402
from engine.layer import forward  # noqa: E402
from engine.trainer import Trainer  # noqa: E402


def time_steps(trainer: Trainer, with_metrics: bool, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        trainer.step(with_metrics=with_metrics)
        trainer._sync()
        out.append(time.perf_counter() - t0)
    return out


def literal_batch_seconds(trainer: Trainer, subset: int) -> tuple[float, int]:
    """Seconds the literal implementation needs for one whole batch, from `subset` samples of it."""
    x, n_pos = trainer.next_batch()
    with torch.inference_mode():
        _, h = forward(trainer.w, x)
        w_after = trainer.w.clone()
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
            reference.literal_outcome(trainer.w, w_after, x[i:i + 1])
        per_sample = (time.perf_counter() - t0) / len(rows)
    return per_sample * batch, len(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--width", type=int, default=2000)
    p.add_argument("--mode", default="ff", choices=["ff", "descent"])
    p.add_argument("--loss", default="linear", choices=["linear", "logistic"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--per-block", type=int, default=10)
    p.add_argument("--subset", type=int, default=4, help="samples the literal implementation is timed on")
    args = p.parse_args()

    device = resolve_device(args.device)
    ds = load_dataset("sample", device=device)
    cfg = Config(mode=args.mode, loss=args.loss, batch_size=args.batch_size, width=args.width,
                 iters=10**9, device=args.device)
    trainer = Trainer(cfg, ds)
    time_steps(trainer, True, 3)
    time_steps(trainer, False, 3)
    plain, full = [], []
    for _ in range(args.blocks):
        plain += time_steps(trainer, False, args.per_block)
        full += time_steps(trainer, True, args.per_block)
    a = statistics.median(plain)
    b = statistics.median(full)
    lit, used = literal_batch_seconds(trainer, args.subset)
    c = a + lit
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}")
    print(f"{args.mode} mode, {args.loss} loss, N = {args.batch_size}"
          f"{' per side' if args.mode == 'ff' else ''}, n = {args.width}, float32")
    print(f"(a) plain step           {a * 1e3:9.2f} ms/batch  {1 / a:8.1f} batches/s")
    print(f"(b) step + every metric  {b * 1e3:9.2f} ms/batch  {1 / b:8.1f} batches/s")
    print(f"(c) step + literal sums  {c * 1e3:9.0f} ms/batch  (timed on {used} samples, extrapolated)")
    print(f"(b)/(a) = {b / a:.2f}   (c)/(b) = {c / b:.0f}")


if __name__ == "__main__":
    main()
