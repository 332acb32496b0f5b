"""The `fftui` command: the live app by default, `fftui run --headless` for runs without a UI."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from engine.config import PARAMS, Config, ConfigError
from engine.params import Param, format_value, params_of
from engine.process import tune_for_training

from . import __version__
from .headless import Interrupted, OutputStreamError, interruptible, warn
from .record import SAMPLES_IN_FULL, check_recording_flags, claim_folder, read_config_file


class UsageError(Exception):
    """A bad command line; printed as one line, exit status 2."""


class HelpNotWritten(Exception):
    """--help or --version could not be written to standard output (a full device)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage dump
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def _print_message(self, message: str, file=None) -> None:
        # argparse's own printing (--help, --version) drops an OSError: a help text sent to a full
        # device would vanish with status 0. Written and flushed here, the failure is one line, 1.
        if not message:
            return
        stream = file or sys.stderr
        try:
            stream.write(message)
            stream.flush()
        except BrokenPipeError:  # the reader went away (`fftui --help | head`): main's 141
            raise
        except OSError as exc:
            raise HelpNotWritten(exc.strerror or str(exc)) from None


def _choices(values: Sequence[str]) -> str:
    return "|".join(values)


# The argument group of each parameter group (engine.params.GROUPS).
GROUP_TITLES = {"training": "training", "data": "data and device", "display": "display (the live app)"}


def param_help(p: Param) -> str:
    """A parameter's --help text: its help, its range, and its default (with the unit)."""
    text = p.help
    if p.interval():
        text += f", in {p.interval()}"
    text += "".join(f"; {format_value(v)}: {meaning}" for v, meaning in p.special)
    default = format_value(p.default) + (f" {p.unit}" if p.unit and p.default is not None else "")
    return f"{text} (default {default})"


def add_param_flag(group, p: Param) -> None:
    """The flag of one parameter; its value stays None when not given, so presets keep theirs."""
    if p.kind == "bool":
        group.add_argument(p.flag, dest=p.name, action="store_const", const=True, default=None,
                           help=param_help(p))
    elif p.kind == "choice":
        group.add_argument(p.flag, dest=p.name, choices=p.choices, metavar=_choices(p.choices), default=None,
                           help=param_help(p))
    else:
        group.add_argument(p.flag, dest=p.name, metavar=p.metavar or None, default=None, help=param_help(p))


def build_parser(params: Sequence[Param] = PARAMS) -> argparse.ArgumentParser:
    """The command line; ``params`` declares the configuration flags (the real ones by default)."""
    from engine.presets import PRESETS

    top = _Parser(prog="fftui", description="Watch Forward-Forward training make ReLU activations "
                  "sparse, batch by batch, beside the theory that predicts it. With no command, "
                  "opens the live app on the default configuration.")
    top.add_argument("--version", action="version", version=f"fftui {__version__}")
    sub = top.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", help="train one layer: the live app, or --headless",
                         description="Train one FF layer h = ReLU(Wx). Opens the live app unless "
                         "--headless is given. Defaults are the report's: ff mode, N = 128, n = 2000, "
                         "plain SGD with lr 1e-3. Flags given with --preset override the preset's values.")
    run.add_argument("--headless", action="store_true",
                     help="no UI: print a progress bar and a summary")
    run.add_argument("--config", default=None, metavar="RUN/config.json",
                     help="run the configuration a recorded run's config.json (or its folder) holds again "
                     "(flags given beside it override its values)")
    run.add_argument("--resume", default=None, metavar="RUN",
                     help="continue a recorded run (its name, a unique prefix or its folder) from its last "
                     "checkpoint, in its own folder, in the live app or --headless; --iters/--epochs then give the "
                     "run's new total, counted from its start (default: the end it had); a group of seed runs "
                     "(--seeds) resumes headless as a group: every seed that did not finish, then the group's files")
    names = tuple(PRESETS)
    run.add_argument("--preset", choices=names, metavar=_choices(names), default=None,
                     help="one of the report's experiments with exactly its parameters: "
                     + "; ".join(f"{k}: {v.heading()}" for k, v in PRESETS.items()))
    run.add_argument("--seeds", type=seed_count, default=None, metavar="K",
                     help="headless --preset: run the preset K times, with seeds S, S+1, ..., S+K-1 (S: --seed), "
                     "each recorded as its own run (seed-SEED/ in the preset's folder), and report every summary "
                     "number as mean ± sample standard deviation (ddof = 1) over the seeds (default 1)")
    run.add_argument("--no-figures", dest="figures", action="store_false",
                     help="headless --preset: write no PNG/SVG figure (they need matplotlib: pip install "
                     "'fftui[plots]'); the CSV and the text figure are written all the same")
    groups = {key: run.add_argument_group(title) for key, title in GROUP_TITLES.items()}
    for key, group in groups.items():
        for p in params:
            if p.group == key:
                add_param_flag(group, p)
    d = groups["data"]
    d.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                   help="on CUDA, run every step eagerly instead of replaying a captured graph")
    d.add_argument("--compile", action="store_true",
                   help="on CUDA, fuse the captured step with torch.compile (the first batch after each "
                   "change waits for compilation)")
    o = run.add_argument_group("recording", "Every run is recorded, by default in the run store (fftui runs "
                               "lists it) as runs/DATE-TIME-NAME, NAME the preset's or MODE-LOSS.")
    o.add_argument("--out", default=None, metavar="DIR",
                   help="record into DIR instead of the store (config.json, run.json, the per-batch summary, "
                   "per-sample arrays, events, checkpoint; a preset's CSV and figure too); DIR must not hold "
                   "a previous run. In the live app a reset starts the next run in DIR-2, DIR-3...")
    o.add_argument("--no-record", dest="record", action="store_false",
                   help="record nothing (a preset then only prints its figure and summary)")
    o.add_argument("--keep-samples", default=None, metavar="auto|all|none|N",
                   help="which batches keep their per-sample arrays (LHS, RHS, outcomes, predictions): auto "
                   f"(every batch up to {SAMPLES_IN_FULL:,}, then fewer and fewer), all, none (the summary "
                   "only), or every batch up to N, then thinned (default auto)")
    o.add_argument("--checkpoint-every", type=_seconds, default=300.0, metavar="SECONDS",
                   help="seconds between checkpoints (the layer and the training state a --resume goes on from); "
                   "one is also written at the end and on a clean stop (default 300)")
    o.add_argument("--quiet", action="store_true", help="headless: no progress bar")
    from .runs import add_runs_parser

    add_runs_parser(sub)
    from .runs_tools import add_open_parser

    add_open_parser(sub)
    from .sweep.command import add_sweep_parser

    add_sweep_parser(sub)
    return top


def _seconds(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"SECONDS must be a number above 0, not {text!r}")
    return value


def seed_count(text: str) -> int:
    """--seeds K: a whole number, 1 or more (argparse.ArgumentTypeError otherwise)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"K must be a whole number of seeds, 1 or more, not {text!r}")
    return value


def check_seed_flags(args: argparse.Namespace, cfg: Config) -> None:
    """--seeds and --no-figures go with a headless preset, and the last seed stays a valid seed;
    UsageError (one line) otherwise."""
    seeds = getattr(args, "seeds", None)
    for given, flag in ((seeds is not None, "--seeds"), (not getattr(args, "figures", True), "--no-figures")):
        if given and not (args.preset and args.headless):
            raise UsageError(f"fftui run: {flag} is for --headless --preset runs")
    from engine.presets import PRESETS

    if seeds is not None and args.preset and PRESETS[args.preset].kind == "network":
        raise UsageError(f"fftui run: --seeds is for the report's figures (fig1a to fig3), not --preset {args.preset}")
    if seeds is not None and cfg.seed + seeds - 1 > 2**63 - 1:
        raise UsageError(f"fftui run: --seed {cfg.seed} with --seeds {seeds} goes past the largest seed, 2**63 - 1")


def config_from_args(args: argparse.Namespace, default: Config | None = None) -> Config:
    """The configuration of --config's file, else the preset's (or the default), with every flag
    the user gave applied over it."""
    from engine.presets import PRESETS

    if getattr(args, "config", None):
        base = read_config_file(args.config)
    else:
        base = PRESETS[args.preset].config if args.preset else (default or Config())
    params = params_of(type(base))
    given = {p.name: getattr(args, p.name) for p in params if getattr(args, p.name, None) is not None}
    # a flag given with an empty value is a mistake, never "the default" (`--iters ''`, `--out ''`);
    # argparse turns a value of `--` (`--data-dir=--`) into an empty list
    flags = {p.name: p.flag for p in params}
    flags["out"] = "--out"
    for name, value in {**given, "out": getattr(args, "out", None)}.items():
        if isinstance(value, list) or (isinstance(value, str) and not value.strip()):
            shown = "--" if isinstance(value, list) else repr(value)
            raise UsageError(f"fftui run: {flags[name]} needs a value, not {shown}")
    try:
        return base.replace(**given)
    except ConfigError as exc:
        raise UsageError(f"fftui run: {exc}") from None


def join_negative_values(argv: list[str]) -> list[str]:
    """`--theta -1e3` as `--theta=-1e3`: argparse takes a value that starts with "-" for a flag
    unless it is a plain negative integer or decimal, so exponents and "-inf" need the "=" form."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        following = argv[i + 1] if i + 1 < len(argv) else ""
        if token.startswith("--") and "=" not in token and following.startswith("-") and _is_number(following):
            out.append(f"{token}={following}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    argv = join_negative_values(list(sys.argv[1:] if argv is None else argv))
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["run", *argv]
    return build_parser().parse_args(argv)


def _load(cfg: Config, quiet: bool):
    from engine.data import load_dataset, resolve_device
    from engine.memory import check_fits

    device = resolve_device(cfg.device)
    dataset = load_dataset(cfg.data, cfg.data_dir, device=device)
    if dataset.note:
        print(f"fftui: {dataset.note}", file=sys.stderr)
    check_fits(cfg, dataset.size, dataset.device)  # refused before anything large is allocated
    check_data(cfg, dataset)
    return dataset


def check_data(cfg: Config, dataset) -> None:
    """What the data must hold for cfg, before anything starts: the labels its negatives need
    (ConfigError) and, to evaluate, the test digits (DataError)."""
    from engine.negatives import check_labels

    check_labels(cfg, dataset.labels)
    if cfg.evaluate:
        from engine.evaluate import split_for_evaluation

        split_for_evaluation(dataset, cfg)


def _headless(args: argparse.Namespace, cfg: Config) -> int:
    if cfg.iters is None and cfg.epochs == 0:
        raise UsageError("fftui run: --epochs 0 (until stopped) is for the live app; a headless run "
                         "needs --iters or --epochs of at least 1")
    with interruptible():  # a stop signal while loading or setting up: one line, 128 + its number
        from .headless.command import run_command

        return run_command(args, cfg, _load)


# Flags that mean something only without the app: refused there with one line, status 2.
HEADLESS_ONLY = (("quiet", "--quiet"),)


class AppStart:
    """What the live app does behind its first frame, in its loading thread (`fftui.lifecycle`):
    claim the run's folder, import torch and load the data, build the runner (with --compile,
    --no-cuda-graphs and the recording, `engine.recording.Recording`). Nothing here runs before the
    first frame."""

    def __init__(self, args: argparse.Namespace, cfg: Config, *, tune: bool = True,
                 recording_options: dict | None = None) -> None:
        self.args = args
        self.cfg = cfg
        self.tune = tune  # the process-wide settings of engine.process, once torch is in
        self.recorder: Any = None  # engine.recording.Recording once the data are in (None: --no-record)
        self.recording_options = recording_options or {}  # more keywords for Recording (tests)
        self.claimed: Any = None  # the run's folder once claimed
        self.closed = False       # close() was called: a load still under way records nothing

    def load(self):
        """The dataset; claims the run's folder first (engine.headless.OutputError or
        engine.store.StoreError when it cannot; the folder is given back when the data do not
        load). A configuration that would not fit the device's memory raises ConfigError."""
        folder = self.claimed = claim_folder(self.args, self.cfg)
        try:
            from engine.data import load_dataset, resolve_device
            from engine.memory import check_fits

            dataset = load_dataset(self.cfg.data, self.cfg.data_dir, device=resolve_device(self.cfg.device))
            check_fits(self.cfg, dataset.size, dataset.device)  # refused before anything large is allocated
            check_data(self.cfg, dataset)
        except BaseException:
            if folder is not None:
                from engine.headless import release_claim

                release_claim(folder, remove_folder=not self.args.out)
            raise
        if self.tune:
            tune_for_training(interactive=True)
        if folder is not None and not self.closed:
            from engine.recording import Recording

            self.recorder = Recording(folder, dataset, self.cfg, out=self.args.out,
                                      keep_samples=self.args.keep_samples or "auto",
                                      extra={"preset": self.args.preset},
                                      **{"checkpoint_every": getattr(self.args, "checkpoint_every", 300.0),
                                         **self.recording_options})
        return dataset

    def runner(self, cfg: Config, dataset):
        """The engine's thread, as the flags ask."""
        from engine.runner import Runner

        return Runner(cfg, dataset, graphs=self.args.cuda_graphs, compile=self.args.compile, recorder=self.recorder)

    def close(self, interrupted: bool = False) -> str:
        """End the recording (the last run interrupted, or finished, or diverged) and wait for its
        files; a few words on them for the last line ("" with --no-record)."""
        self.closed = True
        recorder = self.recorder
        if recorder is None:
            if self.claimed is not None:  # the app ended while the data loaded: no run began
                from engine.headless import release_claim

                release_claim(self.claimed, remove_folder=not self.args.out)
            return ""
        recorder.close(interrupted=interrupted)
        return f"; {recorder.summary()}"


def _app(args: argparse.Namespace, cfg: Config, start: AppStart | None = None) -> int:
    """Run the live app, then end the process at once, restored terminal first. Status: 0 after a
    quit; 2 when the data or the --out folder cannot be used (one line); 128 + the signal's number
    after SIGINT, SIGTERM or SIGHUP (one line); 1 after a crash (Textual has printed the traceback)
    or a failure while loading (one line naming the log)."""
    for dest, flag in HEADLESS_ONLY:
        if getattr(args, dest, False):
            raise UsageError(f"fftui run: {flag} is for --headless runs")
    closed_streams()
    from fftui import lifecycle
    from fftui.app import FFApp

    start = start or AppStart(args, cfg)
    app = FFApp(config=cfg, loader=start.load, runner_factory=start.runner, preset=args.preset,
                stop_signals=True)
    lifecycle.catch_early_signals()
    app.run()
    status = app_exit_status(app.return_code)
    files = start.close(interrupted=getattr(app, "stop_signal", None) is not None)
    line = ""
    load_error, stop_signal = getattr(app, "load_error", None), getattr(app, "stop_signal", None)
    if load_error is not None:
        status, line = failure(load_error)
    elif stop_signal is not None:
        import signal

        runner = app.runner
        trained = f"{runner.iteration:,} batches trained" if runner is not None else "before training began"
        line = f"fftui: stopped by {signal.Signals(stop_signal).name}; {trained}{files}"
        status = 128 + stop_signal
    elif files:
        line = f"fftui: {files.removeprefix('; ')}"
    # The app has stopped the engine and restored the terminal; skip the interpreter's slow
    # teardown of torch so that quitting returns to the shell at once.
    try:
        if line:
            print(line, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)


def closed_streams() -> None:
    """Refuse to start the live app when standard input or standard error was closed at start-up
    (Python then leaves sys.__stdin__ or sys.__stderr__ as None): Textual reads keys from the one
    and draws on the other, and without them it would end in a traceback, or draw nothing and hang
    deaf to q and SIGTERM. The line goes to standard output when standard error is the one closed."""
    closed = [name for name, stream in (("input", sys.__stdin__), ("error", sys.__stderr__)) if stream is None]
    if not closed:
        if _a_file_not_a_screen(2):  # `fftui 2>log`: the app would draw into the file, unseen
            line = ("fftui run: the live app draws on standard error, which goes to a file here; run it "
                    "with standard error on the terminal, or use --headless")
            print(line, file=sys.stdout if os.isatty(1) else sys.stderr)
            sys.stdout.flush()
            raise SystemExit(2)
        return
    line = (f"fftui run: the live app needs standard {' and standard '.join(closed)} (closed here); "
            "run it in a terminal, or use --headless")
    if sys.__stderr__ is None:
        print(line, file=sys.stdout)
        sys.stdout.flush()
        raise SystemExit(2)
    raise UsageError(line)


def _a_file_not_a_screen(fd: int) -> bool:
    """Whether fd is a regular file or a device other than a terminal (/dev/null): nothing drawn
    there is seen. A pipe is left alone (a program reading the app's output chose it)."""
    import stat

    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return not os.isatty(fd) and (stat.S_ISREG(mode) or stat.S_ISCHR(mode))


def app_exit_status(return_code: int | None) -> int:
    """The process status for a Textual app's ``return_code``: 0 for 0 or None (the app never set
    one), the code itself for an error (Textual sets 1 after an unhandled exception), capped to
    the 1..255 a process can report."""
    if not return_code:
        return 0
    return return_code if 0 < return_code < 256 else 1


# Errors of the user's making raised past the command line (a data folder, an output folder), by
# module and class: looked up only once their module is loaded, so that parsing never imports torch.
USER_ERRORS = (("engine.data.errors", "DataError"), ("engine.headless", "OutputError"),
               ("engine.params", "ConfigError"), ("engine.store.files", "StoreError"))


def is_user_error(exc: BaseException) -> bool:
    """Whether exc is one of USER_ERRORS (a module not loaded yet cannot have raised one)."""
    kinds = tuple(getattr(sys.modules[module], name) for module, name in USER_ERRORS if module in sys.modules)
    return bool(kinds) and isinstance(exc, kinds)


def open_standard_streams() -> None:
    """Give a closed standard stream (`2>&-`, `>&-`) the null device in its place: otherwise the
    next file opened (a run's file) would take its descriptor and receive whatever is printed,
    and Python leaves sys.stderr as None, so printing to it fails. What would be printed there is
    lost, as the user asked; the run itself goes on."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", encoding="utf-8", closefd=False))  # noqa: SIM115


def _silence_stdout() -> None:
    """Point standard output at the null device, so that what is still buffered for it is not
    written (and failed again) when the interpreter exits."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    open_standard_streams()
    try:
        args = parse(argv)
        if args.command == "runs":
            from .runs import runs_command

            return runs_command(args)
        if args.command == "open":
            from .replay import open_command

            return open_command(args)
        if args.command == "sweep":
            from .sweep.command import sweep_command

            return sweep_command(args)
        if args.resume:
            from .resume import check_resume_flags, resume_app, resume_headless

            check_resume_flags(args)
            if not args.headless:
                return resume_app(args)
            with interruptible():
                return resume_headless(args, _load)
        check_recording_flags(args)
        cfg = config_from_args(args)
        check_seed_flags(args, cfg)
        if args.headless:
            return _headless(args, cfg)
        if args.epochs is None and args.iters is None and not args.preset and not args.config:
            cfg = cfg.replace(epochs=0)  # the live app trains until it is stopped
        return _app(args, cfg)
    except UsageError as exc:
        warn(str(exc))
        return 2
    except KeyboardInterrupt:
        warn("fftui: interrupted")
        return 130
    except Interrupted as exc:
        warn(f"fftui: stopped by {exc.name} while {exc.stage or 'starting'}")
        return 128 + exc.signum
    except HelpNotWritten as exc:
        _silence_stdout()
        warn(f"fftui: cannot write to standard output: {exc}")
        return 1
    except BrokenPipeError:  # the reader of our output went away (`fftui ... | head`)
        _silence_stdout()
        return 141
    except OutputStreamError as exc:  # standard output is full or broken: the run's files are kept
        _silence_stdout()
        warn(f"fftui: {exc}")
        return 1
    except Exception as exc:  # a fault, not the user's: one line here, the traceback in the log
        status, line = failure(exc)
        warn(line)
        return status


def failure(exc: BaseException) -> tuple[int, str]:
    """The exit status and the one line for an exception that ended the command: 2 and its message
    for one of USER_ERRORS; 1 and its message for an engine.trainer.EngineError (a layer too large
    for the device's memory); 1 and "unexpected error" else; those two name the log of the traceback."""
    if is_user_error(exc):
        return 2, f"fftui: {exc}"
    from engine.logs import details, log_exception

    trainer = sys.modules.get("engine.trainer")
    if trainer is not None and isinstance(exc, trainer.EngineError):
        line = str(exc)
    else:
        line = f"unexpected error: {type(exc).__name__}: {exc}".splitlines()[0]
    return 1, f"fftui: {line}{details(log_exception(line, exc))}"
