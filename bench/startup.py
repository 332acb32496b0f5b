"""How long the command takes to answer: `fftui --help`, `fftui run --help` and a bad flag, each run
`--repeats` times in a fresh interpreter; then the live app's first frame and its first trained
batch, in a pseudo-terminal (80 x 24) as a user sees them. Prints the median and range.

    python bench/startup.py [--repeats 5] [--app-only | --no-app] [--data sample]

Targets, on the 2-core development machine: under 0.5 s for each of the first three (torch is
not imported for them); under 1.5 s for the app's first frame (status bar and panes, "loading"),
with the data, the engine and the first batch following behind it.

The first frame is timed from the start of the process to the moment its bytes reach the terminal
(read from the pseudo-terminal's other end): no test harness, no marker written by the app, the
same path a user's terminal takes. It counts as drawn when the output holds the status bar's
"loading" and the first pane's border; the first batch when the status bar's iteration count is
above 0. The app is then stopped with SIGTERM (status 143 expected)."""
from __future__ import annotations

import argparse
import fcntl
import os
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import termios
import time

CASES = {
    "fftui --help": ["--help"],
    "fftui run --help": ["run", "--help"],
    "a bad flag (--lr abc)": ["run", "--lr", "abc"],
}

_ESCAPE = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]")
_FIRST_BATCH = re.compile(r"· it [1-9]")


def seconds(argv: list[str]) -> float:
    """Wall time of `python -m fftui ARGV` from start to exit."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fftui", *argv], capture_output=True, check=False)
    return time.perf_counter() - t0


def app_times(data: str, timeout: float = 120.0) -> tuple[float, float, int]:
    """(seconds to the first frame, seconds to the first batch on screen, exit status after
    SIGTERM) of `fftui run --data DATA --device cpu` in a pseudo-terminal."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = dict(os.environ, TERM="xterm-256color")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "fftui", "run", "--data", data, "--device", "cpu"],
                            stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    output, first_frame, first_batch = "", float("nan"), float("nan")
    try:
        while time.perf_counter() - t0 < timeout:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                continue
            try:
                output += os.read(master, 65536).decode("utf-8", "replace")
            except OSError:
                break
            plain = _ESCAPE.sub("", output)
            now = time.perf_counter() - t0
            if first_frame != first_frame and "loading" in plain and "LHS / RHS" in plain:
                first_frame = now
            if _FIRST_BATCH.search(plain):
                first_batch = now
                break
        proc.send_signal(signal.SIGTERM)
        while True:  # read to the end, so that the app's last writes do not block on a full terminal
            ready, _, _ = select.select([master], [], [], 5)
            if not ready:
                break
            try:
                if not os.read(master, 65536):
                    break
            except OSError:
                break
        status = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return first_frame, first_batch, status


def report(label: str, times: list[float]) -> None:
    print(f"{label:24s} median {statistics.median(times):.3f} s  (range {min(times):.3f}-{max(times):.3f},"
          f" {len(times)} runs)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--data", default="sample", help="the app's --data (default: sample)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--app-only", action="store_true", help="only the live app")
    which.add_argument("--no-app", action="store_true", help="only the command-line cases")
    args = p.parse_args()
    if not args.app_only:
        for label, argv in CASES.items():
            report(label, [seconds(argv) for _ in range(args.repeats)])
    if not args.no_app:
        runs = [app_times(args.data) for _ in range(args.repeats)]
        report("app: first frame", [r[0] for r in runs])
        report("app: first batch", [r[1] for r in runs])
        statuses = sorted({r[2] for r in runs})
        print(f"{'app: status on SIGTERM':24s} {', '.join(map(str, statuses))} (143 expected)")


if __name__ == "__main__":
    main()
