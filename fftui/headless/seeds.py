"""A preset run once per seed (`--seeds K`): seeds S, S+1, ..., S+K-1 where S is --seed (0 by
default), each recorded as a run of its own in the folder seed-SEED inside the preset's folder, and
every summary number reported as the mean ± the sample standard deviation (ddof = 1) over the seeds.

The preset's folder (--out DIR, or the store's DATE-TIME-PRESET) then holds:

- seeds.json: the preset, the seeds, their run folders and the configuration (seed: the first),
  which `fftui run --headless --resume GROUP` goes on with (fftui.headless.seeds_resume); it marks
  the folder as a group of runs: never reused by another run, listed by `fftui runs` as its seed runs;
- seed-SEED/: one complete run per seed (config.json, run.json, records, NAME.csv, NAME.txt),
  which `fftui open` opens like any run;
- NAME.csv: the figure's rows of every seed, a first column `seed`;
- NAME-seeds.csv: one row per seed, its summary numbers (summary_numbers);
- NAME.txt: the text figure, the summary over seeds and the table of mean ± sd;
- NAME.png, NAME.svg: the figure with the seeds' band (fftui.headless.paper)."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.config import Config
from engine.data import Dataset
from engine.headless import prepare_out_dir, write_text
from engine.presets import PRESETS, SeriesSummary
from engine.store.catalog import SEEDS_MARKER
from engine.store.files import dumps

from . import emit
from .experiments import Measured, figures_line, measure, source_of, write_csv
from .figures import render_fig1a, render_fig1b_seeds, render_series, trend

if TYPE_CHECKING:
    from engine.store import RunWriter

MARKER = SEEDS_MARKER
SD_NOTE = "mean ± sample standard deviation (ddof = 1) over seeds"


def seed_list(start: int, count: int) -> list[int]:
    """The seeds of a run of `count` seeds from `start`: start, start + 1, ..., start + count - 1."""
    return list(range(start, start + count))


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1) of the finite values; NaN where there are too
    few (no finite value for the mean, fewer than two for the deviation)."""
    v = np.array([x for x in values if math.isfinite(x)], dtype=float)
    mean = float(v.mean()) if v.size else math.nan
    sd = float(np.sqrt(((v - mean) ** 2).sum() / (v.size - 1))) if v.size > 1 else math.nan
    return mean, sd


def summary_numbers(m: Measured, cfg: Config) -> dict[str, float]:
    """One seed's summary numbers, the columns of NAME-seeds.csv. fig1a: satisfied (digits with LHS
    < RHS), predicted_sparser (the product form), silenced, samples, ratio (satisfied / samples).
    fig1b: the same per batch size, named ratio_N8 etc. fig2/fig3: per figure column COL (e.g.
    pos_sparser) COL_mean, COL_first_tenth, COL_last_tenth (means over iterations of the ratio over
    all N samples of the batch) and COL_above_half (share of iterations above 0.5); per group the
    theorem's and the generalised predictor's mean |predicted - actual| ratio (COL_error, a
    fraction, not points); iterations."""
    if m.init:
        out: dict[str, float] = {}
        for r in m.init:
            tag = "" if m.name == "fig1a" else f"_N{r.batch_size}"
            out.update({f"ratio{tag}": r.ratio, f"satisfied{tag}": float(r.satisfied),
                        f"predicted_sparser{tag}": float(r.predicted_sparser), f"silenced{tag}": float(r.silenced)})
        out["samples"] = float(m.init[0].samples)
        return out
    assert m.series is not None
    series = m.series
    out = {"iterations": float(len(series.rows))}
    stats = series.stats()
    for col in series.columns[1:]:
        for key in ("mean", "first_tenth", "last_tenth", "above_half"):
            out[f"{col}_{key}"] = stats.get(col, {}).get(key, math.nan)
    for col in series.columns[1:]:
        if not col.endswith("sparser") and series.rows:
            actual = col.rsplit("_", 1)[0] + "_sparser" if "_" in col else "sparser"
            out[f"{col}_error"] = series.prediction_error(actual, col)["mean_abs"]
    return out


def _pct(mean: float, sd: float, unit: str = " %") -> str:
    """A fraction's mean ± sd in percent (or in points, unit " points"); no ± without an sd."""
    if not math.isfinite(mean):
        return "–"
    return f"{100 * mean:.1f} ± {100 * sd:.1f}{unit}" if math.isfinite(sd) else f"{100 * mean:.1f}{unit}"


def _seeds_words(seeds: Sequence[int]) -> str:
    """ "3 seeds (5-7; ...)" or "1 seed (5)": which seeds a summary covers, and what ± means."""
    if len(seeds) == 1:
        return f"1 seed ({seeds[0]})"
    return f"{len(seeds)} seeds ({seeds[0]}-{seeds[-1]}; {SD_NOTE})"


def aggregate_text(runs: Sequence[Measured], cfg: Config, source: str) -> str:
    """The paragraph over seeds: every number a mean ± sample sd (ddof = 1), the per-seed counts of
    Figure 1 beside the report's, and how the Figure 1B ratio moves with N in each seed."""
    name = runs[0].name
    preset = PRESETS[name]
    numbers = [summary_numbers(m, cfg) for m in runs]
    seeds = [m.seed for m in runs]
    span = _seeds_words(seeds)

    def ms(key: str) -> tuple[float, float]:
        return mean_sd([n[key] for n in numbers])

    if name == "fig1a":
        r = runs[0].init[0]
        sat, pred = ms("satisfied"), ms("predicted_sparser")
        same = all(n["satisfied"] == n["predicted_sparser"] for n in numbers)
        both = "" if same else (f"; {pred[0]:,.1f} ± {pred[1]:,.1f} are predicted sparser by the product form "
                                f"P|h|_2 > |h|_1 Q (per seed: "
                                + ", ".join(f"{int(n['predicted_sparser']):,}" for n in numbers)
                                + "; the two differ where Q <= 0)")
        return (f"On {source}, over {span}, a freshly initialised layer (n = {r.width}) fed every digit in "
                f"batches of N = {r.batch_size}: {sat[0]:,.1f} ± {sat[1]:,.1f} of {r.samples:,} satisfy LHS < RHS "
                f"({_pct(*ms('ratio'))}); per seed: " + ", ".join(f"{int(n['satisfied']):,}" for n in numbers)
                + f" of {r.samples:,}{both}. The report: {preset.claim}.")
    if name == "fig1b":
        sizes = [r.batch_size for r in runs[0].init]
        per_n = ", ".join(f"N = {n}: {_pct(*ms(f'ratio_N{n}'))}" for n in sizes)
        trends = [trend(sizes, [r.ratio for r in m.init]) for m in runs]
        moves = (f"in every seed it {trends[0]}" if len(set(trends)) == 1 else
                 "; ".join(f"seed {m.seed}: it {t}" for m, t in zip(runs, trends, strict=True)))
        differ = "".join(
            f" At N = {n}, predicted sparser by the product form P|h|_2 > |h|_1 Q (it differs from LHS < RHS "
            f"where Q <= 0): {_pct(*mean_sd([x[f'predicted_sparser_N{n}'] / x['samples'] for x in numbers]))}."
            for n in sizes if any(x[f"predicted_sparser_N{n}"] != x[f"satisfied_N{n}"] for x in numbers))
        return (f"On {source}, over {span}, the share of digits with LHS < RHS at initialisation "
                f"(n = {runs[0].init[0].width}): {per_n}; {moves}.{differ} The report: {preset.claim}.")
    theorem = "theorem1" if cfg.mode == "descent" else "theorem2"
    groups = [("", "the batch")] if cfg.mode == "descent" else [("pos_", "positives"), ("neg_", "negatives")]
    bits = []
    for prefix, label in groups:
        s, t = f"{prefix}sparser", f"{prefix}{theorem}"
        err = ms(f"{t}_error")
        text = (f"for {label} the actually-sparser ratio went from {_pct(*ms(s + '_first_tenth'))} (first tenth) "
                f"to {_pct(*ms(s + '_last_tenth'))} (last tenth), mean {_pct(*ms(s + '_mean'))}, above 50 % in "
                f"{_pct(*ms(s + '_above_half'))} of iterations; the {theorem.replace('theorem', 'Theorem ')} ratio "
                f"went from {_pct(*ms(t + '_first_tenth'))} to {_pct(*ms(t + '_last_tenth'))}, off by "
                f"{_pct(*err, unit=' points')} on average")
        if f"{prefix}general_error" in numbers[0]:
            e2 = ms(f"{prefix}general_error")
            text += f" (the generalised predictor: {_pct(*e2, unit=' points')})"
        bits.append(text)
    iters = ", ".join(str(int(n["iterations"])) for n in numbers)
    return (f"Over {span}, {iters} iterations of {cfg.mode} training ({cfg.loss} loss, {cfg.optimizer} lr "
            f"{cfg.lr:g}, N = {cfg.batch_size}, n = {cfg.width}) on {source}: " + "; ".join(bits) +
            f". Ratios are over all N samples of a batch, as in the report. The report: {preset.claim}.")


def number_table(runs: Sequence[Measured], cfg: Config) -> str:
    """Every summary number: its name, mean ± sample sd (ddof = 1) and the per-seed values (as in
    NAME-seeds.csv), one line each, 6 significant digits; the mean alone where no sd is defined
    (one seed counted, the others stopped: not "± nan")."""
    numbers = [summary_numbers(m, cfg) for m in runs]
    lines = [f"Summary numbers, {SD_NOTE} {', '.join(str(m.seed) for m in runs)} (per seed in "
             f"{runs[0].name}-seeds.csv):"]
    width = max(len(k) for k in numbers[0])
    for key in numbers[0]:
        values = [n[key] for n in numbers]
        mean, sd = mean_sd(values)
        spread = f"{mean:.6g} ± {sd:.6g}" if math.isfinite(sd) else f"{mean:.6g}"  # one seed: no sd
        lines.append(f"  {key:<{width}}  {spread}  (per seed: {', '.join(f'{v:.6g}' for v in values)})")
    return "\n".join(lines)


def mean_series(runs: Sequence[Measured]) -> SeriesSummary:
    """The per-iteration mean over seeds of every figure column, cut to the shortest run."""
    series = [m.series for m in runs if m.series is not None]
    mean = SeriesSummary(series[0].columns)
    length = min(len(s.rows) for s in series)
    stacked = np.array([s.rows[:length] for s in series], dtype=float)  # seeds x iterations x columns
    with np.errstate(invalid="ignore"):
        values = np.nanmean(np.where(np.isfinite(stacked), stacked, np.nan), axis=0) if length else stacked[0]
    mean.rows = [list(map(float, row)) for row in values]
    return mean


def text_plot(runs: Sequence[Measured]) -> str:
    """The text figure over seeds: fig1a the first seed's histograms, fig1b one curve per seed,
    fig2/fig3 the mean over seeds per iteration."""
    name = runs[0].name
    if name == "fig1a":
        return (render_fig1a(runs[0].init[0]).rstrip("\n")
                + f"\n(seed {runs[0].seed} shown; each seed's text figure is in its seed-SEED folder)\n")
    if name == "fig1b":
        return render_fig1b_seeds([m.init for m in runs], [m.seed for m in runs])
    if not min(len(m.series.rows) for m in runs if m.series is not None):
        return ""
    return render_series(mean_series(runs), f"{PRESETS[name].heading()}, mean over {len(runs)} seeds")


def run_seeds(name: str, cfg: Config, dataset: Dataset, folder: Path | None, count: int,
              start_writer: Callable[[Config, Path], RunWriter], *, quiet: bool = False,
              figures: bool = True, checkpoint_every: float | None = None) -> dict:
    """Run preset `name` for the seeds cfg.seed, ..., cfg.seed + count - 1 (see the module's
    docstring for the files; folder None: nothing recorded), each seed's run recorded by a writer
    from start_writer(config of that seed, its folder). A seed whose run does not finish (a signal,
    a failure) ends the loop; the mean and sd then cover the seeds that finished (the stopped one
    only when none did), and the stopped seed stays in the CSVs (column "finished"). Prints the text figure,
    the summary over seeds and the table of numbers; returns {"seeds": [...], "numbers": [per-seed
    dicts], "run": the last training run's summary (fig2/fig3)}. The folder's writer.lock is held
    locked while the seeds run (a `--resume` of the group waits for their end); checkpoint_every:
    seconds between each run's checkpoints (None: run_headless's default)."""
    started = time.perf_counter()
    seeds = seed_list(cfg.seed, count)
    lock = None
    if folder is not None:
        from engine.store.files import WriterLock

        write_text(folder / MARKER, dumps({"preset": name, "seeds": seeds, "runs": [f"seed-{s}" for s in seeds],
                                           "spread": "sample standard deviation, ddof = 1",
                                           "config": cfg.as_dict()}).decode() + "\n")
        lock = WriterLock(folder)
        try:
            lock.acquire()
        except OSError:  # a folder claimed for this run alone: nobody else holds it; run unlocked
            lock = None
    options = {} if checkpoint_every is None else {"checkpoint_every": checkpoint_every}
    runs: list[Measured] = []
    try:
        for i, seed in enumerate(seeds):
            seed_cfg = cfg.replace(seed=seed)
            writer = start_writer(seed_cfg, prepare_out_dir(folder / f"seed-{seed}")) if folder is not None else None
            m = measure(name, seed_cfg, dataset, writer, quiet=quiet, label=f"seed {seed} ({i + 1}/{count})",
                        **options)
            runs.append(m)
            if not m.finished:
                break
        return report_seeds(name, cfg, dataset, folder, runs, count, figures=figures, started=started)
    finally:
        if lock is not None:
            lock.release()


def report_seeds(name: str, cfg: Config, dataset: Dataset, folder: Path | None, runs: Sequence[Measured],
                 count: int, *, figures: bool = True, started: float | None = None) -> dict:
    """The group's files over the seeds' runs (in seed order; the last may not have finished) of
    `count` planned from cfg.seed: NAME.csv, NAME-seeds.csv, NAME.txt and the figures into folder
    (None: nothing written), the text figure, the summary over seeds and the table printed, and
    the closing line (the seconds since `started`, a time.perf_counter() value). Returns run_seeds'
    dict."""
    started = time.perf_counter() if started is None else started
    source = source_of(dataset)
    counted = [m for m in runs if m.finished] or list(runs)  # a stopped seed's shorter run is no sample of the same
    plot = text_plot(counted)
    summary = aggregate_text(counted, cfg, source)
    if not runs[-1].finished:
        left_out = "it is left out of the mean and sd, which" if len(counted) < len(runs) else "the summary"
        summary = (f"Seed {runs[-1].seed} did not finish ({runs[-1].summary.split(';')[0]}); {left_out} covers "
                   f"{_seeds_words([m.seed for m in counted]).split(' (')[0]} of {count}. " + summary)
    table = number_table(counted, cfg)
    if folder is not None:
        columns, _ = runs[0].csv_table()
        write_csv(folder, f"{name}.csv", ["seed", *columns], [[m.seed, *row] for m in runs for row in m.csv_table()[1]])
        numbers = [summary_numbers(m, cfg) for m in runs]
        write_csv(folder, f"{name}-seeds.csv", ["seed", *numbers[0], "finished"],
                  [[m.seed, *n.values(), int(m.finished)] for m, n in zip(runs, numbers, strict=True)])
        write_text(folder / f"{name}.txt", plot + "\n" + summary + "\n\n" + table + "\n")
    drawn = figures_line(name, folder, [m.figure_data() for m in counted], figures, cfg)
    emit(plot)
    emit(summary)
    emit(table)
    ran = f"seed-{runs[0].seed}" + (f" to seed-{runs[-1].seed}" if len(runs) > 1 else "")
    where = (f"recorded in {folder}: {ran}, {name}.csv, {name}-seeds.csv, "
             f"{name}.txt{drawn}" if folder is not None else "not recorded")
    emit(f"({time.perf_counter() - started:.1f} s; {where})")
    result: dict[str, Any] = {"seeds": [m.seed for m in counted], "numbers": [summary_numbers(m, cfg) for m in counted]}
    if runs[-1].outcome is not None:
        result["run"] = runs[-1].outcome
    return result
