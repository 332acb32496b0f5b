"""What a run's files hold per batch, derived from the metrics declaration (engine/metrics.py): the
summary's JSON line, the per-sample arrays' Arrow schema and rows, and which batches keep their
per-sample arrays. No metric is named here; adding one to METRICS adds it to every file."""
from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa

from engine.chunk import MetricsChunk
from engine.metrics import BATCH_METRICS, GROUP_METRICS, SAMPLE_METRICS

from .files import StoreError

ITERATION = "iteration"  # the per-sample rows' link to the summary (a BATCH metric's key)
GROUP = "group"          # the per-sample rows' group name: pos, neg or all
LAYER = "layer"          # a stack's per-sample rows' layer (0 = the first); absent: layer 0


def summary_lines(chunk: MetricsChunk) -> bytes:
    """One JSON line per batch of the chunk (UTF-8, each ending in a newline): every BATCH metric
    under its key, then "groups": {name: {"name": name, every GROUP metric}}, in declared order;
    NaN and infinities as null. The keys of MetricsChunk.lines without the per-sample arrays."""
    rows = len(chunk)
    batch = []
    for m in BATCH_METRICS:
        if m.dtype == "str":
            batch.append((m.key, [chunk.constants[m.name]] * rows))
        else:
            batch.append((m.key, chunk.columns[m.name].tolist()))
    groups = [(name, [(m.key, chunk.columns[m.name][:, gi].tolist()) for m in GROUP_METRICS])
              for gi, name in enumerate(chunk.groups)]
    out = []
    dumps = orjson.dumps
    # a stack (engine/stack.py StackChunk): every layer's group metrics under "layers"
    layers = chunk.layer_summary_lines() if hasattr(chunk, "layer_summary_lines") else None
    for i in range(rows):
        record: dict = {key: values[i] for key, values in batch}
        record["groups"] = {name: {"name": name, **{key: values[i] for key, values in cells}}
                            for name, cells in groups}
        if layers is not None:
            record["layers"] = layers[i]
        out.append(dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) if layers is not None else dumps(record))
    out.append(b"")
    return b"\n".join(out)


def _arrow_type(dtype: str, float_dtype: str = "float32") -> pa.DataType:
    return pa.from_numpy_dtype(np.dtype(float_dtype if dtype == "float" else dtype))


def sample_schema(float_dtype: str = "float32", layered: bool = False) -> pa.Schema:
    """The per-sample arrays' schema: one row per group of a kept batch (per layer and group for a
    stack): iteration (int64), for a stack (layered) layer (int32, 0 = the first layer), group
    (string), and each SAMPLE metric under its key as a list of its declared dtype (one value per
    sample of the group; lists may differ in length between rows: a short last batch, a new batch
    size). float_dtype: the run's float dtype, for the metrics declared "float". A one-layer run's
    rows have no layer column (as every run's recorded before stacks were kept): they are layer 0."""
    fields = [pa.field(ITERATION, pa.int64(), nullable=False)]
    if layered:
        fields.append(pa.field(LAYER, pa.int32(), nullable=False))
    fields.append(pa.field(GROUP, pa.string(), nullable=False))
    fields += [pa.field(m.key, pa.list_(_arrow_type(m.dtype, float_dtype))) for m in SAMPLE_METRICS]
    return pa.schema(fields)


SAMPLE_SCHEMA = sample_schema()  # a float32 run's (and every run's recorded before float64 was kept)
SAMPLE_SCHEMAS = tuple(sample_schema(f, layered) for layered in (False, True) for f in ("float32", "float64"))


def with_layer(batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch | pa.Table:
    """Rows without a layer column (a one-layer run's, or any run's recorded before stacks kept
    every layer) with one: every row layer 0. Rows that have it are returned as they are."""
    if LAYER in batch.schema.names:
        return batch
    zeros = pa.array(np.zeros(batch.num_rows, dtype=np.int32))
    field = pa.field(LAYER, pa.int32(), nullable=False)
    return batch.add_column(batch.schema.get_field_index(GROUP), field, zeros)


def chunk_float_dtype(chunk: MetricsChunk) -> str:
    """The run's float dtype as its chunk holds the "float" metrics: float32 or float64."""
    for m in SAMPLE_METRICS:
        if m.dtype == "float":
            return str(chunk.columns[m.name].dtype)
    return "float32"


def sample_rows(chunk: MetricsChunk, keep: np.ndarray) -> pa.RecordBatch | None:
    """The rows of the chunk's batches where keep (bool, (r,)) is True; None when no batch is kept.
    A one-layer chunk: per batch one row per group, in the chunk's order. A stack's chunk
    (engine/stack.py StackChunk, two layers or more): per batch, layer by layer from the first,
    one row per group, each layer's SAMPLE metrics from its own chunk; the schema has the layer
    column (sample_schema(layered=True)). A batch is kept with every layer or not at all."""
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        return None
    layers = getattr(chunk, "layers", None)
    count = len(layers) if layers is not None else 1
    layered = count > 1
    g, per = len(chunk.groups), chunk.per
    n = rows.size * count * g
    offsets = pa.array(np.arange(0, n * per + 1, per, dtype=np.int32))
    arrays = [pa.array(np.repeat(chunk.columns[ITERATION][rows], count * g))]
    if layered:
        arrays.append(pa.array(np.tile(np.repeat(np.arange(count, dtype=np.int32), g), rows.size)))
    arrays.append(pa.array(np.tile(np.array(chunk.groups, dtype=object), rows.size * count), type=pa.string()))
    float_dtype = chunk_float_dtype(chunk)
    for m in SAMPLE_METRICS:
        if layered:  # (k, layers, groups, per): batch, then layer, then group, as the rows go
            values = np.stack([c.columns[m.name][rows] for c in layers], axis=1).reshape(-1)  # type: ignore[union-attr]
        else:
            values = np.ascontiguousarray(chunk.columns[m.name][rows]).reshape(-1)
        arrays.append(pa.ListArray.from_arrays(offsets, pa.array(values, type=_arrow_type(m.dtype, float_dtype))))
    return pa.record_batch(arrays, schema=sample_schema(float_dtype, layered))


class SamplePolicy:
    """Which batches keep their per-sample arrays. full=None keeps every batch ("all"), 0 none
    ("none"); otherwise every batch up to iteration `full`, then thinned by doubling strides: in
    (full * 2^(k-1), full * 2^k] every 2^k-th iteration. Each doubling of a run's length adds
    full / 2 kept batches, so a run of I iterations keeps about full * (1 + log2(I / full) / 2)."""

    DEFAULT_FULL = 2048

    def __init__(self, full: int | None = DEFAULT_FULL) -> None:
        if full is not None and full < 0:
            raise ValueError("full must be None or at least 0")
        self.full = full

    def __repr__(self) -> str:
        return f"SamplePolicy({self.text})"

    @property
    def text(self) -> str:
        """How --keep-samples writes it: all, none or the number of batches kept in full."""
        return "all" if self.full is None else "none" if self.full == 0 else str(self.full)

    @classmethod
    def parse(cls, text: str | int | None) -> SamplePolicy:
        """"all", "none" or a whole number (the batches kept in full before thinning; "auto" or None:
        the default). StoreError (one line) for anything else."""
        if text is None or text == "auto":
            return cls()
        if isinstance(text, int) and not isinstance(text, bool):
            value = text
        else:
            word = str(text).strip().lower()
            if word == "all":
                return cls(None)
            if word == "none":
                return cls(0)
            try:
                value = int(word)
            except ValueError:
                value = -1
        if value < 0:
            raise StoreError(f"--keep-samples takes all, none or a whole number of batches, not {text!r}")
        return cls(value)

    def keep(self, iterations: np.ndarray) -> np.ndarray:
        """Per iteration (int, 1-based), whether its batch keeps its per-sample arrays: bool array."""
        i = np.asarray(iterations, dtype=np.int64)
        if self.full is None:
            return np.ones(i.shape, dtype=bool)
        if self.full == 0:
            return np.zeros(i.shape, dtype=bool)
        q = np.maximum((i - 1) // self.full, 1)
        stride = np.left_shift(np.int64(1), np.frexp(q.astype(np.float64))[1].astype(np.int64))
        return (i <= self.full) | (i % stride == 0)
