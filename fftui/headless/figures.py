"""Text renderings of the report's figures (plotext, no colour) and their one-paragraph summaries."""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import plotext as plt

from engine.config import Config
from engine.figure1 import InitResult
from engine.presets import SeriesSummary
from fftui.widgets.ticks import iteration_ticks

MARKERS = ("*", "o", "+", "x")


def _finish(title: str, xlabel: str, ylabel: str) -> str:
    plt.title(title)
    plt.xlabel(xlabel)
    plt.ylabel(ylabel)
    text = plt.uncolorize(plt.build())
    plt.clear_figure()
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def _start(width: int, height: int) -> None:
    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")


def downsample(x: np.ndarray, y: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Means over equal runs of consecutive points, so a long series fits the plot's columns."""
    if len(x) <= points:
        return x, y
    edges = np.linspace(0, len(x), points + 1).astype(int)
    xs = np.array([x[a:b].mean() for a, b in itertools.pairwise(edges) if b > a])
    ys = np.array([np.nanmean(y[a:b]) if np.isfinite(y[a:b]).any() else np.nan
                   for a, b in itertools.pairwise(edges) if b > a])
    return xs, ys


def render_fig1a(result: InitResult, width: int = 100, height: int = 24, bins: int = 60) -> str:
    """Histograms of Theorem 1's LHS and RHS over every sample (the report's Figure 1A)."""
    lhs = result.lhs[np.isfinite(result.lhs)]
    rhs = result.rhs[np.isfinite(result.rhs)]
    hi = float(np.percentile(np.concatenate([lhs, rhs]), 99.5)) if lhs.size else 1.0
    lo = float(min(np.percentile(lhs, 0.5), np.percentile(rhs, 0.5))) if lhs.size and rhs.size else 0.0
    edges = np.linspace(lo, hi, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    _start(width, height)
    for data, label, marker in ((lhs, "LHS = |h|_1/|h|_2", MARKERS[0]), (rhs, "RHS = P/Q", MARKERS[1])):
        counts, _ = np.histogram(np.clip(data, lo, hi), bins=edges)
        plt.plot(centres.tolist(), counts.tolist(), label=label, marker=marker)
    return _finish(f"Theorem 1 at initialisation: {result.satisfied:,} of {result.samples:,} samples "
                   f"with LHS < RHS (N = {result.batch_size})", "value", "samples")


def render_fig1b(results: Sequence[InitResult], width: int = 100, height: int = 20) -> str:
    """The LHS < RHS ratio against the batch size N (the report's Figure 1B), N on a log2 axis."""
    _start(width, height)
    xs = [math.log2(r.batch_size) for r in results]
    plt.plot(xs, [r.ratio for r in results], marker=MARKERS[0], label="ratio with LHS < RHS")
    plt.xticks(xs, [str(r.batch_size) for r in results])
    return _finish("Theorem 1 at initialisation: ratio against batch size", "batch size N", "ratio")


def render_fig1b_seeds(runs: Sequence[Sequence[InitResult]], seeds: Sequence[int], width: int = 100,
                       height: int = 20) -> str:
    """Figure 1B for several seeds: one ratio-against-N curve per seed (runs: per seed, one
    InitResult per batch size), N on a log2 axis."""
    _start(width, height)
    xs = [math.log2(r.batch_size) for r in runs[0]]
    for seed, results, marker in zip(seeds, runs, itertools.cycle(MARKERS), strict=False):
        plt.plot(xs, [r.ratio for r in results], marker=marker, label=f"seed {seed}")
    plt.xticks(xs, [str(r.batch_size) for r in runs[0]])
    return _finish("Theorem 1 at initialisation: ratio with LHS < RHS against batch size, per seed",
                   "batch size N", "ratio of all digits")


def render_series(summary: SeriesSummary, title: str, width: int = 100, height: int = 22) -> str:
    """Per-iteration ratios (Figures 2 and 3), one plot per group, series downsampled to the width."""
    groups = sorted({c.split("_")[0] for c in summary.columns[1:] if "_" in c}) or [""]
    parts = []
    it = summary.column("iteration")
    for g in groups:
        prefix = f"{g}_" if g else ""
        cols = [c for c in summary.columns[1:] if (c.startswith(prefix) if g else "_" not in c)]
        _start(width, height)
        for col, marker in zip(cols, MARKERS, strict=False):
            x, y = downsample(it, summary.column(col), width - 12)
            plt.plot(x.tolist(), y.tolist(), label=col.removeprefix(prefix), marker=marker)
        plt.ylim(0, 1)
        if len(it):  # whole iterations, the last one the run's last (not plotext's fractions)
            ticks = iteration_ticks(float(it[0]), int(it[-1]), max(2, (width - 12) // 12))
            plt.xticks(ticks, [str(t) for t in ticks])
        name = {"pos": "positives", "neg": "negatives"}.get(g, "batch")
        parts.append(_finish(f"{title} ({name})" if g else title, "iteration", "ratio of the batch"))
    return "\n".join(parts)


def _pct(v: float) -> str:
    return "–" if not math.isfinite(v) else f"{100 * v:.1f} %"


def trend(sizes: Sequence[int], ratios: Sequence[float]) -> str:
    """How the ratio moves as N grows, in words drawn from the numbers: "rises at every step",
    "rises up to N = 8, then stays at 100.0 %", "stays at 100.0 % for every N", "never falls, level
    from N = 4 to N = 8", or where it falls. sizes: the batch sizes N, ascending; ratios: one each."""
    pairs = list(itertools.pairwise(zip(sizes, ratios, strict=True)))
    falls = [(a, b) for a, b in pairs if b[1] < a[1]]
    if falls:
        return "falls " + ", ".join(f"from N = {a[0]} to N = {b[0]} ({_pct(a[1])} to {_pct(b[1])})"
                                    for a, b in falls)
    level = [(a, b) for a, b in pairs if b[1] == a[1]]
    if not level:
        return "rises at every step"
    if len(level) == len(pairs):
        return f"stays at {_pct(ratios[0])} for every N"
    k = len(ratios) - 1
    while k > 0 and ratios[k - 1] == ratios[-1]:
        k -= 1
    if len(level) == len(ratios) - 1 - k:  # rises strictly, then a plateau to the end
        return f"rises up to N = {sizes[k]}, then stays at {_pct(ratios[-1])}"
    return "never falls, level " + ", ".join(f"from N = {a[0]} to N = {b[0]}" for a, b in level)


def _both_counts(r: InitResult) -> str:
    """The literal LHS < RHS count beside the product form that decides "predicted sparser"."""
    if r.predicted_sparser == r.satisfied:
        return ""
    return (f"; {r.predicted_sparser:,} are predicted sparser by the product form P|h|_2 > |h|_1 Q "
            f"(the two differ where Q <= 0)")


def summarise_init(results: Sequence[InitResult], claim: str, source: str) -> str:
    """The closing sentence of fig1a/fig1b from their numbers (width, counts, how the ratio moves)."""
    if len(results) == 1:
        r = results[0]
        sil = f", {r.silenced} silenced" if r.silenced else ", none silenced"
        return (f"On {source}, a freshly initialised layer (n = {r.width}) fed every one of the {r.samples:,} "
                f"digits in batches of N = {r.batch_size}: {r.satisfied:,} satisfy Theorem 1's LHS < RHS "
                f"({_pct(r.ratio)}{sil}){_both_counts(r)}. The report: {claim}.")
    pairs = ", ".join(f"N = {r.batch_size}: {_pct(r.ratio)}" for r in results)
    differ = "".join(f" At N = {r.batch_size}{_both_counts(r)}." for r in results if _both_counts(r))
    return (f"On {source}, the share of digits with LHS < RHS at initialisation (n = {results[0].width}): "
            f"{pairs}. It {trend([r.batch_size for r in results], [r.ratio for r in results])}.{differ} "
            f"The report: {claim}.")


def summarise_series(summary: SeriesSummary, cfg: Config, claim: str, source: str) -> str:
    st = summary.stats()
    n = len(summary.rows)
    theorem = "theorem1" if cfg.mode == "descent" else "theorem2"
    groups = [("", "the batch")] if cfg.mode == "descent" else [("pos_", "positives"), ("neg_", "negatives")]
    bits = []
    for prefix, label in groups:
        s, t = st[f"{prefix}sparser"], st[f"{prefix}{theorem}"]
        err = summary.prediction_error(f"{prefix}sparser", f"{prefix}{theorem}")
        text = (f"for {label} the actually-sparser ratio went from {_pct(s['first_tenth'])} (first tenth of "
                f"the run) to {_pct(s['last_tenth'])} (last tenth), mean {_pct(s['mean'])}, above 50 % in "
                f"{_pct(s['above_half'])} of iterations; the {theorem.replace('theorem', 'Theorem ')} ratio "
                f"went from {_pct(t['first_tenth'])} to {_pct(t['last_tenth'])}, off by "
                f"{100 * err['mean_abs']:.1f} points on average")
        if f"{prefix}general" in st:
            e2 = summary.prediction_error(f"{prefix}sparser", f"{prefix}general")
            text += f" (the generalised predictor: {100 * e2['mean_abs']:.1f} points)"
        bits.append(text)
    return (f"{n} iterations of {cfg.mode} training ({cfg.loss} loss, {cfg.optimizer} lr {cfg.lr:g}, "
            f"N = {cfg.batch_size}, n = {cfg.width}) on {source}: " + "; ".join(bits) +
            f". Ratios are over all N samples of a batch, as in the report. The report: {claim}.")
