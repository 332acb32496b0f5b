"""A sweep's results: per setting and group, the mean and standard deviation over seeds of each
trial's statistics (fftui.sweep.trial.STAT_KEYS, computed from the trial's own records); as a rich
table, a CSV file, and plots against the swept parameter (plotext in the terminal, matplotlib PNG
with the optional extra ``fftui[plots]``).

Only finished trials count in the means; diverged and failed trials are counted apart."""
from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path
from typing import Any

from engine.params import format_value

from .definition import label
from .state import SweepState
from .trial import STAT_KEYS

GROUP_ORDER = ("pos", "neg", "all")
SHORT = {"first_tenth": "first ⅒", "last_tenth": "last ⅒", "sparser": "sparser", "above_half": "> 50 %",
         "error_theorem": "|thm−act|", "error_general": "|gen−act|", "agree_theorem": "agreement"}
LABELS = {"first_tenth": "sparser, first ⅒", "last_tenth": "sparser, last ⅒", "sparser": "sparser, mean",
          "above_half": "batches > 50 %", "error_theorem": "|theorem − sparser|",
          "error_general": "|general − sparser|", "agree_theorem": "agreement, theorem",
          "agree_general": "agreement, general"}
TABLE_KEYS = ("first_tenth", "last_tenth", "sparser", "above_half", "error_theorem", "error_general",
              "agree_theorem")


def mean_sd(values: list[float]) -> tuple[float, float]:
    """The mean and the sample standard deviation (n - 1) of the finite values; NaN when there are
    none (the deviation: fewer than two)."""
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    mean = sum(finite) / len(finite)
    if len(finite) < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1))


def aggregate(state: SweepState) -> list[dict[str, Any]]:
    """One row per setting and group, settings in order: {"setting", "values", "group", "trials",
    "finished", "diverged", "failed", "unfinished" (pending, running or interrupted), KEY: (mean, sd) for each of
    STAT_KEYS over the setting's finished trials}."""
    by_setting: dict[int, list[dict[str, Any]]] = {}
    for trial in state.trials:
        by_setting.setdefault(trial["setting"], []).append(trial)
    rows = []
    for setting in sorted(by_setting):
        trials = by_setting[setting]
        done = [t for t in trials if t["status"] == "finished" and t.get("stats")]
        groups = sorted({g for t in done for g in t["stats"]},
                        key=lambda g: GROUP_ORDER.index(g) if g in GROUP_ORDER else len(GROUP_ORDER))
        for group in groups or ["–"]:
            row: dict[str, Any] = {
                "setting": setting, "values": trials[0]["values"], "group": group, "trials": len(trials),
                "finished": len(done), "diverged": sum(t["status"] == "diverged" for t in trials),
                "failed": sum(t["status"] == "failed" for t in trials),
                "unfinished": sum(t["status"] not in ("finished", "diverged", "failed") for t in trials)}
            for key in STAT_KEYS:
                row[key] = mean_sd([t["stats"].get(group, {}).get(key, math.nan) for t in done])
            rows.append(row)
    return rows


def _cell(pair: tuple[float, float]) -> str:
    mean, sd = pair
    if not math.isfinite(mean):
        return "–"
    return f"{mean:.3f}" + (f"±{sd:.3f}" if math.isfinite(sd) else "")


def results_table(state: SweepState, rows: list[dict[str, Any]] | None = None) -> Any:
    """The rich Table of `aggregate`: per setting and group, mean ± sd over the finished seeds."""
    from rich import box
    from rich.table import Table

    rows = aggregate(state) if rows is None else rows
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, caption_justify="left",
                  caption="mean ± standard deviation over the finished trials (seeds) of each setting. sparser: "
                  "the actually-sparser ratio (over valid samples) over the first tenth of the batches, the last "
                  "tenth, all; > 50 %: fraction of batches above it; |thm−act|, |gen−act|: mean |predicted ratio − "
                  "sparser ratio| of the theorem and the generalised predictor; agreement: the theorem's per-sample "
                  "agreement; n: finished of the setting's trials")
    table.add_column("setting", no_wrap=True)
    table.add_column("group")
    table.add_column("n", justify="right")
    for key in TABLE_KEYS:
        table.add_column(SHORT[key], justify="right", no_wrap=True)
    for row in rows:
        lost = [f"{row[k]} {k}" for k in ("diverged", "failed", "unfinished") if row[k]]
        count = f"{row['finished']}/{row['trials']}" + (f" ({', '.join(lost)})" if lost else "")
        table.add_row(label(row["values"]), row["group"], count, *(_cell(row[k]) for k in TABLE_KEYS))
    return table


def results_csv(state: SweepState, rows: list[dict[str, Any]] | None = None) -> str:
    """The CSV of `aggregate`: setting, the swept parameters, group, counts, then KEY_mean and
    KEY_sd for each of STAT_KEYS (NaN as an empty cell)."""
    rows = aggregate(state) if rows is None else rows
    swept = [name for name in state.swept if name != "seed"] or state.swept
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["setting", *swept, "group", "trials", "finished", "diverged", "failed", "unfinished",
                     *(f"{k}_{part}" for k in STAT_KEYS for part in ("mean", "sd"))])
    for row in rows:
        numbers = [f"{v:.6g}" if math.isfinite(v) else "" for k in STAT_KEYS for v in row[k]]
        base = state.data.get("base", {})
        values = [format_value(row["values"].get(n, base.get(n))) for n in swept]
        writer.writerow([row["setting"], *values, row["group"], row["trials"], row["finished"], row["diverged"],
                         row["failed"], row["unfinished"], *numbers])
    return text.getvalue()


# -- plots ----------------------------------------------------------------------------------------
def plot_series(state: SweepState, rows: list[dict[str, Any]], key: str) -> tuple[str, list[tuple[str, list]]]:
    """The swept parameter plotted along x (the first one swept other than the seed) and, for `key`,
    one series per group and combination of the other swept values: [(name, [(x, mean, sd), ...])].
    Returns ("", []) when only the seed is swept."""
    axis = next((n for n in state.swept if n != "seed"), "")
    if not axis:
        return "", []
    series: dict[str, list] = {}
    base = state.data.get("base", {})
    for row in rows:
        others = {k: v for k, v in row["values"].items() if k != axis}
        name = " ".join(filter(None, [label(others) if others else "", row["group"]]))
        mean, sd = row[key]
        series.setdefault(name, []).append((row["values"].get(axis, base.get(axis)), mean, sd))
    return axis, list(series.items())


def _numeric(points: list) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x, _, _ in points)


def _log_axis(axis_values: list) -> bool:
    positive = [x for x in axis_values if isinstance(x, (int, float)) and x > 0]
    return len(positive) == len(axis_values) and len(positive) > 1 and max(positive) / min(positive) >= 100


def terminal_plots(state: SweepState, rows: list[dict[str, Any]], width: int = 100) -> str:
    """Four of the statistics against the swept parameter, drawn with plotext ("" when only the
    seed is swept)."""
    import plotext as plt

    keys = ("sparser", "above_half", "error_theorem", "agree_theorem")
    plt.clear_figure()
    plt.subplots(2, 2)
    plt.plotsize(width, 36)
    drawn = False
    for i, key in enumerate(keys):
        axis, series = plot_series(state, rows, key)
        if not series:
            return ""
        plt.subplot(i // 2 + 1, i % 2 + 1)
        plt.title(LABELS[key])
        plt.theme("clear")
        for name, points in series:
            points = [p for p in points if math.isfinite(p[1])]
            if not points:
                continue
            if _numeric(points):
                xs = [math.log10(x) if _log_axis([q[0] for q in points]) else x for x, _, _ in points]
                plt.xlabel(f"log10 {axis}" if _log_axis([q[0] for q in points]) else axis)
            else:
                xs = list(range(len(points)))
                plt.xticks(xs, [format_value(x) for x, _, _ in points])
                plt.xlabel(axis)
            plt.plot(xs, [m for _, m, _ in points], label=name, marker="dot")
            drawn = True
    return re.sub(r"\x1b\[[0-9;]*m", "", plt.build()) if drawn else ""


def write_png(state: SweepState, rows: list[dict[str, Any]], path: Path) -> bool:
    """Every statistic against the swept parameter, mean with ±sd error bars, one panel each, into
    a PNG file (matplotlib). False when only the seed is swept. ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(16, 7), constrained_layout=True)
    try:
        for ax, key in zip(axes.flat, STAT_KEYS, strict=True):
            axis, series = plot_series(state, rows, key)
            if not series:
                return False
            for name, points in series:
                xs = [p[0] for p in points] if _numeric(points) else [format_value(p[0]) for p in points]
                ax.errorbar(xs, [p[1] for p in points], yerr=[p[2] if math.isfinite(p[2]) else 0 for p in points],
                            marker="o", capsize=3, label=name)
                if _numeric(points) and _log_axis(xs):
                    ax.set_xscale("log")
            ax.set_title(LABELS[key])
            ax.set_xlabel(axis)
            ax.grid(alpha=0.3)
        axes.flat[0].legend(fontsize="small")
        fig.suptitle(f"{state.folder.name}: mean ± sd over seeds")
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return True
