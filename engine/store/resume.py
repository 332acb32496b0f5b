"""Continuing a recorded run in its own folder: its records cut back to the checkpoint's iteration,
and what its next RunWriter carries on from (counts, the last batches for run.json's "final").

Records after the last checkpoint (a run killed between two checkpoints trained on past it) are
dropped: the resumed run trains those batches again, from the same state, and records them anew.
Each file is rewritten whole through a temporary file and a rename, so that a crash while cutting
leaves every file either as it was or cut; a second resume then cuts what is left. The files the
resumed run appends to then hold two gzip members (summary) and two Arrow streams (samples), which
engine/store/reader.py reads as one."""
from __future__ import annotations

import contextlib
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.metrics import BATCH_METRICS

from .columns import ITERATION
from .files import EVENTS, SAMPLES, SUMMARY, StoreError
from .reader import Summary, _parse_lines, read_lines, read_samples
from .writer import FINAL_METRICS, FINAL_WINDOW, GZIP_LEVEL


@dataclass
class Carried:
    """What a resumed run's RunWriter starts from: the records kept (summary lines), the batches
    whose per-sample arrays were kept, the last iteration kept, the groups, the str metrics' values
    (run.json's "constants"), the last FINAL_WINDOW batches' final metrics (name -> (r, groups)),
    and what was dropped from each file."""

    records: int
    sample_records: int
    last_iteration: int
    checkpoint_iteration: int
    groups: tuple[str, ...] = ()
    constants: dict[str, str] = field(default_factory=dict)
    final: dict[str, np.ndarray] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def apply(self, writer: Any) -> None:
        """Set a new RunWriter's counts to the kept records' (before it writes run.json)."""
        writer.records = writer.written = self.records
        writer.sample_records = self.sample_records
        writer.last_iteration = self.last_iteration
        writer._checkpoint_iteration = self.checkpoint_iteration
        writer._groups, writer._final, writer._constants = self.groups, dict(self.final), dict(self.constants)
        writer.dropped_samples = int(self.info.get("dropped_samples") or 0)
        writer._refused = int(self.info.get("dropped_records") or 0)
        if isinstance(self.info.get("created"), str):
            writer._created = self.info["created"]


def _replace(path: Path, data: bytes) -> None:
    """Write path whole through a temporary file and a rename. Raises OSError."""
    tmp = path.with_name(f".{path.name}.resume.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def cut_run(folder: Path, iteration: int, info: dict | None = None) -> Carried:
    """Cut the run in folder back to its records up to `iteration` (the checkpoint's): summary
    lines, per-sample rows and events after it are dropped, a damaged or cut tail too (a killed
    writer's). info: run.json (carried into the Carried). StoreError (one line) when a file cannot
    be read or written."""
    try:
        return _cut(folder, iteration, info or {})
    except OSError as exc:
        raise StoreError(f"cannot cut {folder} back to iteration {iteration}: {exc.strerror or exc}") from None


def _cut(folder: Path, iteration: int, info: dict) -> Carried:
    # the summary: complete lines up to the iteration
    lines, _damaged = read_lines(folder / SUMMARY, compressed=True)
    records, _bad = _parse_lines(lines)
    keep = 0
    while keep < len(records) and isinstance(records[keep], dict) and records[keep].get("iteration", 0) <= iteration:
        keep += 1
    kept_lines, kept = lines[:keep], records[:keep]
    z = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    body = b"".join(line + b"\n" for line in kept_lines)
    _replace(folder / SUMMARY, z.compress(body) + z.flush(zlib.Z_FINISH) if kept_lines else b"")
    carried = Carried(records=keep, sample_records=0, checkpoint_iteration=iteration,
                      last_iteration=int(kept[-1]["iteration"]) if kept else 0, info=dict(info),
                      dropped={SUMMARY: len(lines) - keep})
    if kept:
        last = kept[-1]
        carried.groups = tuple(last.get("groups") or ())
        carried.constants = {m.name: str(last[m.key]) for m in BATCH_METRICS if m.dtype == "str" and m.key in last}
        window = Summary.from_records(kept[-FINAL_WINDOW:], carried.groups)
        carried.final = {name: window.columns[name].astype(float) for name in FINAL_METRICS}
    # the per-sample arrays: rows up to the iteration, as one stream
    table, _damaged = read_samples(folder / SAMPLES)
    if table.num_rows or (folder / SAMPLES).exists():
        mask = pc.less_equal(table[ITERATION], iteration)
        cut = table.filter(mask)
        carried.dropped[SAMPLES] = table.num_rows - cut.num_rows
        sink = pa.BufferOutputStream()
        if cut.num_rows:
            # in the schema read: the run's float dtype, a stack's layer column (every layer of a batch
            # is cut with its batch: the rows go by iteration)
            with pa.ipc.new_stream(sink, cut.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as out:
                for batch in cut.combine_chunks().to_batches():
                    out.write_batch(batch)
        _replace(folder / SAMPLES, sink.getvalue().to_pybytes())
        carried.sample_records = len(pc.unique(cut[ITERATION])) if cut.num_rows else 0
    # the events: those up to the iteration
    lines, _damaged = read_lines(folder / EVENTS, compressed=False)
    events, _bad = _parse_lines(lines)
    kept_events = [line for line, event in zip(lines, events, strict=False)
                   if isinstance(event, dict) and int(event.get("iteration", 0)) <= iteration]
    carried.dropped[EVENTS] = len(lines) - len(kept_events)
    _replace(folder / EVENTS, b"".join(line + b"\n" for line in kept_events))
    return carried
