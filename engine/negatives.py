"""Negative data for ff mode, and the goodness a network gives each label of an image.

Four strategies (Config.negatives), every one tensor work on the data's device, no host round trip:

* wrong-label: the image with a uniformly drawn wrong label (engine/inputs.py; the report's).
* hard: the image with the wrong label of the highest summed goodness under the network as it is
  before the batch's step (the labels are scored as the classifier scores them, `label_goodness`).
* shuffled: the image with the label of another sample of the batch whose label differs from its own,
  drawn uniformly among those by rejection (32 rounds; a sample left without one, when nearly every
  sample of the batch has its label, gets a uniformly drawn wrong label).
* hybrid: Hinton's (2022) negatives for the unsupervised variant: the image mixed with another digit
  of a different label (drawn as for shuffled) through a mask made from random bits blurred
  `MASK_BLURS` times by [1/4, 1/2, 1/4] horizontally and vertically, thresholded at 1/2. No label is
  written: the label head (the first 10 pixels) is cleared in positives and negatives alike.

The first three write the negative's label exactly as `engine.inputs.assemble` writes any label (they
hand it the offsets), so a negative differs from its positive in the label head alone."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .inputs import LABEL_PIXELS, assemble, draw_label_shift_, unit_rows, unit_rows_

Tensor = torch.Tensor

CLASSES = 10
MASK_BLURS = 6
SHUFFLE_ROUNDS = 32
SIDE = 28


def check_labels(cfg, labels: Tensor) -> None:
    """ConfigError (one line) when cfg's negatives need labels the data lack: every ff strategy but
    hybrid writes labels; shuffled and hybrid draw a partner of another class, hard scores 10."""
    from .config import ConfigError

    if cfg.mode != "ff":
        return
    if labels is None or labels.numel() == 0:
        raise ConfigError(f"negatives {cfg.negatives} need labelled digits; the data have no labels")
    classes = int((torch.bincount(labels, minlength=CLASSES) > 0).sum())
    if classes < 2 and cfg.negatives in ("shuffled", "hybrid", "hard", "wrong-label"):
        raise ConfigError(f"negatives {cfg.negatives} need digits of at least two classes; the data hold one")


def with_label(pixels: Tensor, labels: Tensor, label_value: str = "one") -> Tensor:
    """Rows of pixels (N, m) with the label head written as assemble writes a positive's: the first
    10 pixels cleared, labels[i]'s pixel set to 1 ("one") or to the row's largest value before the
    head is cleared ("max"); rows scaled to unit length. A new tensor."""
    x = pixels.clone()
    largest = x.amax(dim=1, keepdim=True) if label_value == "max" else None
    head = x[:, :LABEL_PIXELS]
    head.zero_()
    where = labels.unsqueeze(1)
    if largest is None:
        head.scatter_(1, where, 1.0)
    else:
        head.scatter_(1, where, largest)
    return unit_rows_(x)


def summed_goodness(weights: Sequence[Tensor], x: Tensor, skip_first: bool = False) -> Tensor:
    """Per row of x, the goodness |h_l|_2^2 summed over the layers (all, or all but the first), each
    layer's input the unit-length activation of the layer below (x for the first). Shape (rows,)."""
    total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for layer, w in enumerate(weights):
        h = torch.relu(x @ w.T)
        if layer > 0 or not skip_first:
            total += torch.linalg.vecdot(h, h)
        if layer + 1 < len(weights):
            x = unit_rows(h)
    return total


def label_goodness(weights: Sequence[Tensor], pixels: Tensor, label_value: str = "one",
                   skip_first: bool = False) -> Tensor:
    """The summed goodness of each image (rows of pixels, N x m, as the pixel table holds them) with
    each of the 10 labels written in: (N, 10). All 10 N rows go through the network at once."""
    n = pixels.shape[0]
    labels = torch.arange(CLASSES, device=pixels.device).repeat_interleave(n)
    x = with_label(pixels.repeat(CLASSES, 1), labels, label_value)
    return summed_goodness(weights, x, skip_first).reshape(CLASSES, n).T


def hard_labels(weights: Sequence[Tensor], pixels: Tensor, labels: Tensor, label_value: str = "one",
                skip_first: bool = False) -> Tensor:
    """Per image, the wrong label of the highest summed goodness (ties: the lowest label). (N,)"""
    scores = label_goodness(weights, pixels, label_value, skip_first)
    scores.scatter_(1, labels.unsqueeze(1), -torch.inf)
    return scores.argmax(dim=1)


def other_label_partner(labels: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Per sample i, the index j of another sample of the batch with labels[j] != labels[i], uniform
    among them (rejection sampling, SHUFFLE_ROUNDS rounds), and whether one was found. (N,), (N,)."""
    n = labels.shape[0]
    partner = torch.zeros(n, dtype=torch.long, device=labels.device)
    found = torch.zeros(n, dtype=torch.bool, device=labels.device)
    for _ in range(SHUFFLE_ROUNDS):
        draw = torch.randint(0, n, (n,), generator=generator, device=labels.device)
        fits = (labels[draw] != labels) & ~found
        partner = torch.where(fits, draw, partner)
        found |= fits
    return partner, found


def shuffled_labels(labels: Tensor, generator: torch.Generator) -> Tensor:
    """Per sample, the label of another sample of the batch whose label differs (other_label_partner);
    where none was found, a uniformly drawn wrong label. Never the sample's own label. (N,)"""
    partner, found = other_label_partner(labels, generator)
    fallback = (labels + draw_label_shift_(torch.empty_like(labels), generator)) % CLASSES
    return torch.where(found, labels[partner], fallback)


def blurred_masks(count: int, generator: torch.Generator, device, dtype) -> Tensor:
    """count masks of 28 x 28 in {0, 1}, flattened (count, 784): random bits blurred MASK_BLURS times
    by [1/4, 1/2, 1/4] in both directions (edges replicated), then thresholded at 1/2."""
    bits = torch.randint(0, 2, (count, 1, SIDE, SIDE), generator=generator, device=device).to(dtype)
    kernel = torch.tensor([0.25, 0.5, 0.25], dtype=dtype, device=device)
    across, down = kernel.reshape(1, 1, 1, 3), kernel.reshape(1, 1, 3, 1)
    for _ in range(MASK_BLURS):
        bits = F.conv2d(F.pad(bits, (1, 1, 0, 0), mode="replicate"), across)
        bits = F.conv2d(F.pad(bits, (0, 0, 1, 1), mode="replicate"), down)
    return (bits > 0.5).to(dtype).reshape(count, SIDE * SIDE)


def hybrid_batch(table: Tensor, labels_table: Tensor, idx: Tensor, generator: torch.Generator) -> Tensor:
    """ff batch of hybrid negatives: N images, then N mixtures mask * image + (1 - mask) * partner
    (a digit of another label from the batch, other_label_partner; the image itself where none was
    found); the label head cleared in every row; rows of unit length. (2N, m)."""
    pixels = table[idx]
    partner, found = other_label_partner(labels_table[idx], generator)
    partner = torch.where(found, partner, torch.arange(idx.shape[0], device=idx.device))
    mask = blurred_masks(idx.shape[0], generator, pixels.device, pixels.dtype)
    if pixels.shape[1] != mask.shape[1]:
        raise ValueError(f"hybrid negatives need 28 x 28 images, not rows of {pixels.shape[1]}")
    mixed = pixels * mask + pixels[partner] * (1.0 - mask)
    x = torch.cat([pixels, mixed])
    x[:, :LABEL_PIXELS] = 0.0
    return unit_rows_(x)


def negative_batch(strategy: str, table: Tensor, labels_table: Tensor, idx: Tensor, generator: torch.Generator,
                   label_value: str = "one", weights: Sequence[Tensor] = (), skip_first: bool = False) -> Tensor:
    """The ff batch X (2N, m) of the images at idx under a strategy other than wrong-label (which the
    Batcher makes): N positives then N negatives. weights: the network's, for hard negatives."""
    if strategy == "hybrid":
        return hybrid_batch(table, labels_table, idx, generator)
    labels = labels_table[idx]
    if strategy == "hard":
        wrong = hard_labels(weights, table[idx], labels, label_value, skip_first)
    elif strategy == "shuffled":
        wrong = shuffled_labels(labels, generator)
    else:
        raise ValueError(f"no negative strategy {strategy!r} here")
    return assemble(table, labels_table, idx, (wrong - labels) % CLASSES, "ff", label_value)
