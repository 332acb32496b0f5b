"""The `fftui` command: the live app by default, `fftui run --headless` for runs without a UI."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from engine.config import (DATA_SOURCES, DEVICES, DTYPES, INITS, LOSSES, MODES, OPTIMIZERS, Config,
                           ConfigError)

from . import __version__


class UsageError(Exception):
    """A bad command line; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _choices(values: Sequence[str]) -> str:
    return "|".join(values)


def build_parser() -> argparse.ArgumentParser:
    d = Config()
    top = _Parser(prog="fftui", description="Watch Forward-Forward training make ReLU activations "
                  "sparse, batch by batch, beside the theory that predicts it. With no command, "
                  "opens the live app on the default configuration.")
    top.add_argument("--version", action="version", version=f"fftui {__version__}")
    sub = top.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", help="train one layer: the live app, or --headless",
                         description="Train one FF layer h = ReLU(Wx). Opens the live app unless "
                         "--headless is given. Defaults are the report's: ff mode, N = 128, n = 2000, "
                         "plain SGD with lr 1e-3.")
    run.add_argument("--headless", action="store_true",
                     help="no UI: print a progress bar and a summary; with --out, write files")
    g = run.add_argument_group("training")
    g.add_argument("--mode", choices=MODES, default=d.mode, metavar=_choices(MODES),
                   help="descent: decrease the summed goodness of plain images (Theorem 1); "
                   "ff: positives and negatives, L = G(H-) - G(H+) (Theorem 2). Default %(default)s")
    g.add_argument("--loss", choices=LOSSES, default=d.loss, metavar=_choices(LOSSES),
                   help="linear: the report's loss; logistic: Hinton's softplus loss around --theta. "
                   "Default %(default)s")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, metavar=_choices(OPTIMIZERS),
                   help="sgd (with --momentum) or adam. Default %(default)s")
    g.add_argument("--lr", default=d.lr, metavar="FLOAT", help="learning rate (default %(default)g)")
    g.add_argument("--momentum", default=d.momentum, metavar="FLOAT",
                   help="SGD momentum in [0, 1) (default %(default)g)")
    g.add_argument("--weight-decay", default=d.weight_decay, metavar="FLOAT",
                   help="L2 weight decay added to the gradient (default %(default)g)")
    g.add_argument("--beta1", default=d.beta1, metavar="FLOAT", help="Adam beta1 (default %(default)g)")
    g.add_argument("--beta2", default=d.beta2, metavar="FLOAT", help="Adam beta2 (default %(default)g)")
    g.add_argument("--theta", default=d.theta, metavar="FLOAT",
                   help="goodness threshold; only the logistic loss depends on it (default %(default)g)")
    g.add_argument("--batch-size", default=d.batch_size, metavar="N",
                   help="N images a batch (per side in ff mode) (default %(default)s)")
    g.add_argument("--width", default=d.width, metavar="n", help="units in the layer (default %(default)s)")
    g.add_argument("--epochs", default=d.epochs, metavar="E", help="passes over the data (default %(default)s)")
    g.add_argument("--iters", default=None, metavar="I",
                   help="number of batches; overrides --epochs (cycles through the data as needed)")
    g.add_argument("--seed", default=d.seed, metavar="S",
                   help="seed of the weights, batch order and wrong labels (default %(default)s)")
    g.add_argument("--init", choices=INITS, default=d.init, metavar=_choices(INITS),
                   help="report: W ~ N(0, 2/n); kaiming: N(0, 2/m) (fan-in). Default %(default)s")
    g.add_argument("--standardize", action="store_true",
                   help="standardise each pixel over the data set before scaling inputs to unit length")
    g.add_argument("--dtype", choices=DTYPES, default=d.dtype, metavar=_choices(DTYPES),
                   help="floating point type of the layer and metrics (default %(default)s)")
    s = run.add_argument_group("data and device")
    s.add_argument("--data", choices=DATA_SOURCES, default=d.data, metavar=_choices(DATA_SOURCES),
                   help="auto: MNIST if present or downloadable, else the shipped 5,000-digit sample; "
                   "mnist: MNIST or an error; sample: the shipped sample. Default %(default)s")
    s.add_argument("--data-dir", default=None, metavar="DIR",
                   help="a folder holding the MNIST IDX files (train-images-idx3-ubyte[.gz], "
                   "train-labels-idx1-ubyte[.gz]); never downloaded into")
    s.add_argument("--device", choices=DEVICES, default=d.device, metavar=_choices(DEVICES),
                   help="auto: CUDA when present, else CPU. Default %(default)s")
    o = run.add_argument_group("output (headless)")
    o.add_argument("--out", default=None, metavar="DIR",
                   help="write DIR/config.json and DIR/metrics.jsonl (one record a line, flushed as it goes); "
                   "DIR must not hold a previous run")
    o.add_argument("--summary-only", action="store_true",
                   help="leave the per-sample arrays (LHS, RHS, outcomes) out of metrics.jsonl")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    return top


def config_from_args(args: argparse.Namespace) -> Config:
    fields = ("mode", "loss", "optimizer", "lr", "momentum", "weight_decay", "beta1", "beta2", "theta",
              "batch_size", "width", "epochs", "iters", "seed", "init", "standardize", "dtype", "data",
              "data_dir", "device")
    try:
        return Config().replace(**{f: getattr(args, f) for f in fields})
    except ConfigError as exc:
        raise UsageError(f"fftui run: {exc}") from None


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["run", *argv]
    return build_parser().parse_args(argv)


def _load(cfg: Config, quiet: bool):
    from engine.data import DataError, load_dataset, resolve_device

    device = resolve_device(cfg.device)
    dataset = load_dataset(cfg.data, cfg.data_dir, device=device)
    if dataset.note:
        print(f"fftui: {dataset.note}", file=sys.stderr)
    return dataset


def _headless(args: argparse.Namespace, cfg: Config) -> int:
    from engine.headless import OutputError, prepare_out_dir, run_headless

    out = prepare_out_dir(args.out) if args.out else None
    dataset = _load(cfg, args.quiet)
    print(f"fftui: {cfg.mode} mode, {cfg.loss} loss, {cfg.optimizer} lr {cfg.lr:g}, N {cfg.batch_size}, "
          f"n {cfg.width}, {dataset.description}, {dataset.images.device}", file=sys.stderr)
    summary = run_headless(cfg, dataset, out, per_sample=not args.summary_only, progress=not args.quiet)
    print(format_summary(summary, out))
    return 130 if summary["interrupted"] else 0


def format_summary(summary: dict, out) -> str:
    lines = [f"{summary['iterations']} of {summary['planned']} iterations in {summary['seconds']:.1f} s "
             f"({summary['batches_per_second']:.1f} batches/s); final loss {summary['final_loss']:.6g}"
             + ("; interrupted" if summary["interrupted"] else "")]
    for name, g in summary["groups"].items():
        label = {"pos": "positives", "neg": "negatives", "all": "batch"}.get(name, name)
        lines.append(f"  {label:9s} mean over batches: sparser {g['sparser']:.3f}, predicted by the "
                     f"report's theorem {g['theorem']:.3f} (agreement {g['agree_theorem']:.3f}), by the "
                     f"generalised predictor {g['general']:.3f} (agreement {g['agree_general']:.3f}); "
                     f"Hoyer sparsity {g['sparsity']:.3f}, silenced {g['silenced']:.3f}")
    if out is not None:
        lines.append(f"  wrote {out}/config.json and {out}/metrics.jsonl")
    return "\n".join(lines)


def _app(cfg: Config) -> int:
    dataset = _load(cfg, False)
    from fftui.app import FFApp

    FFApp(config=cfg, dataset=dataset).run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from engine.data import DataError
    from engine.headless import OutputError

    try:
        args = parse(argv)
        cfg = config_from_args(args)
        if args.headless:
            return _headless(args, cfg)
        return _app(cfg)
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (DataError, OutputError) as exc:
        print(f"fftui: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fftui: interrupted", file=sys.stderr)
        return 130
