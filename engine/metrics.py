"""The per-batch metrics record the engine publishes, and its JSON form."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from . import theory

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
    unresolved: int = 0      # valid samples whose |h|_1/|h|_2 moved by less than the dtype can tell

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


_GROUP_ARRAYS = ("lhs", "rhs", "actual", "predicted_theorem", "predicted_general")
_OF_BATCH = ("sparser_of_batch", "theorem_of_batch", "general_of_batch")
_seven = "{:.7g}".format


def _scalar(value: Any) -> Any:
    """A number for JSON: NaN and infinities become null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _array_text(values: np.ndarray) -> str:
    """A per-sample array as JSON text: floats to 7 significant digits, NaN and infinities as null."""
    items = values.tolist()
    if values.dtype.kind != "f":
        return json.dumps(items, separators=(",", ":"))
    text = ",".join(map(_seven, items))
    if "n" in text:  # only "nan" and "inf" spell an n
        text = ",".join(_seven(v) if math.isfinite(v) else "null" for v in items)
    return "[" + text + "]"


def record_to_line(record: MetricsRecord, per_sample: bool = True) -> str:
    """One line of metrics.jsonl: every field of the record and of its groups, NaN as null, the
    per-sample arrays (floats to 7 significant digits) unless per_sample is False."""
    head = {name: _scalar(getattr(record, name)) for name in _RECORD_FIELDS}
    parts = []
    for name, grp in record.groups.items():
        fields = {key: _scalar(getattr(grp, key)) for key in _GROUP_SCALARS}
        for key in _OF_BATCH:
            fields[key] = _scalar(getattr(grp, key))
        text = json.dumps(fields, separators=(",", ":"))
        if per_sample:
            arrays = ",".join(f'"{key}":{_array_text(getattr(grp, key))}' for key in _GROUP_ARRAYS)
            text = f"{text[:-1]},{arrays}}}"
        parts.append(f"{json.dumps(name)}:{text}")
    return json.dumps(head, separators=(",", ":"))[:-1] + ',"groups":{' + ",".join(parts) + "}}"


_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(MetricsRecord) if f.name != "groups")
_GROUP_SCALARS = tuple(f.name for f in dataclasses.fields(GroupStats) if f.name not in _GROUP_ARRAYS)


# -- the packed form: one vector per batch, made on the device, unpacked on the host -------------
# The device ships only what needs the B x n activations: per sample the norms before and after the
# step and the theorem's sums. Every decision, side and count is derived on the host in float64,
# for a whole chunk of batches at once, so a batch costs the device a few dozen kernels.
HEAD = ("loss",)
ROWS = ("goodness", "l1", "goodness_after", "l1_after", "p", "q_scaled")
FIRST_ORDER_ROWS = ("fo_dl1", "fo_l2_scaled")
COUNT_ROWS = ("units", "units_after", "units_both", "shared")  # active units; m_i . sum_k m_k
RESOLUTION_EPS = 64  # a relative change below 64 machine epsilons of the packed dtype is unresolved


@dataclass(frozen=True)
class PackMeta:
    """What the host knows of a batch without asking the device: enough to unpack its vector.

    Layout: HEAD, then each of ROWS, FIRST_ORDER_ROWS (unless fo_scale is set) and COUNT_ROWS as
    `batch` values.
    fo_scale set means the applied pre-activation change is fo_scale * E (plain SGD, linear loss):
    the generalised first-order changes are then fo_scale * (P, |h|_2 Q) and its prediction is the
    theorem's."""

    iteration: int
    epoch: int
    mode: str
    loss_name: str
    groups: tuple[str, ...]
    n_pos: int
    batch: int
    width: int
    plain_sgd: bool  # the step's dZ is -2 lr E (- lr wd Z): a multiple of h_i on an unshared sample's units
    fo_scale: float | None = None

    @property
    def rows(self) -> int:
        return len(ROWS) + len(COUNT_ROWS) + (0 if self.fo_scale is not None else len(FIRST_ORDER_ROWS))

    def layout(self) -> tuple:
        """Batches with equal layouts unpack together."""
        return (self.mode, self.loss_name, self.groups, self.n_pos, self.batch, self.width, self.plain_sgd,
                self.fo_scale)


def packed_size(meta: PackMeta) -> int:
    return len(HEAD) + meta.rows * meta.batch


def unpack(vec: np.ndarray, meta: PackMeta, step_time: float, metrics_time: float) -> MetricsRecord:
    """Turn one packed vector back into a MetricsRecord; ratios are counts over valid samples."""
    return unpack_many(vec, [meta], step_time, metrics_time)[0]


def unpack_many(flat: np.ndarray, metas: list[PackMeta], step_time: float,
                metrics_time: float) -> list[MetricsRecord]:
    """The records of consecutive packed vectors laid end to end in `flat`, one per meta.
    Runs of equal layout are derived together, as arrays with one row per batch."""
    flat = np.asarray(flat)
    expected = sum(packed_size(m) for m in metas)
    if expected != flat.size:
        raise ValueError(f"packed metrics hold {flat.size} values, the batches describe {expected}")
    out: list[MetricsRecord] = []
    offset, i = 0, 0
    while i < len(metas):
        j = i + 1
        while j < len(metas) and metas[j].layout() == metas[i].layout():
            j += 1
        size = packed_size(metas[i])
        block = flat[offset:offset + size * (j - i)].reshape(j - i, size)
        out.extend(_derive(block, metas[i:j], step_time, metrics_time))
        offset += size * (j - i)
        i = j
    return out


def _derive(block: np.ndarray, metas: list[PackMeta], step_time: float,
            metrics_time: float) -> list[MetricsRecord]:
    """Records for batches of one layout; block has one packed vector per row."""
    meta = metas[0]
    r, n_groups = len(metas), len(meta.groups)
    per = meta.batch // n_groups
    t = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float64))
    rows = t[:, len(HEAD):].reshape(r, meta.rows, meta.batch)
    g, l1, g_after, l1_after, p, q_scaled = rows[:, :len(ROWS)].unbind(1)
    units, units_after, units_both, shared = rows[:, -len(COUNT_ROWS):].unbind(1)
    l2, l2_after = g.sqrt(), g_after.sqrt()
    active = l2 > 0
    alive_after = l2_after > 0
    valid = active & alive_after
    # Ties in exact arithmetic, which rounding must not decide: one active unit (S = 1), or no unit
    # shared with another sample (the theorem's sides are equal; plain SGD scales h_i on its units).
    single = theory.one_active_unit(units)
    alone = theory.shares_no_unit(shared, units) & active
    scaled = alone & meta.plain_sgd
    same_units = (units_after == units) & (units_both == units)
    unchanged = (single & theory.one_active_unit(units_after)) | (scaled & same_units)
    # S(h') > S(h)  <=>  |h'|_1 |h|_2 < |h|_1 |h'|_2 (eq. 10)
    sparser = (l1_after * l2 < l1 * l2_after) & valid & ~unchanged
    # A change of |h|_1/|h|_2 within rounding of the float sums is no measurement (not a tie)
    resolution = RESOLUTION_EPS * float(np.finfo(block.dtype).eps)
    unresolved = theory.below_resolution(l1, l2, l1_after, l2_after, resolution) & valid & ~unchanged
    sparsity = theory.hoyer_from_norms(l1, l2, meta.width)
    predicted_theorem = theory.kernel_prediction(p, q_scaled, l1, g) & active & ~(single | alone)
    if meta.fo_scale is not None:
        fo_l2_scaled = q_scaled * meta.fo_scale
        predicted_general = predicted_theorem
    else:
        fo_dl1, fo_l2_scaled = rows[:, len(ROWS):len(ROWS) + len(FIRST_ORDER_ROWS)].unbind(1)
        predicted_general = theory.predicts_sparser(fo_dl1, fo_l2_scaled, l1, g) & active & ~(single | scaled)
    sides = theory.theorem2_sides if meta.mode == "ff" else theory.theorem1_sides
    lhs, rhs = sides(p, q_scaled, l1, l2)
    remainder = theory.l2_remainder(l2, l2_after, fo_l2_scaled, valid)

    # per group: counts of active, newly silenced, valid, sparser, predicted (x2), agreeing (x2)
    flags = torch.stack([active, active & ~alive_after, valid, sparser, predicted_theorem & valid,
                         predicted_general & valid, ~(predicted_theorem ^ sparser) & valid,
                         ~(predicted_general ^ sparser) & valid, unresolved], dim=1)
    counts = flags.view(r, 9, n_groups, per).sum(dim=3).numpy()
    sums = torch.stack([g, torch.where(active, sparsity, 0.0)], dim=1).view(r, 2, n_groups, per).sum(dim=3).numpy()
    actual = torch.where(valid, sparser.to(torch.int8), -1).numpy()
    lhs32, rhs32 = lhs.to(torch.float32).numpy(), rhs.to(torch.float32).numpy()
    pt, pg = predicted_theorem.numpy(), predicted_general.numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_sparsity = (sums[:, 1] / counts[:, 0]).tolist()
        counts_valid = counts[:, 2]
        ratios = (counts[:, 3:8] / counts_valid[:, None]).transpose(0, 2, 1).tolist()  # NaN where nothing is valid
    goodness = (sums[:, 0] / per).tolist()
    n_active, newly, n_valid = counts[:, 0].tolist(), counts[:, 1].tolist(), counts_valid.tolist()
    n_unresolved = counts[:, 8].tolist()
    head = t[:, :len(HEAD)].tolist()
    remainder_list = remainder.tolist()
    flips = theory.sign_flips_from_counts(units, units_after, units_both, meta.batch * meta.width).tolist()
    cuts = [slice(gi * per, (gi + 1) * per) for gi in range(n_groups)]

    records = []
    for k, m in enumerate(metas):
        groups = {}
        for gi, name in enumerate(m.groups):
            cut = cuts[gi]
            sparser_r, theorem_r, general_r, agree_t, agree_g = ratios[k][gi]
            groups[name] = GroupStats(
                name, per, goodness[k][gi], mean_sparsity[k][gi], 1.0 - n_active[k][gi] / per,
                newly[k][gi], n_valid[k][gi], sparser_r, theorem_r, general_r, agree_t, agree_g,
                lhs32[k, cut], rhs32[k, cut], actual[k, cut], pt[k, cut], pg[k, cut], n_unresolved[k][gi])
        records.append(MetricsRecord(m.iteration, m.epoch, m.mode, m.loss_name, head[k][0], groups, flips[k],
                                     remainder_list[k], step_time, metrics_time))
    return records
