"""Figure 1 of the report: Theorem 1 (eq. 6) evaluated for every sample of the data set at
initialisation, in shuffled batches of N."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from . import theory
from .config import Config
from .data import Dataset
from .inputs import pixel_table, unit_rows
from .layer import forward, goodness, init_weights


@dataclass
class InitResult:
    """Theorem 1's sides for every sample of the data set under one batch size."""

    batch_size: int
    lhs: np.ndarray                # per sample |h|_1/|h|_2 (NaN when silenced)
    rhs: np.ndarray                # per sample P/Q (NaN when silenced or Q = 0)
    satisfied: int                 # samples with LHS < RHS
    silenced: int                  # samples with h = 0 (neither satisfied nor not)
    samples: int                   # every sample of the data set
    predicted_sparser: int = 0     # the product form P |h|_2 > |h|_1 Q (equals `satisfied` while Q > 0)
    width: int = 0                 # n, the layer's width

    @property
    def ratio(self) -> float:
        return self.satisfied / self.samples if self.samples else math.nan


def theorem1_at_init(dataset: Dataset, cfg: Config, batch_size: int,
                     progress: Callable[[int, int], None] | None = None) -> InitResult:
    """Feed the whole data set through a freshly initialised layer in shuffled batches of N and
    evaluate Theorem 1 (eq. 6) for every sample: LHS < RHS counted over all samples."""
    device = dataset.images.device
    dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
    wgen = torch.Generator(device=device).manual_seed(cfg.seed)
    dgen = torch.Generator(device=device).manual_seed(cfg.seed + 1_000_003)
    table = pixel_table(dataset.images, dtype, cfg.normalize)
    w = init_weights(cfg.width, table.shape[1], cfg.init, wgen, device, dtype)
    order = torch.randperm(table.shape[0], generator=dgen, device=device)
    lhs_parts, rhs_parts, pred_parts = [], [], []
    total = table.shape[0]
    # Many batches at once: a block of consecutive batches of N is one (batches, N, m) tensor, and
    # every batch's kernel is a slice of one batched product; a final partial batch goes alone.
    per_block = batch_size * max(1, 4096 // batch_size)
    start = 0
    with torch.inference_mode():
        while start < total:
            size = min(per_block, total - start)
            if size >= batch_size:
                size -= size % batch_size
            rows = table[order[start:start + size]]
            x = unit_rows(rows).view(-1, min(batch_size, size), rows.shape[1])
            _, h = forward(w, x)
            c = torch.ones(x.shape[:-1], dtype=dtype, device=device)
            p, q_scaled = theory.kernel_sums(theory.kernel_drive(theory.input_kernel(x), c, h), h)
            g = goodness(h)
            l1, l2 = h.sum(dim=-1), g.sqrt()
            lhs, rhs = theory.theorem1_sides(p, q_scaled, l1, l2)
            lhs_parts.append(lhs.reshape(-1))
            rhs_parts.append(rhs.reshape(-1))
            pred_parts.append(theory.kernel_prediction(p, q_scaled, l1, g).reshape(-1))
            start += size
            if progress is not None:
                progress(start, total)
    lhs_all = torch.cat(lhs_parts).cpu().numpy().astype(np.float64)
    rhs_all = torch.cat(rhs_parts).cpu().numpy().astype(np.float64)
    pred = torch.cat(pred_parts).cpu().numpy()
    silenced = int(np.isnan(lhs_all).sum())
    with np.errstate(invalid="ignore"):
        satisfied = int(np.sum(lhs_all < rhs_all))
    return InitResult(batch_size, lhs_all, rhs_all, satisfied, silenced, int(lhs_all.size),
                      predicted_sparser=int(pred.sum()), width=cfg.width)


