"""Stop signals to the live app, run as a user runs it: in a terminal (a pseudo-terminal here).
SIGINT, SIGTERM and SIGHUP stop the engine, give the terminal back (main screen, mouse reporting
off), print one line and end with 128 + the signal's number."""
from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

from stop_signals import default_stop_signals

ARGS = ["run", "--data", "sample", "--device", "cpu", "--width", "16", "--batch-size", "8"]

ENTER_ALT, LEAVE_ALT = "\x1b[?1049h", "\x1b[?1049l"
MOUSE_ON, MOUSE_OFF = ("\x1b[?1000h", "\x1b[?1003h"), ("\x1b[?1000l", "\x1b[?1003l")


class Terminal:
    """`python -m fftui ARGS` with a pseudo-terminal (80 x 24) for its input and outputs."""

    def __init__(self, args: list[str]) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        env = dict(os.environ, TERM="xterm-256color",
                   PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.pop("NO_COLOR", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "fftui", *args], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, start_new_session=True, close_fds=True,
                                     preexec_fn=default_stop_signals)
        os.close(slave)
        self.output = b""

    def read_until(self, text: str, timeout: float) -> bool:
        """Read the output until it holds ``text`` (escape sequences aside); whether it came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.plain():
                return True
            if not self._read(0.1):
                return text in self.plain()
        return text in self.plain()

    def read_to_end(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(0.2):
            pass

    def _read(self, wait: float) -> bool:
        """One read; False at the end of the output (EIO once the process closed the terminal)."""
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return self.proc.poll() is None
        try:
            data = os.read(self.master, 65536)
        except OSError:
            return False
        self.output += data
        return bool(data)

    def plain(self) -> str:
        return without_escapes(self.output.decode("utf-8", "replace"))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)


@pytest.fixture
def terminal():
    made: list[Terminal] = []

    def start(args: list[str]) -> Terminal:
        made.append(Terminal(args))
        return made[-1]

    yield start
    for t in made:
        t.close()


def without_escapes(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]", "", text)


def assert_restored(text: str) -> str:
    """The terminal left as it was found: the last switch to the alternate screen undone, mouse
    reporting switched off after it was last switched on. Returns the text (escape sequences
    aside) written on the main screen after that."""
    assert ENTER_ALT in text, "the app never drew"
    assert text.rfind(LEAVE_ALT) > text.rfind(ENTER_ALT)
    for on, off in zip(MOUSE_ON, MOUSE_OFF, strict=True):
        assert text.rfind(off) > text.rfind(on)
    return without_escapes(text[text.rfind(LEAVE_ALT) + len(LEAVE_ALT):])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_while_training(terminal, signum):
    t = terminal(ARGS)
    assert t.read_until("running", 120), t.plain()[-2000:]
    assert t.read_until("it ", 30)
    t.proc.send_signal(signum)
    t.read_to_end(30)
    assert t.proc.wait(30) == 128 + signum
    text = t.output.decode("utf-8", "replace")
    after = assert_restored(text)
    lines = [line for line in after.replace("\r", "").split("\n") if line.strip()]
    assert len(lines) == 1, lines
    said = re.fullmatch(f"fftui: stopped by {signal.Signals(signum).name}; ([0-9,]+) batches trained; "
                        "recorded in (.+)", lines[0])
    assert said, lines[0]
    assert "Traceback" not in text
    from run_files import iterations, run_info

    trained = int(said[1].replace(",", ""))
    assert run_info(said[2])["status"] == "interrupted"
    assert iterations(said[2]) == list(range(1, trained + 1))


def test_a_stop_signal_while_loading(terminal):
    t = terminal(ARGS)
    assert t.read_until("loading", 120), t.plain()[-2000:]
    t.proc.send_signal(signal.SIGTERM)
    t.read_to_end(30)
    assert t.proc.wait(30) == 143
    after = assert_restored(t.output.decode("utf-8", "replace"))
    assert after.strip() == "fftui: stopped by SIGTERM; before training began"


def test_data_that_cannot_load_end_the_app_with_one_line_and_status_2(terminal, tmp_path):
    empty = tmp_path / "no-mnist-here"
    empty.mkdir()
    t = terminal(["run", "--data", "mnist", "--data-dir", str(empty), "--device", "cpu"])
    t.read_to_end(120)
    assert t.proc.wait(30) == 2
    after = assert_restored(t.output.decode("utf-8", "replace"))
    lines = [line for line in after.replace("\r", "").split("\n") if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fftui: ") and str(empty) in lines[0], lines


def test_a_hang_up_with_the_terminal_gone(terminal):
    t = terminal(ARGS)
    assert t.read_until("running", 120), t.plain()[-2000:]
    master, t.master = t.master, os.open(os.devnull, os.O_RDONLY)
    os.close(master)  # the terminal window closes: every write of the app now fails
    t.proc.send_signal(signal.SIGHUP)
    assert t.proc.wait(30) == 129
