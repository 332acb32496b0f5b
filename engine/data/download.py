"""Downloading MNIST's training files into the cache.

The two training files are fetched from MNIST's usual mirrors (the ones torchvision's ``MNIST``
uses), checked against their published MD5 sums and stored, gzipped, as
``<folder>/MNIST/raw/train-{images-idx3,labels-idx1}-ubyte.gz``: the layout torchvision's
``MNIST`` reads, and one ``find_idx_pair`` finds.

Every request carries its own timeout; nothing here changes process-wide state (the socket
module's default timeout, ``sys.stdout``) and nothing is printed. A failure is worded from the
exception's type and attributes, never from its message text, and leaves behind nothing that
the attempt wrote.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .errors import Unavailable, describe, one_line
from .idx import IMAGES_NAME, LABELS_NAME

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
"""Base URLs tried in order for each file; a file's URL is the base followed by its name."""

FILES = (
    (f"{IMAGES_NAME}.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    (f"{LABELS_NAME}.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
)
"""MNIST's training files and the MD5 sums of their published gzipped forms."""

RETRY_AFTER = 24 * 3600
"""Seconds after a failed download before ``download_mnist(..., retry=False)`` tries again."""

_MAX_BYTES = 64 << 20  # the images file is 9.9 MB; anything far larger is not MNIST
_CHUNK = 1 << 16
_USER_AGENT = "fftui (MNIST download)"


class BadDownload(Exception):
    """A response that is not the file asked for (wrong checksum, far too large)."""


class _WriteError(Exception):
    """A local file or folder could not be written; carries the path and the OSError."""

    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(path, error)
        self.path = path
        self.error = error


def failure_reason(exc: BaseException) -> str:
    """A short, one-line account of why one request failed, decided by the exception's class and
    attributes (never by parsing its message).

    ``urllib.error.HTTPError`` gives ``HTTP <code> <reason>``; a ``URLError`` is judged by the
    exception it wraps; a timeout (``TimeoutError``, which ``socket.timeout`` is) gives ``timed
    out``; a failed name lookup (``socket.gaierror``) and a TLS failure (``ssl.SSLError``) say
    so; a broken HTTP exchange (``http.client.HTTPException``) names its kind; any other OSError
    gives the system's wording of its errno (``Connection refused``).
    """
    if isinstance(exc, urllib.error.HTTPError):
        return one_line(f"HTTP {exc.code} {exc.reason or ''}")
    if isinstance(exc, urllib.error.URLError):
        inner = exc.reason
        if isinstance(inner, BaseException):
            return failure_reason(inner)
        return one_line(inner) or "URL error"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"name lookup failed: {one_line(exc.strerror)}" if exc.strerror else "name lookup failed"
    if isinstance(exc, ssl.SSLError):
        detail = getattr(exc, "verify_message", None) or exc.reason or exc.strerror
        return f"TLS failure: {one_line(detail)}" if detail else "TLS failure"
    if isinstance(exc, http.client.HTTPException):
        return f"broken HTTP response ({type(exc).__name__})"
    if isinstance(exc, BadDownload):
        return one_line(exc) or "not the expected file"
    return describe(exc)


def download_mnist(folder: Path, timeout: float, *, failures: Path | None = None, retry: bool = True) -> Path:
    """Fetch MNIST's training pair into ``folder/MNIST/raw`` and return that folder.

    ``timeout`` (seconds) bounds the name lookup of the mirrors' hosts and each connection and
    read of each request. A file already there with the right checksum is kept. Raises
    ``Unavailable`` with one line (``MNIST is not in <folder> and could not be downloaded
    (<reasons>)``) when a file comes from no mirror or cannot be stored; every file and folder
    the attempt created is then removed again.

    ``failures``, a file, remembers the last failed attempt (its time and line; see
    `last_failure`) and is removed by a successful one. With ``retry=False`` an attempt that
    failed less than `RETRY_AFTER` seconds ago is not repeated: ``Unavailable`` at once, saying
    when it failed and why, so that an offline machine pays for the attempt once a day.
    """
    raw = folder / "MNIST" / "raw"
    prefix = f"MNIST is not in {folder} and could not be downloaded"
    if failures is not None and not retry:
        last = last_failure(failures)
        if last is not None:
            when, line = last
            age = time.time() - when
            if 0 <= age < RETRY_AFTER:
                raise Unavailable(f"{line}, {_ago(age)} ago; not tried again before 24 h have passed "
                                  "(--data mnist tries now)")
    try:
        _download(folder, raw, timeout, prefix)
    except Unavailable as exc:
        if failures is not None:
            remember_failure(failures, str(exc))
        raise
    if failures is not None:
        with contextlib.suppress(OSError):
            failures.unlink()
    return raw


def last_failure(path: Path) -> tuple[float, str] | None:
    """The last failed download remembered in ``path``: (its time, seconds since the epoch; its
    one-line message), or None when the file is absent or unreadable."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return float(record["time"]), one_line(record["message"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember_failure(path: Path, message: str, when: float | None = None) -> None:
    """Write the failed attempt's time (now unless ``when``) and message to ``path``, creating its
    folder; a file that cannot be written is left alone (the next attempt then happens anyway)."""
    record = {"time": time.time() if when is None else when, "message": one_line(message)}
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part.write_text(json.dumps(record) + "\n", encoding="utf-8")
        os.replace(part, path)
    except OSError:
        with contextlib.suppress(OSError):
            part.unlink()


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _download(folder: Path, raw: Path, timeout: float, prefix: str) -> None:
    _check_names_resolve(list(MIRRORS), timeout, prefix)
    created_dirs: list[Path] = []
    created_files: list[Path] = []
    try:
        try:
            _make_dirs(raw, created_dirs)
            for name, md5 in FILES:
                target = raw / name
                if target.is_file() and _md5_of(target) == md5:
                    continue
                existed = target.exists()
                _fetch_from_mirrors(name, md5, target, timeout, prefix)
                if not existed:
                    created_files.append(target)
        except _WriteError as exc:
            raise Unavailable(f"{prefix} (cannot write {exc.path}: {describe(exc.error)})") from None
    except BaseException:
        for path in created_files:
            with contextlib.suppress(OSError):
                path.unlink()
        for path in reversed(created_dirs):
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


def _fetch_from_mirrors(name: str, md5: str, target: Path, timeout: float, prefix: str) -> None:
    """Try each mirror in turn for one file; Unavailable naming every distinct reason."""
    reasons: list[str] = []
    for base in MIRRORS:
        try:
            _fetch(base + name, md5, target, timeout)
            return
        except (OSError, http.client.HTTPException, BadDownload) as exc:
            reasons.append(failure_reason(exc))
    raise Unavailable(f"{prefix} ({'; '.join(dict.fromkeys(reasons))})")


def _fetch(url: str, md5: str, target: Path, timeout: float) -> None:
    """Stream ``url`` into a temporary file beside ``target``, check its MD5, then move it into
    place. Network failures raise as they come; local ones as _WriteError."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    part = target.with_name(f".{target.name}.{os.getpid()}.part")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        try:
            out = open(part, "wb")  # noqa: SIM115 - closed by the `with out:` below
        except OSError as exc:
            raise _WriteError(part, exc) from None
        try:
            digest = hashlib.md5(usedforsecurity=False)
            size = 0
            with out:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > _MAX_BYTES:
                        raise BadDownload(f"the response is larger than {_MAX_BYTES >> 20} MiB")
                    digest.update(chunk)
                    try:
                        out.write(chunk)
                    except OSError as exc:
                        raise _WriteError(part, exc) from None
            if digest.hexdigest() != md5:
                raise BadDownload("checksum mismatch")
            try:
                os.replace(part, target)
            except OSError as exc:
                raise _WriteError(target, exc) from None
        finally:
            with contextlib.suppress(OSError):
                part.unlink()


def _make_dirs(folder: Path, created: list[Path]) -> None:
    """Create ``folder`` and its missing parents, appending each one made (outermost first)."""
    missing = []
    for path in (folder, *folder.parents):
        if path.is_dir():
            break
        missing.append(path)
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            if not path.is_dir():
                raise _WriteError(path, NotADirectoryError(20, os.strerror(20))) from None
            continue
        except OSError as exc:
            raise _WriteError(path, exc) from None
        created.append(path)


def _md5_of(path: Path) -> str | None:
    """The hex MD5 of a file, or None when it cannot be read."""
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _check_names_resolve(urls: list[str], timeout: float, prefix: str) -> None:
    """Raise Unavailable when none of the hosts in ``urls`` resolves within ``timeout`` seconds.

    Name lookups ignore socket timeouts, so a resolver that does not answer could otherwise hold
    the download for much longer than asked. Skipped when a proxy is configured, since then the
    proxy, not this machine, resolves the names. Lookups that fail at once are left for the
    download itself to report.
    """
    if urllib.request.getproxies():
        return
    hosts = list(dict.fromkeys(h for h in (urllib.parse.urlsplit(u).hostname for u in urls) if h))
    if not hosts:
        return
    answered = threading.Event()
    pending = [len(hosts)]
    lock = threading.Lock()

    def lookup(host: str) -> None:
        try:
            socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
            answered.set()
        except Exception:
            pass
        finally:
            with lock:
                pending[0] -= 1
                if pending[0] == 0:
                    answered.set()

    for host in hosts:
        threading.Thread(target=lookup, args=(host,), name=f"fftui-dns-{host}", daemon=True).start()
    if not answered.wait(max(timeout, 0.1)):
        raise Unavailable(f"{prefix} (no answer from the name server within {timeout:g} s)")
