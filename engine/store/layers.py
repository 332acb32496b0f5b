"""A stack's per-layer numbers in a run's summary lines, as columns.

A stack's line holds, under "layers", one entry per layer (engine/stack.py
StackChunk.layer_summary_lines): {"layer": l, the layer's own batch metrics (its loss...), "groups":
{group: every group metric of the layer, the end-to-end ones too}}. `Summary` (reader.py) keeps them
as columns named PREFIX + key: a batch metric (r, L), a group metric (r, L, groups), float64 with NaN
for null. The keys are the first line's (nothing here imports the stack's declarations, which need
torch); a one-layer run's lines have no "layers" and give no column."""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

PREFIX = "layers."  # a per-layer column's name: PREFIX + its JSON key


def layer_keys(first: Any) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The batch keys and the group keys of a line's "layers" entries (first: a parsed line); None
    when the line has none (one layer)."""
    layers = first.get("layers") if isinstance(first, dict) else None
    if not isinstance(layers, list) or not layers or not isinstance(layers[0], dict):
        return None
    entry = layers[0]
    batch = tuple(k for k in entry if k not in ("layer", "groups"))
    groups = entry.get("groups")
    cells: dict = next(iter(groups.values()), {}) if isinstance(groups, dict) and groups else {}
    return batch, tuple(k for k in cells if k != "name")


def layers_field(keys: tuple[tuple[str, ...], tuple[str, ...]], groups: tuple[str, ...]) -> pa.Field:
    """The Arrow field of "layers" for pyarrow's JSON reader: a list of per-layer structs, every
    number float64."""
    batch, group = keys
    cell = pa.struct([pa.field(k, pa.float64()) for k in group])
    entry = pa.struct([*(pa.field(k, pa.float64()) for k in batch),
                       pa.field("groups", pa.struct([pa.field(g, cell) for g in groups]))])
    return pa.field("layers", pa.list_(entry))


def columns_from_arrow(column: pa.ChunkedArray | pa.Array, keys: tuple[tuple[str, ...], tuple[str, ...]],
                       groups: tuple[str, ...], rows: int) -> dict[str, np.ndarray]:
    """The per-layer columns from the "layers" column pyarrow read (layers_field); none when the
    lines do not all hold the same number of layers."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if rows == 0 or column.null_count:
        return {}
    sizes = np.diff(column.offsets.to_numpy())
    if not len(sizes) or (sizes != sizes[0]).any() or sizes[0] == 0:
        return {}
    count = int(sizes[0])
    entries = column.flatten()

    def numbers(array: pa.Array) -> np.ndarray:
        return array.to_numpy(zero_copy_only=False).astype(np.float64).reshape(rows, count)

    batch, group = keys
    out = {PREFIX + k: numbers(entries.field(k)) for k in batch}
    cells = entries.field("groups")
    for k in group:
        out[PREFIX + k] = np.stack([numbers(cells.field(g).field(k)) for g in groups], axis=2)
    return out


def columns_from_records(records: list[dict], keys: tuple[tuple[str, ...], tuple[str, ...]],
                         groups: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The per-layer columns from parsed lines; none when the lines do not all hold the same number
    of layers. A missing value reads as NaN."""
    rows: list[list] = [r["layers"] for r in records if isinstance(r.get("layers"), list)]
    if not rows or len(rows) != len(records) or any(len(r) != len(rows[0]) or not r for r in rows):
        return {}

    def number(value: Any) -> float:
        return float(value) if isinstance(value, int | float) else np.nan

    batch, group = keys
    out = {PREFIX + k: np.array([[number(e.get(k)) for e in row] for row in rows]) for k in batch}
    for k in group:
        out[PREFIX + k] = np.array([[[number((e.get("groups") or {}).get(g, {}).get(k)) for g in groups]
                                     for e in row] for row in rows])
    return out
