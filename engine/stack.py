"""A stack of FF layers (Config.widths): each layer trained by its own loss on its own input, the
unit-length activation of the layer below (held fixed during the layer's step: the report's setting,
assumption 4), with its own weights, optimiser state and learning rate (lr times its layer_lr); every
layer steps on every batch, on the same positives and negatives.

Per layer, every metric of engine/metrics.py is measured with the layer's input held fixed, by
engine/step.py's train_math and measure as they are (a layer's packed vector is its PackMeta's).
Beside them, the end-to-end outcome (STACK_METRICS): once every layer has stepped, the batch goes
through the new network (each layer's input the new unit-length activation of the new layer below)
and each sample's activation at layer l is compared with its activation before the step. For the
first layer the input does not move; above it, how often the theorem (made with the fixed input)
still predicts the outcome is a measurement of its own.

A batch's vector is its layers' packed vectors in order, then per layer END (|h''|_1, |h''|_2^2 and
the active units of the end-to-end activation h''). A stack runs eagerly: the CUDA graph captures
one layer only."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch

from .chunk import MetricsChunk
from .config import Config
from .derive import _group_counts, derive, one_mkl_thread
from .inputs import unit_rows
from .layer import Optimizer
from .layout import Layout, Packed, PackMeta
from .metrics import BATCH, GROUP, METRICS, SAMPLE, SUMMARY_METRICS, Metric
from .step import StepPlan

Tensor = torch.Tensor

END: tuple[Packed, ...] = (
    Packed("l1_end", SAMPLE, "real", "|h''|_1: the activation once every layer has stepped, from the new input"),
    Packed("goodness_end", SAMPLE, "real", "|h''|_2^2 of that activation"),
    Packed("units_end", SAMPLE, "count", "its active units"),
)

# The end-to-end metrics, per layer (declared once; every layer has each).
STACK_METRICS: tuple[Metric, ...] = (
    Metric("input_silenced", GROUP, "int64", "samples whose input to the layer is the zero vector (silenced "
           "at the layer below; 0 at the first layer)"),
    Metric("valid_end", GROUP, "int64", "samples active before the step and after every layer stepped"),
    Metric("sparser_end", GROUP, "float64", "fraction of valid_end samples whose activation became sparser "
           "once every layer had stepped (the input moved)", summary=True, low=0.0, high=1.0),
    Metric("agree_theorem_end", GROUP, "float64", "fraction of valid_end samples where the theorem's prediction "
           "(made with the input held fixed) equals that outcome", summary=True, low=0.0, high=1.0),
    Metric("agree_general_end", GROUP, "float64", "the same for the generalised predictor", summary=True,
           low=0.0, high=1.0),
    Metric("actual_end", SAMPLE, "int8", "1 sparser once every layer stepped, 0 not, -1 not valid"),
)
STACK_BY_NAME = {m.name: m for m in STACK_METRICS}
# A layer's own BATCH metrics (its loss, its sign flips...): those every layer of a batch shares
# (the iteration, the epoch, the timings of the whole step) are the first layer's.
LAYER_BATCH_METRICS: tuple[Metric, ...] = tuple(
    m for m in METRICS if m.level == BATCH and m.dtype != "str"
    and m.name not in ("iteration", "epoch", "step_time", "metrics_time"))


def layer_config(cfg: Config, layer: int) -> Config:
    """cfg as layer `layer` sees it: its width and its learning rate (lr times its multiplier), as a
    one-layer configuration (which layers the classifier scores is the network's, not the layer's)."""
    width, lr = cfg.layer_widths[layer], cfg.layer_rates[layer]
    if width == cfg.width and lr == cfg.lr:
        return cfg
    return cfg._with_parsed({"width": width, "lr": lr, "widths": None, "layer_lr": None, "score_layers": "all"})


@dataclass
class UpperLayer:
    """A layer above the first: its weights (n_l x n_{l-1}), optimiser and step plan."""

    w: Tensor
    optimizer: Optimizer
    plan: StepPlan


def new_optimizer(cfg: Config, layer: int) -> Optimizer:
    """The optimiser of layer `layer` (its own state, its own learning rate)."""
    return Optimizer(cfg.optimizer, cfg.layer_rates[layer], cfg.momentum, cfg.weight_decay, cfg.beta1, cfg.beta2)


def end_to_end(weights: Sequence[Tensor], x: Tensor) -> list[dict[str, Tensor]]:
    """Per layer, END's quantities of the batch x through the network `weights` (after the step)."""
    out = []
    for w in weights:
        h = torch.relu(x @ w.T)
        out.append({"l1_end": h.sum(dim=1), "goodness_end": torch.linalg.vecdot(h, h),
                    "units_end": (h > 0).sum(dim=1).to(x.dtype)})
        x = unit_rows(h)
    return out


@dataclass(frozen=True)
class StackMeta:
    """What the host needs to derive a stack's batches: each layer's PackMeta, in order."""

    metas: tuple[PackMeta, ...]
    batch: int
    sizes: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", tuple(m.layout.size for m in self.metas))

    @cached_property
    def end_layout(self) -> Layout:
        return Layout(END, self.batch)

    @cached_property
    def layout(self) -> _Size:
        return _Size(sum(self.sizes) + len(self.metas) * self.end_layout.size)

    def derive_block(self, block: np.ndarray, iterations, epochs, step_time, metrics_time) -> StackChunk:
        """The StackChunk of r batches (block: r x layout.size)."""
        chunks, end_parts, offset = [], [], 0
        for meta, size in zip(self.metas, self.sizes, strict=True):
            part = np.ascontiguousarray(block[:, offset:offset + size])
            chunks.append((derive(part, meta, iterations, epochs, step_time, metrics_time), meta.layout.unpack(part)))
            offset += size
        end_size = self.end_layout.size
        for _ in self.metas:
            end_parts.append(self.end_layout.unpack(np.ascontiguousarray(block[:, offset:offset + end_size])))
            offset += end_size
        extras = []
        below_silenced = None
        for (chunk, packed), end in zip(chunks, end_parts, strict=True):
            extras.append(_end_columns(chunk, packed, end, below_silenced))
            below_silenced = packed["goodness"] <= 0
        first = chunks[0][0]
        return StackChunk(first, tuple(c for c, _ in chunks), tuple(extras))


@dataclass(frozen=True)
class _Size:
    """The stand-in for a Layout where only the vector's size is asked (engine/derive.py derive_runs)."""

    size: int


def _end_columns(chunk: MetricsChunk, packed: dict[str, np.ndarray], end: dict[str, np.ndarray],
                 below_silenced: np.ndarray | None) -> dict[str, np.ndarray]:
    """STACK_METRICS' columns of one layer from its fixed-input chunk and packed quantities."""
    r = packed["goodness"].shape[0]
    groups, per = len(chunk.groups), chunk.per
    with one_mkl_thread(), np.errstate(all="ignore"):
        g, l1, units = packed["goodness"], packed["l1"], packed["units"]
        g_end, l1_end, units_end = end["goodness_end"], end["l1_end"], end["units_end"]
        l2, l2_end = np.sqrt(g), np.sqrt(g_end)
        valid = (g > 0) & (g_end > 0)
        tie = (units == 1) & (units_end == 1)  # S = 1 before and after: never sparser
        sparser = (l1_end * l2 < l1 * l2_end) & valid & ~tie
        theorem = chunk.columns["predicted_theorem"].reshape(r, -1)
        general = chunk.columns["predicted_general"].reshape(r, -1)
        silenced_in = below_silenced if below_silenced is not None else np.zeros_like(valid)
        counts = _group_counts({"valid": valid, "sparser": sparser, "silenced_in": silenced_in,
                                "agree_theorem": ~(theorem ^ sparser) & valid,
                                "agree_general": ~(general ^ sparser) & valid}, groups, per)
        n_valid = counts["valid"]
        return {
            "input_silenced": counts["silenced_in"], "valid_end": n_valid,
            "sparser_end": counts["sparser"] / n_valid,
            "agree_theorem_end": counts["agree_theorem"] / n_valid,
            "agree_general_end": counts["agree_general"] / n_valid,
            "actual_end": np.where(valid, sparser.astype(np.int8), np.int8(-1)).reshape(r, groups, per),
        }


class StackChunk(MetricsChunk):
    """A stack's batches: as a MetricsChunk, the first layer's metrics (what a one-layer consumer
    reads); `layers`, every layer's MetricsChunk (layers[0] holds the same columns); `ends`, every
    layer's STACK_METRICS columns. `layer_column(name)` puts the layer axis second: a BATCH metric
    (r, L), a GROUP metric (r, L, groups), a SAMPLE metric (r, L, groups, per)."""

    __slots__ = ("layers", "ends")

    def __init__(self, first: MetricsChunk, layers: tuple[MetricsChunk, ...],
                 ends: tuple[dict[str, np.ndarray], ...]) -> None:
        columns: dict[str, object] = {**first.columns, **first.constants}
        super().__init__(first.groups, first.per, columns)
        self.layers = layers
        self.ends = ends

    def layer_column(self, name: str) -> np.ndarray:
        """Every layer's column of a metric of METRICS or STACK_METRICS, the layer axis second."""
        if name in STACK_BY_NAME:
            return np.stack([e[name] for e in self.ends], axis=1)
        return np.stack([c.column(name) for c in self.layers], axis=1)

    def slice(self, start: int | None, stop: int | None = None) -> StackChunk:
        cut = slice(start, stop)
        layers = tuple(c.slice(start, stop) for c in self.layers)
        ends = tuple({k: v[cut] for k, v in e.items()} for e in self.ends)
        return StackChunk(layers[0], layers, ends)

    @classmethod
    def concat(cls, chunks: list[MetricsChunk]) -> MetricsChunk:
        if not all(isinstance(c, StackChunk) and len(c.layers) == len(chunks[0].layers) for c in chunks):  # type: ignore[attr-defined]
            return MetricsChunk.concat([MetricsChunk.slice(c, None) for c in chunks])
        stacks = [c for c in chunks if isinstance(c, StackChunk)]
        layers = tuple(MetricsChunk.concat([c.layers[i] for c in stacks]) for i in range(len(stacks[0].layers)))
        ends = tuple({k: np.concatenate([c.ends[i][k] for c in stacks]) for k in stacks[0].ends[i]}
                     for i in range(len(layers)))
        return StackChunk(layers[0], layers, ends)

    def layer_summary_lines(self) -> list[list[dict]]:
        """Per batch, per layer: {"layer": l, every LAYER_BATCH_METRICS metric, "groups": {name: every
        GROUP metric and STACK_METRICS' group metrics}} (the run store's summary lines carry them
        under "layers")."""
        out: list[list[dict]] = []
        per_layer, per_batch = [], []
        for chunk, end in zip(self.layers, self.ends, strict=True):
            cells = {m.key: (chunk.columns[m.name] if m.name in chunk.columns else end[m.name]).tolist()
                     for m in _group_metrics()}
            per_layer.append(cells)
            per_batch.append({m.key: chunk.columns[m.name].tolist() for m in LAYER_BATCH_METRICS})
        for i in range(len(self)):
            row = []
            for layer, cells in enumerate(per_layer):
                row.append({"layer": layer, **{key: values[i] for key, values in per_batch[layer].items()},
                            "groups": {g: {key: values[i][gi] for key, values in cells.items()}
                                       for gi, g in enumerate(self.groups)}})
            out.append(row)
        return out


def _number(value: Any) -> float:
    """A summary line's value as a float: NaN for null (a ratio over no valid sample)."""
    return math.nan if value is None else float(value)


def _group_metrics() -> tuple[Metric, ...]:
    from .metrics import GROUP_METRICS

    return GROUP_METRICS + tuple(m for m in STACK_METRICS if m.level == GROUP)


class LayerSummary:
    """Per layer and group, the mean over batches (where finite) of the summary metrics and of
    STACK_METRICS' summary metrics, kept as running sums (memory stays flat)."""

    KEYS = tuple(m.name for m in SUMMARY_METRICS) + tuple(m.name for m in STACK_METRICS if m.summary)

    def __init__(self) -> None:
        self._sums: np.ndarray | None = None
        self._counts: np.ndarray | None = None
        self._groups: tuple[str, ...] = ()

    def add(self, chunk: MetricsChunk) -> None:
        if not isinstance(chunk, StackChunk):
            return
        values = np.stack([chunk.layer_column(k).astype(float) for k in self.KEYS])  # keys x r x L x groups
        finite = np.isfinite(values)
        sums, counts = np.where(finite, values, 0.0).sum(axis=1), finite.sum(axis=1)
        if self._sums is None or self._sums.shape != sums.shape:
            self._sums, self._counts, self._groups = np.zeros_like(sums), np.zeros_like(counts), chunk.groups
        assert self._counts is not None
        self._sums += sums
        self._counts += counts

    def add_records(self, records: Sequence[dict]) -> None:
        """Take batches as the run store's summary lines hold them (each a dict with "layers": per
        layer {"groups": {group: {key: value or None}}}, see StackChunk.layer_summary_lines), e.g. a
        resumed run's batches before its checkpoint; lines without "layers" (one layer) add nothing."""
        rows = [r["layers"] for r in records if r.get("layers")]
        if not rows:
            return
        groups = tuple(rows[0][0]["groups"])  # in the order the chunks held them
        values = np.array([[[[_number(layer["groups"][g].get(k)) for g in groups] for layer in row] for row in rows]
                           for k in self.KEYS], dtype=float)  # keys x r x L x groups
        finite = np.isfinite(values)
        sums, counts = np.where(finite, values, 0.0).sum(axis=1), finite.sum(axis=1)
        if self._sums is None or self._sums.shape != sums.shape:
            self._sums, self._counts, self._groups = np.zeros_like(sums), np.zeros_like(counts), tuple(groups)
        assert self._counts is not None
        self._sums += sums
        self._counts += counts

    def result(self) -> list[dict[str, dict[str, float]]]:
        """[per layer {group: {key: mean or NaN}}]; empty for a one-layer run."""
        if self._sums is None or self._counts is None:
            return []
        with np.errstate(all="ignore"):
            means = np.where(self._counts > 0, self._sums / np.maximum(self._counts, 1), np.nan)
        return [{g: {k: float(means[ki, layer, gi]) for ki, k in enumerate(self.KEYS)}
                 for gi, g in enumerate(self._groups)} for layer in range(means.shape[1])]


__all__ = ["END", "LAYER_BATCH_METRICS", "STACK_METRICS", "LayerSummary", "StackChunk", "StackMeta", "UpperLayer",
           "end_to_end", "layer_config", "new_optimizer"]
