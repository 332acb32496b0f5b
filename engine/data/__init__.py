"""MNIST training data: find it, download it, check it, and put it on the device as one tensor.

Sources, in the order ``load_dataset(source="auto")`` tries them:

* the IDX files in a folder the user names (``data_dir``), never downloaded into and never
  replaced by the sample (any problem with it is an error);
* the IDX files in the per-user cache (``cache_dir()``), downloaded there from MNIST's mirrors
  when missing;
* the shipped 5,000-digit sample (``sample_dir()``), with a one-line note saying why.

Every file is parsed by ``read_idx`` so that full MNIST and the sample go through one reader,
and every problem surfaces as a ``DataError`` whose message is a single line for the user.

The package is split by concern: ``idx`` (the IDX reader and where a folder keeps the files),
``download`` (fetching into the cache), ``devices`` (``resolve_device``), ``loading`` (the
policy above and ``Dataset``) and ``errors``. Everything public is importable from here.
"""
from __future__ import annotations

from .devices import resolve_device
from .download import FILES, MIRRORS, download_mnist, failure_reason
from .errors import DataError, Unavailable
from .idx import IMAGE_SIDE, IMAGES_NAME, LABELS_NAME, NUM_CLASSES, PIXELS, find_idx_pair, read_idx, read_training_pair
from .loading import SOURCES, Dataset, cache_dir, load_dataset, sample_dir

__all__ = [
    "FILES", "IMAGES_NAME", "IMAGE_SIDE", "LABELS_NAME", "MIRRORS", "NUM_CLASSES", "PIXELS", "SOURCES",
    "DataError", "Dataset", "Unavailable", "cache_dir", "download_mnist", "failure_reason", "find_idx_pair",
    "load_dataset", "read_idx", "read_training_pair", "resolve_device", "sample_dir",
]
