"""For tests that send stop signals to a child fftui: the child starts with SIGINT, SIGTERM and
SIGHUP at their default dispositions, whatever this process inherited (a run under `nohup` ignores
SIGHUP, a background job SIGINT, and fftui keeps an ignored signal ignored, as it should)."""
from __future__ import annotations

import signal


def default_stop_signals() -> None:
    """preexec_fn for subprocess: the stop signals back at SIG_DFL in the child before it runs."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
