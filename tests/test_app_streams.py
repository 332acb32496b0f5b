"""The live app started with standard input or standard error closed (`<&-`, `2>&-`): Textual reads
keys from the one and draws on the other. One line (on standard output when standard error is
closed), status 2, at once; before, `2>&-` left an app that drew nothing and heard neither q nor
SIGTERM, and `<&-` ended in a traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _start(fd: int, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), FFTUI_LOG_DIR=str(tmp_path / "log"), FFTUI_DATA_DIR=str(tmp_path))
    try:
        return subprocess.run([sys.executable, "-m", "fftui", "run", "--data", "sample", "--device", "cpu"],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60,
                              preexec_fn=lambda: os.close(fd))
    except subprocess.TimeoutExpired:
        pytest.fail(f"the app with descriptor {fd} closed did not end within 60 s")


@pytest.mark.parametrize("fd,name", [(0, "input"), (2, "error")])
def test_a_closed_stream_is_one_line_and_status_2(tmp_path, fd, name):
    done = _start(fd, tmp_path)
    said = done.stdout if fd == 2 else done.stderr
    lines = [line for line in said.splitlines() if line.strip()]
    assert done.returncode == 2, (done.stdout[-500:], done.stderr[-500:])
    assert len(lines) == 1 and lines[0].startswith("fftui run: ") and f"standard {name}" in lines[0], lines
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("target", ["file", "null"])
def test_standard_error_sent_to_a_file_is_refused_in_one_line(tmp_path, target):
    """`fftui 2>log` would draw the whole app into the file and show nothing: refused at once."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), FFTUI_LOG_DIR=str(tmp_path / "log"), FFTUI_DATA_DIR=str(tmp_path))
    log = tmp_path / "err.log"
    with open(log if target == "file" else os.devnull, "w") as err:
        done = subprocess.run([sys.executable, "-m", "fftui", "run", "--data", "sample", "--device", "cpu"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True, env=env,
                              timeout=60)
    assert done.returncode == 2
    said = log.read_text() if target == "file" else done.stdout
    if target == "file":
        assert said.strip().splitlines() == [
            "fftui run: the live app draws on standard error, which goes to a file here; run it with "
            "standard error on the terminal, or use --headless"]
    assert not list(tmp_path.glob("runs/*"))  # nothing recorded
