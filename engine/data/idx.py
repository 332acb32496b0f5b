"""MNIST's IDX files: where a folder keeps them, how to read one, and how to check a training pair.

An IDX file is ``00 00 <type> <ndim>``, then ndim big-endian uint32 sizes, then the data in
row-major order; MNIST ships them gzipped. Only unsigned bytes (type 0x08) are read here, which
is all MNIST uses. Every problem is a ``DataError`` whose one-line message names the file.
"""
from __future__ import annotations

import errno
import gzip
import math
import os
import stat
import struct
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from .errors import DataError, describe

IMAGES_NAME = "train-images-idx3-ubyte"
LABELS_NAME = "train-labels-idx1-ubyte"
IMAGE_SIDE = 28
PIXELS = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10

_IDX_UBYTE = 0x08
_IDX_MAX_DIMS = 8
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20

_PAIR_NAMES = frozenset(n + ext for n in (IMAGES_NAME, LABELS_NAME) for ext in ("", ".gz"))

_Stream = IO[bytes] | gzip.GzipFile  # an open file, or the gzip stream over one


def find_idx_pair(folder: str | os.PathLike[str]) -> tuple[Path, Path] | None:
    """The (images, labels) training files in ``folder``, ``folder/MNIST/raw`` or ``folder/raw``.

    Names are ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``, each optionally
    ending in ``.gz``; the uncompressed file wins when both exist. Both files must be in the
    same folder. None when no folder holds the pair.
    """
    base = Path(folder).expanduser()
    for where in _layouts(base):
        images = _pick(where, IMAGES_NAME)
        labels = _pick(where, LABELS_NAME)
        if images is not None and labels is not None:
            return images, labels
    return None


def _layouts(base: Path) -> tuple[Path, Path, Path]:
    """The folders find_idx_pair looks in, in its order."""
    return base, base / "MNIST" / "raw", base / "raw"


def why_no_pair(folder: str | os.PathLike[str]) -> str:
    """One line saying why ``find_idx_pair(folder)`` found no pair: the folder is missing, a loop
    of links or not a folder; a file of the pair is a folder, a FIFO, a device, a link loop or a
    dangling link; only one file of the pair is there; or the two lie in different folders."""
    base = Path(folder).expanduser()
    expected = f"expected {IMAGES_NAME}[.gz] and {LABELS_NAME}[.gz]"
    problem = _not_usable(base)
    if problem == "missing":
        return f"the data folder {base} does not exist"
    if problem:
        return f"the data folder {base} is {problem}, not a folder"
    found: dict[str, list[Path]] = {IMAGES_NAME: [], LABELS_NAME: []}
    for where in _layouts(base):
        for name in found:
            for candidate in (where / name, where / f"{name}.gz"):
                problem = _not_usable(candidate)
                if problem is None:
                    found[name].append(candidate)
                elif problem != "missing":
                    return f"{candidate} is {problem}, not a file"
    images, labels = found[IMAGES_NAME], found[LABELS_NAME]
    if images and labels:
        return (f"the images file is in {images[0].parent} but the labels file in {labels[0].parent}; "
                "put both in one folder")
    if images or labels:
        have, lack = (images[0], LABELS_NAME) if images else (labels[0], IMAGES_NAME)
        return f"{have.parent} holds {have.name} but not {lack}[.gz]"
    return f"no MNIST training files in {base} ({expected})"


def _not_usable(path: Path) -> str | None:
    """None for a path that exists (links followed) and can be used as what it is; "missing";
    else what is wrong with it: a loop of links, a link to nothing, or a kind of file (for a
    path that is not a regular file or a folder, or not what the caller wants)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "a link to a missing file" if path.is_symlink() else "missing"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a loop of symbolic links"
        if exc.errno == errno.ENOTDIR:
            return "missing"
        return f"unreadable ({describe(exc)})"
    wanted = stat.S_ISDIR if path.name not in _PAIR_NAMES else stat.S_ISREG
    return None if wanted(info.st_mode) else file_kind(info.st_mode)


def _pick(folder: Path, name: str) -> Path | None:
    """``folder/name`` when it is a file, else ``folder/name.gz`` when that is, else None."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file of unsigned bytes, gzipped or raw, into a uint8 array of its shape.

    The file is gzipped when its name ends in ``.gz`` or it starts with the gzip magic. The
    header must be ``00 00 08 ndim`` followed by ndim big-endian uint32 sizes, and the data
    must hold exactly the product of the sizes in bytes: a truncated file, trailing bytes or
    a damaged gzip stream raise DataError naming the file. Before any data is read, the sizes
    are checked against what such a file can plausibly hold (see ``check_claimed_size``): a
    header claiming gigabytes (a sparse file, a gzip bomb) costs neither the memory nor the
    time to decompress it. Anything but a regular file (a folder, a FIFO, a device) is refused
    without being opened, so that nothing blocks or reads forever.
    """
    path = Path(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise DataError(f"MNIST file {path} is {file_kind(info.st_mode)}, not a file")
        with open(path, "rb") as raw:
            compressed = path.name.lower().endswith(".gz") or raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            stored = os.fstat(raw.fileno()).st_size
            if compressed:
                with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                    return _parse_idx(stream, path, stored, compressed=True)
            return _parse_idx(raw, path, stored, compressed=False)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"MNIST file {path} does not exist") from None
    except EOFError:
        raise DataError(f"corrupt MNIST file {path}: the gzip stream is cut short") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"corrupt MNIST file {path}: not valid gzip ({describe(exc)})") from None
    except OSError as exc:
        raise DataError(f"cannot read MNIST file {path}: {describe(exc)}") from None
    except MemoryError:
        raise DataError(f"cannot read MNIST file {path}: not enough memory") from None


def file_kind(mode: int) -> str:
    """What a file of this st_mode is, in words: "a folder", "a FIFO", "a device", ..."""
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a file"))
    return next((words for test, words in kinds if test(mode)), "not a regular file")


MAX_DATA_BYTES = 8 << 30
"""The most data bytes an IDX file may claim: 8 GiB, about 11 million 28 x 28 digits (MNIST's
training images are 47 MB; the largest sets in MNIST's format, EMNIST's, under 600 MB)."""
GZIP_MAX_RATIO = 64
"""How many times its compressed size a gzipped IDX file may claim to hold beyond
GZIP_SMALL_BYTES: digits compress about 5:1 (MNIST's images 4.8:1, its labels 2:1), while deflate
reaches 1032:1 on data that is all alike, which is what a gzip bomb is made of."""
GZIP_SMALL_BYTES = 64 << 20
"""Up to this many data bytes (MNIST's 47 MB, any test file) a gzipped file may claim whatever ratio."""


def check_claimed_size(path: Path, count: int, stored: int, compressed: bool) -> None:
    """DataError unless ``count`` data bytes (the product of the header's sizes) are plausible for
    the file: at most MAX_DATA_BYTES, and, for a gzip file of ``stored`` bytes, at most
    GZIP_MAX_RATIO times that (beyond GZIP_SMALL_BYTES); and no more than the memory available
    (engine/memory.py). Runs before any data is read."""
    if count > MAX_DATA_BYTES:
        raise DataError(f"corrupt MNIST file {path}: its header claims {count:,} bytes of data, more than "
                        f"the {MAX_DATA_BYTES >> 30} GiB an MNIST file can plausibly hold")
    if compressed and count > max(GZIP_SMALL_BYTES, GZIP_MAX_RATIO * stored):
        raise DataError(f"corrupt MNIST file {path}: its header claims {count:,} bytes of data, "
                        f"{count / max(stored, 1):,.0f} times the {stored:,}-byte gzip file (digits compress "
                        f"about 5:1; this looks like a gzip bomb)")
    from ..memory import available_memory, human_bytes

    room = available_memory("cpu")
    if room is not None and count > room:
        raise DataError(f"cannot read MNIST file {path}: its {count:,} bytes of data need more than the "
                        f"{human_bytes(room)} of memory available")


def _parse_idx(stream: _Stream, path: Path, stored: int, compressed: bool) -> np.ndarray:
    """The array an open IDX stream holds; ``path`` is only for the messages, ``stored`` is the
    size of the file on disk (compressed or not)."""
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
    if not compressed and stored != expected:
        raise DataError(f"corrupt MNIST file {path}: expected {expected} bytes, found {stored}")
    check_claimed_size(path, count, stored, compressed)
    body = np.empty(count, dtype=np.uint8)
    got = _read_into(stream, body)
    if got < count:
        found = header_len + got
        raise DataError(f"corrupt MNIST file {path}: expected {expected} bytes, found {found}")
    extra = _count_rest(stream, _CHUNK)  # counted up to a limit: a bomb's tail is never inflated
    if extra > _CHUNK:
        raise DataError(f"corrupt MNIST file {path}: expected {expected} bytes, found more than "
                        f"{expected + _CHUNK}")
    if extra:
        raise DataError(f"corrupt MNIST file {path}: expected {expected} bytes, found {expected + extra}")
    return body.reshape(shape)


def _read_upto(stream: _Stream, n: int) -> bytes:
    """Up to ``n`` bytes; fewer only when the stream ends first."""
    parts = []
    while n > 0:
        piece = stream.read(n)
        if not piece:
            break
        parts.append(piece)
        n -= len(piece)
    return b"".join(parts)


def _count_rest(stream: _Stream, limit: int) -> int:
    """How many bytes are left in ``stream``, counting no further than ``limit`` + 1."""
    total = 0
    while total <= limit:
        piece = stream.read(limit + 1 - total)
        if not piece:
            break
        total += len(piece)
    return total


def _read_into(stream: _Stream, body: np.ndarray) -> int:
    """Fill ``body`` (uint8, already sized to what the header claims) from the stream in chunks;
    returns how many bytes it got (fewer only when the stream ends first)."""
    view = memoryview(body.data).cast("B")
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:got + _CHUNK])  # type: ignore[union-attr]  # every binary file has it
        if not n:
            break
        got += n
    return got


def read_training_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and check a training pair: uint8 images of shape (S, 28, 28), uint8 labels (S,) in 0..9.

    DataError (naming the file) when either file cannot be read, an array has another shape,
    the counts differ, there are no digits, or a label is 10 or more.
    """
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
