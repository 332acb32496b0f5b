"""`fftui runs` with standard output on a full device: one line saying so, status 1, no "unexpected
error" and no traceback (as a headless run's summary)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("argv", [["runs"], ["runs", "list"], ["runs", "prune", "--keep", "3"]])
def test_runs_to_a_full_device_is_one_line_and_status_1(tmp_path, argv):
    env = dict(os.environ, PYTHONPATH=str(ROOT), FFTUI_DATA_DIR=str(tmp_path), FFTUI_LOG_DIR=str(tmp_path / "log"))
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "fftui", *argv], stdout=full, stderr=subprocess.PIPE,
                              env=env, timeout=60, text=True)
    lines = done.stderr.splitlines()
    assert done.returncode == 1, done.stderr
    assert lines == ["fftui: cannot write to standard output: No space left on device"], done.stderr
