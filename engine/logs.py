"""The log file: where the full traceback of a failure goes while the user reads one line.

The file is ``fftui.log`` in ``$FFTUI_LOG_DIR`` when that variable is set, else in
``platformdirs.user_log_dir("fftui")`` (``~/.local/state/fftui/log`` on Linux). It is opened on
the first failure, never at import, kept under about 1 MB with two older generations beside it,
and written only by the ``fftui`` logger, which does not pass its records on to the root logger
(whose handlers could write over the app's screen). When the folder cannot be written, nothing
is logged and ``log_exception`` says so by returning None; it never raises.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
from pathlib import Path

LOG_NAME = "fftui.log"
LOGGER_NAME = "fftui"
_MAX_BYTES = 1_000_000
_BACKUPS = 2
_FORMAT = "%(asctime)s %(levelname)s pid %(process)d thread %(threadName)s: %(message)s"

_lock = threading.Lock()
_handler: _Handler | None = None


class _Handler(logging.handlers.RotatingFileHandler):
    """A size-bounded file handler that records a failed write instead of printing about it."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        self.failed = True


def log_dir() -> Path:
    """The folder of the log file: ``$FFTUI_LOG_DIR`` if set (tests use it), else the per-user log
    folder from platformdirs. Always absolute; not created here."""
    override = os.environ.get("FFTUI_LOG_DIR", "").strip()
    if override:
        return Path(os.path.abspath(Path(override).expanduser()))
    import platformdirs

    return Path(os.path.abspath(platformdirs.user_log_dir("fftui")))


def log_file() -> Path:
    """The path of the log file (it may not exist yet)."""
    return log_dir() / LOG_NAME


def log_exception(what: str, exc: BaseException | None = None) -> Path | None:
    """Append ``what`` and the full traceback of ``exc`` (default: the exception being handled)
    to the log file and return the file's path; None when the file cannot be written.

    Safe to call from any thread; the handler is created on the first call and follows a change
    of ``FFTUI_LOG_DIR``.
    """
    if exc is None:
        exc = sys.exc_info()[1]
    with _lock:
        handler = _current_handler()
        if handler is None:
            return None
        handler.failed = False
        logger = logging.getLogger(LOGGER_NAME)
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
        logger.error(what, exc_info=exc_info)
        handler.flush()
        return None if handler.failed else Path(handler.baseFilename)


def details(path: Path | None) -> str:
    """`` (details: <path>)`` to end a one-line message with, or "" when nothing was logged."""
    return f" (details: {path})" if path is not None else ""


def _current_handler() -> _Handler | None:
    """The handler writing to ``log_file()``, made (and the folder created) when needed."""
    global _handler
    path = log_file()
    if _handler is not None and Path(_handler.baseFilename) == path:
        return _handler
    logger = logging.getLogger(LOGGER_NAME)
    if _handler is not None:
        logger.removeHandler(_handler)
        _handler.close()
        _handler = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = _Handler(path, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter(_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    _handler = handler
    return handler
