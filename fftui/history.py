"""Bounded history of metric chunks, and the series the panes plot from it."""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

import numpy as np

from engine.chunk import MetricsChunk, chunks_from_records
from engine.config import Config
from engine.metrics import BATCH_METRICS, GROUP_METRICS, GroupStats, MetricsRecord

# every numeric per-batch and per-group metric of the declaration is kept as a series
SERIES_BATCH = tuple(m.name for m in BATCH_METRICS if m.dtype != "str")
SERIES_GROUP = tuple(m.name for m in GROUP_METRICS)
GROUP_ORDER = ("pos", "neg", "all")


class SeriesBuffer:
    """The last ``maxlen`` values of ``rows`` series in one float64 array twice that wide: a block of
    new values (rows x n) is copied in at once, and when the array is full the newest ``maxlen``
    columns move to its front (amortised O(1) per value; a read is one slice)."""

    def __init__(self, rows: int, maxlen: int) -> None:
        self.maxlen = maxlen
        self._data = np.empty((rows, 2 * maxlen))
        self._start = self._stop = 0

    def __len__(self) -> int:
        return self._stop - self._start

    def extend(self, block: np.ndarray) -> None:
        """Append block (rows x n): n new values of every series."""
        n, cap = block.shape[1], self.maxlen
        if n >= cap:
            self._data[:, :cap] = block[:, n - cap:]
            self._start, self._stop = 0, cap
            return
        if self._stop + n > self._data.shape[1]:
            keep = min(len(self), cap - n)
            self._data[:, :keep] = self._data[:, self._stop - keep:self._stop]
            self._start, self._stop = 0, keep
        self._data[:, self._stop:self._stop + n] = block
        self._stop += n
        self._start = max(self._start, self._stop - cap)

    def row(self, i: int) -> np.ndarray:
        """A copy of series i's kept values, oldest first."""
        return self._data[i, self._start:self._stop].copy()


class History:
    """The last ``maxlen`` batches as per-iteration series (every numeric BATCH and GROUP metric of
    engine/metrics.py, keys "loss", "pos.sparser", ...), and the per-sample theorem sides of the last
    ``batches`` batches. ``version`` grows with every change, so a pane can tell whether its data
    moved since it last drew."""

    def __init__(self, maxlen: int = 5000, batches: int = 20) -> None:
        self.maxlen = maxlen
        self.batches = batches
        self.version = 0
        self.runs = 0      # times the data started anew (`clear`): a new run, mode or set of groups
        self.config: Config | None = None
        self.others: list = []  # recorded runs drawn beside this one (fftui/overlay.py); kept across runs
        self.clear()

    def set_config(self, config: Config | None) -> None:
        """The configuration the newest batches were trained with (the panes say what it implies,
        such as whether the theorem is the generalised predictor); a change counts as new data."""
        if config != self.config:
            self.config = config
            self.version += 1

    def mark(self, iteration: int, label: str) -> None:
        """Something happened to the run after batch `iteration` (a parameter change): the panes
        draw a mark there (`marks`) until the run starts anew."""
        self.marks.append((int(iteration), label))
        self.version += 1

    def clear(self) -> None:
        self.marks: list[tuple[int, str]] = []  # (iteration, label) of the run's events, in order
        self.mode: str | None = None
        self.groups: tuple[str, ...] = ()
        self.total = 0
        self._keys: dict[str, int] = {}           # series key -> row of the buffer
        self._buffer: SeriesBuffer | None = None
        self._sides: dict[str, deque[tuple[np.ndarray, np.ndarray]]] = {}
        self._last: MetricsChunk | None = None
        self._latest: tuple[int, MetricsRecord] | None = None
        self.version += 1
        self.runs += 1

    def __len__(self) -> int:
        return len(self._buffer) if self._buffer is not None else 0

    @property
    def latest(self) -> MetricsRecord | None:
        """The newest batch as a record (built on first use after a change)."""
        if self._last is None:
            return None
        if self._latest is None or self._latest[0] != self.version:
            self._latest = (self.version, self._last.record(-1))
        return self._latest[1]

    @property
    def last_iteration(self) -> int | None:
        """The newest batch's iteration, None while empty."""
        return self._last.last_iteration if self._last is not None else None

    def add(self, items: Iterable[MetricsChunk | MetricsRecord]) -> bool:
        """Append chunks (or records, taken as chunks); a chunk that goes back in iterations or
        changes the mode or the groups starts anew. Consecutive chunks are appended together."""
        chunks: list[MetricsChunk] = []
        records: list[MetricsRecord] = []
        for item in items:
            if isinstance(item, MetricsChunk):
                chunks += chunks_from_records(records) if records else []
                records = []
                chunks.append(item)
            else:
                records.append(item)
        chunks += chunks_from_records(records) if records else []
        run: list[MetricsChunk] = []
        for chunk in chunks:
            if not len(chunk):
                continue
            groups = tuple(sorted(chunk.groups, key=_group_key))
            last = run[-1] if run else self._last
            if last is not None and (chunk.first_iteration <= last.last_iteration or chunk.mode != self.mode
                                     or groups != self.groups):
                run = []
                self.clear()
            if self._last is None and not run:
                self.mode, self.groups = chunk.mode, groups
            run.append(chunk)
        self._append(run)
        if run:
            self.version += 1
        return bool(run)

    def _append(self, run: list[MetricsChunk]) -> None:
        """Append consecutive chunks of one layout: every series in one block, the newest sides."""
        if not run:
            return
        groups = run[0].groups
        if self._buffer is None:
            keys = [*SERIES_BATCH, *(f"{g}.{name}" for g in groups for name in SERIES_GROUP)]
            self._keys = {key: i for i, key in enumerate(keys)}
            self._buffer = SeriesBuffer(len(keys), self.maxlen)

        def column(name: str) -> np.ndarray:
            return run[0].columns[name] if len(run) == 1 else np.concatenate([c.columns[name] for c in run])

        per_batch = np.stack([column(name) for name in SERIES_BATCH])                     # k1 x r
        per_group = np.stack([column(name) for name in SERIES_GROUP]).transpose(2, 0, 1)  # groups x k2 x r
        self._buffer.extend(np.concatenate([per_batch, per_group.reshape(-1, per_batch.shape[1])]))
        for gi, gname in enumerate(groups):
            sides = self._sides.get(gname)
            if sides is None:
                sides = self._sides[gname] = deque(maxlen=self.batches)
            kept: list[tuple[np.ndarray, np.ndarray]] = []
            for chunk in reversed(run):  # the newest batches only
                take = min(len(chunk), self.batches - len(kept))
                lhs, rhs = chunk.columns["lhs"][-take:, gi].copy(), chunk.columns["rhs"][-take:, gi].copy()
                kept[:0] = zip(lhs, rhs, strict=True)
                if len(kept) >= self.batches:
                    break
            sides.extend(kept)
        self._last = run[-1]
        self.total += sum(len(c) for c in run)

    def series(self, key: str) -> np.ndarray:
        """The kept values of one series ("loss", "pos.sparser", ...), oldest first; empty if unknown."""
        row = self._keys.get(key)
        if row is None or self._buffer is None:
            return np.empty(0)
        return self._buffer.row(row)

    def iterations(self) -> np.ndarray:
        return self.series("iteration")

    def sides(self, group: str) -> tuple[np.ndarray, np.ndarray]:
        """The theorem's two sides over the kept batches, one value per sample (NaN when silenced)."""
        kept = self._sides.get(group)
        if not kept:
            return np.empty(0), np.empty(0)
        lhs = np.concatenate([a for a, _ in kept]).astype(float)
        rhs = np.concatenate([b for _, b in kept]).astype(float)
        return lhs, rhs

    def sides_batches(self, group: str) -> int:
        kept = self._sides.get(group)
        return len(kept) if kept else 0

    def group(self, name: str) -> GroupStats | None:
        latest = self.latest
        if latest is None:
            return None
        return latest.groups.get(name)


def _group_key(name: str) -> int:
    return GROUP_ORDER.index(name) if name in GROUP_ORDER else len(GROUP_ORDER)


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points that skips NaN (NaN where all are NaN)."""
    if window <= 1 or y.size == 0:
        return y
    finite = np.isfinite(y)
    values = np.where(finite, y, 0.0)
    csum = np.concatenate(([0.0], np.cumsum(values)))
    ccount = np.concatenate(([0], np.cumsum(finite)))
    idx = np.arange(1, y.size + 1)
    lo = np.maximum(idx - window, 0)
    total = csum[idx] - csum[lo]
    count = ccount[idx] - ccount[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count
    out[count == 0] = np.nan
    return out


def downsample(x: np.ndarray, ys: list[np.ndarray], points: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """At most ``points`` points: consecutive buckets replaced by their NaN-aware means."""
    n = x.size
    if points < 1 or n <= points:
        return x, ys
    edges = np.linspace(0, n, points + 1).astype(int)
    starts = edges[:-1]
    sizes = np.diff(edges)
    keep = sizes > 0
    starts, sizes = starts[keep], sizes[keep]
    xs = np.add.reduceat(x, starts) / sizes
    out = []
    for y in ys:
        finite = np.isfinite(y)
        total = np.add.reduceat(np.where(finite, y, 0.0), starts)
        count = np.add.reduceat(finite.astype(float), starts)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / count
        mean[count == 0] = np.nan
        out.append(mean)
    return xs, out


def change_label(changes: dict) -> str:
    """A mark's label for parameter changes {name: [old, new]}: "lr 0.001→0.01, batch_size 128→64"."""
    from engine.params import format_value

    return ", ".join(f"{name} {format_value(old)}→{format_value(new)}" for name, (old, new) in changes.items())


def fmt(value: float | None, spec: str = ".3g", percent: bool = False) -> str:
    """A number for the screen; NaN and None read as an en dash."""
    if value is None:
        return "–"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "–"
    if percent:
        return f"{100 * v:.1f} %"
    return format(v, spec)
