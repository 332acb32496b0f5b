"""MNIST's IDX files: where a folder keeps them, how to read one, and how to check a training pair.

An IDX file is ``00 00 <type> <ndim>``, then ndim big-endian uint32 sizes, then the data in
row-major order; MNIST ships them gzipped. Only unsigned bytes (type 0x08) are read here, which
is all MNIST uses. Every problem is a ``DataError`` whose one-line message names the file.
"""
from __future__ import annotations

import gzip
import io
import math
import os
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

_Stream = IO[bytes] | gzip.GzipFile  # an open file, or the gzip stream over one


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
        raise DataError(f"corrupt MNIST file {path}: not valid gzip ({describe(exc)})") from None
    except OSError as exc:
        raise DataError(f"cannot read MNIST file {path}: {describe(exc)}") from None
    except MemoryError:
        raise DataError(f"cannot read MNIST file {path}: not enough memory") from None


def _parse_idx(stream: _Stream, path: Path) -> np.ndarray:
    """The array an open IDX stream holds; ``path`` is only for the messages."""
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


def _stream_size(stream: _Stream) -> int | None:
    """The size of an uncompressed file on disk; None for a gzip stream."""
    if isinstance(stream, gzip.GzipFile):
        return None
    try:
        return os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None


def _read_body(stream: _Stream, count: int) -> bytearray:
    """Up to ``count`` bytes, read in chunks so that a header claiming too much costs nothing."""
    body = bytearray()
    while len(body) < count:
        piece = stream.read(min(_CHUNK, count - len(body)))
        if not piece:
            break
        body += piece
    return body


def _count_rest(stream: _Stream) -> int:
    """How many bytes are left in ``stream``, read in chunks."""
    total = 0
    while True:
        piece = stream.read(_CHUNK)
        if not piece:
            return total
        total += len(piece)


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
