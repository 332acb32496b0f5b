"""`fftui run --headless`: one run or one of the report's experiments, with progress on standard
error, the summary on standard output and the files in the output folder."""
from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable

from engine.config import Config
from engine.data import Dataset
from engine.process import tune_for_training

from . import emit, set_stage, warn
from .progress import RunProgress, chunk_progress
from .summary import format_summary


def run_command(args: argparse.Namespace, cfg: Config, load: Callable[[Config, bool], Dataset]) -> int:
    """Run `cfg` headless as the parsed flags say; `load` gets the data. The run is recorded (see
    fftui.record.claim_folder: the folder is claimed before the data load, given back if the run never
    starts) unless --no-record. A preset with --seeds K > 1 runs once per seed, each seed's run
    recorded in the claimed folder's seed-SEED/ (fftui.headless.seeds). Returns the exit status: 0
    done, 1 stopped by a failure (one line on stderr naming the log file, or why recording stopped
    and how many records are kept), 128 + the signal's number when SIGINT (130), SIGTERM (143) or
    SIGHUP (129) stopped it between batches; the same for a preset. Raises
    engine.headless.OutputError or engine.store.StoreError for an output folder that cannot be used,
    and fftui.headless.OutputStreamError when standard output cannot be written."""
    from engine.headless import OutputError, release_claim, run_description, run_headless
    from engine.store import RunWriter

    from ..record import claim_folder

    folder = claim_folder(args, cfg)  # before anything else: a second run never gets this folder
    writer = None
    seeds = getattr(args, "seeds", None) or 1
    extra: dict = {"preset": args.preset}
    if args.preset:
        from engine.presets import PRESETS

        extra["claim"] = PRESETS[args.preset].claim

    def start_writer(run_cfg: Config, where) -> RunWriter:
        return RunWriter(where, run_description(run_cfg, dataset, extra),
                         keep_samples=args.keep_samples or "auto").start()

    ready = False  # the data loaded and the run can begin
    try:
        set_stage("loading the data")
        dataset = load(cfg, args.quiet)
        set_stage("setting up")
        tune_for_training(interactive=False)
        if folder is not None and seeds == 1:
            writer = start_writer(cfg, folder)
        ready = True
    finally:
        if folder is not None and writer is None and (seeds == 1 or not ready):
            release_claim(folder, remove_folder=not args.out)
    set_stage(f"running {args.preset}" if args.preset else "setting up")
    if args.preset:
        from .experiments import run_preset
        from .seeds import run_seeds

        figures = getattr(args, "figures", True)
        try:
            if seeds > 1:
                try:
                    measured = run_seeds(args.preset, cfg, dataset, folder, seeds, start_writer,
                                         quiet=args.quiet, figures=figures,
                                         checkpoint_every=getattr(args, "checkpoint_every", None))
                finally:
                    if folder is not None:  # seeds.json keeps the folder from being reused
                        release_claim(folder)
            else:
                measured = run_preset(args.preset, cfg, dataset, writer, quiet=args.quiet, figures=figures)
        except OutputError as exc:  # a file could not be written once the experiment had begun
            warn(f"fftui: {stopped(str(exc))}")
            return 1
        return ending_status(measured["run"]) if "run" in measured else 0
    warn(f"fftui: {cfg.mode} mode, {cfg.loss} loss, {cfg.optimizer} lr {cfg.lr:g}, N {cfg.batch_size}, "
         f"n {','.join(map(str, cfg.layer_widths))}, {dataset.description}, {dataset.images.device}")
    total = cfg.total_iters(dataset.size)
    bar = None if args.quiet or total is None else RunProgress(total, sys.stderr)
    summary = None
    try:
        summary = run_headless(cfg, dataset, writer, on_chunk=chunk_progress(bar) if bar is not None else None,
                               graphs=args.cuda_graphs, compile=args.compile,
                               checkpoint_every=getattr(args, "checkpoint_every", 300.0))
    finally:
        if bar is not None:
            bar.finish(summary["iterations"] if summary is not None else None)
        if summary is None and writer is not None:  # a fault: what was recorded stays
            writer.close("failed", "the run stopped on an unexpected error")
    set_stage("writing the summary")
    emit(format_summary(summary))
    return ending_status(summary)


def ending_status(summary: dict) -> int:
    """Say on standard error how a run that did not finish ended, and return the exit status:
    0 finished, 1 a failure (the summary's "error"), 128 + the signal that stopped it."""
    from engine.logs import details

    if summary["error"]:
        warn(f"fftui: {stopped(summary['error'])}{details(summary.get('log'))}")
        return 1
    if summary["interrupted"]:
        signum = summary.get("signal") or signal.SIGINT
        warn(f"fftui: stopped by {signal.Signals(signum).name}; the {summary['iterations']} batches trained "
             "are kept")
        return 128 + int(signum)
    return 0


def stopped(error: str) -> str:
    """The line for a run that an error stopped: "stopped: ERROR", unless the error says so itself
    ("recording stopped: ...")."""
    return error if error.startswith("recording stopped") else f"stopped: {error}"
