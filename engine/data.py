"""MNIST training data: find it, download it, check it, and put it on the device as one tensor.

Sources, in the order ``load_dataset(source="auto")`` tries them:

* the IDX files in a folder the user names (``data_dir``), never downloaded into;
* the IDX files in the per-user cache (``cache_dir()``), downloaded there by torchvision
  when missing;
* the shipped 5,000-digit sample (``sample_dir()``), with a one-line note saying why.

Every file is parsed by ``read_idx`` so that full MNIST and the sample go through one reader,
and every problem surfaces as a ``DataError`` whose message is a single line for the user.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import math
import os
import re
import socket
import struct
import threading
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import torch

IMAGES_NAME = "train-images-idx3-ubyte"
LABELS_NAME = "train-labels-idx1-ubyte"
IMAGE_SIDE = 28
PIXELS = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10
SOURCES = ("auto", "mnist", "sample")

_IDX_UBYTE = 0x08
_IDX_MAX_DIMS = 8
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


class DataError(Exception):
    """Data that cannot be found, fetched or trusted; the message is one line meant for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


class _Unavailable(DataError):
    """MNIST is absent or could not be downloaded (as opposed to present but broken)."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """The training digits, resident on the device.

    ``images`` is one uint8 tensor of shape (S, 784) (rows are 28 x 28 digits, row-major) and
    ``labels`` one int64 tensor of shape (S,), both on the same device.
    """

    images: torch.Tensor
    labels: torch.Tensor
    source: str
    description: str
    note: str | None = None

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])

    @property
    def device(self) -> torch.device:
        return self.images.device


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _reason(exc: BaseException) -> str:
    """A short, one-line account of an exception."""
    if isinstance(exc, socket.timeout) or (isinstance(exc, OSError) and "timed out" in str(exc)):
        return "timed out"
    text = _one_line(exc)
    inner = getattr(exc, "reason", None)
    if inner is not None and not isinstance(inner, str):
        text = _one_line(inner)
    text = re.sub(r"^<urlopen error (.*)>$", r"\1", text)
    return text or type(exc).__name__


# ---------------------------------------------------------------------------------------------
# Locations


def cache_dir() -> Path:
    """Where downloaded MNIST lives: ``$FFTUI_CACHE_DIR/mnist`` if that variable is set, else
    ``platformdirs.user_cache_dir("fftui")/mnist``. Always an absolute path."""
    override = os.environ.get("FFTUI_CACHE_DIR", "").strip()
    if override:
        root = Path(override).expanduser()
    else:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("fftui"))
    return Path(os.path.abspath(root / "mnist"))


def sample_dir() -> Path:
    """The folder holding the shipped sample: inside the installed package, else the checkout."""
    package = Path(__file__).resolve().parent
    candidates = (package / "assets" / "mnist-sample", package.parent / "assets" / "mnist-sample")
    for folder in candidates:
        if (folder / f"{IMAGES_NAME}.gz").is_file() and (folder / f"{LABELS_NAME}.gz").is_file():
            return folder
    raise DataError(
        "the shipped MNIST sample is missing from this installation "
        f"(looked in {candidates[0]} and {candidates[1]}); reinstall fftui"
    )


def find_idx_pair(folder: str | os.PathLike[str]) -> tuple[Path, Path] | None:
    """The (images, labels) training files in ``folder``, ``folder/MNIST/raw`` or ``folder/raw``.

    Names are ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``, each optionally
    ending in ``.gz``; the uncompressed file wins when both exist. Both files must be in the
    same folder. None when no folder holds the pair.
    """
    base = Path(folder).expanduser()
    for where in (base, base / "MNIST" / "raw", base / "raw"):
        images = _pick(where, IMAGES_NAME)
        labels = _pick(where, LABELS_NAME)
        if images is not None and labels is not None:
            return images, labels
    return None


def _pick(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


# ---------------------------------------------------------------------------------------------
# IDX files


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file of unsigned bytes, gzipped or raw, into a uint8 array of its shape.

    The file is gzipped when its name ends in ``.gz`` or it starts with the gzip magic. The
    header must be ``00 00 08 ndim`` followed by ndim big-endian uint32 sizes, and the data
    must hold exactly the product of the sizes in bytes: a truncated file, trailing bytes or
    a damaged gzip stream raise DataError naming the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            compressed = path.name.lower().endswith(".gz") or raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            if compressed:
                with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                    return _parse_idx(stream, path)
            return _parse_idx(raw, path)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"MNIST file {path} does not exist") from None
    except EOFError:
        raise DataError(f"corrupt MNIST file {path}: the gzip stream is cut short") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"corrupt MNIST file {path}: not valid gzip ({_reason(exc)})") from None
    except OSError as exc:
        raise DataError(f"cannot read MNIST file {path}: {_reason(exc)}") from None
    except MemoryError:
        raise DataError(f"cannot read MNIST file {path}: not enough memory") from None


def _parse_idx(stream: BinaryIO, path: Path) -> np.ndarray:
    head = _read_upto(stream, 4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DataError(f"corrupt MNIST file {path}: not an IDX file (bad magic number)")
    if head[2] != _IDX_UBYTE:
        raise DataError(
            f"unsupported MNIST file {path}: IDX data type 0x{head[2]:02x} "
            f"(only unsigned bytes, 0x{_IDX_UBYTE:02x}, are supported)"
        )
    ndim = head[3]
    if not 1 <= ndim <= _IDX_MAX_DIMS:
        raise DataError(f"corrupt MNIST file {path}: IDX header gives {ndim} dimensions")
    header_len = 4 + 4 * ndim
    dims_bytes = _read_upto(stream, 4 * ndim)
    if len(dims_bytes) < 4 * ndim:
        found = 4 + len(dims_bytes)
        raise DataError(
            f"corrupt MNIST file {path}: header needs {header_len} bytes, found {found}"
        )
    shape = struct.unpack(f">{ndim}I", dims_bytes)
    count = math.prod(shape)
    expected = header_len + count
    size = _stream_size(stream)
    if size is not None and size != expected:
        raise DataError(f"corrupt MNIST file {path}: expected {expected} bytes, found {size}")
    body = _read_body(stream, count)
    if len(body) < count:
        found = header_len + len(body)
        raise DataError(f"corrupt MNIST file {path}: expected {expected} bytes, found {found}")
    extra = _count_rest(stream)
    if extra:
        raise DataError(
            f"corrupt MNIST file {path}: expected {expected} bytes, found {expected + extra}"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _read_upto(stream: BinaryIO, n: int) -> bytes:
    parts = []
    while n > 0:
        piece = stream.read(n)
        if not piece:
            break
        parts.append(piece)
        n -= len(piece)
    return b"".join(parts)


def _stream_size(stream: BinaryIO) -> int | None:
    """The size of an uncompressed file on disk; None for a gzip stream."""
    if isinstance(stream, gzip.GzipFile):
        return None
    try:
        return os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None


def _read_body(stream: BinaryIO, count: int) -> bytearray:
    """Up to ``count`` bytes, read in chunks so that a header claiming too much costs nothing."""
    body = bytearray()
    while len(body) < count:
        piece = stream.read(min(_CHUNK, count - len(body)))
        if not piece:
            break
        body += piece
    return body


def _count_rest(stream: BinaryIO) -> int:
    total = 0
    while True:
        piece = stream.read(_CHUNK)
        if not piece:
            return total
        total += len(piece)


def _load_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and check a training pair: images (S, 28, 28), labels (S,) in 0..9."""
    images = read_idx(images_path)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(
            f"MNIST images file {images_path} holds an array of shape {tuple(images.shape)}, "
            f"not (count, {IMAGE_SIDE}, {IMAGE_SIDE})"
        )
    if images.shape[0] == 0:
        raise DataError(f"MNIST images file {images_path} holds no digits")
    labels = read_idx(labels_path)
    if labels.ndim != 1:
        raise DataError(
            f"MNIST labels file {labels_path} holds an array of shape {tuple(labels.shape)}, "
            "not (count,)"
        )
    if labels.shape[0] != images.shape[0]:
        raise DataError(
            f"MNIST labels file {labels_path} holds {labels.shape[0]:,} labels but "
            f"{images_path.name} holds {images.shape[0]:,} digits"
        )
    top = int(labels.max())
    if top >= NUM_CLASSES:
        raise DataError(
            f"corrupt MNIST labels file {labels_path}: label {top} is outside 0..{NUM_CLASSES - 1}"
        )
    return images, labels


# ---------------------------------------------------------------------------------------------
# Devices


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` as a torch.device, or DataError.

    ``auto`` is the first CUDA device when one is available, else the CPU.
    """
    text = str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise DataError(f"unknown device {str(name)!r} (expected auto, cpu, cuda or cuda:N)")
    if not torch.cuda.is_available():
        raise DataError("CUDA was requested but no CUDA device is available")
    if match.group(1) is None:
        return torch.device("cuda")
    index = int(match.group(1))
    available = torch.cuda.device_count()
    if index >= available:
        plural = "device is" if available == 1 else "devices are"
        raise DataError(f"CUDA device {index} was requested but only {available} {plural} available")
    return torch.device("cuda", index)


# ---------------------------------------------------------------------------------------------
# Download


@contextlib.contextmanager
def _socket_timeout(seconds: float | None) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _snapshot(folder: Path) -> dict[Path, tuple[int, int]]:
    found: dict[Path, tuple[int, int]] = {}
    if folder.is_dir():
        for path in folder.rglob("*"):
            try:
                if path.is_file():
                    st = path.stat()
                    found[path] = (st.st_size, st.st_mtime_ns)
            except OSError:
                continue
    return found


def _existing_dirs(folder: Path) -> set[Path]:
    dirs = {p for p in folder.rglob("*") if p.is_dir()} if folder.is_dir() else set()
    if folder.is_dir():
        dirs.add(folder)
    return dirs


def _undo_download(folder: Path, before: dict[Path, tuple[int, int]], dirs_before: set[Path]) -> None:
    """Remove what a failed download wrote: new or rewritten files, then new empty folders."""
    for path, stamp in _snapshot(folder).items():
        if before.get(path) != stamp:
            with contextlib.suppress(OSError):
                path.unlink()
    if folder.is_dir():
        new_dirs = sorted(_existing_dirs(folder) - dirs_before, key=lambda p: len(p.parts), reverse=True)
        for path in new_dirs:
            with contextlib.suppress(OSError):
                path.rmdir()


def _download_reason(exc: BaseException) -> str:
    """The distinct per-mirror errors in torchvision's download failure, or the error itself."""
    lines = [line.strip() for line in str(exc).splitlines()]
    reasons: list[str] = []
    for i, line in enumerate(lines[:-1]):
        if line.startswith("Tried ") and line.endswith("got:"):
            reason = re.sub(r"^<urlopen error (.*)>$", r"\1", lines[i + 1])
            reason = re.sub(r"^\[Errno -?\d+\] ", "", reason)
            if "timed out" in reason:
                reason = "timed out"
            if reason and reason not in reasons:
                reasons.append(reason)
    return "; ".join(reasons) if reasons else _reason(exc)


def _check_names_resolve(urls: list[str], timeout: float, folder: Path) -> None:
    """Raise _Unavailable when none of the hosts in ``urls`` resolves within ``timeout`` seconds.

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
        raise _Unavailable(
            f"MNIST is not in {folder} and could not be downloaded "
            f"(no answer from the name server within {timeout:g} s)"
        )


def _download(folder: Path, timeout: float) -> None:
    """Fetch MNIST's training files into ``folder`` (torchvision layout ``MNIST/raw``)."""
    before = _snapshot(folder)
    dirs_before = _existing_dirs(folder)
    printed = io.StringIO()
    try:
        try:
            from torchvision.datasets import MNIST
        except Exception as exc:
            raise _Unavailable(
                f"MNIST is not in {folder} and could not be downloaded "
                f"(torchvision is not usable: {_reason(exc)})"
            ) from None
        _check_names_resolve(list(getattr(MNIST, "mirrors", [])), timeout, folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with _socket_timeout(timeout), contextlib.redirect_stdout(printed), contextlib.redirect_stderr(
                printed
            ):
                MNIST(root=str(folder), train=True, download=True)
        except Exception as exc:
            reason = _download_reason(exc)
            raise _Unavailable(f"MNIST is not in {folder} and could not be downloaded ({reason})") from None
        if find_idx_pair(folder) is None:
            raise _Unavailable(
                f"MNIST is not in {folder} and could not be downloaded "
                "(the download finished without the training files)"
            )
    except BaseException:
        _undo_download(folder, before, dirs_before)
        raise


# ---------------------------------------------------------------------------------------------
# Loading


def _load_from_dir(data_dir: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, Path]:
    folder = Path(data_dir).expanduser()
    pair = find_idx_pair(folder)
    if pair is None:
        raise _Unavailable(
            f"no MNIST training files in {folder} "
            f"(expected {IMAGES_NAME}[.gz] and {LABELS_NAME}[.gz])"
        )
    images, labels = _load_pair(*pair)
    return images, labels, pair[0].parent


def _load_from_cache(download: bool, timeout: float) -> tuple[np.ndarray, np.ndarray, Path]:
    folder = cache_dir()
    pair = find_idx_pair(folder)
    if pair is None:
        if not download:
            raise _Unavailable(f"MNIST is not in {folder} and downloading is turned off")
        _download(folder, timeout)
        pair = find_idx_pair(folder)
        assert pair is not None
    images, labels = _load_pair(*pair)
    return images, labels, pair[0].parent


def _load_sample() -> tuple[np.ndarray, np.ndarray]:
    folder = sample_dir()
    return _load_pair(folder / f"{IMAGES_NAME}.gz", folder / f"{LABELS_NAME}.gz")


def _to_dataset(
    images: np.ndarray, labels: np.ndarray, device: torch.device, source: str, description: str,
    note: str | None,
) -> Dataset:
    flat = torch.from_numpy(images.reshape(images.shape[0], PIXELS))
    targets = torch.from_numpy(labels.astype(np.int64))
    try:
        flat = flat.to(device)
        targets = targets.to(device)
    except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
        raise DataError(f"cannot put the digits on {device}: {_reason(exc)}") from None
    return Dataset(images=flat, labels=targets, source=source, description=description, note=note)


def _sample_dataset(device: torch.device, note: str | None = None) -> Dataset:
    images, labels = _load_sample()
    if note is not None:
        note = f"{note}; using the shipped {len(labels):,}-digit sample"
    description = f"shipped MNIST sample ({len(labels):,} digits)"
    return _to_dataset(images, labels, device, "sample", description, note)


def load_dataset(
    source: str = "auto",
    data_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    download: bool = True,
    timeout: float = 3.0,
) -> Dataset:
    """Load the training digits onto ``device``.

    ``source="sample"`` loads the shipped sample. ``source="mnist"`` loads the IDX pair from
    ``data_dir`` when given (never downloading into it), else from the cache, downloading it
    there when missing and ``download`` is true. ``source="auto"`` does what ``"mnist"`` does
    and falls back to the sample, with a one-line ``note``, when MNIST is absent or cannot be
    downloaded, or when a cached file is corrupt; a corrupt file in ``data_dir`` is an error.
    """
    choice = str(source).strip().lower()
    if choice not in SOURCES:
        raise DataError(f"unknown data source {source!r} (expected auto, mnist or sample)")
    target = resolve_device(device)
    if choice == "sample":
        return _sample_dataset(target)

    if data_dir is not None and str(data_dir).strip():
        try:
            images, labels, where = _load_from_dir(data_dir)
        except _Unavailable as exc:
            if choice == "mnist":
                raise
            return _sample_dataset(target, note=str(exc))
    else:
        try:
            images, labels, where = _load_from_cache(download, timeout)
        except _Unavailable as exc:
            if choice == "mnist":
                raise
            return _sample_dataset(target, note=str(exc))
        except DataError as exc:
            if choice == "mnist":
                raise
            return _sample_dataset(target, note=f"{exc}; delete it to download MNIST again")
    description = f"MNIST train ({len(labels):,} digits, {where})"
    return _to_dataset(images, labels, target, "mnist", description, None)
