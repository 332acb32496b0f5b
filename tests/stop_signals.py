"""For tests that send stop signals to a child fftui: the child starts with SIGINT, SIGTERM and
SIGHUP at their default dispositions, whatever this process inherited (a run under `nohup` ignores
SIGHUP, a background job SIGINT, and fftui keeps an ignored signal ignored, as it should)."""
from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


def default_stop_signals() -> None:
    """preexec_fn for subprocess: the stop signals back at SIG_DFL in the child before it runs."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Inside, SIGINT raises KeyboardInterrupt in this process (Python's own handler) even where the
    process started with it ignored (a background job); the disposition before is put back after."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
