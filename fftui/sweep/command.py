"""`fftui sweep`: define a sweep (flags or a TOML file), run it on Ray Tune, show its progress and
its results; `--status DIR`, `--resume DIR`, `--table DIR`.

Exit status: 0 when every trial finished or diverged (an outcome), 1 when a trial failed, 2 for bad
input (one line, nothing started), 128 + the signal's number when ctrl+c or SIGTERM stopped it."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .definition import SweepError


def add_sweep_parser(sub: Any) -> None:
    """The `sweep` command on the CLI's subparsers."""
    from engine.config import PARAMS
    from engine.presets import PRESETS

    from ..cli import add_param_flag

    sw = sub.add_parser(
        "sweep", help="run a grid or random search of parameters and seeds on Ray Tune", allow_abbrev=False,
        description="Run many trials, each a recorded run in the sweep folder's trials/, on Ray Tune (this machine "
        "by default, a cluster with --address), then a table of mean ± sd over seeds per setting. E.g. fftui "
        "sweep --preset fig3 --grid lr=1e-4,1e-3 loss=linear,logistic --seeds 5. Needs fftui[sweep].")
    sw.add_argument("definition", nargs="?", default=None, metavar="SWEEP.toml",
                    help="a sweep file: preset, config, seeds, samples, [grid], [random], [base] (flags override it)")
    what = sw.add_argument_group("what to sweep")
    trains = [k for k, v in PRESETS.items() if v.kind == "train"]
    what.add_argument("--preset", default=None, metavar="|".join(trains), help="start from this preset")
    what.add_argument("--config", default=None, metavar="RUN", help="start from a recorded run's configuration")
    what.add_argument("--grid", nargs="+", default=[], metavar="NAME=V1,V2",
                      help="every value of each parameter; a list parameter's values apart by semicolons, "
                      "e.g. 'widths=500,500;1000,1000'")
    what.add_argument("--random", nargs="+", default=[], metavar="NAME=LOW:HIGH",
                      help="ranges sampled --samples times (log-uniform for rates); NAME=A,B picks one of the values")
    what.add_argument("--samples", type=int, default=None, metavar="K", help="settings drawn for --random")
    what.add_argument("--sample-seed", type=int, default=None, metavar="S", help="seed of the draws (default 0)")
    what.add_argument("--seeds", type=int, default=None, metavar="K", help="run each setting with K seeds")
    what.add_argument("--yes", action="store_true", help=f"run a sweep of more than {100_000:,} trials")
    base = sw.add_argument_group("parameters of every trial (over the preset's or the file's)")
    for p in PARAMS:
        if not p.view:
            add_param_flag(base, p)
    where = sw.add_argument_group("where and how")
    where.add_argument("--out", default=None, metavar="DIR", help="the sweep folder (default: the store's sweeps/)")
    where.add_argument("--cpus", type=float, default=None, help="CPUs Ray may use on this machine (default: all)")
    where.add_argument("--gpus", type=float, default=None, help="GPUs Ray may use on this machine")
    where.add_argument("--cpus-per-trial", type=float, default=1.0, help="a trial's CPU share; torch's "
                       "threads in a trial follow it (default 1)")
    where.add_argument("--gpus-per-trial", type=float, default=0.0, help="a trial's GPU share, fractions allowed")
    where.add_argument("--concurrent", type=int, default=None, metavar="K", help="at most K trials at once")
    where.add_argument("--address", default=None, metavar="HOST:PORT", help="join this Ray cluster")
    where.add_argument("--keep-samples", default="auto", metavar="auto|all|none|N",
                       help="which batches keep their per-sample arrays (as fftui run)")
    where.add_argument("--quiet", action="store_true", help="no progress bar")
    where.add_argument("--plot", action="store_true", help="draw the plots in the terminal too")
    folders = sw.add_mutually_exclusive_group()
    folders.add_argument("--status", default=None, metavar="DIR", help="print a sweep's progress")
    folders.add_argument("--resume", default=None, metavar="DIR", help="run a sweep's unfinished trials")
    folders.add_argument("--table", default=None, metavar="DIR", help="print a sweep's results again")


def definition_from_args(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """The sweep's definition and base configuration from the TOML file and the flags (flags win:
    grid and random entries name by name, the rest as a whole). SweepError (one line)."""
    from engine.config import PARAMS

    from .definition import _entries, base_config, read_toml

    data = read_toml(args.definition) if args.definition else {}
    grid = {**_entries(data.get("grid"), "grid"), **_entries(args.grid, "--grid")}
    sampled = {**_entries(data.get("random"), "random"), **_entries(args.random, "--random")}
    definition = {"grid": grid, "random": sampled, "variants": data.get("variants"),
                  "samples": args.samples if args.samples is not None else data.get("samples"),
                  "seeds": args.seeds if args.seeds is not None else data.get("seeds"),
                  "sample_seed": args.sample_seed if args.sample_seed is not None else data.get("sample_seed")}
    over = dict(data.get("base") or {})
    over.update({p.name: getattr(args, p.name) for p in PARAMS if getattr(args, p.name, None) is not None})
    preset = args.preset or (None if args.config else data.get("preset"))
    config = args.config or (None if args.preset else data.get("config"))
    definition.update(preset=preset, config=config, base=over)
    return definition, base_config(preset, config, over)


def sweep_command(args: argparse.Namespace) -> int:
    """Run `fftui sweep`; returns the exit status."""
    from .state import SweepState

    state = None
    planned: tuple[Any, Path] = (None, Path())
    try:
        _refuse_definition_flags(args)
        if args.status or args.table:
            shown = SweepState.open(args.status or args.table)
            print(shown.status_line())
            if args.table:
                show_results(shown, plot=args.plot, write=False)
            return 0
        _check_resources(args)
        if args.resume:
            state = SweepState.open(args.resume)
            state.lock()
            for trial in state.to_run():
                state.config(trial)
            if not state.to_run():
                print(f"{state.status_line()}; nothing to resume")
                return 0
        else:
            planned = _plan_sweep(args)
        from .execute import ray_session, require_ray

        require_ray()
        with ray_session(args.cpus, args.gpus, args.address):  # joined or started before the folder is made
            if state is None:
                state = _create_sweep(*planned)
            return _run(args, state)
    except SweepError as exc:
        print(f"fftui sweep: {exc}", file=sys.stderr)
        return 2
    finally:
        if state is not None:
            state.unlock()


def _refuse_definition_flags(args: argparse.Namespace) -> None:
    """SweepError naming the flags that define a sweep (what to sweep, every trial's parameters,
    --out) when given with --status, --table or --resume, whose sweep is already defined."""
    mode = "--status" if args.status else "--table" if args.table else "--resume" if args.resume else None
    if mode is None:
        return
    from engine.config import PARAMS

    given = [f"--{name.replace('_', '-')}" for name in ("preset", "config", "samples", "sample_seed", "seeds", "out")
             if getattr(args, name, None) is not None]
    given += [flag for flag, value in (("--grid", args.grid), ("--random", args.random), ("--yes", args.yes)) if value]
    given += [f"--{p.name.replace('_', '-')}" for p in PARAMS if getattr(args, p.name, None) is not None]
    if args.definition:
        given.insert(0, args.definition)
    if given:
        raise SweepError(f"{mode} goes on with the sweep as it was defined: {', '.join(given)} cannot go with it")


def _check_resources(args: argparse.Namespace) -> None:
    for flag, value in (("--cpus", args.cpus), ("--gpus", args.gpus), ("--cpus-per-trial", args.cpus_per_trial),
                        ("--gpus-per-trial", args.gpus_per_trial)):
        if value is not None and not value >= 0:
            raise SweepError(f"{flag} must be 0 or more, not {value:g}")
    if args.cpus_per_trial <= 0 and args.gpus_per_trial <= 0:
        raise SweepError("a trial needs a share of something: --cpus-per-trial or --gpus-per-trial above 0")
    if args.concurrent is not None and args.concurrent < 1:
        raise SweepError(f"--concurrent must be at least 1, not {args.concurrent}")
    from engine.store.columns import SamplePolicy
    from engine.store.files import StoreError

    try:
        SamplePolicy.parse(args.keep_samples)
    except StoreError as exc:
        raise SweepError(str(exc)) from None


def _plan_sweep(args: argparse.Namespace) -> tuple[Any, Path]:
    """The sweep and its folder, validated (every trial's configuration; the folder new or empty)
    without making anything."""
    from engine.store import run_stem, store_root

    from .definition import build
    from .state import SweepState

    definition, base = definition_from_args(args)
    sweep = build(definition, base, allow_many=args.yes)
    from .execute import require_ray

    require_ray()  # before Ray starts or the folder is made
    stem = Path(args.definition).stem if args.definition else "sweep"
    out = Path(args.out) if args.out else store_root().parent / "sweeps" / run_stem(stem)
    SweepState.check_free(out)
    return sweep, out


def _create_sweep(sweep: Any, out: Path) -> Any:
    from .state import SweepState

    state = SweepState.create(out, sweep)
    state.lock()  # the caller lets it go
    settings, seeds = len(sweep.settings), len(sweep.trials) // max(1, len(sweep.settings))
    print(f"fftui sweep: {len(sweep.trials)} trials ({settings} setting{'s' * (settings != 1)} x {seeds} "
          f"seed{'s' * (seeds != 1)}) in {state.folder}", file=sys.stderr)
    return state


def _run(args: argparse.Namespace, state: Any) -> int:
    from .execute import run_trials
    from .progress import SweepProgress

    progress = SweepProgress(state, enabled=not args.quiet)
    with progress:
        stop = run_trials(state, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                          cpus=args.cpus, gpus=args.gpus, address=args.address, concurrent=args.concurrent,
                          keep_samples=args.keep_samples, on_change=progress.update)
    print(state.status_line(), file=sys.stderr)
    show_results(state, plot=args.plot, write=True)
    for trial in state.trials:
        if trial["status"] == "failed":
            print(f"fftui sweep: trial {trial['name']} failed: {trial['error']}", file=sys.stderr)
    if stop.signum is not None:
        import signal

        print(f"fftui sweep: stopped by {signal.Signals(stop.signum).name}; fftui sweep --resume {state.folder} "
              "runs the trials not finished", file=sys.stderr)
        return 128 + stop.signum
    return 1 if any(t["status"] == "failed" for t in state.trials) else 0


def show_results(state: Any, *, plot: bool, write: bool) -> None:
    """Print the results table (and the terminal plots with `plot`); with `write`, results.csv and
    plots.png (matplotlib, when installed) into the sweep folder."""
    from rich.console import Console

    from .results import aggregate, results_csv, results_table, terminal_plots, write_png

    rows = aggregate(state)
    console = Console()
    # the table keeps its cells whole: wider than the terminal, its lines wrap rather than its numbers
    Console(width=max(console.width, 170)).print(results_table(state, rows))
    if plot:
        text = terminal_plots(state, rows, width=min(console.width, 140))
        if text:
            print(text)
    if not write:
        return
    try:
        (state.folder / "results.csv").write_text(results_csv(state, rows), encoding="utf-8")
        wrote = ["results.csv"]
        try:
            if write_png(state, rows, state.folder / "plots.png"):
                wrote.append("plots.png")
        except ImportError:
            print("fftui sweep: plots.png needs matplotlib: pip install 'fftui[plots]'", file=sys.stderr)
    except OSError as exc:
        raise SweepError(f"cannot write the results into {state.folder}: {exc.strerror or exc}") from None
    print(f"fftui sweep: wrote {' and '.join(wrote)} into {state.folder}", file=sys.stderr)
