"""`fftui run --headless --resume GROUP`: a preset's group of seed runs (`--seeds K`, fftui.headless.seeds)
taken up where it stopped, then its files written again over all its seeds.

Every seed of the group's seeds.json is, in seed order:
- finished: left exactly as it is (not a byte changed), its records read back for the group's files
  (so is one that a signal stopped after its last batch: nothing is left to train);
- stopped with a checkpoint (a signal, a failure): resumed from it, in its own folder, as
  `fftui run --resume GROUP/seed-SEED` resumes one run (fftui/resume.py);
- stopped before its first checkpoint, or claimed and never begun: its folder emptied and its run
  started afresh with its recorded configuration;
- never begun (no folder): run, as `--seeds` would have run it.
As in `--seeds`, a seed that does not finish ends the loop. Then NAME.csv, NAME-seeds.csv, NAME.txt
and the figures are written over the seeds, as an uninterrupted `--seeds` run writes them
(seeds.report_seeds).

Everything is checked before anything changes, with one line and status 2 otherwise: a group whose
seeds all finished (nothing to resume), a preset that trains nothing, a seed being recorded now,
one that diverged or is damaged, a configuration that no longer validates, data that are not the
runs', and --iters / --epochs (a group goes on to the end it was given)."""
from __future__ import annotations

import argparse
import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import Config, ConfigError
from engine.store.catalog import SEEDS_MARKER
from engine.store.files import CONFIG_JSON, LOCK, RUN_JSON, StoreError, WriterLock


def is_group(folder: Path) -> bool:
    """Whether folder is a group of seed runs: it holds seeds.json and no run of its own."""
    return (folder / SEEDS_MARKER).is_file() and not (folder / RUN_JSON).exists()


@dataclass
class SeedStep:
    """What a group's resume does with one seed: kind "finished" (read back), "resume" (plan: its
    engine.resume.ResumePlan, lock held), "complete" (stopped by a signal that came with its last
    batch: every batch recorded, read back as finished), "afresh" (its folder emptied and the run begun again;
    lock: its old writer lock, held) or "new" (never begun); cfg: the seed's configuration."""

    seed: int
    folder: Path
    kind: str
    cfg: Config
    plan: Any = None
    lock: WriterLock | None = None

    def release(self) -> None:
        """Let go whatever lock this step holds."""
        if self.plan is not None:
            self.plan.release()
        if self.lock is not None:
            self.lock.release()


@dataclass
class GroupPlan:
    """A group that may be resumed: its folder, preset, configuration (seed: the first seed's), the
    steps in seed order, and the group's writer lock (held)."""

    folder: Path
    preset: str
    cfg: Config
    steps: list[SeedStep]
    lock: WriterLock
    keep_samples: str = "auto"
    released: bool = field(default=False)

    def release(self) -> None:
        """Let every lock go and take the group's writer.lock away (as a finished `--seeds` run leaves it)."""
        if self.released:
            return
        self.released = True
        for step in self.steps:
            step.release()
        self.lock.release()
        with contextlib.suppress(OSError):
            (self.folder / LOCK).unlink()


def _config(values: Any, where: str) -> Config:
    if not isinstance(values, dict):
        raise StoreError(f"{where} holds no configuration")
    try:
        return Config().replace(**values)
    except (ConfigError, TypeError) as exc:
        raise StoreError(f"{where}'s configuration no longer validates: {exc}".splitlines()[0]) from None


def _read_marker(folder: Path) -> dict:
    import orjson

    try:
        marker = orjson.loads((folder / SEEDS_MARKER).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise StoreError(f"{folder / SEEDS_MARKER} cannot be read: {exc}".splitlines()[0]) from None
    seeds = marker.get("seeds") if isinstance(marker, dict) else None
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds)
            and isinstance(marker.get("preset"), str)):
        raise StoreError(f"{folder / SEEDS_MARKER} names no preset and seeds: not a group fftui wrote")
    return marker


def _base_config(folder: Path, marker: dict, seeds: list[int]) -> Config:
    """The group's configuration (seed: its first): seeds.json's, else the first seed run's config.json."""
    if "config" in marker:
        return _config(marker["config"], str(folder / SEEDS_MARKER)).replace(seed=seeds[0])
    import orjson

    for seed in seeds:
        path = folder / f"seed-{seed}" / CONFIG_JSON
        with contextlib.suppress(OSError, orjson.JSONDecodeError):
            recorded = orjson.loads(path.read_bytes())
            return _config(recorded.get("config"), str(path)).replace(seed=seeds[0])
    raise StoreError(f"{folder.name} holds no recorded configuration (it stopped before its first seed's run "
                     "began): run it again")


def _not_begun(folder: Path) -> bool:
    """A seed folder claimed but whose run never began: nothing in it but writer.lock (and config.json)."""
    return not (folder / RUN_JSON).exists() and {p.name for p in folder.iterdir()} <= {LOCK, CONFIG_JSON}


def _locked(folder: Path, name: str) -> WriterLock:
    from engine.resume import hold_writer_lock

    return hold_writer_lock(folder, f"{name} is being recorded now; resume the group once its run has stopped")


def _step(group: Path, seed: int, base: Config) -> SeedStep:
    """How seed's run is taken up (see SeedStep); StoreError (one line) when it cannot be."""
    from engine.resume import plan_resume
    from engine.store import RunReader

    folder = group / f"seed-{seed}"
    name = f"{group.name}/seed-{seed}"
    cfg = base.replace(seed=seed)
    if not folder.exists():
        return SeedStep(seed, folder, "new", cfg)
    if not folder.is_dir():
        raise StoreError(f"{folder} is not a folder")
    if _not_begun(folder):
        return SeedStep(seed, folder, "afresh", cfg, lock=_locked(folder, name))
    reader = RunReader(folder)
    status = reader.status
    if status == "finished":
        return SeedStep(seed, folder, "finished", _config(reader.config.get("config"), str(folder / CONFIG_JSON)))
    if status == "running":
        raise StoreError(f"{name} is being recorded now; resume the group once its run has stopped")
    checkpoint = reader.checkpoint() if status != "diverged" else None
    if status != "diverged" and checkpoint is None:  # stopped before its first checkpoint
        recorded = _config(reader.config.get("config"), str(folder / CONFIG_JSON))
        return SeedStep(seed, folder, "afresh", recorded, lock=_locked(folder, name))
    order = checkpoint.optimizer.get("batch_order") if checkpoint is not None else None
    if checkpoint is not None and order is not None:  # a stop that came with its last batch: nothing to train
        recorded = _config(reader.config.get("config"), str(folder / CONFIG_JSON))
        total = recorded.total_iters(order.numel())
        if total is not None and checkpoint.iteration >= total:
            return SeedStep(seed, folder, "complete", recorded)
    plan = plan_resume(folder)
    return SeedStep(seed, folder, "resume", plan.cfg, plan=plan)


def plan_group(folder: Path, args: argparse.Namespace) -> GroupPlan:
    """Check that the group in folder can be resumed and take its locks (the group's and each
    seed's that will be written); StoreError or fftui.cli.UsageError (one line), nothing changed."""
    from engine.presets import PRESETS
    from engine.resume import UNTRAINED_PRESETS

    from ..cli import UsageError

    for dest, flag in (("iters", "--iters"), ("epochs", "--epochs")):
        if getattr(args, dest, None) is not None:
            raise UsageError(f"fftui run: a group of seed runs resumes to the end it was given; {flag} cannot go "
                             f"with it (resume one seed's run, {args.resume.rstrip('/')}/seed-SEED, to train it "
                             "further)")
    marker = _read_marker(folder)
    preset, seeds = marker["preset"], list(marker["seeds"])
    if preset not in PRESETS or PRESETS[preset].kind != "train":
        kind = ("measures the layer at initialisation and trains nothing: there is nothing to resume (run it again)"
                if preset in UNTRAINED_PRESETS else "is not a preset this fftui resumes as a group")
        raise StoreError(f"{folder.name} is the preset {preset}, which {kind}")
    base = _base_config(folder, marker, seeds)
    had_lock = (folder / LOCK).exists()  # left by a group run killed with -9
    lock = _locked(folder, folder.name)
    steps: list[SeedStep] = []
    try:
        for seed in seeds:
            steps.append(_step(folder, seed, base))
        if all(step.kind == "finished" for step in steps):
            raise StoreError(f"{folder.name}: all {len(seeds)} seeds' runs have finished; nothing to resume")
        keep = "auto"
        import orjson

        for step in steps:  # the seeds' own choice of kept per-sample arrays, for the runs begun here
            with contextlib.suppress(OSError, orjson.JSONDecodeError, AttributeError):
                keep = orjson.loads((step.folder / RUN_JSON).read_bytes()).get("keep_samples") or keep
                break
    except BaseException:
        for step in steps:
            step.release()
        lock.release()
        if not had_lock:  # refused: nothing changed
            with contextlib.suppress(OSError):
                (folder / LOCK).unlink()
        raise
    return GroupPlan(folder, preset, base, steps, lock, keep_samples=keep)


def check_group(plan: GroupPlan, dataset: Any) -> None:
    """StoreError (one line) when a seed to resume cannot go on with these data (see
    fftui.resume.resumable_end) or a run to begin does not fit them; changes nothing."""
    from engine.memory import check_fits
    from engine.negatives import check_labels

    from ..resume import resumable_end

    for step in plan.steps:
        if step.plan is not None:
            resumable_end(step.plan, dataset)
    check_fits(plan.cfg, dataset.size, dataset.images.device)
    check_labels(plan.cfg, dataset.labels)


def _begin(step: SeedStep, plan: GroupPlan, dataset: Any) -> Any:
    """A started RunWriter for a seed run begun afresh or for the first time, in its (emptied) folder."""
    from engine.headless import prepare_out_dir, run_description
    from engine.presets import PRESETS
    from engine.store import RunWriter

    if step.kind == "afresh":
        try:
            shutil.rmtree(step.folder)
        except OSError as exc:
            raise StoreError(f"cannot empty {step.folder}: {exc.strerror or exc}") from None
        step.release()  # its old lock's file is gone with the folder
        step.lock = None
    extra = {"preset": plan.preset, "claim": PRESETS[plan.preset].claim}
    return RunWriter(prepare_out_dir(step.folder), run_description(step.cfg, dataset, extra),
                     keep_samples=plan.keep_samples).start()


def _words(step: SeedStep) -> str:
    if step.kind == "resume":
        return f"seed-{step.seed} from iteration {step.plan.iteration:,}"
    return {"finished": f"seed-{step.seed} finished (kept)",
            "complete": f"seed-{step.seed} stopped after its last batch (kept, counted as finished)",
            "afresh": f"seed-{step.seed} afresh (no checkpoint)",
            "new": f"seed-{step.seed} not begun"}[step.kind]


def resume_group(args: argparse.Namespace, folder: Path, load: Callable[..., Any]) -> int:
    """`fftui run --headless --resume GROUP` (see the module's docstring): the exit status as
    `--seeds` gives it (0 done, 1 a failure, 128 + a signal's number); StoreError or UsageError
    (status 2) before anything changes when the group cannot be resumed."""
    from engine.headless import OutputError
    from engine.process import tune_for_training
    from engine.store import RunReader

    from ..resume import start_resumed
    from . import set_stage, warn
    from .command import ending_status, stopped
    from .experiments import Measured, measure, summary_rows
    from .seeds import report_seeds

    started = time.perf_counter()
    plan = plan_group(folder, args)
    try:
        set_stage("loading the data")
        dataset = load(plan.cfg, args.quiet)
        check_group(plan, dataset)
        set_stage("setting up")
        tune_for_training(interactive=False)
        warn(f"fftui: resuming the group {folder.name} ({plan.preset}): " + ", ".join(map(_words, plan.steps)))
        set_stage(f"running {plan.preset}")
        from engine.presets import SeriesSummary, figure_columns

        runs: list[Measured] = []
        count = len(plan.steps)
        for i, step in enumerate(plan.steps):
            label = f"seed {step.seed} ({i + 1}/{count})"
            if step.kind in ("finished", "complete"):
                m = Measured(plan.preset, step.seed, series=SeriesSummary(figure_columns(step.cfg)))
                assert m.series is not None
                m.series.rows = summary_rows(RunReader(step.folder).summary, step.cfg)
            elif step.kind == "resume":
                run = start_resumed(step.plan, args, dataset)
                step.plan = None  # its lock now the writer's, let go when the writer closes
                m = measure(plan.preset, step.cfg, dataset, run.writer, quiet=args.quiet, label=label,
                            trainer=run.trainer, earlier=run.earlier, earlier_lines=run.earlier_lines,
                            checkpoint_every=args.checkpoint_every)
            else:
                writer = _begin(step, plan, dataset)
                m = measure(plan.preset, step.cfg, dataset, writer, quiet=args.quiet, label=label,
                            checkpoint_every=args.checkpoint_every)
            runs.append(m)
            if not m.finished:
                break
        result = report_seeds(plan.preset, plan.cfg, dataset, folder, runs, count,
                              figures=getattr(args, "figures", True), started=started)
    except OutputError as exc:  # a file could not be written once the group had begun
        warn(f"fftui: {stopped(str(exc))}")
        return 1
    finally:
        plan.release()
    return ending_status(result["run"]) if "run" in result else 0
