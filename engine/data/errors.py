"""The errors of the data package and the one-line wording they share."""
from __future__ import annotations

import os


def one_line(text: object) -> str:
    """``text`` as a string with every run of whitespace (newlines included) made one space."""
    return " ".join(str(text).split())


def describe(exc: BaseException) -> str:
    """A short, one-line account of a local failure, taken from the exception's attributes.

    An OSError gives the system's wording of its errno (``Permission denied``), else its
    ``strerror``; any other exception gives its message, or its type name when it has none.
    """
    if isinstance(exc, OSError):
        if isinstance(exc.errno, int) and exc.errno > 0:
            return os.strerror(exc.errno)
        if exc.strerror:
            return one_line(exc.strerror)
    return one_line(exc) or type(exc).__name__


class DataError(Exception):
    """Data that cannot be found, fetched or trusted; the message is one line meant for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class Unavailable(DataError):
    """MNIST is absent or could not be downloaded (as opposed to present but broken).

    ``load_dataset(source="auto")`` falls back to the shipped sample on this error only (and on
    a corrupt cached file); every other DataError reaches the caller.
    """
