"""Reading a recorded run back: lazily (each file on first use), and crash-safe: a file whose tail
was cut short or damaged (a killed writer, a full disk) reads back to its last complete record, with
one warning naming the file and how many records were read.

A folder that is not a run, lacks a file, or was written in another format is refused with a
StoreError (one line) before anything else is read."""
from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from engine.chunk import MetricsChunk
from engine.metrics import BATCH_METRICS, GROUP, GROUP_METRICS, SAMPLE, SAMPLE_METRICS

from .checkpoint import Checkpoint, read_checkpoint
from .columns import ITERATION
from .files import (
    CONFIG_JSON,
    EVENTS,
    FORMAT,
    LEGACY_METRICS,
    REQUIRED,
    RUN_JSON,
    SAMPLES,
    SUMMARY,
    StoreError,
    folder_size,
    read_json,
    writer_alive,
)
from .layers import PREFIX, columns_from_arrow, columns_from_records, layer_keys, layers_field
from .samples import Samples, read_samples

_PIECE = 1 << 16  # bytes fed to the decompressor at a time: a damaged block loses at most this much


def _cut_warning(name: str, records: int) -> str:
    return f"{name}: cut short or damaged after {records} complete records; read {records}"


def read_lines(path: Path, compressed: bool) -> tuple[list[bytes], bool]:
    """The complete lines of a JSON-lines file (gzip-compressed or not), without their newlines,
    and whether anything after them was skipped (an incomplete last line, undecodable bytes). A
    missing file is no lines; a gzip stream without its end (a writer still at it, or killed) is
    not damage by itself."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], False
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None
    damaged = False
    if compressed and data:
        data, damaged = _gunzip(data)
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" after a final newline
    return lines, damaged or bool(tail)


def _gunzip(data: bytes) -> tuple[bytes, bool]:
    """The text of a gzip file of one or more members (a resumed run appends a member), and whether
    a damaged part was skipped. The last member may lack its end (a writer still at it, or killed);
    a member that follows one without its end is damage."""
    parts = []
    start = 0
    try:
        while start < len(data):
            z = zlib.decompressobj(31)
            for piece in range(start, len(data), _PIECE):
                parts.append(z.decompress(data[piece:piece + _PIECE]))
                if z.eof:
                    break
            if not z.eof:
                return b"".join(parts), False
            start = min(piece + _PIECE, len(data)) - len(z.unused_data)
    except zlib.error:
        return b"".join(parts), True
    return b"".join(parts), False


def _parse_lines(lines: list[bytes]) -> tuple[list[Any], bool]:
    """Each line as JSON, up to the first that does not parse; and whether one did not."""
    try:
        return orjson.loads(b"[" + b",".join(lines) + b"]"), False
    except orjson.JSONDecodeError:
        out = []
        for line in lines:
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                return out, True
        return out, False


class Summary:
    """The per-batch summary of a run as columns: `columns[name]` for every declared BATCH metric
    (r,) and GROUP metric (r, len(groups)); "str" metrics as object arrays (r,). Float metrics hold
    NaN where the file has null (a ratio over no valid sample)."""

    def __init__(self, columns: dict[str, np.ndarray], groups: tuple[str, ...]) -> None:
        self.columns = columns
        self.groups = groups

    @property
    def layers(self) -> int:
        """Layers whose numbers the lines hold: a stack's (engine/store/layers.py), else 1."""
        return max((c.shape[1] for k, c in self.columns.items() if k.startswith(PREFIX)), default=1)

    def layer_column(self, name: str, layer: int) -> np.ndarray | None:
        """A metric of one layer, by its JSON key: a batch metric (r,), a group metric (r, groups);
        None when the lines do not hold it for that layer (one layer, or a key of no layer: then
        the first layer's is `column`)."""
        col = self.columns.get(PREFIX + name)
        return col[:, layer] if col is not None and layer < col.shape[1] else None

    @classmethod
    def from_records(cls, records: list[dict], groups: tuple[str, ...]) -> Summary:
        """From parsed JSON lines; StoreError when a record lacks a declared metric."""
        columns: dict[str, np.ndarray] = {}
        try:
            for m in BATCH_METRICS:
                dtype = object if m.dtype == "str" else _float_if_nullable(m.dtype)
                columns[m.name] = np.array([r[m.key] for r in records], dtype=dtype)
            cells = [[r["groups"][g] for r in records] for g in groups]
            for m in GROUP_METRICS:
                col = np.empty((len(records), len(groups)), dtype=_float_if_nullable(m.dtype))
                for gi, group in enumerate(cells):
                    col[:, gi] = [cell[m.key] for cell in group]
                columns[m.name] = col
        except (KeyError, TypeError) as exc:
            raise StoreError(f"{SUMMARY} lacks {exc} in a record: written by another fftui version") from None
        keys = layer_keys(records[0]) if records else None
        if keys is not None:
            columns.update(columns_from_records(records, keys, groups))
        return cls(columns, groups)

    @classmethod
    def from_lines(cls, lines: list[bytes], groups: tuple[str, ...]) -> Summary:
        """From complete JSON lines, parsed by pyarrow's JSON reader against the declared schema
        (several times faster than one record at a time). Raises pa.ArrowInvalid on a bad line."""
        keys = layer_keys(orjson.loads(lines[0])) if lines and b'"layers":' in lines[0] else None
        schema = summary_schema(groups)
        if keys is not None:  # a stack: every layer's numbers too
            schema = schema.append(layers_field(keys, groups))
        table = pj.read_json(io.BytesIO(b"\n".join(lines) + b"\n"),
                             parse_options=pj.ParseOptions(explicit_schema=schema,
                                                           unexpected_field_behavior="ignore"))
        flat = table.flatten().flatten()
        columns = {m.name: flat.column(m.key).to_numpy(zero_copy_only=False) for m in BATCH_METRICS}
        for m in GROUP_METRICS:
            parts = [flat.column(f"groups.{g}.{m.key}").to_numpy(zero_copy_only=False) for g in groups]
            columns[m.name] = np.stack(parts, axis=1) if parts else np.empty((table.num_rows, 0))
        if keys is not None:
            columns.update(columns_from_arrow(table.column("layers"), keys, groups, table.num_rows))
        return cls(columns, groups)

    def __len__(self) -> int:
        return len(self.columns["iteration"])

    def column(self, name: str) -> np.ndarray:
        """A BATCH metric (r,) or GROUP metric (r, groups)."""
        return self.columns[name]

    def group_column(self, name: str, group: str) -> np.ndarray:
        """A GROUP metric of one group: (r,)."""
        return self.columns[name][:, self.groups.index(group)]


def summary_schema(groups: tuple[str, ...]) -> pa.Schema:
    """The Arrow schema of the summary's JSON lines for these groups, from the declaration."""
    def arrow(dtype: str) -> pa.DataType:
        return pa.string() if dtype == "str" else pa.from_numpy_dtype(np.dtype(dtype))

    group = pa.struct([pa.field("name", pa.string()), *(pa.field(m.key, arrow(m.dtype)) for m in GROUP_METRICS)])
    fields = [pa.field(m.key, arrow(m.dtype)) for m in BATCH_METRICS]
    return pa.schema([*fields, pa.field("groups", pa.struct([pa.field(g, group) for g in groups]))])


def _layer_values(summary: Summary, key: str, dtype: str, rows: slice, layer: int) -> np.ndarray:
    """A per-layer summary column's rows (float64, NaN for null) as the metric's declared dtype; an
    integer metric's null reads -1."""
    col = summary.layer_column(key, layer)
    assert col is not None
    values = col[rows]
    if np.dtype(dtype).kind in "iub":
        return np.where(np.isfinite(values), values, -1).astype(dtype)
    return values


def _float_if_nullable(dtype: str) -> str:
    return dtype if np.dtype(dtype).kind in "iub" else "float64"


class RunReader:
    """One recorded run, read lazily. `info` is run.json, `config` is config.json. on_warning
    receives each one-line warning (also kept in `warnings`) about a file read only in part.

    Raises StoreError (one line) when the folder is not a run, lacks one of its files, or holds
    another format than this fftui writes; nothing is changed."""

    def __init__(self, folder: str | Path, on_warning: Callable[[str], None] | None = None) -> None:
        self.folder = Path(folder)
        self.on_warning = on_warning
        self.warnings: list[str] = []
        where = str(self.folder)
        if not self.folder.is_dir():
            raise StoreError(f"{where} is not a folder" if self.folder.exists() else f"{where} does not exist")
        if not (self.folder / RUN_JSON).exists() and (self.folder / LEGACY_METRICS).exists():
            raise StoreError(f"{where} holds a headless run of an older fftui (metrics.jsonl, no run.json); "
                             "it cannot be opened")
        self.info = read_json(self.folder / RUN_JSON, where)
        fmt = self.info.get("format")
        if fmt != FORMAT:
            raise StoreError(f"{where} was recorded in run format {fmt!r}; this fftui reads format {FORMAT}")
        missing = [name for name in REQUIRED if not (self.folder / name).is_file()]
        if missing:
            raise StoreError(f"{where} lacks {', '.join(missing)}: half-written or damaged")
        self.config = read_json(self.folder / CONFIG_JSON, where)
        if not isinstance(self.config.get("config"), dict):
            raise StoreError(f"{self.folder / CONFIG_JSON} holds no configuration")

    @property
    def name(self) -> str:
        """The run's name: its folder's."""
        return self.folder.name

    @property
    def status(self) -> str:
        """run.json's status, except that a run still marked running whose writer is gone (killed,
        crashed) is "interrupted"."""
        status = str(self.info.get("status"))
        if status == "running" and not writer_alive(self.folder, self.info):
            return "interrupted"
        return status

    def size(self) -> int:
        """Bytes on disk."""
        return folder_size(self.folder)

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        if self.on_warning is not None:
            self.on_warning(message)

    @cached_property
    def summary(self) -> Summary:
        """Every batch's summary (read on first use)."""
        lines, damaged = read_lines(self.folder / SUMMARY, compressed=True)
        groups = tuple(self.info.get("groups") or ())
        try:
            groups = tuple(orjson.loads(lines[0])["groups"]) if lines else groups
            summary = Summary.from_lines(lines, groups)
        except (pa.ArrowInvalid, orjson.JSONDecodeError, KeyError, TypeError):  # a damaged line: read up to it
            records, bad = _parse_lines(lines)
            damaged = damaged or bad
            summary = Summary.from_records(records, groups)
        if damaged:
            self._warn(_cut_warning(SUMMARY, len(summary)))
        return summary

    @cached_property
    def samples(self) -> Samples:
        """The kept batches' per-sample arrays (read on first use)."""
        table, damaged = read_samples(self.folder / SAMPLES)
        if damaged:
            kept = len(pc.unique(table[ITERATION])) if table.num_rows else 0
            self._warn(_cut_warning(SAMPLES, kept))
        return Samples(table)

    def chunks(self, start: int = 0, stop: int | None = None) -> list[MetricsChunk]:
        """Summary rows start:stop as MetricsChunks (a new one where the group sizes, mode or loss
        change), for replaying a run where live chunks go. Every SAMPLE metric comes from the kept
        arrays where its batch kept them (Samples.at), else is filled with NaN (floats), -1
        (integers: "not valid" for the outcome) or False.

        A stack's run (`Summary.layers` above 1) gives engine/stack.py StackChunks: each layer's
        chunk from the summary's per-layer columns (the metrics every layer shares, such as the
        iteration and the timings, are the first's) and that layer's kept arrays, and every layer's
        end-to-end group metrics; the end-to-end per-sample outcome ("actual_end"), which the store
        does not keep, reads -1."""
        summary = self.summary
        stop = len(summary) if stop is None else min(stop, len(summary))
        if stop <= start:
            return []
        counts = summary.columns["count"][start:stop]
        keys = [counts[1:] != counts[:-1]]
        keys += [(summary.columns[m.name][start + 1:stop] != summary.columns[m.name][start:stop - 1])[:, None]
                 for m in BATCH_METRICS if m.dtype == "str"]
        cuts = np.flatnonzero(np.concatenate(keys, axis=1).any(axis=1)) + 1
        out = []
        for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), stop - start], strict=True):
            rows = slice(start + a, start + b)
            per = int(counts[a].max())
            layers = [self._layer_chunk(rows, per, layer) for layer in range(summary.layers)]
            if len(layers) == 1:
                out.append(layers[0])
                continue
            from engine.stack import STACK_METRICS, StackChunk  # a stack's run: the engine has torch

            ends = tuple({m.name: (np.full((b - a, len(summary.groups), per), -1, dtype=m.dtype) if m.level == SAMPLE
                                   else _layer_values(summary, m.key, m.dtype, rows, layer))
                          for m in STACK_METRICS} for layer in range(len(layers)))
            out.append(StackChunk(layers[0], tuple(layers), ends))
        return out

    def _layer_chunk(self, rows: slice, per: int, layer: int) -> MetricsChunk:
        """One layer's MetricsChunk of summary rows `rows` (`chunks`)."""
        summary = self.summary
        groups = summary.groups
        columns: dict[str, object] = {}
        for m in (*BATCH_METRICS, *GROUP_METRICS):
            col = summary.columns[m.name]
            if m.dtype == "str":
                columns[m.name] = col[rows.start]
            elif layer and summary.layer_column(m.key, layer) is not None:
                columns[m.name] = _layer_values(summary, m.key, m.dtype, rows, layer)
            elif layer and m.level == GROUP:  # a number of its own the recording lacks for this layer
                columns[m.name] = np.full(col[rows].shape, np.nan if np.dtype(m.dtype).kind == "f" else -1)
            else:  # the first layer's, or what every layer of a batch shares
                columns[m.name] = col[rows]
        iterations = summary.columns["iteration"][rows]
        for m in SAMPLE_METRICS:
            kind = np.dtype(m.dtype).kind
            fill = np.nan if kind == "f" else False if kind == "b" else -1
            block = np.full((len(iterations), len(groups), per), fill, dtype=m.dtype)
            for gi, group in enumerate(groups):
                kept = self.samples.iterations(group, layer)
                at = np.clip(np.searchsorted(kept, iterations), 0, max(len(kept) - 1, 0))
                found = np.flatnonzero(kept[at] == iterations) if len(kept) else np.array([], dtype=int)
                values = [np.asarray(v) for v in self.samples.column(m.name, group, layer)[at[found]]]
                for row, value in zip(found, values, strict=True):
                    block[row, gi, :len(value)] = value
            columns[m.name] = block
        return MetricsChunk(groups, per, columns)

    @cached_property
    def events(self) -> list[dict]:
        """Every event, in order: {"kind", "iteration", "time", ...} (read on first use)."""
        lines, damaged = read_lines(self.folder / EVENTS, compressed=False)
        records, bad = _parse_lines(lines)
        if damaged or bad:
            self._warn(_cut_warning(EVENTS, len(records)))
        return records

    def checkpoint(self) -> Checkpoint | None:
        """The last checkpoint, or None when the run has none; StoreError (one line) when its file is
        damaged (engine/store/checkpoint.py)."""
        return read_checkpoint(self.folder)
