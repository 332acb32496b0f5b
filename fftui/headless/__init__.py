"""Headless output: runs and the report's experiments to files, their progress, figures and summaries."""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator


class OutputStreamError(Exception):
    """Standard output could not be written (a full disk, /dev/full): the run itself is done and
    its files are kept, but its summary is lost. One line for the user; exit status 1."""


def emit(text: str) -> None:
    """Print text and a newline on standard output and flush it at once, so that a failure to
    write shows here as an OutputStreamError, not as a traceback when the interpreter exits. A
    reader that went away (BrokenPipeError) passes through as it is."""
    try:
        print(text, file=sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise OutputStreamError(f"cannot write to standard output: {reason}") from None


def warn(text: str) -> None:
    """Print a line on standard error; when standard error cannot be written (a full disk), say
    nothing and let it write to the null device from then on, so that the exit status still
    reports how the run ended (Python exits with 120 when it cannot flush a standard stream)."""
    write_or_silence(sys.stderr, text + "\n")


def write_or_silence(stream, text: str) -> bool:
    """Write and flush text; on an OSError, point the stream's descriptor at the null device (what
    is still buffered goes there) and return False. A stream that is missing or closed: False."""
    try:
        stream.write(text)
        stream.flush()
        return True
    except (OSError, ValueError, AttributeError):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, stream.fileno())
            os.close(null)
        return False


class Interrupted(BaseException):
    """A stop signal (SIGINT, SIGTERM, SIGHUP) that arrived where no run was going on to stop
    between batches (loading the data, setting up). A BaseException, so that no `except
    Exception` on the way swallows it, and not a KeyboardInterrupt: CPython can remember a
    KeyboardInterrupt raised inside code it evaluates from C and end the process by SIGINT at
    exit even after it was handled. The exit status is 128 + signum."""

    def __init__(self, signum: int, stage: str = "") -> None:
        super().__init__(signum)
        self.signum = signum
        self.stage = stage  # what the command was doing, in a few words ("loading the data")

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


_stage = ["starting"]


def set_stage(what: str) -> None:
    """Say what the command does now, for the line an Interrupted gets ("loading the data")."""
    _stage[0] = what


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """While inside, SIGINT, SIGTERM and SIGHUP raise Interrupted; the handlers before are put
    back on leaving. Signals the process ignores stay ignored; outside the main thread nothing
    changes. A run inside (engine.headless.stop_on_interrupt) takes the signals over while it trains."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Interrupted(signum, _stage[0])

    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum, before in previous.items():
        if before is not signal.SIG_IGN:
            signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)
