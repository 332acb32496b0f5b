"""The goodness classifier's test error (Hinton 2022): every test digit with each of the 10 labels
written in as training writes them, the goodness summed over the layers (all, or all but the first),
the label of the highest sum. Test digits: MNIST's test split (10,000) when the run trains on MNIST;
on the shipped sample (500 digits of each class, sorted by class), every fifth digit (indices 4, 9,
14, ...: 100 of each class, HELD_OUT in all), which are then held out of training."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import Config
from .data import DataError, Dataset, cache_dir
from .data.idx import _pick, read_training_pair
from .data.loading import _to_dataset
from .negatives import label_goodness

Tensor = torch.Tensor

HELD_OUT = 1000          # digits of the shipped sample held out of training when evaluating
HELD_OUT_STRIDE = 5      # every fifth of its 5,000
TEST_NAMES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
EVAL_ROWS = 1000         # test digits scored at once (10 rows each)


@dataclass(frozen=True, eq=False)
class TestSet:
    """Digits the network never trains on: uint8 images (T, 784) and int64 labels (T,) on the
    training data's device; description says which in words (for every place the number appears)."""

    images: Tensor
    labels: Tensor
    description: str

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class Evaluation:
    """One evaluation: wrong of total test digits misclassified by the goodness classifier, after
    `iteration` batches; readout_wrong: those the linear readout (engine/readout.py) misclassifies
    on the same digits, None without one."""

    iteration: int
    epoch: int
    wrong: int
    total: int
    layers: str          # the layers summed: "all" or "skip-first"
    description: str     # the test digits
    readout_wrong: int | None = None

    @property
    def error(self) -> float:
        """The fraction misclassified (0 to 1)."""
        return self.wrong / self.total

    @property
    def readout_error(self) -> float | None:
        """The fraction the linear readout misclassifies (0 to 1); None without a readout."""
        return None if self.readout_wrong is None else self.readout_wrong / self.total

    def fields(self) -> dict:
        """The fields of the run's "evaluation" event, as headless runs record them (with a readout
        also "readout_error" and "readout_wrong")."""
        out = {"epoch": self.epoch, "test_error": self.error, "wrong": self.wrong, "total": self.total,
               "layers": self.layers, "digits": self.description}
        if self.readout_wrong is not None:
            out.update(readout_error=self.readout_error, readout_wrong=self.readout_wrong)
        return out

    def readout_text(self) -> str:
        """" (linear readout 3.1 %)" with a readout, else "" (to follow the goodness classifier's error)."""
        error = self.readout_error
        return "" if error is None else f" (linear readout {100 * error:.1f} %)"

    def sentence(self) -> str:
        """"test error 4.2 % after 1,200 iterations: 42 of 1,000 digits of ..." (one line); with a
        readout "test error 4.2 % (linear readout 3.1 %) after ..."."""
        return (f"test error {100 * self.error:.1f} %{self.readout_text()} after {self.iteration:,} iterations: "
                f"{self.wrong:,} of {self.description}")


def training_size(dataset: Dataset, cfg: Config) -> int:
    """How many of the dataset's images a run of cfg trains on: all of them, but for the shipped
    sample with cfg.evaluate, whose every fifth digit is held out (split_for_evaluation)."""
    if not cfg.evaluate or dataset.source != "sample":
        return dataset.size
    return dataset.size - len(range(HELD_OUT_STRIDE - 1, dataset.size, HELD_OUT_STRIDE))


def split_for_evaluation(dataset: Dataset, cfg: Config) -> tuple[Dataset, TestSet]:
    """(the digits to train on, the test digits). MNIST: all training digits, and the test split
    found beside them (cfg.data_dir, or the download cache); DataError (one line) when it is not
    there. The shipped sample: every fifth digit (HELD_OUT of its 5,000) to test, the others to train
    on."""
    if dataset.source == "sample":
        held = torch.zeros(dataset.size, dtype=torch.bool, device=dataset.device)
        held[HELD_OUT_STRIDE - 1::HELD_OUT_STRIDE] = True
        count = int(held.sum())
        keep = dataset.size - count
        if keep < 1 or count < 1:
            raise DataError(f"the sample has {dataset.size} digits: too few to hold every fifth out")
        train = Dataset(images=dataset.images[~held], labels=dataset.labels[~held], source=dataset.source,
                        description=f"{dataset.description}, {keep:,} of them for training",
                        note=dataset.note)
        test = TestSet(dataset.images[held], dataset.labels[held],
                       f"{count:,} digits of the shipped sample (every fifth), held out of training")
        return train, test
    folder = Path(cfg.data_dir).expanduser() if cfg.data_dir else cache_dir()
    found = None
    for where in (folder, folder / "MNIST" / "raw", folder / "raw"):
        images, labels = _pick(where, TEST_NAMES[0]), _pick(where, TEST_NAMES[1])
        if images is not None and labels is not None:
            found = images, labels
            break
    if found is None:
        raise DataError(f"MNIST's test split ({TEST_NAMES[0]}[.gz], {TEST_NAMES[1]}[.gz]) is not in {folder}; "
                        "evaluate needs it")
    images_np, labels_np = read_training_pair(*found)
    loaded = _to_dataset(images_np, labels_np.astype(np.int64), dataset.device, "mnist", "", None)
    return dataset, TestSet(loaded.images, loaded.labels, f"MNIST's {loaded.size:,} test digits")


def test_pixels(test: TestSet, train_images: Tensor, dtype: torch.dtype, normalize: str) -> Tensor:
    """The test digits as the training pixel table holds its own (engine/inputs.py pixel_table):
    pixels / 255, normalised with the training digits' statistics. (T, m)"""
    x = test.images.to(dtype).div_(255.0)
    if normalize == "none":
        return x
    train = train_images.to(dtype).div_(255.0)
    if normalize == "global":
        wide = train.double()
        mean, std = wide.mean(), wide.std()
        return (x - mean.to(dtype)) / (std.to(dtype) if std > 0 else torch.ones((), dtype=dtype, device=x.device))
    mean = train.mean(dim=0, keepdim=True)
    std = train.std(dim=0, keepdim=True)
    return (x - mean) / torch.where(std > 1e-8, std, torch.ones_like(std))


def count_wrong(weights: Sequence[Tensor], pixels: Tensor, labels: Tensor, label_value: str = "one",
                skip_first: bool = False, rows: int = EVAL_ROWS) -> Tensor:
    """How many test digits the goodness classifier gets wrong, as a 0-d tensor on the device (no
    host round trip): `rows` digits at a time, 10 N rows through the network each time."""
    wrong = torch.zeros((), dtype=torch.long, device=pixels.device)
    for start in range(0, pixels.shape[0], rows):
        scores = label_goodness(weights, pixels[start:start + rows], label_value, skip_first)
        wrong += (scores.argmax(dim=1) != labels[start:start + rows]).sum()
    return wrong
