"""How the live app starts and ends: the data loaded behind the first frame, the stop signals, and
output filters that never meet a segment without a style.

Nothing here imports torch: `fftui.app` draws its first frame before the heavy imports, which the
loading thread pays (see `load_in_background`)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.segment import Segment
from rich.style import Style

from engine.config import Config

from .widgets.status import StatusInfo

if TYPE_CHECKING:
    from textual.app import App

    from engine.data import Dataset

NULL_STYLE = Style()

# The signals that end the app: ctrl+c from outside (`kill -INT`), `kill`, a closed terminal.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

# What a terminal needs to be itself again when the app could not restore it: mouse reporting
# off (the four modes Textual turns on), bracketed paste off, the main screen back, the cursor shown.
RESTORE_TERMINAL = "\x1b[?1000l\x1b[?1003l\x1b[?1015l\x1b[?1006l\x1b[?2004l\x1b[?1049l\x1b[?25h"


def guard_line_filters(app: App) -> None:
    """Let every output filter of ``app`` (NO_COLOR's monochrome filter, the dim filter...) take
    segments that carry no style: such a segment (``rich.text.Text.render`` of an unstyled span,
    a plain ``Segment(text)``) reaches them as the empty style. Textual's filters read
    ``style.color`` and crash the app on None. Changes only the filter objects of this app."""
    filters = getattr(app, "_filters", None)
    if filters is None:
        filters = app.get_line_filters()
    for line_filter in filters:
        line_filter.apply = _styled(line_filter.apply)  # type: ignore[method-assign]


def _styled(apply: Callable[[list[Segment], Any], list[Segment]]) -> Callable[[list[Segment], Any], list[Segment]]:
    def apply_styled(segments: list[Segment], background: Any) -> list[Segment]:
        if any(segment.style is None for segment in segments):
            segments = [segment if segment.style is not None else Segment(segment.text, NULL_STYLE, segment.control)
                        for segment in segments]
        return apply(segments, background)

    return apply_styled


def loading_message(cfg: Config) -> str:
    """The status line while the data load: which data, and from where."""
    if cfg.data == "sample":
        what = "the shipped MNIST sample"
    elif cfg.data_dir:
        what = f"MNIST from {cfg.data_dir}"
    elif cfg.data == "mnist":
        what = "MNIST (downloading it if it is not in the cache)"
    else:
        what = "MNIST, or the shipped sample when it is not at hand"
    return f"loading {what} ..."


def loading_info(cfg: Config, message: str, kind: str = "info") -> StatusInfo:
    """The status bar while the data load: state "loading", the configuration asked for, no data yet."""
    return StatusInfo(state="loading", requested=None, config=cfg, pending=cfg, data="loading ...", sample=False,
                      device=cfg.device, epoch=None, iteration=0, total=None, rate=None, dropped=0,
                      message=message, message_kind=kind)


def load_in_background(app: Any, loader: Callable[[], Dataset],
                       build_runner: Callable[[Dataset], Any]) -> threading.Thread:
    """Run ``loader`` and ``build_runner`` in a daemon thread (torch's import, the files, a download
    attempt: seconds that the screen does not wait for), then hand the dataset and the runner to
    ``app._start_engine`` in the app's thread; an exception goes to ``app._load_failed``. An app
    that ended meanwhile gets nothing. Returns the thread, started."""
    def work() -> None:
        try:
            dataset = loader()
            runner = build_runner(dataset)
        except BaseException as exc:  # reported by the app, which ends: status 2 or 1
            _deliver(app, app._load_failed, exc)
            return
        _deliver(app, app._start_engine, dataset, runner)

    thread = threading.Thread(target=work, name="fftui-load", daemon=True)
    thread.start()
    return thread


def _deliver(app: Any, callback: Callable[..., Any], *args: Any) -> None:
    if not app.is_running:
        return
    with contextlib.suppress(RuntimeError, concurrent.futures.CancelledError):  # the app has ended
        app.call_from_thread(callback, *args)


# -- stop signals ----------------------------------------------------------------------------------
_early: list[int] = []  # signals that arrived between catch_early_signals and the app's handlers


def catch_early_signals() -> None:
    """Until the app installs its handlers (`install_stop_signals`, at mount), remember a stop
    signal instead of dying of it: the terminal may already be in the app's mode. Call from the main
    thread just before running the app. A signal the process ignores stays ignored."""
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, lambda number, _frame: _early.append(number))


def install_stop_signals(app: Any) -> None:
    """SIGINT, SIGTERM and SIGHUP end ``app`` in its event loop (see `stop_app`); a signal that
    came early (`catch_early_signals`) does so now. Call from the app, in the main thread."""
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is signal.SIG_IGN:
            continue
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
            loop.add_signal_handler(signum, stop_app, app, signum)
    if _early:
        stop_app(app, _early[0])


def stop_app(app: Any, signum: int) -> None:
    """The first stop signal: stop the engine (the batches trained so far are delivered), close the
    output files, and end the app, whose driver restores the terminal; ``app.stop_signal`` says
    which signal and the return code is 128 + its number. A second signal does not wait: the
    terminal gets its modes back and the process ends at once with the same status."""
    if app.stop_signal is not None:
        with contextlib.suppress(OSError, ValueError, AttributeError):  # AttributeError: no stderr
            sys.__stderr__.write(RESTORE_TERMINAL)  # type: ignore[union-attr]
            sys.__stderr__.flush()  # type: ignore[union-attr]
        os._exit(128 + app.stop_signal)
    app.stop_signal = signum
    app._stop_runner()
    app.exit(return_code=128 + signum)
