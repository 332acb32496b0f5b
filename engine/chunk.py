"""Consecutive batches' metrics kept as columns, their records on request, and their JSON lines."""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping

import numpy as np

from .metrics import (
    BATCH,
    BATCH_METRICS,
    GROUP,
    GROUP_METRICS,
    METRICS,
    SAMPLE,
    SAMPLE_METRICS,
    GroupStats,
    MetricsRecord,
)


class MetricsChunk:
    """r consecutive batches of one layout (mode, loss, groups, batch size), every metric of the
    declaration (engine/metrics.py) as a column of its declared dtype: BATCH metrics (r,), GROUP
    metrics (r, groups), SAMPLE metrics (r, groups, per); "str" metrics are one value for the chunk.
    Columns are read-only by convention: slices and records share their memory.

    Raises ValueError when a declared metric is missing, unknown names are given, or shapes differ."""

    __slots__ = ("groups", "per", "columns", "constants", "_rows")

    def __init__(self, groups: tuple[str, ...], per: int, columns: Mapping[str, object]) -> None:
        names = {m.name for m in METRICS}
        if columns.keys() != names:
            raise ValueError(f"a chunk needs every declared metric: missing {sorted(names - columns.keys())}, "
                             f"unknown {sorted(columns.keys() - names)}")
        self.groups = tuple(groups)
        self.per = per
        self.constants: dict[str, str] = {}
        self.columns: dict[str, np.ndarray] = {}
        rows = None
        for m in METRICS:
            value = columns[m.name]
            if m.dtype == "str":
                self.constants[m.name] = str(value)
                continue
            col = np.asarray(value)
            if m.dtype != "float" or col.dtype not in (np.float32, np.float64):
                col = np.asarray(col, dtype=m.dtype)  # "float": the run's float dtype, float64 if not one
            rows = col.shape[0] if rows is None else rows
            want = {BATCH: (rows,), GROUP: (rows, len(groups)), SAMPLE: (rows, len(groups), per)}[m.level]
            if col.shape != want:
                raise ValueError(f"metric {m.name} has shape {col.shape}, its chunk needs {want}")
            self.columns[m.name] = col
        self._rows = rows or 0

    def __len__(self) -> int:
        return self._rows

    def __repr__(self) -> str:
        return (f"MetricsChunk({self._rows} batches, {self.mode}, iterations {self.first_iteration}-"
                f"{self.last_iteration}, groups {self.groups}, {self.per} samples each)")

    def column(self, name: str) -> np.ndarray:
        """One metric over the chunk; a "str" metric repeated once per batch."""
        if name in self.constants:
            return np.full(self._rows, self.constants[name], dtype=object)
        return self.columns[name]

    @property
    def mode(self) -> str:
        """descent or ff, for every batch of the chunk."""
        return self.constants["mode"]

    @property
    def loss_name(self) -> str:
        """linear or logistic, for every batch of the chunk."""
        return self.constants["loss_name"]

    @property
    def first_iteration(self) -> int:
        """The iteration of the chunk's first batch (0 for an empty chunk)."""
        return int(self.columns["iteration"][0]) if self._rows else 0

    @property
    def last_iteration(self) -> int:
        """The iteration of the chunk's last batch (0 for an empty chunk)."""
        return int(self.columns["iteration"][-1]) if self._rows else 0

    def group_column(self, name: str, group: str) -> np.ndarray:
        """A GROUP or SAMPLE metric of one group: (r,) or (r, per)."""
        return self.columns[name][:, self.groups.index(group)]

    def slice(self, start: int | None, stop: int | None = None) -> MetricsChunk:
        """Batches start:stop as a chunk sharing this one's memory."""
        cut = slice(start, stop)
        columns: dict[str, object] = {name: col[cut] for name, col in self.columns.items()}
        columns.update(self.constants)
        return MetricsChunk(self.groups, self.per, columns)

    def record(self, k: int) -> MetricsRecord:
        """Batch k (negative counts from the end) as a record."""
        if not -self._rows <= k < self._rows:
            raise IndexError(f"batch {k} of a chunk of {self._rows}")
        k %= self._rows
        return self._records(range(k, k + 1))[0]

    def records(self) -> list[MetricsRecord]:
        """Every batch as a record, in order."""
        return self._records(range(self._rows))

    def _records(self, rows: range) -> list[MetricsRecord]:
        cut = slice(rows.start, rows.stop)
        batch = {m.name: self.columns[m.name][cut].tolist() for m in BATCH_METRICS if m.dtype != "str"}
        group = {m.name: self.columns[m.name][cut].tolist() for m in GROUP_METRICS}
        samples = {m.name: self.columns[m.name] for m in SAMPLE_METRICS}
        out = []
        for i, k in enumerate(rows):
            groups = {}
            for gi, name in enumerate(self.groups):
                values = {key: col[i][gi] for key, col in group.items()}
                values.update({key: col[k, gi] for key, col in samples.items()})
                groups[name] = GroupStats(name=name, **values)
            values = {key: col[i] for key, col in batch.items()}
            out.append(MetricsRecord(**values, **self.constants, groups=groups))
        return out

    @classmethod
    def concat(cls, chunks: list[MetricsChunk]) -> MetricsChunk:
        """Chunks of one layout laid end to end as one; ValueError for different layouts."""
        first = chunks[0]
        if any(c.groups != first.groups or c.per != first.per or c.constants != first.constants for c in chunks):
            raise ValueError("chunks of different layouts (mode, loss, groups, sizes) do not concatenate")
        columns: dict[str, object] = {n: np.concatenate([c.columns[n] for c in chunks]) for n in first.columns}
        columns.update(first.constants)
        return cls(first.groups, first.per, columns)

    @classmethod
    def from_records(cls, records: list[MetricsRecord]) -> MetricsChunk:
        """Records of one layout (same mode, loss, groups and group sizes) as one chunk; ValueError
        otherwise. Used for records made by hand (tests, replays)."""
        if not records:
            raise ValueError("a chunk needs at least one record")
        first = records[0]
        groups = tuple(first.groups)
        per = len(first.groups[groups[0]].actual)
        if any(_layout(r) != _layout(first) for r in records):
            raise ValueError("records of different layouts (mode, loss, groups, sizes) make different chunks")
        columns: dict[str, object] = {}
        for m in METRICS:
            if m.dtype == "str":
                columns[m.name] = getattr(first, m.name)
            elif m.level == BATCH:
                columns[m.name] = [getattr(r, m.name) for r in records]
            else:
                columns[m.name] = [[getattr(r.groups[g], m.name) for g in groups] for r in records]
        return cls(groups, per, columns)

    def lines(self, per_sample: bool = True) -> list[str]:
        """One line of metrics.jsonl per batch: every metric under its JSON key, the group metrics
        in an object per group (with its name), NaN and infinities as null, the per-sample arrays
        (floats to 7 significant digits) unless per_sample is False."""
        r = self._rows
        heads = _texts_by_row(BATCH_METRICS, self.columns, self.constants, r)
        parts_by_group = []
        for gi, name in enumerate(self.groups):
            start = f'{json.dumps(name)}:{{"name":{json.dumps(name)}'
            cells = {m.name: self.columns[m.name][:, gi] for m in GROUP_METRICS}
            rows = _texts_by_row(GROUP_METRICS, cells, {}, r, start)
            if per_sample:
                arrays = [_array_texts(m.key, self.columns[m.name][:, gi]) for m in SAMPLE_METRICS]
                rows = [row + "".join(texts) for row, *texts in zip(rows, *arrays, strict=True)]
            parts_by_group.append([row + "}" for row in rows])
        return [f'{head},"groups":{{{",".join(parts)}}}}}' for head, *parts in zip(heads, *parts_by_group, strict=True)]


def _layout(record: MetricsRecord) -> tuple:
    return (record.mode, record.loss_name, tuple((n, len(g.actual)) for n, g in record.groups.items()))


def _texts_by_row(metrics, columns, constants, rows: int, start: str = "") -> list[str]:
    """Per row, '{' (or start) and '"key":value' for each metric, comma-separated, no closing brace."""
    pieces = []
    for m in metrics:
        if m.dtype == "str":
            pieces.append([json.dumps(constants[m.name])] * rows)
        else:
            pieces.append(_scalar_texts(columns[m.name]))
    keys = [json.dumps(m.key) for m in metrics]
    template = start + "".join(f",{k}:%s" for k in keys) if start else "{" + ",".join(f"{k}:%s" for k in keys)
    return [template % values for values in zip(*pieces, strict=True)]


def _scalar_texts(col: np.ndarray) -> list[str]:
    """JSON text of each value: integers as integers, floats as Python writes them, non-finite as null."""
    values = col.tolist()
    if col.dtype.kind != "f":
        return [json.dumps(v) for v in values] if col.dtype.kind == "b" else list(map(str, values))
    texts = list(map(float.__repr__, values))
    if not np.isfinite(col).all():
        texts = [t if math.isfinite(v) else "null" for t, v in zip(texts, values, strict=True)]
    return texts


def _array_texts(key: str, block: np.ndarray) -> list[str]:
    """',"key":[...]' for each row of block (r x per): floats to 7 significant digits, NaN and
    infinities as null; integers and booleans as JSON writes them."""
    prefix = f",{json.dumps(key)}:"
    if block.dtype.kind != "f":
        dumps = json.JSONEncoder(separators=(",", ":")).encode
        return [prefix + dumps(row) for row in block.tolist()]
    per = block.shape[1]
    template = "[" + ",".join(["%.7g"] * per) + "]"
    out = []
    for row in block.tolist():
        text = template % tuple(row)
        if "n" in text:  # only "nan" and "inf" spell an n
            text = text.replace("-nan", "null").replace("nan", "null").replace("-inf", "null").replace("inf", "null")
        out.append(prefix + text)
    return out


def record_to_line(record: MetricsRecord, per_sample: bool = True) -> str:
    """One line of metrics.jsonl for one record (see MetricsChunk.lines)."""
    return MetricsChunk.from_records([record]).lines(per_sample)[0]


def chunks_from_records(records: Iterable[MetricsRecord]) -> list[MetricsChunk]:
    """Records as chunks: a new chunk where the layout changes or the iteration does not go up."""
    out: list[MetricsChunk] = []
    run: list[MetricsRecord] = []
    for rec in records:
        if run and (_layout(rec) != _layout(run[-1]) or rec.iteration <= run[-1].iteration):
            out.append(MetricsChunk.from_records(run))
            run = []
        run.append(rec)
    if run:
        out.append(MetricsChunk.from_records(run))
    return out


def records_of(chunks: Iterable[MetricsChunk]) -> list[MetricsRecord]:
    """Every batch of the chunks as a record, in order."""
    return [rec for chunk in chunks for rec in chunk.records()]
