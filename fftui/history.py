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
# a stack's layers: the batch series every layer shares (kept once) and the ones of each layer
SHARED_BATCH = ("iteration", "epoch", "step_time", "metrics_time")
LAYER_BATCH = tuple(name for name in SERIES_BATCH if name not in SHARED_BATCH)


def series_end() -> tuple[str, ...]:
    """The end-to-end group metrics of engine/stack.py (every layer has them). Imported when a
    stack's chunk arrives: engine.stack imports torch, which the app's first frame does not wait for."""
    from engine.metrics import GROUP
    from engine.stack import STACK_METRICS

    return tuple(m.name for m in STACK_METRICS if m.level == GROUP)


def layer_count(chunk: MetricsChunk) -> int:
    """The layers a chunk holds: a stack's (engine/stack.py StackChunk, its `layers`), else 1."""
    layers = getattr(chunk, "layers", None)
    return len(layers) if layers is not None else 1


class SeriesBuffer:
    """The last ``maxlen`` values of ``rows`` series in one float64 array twice that wide: a block of
    new values (rows x n) is copied in at once, and when the array is full the newest ``maxlen``
    columns move to its front (amortised O(1) per value; a read is one slice)."""

    def __init__(self, rows: int, maxlen: int, dtype: type = np.float64) -> None:
        self.maxlen = maxlen
        self._data: np.ndarray = np.empty((rows, 2 * maxlen), dtype=dtype)
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
        """A copy of series i's kept values, oldest first (float64)."""
        return self._data[i, self._start:self._stop].astype(np.float64)


class History:
    """The last ``maxlen`` batches as per-iteration series (every numeric BATCH and GROUP metric of
    engine/metrics.py, keys "loss", "pos.sparser", ...), and the per-sample theorem sides of the last
    ``batches`` batches. ``version`` grows with every change, so a pane can tell whether its data
    moved since it last drew.

    A stack's chunks (engine/stack.py StackChunk) keep every layer: the first layer's series as a
    one-layer run's (float64), the other layers' series and every layer's end-to-end group metrics
    (engine/stack.py STACK_METRICS) in a second buffer of float32 (half the memory; a layer's batch series that every
    layer shares, such as the iteration, are kept once), and each layer's theorem sides. ``layer``
    is the layer the panes read (`select`): `series`, `latest`, `sides` and `group` give that
    layer's; `series(key, layer)` any layer's. ``evaluations`` are the run's test errors
    (engine/evaluate.py Evaluation), oldest first."""

    def __init__(self, maxlen: int = 5000, batches: int = 20) -> None:
        self.maxlen = maxlen
        self.batches = batches
        self.version = 0
        self.runs = 0      # times the data started anew (`clear`): a new run, mode or set of groups
        self.config: Config | None = None
        self.others: list = []  # recorded runs drawn beside this one (fftui/overlay.py); kept across runs
        self.layer = 0     # the layer the panes show (kept across runs; `shown_layer` clamps it)
        self.clear()

    @property
    def shown_layer(self) -> int:
        """The layer the panes read: ``layer``, or the last layer where the run has fewer."""
        return min(self.layer, self.layers - 1)

    def select(self, layer: int) -> None:
        """Show layer ``layer`` (0 = the first) in every pane: a change of what the panes read. The
        recorded runs drawn beside it (``others``, fftui/overlay.py) show that layer too
        (`fftui.recording.RecordedHistory.select`: their last where they have fewer)."""
        for other in self.others:
            other.select(layer)
        if layer != self.layer:
            self.layer = layer
            self.version += 1

    def add_evaluation(self, evaluation) -> None:
        """A test error of this run (engine/evaluate.py Evaluation); one per iteration, the newest kept."""
        if self.evaluations and self.evaluations[-1].iteration == evaluation.iteration:
            self.evaluations[-1] = evaluation
        else:
            self.evaluations.append(evaluation)
        self.version += 1

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
        self._latest: tuple[tuple[int, int], MetricsRecord | None] | None = None
        self.layers = 1                                      # layers of the run's chunks
        self._layer_keys: dict[tuple[int, str], int] = {}    # (layer, series key) -> row of _layer_buffer
        self._layer_buffer: SeriesBuffer | None = None
        self._layer_sides: dict[int, dict[str, deque[tuple[np.ndarray, np.ndarray]]]] = {}
        self.evaluations: list = []
        self.version += 1
        self.runs += 1

    def __len__(self) -> int:
        return len(self._buffer) if self._buffer is not None else 0

    @property
    def latest(self) -> MetricsRecord | None:
        """The newest batch of the layer shown as a record (built on first use after a change)."""
        if self._last is None:
            return None
        key = (self.version, self.shown_layer)
        if self._latest is None or self._latest[0] != key:
            self._latest = (key, self.latest_at(self.shown_layer))
        return self._latest[1]

    def latest_at(self, layer: int) -> MetricsRecord | None:
        """The newest batch of one layer as a record (None while empty or beyond the layers)."""
        last = self._last
        if last is None or layer >= self.layers:
            return None
        if layer_count(last) > 1:
            return last.layers[layer].record(-1)  # type: ignore[attr-defined]
        return last.record(-1)

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
                                     or groups != self.groups or layer_count(chunk) != self.layers):
                run = []
                self.clear()
            if self._last is None and not run:
                self.mode, self.groups, self.layers = chunk.mode, groups, layer_count(chunk)
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
        _keep_sides(self._sides, run, groups, self.batches)
        if self.layers > 1:
            self._append_layers(run)
        self._last = run[-1]
        self.total += sum(len(c) for c in run)

    def _append_layers(self, run: list[MetricsChunk]) -> None:
        """A stack's other layers: every series of layers 1.. and every layer's end-to-end group
        metrics in one block of the float32 buffer; the newest sides of layers 1.."""
        stacks: list = [c for c in run if layer_count(c) == self.layers]
        groups = run[0].groups
        ends_names = series_end()
        own = [*LAYER_BATCH, *(f"{g}.{name}" for g in groups for name in SERIES_GROUP)]
        ends = [f"{g}.{name}" for g in groups for name in ends_names]
        if self._layer_buffer is None:
            keys = [(layer, key) for layer in range(self.layers) for key in (own if layer else []) + ends]
            self._layer_keys = {key: i for i, key in enumerate(keys)}
            self._layer_buffer = SeriesBuffer(len(keys), self.maxlen, np.float32)
        rows: list[np.ndarray] = []
        for layer in range(self.layers):
            def column(name: str, layer: int = layer) -> np.ndarray:
                parts = [c.ends[layer][name] if name in c.ends[layer] else c.layers[layer].columns[name]
                         for c in stacks]
                return parts[0] if len(parts) == 1 else np.concatenate(parts)

            names = (SERIES_GROUP, ends_names) if layer else (ends_names,)
            if layer:
                rows += [column(name) for name in LAYER_BATCH]
            for series_names in names:
                block = np.stack([column(name) for name in series_names])  # k x r x groups
                rows += list(block.transpose(2, 0, 1).reshape(-1, block.shape[1]))
        self._layer_buffer.extend(np.stack(rows))  # the keys' order: batch, then group by group
        for layer in range(1, self.layers):
            _keep_sides(self._layer_sides.setdefault(layer, {}), [c.layers[layer] for c in stacks], groups,
                        self.batches)

    def series(self, key: str, layer: int | None = None) -> np.ndarray:
        """The kept values of one series ("loss", "pos.sparser", ...) of the layer shown (or of
        ``layer``), oldest first; empty if unknown. A stack's end-to-end group metrics
        ("pos.sparser_end", ...) are there for every layer."""
        layer = self.shown_layer if layer is None else layer
        row = self._keys.get(key) if layer == 0 or key in SHARED_BATCH else None
        if row is not None and self._buffer is not None:
            return self._buffer.row(row)
        row = self._layer_keys.get((layer, key))
        if row is None or self._layer_buffer is None:
            return np.empty(0)
        return self._layer_buffer.row(row)

    def iterations(self) -> np.ndarray:
        return self.series("iteration")

    def _sides_of(self, group: str) -> deque[tuple[np.ndarray, np.ndarray]] | None:
        layer = self.shown_layer
        return self._sides.get(group) if layer == 0 else self._layer_sides.get(layer, {}).get(group)

    def sides(self, group: str) -> tuple[np.ndarray, np.ndarray]:
        """The theorem's two sides of the layer shown over the kept batches, one value per sample
        (NaN when silenced)."""
        kept = self._sides_of(group)
        if not kept:
            return np.empty(0), np.empty(0)
        lhs = np.concatenate([a for a, _ in kept]).astype(float)
        rhs = np.concatenate([b for _, b in kept]).astype(float)
        return lhs, rhs

    def sides_batches(self, group: str) -> int:
        kept = self._sides_of(group)
        return len(kept) if kept else 0

    def group(self, name: str) -> GroupStats | None:
        latest = self.latest
        if latest is None:
            return None
        return latest.groups.get(name)


def _keep_sides(store: dict[str, deque[tuple[np.ndarray, np.ndarray]]], run: list[MetricsChunk],
                groups: tuple[str, ...], batches: int) -> None:
    """Keep the theorem sides of the newest ``batches`` batches of ``run`` (one layer's chunks),
    per group, in ``store``."""
    for gi, gname in enumerate(groups):
        sides = store.get(gname)
        if sides is None:
            sides = store[gname] = deque(maxlen=batches)
        kept: list[tuple[np.ndarray, np.ndarray]] = []
        for chunk in reversed(run):  # the newest batches only
            take = min(len(chunk), batches - len(kept))
            lhs, rhs = chunk.columns["lhs"][-take:, gi].copy(), chunk.columns["rhs"][-take:, gi].copy()
            kept[:0] = zip(lhs, rhs, strict=True)
            if len(kept) >= batches:
                break
        sides.extend(kept)


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
