"""The run store's cost: the writer thread's throughput with per-sample arrays, the training thread's
cost of handing it chunks, and a fig3-length run's size on disk.

    python bench/store_bench.py [--records 20000] [--chunk 256] [--fig3] [--pairs 0] [--seconds 8]

- throughput: real chunks (ff, N = 128 positives + 128 negatives, n = 2000, the sample data) are
  replayed with fresh iteration numbers and the per-sample sides perturbed in their last bits (so
  that repeats do not compress better than real data) into a RunWriter keeping every batch's arrays
  (--keep-samples all); records a second from the first put to the end of close(), and per record
  the parts: summary lines (orjson), gzip, Arrow rows.
- size: 2,345 such records (the length of fig3) with every batch's arrays, and with the default
  thinning; --fig3 instead trains the fig3 preset itself on the sample data and records it.
- caller: --pairs P alternates P pairs of --seconds of training (ff, N = 128, n = 2000) with and
  without a RunWriter taking every chunk, and reports batches a second of each and the ratio.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from engine.chunk import MetricsChunk  # noqa: E402
from engine.config import Config  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.process import keep_freed_blocks_in_heap  # noqa: E402
from engine.store import RunWriter, SamplePolicy, claim_out_folder, sample_rows, summary_lines  # noqa: E402
from engine.store.files import folder_size  # noqa: E402
from engine.store.writer import GZIP_LEVEL  # noqa: E402
from engine.trainer import Trainer  # noqa: E402

CFG = Config(mode="ff", batch_size=128, width=2000, seed=0)


def real_chunk(dataset, batches: int) -> MetricsChunk:
    """`batches` consecutive full batches of a real run, as one chunk."""
    trainer = Trainer(CFG.replace(iters=batches), dataset)
    chunks = []
    while trainer.iteration < batches:
        chunks += trainer.advance()
    chunks += trainer.flush()
    full = [c for c in chunks if c.per == 128]
    return MetricsChunk.concat(full)


def replayed(base: MetricsChunk, records: int, size: int, rng: np.random.Generator) -> Iterator[MetricsChunk]:
    """`records` records in chunks of `size`, iterations 1..records, taken from base in turn, their
    LHS and RHS multiplied by 1 + 1e-6 * noise."""
    n = len(base)
    for start in range(0, records, size):
        rows = np.arange(start, min(start + size, records)) % n
        columns: dict[str, object] = {name: col[rows] for name, col in base.columns.items()}
        columns.update(base.constants)
        columns["iteration"] = np.arange(start + 1, start + 1 + len(rows))
        for name in ("lhs", "rhs"):
            col = base.columns[name][rows]
            columns[name] = (col * (1 + 1e-6 * rng.standard_normal(col.shape))).astype(col.dtype)
        yield MetricsChunk(base.groups, base.per, columns)


def write(chunks: Iterable[MetricsChunk], keep: str, folder: Path) -> tuple[float, float, int, RunWriter]:
    """Seconds from the first put to the end of close, the caller's seconds in put, the number of
    puts, and the writer. Chunks are made (outside the timed puts) as they are put; every 16 chunks
    the caller waits for the writer, which bounds the memory of long replays."""
    writer = RunWriter(claim_out_folder(folder), {"config": CFG.as_dict()}, keep_samples=keep,
                       max_queued=10**9).start()
    t0 = time.perf_counter()
    made = in_put = 0.0
    puts = 0
    it = iter(chunks)
    while True:
        t = time.perf_counter()
        chunk = next(it, None)
        if chunk is None:
            break
        t1 = time.perf_counter()
        writer.put(chunk)
        in_put += time.perf_counter() - t1
        made += t1 - t
        puts += 1
        if puts % 16 == 0:
            writer.sync()
    writer.close("finished")
    return time.perf_counter() - t0 - made, in_put, puts, writer


def parts(chunks: list[MetricsChunk]) -> dict[str, float]:
    """Microseconds per record of each step the writer thread takes for a chunk."""
    records = sum(len(c) for c in chunks)
    z = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    t0 = time.perf_counter()
    lines = [summary_lines(c) for c in chunks]
    t1 = time.perf_counter()
    for text in lines:
        z.compress(text)
    t2 = time.perf_counter()
    for c in chunks:
        sample_rows(c, np.ones(len(c), dtype=bool))
    t3 = time.perf_counter()
    return {"summary lines": (t1 - t0) / records * 1e6, "gzip": (t2 - t1) / records * 1e6,
            "arrow rows": (t3 - t2) / records * 1e6}


def sizes(folder: Path) -> str:
    files = sorted(p for p in folder.iterdir() if p.is_file())
    return ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in files if p.stat().st_size > 1000)


def train_fig3(dataset, folder: Path) -> None:
    from engine.presets import PRESETS

    cfg = PRESETS["fig3"].config
    trainer = Trainer(cfg, dataset)
    description = {"config": cfg.as_dict(), "preset": "fig3"}
    writer = RunWriter(claim_out_folder(folder), description, keep_samples="all").start()
    t0 = time.perf_counter()
    while trainer.iteration < cfg.iters:
        for chunk in trainer.advance():
            writer.put(chunk)
    for chunk in trainer.flush():
        writer.put(chunk)
    writer.close("finished")
    print(f"fig3 trained and recorded in {time.perf_counter() - t0:.1f} s: {writer.records} records, "
          f"{writer.sample_records} with arrays, {folder_size(folder) / 1e6:.2f} MB ({sizes(folder)})")


def caller_pairs(dataset, pairs: int, seconds: float, root: Path) -> None:
    trainer = Trainer(CFG, dataset)
    rates: dict[bool, list[float]] = {False: [], True: []}
    for p in range(pairs):
        for recording in ((False, True) if p % 2 == 0 else (True, False)):
            writer = None
            if recording:
                writer = RunWriter(claim_out_folder(root / f"pair-{p}"), {"config": CFG.as_dict()}).start()
            start_it, t0 = trainer.iteration, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                for chunk in trainer.advance():
                    if writer is not None:
                        writer.put(chunk)
            for chunk in trainer.flush():
                if writer is not None:
                    writer.put(chunk)
            rates[recording].append((trainer.iteration - start_it) / (time.perf_counter() - t0))
            if writer is not None:
                writer.close("finished")
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"training, medians of {pairs} pairs of {seconds:.0f} s: {off:.1f} batches/s without recording, "
          f"{on:.1f} with (ratio {on / off:.3f}); each: off {[round(r, 1) for r in rates[False]]}, "
          f"on {[round(r, 1) for r in rates[True]]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--chunk", type=int, default=256, help="records a chunk (256: the CUDA delivery)")
    ap.add_argument("--fig3", action="store_true", help="train and record the fig3 preset itself")
    ap.add_argument("--pairs", type=int, default=0, help="pairs of training with and without recording")
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    keep_freed_blocks_in_heap()
    dataset = load_dataset("sample", device="cpu")
    rng = np.random.default_rng(0)
    base = real_chunk(dataset, 64)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        chunks = list(replayed(base, args.records, args.chunk, rng))
        seconds, in_put, puts, writer = write(chunks, "all", root / "throughput")
        print(f"writer, every batch's arrays: {args.records} records in chunks of {args.chunk} in {seconds:.2f} s = "
              f"{args.records / seconds:,.0f} records/s ({seconds / args.records * 1e3:.3f} ms a record); caller "
              f"{in_put / puts * 1e6:.1f} us a put; {folder_size(root / 'throughput') / args.records:,.0f} "
              f"bytes a record on disk")
        print("per record, us: " + ", ".join(f"{k} {v:.1f}" for k, v in parts(chunks[:20]).items()))
        fig3 = list(replayed(base, 2345, args.chunk, rng))
        for keep in ("all", "auto"):
            _, _, _, w = write(fig3, keep, root / f"fig3-{keep}")
            print(f"fig3 length (2,345 records), keep-samples {SamplePolicy.parse(keep).text}: "
                  f"{folder_size(root / f'fig3-{keep}') / 1e6:.2f} MB, {w.sample_records} with arrays "
                  f"({sizes(root / f'fig3-{keep}')})")
        hour = replayed(base, 35 * 3600, args.chunk, rng)
        _, _, _, w = write(hour, "auto", root / "hour")
        print(f"an hour at 35 batches/s (126,000 records), default thinning: "
              f"{folder_size(root / 'hour') / 1e6:.1f} MB, {w.sample_records} with arrays ({sizes(root / 'hour')})")
        if args.fig3:
            train_fig3(dataset, root / "fig3-trained")
        if args.pairs:
            caller_pairs(dataset, args.pairs, args.seconds, root)


if __name__ == "__main__":
    main()
