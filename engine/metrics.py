"""The metrics of a batch, declared once: name, level, dtype, meaning, summary and JSON key.

Everything downstream reads this declaration: the host derivation fills one column per metric
(engine/derive.py), a chunk keeps them (engine/chunk.py), the JSON lines, the headless summary and
the UI's history take their keys and order from it, and the record objects below take their fields
from it. A record is built only where a caller asks for one (`MetricsChunk.record`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

BATCH = "batch"    # one value per batch
GROUP = "group"    # one value per group of a batch: positives "pos", negatives "neg", or "all"
SAMPLE = "sample"  # one value per sample of a group

# a group's samples: ff batches are positives then negatives; descent batches are one group
GROUPS = {"ff": ("pos", "neg"), "descent": ("all",)}


@dataclass(frozen=True)
class Metric:
    """One metric. dtype is a numpy dtype name, "float" for the run's own float dtype (float32 or
    float64: per-sample values kept as the run computed them), or "str" for a value that is
    constant over a chunk (the run's mode and loss). summary: its mean over the batches where it is finite is in the
    headless summary; label: how the summary line writes that mean, "{:.3f}" where the number goes
    ("" leaves it out of the line), at position label_at of the line. key: its JSON key
    (the recorded run's files), the name unless given. figure: its column in the CSV of Figures 2 and 3,
    per group ("{theorem}" stands for theorem1 in descent mode, theorem2 in ff mode); "" if none.
    low, high: the least and the greatest value the metric can take where that is a fact of its
    definition (0 for fractions, norms and goodness, 1 for fractions and Hoyer sparsity), else
    None; plots never pad an axis past them."""

    name: str
    level: str
    dtype: str
    meaning: str
    summary: bool = False
    label: str = ""
    label_at: int = 0
    key: str = ""
    figure: str = ""
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.name)


# Ratios count only valid samples (active before and after the step); silenced samples are counted
# apart and never called sparser or not sparser. A ratio over no valid sample is NaN. The order is
# the order of the JSON keys.
METRICS: tuple[Metric, ...] = (
    Metric("iteration", BATCH, "int64", "1-based count of steps taken since the last reset"),
    Metric("epoch", BATCH, "int64", "1-based epoch of the batch"),
    Metric("mode", BATCH, "str", "descent (Theorem 1) or ff (Theorem 2)"),
    Metric("loss_name", BATCH, "str", "the loss: linear or logistic"),
    Metric("loss", BATCH, "float64", "the batch loss L"),
    Metric("sign_flip", BATCH, "float64", "fraction of pre-activations whose sign changed in the step",
           low=0.0, high=1.0),
    Metric("l2_remainder", BATCH, "float64", "sum |actual d|h|_2 - first-order d|h|_2| / sum |first-order| "
           "over valid samples (eq. 36's neglected terms)", low=0.0),
    Metric("step_time", BATCH, "float64", "seconds for the training step (CUDA: the whole batch, averaged "
           "over its chunk)"),
    Metric("metrics_time", BATCH, "float64", "seconds for the metrics on top of it (CUDA: 0, counted in "
           "step_time)"),
    Metric("count", GROUP, "int64", "samples in the group"),
    Metric("goodness", GROUP, "float64", "mean goodness |h|_2^2", low=0.0),
    Metric("sparsity", GROUP, "float64", "mean Hoyer sparsity of the active samples (NaN if none)",
           summary=True, label="; Hoyer sparsity {:.3f}", label_at=6, low=0.0, high=1.0),
    Metric("silenced", GROUP, "float64", "fraction with h = 0 before the step", summary=True,
           label=", silenced {:.3f}", label_at=7, low=0.0, high=1.0),
    Metric("newly_silenced", GROUP, "int64", "samples active before and all zero after the step"),
    Metric("valid", GROUP, "int64", "samples active before and after: the denominator of the ratios",
           summary=True),
    Metric("sparser", GROUP, "float64", "fraction of valid samples with S(h') > S(h)", summary=True,
           label="sparser {:.3f}", label_at=1, low=0.0, high=1.0),
    Metric("theorem", GROUP, "float64", "fraction predicted sparser by the report's theorem (c = +-1)",
           summary=True, label=", predicted by the report's theorem {:.3f}", label_at=2, low=0.0, high=1.0),
    Metric("general", GROUP, "float64", "fraction predicted sparser by the generalised first-order "
           "predictor", summary=True, label=", by the generalised predictor {:.3f}", label_at=4, low=0.0, high=1.0),
    Metric("agree_theorem", GROUP, "float64", "fraction where the theorem's prediction equals the outcome",
           summary=True, label=" (agreement {:.3f})", label_at=3, low=0.0, high=1.0),
    Metric("agree_general", GROUP, "float64", "fraction where the generalised prediction equals the outcome",
           summary=True, label=" (agreement {:.3f})", label_at=5, low=0.0, high=1.0),
    Metric("unresolved", GROUP, "int64", "valid samples whose outcome a float64 measurement from the "
           "run's weights cannot decide within its rounding bound", summary=True),
    Metric("zero_step", GROUP, "int64", "valid samples of a batch whose weight change was exactly zero "
           "(W' = W): unchanged, never sparser", summary=True),
    Metric("sparser_of_batch", GROUP, "float64", "the report's ratio: samples that became sparser over "
           "all samples of the group", figure="sparser", low=0.0, high=1.0),
    Metric("theorem_of_batch", GROUP, "float64", "samples the theorem predicts sparser over all samples "
           "(silenced never are)", figure="{theorem}", low=0.0, high=1.0),
    Metric("general_of_batch", GROUP, "float64", "samples the generalised predictor predicts sparser "
           "over all samples", figure="general", low=0.0, high=1.0),
    Metric("lhs", SAMPLE, "float", "the theorem's left side as the report writes it (NaN when silenced)"),
    Metric("rhs", SAMPLE, "float", "the theorem's right side (NaN when silenced)"),
    Metric("actual", SAMPLE, "int8", "1 became sparser, 0 did not, -1 not valid"),
    Metric("predicted_theorem", SAMPLE, "bool", "predicted sparser by the theorem"),
    Metric("predicted_general", SAMPLE, "bool", "predicted sparser by the generalised predictor"),
)

BY_NAME = {m.name: m for m in METRICS}
BATCH_METRICS = tuple(m for m in METRICS if m.level == BATCH)
GROUP_METRICS = tuple(m for m in METRICS if m.level == GROUP)
SAMPLE_METRICS = tuple(m for m in METRICS if m.level == SAMPLE)
# the numbers a run's summary averages over batches, per group; those its line writes, in order
SUMMARY_METRICS = tuple(m for m in GROUP_METRICS if m.summary)
SUMMARY_LINE = tuple(sorted((m for m in SUMMARY_METRICS if m.label), key=lambda m: m.label_at))
# the per-iteration series of the report's Figures 2 and 3 (the presets' CSV columns)
FIGURE_METRICS = tuple(m for m in GROUP_METRICS if m.figure)


class _Fields:
    """Read-only named values whose names come from the declaration above."""

    __slots__ = ("_values",)
    FIELDS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **values: Any) -> None:
        if values.keys() != set(self.FIELDS):
            missing = [n for n in self.FIELDS if n not in values]
            extra = sorted(set(values) - set(self.FIELDS))
            raise TypeError(f"{type(self).__name__}: missing {missing}, unknown {extra}")
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_values":
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only; use replace()")

    def __reduce__(self):
        return (_rebuild, (type(self), self._values))

    def __dir__(self):
        return [*super().__dir__(), *self.FIELDS]

    def replace(self, **changes: Any):
        """A copy with some fields changed."""
        return type(self)(**{**self._values, **changes})

    def as_dict(self) -> dict[str, Any]:
        """Every field by name (a copy)."""
        return dict(self._values)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self._values.items() if not isinstance(v, (np.ndarray, dict)))
        return f"{type(self).__name__}({shown})"


def _rebuild(cls, values):
    return cls(**values)


class GroupStats(_Fields):
    """One group of one batch: its name, every GROUP metric (a number) and every SAMPLE metric (a
    numpy array of the group's samples), as declared in METRICS."""

    __slots__ = ()
    FIELDS = ("name", *(m.name for m in GROUP_METRICS), *(m.name for m in SAMPLE_METRICS))


class MetricsRecord(_Fields):
    """Everything measured on one batch: every BATCH metric as declared in METRICS, and `groups`,
    the batch's GroupStats by group name."""

    __slots__ = ()
    FIELDS = (*(m.name for m in BATCH_METRICS), "groups")

    @property
    def batch_time(self) -> float:
        """Seconds for the batch: the step and its metrics."""
        return self.step_time + self.metrics_time
