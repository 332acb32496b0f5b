"""`python -m fftui`. A stop signal while the program itself is being loaded ends it with one
line and 128 + the signal's number; once loaded, the command handles signals itself."""
import contextlib
import os
import signal


def _before_main(signum: int, frame: object) -> None:
    with contextlib.suppress(OSError):
        os.write(2, b"fftui: interrupted while starting\n")
    os._exit(128 + signum)


_EARLY = {s: signal.signal(s, _before_main) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
          if signal.getsignal(s) is not signal.SIG_IGN}

from fftui.cli import main  # noqa: E402

for _signum, _before in _EARLY.items():
    signal.signal(_signum, _before)

raise SystemExit(main())
