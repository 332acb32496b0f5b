"""Inputs as the report assumes them (assumption 4, section 5.2): pixels in [0, 1], label one-hot in
the first 10 pixels, negatives with a uniformly drawn wrong label, every vector of unit length."""
from __future__ import annotations

import torch

Tensor = torch.Tensor

LABEL_PIXELS = 10


def pixel_table(images_u8: Tensor, dtype: torch.dtype, normalize: str = "none") -> Tensor:
    """The whole dataset, (S, m), as floats on its device: pixels / 255 in [0, 1], then normalised.

    normalize: "none" leaves them; "global" subtracts the mean of every pixel of every image and
    divides by their standard deviation (the scalar pair torchvision's MNIST examples hard-code as
    0.1307, 0.3081; computed here from the data set, in float64); "per-pixel" standardises each
    pixel over the images (a constant pixel keeps its centred value). ValueError for another word."""
    x = images_u8.to(dtype).div_(255.0)
    if normalize == "none":
        return x
    if normalize == "global":
        wide = x.double()
        mean, std = wide.mean(), wide.std()
        return (x - mean.to(dtype)) / (std.to(dtype) if std > 0 else torch.ones((), dtype=dtype, device=x.device))
    if normalize == "per-pixel":
        mean = x.mean(dim=0, keepdim=True)
        std = x.std(dim=0, keepdim=True)
        return (x - mean) / torch.where(std > 1e-8, std, torch.ones_like(std))
    raise ValueError(f"normalize must be none, global or per-pixel, not {normalize!r}")


def unit_rows(x: Tensor) -> Tensor:
    """Scale every row to unit L2 length (assumption 4); an all-zero row stays zero."""
    n = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    return x / torch.where(n > 0, n, torch.ones_like(n))


def unit_rows_(x: Tensor) -> Tensor:
    """unit_rows in place."""
    n = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    return x.div_(n.clamp_min_(torch.finfo(x.dtype).tiny))


class Batcher:
    """Index slices of a per-epoch permutation of the dataset held on the device (no DataLoader).

    An epoch has ceil(S / N) batches; the last may be smaller, as in the report (469 per MNIST epoch)."""

    def __init__(self, table: Tensor, labels: Tensor, generator: torch.Generator, label_value: str = "one") -> None:
        self.table = table
        self.labels = labels
        self.label_value = label_value
        self.generator = generator
        self.size = table.shape[0]
        self.epoch = 0
        self._perm = torch.randperm(self.size, generator=generator, device=table.device)
        self._pos = 0
        self.last: Tensor | None = None

    def next_indices(self, batch_size: int) -> Tensor:
        if self._pos >= self.size:
            self._perm = torch.randperm(self.size, generator=self.generator, device=self.table.device)
            self._pos = 0
            self.epoch += 1
        idx = self._perm[self._pos:self._pos + batch_size]
        self._pos += batch_size
        self.last = idx  # the batch's images (the linear readout reads its positives)
        return idx

    def remaining(self) -> int:
        """Images left in this epoch's order (a full epoch when it is used up)."""
        return self.size - self._pos if self._pos < self.size else self.size

    def batch(self, mode: str, batch_size: int) -> tuple[Tensor, Tensor, int]:
        """(X, true labels, number of positives). ff: N positives then the same N images with wrong
        labels; descent: N plain images. Rows have unit length."""
        idx = self.next_indices(batch_size)
        labels = self.labels[idx]
        shift = None if mode == "descent" else label_shift(labels.shape[0], self.generator, labels.device)
        return assemble(self.table, self.labels, idx, shift, mode, self.label_value), labels, idx.shape[0]


def label_shift(n: int, generator: torch.Generator, device) -> Tensor:
    """Offsets 1..9 drawn uniformly: (label + offset) mod 10 is never the true label."""
    return draw_label_shift_(torch.empty(n, dtype=torch.long, device=device), generator)


def draw_label_shift_(out: Tensor, generator: torch.Generator) -> Tensor:
    """label_shift drawn into an existing tensor (the same numbers from the same generator state)."""
    return out.random_(1, 10, generator=generator)


def assemble(table: Tensor, labels_table: Tensor, idx: Tensor, shift: Tensor | None, mode: str,
             label_value: str = "one") -> Tensor:
    """The batch X for the images at idx: descent, the plain images; ff, N positives (true label
    one-hot in the first 10 pixels) then the same N images with label (true + shift) mod 10.
    label_value: the label pixel holds 1 ("one", the report's) or the image's largest value before
    the head is written ("max", as the widely used PyTorch FF code writes it); the other nine
    head pixels are 0. Rows have unit length. Only tensor operations, so that it can be captured in
    a CUDA graph. Shapes: table (S, m), idx (N,), shift (N,) or None; X (N or 2N, m)."""
    pixels = table[idx]
    if mode == "descent":
        return unit_rows_(pixels)
    if shift is None:
        raise ValueError("ff mode needs the wrong-label offsets (shift)")
    labels = labels_table[idx]
    x = pixels.repeat(2, 1)
    where = torch.cat([labels, (labels + shift) % 10]).unsqueeze(1)
    largest = x.amax(dim=1, keepdim=True) if label_value == "max" else None  # before the head is cleared
    head = x[:, :LABEL_PIXELS]
    head.zero_()
    if largest is None:
        head.scatter_(1, where, 1.0)
    else:
        head.scatter_(1, where, largest)
    return unit_rows_(x)
