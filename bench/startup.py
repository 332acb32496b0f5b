"""How long the command takes to answer before any training: `fftui --help`, `fftui run --help`
and a bad flag, each run `--repeats` times in a fresh interpreter; prints the median and range.

    python bench/startup.py [--repeats 5]

Target: under 0.5 s each on the 2-core development machine (torch is not imported for these)."""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "fftui --help": ["--help"],
    "fftui run --help": ["run", "--help"],
    "a bad flag (--lr abc)": ["run", "--lr", "abc"],
}


def seconds(argv: list[str]) -> float:
    """Wall time of `python -m fftui ARGV` from start to exit."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fftui", *argv], capture_output=True, check=False)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    for label, argv in CASES.items():
        times = [seconds(argv) for _ in range(args.repeats)]
        print(f"{label:24s} median {statistics.median(times):.3f} s  (range {min(times):.3f}-{max(times):.3f},"
              f" {args.repeats} runs)")


if __name__ == "__main__":
    main()
