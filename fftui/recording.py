"""A recorded run as the panes see a live one: `RecordedHistory` serves the series, the newest batch
and the theorem's sides from a run of the store (engine/store/) up to a scrubbed iteration, the way
`fftui.history.History` serves them from the engine's chunks.

Nothing here reads more than it must: the summary and the kept per-sample arrays are read once (in
the app's loading thread, `load`), and every series is a view of the summary's columns up to the
cursor; the panes downsample each one to their plots' widths."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from engine.config import Config, ConfigError
from engine.metrics import BATCH_METRICS, GROUP_METRICS, SAMPLE_METRICS, GroupStats, MetricsRecord
from engine.store import RunReader
from engine.store.files import SUMMARY
from engine.store.reader import Summary

from .history import GROUP_ORDER, SHARED_BATCH

_STAMP = 16  # "YYYYMMDD-HHMMSS-": the part of a store folder's name that only dates it


def recorded_config(run: RunReader) -> Config:
    """The run's configuration from its config.json (parameters this fftui does not know are left
    out); the default configuration where what is recorded no longer validates."""
    saved = run.config.get("config") or {}
    known = {k: v for k, v in saved.items() if k in Config.__dataclass_fields__}
    try:
        return Config().replace(**known)
    except (ConfigError, TypeError, ValueError):
        return Config()


def short_names(names: list[str]) -> list[str]:
    """Legend labels for runs: each folder name without its date and time (``20261129-173000-ff`` ->
    ``ff``) when that leaves them all different and non-empty, else the whole names."""
    cut = [n[_STAMP:] if len(n) > _STAMP and n[:8].isdigit() and n[8] == "-" else n for n in names]
    return cut if all(cut) and len(set(cut)) == len(cut) else list(names)


def _as_declared(value: Any, dtype: str) -> Any:
    """A summary number as its metric's declared dtype: an integer metric's as an int where it is a
    whole number (a per-layer column is float64), else as it is (a sweep setting's mean over its
    seeds, fftui/sweep/overlay.py, may be 31.5: not cut to 31)."""
    number = float(value)
    return int(number) if np.dtype(dtype).kind in "iu" and number.is_integer() else number


def _empty_sample(name: str) -> np.ndarray:
    dtype = next(m.dtype for m in SAMPLE_METRICS if m.name == name)
    return np.empty(0, dtype=dtype)


class RecordedHistory:
    """A recorded run through `fftui.history.History`'s interface for the panes, cut at a cursor:
    the series hold the batches up to and including the cursor's row, ``latest`` is the cursor's
    batch, and ``sides`` are the theorem's sides of the batch at the cursor or, where that batch did
    not keep its per-sample arrays, of the last one before it that did (`sides_iteration`).

    A stack's recording (its summary lines hold every layer, engine/store/layers.py) has ``layers``
    above 1; ``layer`` is the layer the panes read (`select`), as in History: `series`, `latest`,
    `sides` and `group` give that layer's, `series(key, layer)` any layer's.

    Args:
        run: the recorded run (its summary and samples are read on first use).
        config: the configuration shown with it (default: its config.json's).
        label: its name in a legend (default: the folder's name).
    """

    def __init__(self, run: RunReader, config: Config | None = None, label: str | None = None,
                 summary: Summary | None = None) -> None:
        self.run = run
        self.label = label or run.name
        self._base: Config | None = config if config is not None else recorded_config(run)
        self._changes: list[tuple[int, dict[str, Any]]] | None = None  # the "change" events, read on first use
        self._marks: list[tuple[int, str]] | None = None
        self.complete = summary is None  # False while `extend` is still to bring the rest of the summary
        self._take(run.summary if summary is None else summary)
        self.groups: tuple[str, ...] = tuple(sorted(self.summary.groups, key=_group_key))
        self.version = 0
        self.runs = 1
        self.batches = 1  # batches whose sides are shown
        self.others: list[RecordedHistory] = []  # runs drawn beside it (fftui/widgets/compare.py)
        self.cursor = self._rows - 1  # the row shown last; -1 with no batch
        self.layer = 0  # the layer the panes show (`select`)

    @property
    def layers(self) -> int:
        """Layers of the run: a stack's, 1 for one layer."""
        return self.summary.layers

    @property
    def shown_layer(self) -> int:
        """The layer the panes read: ``layer``, or the last layer where the run has fewer."""
        return min(self.layer, self.layers - 1)

    def select(self, layer: int) -> None:
        """Show layer ``layer`` (0 = the first) in every pane; the runs drawn beside it (``others``)
        show that layer too (their last where they have fewer)."""
        for other in self.others:
            other.select(layer)
        if layer != self.layer:
            self.layer = layer
            self.version += 1

    @property
    def config(self) -> Config | None:
        """The configuration the batch at the cursor was trained with: config.json's, with every
        parameter change recorded before that batch applied (events.jsonl: a change at iteration k
        applies from batch k + 1 on)."""
        base, at = self._base, self.last_iteration
        if base is None or at is None:
            return base
        if self._changes is None:
            self._changes = [(int(e["iteration"]), {k: v[1] for k, v in e["changes"].items()
                                                    if k in Config.__dataclass_fields__})
                             for e in self.run.events
                             if e.get("kind") == "change" and isinstance(e.get("changes"), dict)]
        updates: dict[str, Any] = {}
        for iteration, changes in self._changes:
            if iteration < at:
                updates.update(changes)
        if not updates:
            return base
        try:
            return base.replace(**updates)
        except (ConfigError, TypeError, ValueError):
            return base

    @property
    def marks(self) -> list[tuple[int, str]]:
        """The run's events the plots mark, as (iteration, label): each recorded parameter change
        (events.jsonl "change") and each resume, in order (History.marks)."""
        if self._marks is None:
            from .history import change_label

            marks = []
            for e in self.run.events:
                if not isinstance(e.get("iteration"), int):
                    continue
                if e.get("kind") == "change" and isinstance(e.get("changes"), dict):
                    changes = {k: v for k, v in e["changes"].items() if isinstance(v, list) and len(v) == 2}
                    if changes:
                        marks.append((e["iteration"], change_label(changes)))
                elif e.get("kind") == "resumed":
                    marks.append((e["iteration"], "resumed"))
            self._marks = marks
        return self._marks

    @property
    def evaluations(self) -> list:
        """The run's test errors up to the cursor's batch (History.evaluations): its "evaluation"
        events (engine/evaluate.py Evaluation.fields) at or before the cursor's iteration, in order;
        an event missing a field is left out."""
        from engine.evaluate import Evaluation

        at = self.last_iteration
        if at is None:
            return []
        out = []
        for e in self.run.events:
            if e.get("kind") != "evaluation" or not isinstance(e.get("iteration"), int) or e["iteration"] > at:
                continue
            readout = e.get("readout_wrong")
            try:
                out.append(Evaluation(iteration=e["iteration"], epoch=int(e["epoch"]), wrong=int(e["wrong"]),
                                      total=int(e["total"]), layers=str(e.get("layers", "all")),
                                      description=str(e.get("digits", "")),
                                      readout_wrong=None if readout is None else int(readout)))
            except (KeyError, TypeError, ValueError):
                continue
        return out

    def _take(self, summary: Summary) -> None:
        self.summary = summary
        self._rows = len(summary)
        self._iterations = np.asarray(summary.column("iteration"), dtype=np.int64)
        self._x = self._iterations.astype(float)
        self._float: dict[tuple[str, int], np.ndarray] = {}
        self._latest: tuple[tuple[int, int], MetricsRecord] | None = None

    def extend(self, part: Summary | None) -> None:
        """Append the next rows of the summary as they are read (`summary_parts`); None: the whole
        summary is in. A cursor on the last row stays on the last row."""
        if part is None:
            self.complete = True
        elif len(part):
            follow = self.cursor == self._rows - 1
            columns = {k: np.concatenate([v, part.columns[k]]) for k, v in self.summary.columns.items()}
            self._take(Summary(columns, self.summary.groups))
            if follow:
                self.cursor = self._rows - 1
        self.version += 1

    # -- the cursor -----------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        """Batches recorded."""
        return self._rows

    def move_to(self, row: int) -> bool:
        """Put the cursor on a row (clamped to the recording); whether it moved."""
        row = int(np.clip(row, 0, self._rows - 1)) if self._rows else -1
        if row == self.cursor:
            return False
        self.cursor = row
        self.version += 1
        return True

    def row_of(self, iteration: int) -> int:
        """The last row at or before this iteration (0 before the first)."""
        return max(0, int(np.searchsorted(self._iterations, iteration, side="right")) - 1)

    def iteration_at(self, row: int) -> int:
        return int(self._iterations[row])

    # -- History's interface --------------------------------------------------------------------
    def __len__(self) -> int:
        return self.cursor + 1

    @property
    def mode(self) -> str | None:
        return str(self.summary.column("mode")[self.cursor]) if self.cursor >= 0 else None

    @property
    def last_iteration(self) -> int | None:
        return self.iteration_at(self.cursor) if self.cursor >= 0 else None

    @property
    def total(self) -> int:
        return self.cursor + 1

    def iterations(self) -> np.ndarray:
        return self._x[:self.cursor + 1]

    def series(self, key: str, layer: int | None = None) -> np.ndarray:
        """A series ("loss", "pos.sparser", ...) of the layer shown (or of ``layer``) up to the
        cursor as float64; empty if unknown."""
        values = self.full_series(key, layer)
        return values[:self.cursor + 1]

    def full_series(self, key: str, layer: int | None = None) -> np.ndarray:
        """A series of the layer shown (or of ``layer``) over the whole recording as float64 (a
        cached column); empty if unknown. The first layer's are the summary's own columns; a
        stack's other layers' (and every layer's end-to-end metrics, "pos.sparser_end") are its
        per-layer columns; what every layer shares (the iteration, the timings) is the first's."""
        layer = self.shown_layer if layer is None else layer
        cached = (key, layer)
        if cached not in self._float:
            group, _, name = key.rpartition(".")
            columns = self.summary.columns
            if group and group not in self.groups:
                return np.empty(0)
            col = None
            own = self.summary.layer_column(name, layer) if layer or name not in columns else None
            if own is not None:  # (r,) a batch metric, (r, groups) a group metric
                if group and own.ndim == 2:
                    col = own[:, self.summary.groups.index(group)]
                elif not group and own.ndim == 1:
                    col = own
            elif name in columns and (layer == 0 or (not group and name in SHARED_BATCH)):
                col = self.summary.group_column(name, group) if group else columns[name]
            if col is None or col.ndim != 1 or col.dtype == object:
                return np.empty(0)
            self._float[cached] = np.asarray(col, dtype=float)
        return self._float[cached]

    @property
    def latest(self) -> MetricsRecord | None:
        """The cursor's batch as a record: its summary, with the per-sample arrays of that very
        batch where it kept them (else empty arrays)."""
        if self.cursor < 0:
            return None
        key = (self.cursor, self.shown_layer)
        if self._latest is None or self._latest[0] != key:
            self._latest = (key, self._record(self.cursor, self.shown_layer))
        return self._latest[1]

    def _record(self, row: int, layer: int = 0) -> MetricsRecord:
        """The batch at a row as a record of one layer: above the first, the layer's own numbers
        where the summary holds them (NaN where not) and its per-sample arrays."""
        columns, summary = self.summary.columns, self.summary
        iteration = self.iteration_at(row)
        batch: dict[str, Any] = {}
        for m in BATCH_METRICS:
            own = summary.layer_column(m.key, layer) if layer else None
            value = own[row] if own is not None else columns[m.name][row]
            if layer and own is None and m.dtype != "str" and m.name not in SHARED_BATCH:
                value = np.nan  # a number of its own the recording does not hold for this layer
            batch[m.name] = str(value) if isinstance(value, str) else value.item() if hasattr(value, "item") else value
        groups = {}
        for gi, name in enumerate(summary.groups):
            values: dict[str, Any] = {}
            for m in GROUP_METRICS:
                own = summary.layer_column(m.key, layer) if layer else None
                values[m.name] = _as_declared(own[row, gi], m.dtype) if own is not None else (
                    np.nan if layer else _as_declared(columns[m.name][row, gi], m.dtype))
            arrays = self.run.samples.at(iteration, name, layer) if name in self.run.samples.groups else None
            for m in SAMPLE_METRICS:
                values[m.name] = np.asarray(arrays[m.name]) if arrays is not None else _empty_sample(m.name)
            groups[name] = GroupStats(name=name, **values)
        return MetricsRecord(**batch, groups=groups)

    def sides_iteration(self, group: str) -> int | None:
        """The iteration whose per-sample arrays `sides` shows (of the layer shown): the cursor's, or
        the last kept one before it; None when none was kept."""
        if self.cursor < 0 or group not in self.run.samples.groups:
            return None
        return self.run.samples.nearest(self.iteration_at(self.cursor), group, self.shown_layer)

    def sides_missing(self, group: str) -> str | None:
        """Why `sides` is empty at the cursor, in a few words, or None when it is not (or no batch is
        shown): the run kept no per-sample arrays at all (--keep-samples none), kept its first
        layer's only (a stack recorded before every layer's were kept), or none up to here."""
        if self.cursor < 0 or self.sides_iteration(group) is not None:
            return None
        if not len(self.run.samples):
            policy = self.run.info.get("keep_samples")
            return "this run kept no per-sample arrays" + (" (--keep-samples none)" if policy == "none" else "")
        if self.shown_layer >= self.run.samples.layers:
            return "this run kept the first layer's per-sample arrays only"
        return "no batch up to this iteration kept its per-sample arrays"

    def sides(self, group: str) -> tuple[np.ndarray, np.ndarray]:
        """The theorem's two sides of the layer shown, one value per sample, of the batch
        `sides_iteration` names."""
        at = self.sides_iteration(group)
        arrays = self.run.samples.at(at, group, self.shown_layer) if at is not None else None
        if arrays is None:
            return np.empty(0), np.empty(0)
        return np.asarray(arrays["lhs"], dtype=float), np.asarray(arrays["rhs"], dtype=float)

    def sides_batches(self, group: str) -> int:
        return 1 if self.sides_iteration(group) is not None else 0

    def group(self, name: str) -> GroupStats | None:
        latest = self.latest
        return latest.groups.get(name) if latest is not None else None

    def set_config(self, config: Config | None) -> None:
        """Show the run with another configuration (the recorded changes still apply over it)."""
        if config != self._base:
            self._base = config
            self.version += 1


def _group_key(name: str) -> int:
    return GROUP_ORDER.index(name) if name in GROUP_ORDER else len(GROUP_ORDER)


@dataclass
class Recording:
    """What `load` read: the run shown and the runs compared with it, each as a RecordedHistory
    (the others' labels distinguish them in legends), the one-line warnings of files read only in
    part, and the parts of the main run's summary still to read."""

    main: RecordedHistory
    others: list[RecordedHistory] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rest: Iterator[Summary] | None = None  # the main run's summary parts still to read (load(progressive=True))

    @property
    def note(self) -> str:
        return "; ".join(self.warnings)


FIRST_ROWS = 4096     # rows of the summary read before the first frame with data
PART_ROWS = 32768     # rows read at a time after it
_PIECE = 1 << 18      # compressed bytes decompressed at a time


class _Damaged(Exception):
    """The summary file is cut short or damaged: RunReader.summary reads it, with its warning."""


def summary_parts(run: RunReader) -> Iterator[Summary]:
    """The run's summary in consecutive parts (FIRST_ROWS rows, then PART_ROWS at a time), each as
    soon as it is decompressed and parsed. A file cut short or damaged anywhere (or that cannot be
    read) raises _Damaged when it is reached: the caller reads it whole through RunReader.summary,
    which reads up to the damage and warns."""
    import zlib

    try:
        data = (run.folder / SUMMARY).read_bytes()
    except OSError:
        raise _Damaged() from None
    z = zlib.decompressobj(31)
    tail = b""
    lines: list[bytes] = []
    groups: tuple[str, ...] | None = None
    want = FIRST_ROWS
    start = 0
    while True:
        try:
            piece = data[start:start + _PIECE]
            text = tail + z.decompress(piece) if piece else tail
        except zlib.error:
            raise _Damaged() from None
        start += _PIECE
        if z.eof and (z.unused_data or start < len(data)):  # another gzip member follows (a resumed run)
            data, start = z.unused_data + data[start:], 0
            z = zlib.decompressobj(31)
        ended = not piece or z.eof
        got = text.split(b"\n")
        tail = got.pop()
        lines += got
        while lines and (len(lines) >= want or ended):
            block, lines = lines[:want], lines[want:]
            try:
                if groups is None:
                    groups = tuple(orjson.loads(block[0])["groups"])
                yield Summary.from_lines(block, groups)
            except Exception:  # a damaged line (pyarrow, orjson, a missing key)
                raise _Damaged() from None
            want = PART_ROWS
        if ended:
            if tail or z.unused_data or not z.eof:
                raise _Damaged()
            return


def summary_in_parts(run: RunReader) -> Iterator[Summary]:
    """`summary_parts`, except that a summary found damaged part-way is read whole by the reader
    (which reads up to the damage and warns) and its rows after those already given come as one
    last part."""
    read = 0
    try:
        for part in summary_parts(run):
            read += len(part)
            yield part
    except _Damaged:
        whole = run.summary
        if len(whole) > read:
            yield Summary({k: v[read:] for k, v in whole.columns.items()}, whole.groups)


def load(run: RunReader, compare: Sequence[RunReader] = (), progressive: bool = False) -> Recording:
    """Read the summaries and the kept per-sample arrays of the run and of the runs compared with it
    (each once; what a cut or damaged file lost is said in `Recording.warnings`). progressive: of the
    run's summary read only the first part (`summary_in_parts`); `Recording.rest` gives the others,
    for `RecordedHistory.extend`. Raises StoreError."""
    labels = short_names([run.name, *(r.name for r in compare)])
    histories = []
    rest: Iterator[Summary] | None = None
    for reader, label in zip([run, *compare], labels, strict=True):
        first = None
        if progressive and reader is run:
            rest = summary_in_parts(run)
            first = next(rest, None)
        history = RecordedHistory(reader, label=label, summary=first)
        for group in history.groups:  # decode the arrays now (every layer's), not on the first key press
            for layer in range(reader.samples.layers if group in reader.samples.groups else 0):
                if len(kept := reader.samples.iterations(group, layer)):
                    reader.samples.at(int(kept[-1]), group, layer)
        histories.append(history)
    warnings = [f"{r.name}: {w}" for r in (run, *compare) for w in r.warnings]
    return Recording(histories[0], histories[1:], warnings, rest if not histories[0].complete else None)
