"""Bounded history of metric records, and the series the panes plot from it."""
from __future__ import annotations

import math
from collections import deque
from typing import Iterable

import numpy as np

from engine.metrics import GroupStats, MetricsRecord

RECORD_FIELDS = ("iteration", "epoch", "loss", "sign_flip", "l2_remainder")
GROUP_FIELDS = (
    "count", "goodness", "sparsity", "silenced", "newly_silenced", "valid",
    "sparser", "theorem", "general", "agree_theorem", "agree_general",
)
GROUP_ORDER = ("pos", "neg", "all")


class History:
    """The last ``maxlen`` records as per-iteration scalars, and the per-sample theorem sides of the
    last ``batches`` records. ``version`` grows with every change, so a pane can tell whether its
    data moved since it last drew."""

    def __init__(self, maxlen: int = 5000, batches: int = 20) -> None:
        self.maxlen = maxlen
        self.batches = batches
        self.version = 0
        self.generation = 0
        self.clear()

    def clear(self) -> None:
        self.mode: str | None = None
        self.groups: tuple[str, ...] = ()
        self.latest: MetricsRecord | None = None
        self.total = 0
        self._scalars: dict[str, deque[float]] = {}
        self._sides: dict[str, deque[tuple[np.ndarray, np.ndarray]]] = {}
        self.version += 1
        self.generation += 1

    def __len__(self) -> int:
        col = self._scalars.get("iteration")
        return len(col) if col is not None else 0

    def _column(self, key: str) -> deque[float]:
        col = self._scalars.get(key)
        if col is None:
            col = self._scalars[key] = deque(maxlen=self.maxlen)
        return col

    def add(self, records: Iterable[MetricsRecord]) -> bool:
        """Append records; a record that goes back in iterations or changes the mode starts anew."""
        changed = False
        for rec in records:
            if self.latest is not None and (rec.iteration <= self.latest.iteration or rec.mode != self.mode
                                            or tuple(rec.groups) != self.groups):
                self.clear()
            if self.latest is None:
                self.mode = rec.mode
                self.groups = tuple(sorted(rec.groups, key=_group_key))
            for name in RECORD_FIELDS:
                self._column(name).append(float(getattr(rec, name)))
            for gname, grp in rec.groups.items():
                for name in GROUP_FIELDS:
                    self._column(f"{gname}.{name}").append(float(getattr(grp, name)))
                sides = self._sides.get(gname)
                if sides is None:
                    sides = self._sides[gname] = deque(maxlen=self.batches)
                sides.append((grp.lhs, grp.rhs))
            self.latest = rec
            self.total += 1
            changed = True
        if changed:
            self.version += 1
        return changed

    def series(self, key: str) -> np.ndarray:
        col = self._scalars.get(key)
        if col is None:
            return np.empty(0)
        return np.fromiter(col, dtype=float, count=len(col))

    def iterations(self) -> np.ndarray:
        return self.series("iteration")

    def sides(self, group: str) -> tuple[np.ndarray, np.ndarray]:
        """The theorem's two sides over the kept batches, one value per sample (NaN when silenced)."""
        kept = self._sides.get(group)
        if not kept:
            return np.empty(0), np.empty(0)
        lhs = np.concatenate([np.asarray(a, dtype=float) for a, _ in kept])
        rhs = np.concatenate([np.asarray(b, dtype=float) for _, b in kept])
        return lhs, rhs

    def sides_batches(self, group: str) -> int:
        kept = self._sides.get(group)
        return len(kept) if kept else 0

    def group(self, name: str) -> GroupStats | None:
        if self.latest is None:
            return None
        return self.latest.groups.get(name)


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
