"""`fftui run --resume RUN`: a recorded run trained on from its last checkpoint, in its own folder.

RUN is a run's name in the store, a unique prefix of it, or a run folder's path (as `fftui open`
takes it). --iters N / --epochs E set the run's new end as a total counted from its start (the
number config.json then holds, so that `fftui run --config RUN` still runs the whole run again);
without them the run goes on to the end it had. Bad input (no such run, no checkpoint, a run being
recorded, a configuration that no longer validates, another flag that would change the run) is one
line and exit status 2, with nothing changed."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import PARAMS

from .cli import AppStart  # fftui.cli imports this module only for --resume

# Flags that cannot go with --resume (the run goes on as it was configured and recorded).
CONTRADICTING = (("config", "--config"), ("preset", "--preset"), ("out", "--out"),
                 ("keep_samples", "--keep-samples"), ("seeds", "--seeds"))
ENDS = ("iters", "epochs")  # the parameters --resume takes: the run's new end


def check_resume_flags(args: argparse.Namespace) -> None:
    """UsageError (one line) for a flag that cannot go with --resume: another run's configuration,
    an output folder, --no-record, or a parameter other than the run's end (or how the app shows it,
    such as --smooth)."""
    from .cli import UsageError

    for dest, flag in CONTRADICTING:
        if getattr(args, dest, None):
            raise UsageError(f"fftui run: --resume continues a run in its own folder as it was recorded; {flag} "
                             "cannot go with it")
    if not getattr(args, "record", True):
        raise UsageError("fftui run: --resume records into the run's folder; --no-record cannot go with it")
    changed = [p.flag for p in PARAMS if p.name not in ENDS and not p.view and getattr(args, p.name, None) is not None]
    if changed:
        raise UsageError(f"fftui run: --resume continues a run with its own configuration; {', '.join(changed)} "
                         "cannot change it (--iters and --epochs can: the run's new total; fftui run --config RUN "
                         "starts a new run with other values)")


def locate_plan(args: argparse.Namespace, folder: Path | None = None) -> Any:
    """The engine.resume.ResumePlan of --resume RUN (its writer lock held; folder: RUN located
    already); StoreError (one line)."""
    from engine.resume import plan_resume

    from .runs_tools import locate

    return plan_resume(folder if folder is not None else locate(args.resume), iters=args.iters, epochs=args.epochs)


def earlier_records(folder: Path) -> list[dict]:
    """The summary lines of a run cut at its checkpoint (engine/store/resume.py cut_run), parsed:
    a stack's per-layer values, which the summary's columns do not hold."""
    import orjson

    from engine.store.files import SUMMARY
    from engine.store.reader import read_lines

    lines, _ = read_lines(folder / SUMMARY, compressed=True)
    return [orjson.loads(line) for line in lines]


def resumable_end(plan: Any, dataset: Any) -> int:
    """The planned end (total iterations) of the run of `plan` on `dataset`, once checked that the
    data are the run's, that the run has an end and that its checkpoint fits the configuration and
    the data; StoreError (one line) otherwise. Changes nothing."""
    from engine.evaluate import training_size
    from engine.memory import check_fits
    from engine.resume import check_checkpoint
    from engine.store import StoreError

    cfg = plan.cfg
    recorded = (plan.reader.config.get("dataset") or {}).get("size")
    if isinstance(recorded, int) and recorded != dataset.size:
        raise StoreError(f"{plan.reader.name} was trained on {recorded:,} images, the data now hold "
                         f"{dataset.size:,}: not the run's data")
    total = cfg.total_iters(training_size(dataset, cfg))
    if total is None:
        raise StoreError(f"{plan.reader.name} has no end (a live app's run): give --iters, the run's new "
                         "total, to resume it headless")
    check_fits(cfg, dataset.size, dataset.images.device)
    check_checkpoint(plan.checkpoint, cfg, training_size(dataset, cfg), dataset.images.shape[1])
    return total


@dataclass
class Resumed:
    """A run put back at its checkpoint, ready to train on: the trainer, the started writer (the run's
    folder cut back to the checkpoint), the batches recorded before it (earlier: a Summary;
    earlier_lines: parsed summary lines, for a stack), the planned end and the records dropped."""

    trainer: Any
    writer: Any
    earlier: Any
    earlier_lines: list[dict]
    total: int
    dropped: int


def start_resumed(plan: Any, args: argparse.Namespace, dataset: Any) -> Resumed:
    """Check the run of `plan` (resumable_end), build its trainer at the checkpoint, cut its folder
    back to the checkpoint and start its writer (the event "resumed" recorded). StoreError (one line)
    before anything is changed when it cannot be resumed; the plan's lock is let go when this raises."""
    from engine.headless import run_description
    from engine.resume import restore
    from engine.store import RunReader, RunWriter
    from engine.store.files import SUMMARY
    from engine.store.resume import cut_run
    from engine.trainer import Trainer

    writer = None
    try:
        cfg = plan.cfg
        total = resumable_end(plan, dataset)
        trainer = Trainer(cfg, dataset, graphs=args.cuda_graphs, compile=args.compile)
        restore(trainer, plan.checkpoint)  # refused when it does not fit: nothing changed yet
        carried = cut_run(plan.folder, plan.iteration, plan.reader.info)
        earlier = RunReader(plan.folder).summary
        earlier_lines = earlier_records(plan.folder) if len(cfg.layer_widths) > 1 else []
        description = plan.description(run_description(cfg, dataset))
        writer = RunWriter(plan.folder, description, keep_samples=plan.reader.info.get("keep_samples") or "auto",
                           lock=plan.lock, carried=carried).start()
    finally:
        if writer is None:
            plan.release()
    dropped = carried.dropped.get(SUMMARY, 0)
    writer.event("resumed", plan.iteration, dropped_records=dropped, total=total,
                 message=f"resumed at iteration {plan.iteration}")
    return Resumed(trainer, writer, earlier, earlier_lines, total, dropped)


def resume_headless(args: argparse.Namespace, load: Callable[..., Any]) -> int:
    """`fftui run --headless --resume RUN`: the exit status, as fftui.headless.command.run_command
    gives it (0 done, 1 a failure, 128 + a signal's number); StoreError (status 2) before anything
    is changed when the run cannot be resumed. RUN a group of seed runs (`--seeds`): every seed that
    did not finish is resumed (fftui.headless.seeds_resume)."""
    from engine.headless import run_headless
    from engine.process import tune_for_training

    from .headless import emit, set_stage, warn
    from .headless.command import ending_status
    from .headless.progress import RunProgress, chunk_progress
    from .headless.seeds_resume import is_group, resume_group
    from .headless.summary import format_summary
    from .runs_tools import locate

    folder = locate(args.resume)
    if is_group(folder):
        return resume_group(args, folder, load)
    plan = locate_plan(args, folder)
    try:
        set_stage("loading the data")
        dataset = load(plan.cfg, args.quiet)
        set_stage("setting up")
        tune_for_training(interactive=False)
    except BaseException:
        plan.release()
        raise
    run = start_resumed(plan, args, dataset)
    cfg, writer, total, dropped = plan.cfg, run.writer, run.total, run.dropped
    warn(f"fftui: resuming {plan.reader.name} at iteration {plan.iteration:,} of {total:,}"
         + (f" ({dropped:,} records after the checkpoint dropped)" if dropped else ""))
    if plan.preset is not None:  # fig2, fig3 (engine/resume.py refuses the presets that train nothing)
        from .headless.experiments import run_preset

        measured = run_preset(plan.preset, cfg, dataset, writer, quiet=args.quiet, trainer=run.trainer,
                              earlier=run.earlier, earlier_lines=run.earlier_lines,
                              checkpoint_every=args.checkpoint_every)
        return ending_status(measured["run"])
    bar = None if args.quiet else RunProgress(total, sys.stderr, start_at=plan.iteration)
    summary = None
    set_stage("running")
    try:
        summary = run_headless(cfg, dataset, writer, on_chunk=chunk_progress(bar) if bar is not None else None,
                               trainer=run.trainer, checkpoint_every=args.checkpoint_every, earlier=run.earlier,
                               earlier_lines=run.earlier_lines)
    finally:
        if bar is not None:
            bar.finish(summary["iterations"] if summary is not None else None)
        if summary is None:
            writer.close("failed", "the run stopped on an unexpected error")
    set_stage("writing the summary")
    emit(format_summary(summary))
    return ending_status(summary)


def resume_app(args: argparse.Namespace) -> int:
    """`fftui run --resume RUN`: the live app on the run, from its checkpoint on (its plots begin
    there; `fftui open RUN` shows the whole run). StoreError (status 2) before the app starts when
    the run cannot be resumed; the rest as fftui.cli._app."""
    from engine.store import StoreError

    from .cli import _app
    from .headless.seeds_resume import is_group
    from .runs_tools import locate

    folder = locate(args.resume)
    if is_group(folder):
        raise StoreError(f"{folder.name} is a group of seed runs (--seeds): resume it with --headless, or one "
                         f"seed's run in the app ({args.resume.rstrip('/')}/seed-SEED)")
    plan = locate_plan(args, folder)
    args.preset = None
    view = {p.name: getattr(args, p.name) for p in PARAMS if p.view and getattr(args, p.name, None) is not None}
    if view:  # how the app shows the run (--smooth): given beside --resume, it applies
        plan.cfg = plan.cfg.replace(**view)
    return _app(args, plan.cfg, start=ResumeStart(args, plan))


class ResumeStart(AppStart):
    """AppStart for a resumed run: no folder to claim (the run's own, its lock held by the
    plan), the run's files cut back to its checkpoint once the data are in, the runner's layer
    put back where the checkpoint left it."""

    def __init__(self, args: argparse.Namespace, plan: Any, **kwargs: Any) -> None:
        super().__init__(args, plan.cfg, **kwargs)
        self.plan = plan

    def load(self) -> Any:
        from engine.data import load_dataset, resolve_device
        from engine.evaluate import training_size
        from engine.headless import run_description
        from engine.memory import check_fits
        from engine.process import tune_for_training
        from engine.recording import Recording
        from engine.resume import check_checkpoint
        from engine.store import StoreError
        from engine.store.files import SUMMARY
        from engine.store.resume import cut_run

        plan, cfg = self.plan, self.cfg
        try:
            dataset = load_dataset(cfg.data, cfg.data_dir, device=resolve_device(cfg.device))
            recorded = (plan.reader.config.get("dataset") or {}).get("size")
            if isinstance(recorded, int) and recorded != dataset.size:
                raise StoreError(f"{plan.reader.name} was trained on {recorded:,} images, the data now hold "
                                 f"{dataset.size:,}: not the run's data")
            check_fits(cfg, dataset.size, dataset.device)
            check_checkpoint(plan.checkpoint, cfg, training_size(dataset, cfg), dataset.images.shape[1])
            if self.tune:
                tune_for_training(interactive=True)
            if self.closed:
                raise StoreError("the app ended before the run was resumed")
            carried = cut_run(plan.folder, plan.iteration, plan.reader.info)
            self.recorder = Recording(plan.folder, dataset, cfg,
                                      keep_samples=plan.reader.info.get("keep_samples") or "auto",
                                      extra=plan.description(run_description(cfg, dataset)),
                                      first_options={"lock": plan.lock, "carried": carried},
                                      **{"checkpoint_every": self.args.checkpoint_every, **self.recording_options})
        except BaseException:
            if self.recorder is None:
                plan.release()
            raise
        dropped = carried.dropped.get(SUMMARY, 0)
        self.recorder.event("resumed", plan.iteration, dropped_records=dropped,
                            message=f"resumed at iteration {plan.iteration}")
        return dataset

    def runner(self, cfg: Any, dataset: Any) -> Any:
        from engine.runner import Runner

        return Runner(cfg, dataset, graphs=self.args.cuda_graphs, compile=self.args.compile,
                      recorder=self.recorder, checkpoint=self.plan.checkpoint)

    def close(self, interrupted: bool = False) -> str:
        if self.recorder is None:
            self.closed = True
            self.plan.release()
            return ""
        return super().close(interrupted)

