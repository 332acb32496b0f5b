"""The presets' figures as PNG and SVG files laid out like the report's Figures 1A, 1B, 2 and 3A/B,
drawn with matplotlib (the optional extra `fftui[plots]`) on its Agg backend, never on a screen.

With several seeds every curve is the mean over the seeds and a shaded band of ± one sample
standard deviation (ddof = 1) around it; the legend says so. Without matplotlib, `write_figures`
returns None and the caller says in one line how to install it (MISSING)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.figure1 import InitResult
from engine.presets import SeriesSummary

MISSING = ("matplotlib is not installed, so no PNG/SVG figure was written (the CSV and text figure were); "
           "pip install 'fftui[plots]'")
RATIO_LABEL = "ratio over all N samples of the batch"
GROUP_NAMES = {"pos": "positives", "neg": "negatives"}
SERIES_LABELS = {"sparser": "actually sparser", "theorem1": "Theorem 1 (predicted sparser)",
                 "theorem2": "Theorem 2 (predicted sparser)", "general": "generalised predictor"}
COLOURS = {"sparser": "#1f77b4", "theorem1": "#d62728", "theorem2": "#d62728", "general": "#2ca02c",
           "lhs": "#1f77b4", "rhs": "#ff7f0e"}
LINE_STYLES: dict[str, Any] = {"sparser": "-", "general": (0, (1, 1.5))}  # the theorem's: dashed


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files only, no window), or None when matplotlib is not
    installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation (ddof = 1) over the first axis (the seeds) of a (K, L)
    array, ignoring NaN; the deviation is NaN with fewer than two finite values."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.where(np.isfinite(values), values, 0.0).sum(axis=0)
        mean = np.where(finite > 0, total / np.maximum(finite, 1), np.nan)
        dev = np.where(np.isfinite(values), values - mean, 0.0)
        sd = np.where(finite > 1, np.sqrt((dev ** 2).sum(axis=0) / np.maximum(finite - 1, 1)), np.nan)
    return mean, sd


def _band_note(seeds: int) -> str:
    return f"mean over {seeds} seeds; band ± 1 sample sd (ddof = 1)" if seeds > 1 else ""


def _draw(ax: Any, x: np.ndarray, rows: np.ndarray, label: str, colour: str, step: bool = False,
          marker: str | None = None, width: float = 1.2, style: str = "-") -> None:
    """One curve: the mean over the rows (seeds), and with two or more rows its ± sd band."""
    mean, sd = band(rows)
    where = "mid" if step else None
    if step:
        ax.step(x, mean, where="mid", color=colour, label=label, linewidth=width)
    else:
        ax.plot(x, mean, color=colour, label=label, linewidth=width, marker=marker, linestyle=style,
                zorder=3 if style == "-" else 2)
    if rows.shape[0] > 1:
        ax.fill_between(x, mean - sd, mean + sd, color=colour, alpha=0.25, linewidth=0, step=where)


def fig1a(plt: Any, runs: Sequence[InitResult], bins: int = 60) -> Any:
    """Figure 1A: histograms of Theorem 1's LHS = |h|_1/|h|_2 and RHS = P/Q over every sample at
    initialisation; runs: one InitResult per seed (one batch size). Common bin edges for all seeds
    from the 0.5th to the 99.5th percentile of both sides (values outside are not drawn; the axis
    label says so). Returns the Figure; its lines are the mean count per bin, in the order LHS, RHS."""
    lhs = [r.lhs[np.isfinite(r.lhs)] for r in runs]
    rhs = [r.rhs[np.isfinite(r.rhs)] for r in runs]
    edges = histogram_edges(np.concatenate(lhs), np.concatenate(rhs), bins)
    centres = (edges[:-1] + edges[1:]) / 2
    fig, ax = plt.subplots(figsize=(7.0, 4.2), layout="constrained")
    for side, parts, label in (("lhs", lhs, "LHS = |h|₁ / |h|₂"), ("rhs", rhs, "RHS = P / Q")):
        counts = np.stack([np.histogram(p, bins=edges)[0] for p in parts])
        _draw(ax, centres, counts.astype(float), label, COLOURS[side], step=True)
    r = runs[0]
    ax.set_xlabel("value of the side (dimensionless; 0.5th to 99.5th percentile of both sides shown)")
    ax.set_ylabel(f"digits per bin (of {r.samples:,})")
    counts_text = ", ".join(f"{x.satisfied:,}" for x in runs)
    ax.set_title(f"Figure 1A: Theorem 1 at initialisation (n = {r.width}, N = {r.batch_size})\n"
                 f"digits with LHS < RHS: {counts_text} of {r.samples:,}", fontsize=10)
    ax.legend(title=_band_note(len(runs)) or None, fontsize=9, title_fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def histogram_edges(lhs: np.ndarray, rhs: np.ndarray, bins: int) -> np.ndarray:
    """bins + 1 equal-width edges from the lower of the two sides' 0.5th percentiles to the 99.5th
    percentile of both sides together; (0, 1) when there is nothing to count."""
    if not lhs.size or not rhs.size:
        return np.linspace(0.0, 1.0, bins + 1)
    lo = float(min(np.percentile(lhs, 0.5), np.percentile(rhs, 0.5)))
    hi = float(np.percentile(np.concatenate([lhs, rhs]), 99.5))
    return np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)


def fig1b(plt: Any, runs: Sequence[Sequence[InitResult]]) -> Any:
    """Figure 1B: the share of digits with LHS < RHS against the batch size N on a log2 axis;
    runs: per seed, one InitResult per batch size (the same sizes in every seed). Returns the
    Figure; its first line is the mean ratio per N in percent."""
    sizes = np.array([r.batch_size for r in runs[0]], dtype=float)
    ratios = np.array([[100 * r.ratio for r in seed] for seed in runs])
    fig, ax = plt.subplots(figsize=(6.0, 4.0), layout="constrained")
    _draw(ax, sizes, ratios, "digits with LHS < RHS", COLOURS["sparser"], marker="o")
    if len(runs) > 1:
        for i, row in enumerate(ratios):
            ax.plot(sizes, row, color=COLOURS["sparser"], alpha=0.4, linewidth=0, marker=".",
                    label="each seed" if i == 0 else None)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(int(s)) for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("batch size N (log₂ scale)")
    ax.set_ylabel(f"% of all {runs[0][0].samples:,} digits")
    ax.set_title(f"Figure 1B: Theorem 1 at initialisation against N (n = {runs[0][0].width})", fontsize=10)
    ax.legend(title=_band_note(len(runs)) or None, fontsize=9, title_fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def series_rows(runs: Sequence[SeriesSummary], column: str) -> tuple[np.ndarray, np.ndarray]:
    """The iterations and a (seeds, iterations) array of one figure column, cut to the shortest
    seed's run."""
    length = min(len(s.rows) for s in runs)
    x = runs[0].column("iteration")[:length]
    return x, np.stack([s.column(column)[:length] for s in runs])


def fig_series(plt: Any, runs: Sequence[SeriesSummary], title: str) -> Any:
    """Figures 2 and 3A/B: per iteration the actually-sparser ratio and the theorem's ratio (and the
    generalised predictor's where the CSV has it), each over all N samples of the batch, in
    percent; one panel per group (positives and negatives side by side for FF). runs: one
    SeriesSummary per seed. Returns the Figure; each panel's lines are the mean per iteration, in
    the order of the figure's columns."""
    columns = runs[0].columns[1:]
    prefixes = sorted({c.split("_")[0] for c in columns if "_" in c}, reverse=True) or [""]
    fig, axes = plt.subplots(1, len(prefixes), figsize=(6.4 * len(prefixes), 4.0), layout="constrained",
                             squeeze=False, sharey=True)
    for ax, group, letter in zip(axes[0], prefixes, "AB", strict=False):
        prefix = f"{group}_" if group else ""
        for col in [c for c in columns if (c.startswith(prefix) if group else "_" not in c)]:
            key = col.removeprefix(prefix)
            x, rows = series_rows(runs, col)
            _draw(ax, x, 100 * rows, SERIES_LABELS.get(key, key), COLOURS.get(key, "#7f7f7f"), width=0.9,
                  style=LINE_STYLES.get(key, (0, (4, 2))))
        ax.axhline(50, color="#555555", linewidth=0.6, linestyle=":")
        ax.set_ylim(-2, 102)
        ax.set_xlabel("iteration (batch)")
        ax.set_title(f"{letter}: {GROUP_NAMES[group]}" if group else "", fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    note = _band_note(len(runs))
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels) + bool(note), fontsize=9,
               title=note or None, title_fontsize=8, frameon=False)
    axes[0][0].set_ylabel(f"% — {RATIO_LABEL}")
    fig.suptitle(title, fontsize=11)
    return fig


def build(name: str, plt: Any, runs: Sequence[Any], title: str) -> Any:
    """The figure of preset `name` from its per-seed results (InitResult lists for fig1a/fig1b,
    SeriesSummary for fig2/fig3)."""
    if name == "fig1a":
        return fig1a(plt, [r[0] for r in runs])
    if name == "fig1b":
        return fig1b(plt, runs)
    return fig_series(plt, runs, title)


def write_figures(name: str, folder: Path, runs: Sequence[Any], title: str) -> list[Path] | None:
    """Draw preset `name`'s figure and write it as folder/NAME.png (150 dpi) and folder/NAME.svg;
    returns the paths, or None when matplotlib is missing (nothing written). A run without an
    iteration draws nothing: []. engine.headless.OutputError (one line) when a file cannot be
    written."""
    from engine.headless import OutputError

    plt = pyplot()
    if plt is None:
        return None
    if not runs or (name in ("fig2", "fig3") and min(len(s.rows) for s in runs) == 0):
        return []
    fig = build(name, plt, runs, title)
    paths = [folder / f"{name}.png", folder / f"{name}.svg"]
    try:
        for path in paths:
            fig.savefig(path, dpi=150, metadata={"Date": None} if path.suffix == ".svg" else None)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return paths
