"""How long `fftui open` takes to show a long recorded run: a run of 100,000 iterations should show
its first frame with data within 2 s.

    python bench/open_bench.py [--iterations 100000] [--repeats 3] [--keep DIR]

- the run: real chunks (ff, N = 128 positives + 128 negatives, n = 200, the sample data) replayed
  with fresh iteration numbers into a RunWriter with the default --keep-samples (every batch's
  arrays at first, then thinned), as `fftui run` records them; written once into --keep DIR (reused
  when it is there) or a temporary folder.
- the measurement, in a fresh interpreter each time (as a user's `fftui open` starts): seconds from
  the interpreter's start to the app's first frame (the status bar says it reads the run), to the
  first part of the summary read (its first 4,096 batches, and the kept arrays), to every plot of
  the grid built from it (160 x 48 cells, headless), and to the whole summary read (behind the
  first frame with data); and the whole reading alone (`fftui.recording.load`).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import asyncio, json, sys, time
start = time.monotonic()
sys.path.insert(0, sys.argv[2])
from engine.store import RunReader
from fftui.replay import ReplayApp

async def main():
    run = RunReader(sys.argv[1])
    app = ReplayApp(run)
    marks = {}
    async with app.run_test(size=(160, 48)) as pilot:
        marks["first frame"] = time.monotonic() - start
        while app.recording is None:
            await pilot.pause(0.01)
        marks["first part read"] = time.monotonic() - start
        builds = app.plots.builds
        shown = sum(1 for pane in app.panes if pane.display for plot in pane.plots if plot.display)
        while app.plots.builds - builds < shown:  # every plot of the grid built from the recording
            await pilot.pause(0.005)
        marks["first data drawn"] = time.monotonic() - start
        while not app.recorded.complete:
            await pilot.pause(0.01)
        marks["all read"] = time.monotonic() - start
    t = time.monotonic()
    from fftui.recording import load
    load(RunReader(sys.argv[1]))
    marks["reading alone"] = time.monotonic() - t
    print(json.dumps(marks))

asyncio.run(main())
"""


def make_run(folder: Path, iterations: int) -> None:
    """Record `iterations` batches into folder (claimed here) from real chunks renumbered."""
    import numpy as np

    from engine.chunk import MetricsChunk
    from engine.config import Config
    from engine.data import load_dataset
    from engine.store import RunWriter, claim_out_folder
    from engine.trainer import Trainer

    cfg = Config(mode="ff", batch_size=128, width=200, seed=0)
    trainer = Trainer(cfg, load_dataset("sample", device="cpu"), chunk=64)
    chunks = []
    while trainer.iteration < 256:
        chunks += trainer.advance()
    chunks += trainer.flush()
    writer = RunWriter(claim_out_folder(folder), {"config": cfg.as_dict(), "device": "cpu",
                                                  "dataset": {"description": "the shipped sample, replayed"}})
    writer.start()
    done = 0
    while done < iterations:
        for chunk in chunks:
            rows = min(len(chunk), iterations - done)
            columns = {name: col[:rows] for name, col in chunk.columns.items()}
            columns["iteration"] = np.arange(done + 1, done + rows + 1)
            while not writer.put(MetricsChunk(chunk.groups, chunk.per, {**columns, **chunk.constants})):
                time.sleep(0.05)  # the queue is full: let the writer catch up
            done += rows
            if done >= iterations:
                break
    writer.close("finished", timeout=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", default=None, help="where the run is written once and reused")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp) / "run"
        if not (folder / "run.json").exists():
            started = time.monotonic()
            make_run(folder, args.iterations)
            print(f"recorded {args.iterations:,} iterations in {time.monotonic() - started:.0f} s")
        sizes = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
        print("files:", ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(sizes.items())))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for _ in range(args.repeats):
            out = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(ROOT)], env=env, check=True,
                                 capture_output=True, text=True).stdout
            marks = json.loads(out.strip().splitlines()[-1])
            print(" · ".join(f"{k} {v:.2f} s" for k, v in marks.items()))


if __name__ == "__main__":
    main()
