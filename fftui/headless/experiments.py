"""Headless runs of the report's experiments: numbers to files, the figure as text, a summary."""
from __future__ import annotations

import csv
import io
import math
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import Config
from engine.data import Dataset
from engine.figure1 import theorem1_at_init
from engine.headless import OutputError, run_headless, write_text
from engine.presets import PRESETS, SeriesSummary, figure_columns, figure_row

from . import emit

if TYPE_CHECKING:
    from engine.store import RunWriter
from .figures import render_fig1a, render_fig1b, render_series, summarise_init, summarise_series
from .progress import RunProgress, chunk_progress


def _source(dataset: Dataset) -> str:
    if dataset.source == "mnist":
        return f"full MNIST ({dataset.size:,} training digits)"
    return f"the shipped MNIST sample ({dataset.size:,} digits)"


def _csv(folder: Path | None, name: str, columns: list[str], rows: list[list[float]]) -> None:
    """Write folder/name as CSV (nothing without a folder: the run is not recorded)."""
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


def run_preset(name: str, cfg: Config, dataset: Dataset, writer: RunWriter | None, *, quiet: bool = False) -> dict:
    """Run one preset, recorded by writer (a started engine.store.RunWriter, closed here; None: not
    recorded). Fig2 and fig3 record their run's batches; fig1a and fig1b, which train nothing,
    record one event "theorem1_at_init" per batch size. NAME.csv (the figure's series) and NAME.txt
    (the plot and the summary) go into the run's folder. Prints the plot and a one-paragraph
    summary; returns what it measured."""
    preset = PRESETS[name]
    started = time.perf_counter()
    out = writer.folder if writer is not None else None
    if preset.kind == "init":
        sizes = preset.batch_sizes if name == "fig1b" else (cfg.batch_size,)
        results = []
        try:
            for n in sizes:
                bar = None if quiet else RunProgress(dataset.size, sys.stderr, unit="digits")
                res = theorem1_at_init(dataset, cfg, n, progress=bar_callback(bar, f"N = {n}"))
                if bar is not None:
                    bar.close()
                results.append(res)
                if writer is not None:
                    writer.event("theorem1_at_init", 0, batch_size=n, samples=res.samples, satisfied=res.satisfied,
                                 silenced=res.silenced, ratio=res.ratio, predicted_sparser=res.predicted_sparser)
        except BaseException:
            if writer is not None:
                writer.close("interrupted" if len(results) < len(sizes) else "failed")
            raise
        if writer is not None:
            writer.close("finished")
            if writer.error is not None:
                raise OutputError(f"recording stopped: {writer.error}")
        if name == "fig1a":
            r = results[0]
            rows = [[i, float(a), float(b)] for i, (a, b) in enumerate(zip(r.lhs, r.rhs, strict=True))]
            _csv(out, f"{name}.csv", ["sample", "lhs", "rhs"], rows)
            plot = render_fig1a(r)
        else:
            _csv(out, f"{name}.csv", ["batch_size", "ratio", "satisfied", "samples"],
                 [[r.batch_size, r.ratio, r.satisfied, r.samples] for r in results])
            plot = render_fig1b(results)
        summary_text = summarise_init(results, preset.claim, _source(dataset))
        measured: dict[str, Any] = {"results": [{"batch_size": r.batch_size, "ratio": r.ratio, "satisfied": r.satisfied,
                                 "samples": r.samples, "silenced": r.silenced} for r in results]}
    elif preset.kind == "network":
        plot, summary_text, measured = _network_preset(name, cfg, dataset, writer, out, quiet)
    else:
        series = SeriesSummary(figure_columns(cfg))
        total = cfg.total_iters(dataset.size)
        bar = None if quiet or total is None else RunProgress(total, sys.stderr)
        outcome = None
        try:
            outcome = run_headless(cfg, dataset, writer,
                                   on_chunk=chunk_progress(bar) if bar is not None else None,
                                   on_record=lambda rec: series.rows.append(figure_row(rec, cfg)))
        finally:
            if bar is not None:
                bar.finish(outcome["iterations"] if outcome is not None else None)
        _csv(out, f"{name}.csv", series.columns, series.rows)
        summary_text = ending_sentence(outcome, len(series.rows))
        if not series.rows:
            plot, summary_text = "", f"The run stopped before its first iteration. {summary_text}".strip()
        else:
            plot = render_series(series, preset.title)
            summary_text = " ".join(filter(None, (summary_text, summarise_series(series, cfg, preset.claim,
                                                                                  _source(dataset)))))
        measured = {"stats": series.stats(), "run": outcome}
    if out is not None:
        write_text(out / f"{name}.txt", plot + "\n" + summary_text + "\n")
    emit(plot)
    emit(summary_text)
    where = f"recorded in {out} with {name}.csv and {name}.txt" if out is not None else "not recorded"
    emit(f"({time.perf_counter() - started:.1f} s; {where})")
    return measured


LAYER_COLUMNS = ("sparser", "theorem", "general", "sparser_end", "agree_theorem_end", "sparsity", "silenced",
                 "input_silenced")


def _network_preset(name: str, cfg: Config, dataset: Dataset, writer: RunWriter | None, out: Path | None,
                    quiet: bool) -> tuple[str, str, dict]:
    """A network preset: the run's summary with every layer and the test error after each epoch;
    NAME.csv holds per iteration, layer and group the ratios (LAYER_COLUMNS), NAME-test.csv the test
    error after each evaluation."""
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

    total = cfg.total_iters(dataset.size)
    bar = None if quiet or total is None else RunProgress(total, sys.stderr)
    progress = chunk_progress(bar) if bar is not None else None

    def on_chunk(chunk) -> None:
        per_layer(chunk)
        if progress is not None:
            progress(chunk)

    outcome = None
    try:
        outcome = run_headless(cfg, dataset, writer, on_chunk=on_chunk)
    finally:
        if bar is not None:
            bar.finish(outcome["iterations"] if outcome is not None else None)
    _csv(out, f"{name}.csv", ["iteration", "layer", "group", *LAYER_COLUMNS], rows)
    _csv(out, f"{name}-test.csv", ["epoch", "iteration", "test_error", "wrong", "total", "digits"],
         [[e.epoch, e.iteration, e.error, e.wrong, e.total, e.description] for e in outcome["evaluations"]])
    text = " ".join(filter(None, (ending_sentence(outcome, outcome["iterations"]), PRESETS[name].claim + ".")))
    return format_summary(outcome), text, {"run": outcome}


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
