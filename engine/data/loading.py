"""Which digits a run trains on: the loading policy, its fallback to the shipped sample, and the
folders it looks in."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .devices import resolve_device
from .download import download_mnist
from .errors import DataError, Unavailable, describe
from .idx import IMAGES_NAME, LABELS_NAME, PIXELS, find_idx_pair, read_training_pair, why_no_pair

SOURCES = ("auto", "mnist", "sample")


@dataclass(frozen=True, eq=False)
class Dataset:
    """The training digits, resident on the device.

    ``images`` is one uint8 tensor of shape (S, 784) (rows are 28 x 28 digits, row-major) and
    ``labels`` one int64 tensor of shape (S,), both on the same device. ``source`` is ``"mnist"``
    or ``"sample"``; ``description`` says what and where in a few words; ``note`` is a one-line
    remark for the user (why the sample replaced MNIST), None when there is nothing to say.
    """

    images: torch.Tensor
    labels: torch.Tensor
    source: str
    description: str
    note: str | None = None

    @property
    def size(self) -> int:
        """S, the number of digits."""
        return int(self.labels.shape[0])

    @property
    def device(self) -> torch.device:
        """The device both tensors live on."""
        return self.images.device


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
    """The folder holding the shipped sample: ``engine/assets/mnist-sample`` in an installed
    package, else ``assets/mnist-sample`` in the checkout. DataError when neither holds it."""
    package = Path(__file__).resolve().parents[1]
    candidates = (package / "assets" / "mnist-sample", package.parent / "assets" / "mnist-sample")
    for folder in candidates:
        if (folder / f"{IMAGES_NAME}.gz").is_file() and (folder / f"{LABELS_NAME}.gz").is_file():
            return folder
    raise DataError(
        "the shipped MNIST sample is missing from this installation "
        f"(looked in {candidates[0]} and {candidates[1]}); reinstall fftui"
    )


def load_dataset(
    source: str = "auto",
    data_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    download: bool = True,
    timeout: float = 3.0,
) -> Dataset:
    """Load the training digits onto ``device`` (a name ``resolve_device`` accepts).

    ``source="sample"`` loads the shipped sample. ``source="mnist"`` loads the IDX pair from
    ``data_dir`` when given (never downloading into it), else from the cache, downloading it
    there when missing and ``download`` is true (``timeout`` seconds a request). ``source="auto"``
    does what ``"mnist"`` does; without ``data_dir`` it falls back to the sample, with a one-line
    ``note``, when MNIST is absent or cannot be downloaded, or when a cached file is corrupt. A
    folder the user named is never replaced by the sample: any problem with ``data_dir`` (no
    pair, half a pair, a folder or a FIFO in a file's place, a corrupt file) is an error.
    Every error is a DataError with a one-line message. A failed download
    is remembered beside the cache (`download_failures`): ``"auto"`` does not try again for 24 hours,
    ``"mnist"`` always tries.
    """
    choice = str(source).strip().lower()
    if choice not in SOURCES:
        raise DataError(f"unknown data source {source!r} (expected auto, mnist or sample)")
    target = resolve_device(device)
    if choice == "sample":
        return _sample_dataset(target)

    if data_dir is not None and str(data_dir).strip():
        # a folder the user named is never silently replaced by the sample: every problem is an error
        images, labels, where = _load_from_dir(data_dir)
    else:
        try:
            images, labels, where = _load_from_cache(download, timeout, retry=choice == "mnist")
        except Unavailable as exc:
            if choice == "mnist":
                raise
            return _sample_dataset(target, note=str(exc))
        except DataError as exc:
            if choice == "mnist":
                raise
            return _sample_dataset(target, note=f"{exc}; delete it to download MNIST again")
    description = f"MNIST train ({len(labels):,} digits, {where})"
    return _to_dataset(images, labels, target, "mnist", description, None)


def _load_from_dir(data_dir: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, Path]:
    """The pair in a folder the user named; DataError (one line: why) when it holds none."""
    folder = Path(data_dir).expanduser()
    pair = find_idx_pair(folder)
    if pair is None:
        raise DataError(why_no_pair(folder))
    images, labels = read_training_pair(*pair)
    return images, labels, pair[0].parent


def download_failures() -> Path:
    """The file that remembers the last failed MNIST download: beside `cache_dir()`."""
    return cache_dir().parent / "mnist-download-failed.json"


def _load_from_cache(download: bool, timeout: float, retry: bool = True) -> tuple[np.ndarray, np.ndarray, Path]:
    """The pair in the cache, downloaded first when missing and allowed (not again within a day of
    a failed attempt unless ``retry``)."""
    folder = cache_dir()
    pair = find_idx_pair(folder)
    if pair is None:
        if not download:
            raise Unavailable(f"MNIST is not in {folder} and downloading is turned off")
        download_mnist(folder, timeout, failures=download_failures(), retry=retry)
        pair = find_idx_pair(folder)
        if pair is None:
            raise Unavailable(
                f"MNIST is not in {folder} and could not be downloaded "
                "(the download finished without the training files)"
            )
    images, labels = read_training_pair(*pair)
    return images, labels, pair[0].parent


def _to_dataset(
    images: np.ndarray, labels: np.ndarray, device: torch.device, source: str, description: str,
    note: str | None,
) -> Dataset:
    """Flatten the digits to (S, 784), widen the labels to int64 and move both to ``device``."""
    flat = torch.from_numpy(images.reshape(images.shape[0], PIXELS))
    targets = torch.from_numpy(labels.astype(np.int64))
    try:
        flat = flat.to(device)
        targets = targets.to(device)
    except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
        raise DataError(f"cannot put the digits on {device}: {describe(exc)}") from None
    return Dataset(images=flat, labels=targets, source=source, description=description, note=note)


def _sample_dataset(device: torch.device, note: str | None = None) -> Dataset:
    """The shipped sample on ``device``; ``note`` (why it replaces MNIST) gains what it holds."""
    folder = sample_dir()
    images, labels = read_training_pair(folder / f"{IMAGES_NAME}.gz", folder / f"{LABELS_NAME}.gz")
    if note is not None:
        note = f"{note}; using the shipped {len(labels):,}-digit sample"
    description = f"shipped MNIST sample ({len(labels):,} digits)"
    return _to_dataset(images, labels, device, "sample", description, note)
