"""Headless runs of the report's experiments: numbers to files, the figure as text (and as PNG and
SVG with matplotlib), a summary."""
from __future__ import annotations

import csv
import io
import math
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import Config
from engine.data import Dataset
from engine.figure1 import InitResult, theorem1_at_init
from engine.headless import OutputError, run_headless, write_text
from engine.presets import PRESETS, SeriesSummary, figure_columns, figure_row

from . import emit, warn

if TYPE_CHECKING:
    from engine.store import RunWriter
from .figures import render_fig1a, render_fig1b, render_series, summarise_init, summarise_series
from .progress import RunProgress, chunk_progress


def source_of(dataset: Dataset) -> str:
    """The data in words, for a summary: full MNIST or the shipped sample, with its size."""
    if dataset.source == "mnist":
        return f"full MNIST ({dataset.size:,} training digits)"
    return f"the shipped MNIST sample ({dataset.size:,} digits)"


def write_csv(folder: Path | None, name: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Write folder/name as CSV, floats with 6 significant digits and non-finite ones empty
    (nothing without a folder: the run is not recorded). OutputError (one line) when it fails."""
    if folder is None:
        return
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if isinstance(v, float) and not math.isfinite(v) else
                    (f"{v:.6g}" if isinstance(v, float) else v) for v in r])
    write_text(folder / name, text.getvalue())


def bar_callback(bar: RunProgress | None, text: str) -> Callable[[int, int], None] | None:
    """A (done, total) callback that moves `bar` and shows `text`; None without a bar."""
    if bar is None:
        return None
    return lambda done, _total: bar.update(done, text)


@dataclass
class Measured:
    """What one run of a preset measured (one seed). init: one InitResult per batch size (fig1a,
    fig1b); series: the per-iteration figure columns and outcome: run_headless's summary (fig2,
    fig3); plot and summary: the text figure and its paragraph."""

    name: str
    seed: int
    init: list[InitResult] = field(default_factory=list)
    series: SeriesSummary | None = None
    outcome: dict | None = None
    plot: str = ""
    summary: str = ""

    @property
    def finished(self) -> bool:
        """Whether the run went to its end (an init preset that returned always did)."""
        return self.outcome is None or (not self.outcome["error"] and not self.outcome["interrupted"])

    def csv_table(self) -> tuple[list[str], list[list[Any]]]:
        """The figure's CSV: fig1a per sample (sample, lhs, rhs), fig1b per batch size, fig2/fig3 per
        iteration (engine.presets.figure_columns)."""
        if self.name == "fig1a":
            r = self.init[0]
            return ["sample", "lhs", "rhs"], [[i, float(a), float(b)] for i, (a, b) in enumerate(zip(r.lhs, r.rhs,
                                                                                                   strict=True))]
        if self.name == "fig1b":
            return (["batch_size", "ratio", "satisfied", "samples"],
                    [[r.batch_size, r.ratio, r.satisfied, r.samples] for r in self.init])
        assert self.series is not None
        return self.series.columns, self.series.rows

    def figure_data(self) -> Any:
        """What fftui.headless.paper draws for this seed: the InitResults or the SeriesSummary."""
        return self.init if self.init else self.series


def measure(name: str, cfg: Config, dataset: Dataset, writer: RunWriter | None, *, quiet: bool = False,
            label: str = "", **resume: Any) -> Measured:
    """Run preset `name` once (cfg.seed), recorded by writer (a started engine.store.RunWriter, closed
    here; None: not recorded). Fig2 and fig3 record their run's batches; fig1a and fig1b, which train
    nothing, record one event "theorem1_at_init" per batch size. NAME.csv (the figure's series) and
    NAME.txt (the text plot and the summary) go into the run's folder. label: shown beside the
    progress bar (the seed). Prints nothing. resume: for fig2 and fig3, more keywords for
    run_headless: a trainer put back at a checkpoint and `earlier`, the Summary recorded before it
    (the figure's first rows), checkpoint_every."""
    preset = PRESETS[name]
    out = writer.folder if writer is not None else None
    result = Measured(name, cfg.seed)
    tag = f"{label}  " if label else ""
    if preset.kind == "init":
        sizes = preset.batch_sizes if name == "fig1b" else (cfg.batch_size,)
        try:
            for n in sizes:
                bar = None if quiet else RunProgress(dataset.size, sys.stderr, unit="digits")
                res = theorem1_at_init(dataset, cfg, n, progress=bar_callback(bar, f"{tag}N = {n}"))
                if bar is not None:
                    bar.close()
                result.init.append(res)
                if writer is not None:
                    writer.event("theorem1_at_init", 0, batch_size=n, samples=res.samples, satisfied=res.satisfied,
                                 silenced=res.silenced, ratio=res.ratio, predicted_sparser=res.predicted_sparser)
        except BaseException:
            if writer is not None:
                writer.close("interrupted" if len(result.init) < len(sizes) else "failed")
            raise
        if writer is not None:
            writer.close("finished")
            if writer.error is not None:
                raise OutputError(f"recording stopped: {writer.error}")
        result.plot = render_fig1a(result.init[0]) if name == "fig1a" else render_fig1b(result.init)
        result.summary = summarise_init(result.init, preset.claim, source_of(dataset))
    elif preset.kind == "network":
        result.plot, result.summary, result.outcome = _network_preset(name, cfg, dataset, writer, out, quiet,
                                                                      **resume)
        return result
    else:
        series = result.series = SeriesSummary(figure_columns(cfg))
        if resume.get("earlier") is not None:
            series.rows += summary_rows(resume["earlier"], cfg)
        total = cfg.total_iters(dataset.size)
        trainer = resume.get("trainer")
        start_at = trainer.iteration if trainer is not None else 0
        bar = None if quiet or total is None else RunProgress(total, sys.stderr, start_at=start_at)
        progress = chunk_progress(bar, label) if bar is not None else None
        try:
            result.outcome = run_headless(cfg, dataset, writer, on_chunk=progress,
                                          on_record=lambda rec: series.rows.append(figure_row(rec, cfg)), **resume)
        finally:
            if bar is not None:
                bar.finish(result.outcome["iterations"] if result.outcome is not None else None)
        text = ending_sentence(result.outcome, len(series.rows))
        if not series.rows:
            result.summary = f"The run stopped before its first iteration. {text}".strip()
        else:
            result.plot = render_series(series, preset.heading(cfg))
            result.summary = " ".join(filter(None, (text, summarise_series(series, cfg, preset.claim,
                                                                             source_of(dataset)))))
    columns, rows = result.csv_table()
    write_csv(out, f"{name}.csv", columns, rows)
    if out is not None:
        write_text(out / f"{name}.txt", result.plot + "\n" + result.summary + "\n")
    return result


def figures_line(name: str, folder: Path | None, runs: list[Any], figures: bool, cfg: Config | None = None) -> str:
    """Write preset `name`'s PNG and SVG figure into folder (fftui.headless.paper) unless figures is
    False or nothing is recorded; " and NAME.png, NAME.svg" for the closing line, "" when none were
    written. Without matplotlib one line on standard error says how to install it and the run goes
    on (its exit status unchanged)."""
    if folder is None or not figures or PRESETS[name].kind == "network":
        return ""
    from .paper import MISSING, write_figures

    written = write_figures(name, folder, runs, PRESETS[name].heading(cfg))
    if written is None:
        warn(f"fftui: {MISSING}")
        return ""
    return "".join(f", {p.name}" for p in written)


def run_preset(name: str, cfg: Config, dataset: Dataset, writer: RunWriter | None, *, quiet: bool = False,
               figures: bool = True, **resume: Any) -> dict:
    """Run one preset once (see measure), write its figure as PNG and SVG beside its CSV unless
    figures is False (fftui.headless.paper; skipped with one line when matplotlib is missing), print
    the text plot and a one-paragraph summary; returns what it measured ("run": run_headless's
    summary for fig2/fig3). resume: see measure."""
    started = time.perf_counter()
    m = measure(name, cfg, dataset, writer, quiet=quiet, **resume)
    out = writer.folder if writer is not None else None
    drawn = figures_line(name, out, [m.figure_data()], figures, cfg)
    emit(m.plot)
    emit(m.summary)
    where = f"recorded in {out} with {name}.csv, {name}.txt{drawn}" if out is not None else "not recorded"
    emit(f"({time.perf_counter() - started:.1f} s; {where})")
    if m.outcome is not None:
        return {"stats": m.series.stats() if m.series is not None else {}, "run": m.outcome}
    return {"results": [{"batch_size": r.batch_size, "ratio": r.ratio, "satisfied": r.satisfied,
                         "samples": r.samples, "silenced": r.silenced} for r in m.init]}


LAYER_COLUMNS = ("sparser", "theorem", "general", "sparser_end", "agree_theorem_end", "sparsity", "silenced",
                 "input_silenced")


def _network_preset(name: str, cfg: Config, dataset: Dataset, writer: RunWriter | None, out: Path | None,
                    quiet: bool, **resume: Any) -> tuple[str, str, dict]:
    """A network preset: the run's summary with every layer and the test error after each epoch;
    NAME.csv holds per iteration, layer and group the ratios (LAYER_COLUMNS), NAME-test.csv the test
    error after each evaluation. resume: run_headless's keywords for a run resumed at a checkpoint
    (trainer, earlier, earlier_lines: the batches before it, which NAME.csv begins with)."""
    from engine.stack import StackChunk

    from .summary import format_summary

    rows: list[list[Any]] = []

    def per_layer(chunk) -> None:
        if not isinstance(chunk, StackChunk):
            return
        cols = {c: chunk.layer_column(c) for c in LAYER_COLUMNS}
        iterations = chunk.column("iteration")
        for i, iteration in enumerate(iterations.tolist()):
            for layer in range(len(chunk.layers)):
                for gi, group in enumerate(chunk.groups):
                    rows.append([iteration, layer, group, *(float(cols[c][i, layer, gi]) for c in LAYER_COLUMNS)])

    for record in resume.get("earlier_lines") or ():  # a resumed run's batches before its checkpoint
        for layer, cells in enumerate(record["layers"]):
            for group, g in cells["groups"].items():
                rows.append([record["iteration"], layer, group,
                             *(math.nan if g.get(c) is None else float(g[c]) for c in LAYER_COLUMNS)])
    trainer = resume.get("trainer")
    total = trainer.total_iters if trainer is not None else cfg.total_iters(dataset.size)
    start_at = trainer.iteration if trainer is not None else 0
    bar = None if quiet or total is None else RunProgress(total, sys.stderr, start_at=start_at)
    progress = chunk_progress(bar) if bar is not None else None

    def on_chunk(chunk) -> None:
        per_layer(chunk)
        if progress is not None:
            progress(chunk)

    outcome = None
    try:
        outcome = run_headless(cfg, dataset, writer, on_chunk=on_chunk, **resume)
    finally:
        if bar is not None:
            bar.finish(outcome["iterations"] if outcome is not None else None)
    write_csv(out, f"{name}.csv", ["iteration", "layer", "group", *LAYER_COLUMNS], rows)
    evaluations = outcome["evaluations"]
    if any(e.readout_wrong is not None for e in evaluations):  # the linear readout's error beside it
        write_csv(out, f"{name}-test.csv", ["epoch", "iteration", "test_error", "wrong", "readout_error",
                                            "readout_wrong", "total", "digits"],
                  [[e.epoch, e.iteration, e.error, e.wrong, e.readout_error, e.readout_wrong, e.total, e.description]
                   for e in evaluations])
    else:
        write_csv(out, f"{name}-test.csv", ["epoch", "iteration", "test_error", "wrong", "total", "digits"],
                  [[e.epoch, e.iteration, e.error, e.wrong, e.total, e.description] for e in evaluations])
    text = " ".join(filter(None, (ending_sentence(outcome, outcome["iterations"]), PRESETS[name].claim + ".")))
    if out is not None:
        write_text(out / f"{name}.txt", format_summary(outcome) + "\n" + text + "\n")
    return format_summary(outcome), text, outcome


def ending_sentence(outcome: dict, recorded: int) -> str:
    """How a preset's run ended when it did not finish, to open its summary: stopped by a signal
    after N of M iterations, or by a failure at one (`recorded`: the iterations the summary
    describes); "" when it finished."""
    if not outcome["error"] and not outcome["interrupted"]:
        return ""
    planned = outcome["planned"]
    these = f"this describes the {recorded} recorded, not the planned run."
    if outcome["error"]:
        return f"Stopped by a failure after {recorded} of {planned} iterations ({outcome['error']}); {these}"
    signum = outcome.get("signal") or signal.SIGINT
    return f"Stopped by {signal.Signals(signum).name} after {recorded} of {planned} iterations; {these}"


def summary_rows(summary: Any, cfg: Config) -> list[list[float]]:
    """figure_row's rows from a recorded run's summary (an engine.store Summary), as the records of
    the same batches give them."""
    from engine.presets import GROUPS, figure_metrics

    columns = [summary.column("iteration").tolist()]
    for group in GROUPS[cfg.mode]:
        for m in figure_metrics(cfg):
            columns.append(summary.group_column(m.name, group).tolist())
    return [list(row) for row in zip(*columns, strict=True)]
