"""A run's per-sample arrays read back (samples.arrows, see engine/store/__init__.py): every
complete record batch of its Arrow streams, by group and layer. Re-exported by reader.py."""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.metrics import BY_NAME, SAMPLE_METRICS

from .columns import GROUP, ITERATION, LAYER, SAMPLE_SCHEMA, SAMPLE_SCHEMAS, with_layer
from .files import StoreError


class Samples:
    """The per-sample arrays of the batches a run kept, by group and layer (0 = the first; a run
    recorded without a layer column, one layer or before stacks kept every layer, holds layer 0
    only). For a group and layer, its kept iterations (k,) and, per SAMPLE metric, a (k, per) array
    when every kept batch has the same size, else an object array of k arrays. Every method's
    layer defaults to 0."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self._groups: dict[tuple[str, int], pa.Table] = {}
        self._cache: dict[tuple[str, str, int], np.ndarray] = {}

    def __len__(self) -> int:
        """Rows: one per group (and layer) of each kept batch."""
        return self.table.num_rows

    @cached_property
    def groups(self) -> tuple[str, ...]:
        """The groups present, in the order first written."""
        names = self.table.column(GROUP).to_pylist() if self.table.num_rows else []
        return tuple(dict.fromkeys(names))

    @cached_property
    def layers(self) -> int:
        """Layers whose arrays were kept: 1 without a layer column (or no row), else the highest + 1."""
        if LAYER not in self.table.schema.names or not self.table.num_rows:
            return 1
        return int(pc.max(self.table[LAYER]).as_py()) + 1

    def _group(self, group: str, layer: int = 0) -> pa.Table:
        key = (group, layer)
        if key not in self._groups:
            mask = pc.equal(self.table[GROUP], group)
            if LAYER in self.table.schema.names:
                mask = pc.and_(mask, pc.equal(self.table[LAYER], layer))
            elif layer:
                mask = pc.and_(mask, pa.scalar(False))
            self._groups[key] = self.table.filter(mask)
        return self._groups[key]

    def iterations(self, group: str, layer: int = 0) -> np.ndarray:
        """The iterations whose arrays were kept for this group and layer, as written (increasing):
        (k,) int64."""
        key = (ITERATION, group, layer)
        if key not in self._cache:
            self._cache[key] = self._group(group, layer).column(ITERATION).to_numpy()
        return self._cache[key]

    def column(self, name: str, group: str, layer: int = 0) -> np.ndarray:
        """A SAMPLE metric (by its declared name) of one group and layer: (k, per) of its declared
        dtype (the run's float dtype for "float"), or an object array of k arrays when batch sizes
        differ."""
        key = (name, group, layer)
        if key not in self._cache:
            col = self._group(group, layer).column(BY_NAME[name].key).combine_chunks()
            if isinstance(col, pa.ChunkedArray):  # an empty table stays chunked
                col = pa.concat_arrays(col.chunks) if col.num_chunks else pa.array([], type=col.type)
            values = col.flatten().to_numpy(zero_copy_only=False)
            if BY_NAME[name].dtype != "float":  # "float": as the run stored it, float32 or float64
                values = values.astype(BY_NAME[name].dtype, copy=False)
            offsets = col.offsets.to_numpy()
            sizes = np.diff(offsets)
            if len(sizes) and (sizes == sizes[0]).all():
                self._cache[key] = values.reshape(len(sizes), int(sizes[0]))
            else:
                self._cache[key] = np.array(np.split(values, offsets[1:-1]) if len(sizes) else [], dtype=object)
        return self._cache[key]

    def at(self, iteration: int, group: str, layer: int = 0) -> dict[str, np.ndarray] | None:
        """The arrays of the batch at exactly this iteration, by metric name; None if not kept."""
        its = self.iterations(group, layer)
        k = int(np.searchsorted(its, iteration))
        if k >= len(its) or its[k] != iteration:
            return None
        return {m.name: self.column(m.name, group, layer)[k] for m in SAMPLE_METRICS}

    def nearest(self, iteration: int, group: str, layer: int = 0) -> int | None:
        """The last kept iteration at or before this one (for a scrubber); None if none."""
        its = self.iterations(group, layer)
        k = int(np.searchsorted(its, iteration, side="right"))
        return int(its[k - 1]) if k else None


def read_samples(path: Path) -> tuple[pa.Table, bool]:
    """Every complete record batch of an Arrow IPC stream, and whether a damaged or cut tail was
    skipped. A missing or empty file is an empty table. Several streams end to end (a resumed run
    appends one) are read as one; where some have the layer column (a stack's) and others not (a
    stack recorded before every layer was kept), the rows without it are layer 0."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return SAMPLE_SCHEMA.empty_table(), False
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data:
        return SAMPLE_SCHEMA.empty_table(), False
    batches: list[pa.RecordBatch] = []
    schemas: list[pa.Schema] = []
    source = pa.BufferReader(data)
    damaged = False
    try:
        while source.tell() < len(data):  # one stream, or several end to end (a resumed run appends one)
            reader = pa.ipc.open_stream(source)
            if not any(reader.schema.equals(known) for known in SAMPLE_SCHEMAS):
                raise StoreError(f"{path} holds other per-sample columns than this fftui writes")
            if schemas and not with_layer(reader.schema.empty_table()).schema.equals(
                    with_layer(schemas[0].empty_table()).schema):
                raise StoreError(f"{path} holds per-sample columns of two dtypes")
            schemas.append(reader.schema)
            try:
                while True:
                    batches.append(reader.read_next_batch())
            except StopIteration:
                pass
    except (pa.ArrowException, OSError):
        damaged = True
    if not schemas:
        return SAMPLE_SCHEMA.empty_table(), damaged
    if len({s.names.count(LAYER) for s in schemas}) > 1:  # layered and not: every row with a layer
        batches = [with_layer(b) for b in batches]
        schema = with_layer(schemas[0].empty_table()).schema
    else:
        schema = schemas[0]
    return pa.Table.from_batches(batches, schema=schema), damaged
