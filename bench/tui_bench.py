"""Batches per second with the live app open, against a headless run with the same settings.

    python bench/tui_bench.py [--seconds 15] [--rounds 2] [--size 80x24] [--width 2000] [--batch-size 128]

Headless: the engine's Runner trains while this thread drains its queue ten times a second and
throws the records away. TUI: the same Runner inside FFApp, run headless through Textual's
pilot (``App.run_test``) at the given terminal size, drawing as it would in a terminal.
The two alternate in pairs, in turn first and second, so that both see the same machine load; each measures iterations
over ``--seconds`` after a warm-up. While a measurement runs, the CPU time that other processes
take is read from /proc/stat; a pair in which they took more than ``--max-foreign`` of a core is
set aside and run again: other work on a 2-core machine, even niced, slows torch's threads out of
proportion (about tenfold here).
Prints batches/s of each, the median ratio of the kept pairs, and how often and how long the app
built plots."""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config import Config  # noqa: E402
from engine.data import load_dataset, resolve_device  # noqa: E402
from engine.process import APP_SWITCH_INTERVAL, keep_freed_blocks_in_heap, set_switch_interval  # noqa: E402
from engine.runner import Runner, wait_for  # noqa: E402


class Foreign:
    """CPU seconds that other processes (niced ones too) used while the block ran (Linux only)."""

    def __enter__(self) -> Foreign:
        self.seconds = float("nan")
        self._start = self._read()
        return self

    def __exit__(self, *exc) -> None:
        end = self._read()
        if self._start is not None and end is not None:
            self.seconds = (end[0] - self._start[0]) - (end[1] - self._start[1])

    @staticmethod
    def _read() -> tuple[float, float] | None:
        try:
            with open("/proc/stat") as f:
                values = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        tick = os.sysconf("SC_CLK_TCK")
        busy = (sum(values[:8]) - values[3] - values[4]) / tick
        own = os.times()
        return busy, own.user + own.system


def headless(cfg: Config, dataset, warmup: float, seconds: float) -> float:
    runner = Runner(cfg, dataset).start()
    try:
        wait_for(lambda: runner.iteration >= 1, timeout=60)
        end_warm = time.monotonic() + warmup
        while time.monotonic() < end_warm:
            runner.drain()
            runner.drain_events()
            time.sleep(0.1)
        with Foreign() as foreign:
            i0, t0 = runner.iteration, time.perf_counter()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                runner.drain()
                runner.drain_events()
                time.sleep(0.1)
            elapsed = time.perf_counter() - t0
            rate = (runner.iteration - i0) / elapsed
        return {"rate": rate, "foreign": foreign.seconds / elapsed}
    finally:
        runner.stop()


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def key_latencies(app, presses: int, pause: float) -> list[float]:
    """Seconds from pressing the smoothing key to the screen showing the new state, `presses` times."""
    out = []
    for _ in range(presses):
        want = "smoothing off" if app.view_options.smoothing else "smoothing on"
        t_key = time.perf_counter()
        app.simulate_key("s")
        while want not in screen_text(app) and time.perf_counter() - t_key < 2:
            await asyncio.sleep(0.005)
        out.append(time.perf_counter() - t_key)
        await asyncio.sleep(pause)
    return out


def with_tui(cfg: Config, dataset, warmup: float, seconds: float, size: tuple[int, int],
             keys: list[str], switch: float | None = None) -> dict:
    from fftui.app import FFApp

    async def go() -> dict:
        app = FFApp(config=cfg, dataset=dataset)
        # the interval the fftui command sets for the app, or the one asked for (0: Python's 5 ms)
        previous = set_switch_interval(APP_SWITCH_INTERVAL if switch is None else (switch or 0.005))
        async with app.run_test(size=size) as pilot:
            for key in keys:
                await pilot.press(key)
            deadline = time.monotonic() + 60
            while app.runner.iteration < 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(warmup)
            i0, t0 = app.runner.iteration, time.perf_counter()
            b0, s0, w0 = app.plots.builds, app.plots.cpu_seconds, app.plots.wall_seconds
            c0 = time.thread_time()
            with Foreign() as foreign:
                await asyncio.sleep(seconds)
                elapsed = time.perf_counter() - t0
            ui_cpu = time.thread_time() - c0
            builds, build_seconds = app.plots.builds - b0, app.plots.cpu_seconds - s0
            build_wall = app.plots.wall_seconds - w0
            rate = (app.runner.iteration - i0) / elapsed
            latencies = await key_latencies(app, 4, 0.3)
            out = {
                "rate": rate,
                "builds": builds,
                "build_seconds": build_seconds,
                "build_wall": build_wall,
                "elapsed": elapsed,
                "dropped": app.runner.dropped,
                "ui_cpu": ui_cpu,
                "latency": max(latencies),
                "foreign": foreign.seconds / elapsed,
            }
            await pilot.press("q")
        set_switch_interval(previous)
        return out

    return asyncio.run(go())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3, help="undisturbed pairs wanted")
    p.add_argument("--max-attempts", type=int, default=3, help="pairs tried per pair wanted")
    p.add_argument("--max-foreign", type=float, default=0.15,
                   help="cores other processes may use during a pair before it is set aside")
    p.add_argument("--size", default="80x24", help="terminal size, COLSxROWS (e.g. 200x50)")
    p.add_argument("--keys", default="", help="keys pressed first, comma separated (e.g. 2,s)")
    p.add_argument("--switch", type=float, default=None,
                   help="GIL switch interval while the app runs, in seconds "
                        "(0: Python's default; unset: the fftui command's)")
    p.add_argument("--mode", default="ff")
    p.add_argument("--width", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--data", default="auto")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto: where the dataset and the layer live")
    args = p.parse_args()
    keep_freed_blocks_in_heap()  # as the fftui command does on the CPU

    cols, rows = (int(v) for v in args.size.lower().split("x"))
    cfg = Config(mode=args.mode, width=args.width, batch_size=args.batch_size, iters=10_000_000)
    dataset = load_dataset(args.data, device=resolve_device(args.device))
    keys = [k for k in args.keys.split(",") if k]
    print(f"data: {dataset.description}; {cfg.mode} mode, n={cfg.width}, N={cfg.batch_size}; "
          f"terminal {cols}x{rows}; {args.rounds} rounds of {args.seconds:g} s each")

    headless(cfg, dataset, args.warmup, 2.0)  # the first run of a process is slower: not counted
    plain, tui, ratios, kept = [], [], [], []
    attempts = 0
    while len(kept) < args.rounds and attempts < args.rounds * args.max_attempts:
        attempts += 1
        if attempts % 2:
            h = headless(cfg, dataset, args.warmup, args.seconds)
            result = with_tui(cfg, dataset, args.warmup, args.seconds, (cols, rows), keys, args.switch)
        else:
            result = with_tui(cfg, dataset, args.warmup, args.seconds, (cols, rows), keys, args.switch)
            h = headless(cfg, dataset, args.warmup, args.seconds)
        n = result["builds"] or float("nan")
        disturbed = max(h["foreign"], result["foreign"]) > args.max_foreign
        print(f"pair {attempts}: headless {h['rate']:.2f} batches/s, TUI {result['rate']:.2f} batches/s "
              f"({result['rate'] / h['rate']:.0%}); {result['builds']} plot builds, "
              f"{1000 * result['build_seconds'] / n:.1f} ms CPU / {1000 * result['build_wall'] / n:.1f} ms wall "
              f"each; UI thread CPU {100 * result['ui_cpu'] / result['elapsed']:.1f} % of a core; "
              f"other processes {h['foreign']:.2f} / {result['foreign']:.2f} cores; "
              f"slowest key {1000 * result['latency']:.0f} ms" + ("  [set aside]" if disturbed else ""),
              flush=True)
        if disturbed:
            continue
        plain.append(h["rate"])
        tui.append(result["rate"])
        ratios.append(result["rate"] / h["rate"])
        kept.append(result)
    if not kept:
        print("no undisturbed pair: other processes kept the CPU busy; try again on a quiet machine")
        return
    total_builds = sum(b["builds"] for b in kept)
    total_secs = sum(b["build_seconds"] for b in kept)
    total_wall = sum(b["build_wall"] for b in kept)
    total_elapsed = sum(b["elapsed"] for b in kept)
    total_ui = sum(b["ui_cpu"] for b in kept)
    print(f"kept {len(kept)} of {attempts} pairs")
    print(f"headless: {statistics.median(plain):.2f} batches/s (median)")
    print(f"TUI:      {statistics.median(tui):.2f} batches/s (median)")
    print(f"ratio:    {statistics.median(ratios):.1%} (median of the kept pairs)")
    print(f"UI:       {100 * total_ui / total_elapsed:.1f} % of one core on the UI thread")
    print(f"keys:     slowest key press to screen {1000 * max(b['latency'] for b in kept):.0f} ms")
    if total_builds:
        print(f"plots:    {total_builds / total_elapsed:.2f} builds/s, "
              f"{1000 * total_secs / total_builds:.1f} ms CPU ({1000 * total_wall / total_builds:.1f} ms wall) "
              f"per build, {100 * total_secs / total_elapsed:.1f} % of one core")


if __name__ == "__main__":
    main()
