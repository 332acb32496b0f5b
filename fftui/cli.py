"""The `fftui` command: the live app by default, `fftui run --headless` for runs without a UI."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from engine.config import (DATA_SOURCES, DEVICES, DTYPES, INITS, LOSSES, MODES, OPTIMIZERS, Config,
                           ConfigError)

from engine.metrics import SUMMARY_LINE
from engine.process import tune_for_training

from . import __version__


class UsageError(Exception):
    """A bad command line; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _choices(values: Sequence[str]) -> str:
    return "|".join(values)


TRAINING_FLAGS = (
    # (flag, field, metavar or choices, help)
    ("--mode", "mode", MODES, "descent: decrease the summed goodness of plain images (Theorem 1); "
     "ff: positives and negatives, L = G(H-) - G(H+) (Theorem 2)"),
    ("--loss", "loss", LOSSES, "linear: the report's loss; logistic: Hinton's softplus loss around --theta"),
    ("--optimizer", "optimizer", OPTIMIZERS, "sgd (with --momentum) or adam"),
    ("--lr", "lr", "FLOAT", "learning rate"),
    ("--momentum", "momentum", "FLOAT", "SGD momentum in [0, 1)"),
    ("--weight-decay", "weight_decay", "FLOAT", "L2 weight decay added to the gradient"),
    ("--beta1", "beta1", "FLOAT", "Adam beta1"),
    ("--beta2", "beta2", "FLOAT", "Adam beta2"),
    ("--theta", "theta", "FLOAT", "goodness threshold; only the logistic loss depends on it"),
    ("--batch-size", "batch_size", "N", "images a batch (per side in ff mode)"),
    ("--width", "width", "n", "units in the layer"),
    ("--epochs", "epochs", "E", "passes over the data"),
    ("--iters", "iters", "I", "number of batches; overrides --epochs (cycles through the data as needed)"),
    ("--seed", "seed", "S", "seed of the weights, batch order and wrong labels"),
    ("--init", "init", INITS, "report: W ~ N(0, 2/n); kaiming: N(0, 2/m) (fan-in)"),
    ("--dtype", "dtype", DTYPES, "floating point type of the layer and the metrics"),
)
DATA_FLAGS = (
    ("--data", "data", DATA_SOURCES, "auto: MNIST if present or downloadable, else the shipped "
     "5,000-digit sample; mnist: MNIST or an error; sample: the shipped sample"),
    ("--data-dir", "data_dir", "DIR", "a folder holding the MNIST IDX files (train-images-idx3-ubyte[.gz], "
     "train-labels-idx1-ubyte[.gz]); never downloaded into"),
    ("--device", "device", DEVICES, "auto: CUDA when present, else the CPU"),
)
CONFIG_FIELDS = tuple(f[1] for f in TRAINING_FLAGS + DATA_FLAGS) + ("standardize",)


def _add(group, flag: str, field: str, spec, text: str) -> None:
    default = getattr(Config(), field)
    shown = "none" if default is None else (f"{default:g}" if isinstance(default, float) else default)
    if isinstance(spec, tuple):
        group.add_argument(flag, dest=field, choices=spec, metavar=_choices(spec), default=None,
                           help=f"{text} (default {shown})")
    else:
        group.add_argument(flag, dest=field, metavar=spec, default=None, help=f"{text} (default {shown})")


def build_parser() -> argparse.ArgumentParser:
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
                     help="no UI: print a progress bar and a summary; with --out, write files")
    names = tuple(PRESETS)
    run.add_argument("--preset", choices=names, metavar=_choices(names), default=None,
                     help="one of the report's experiments with exactly its parameters: "
                     + "; ".join(f"{k}: {v.title}" for k, v in PRESETS.items()))
    g = run.add_argument_group("training")
    for spec in TRAINING_FLAGS:
        _add(g, *spec)
    g.add_argument("--standardize", dest="standardize", action="store_const", const=True, default=None,
                   help="standardise each pixel over the data set before scaling inputs to unit length")
    d = run.add_argument_group("data and device")
    for spec in DATA_FLAGS:
        _add(d, *spec)
    d.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                   help="on CUDA, run every step eagerly instead of replaying a captured graph")
    d.add_argument("--compile", action="store_true",
                   help="on CUDA, fuse the captured step with torch.compile (headless; the first batch "
                   "after each change waits for compilation)")
    o = run.add_argument_group("output (headless)")
    o.add_argument("--out", default=None, metavar="DIR",
                   help="write DIR/config.json and DIR/metrics.jsonl (one record a line, flushed as it goes); "
                   "DIR must not hold a previous run. With --preset it defaults to ./fftui-runs/PRESET-TIME")
    o.add_argument("--summary-only", action="store_true",
                   help="leave the per-sample arrays (LHS, RHS, outcomes) out of metrics.jsonl")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    return top


def config_from_args(args: argparse.Namespace) -> Config:
    """The preset's (or the default) configuration with every flag the user gave applied over it."""
    from engine.presets import PRESETS

    base = PRESETS[args.preset].config if args.preset else Config()
    given = {f: getattr(args, f) for f in CONFIG_FIELDS if getattr(args, f) is not None}
    try:
        return base.replace(**given)
    except ConfigError as exc:
        raise UsageError(f"fftui run: {exc}") from None


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["run", *argv]
    return build_parser().parse_args(argv)


def _load(cfg: Config, quiet: bool):
    from engine.data import load_dataset, resolve_device

    device = resolve_device(cfg.device)
    dataset = load_dataset(cfg.data, cfg.data_dir, device=device)
    if dataset.note:
        print(f"fftui: {dataset.note}", file=sys.stderr)
    return dataset


def _headless(args: argparse.Namespace, cfg: Config) -> int:
    from engine.headless import prepare_out_dir, run_headless

    if cfg.iters is None and cfg.epochs == 0:
        raise UsageError("fftui run: --epochs 0 (until stopped) is for the live app; a headless run "
                         "needs --iters or --epochs of at least 1")
    if args.preset:
        import time

        out = prepare_out_dir(args.out or f"fftui-runs/{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}")
        dataset = _load(cfg, args.quiet)
        tune_for_training(dataset.images.device.type, interactive=False)
        from .experiments import run_preset

        run_preset(args.preset, cfg, dataset, out, quiet=args.quiet, per_sample=not args.summary_only)
        return 0
    out = prepare_out_dir(args.out) if args.out else None
    dataset = _load(cfg, args.quiet)
    tune_for_training(dataset.images.device.type, interactive=False)
    print(f"fftui: {cfg.mode} mode, {cfg.loss} loss, {cfg.optimizer} lr {cfg.lr:g}, N {cfg.batch_size}, "
          f"n {cfg.width}, {dataset.description}, {dataset.images.device}", file=sys.stderr)
    summary = run_headless(cfg, dataset, out, per_sample=not args.summary_only, progress=not args.quiet,
                           graphs=args.cuda_graphs, compile=args.compile)
    print(format_summary(summary, out))
    if summary["error"]:
        print(f"fftui: stopped: {summary['error']}", file=sys.stderr)
        return 1
    return 130 if summary["interrupted"] else 0


def format_summary(summary: dict, out) -> str:
    lines = [f"{summary['iterations']} of {summary['planned']} iterations in {summary['seconds']:.1f} s "
             f"({summary['batches_per_second']:.1f} batches/s); final loss {summary['final_loss']:.6g}"
             + ("; interrupted" if summary["interrupted"] else "")]
    for name, g in summary["groups"].items():
        label = {"pos": "positives", "neg": "negatives", "all": "batch"}.get(name, name)
        means = "".join(m.label.format(g[m.name]) for m in SUMMARY_LINE)  # labels from engine/metrics.py
        lines.append(f"  {label:9s} mean over batches: {means}" + _rounding_note(g))
    if out is not None:
        lines.append(f"  wrote {out}/config.json and {out}/metrics.jsonl")
    return "\n".join(lines)


def _rounding_note(group: dict) -> str:
    """Say what share of the valid samples changed within rounding, when any did."""
    unresolved, valid = group.get("unresolved", 0.0), group.get("valid", 0.0)
    if not unresolved or not valid:
        return ""
    return (f"; {100 * unresolved / valid:.1f} % of valid samples changed within rounding "
            "(their outcome is not a measurement; try --dtype float64)")


def _app(cfg: Config, preset: str | None) -> int:
    dataset = _load(cfg, False)
    from fftui.app import FFApp

    tune_for_training(dataset.images.device.type, interactive=True)
    FFApp(config=cfg, dataset=dataset, preset=preset).run()
    # The app has stopped the engine and restored the terminal; skip the interpreter's slow
    # teardown of torch so that quitting returns to the shell at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    from engine.data import DataError
    from engine.headless import OutputError

    try:
        args = parse(argv)
        cfg = config_from_args(args)
        if args.headless:
            return _headless(args, cfg)
        if args.epochs is None and args.iters is None and not args.preset:
            cfg = cfg.replace(epochs=0)  # the live app trains until it is stopped
        return _app(cfg, args.preset)
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (DataError, OutputError) as exc:
        print(f"fftui: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fftui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (`fftui ... | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
