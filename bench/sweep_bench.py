"""The sweep's targets on this machine (fftui sweep, Ray Tune):

    python bench/sweep_bench.py parallel [--trials 8] [--iters 200] [--data-dir DIR]
    python bench/sweep_bench.py many [--trials 1000]

parallel: the same trials (fig3, n = 2000, N = 128, ITERS iterations, seeds 0..TRIALS-1) run as a
sweep of 2 concurrent trials with one torch thread each, and one after another in this process with
two threads. Reports both wall times and their ratio, Ray's start-up (ray.init), and the sweep's own
overhead: its wall time without Ray's start-up and shutdown, beyond the trials' own time divided by
the trials running at once (target: at most 5 %).

many: TRIALS tiny trials (n = 16, N = 32, 20 iterations, the shipped sample): the sweep completes,
the driver's resident memory is sampled while it runs (bounded: it should not grow with the trials
done), and the results table is built from the folder (target: under 10 s)."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.presets import preset_config  # noqa: E402
from fftui.sweep.definition import build  # noqa: E402
from fftui.sweep.execute import ray_session, run_trials  # noqa: E402
from fftui.sweep.state import SweepState  # noqa: E402


def rss_mb() -> float:
    """This process's resident memory (MB), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _sweep(folder: Path, base, seeds: int) -> SweepState:
    return SweepState.create(folder, build({"seeds": seeds}, base))


def parallel(args: argparse.Namespace) -> dict:
    from fftui.sweep.trial import run_trial

    over = {"iters": args.iters, "device": "cpu"}
    if args.data_dir:
        over.update(data="mnist", data_dir=args.data_dir)
    else:
        over["data"] = "sample"
    base = preset_config("fig3", **over)
    with tempfile.TemporaryDirectory(prefix="fftui-sweep-bench-") as scratch:
        root = Path(scratch)
        state = _sweep(root / "sweep", base, args.trials)
        t0 = time.perf_counter()
        with ray_session(cpus=2, gpus=0, address=None):
            started = time.perf_counter()
            run_trials(state, cpus_per_trial=1, concurrent=2)
            ran = time.perf_counter()
        wall = time.perf_counter() - t0
        trial_seconds = [t["seconds"] for t in state.trials]
        assert all(t["status"] == "finished" for t in state.trials), state.status_line()
        sequential_state = _sweep(root / "sequential", base, args.trials)
        s0 = time.perf_counter()
        seq_seconds = [run_trial(t, str(sequential_state.folder), threads=2)["seconds"]
                       for t in sequential_state.trials]
        sequential = time.perf_counter() - s0
    startup = started - t0
    in_sweep = ran - started
    ideal = sum(trial_seconds) / 2
    return {"trials": args.trials, "iters": args.iters, "data": base.data,
            "sweep_wall_s": wall, "ray_startup_s": startup, "ray_shutdown_s": wall - (ran - t0),
            "sweep_without_ray_start_s": in_sweep, "trial_s_mean_1_thread": statistics.fmean(trial_seconds),
            "sequential_wall_s": sequential, "trial_s_mean_2_threads": statistics.fmean(seq_seconds),
            "ratio_sequential_over_sweep": sequential / wall,
            "ratio_sequential_over_sweep_without_ray_start": sequential / in_sweep,
            "sweep_overhead_fraction": (in_sweep - ideal) / ideal}


def many(args: argparse.Namespace) -> dict:
    from fftui.sweep.results import aggregate, results_csv, results_table

    base = preset_config("fig3", width=16, batch_size=32, iters=20, data="sample", device="cpu")
    samples: list[tuple[float, int, float]] = []
    with tempfile.TemporaryDirectory(prefix="fftui-sweep-bench-") as scratch:
        state = _sweep(Path(scratch) / "many", base, args.trials)
        done = threading.Event()
        t0 = time.perf_counter()

        def watch() -> None:
            while not done.wait(2.0):
                c = state.counts()
                samples.append((time.perf_counter() - t0, c["finished"] + c["diverged"] + c["failed"], rss_mb()))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        with ray_session(cpus=2, gpus=0, address=None):
            run_trials(state, cpus_per_trial=1)
        done.set()
        wall = time.perf_counter() - t0
        counts = state.counts()
        b0 = time.perf_counter()
        opened = SweepState.open(state.folder)
        rows = aggregate(opened)
        from rich.console import Console

        with Console(file=open("/dev/null", "w"), width=170) as console:  # noqa: SIM115
            console.print(results_table(opened, rows))
        results_csv(opened, rows)
        table_s = time.perf_counter() - b0
    quarter = max(1, len(samples) // 4)
    return {"trials": args.trials, "wall_s": wall, "per_trial_s": wall / args.trials, "counts": counts,
            "driver_rss_mb_first_quarter_max": max(s[2] for s in samples[:quarter]) if samples else None,
            "driver_rss_mb_last_quarter_max": max(s[2] for s in samples[-quarter:]) if samples else None,
            "driver_rss_mb_peak": max((s[2] for s in samples), default=None),
            "rss_samples": [(round(t, 1), n, round(m, 1)) for t, n, m in samples[:: max(1, len(samples) // 12)]],
            "table_build_s": table_s}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("target", choices=("parallel", "many"))
    p.add_argument("--trials", type=int, default=None)
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--data-dir", default=None, help="full MNIST (default: the shipped sample)")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    if args.trials is None:
        args.trials = 8 if args.target == "parallel" else 1000
    result = parallel(args) if args.target == "parallel" else many(args)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)


if __name__ == "__main__":
    main()
