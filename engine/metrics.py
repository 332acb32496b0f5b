"""The per-batch metrics record the engine publishes, and its JSON form."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Order of the per-sample rows the trainer stacks before one host copy.
SAMPLE_ROWS = ("goodness", "sparsity", "silenced", "valid", "sparser", "theorem", "general", "lhs", "rhs")


@dataclass(frozen=True)
class GroupStats:
    """One group of a batch: positives ("pos"), negatives ("neg"), or the plain batch ("all").

    Ratios count only valid samples (active before and after the step); silenced samples are
    counted apart and never called sparser or not sparser. A ratio over no valid sample is NaN."""

    name: str
    count: int
    goodness: float          # mean |h|^2
    sparsity: float          # mean Hoyer sparsity of the active samples (NaN if none)
    silenced: float          # fraction with h = 0 before the step
    newly_silenced: int      # active before, all zero after the step
    valid: int               # active before and after: the denominator of the ratios below
    sparser: float           # fraction with S(h') > S(h)
    theorem: float           # fraction predicted sparser by the report's theorem (c = +-1)
    general: float           # fraction predicted sparser by the generalised first-order predictor
    agree_theorem: float     # fraction where the theorem's prediction equals the outcome
    agree_general: float     # fraction where the generalised prediction equals the outcome
    lhs: np.ndarray = field(repr=False)    # per sample, the theorem's left side as the report writes it
    rhs: np.ndarray = field(repr=False)    # per sample, its right side (NaN when silenced)
    actual: np.ndarray = field(repr=False)     # int8 per sample: 1 sparser, 0 not, -1 not valid
    predicted_theorem: np.ndarray = field(repr=False)  # bool per sample
    predicted_general: np.ndarray = field(repr=False)  # bool per sample

    @property
    def sparser_of_batch(self) -> float:
        """The report's ratio: samples that became sparser over all N samples of the group."""
        return float((self.actual == 1).sum()) / self.count if self.count else math.nan

    @property
    def theorem_of_batch(self) -> float:
        """Samples the report's theorem predicts sparser over all N samples (silenced never are)."""
        return float(self.predicted_theorem.sum()) / self.count if self.count else math.nan

    @property
    def general_of_batch(self) -> float:
        """Samples the generalised predictor predicts sparser over all N samples."""
        return float(self.predicted_general.sum()) / self.count if self.count else math.nan


@dataclass(frozen=True)
class MetricsRecord:
    """Everything measured on one batch, in plain numbers and small numpy arrays."""

    iteration: int           # 1-based count of steps taken since the last reset
    epoch: int               # 1-based epoch of this batch
    mode: str
    loss_name: str
    loss: float
    groups: dict[str, GroupStats]
    sign_flip: float         # fraction of pre-activations whose sign changed in the step
    l2_remainder: float      # sum |actual d|h|_2 - first-order d|h|_2| / sum |first-order| over valid samples
    step_time: float         # seconds for the training step
    metrics_time: float      # seconds for the metrics on top of it

    @property
    def batch_time(self) -> float:
        return self.step_time + self.metrics_time


def _significant(values: np.ndarray, digits: int = 7) -> np.ndarray:
    """Round to a number of significant digits, so that the JSON stays short; NaN stays NaN."""
    v = values.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.floor(np.log10(np.abs(v)))
        mag = np.where(np.isfinite(mag), mag, 0.0)
        scale = 10.0 ** (digits - 1 - mag)
        return np.round(v * scale) / scale


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            return [None if v != v else v for v in _significant(value).tolist()]
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def record_to_json(record: MetricsRecord, per_sample: bool = True) -> dict[str, Any]:
    """A JSON-ready dict: NaN becomes null; per-sample arrays are kept unless per_sample is False."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        if f.name == "groups":
            continue
        out[f.name] = _plain(getattr(record, f.name))
    groups = {}
    for name, grp in record.groups.items():
        d = {}
        for f in dataclasses.fields(grp):
            if not per_sample and isinstance(getattr(grp, f.name), np.ndarray):
                continue
            d[f.name] = _plain(getattr(grp, f.name))
        for name_ in ("sparser_of_batch", "theorem_of_batch", "general_of_batch"):
            d[name_] = _plain(getattr(grp, name_))
        groups[name] = d
    out["groups"] = groups
    return out


def group_from_rows(name: str, rows: np.ndarray, newly_silenced: int) -> GroupStats:
    """Summarise one group's per-sample rows (ordered as SAMPLE_ROWS) into GroupStats."""
    r = dict(zip(SAMPLE_ROWS, rows))
    count = rows.shape[1]
    valid = r["valid"] > 0.5
    n_valid = int(valid.sum())
    sparser = r["sparser"] > 0.5
    theorem = r["theorem"] > 0.5
    general = r["general"] > 0.5
    active = r["silenced"] < 0.5

    def frac(mask: np.ndarray) -> float:
        return float(mask[valid].sum()) / n_valid if n_valid else math.nan

    actual = np.where(valid, sparser.astype(np.int8), np.int8(-1)).astype(np.int8)
    return GroupStats(
        name=name,
        count=count,
        goodness=float(r["goodness"].mean()) if count else math.nan,
        sparsity=float(r["sparsity"][active].mean()) if active.any() else math.nan,
        silenced=float((~active).sum()) / count if count else math.nan,
        newly_silenced=newly_silenced,
        valid=n_valid,
        sparser=frac(sparser),
        theorem=frac(theorem),
        general=frac(general),
        agree_theorem=frac(theorem == sparser),
        agree_general=frac(general == sparser),
        lhs=r["lhs"].astype(np.float32),
        rhs=r["rhs"].astype(np.float32),
        actual=actual,
        predicted_theorem=theorem & active,
        predicted_general=general & active,
    )
