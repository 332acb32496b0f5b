"""Host-side cost per record: packed metric vectors derived into a chunk of columns and appended to
the app's history, in microseconds per record (batch).

    python bench/host_cost.py [--chunk 256] [--width 2000] [--batch-size 128] [--mode ff]
                              [--threads 1,2] [--repeats 40] [--old PATH]

The vectors come from real steps of the layer on the CPU (float32), repeated to fill a chunk; each
repeat derives one chunk (`engine.derive.derive_runs`, what the training thread does when a chunk
of packed vectors lands, every 256 batches or 50 ms) and appends it to a `fftui.history.History`
(what the app does when it drains the queue). Timed at each torch intra-op thread count given, set
explicitly. With --old PATH (a checkout of an earlier version,
e.g. `git worktree add /tmp/old-main c8125f4`), the earlier `unpack_many` and History are timed on
the same vectors in the same run, interleaved with the new code, so that the ratio comes from one
run on a shared machine. The heap is tuned as the fftui command does."""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.config import Config  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.derive import derive_runs  # noqa: E402
from engine.process import keep_freed_blocks_in_heap  # noqa: E402
from engine.trainer import Trainer  # noqa: E402
from fftui.history import History  # noqa: E402


def packed_vectors(cfg: Config, dataset, steps: int) -> tuple[list[np.ndarray], Trainer]:
    trainer = Trainer(cfg, dataset)
    vectors = []
    with torch.inference_mode():
        for _ in range(steps):
            x, n_pos = trainer.next_batch()
            vectors.append(trainer.packed(x, n_pos, trainer.train_step(x, n_pos)).numpy().copy())
    return vectors, trainer


def load_old(root: Path):
    """The earlier engine as package `old_engine`, and its History bound to it."""
    spec = importlib.util.spec_from_file_location("old_engine", root / "engine" / "__init__.py",
                                                  submodule_search_locations=[str(root / "engine")])
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules["old_engine"] = package
    spec.loader.exec_module(package)
    import old_engine.metrics as old_metrics  # type: ignore[import-not-found]
    import old_engine.trainer as old_trainer  # type: ignore[import-not-found]

    source = (root / "fftui" / "history.py").read_text().replace("from engine.", "from old_engine.")
    history = type(sys)("old_history")
    exec(compile(source, str(root / "fftui" / "history.py"), "exec"), history.__dict__)
    return old_metrics, old_trainer, history


def timed(fn, *args) -> tuple[float, object]:
    """fn(*args): the seconds it took and what it returned."""
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chunk", type=int, default=256)
    p.add_argument("--width", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--mode", default="ff")
    p.add_argument("--threads", default="1,2", help="torch intra-op thread counts, comma separated")
    p.add_argument("--repeats", type=int, default=40)
    p.add_argument("--old", type=Path, default=None, help="checkout of the earlier version to compare with")
    args = p.parse_args()
    heap = keep_freed_blocks_in_heap()
    dataset = load_dataset("sample", device="cpu")
    cfg = Config(mode=args.mode, width=args.width, batch_size=args.batch_size, iters=10**9)
    vectors, trainer = packed_vectors(cfg, dataset, 16)
    r = args.chunk
    picks = [i % len(vectors) for i in range(r)]
    flat = np.concatenate([vectors[i] for i in picks])
    batch = 2 * cfg.batch_size if cfg.mode == "ff" else cfg.batch_size
    metas = [trainer.pack_meta(batch)] * r

    contenders = {}

    def new_derive(start: int):
        return derive_runs(flat, metas, list(range(start, start + r)), [1] * r, 0.0, 0.0)

    contenders["new"] = (new_derive, History)
    if args.old is not None:
        old_metrics, old_trainer, old_history = load_old(args.old.resolve())
        old_t = old_trainer.Trainer(cfg, dataset)  # its Dataset has the same fields
        with torch.inference_mode():
            x, n_pos = old_t.next_batch()
            old_meta = old_t._meta(n_pos, x.shape[0], 1)

        def old_derive(start: int):
            ms = [replace(old_meta, iteration=start + k) for k in range(r)]
            return old_metrics.unpack_many(flat, ms, 0.0, 0.0)

        contenders["old"] = (old_derive, old_history.History)

    print(f"{cfg.mode} mode, N = {cfg.batch_size}{' + ' + str(cfg.batch_size) if cfg.mode == 'ff' else ''}, "
          f"n = {cfg.width}: {batch} samples a record, chunks of {r}, float32 vectors; heap tuned: {heap}; "
          f"{args.repeats} repeats, interleaved; microseconds per record (median, min)")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        times: dict[str, dict[str, list[float]]] = {name: {"derive": [], "history": []} for name in contenders}
        histories = {name: hist() for name, (_, hist) in contenders.items()}
        start = 1
        for rep in range(args.repeats + 3):
            for name, (derive_fn, _) in contenders.items():
                t_derive, chunk = timed(derive_fn, start)
                t_hist, _ = timed(histories[name].add, chunk)
                if rep >= 3:  # warm-up left out
                    times[name]["derive"].append(t_derive)
                    times[name]["history"].append(t_hist)
            start += r
        print(f"torch intra-op threads: {torch.get_num_threads()}")
        for name, parts in times.items():
            total = [a + b for a, b in zip(parts["derive"], parts["history"], strict=True)]
            row = "  ".join(f"{label} {1e6 * statistics.median(v) / r:6.1f} ({1e6 * min(v) / r:5.1f})"
                            for label, v in (("derive", parts["derive"]), ("history", parts["history"]),
                                             ("total", total)))
            print(f"  {name:4s} {row}")
        if "old" in times:
            ratio = [o / n for o, n in zip(
                [a + b for a, b in zip(times["old"]["derive"], times["old"]["history"], strict=True)],
                [a + b for a, b in zip(times["new"]["derive"], times["new"]["history"], strict=True)],
                strict=True)]
            print(f"  old / new, total per repeat: median {statistics.median(ratio):.2f}, "
                  f"range {min(ratio):.2f}-{max(ratio):.2f}")


if __name__ == "__main__":
    main()
