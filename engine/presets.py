"""The report's four experiments (section 5) as presets: their exact parameters, the evaluation
at initialisation behind Figure 1, and the per-iteration series of Figures 2 and 3."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from . import theory
from .config import Config
from .data import Dataset
from .inputs import pixel_table, unit_rows
from .layer import forward, goodness, init_weights
from .metrics import FIGURE_METRICS, GROUPS, Metric, MetricsRecord


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    kind: str                      # "init": Theorem 1 at initialisation; "train": a training run
    config: Config                 # the report's parameters
    batch_sizes: tuple[int, ...] = ()
    claim: str = ""


FIG1B_SIZES = (2, 4, 8, 16, 32, 64, 128)

PRESETS: dict[str, Preset] = {
    "fig1a": Preset(
        "fig1a", "Figure 1A: Theorem 1 at initialisation, n = 128, N = 128", "init",
        Config(mode="descent", loss="linear", optimizer="sgd", lr=1e-3, momentum=0.0, width=128,
               batch_size=128, epochs=1),
        batch_sizes=(128,),
        claim="59,993 of 60,000 MNIST training digits (> 99.98 %) satisfy LHS < RHS"),
    "fig1b": Preset(
        "fig1b", "Figure 1B: the LHS < RHS ratio against the batch size N, n = 128", "init",
        Config(mode="descent", loss="linear", optimizer="sgd", lr=1e-3, momentum=0.0, width=128,
               batch_size=128, epochs=1),
        batch_sizes=FIG1B_SIZES,
        claim="the ratio rises with N"),
    "fig2": Preset(
        "fig2", "Figure 2: descent training, actually sparser vs Theorem 1 per iteration", "train",
        Config(mode="descent", loss="linear", optimizer="sgd", lr=1e-3, momentum=0.0, width=2000,
               batch_size=128, iters=938),
        claim="the sparser ratio and the Theorem-1 ratio fall together as training goes on"),
    "fig3": Preset(
        "fig3", "Figure 3: FF training, actually sparser vs Theorem 2, positives and negatives", "train",
        Config(mode="ff", loss="linear", optimizer="sgd", lr=1e-3, momentum=0.0, width=2000,
               batch_size=128, iters=2345),
        claim="the sparser ratio is above 50 % most of the time, for positives and for negatives"),
}


def preset_config(name: str, **overrides: Any) -> Config:
    """The preset's configuration with the user's overrides (strings as typed are fine)."""
    return PRESETS[name].config.replace(**overrides) if overrides else PRESETS[name].config


# -- Figure 1: Theorem 1 at initialisation ------------------------------------------------------
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
    table = pixel_table(dataset.images, dtype, cfg.standardize)
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
                      predicted_sparser=int(pred.sum()))


# -- Figures 2 and 3: per-iteration series ------------------------------------------------------
def _beyond_report(cfg: Config) -> bool:
    """A loss or optimiser other than the report's: the generalised predictor is worth a column."""
    return cfg.loss != "linear" or cfg.optimizer != "sgd" or bool(cfg.momentum)


def _figure_metrics(cfg: Config) -> tuple[Metric, ...]:
    return tuple(m for m in FIGURE_METRICS if m.name != "general_of_batch" or _beyond_report(cfg))


def figure_columns(cfg: Config) -> list[str]:
    """The figure's series (engine/metrics.py's FIGURE_METRICS): the report's ratios over all N
    samples of a batch, per group. With a loss or optimiser other than the report's, the
    generalised predictor's ratio is added beside the theorem's."""
    theorem = "theorem1" if cfg.mode == "descent" else "theorem2"
    prefixes = ("",) if cfg.mode == "descent" else tuple(f"{g}_" for g in GROUPS["ff"])
    cols = ["iteration"]
    for prefix in prefixes:
        cols += [prefix + m.figure.format(theorem=theorem) for m in _figure_metrics(cfg)]
    return cols


def figure_row(record: MetricsRecord, cfg: Config) -> list[float]:
    """One CSV row of figure_columns(cfg) from a record."""
    row: list[float] = [record.iteration]
    for name in GROUPS[cfg.mode]:
        group = record.groups[name]
        row += [getattr(group, m.name) for m in _figure_metrics(cfg)]
    return row


@dataclass
class SeriesSummary:
    """How a run's per-iteration ratios behaved, for the one-paragraph summary."""

    columns: list[str]
    rows: list[list[float]] = field(default_factory=list)

    def column(self, name: str) -> np.ndarray:
        i = self.columns.index(name)
        return np.array([r[i] for r in self.rows], dtype=float)

    def stats(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        n = len(self.rows)
        if not n:
            return out
        tenth = max(1, n // 10)
        for name in self.columns[1:]:
            v = self.column(name)
            out[name] = {
                "mean": float(np.nanmean(v)),
                "first_tenth": float(np.nanmean(v[:tenth])),
                "last_tenth": float(np.nanmean(v[-tenth:])),
                "above_half": float(np.nanmean(v > 0.5)),
            }
        return out

    def prediction_error(self, actual: str, predicted: str) -> dict[str, float]:
        """Per-iteration |predicted ratio - actual ratio|: mean, median, 90th percentile, signed mean."""
        d = self.column(predicted) - self.column(actual)
        return {"mean_abs": float(np.nanmean(np.abs(d))), "median_abs": float(np.nanmedian(np.abs(d))),
                "p90_abs": float(np.nanpercentile(np.abs(d), 90)), "mean_signed": float(np.nanmean(d))}
