"""The per-batch metrics record the engine publishes, and its JSON form."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
    step_time: float         # seconds for the training step (CUDA: the whole batch, averaged over its chunk)
    metrics_time: float      # seconds for the metrics on top of it (CUDA: 0, counted in step_time)

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


# -- the packed form: one vector per batch, made on the device, unpacked on the host -------------
HEAD = ("loss", "sign_flip", "l2_remainder")
GROUP_FIELDS = ("goodness", "sparsity", "silenced", "newly_silenced", "valid", "sparser", "theorem",
                "general", "agree_theorem", "agree_general")
SAMPLE_FIELDS = ("lhs", "rhs", "actual", "predicted_theorem", "predicted_general")


@dataclass(frozen=True)
class PackMeta:
    """What the host knows of a batch without asking the device: enough to unpack its vector.
    Layout: HEAD, then GROUP_FIELDS for each group (counts, except the first three), then
    SAMPLE_FIELDS rows of `batch` values each."""

    iteration: int
    epoch: int
    mode: str
    loss_name: str
    groups: tuple[str, ...]
    n_pos: int
    batch: int


def packed_size(meta: PackMeta) -> int:
    return len(HEAD) + len(meta.groups) * len(GROUP_FIELDS) + len(SAMPLE_FIELDS) * meta.batch


def unpack(vec: np.ndarray, meta: PackMeta, step_time: float, metrics_time: float) -> MetricsRecord:
    """Turn one packed vector back into a MetricsRecord; ratios are counts over valid samples."""
    vec = np.asarray(vec, dtype=np.float64)
    head = dict(zip(HEAD, vec[:len(HEAD)]))
    n_groups = len(meta.groups)
    stats = vec[len(HEAD):len(HEAD) + n_groups * len(GROUP_FIELDS)].reshape(n_groups, len(GROUP_FIELDS))
    rows = vec[len(HEAD) + n_groups * len(GROUP_FIELDS):].reshape(len(SAMPLE_FIELDS), meta.batch)
    per = meta.batch // n_groups
    groups = {}
    for gi, name in enumerate(meta.groups):
        st = dict(zip(GROUP_FIELDS, stats[gi]))
        r = rows[:, gi * per:(gi + 1) * per]
        valid = int(round(st["valid"]))

        def ratio(key: str) -> float:
            return st[key] / valid if valid else math.nan

        groups[name] = GroupStats(
            name=name, count=per, goodness=float(st["goodness"]), sparsity=float(st["sparsity"]),
            silenced=float(st["silenced"]), newly_silenced=int(round(st["newly_silenced"])), valid=valid,
            sparser=ratio("sparser"), theorem=ratio("theorem"), general=ratio("general"),
            agree_theorem=ratio("agree_theorem"), agree_general=ratio("agree_general"),
            lhs=r[0].astype(np.float32), rhs=r[1].astype(np.float32), actual=r[2].astype(np.int8),
            predicted_theorem=r[3] > 0.5, predicted_general=r[4] > 0.5)
    return MetricsRecord(
        iteration=meta.iteration, epoch=meta.epoch, mode=meta.mode, loss_name=meta.loss_name,
        loss=float(head["loss"]), groups=groups, sign_flip=float(head["sign_flip"]),
        l2_remainder=float(head["l2_remainder"]), step_time=step_time, metrics_time=metrics_time)
