"""`fftui runs diff RUN1 RUN2` and `fftui runs export RUN --csv DIR | --tensorboard DIR`.

diff: the configurations' differences (config.json) and a table of summary statistics side by side,
per group, computed from the runs' per-batch summaries (`summary_stats`). export: the figure series
(engine/metrics.py FIGURE_METRICS, as the presets' CSV writes them, engine/presets.py) as CSV files,
or every numeric series and the LHS/RHS histograms of the kept batches as TensorBoard event files
(`fftui.tensorboard_export`, the optional extra ``fftui[tensorboard]``).

RUN is a run's name in the store, a unique prefix of one, or a folder path (it holds a "/"). Bad
input is one line on stderr and exit status 2, nothing written."""
from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .runs import GROUP_ORDER

if TYPE_CHECKING:  # numpy and pyarrow load when a command runs, not when the command line is parsed
    import numpy as np

    from engine.store import RunReader
    from engine.store.reader import Summary

STATS = (
    ("sparser", "sparser ratio"),
    ("above_half", "batches sparser > 50 %"),
    ("error_theorem", "|theorem − sparser|"),
    ("error_general", "|general − sparser|"),
    ("agree_theorem", "agreement, theorem"),
)
"""The statistics of `summary_stats`, with their labels in the diff's table."""


def locate(spec: str) -> Path:
    """The folder of a run: a path when spec holds a path separator (or names an existing folder
    with a leading "."), else the store's run of that name or unique prefix; GROUP/seed-SEED that is
    no existing folder names a seed's run in the store. StoreError (one line)."""
    from engine.store.catalog import resolve

    if os.sep in spec or "/" in spec or spec.startswith("."):
        if not Path(spec).exists() and spec.count("/") == 1 and "/seed-" in spec:
            return resolve(spec)  # a seed's run in the store: GROUP/seed-SEED
        return Path(spec)
    return resolve(spec)


def _nanmean(values: np.ndarray) -> float:
    import numpy as np

    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan


def summary_stats(summary: Summary) -> dict[str, dict[str, float]]:
    """Per group, over the batches of a run's summary (ratios over valid samples; a batch without a
    valid sample has NaN ratios and is left out of every statistic):
    sparser: the mean of the sparser ratio; above_half: the fraction of batches whose sparser ratio
    is above 0.5; error_theorem / error_general: the mean of |predicted ratio - sparser ratio| for
    the theorem and the generalised predictor; agree_theorem: the mean per-sample agreement of the
    theorem with the outcome. NaN where no batch has a finite value."""
    import numpy as np

    out: dict[str, dict[str, float]] = {}
    for group in summary.groups:
        sparser = np.asarray(summary.group_column("sparser", group), dtype=float)
        theorem = np.asarray(summary.group_column("theorem", group), dtype=float)
        general = np.asarray(summary.group_column("general", group), dtype=float)
        finite = sparser[np.isfinite(sparser)]
        out[group] = {
            "sparser": _nanmean(sparser),
            "above_half": float((finite > 0.5).mean()) if finite.size else math.nan,
            "error_theorem": _nanmean(np.abs(theorem - sparser)),
            "error_general": _nanmean(np.abs(general - sparser)),
            "agree_theorem": _nanmean(np.asarray(summary.group_column("agree_theorem", group), dtype=float)),
        }
    return out


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


DIFF_IGNORED = ("started", "platform", "python", "torch")  # when and where, not what was run


def config_differences(a: RunReader, b: RunReader) -> list[tuple[str, str, str]]:
    """(key, value in a, value in b) for every entry of config.json that differs (nested keys
    joined with "."; "–" where a run lacks the key), except when and where the run was made."""
    fa = {k: v for k, v in _flat(a.config).items() if k.split(".")[0] not in DIFF_IGNORED}
    fb = {k: v for k, v in _flat(b.config).items() if k.split(".")[0] not in DIFF_IGNORED}
    rows = []
    for key in [*fa, *(k for k in fb if k not in fa)]:
        if fa.get(key, "–") != fb.get(key, "–"):
            rows.append((key, _shown(fa.get(key, "–")), _shown(fb.get(key, "–"))))
    return rows


def _shown(value: Any) -> str:
    return "none" if value is None else str(value)


def _number(value: float, percent: bool = False) -> str:
    if not math.isfinite(value):
        return "–"
    return f"{100 * value:.1f} %" if percent else f"{value:.4f}"


def diff_tables(a: RunReader, b: RunReader) -> list[Any]:
    """The rich renderables `fftui runs diff` prints: the configuration differences (or a line
    saying there are none) and the statistics side by side."""
    from rich import box
    from rich.table import Table

    from .recording import short_names

    out: list[Any] = []
    names = short_names([a.name, b.name])
    if names[0] == names[1]:  # two folders of one name (--out in two places, or one run twice)
        names = ["A", "B"]
        out.append(f"A: {a.folder}\nB: {b.folder}")
    elif names != [a.name, b.name]:
        out.append(f"{names[0]}: {a.name}\n{names[1]}: {b.name}")
    diffs = config_differences(a, b)
    if diffs:
        table = Table(title="configuration", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for header in ("parameter", *names):
            table.add_column(header)
        for row in diffs:
            table.add_row(*row)
        out.append(table)
    else:
        out.append("configuration: the same")
    sa, sb = summary_stats(a.summary), summary_stats(b.summary)
    groups = sorted({*sa, *sb}, key=lambda g: GROUP_ORDER.index(g) if g in GROUP_ORDER else len(GROUP_ORDER))
    table = Table(title="summary statistics over every batch", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False, caption="ratios over valid samples; a batch without one is left out",
                  caption_justify="left")
    table.add_column("statistic", no_wrap=True)
    table.add_column(names[0], justify="right")
    table.add_column(names[1], justify="right")
    table.add_row("batches", f"{len(a.summary):,}", f"{len(b.summary):,}")
    table.add_row("status", a.status, b.status)
    for group in groups:
        for key, label in STATS:
            cells = [_number(s[group][key], percent=key == "above_half") if group in s else "–" for s in (sa, sb)]
            table.add_row(f"{group} {label}", *cells)
    out.append(table)
    return out


# -- export ---------------------------------------------------------------------------------------
def no_batch(run: RunReader) -> str:
    """The one line by which an export refuses a run that holds no batch (a preset that trains
    nothing, fig1a and fig1b, keeps its results as events and its CSV beside them)."""
    return f"{run.name} holds no batch to export (its folder: {run.folder})"


def figure_series(run: RunReader) -> tuple[list[str], list[np.ndarray]]:
    """The run's figure series as the presets' CSV has them (engine/presets.py figure_columns for
    its configuration): the column names, "iteration" first, and one array per column."""
    import numpy as np

    from engine.presets import figure_columns, figure_metrics
    from engine.store import StoreError

    from .recording import recorded_config

    summary = run.summary
    if not len(summary):
        raise StoreError(no_batch(run))
    cfg = recorded_config(run)
    modes = set(summary.column("mode").tolist())
    if len(modes) == 1:
        cfg = cfg.replace(mode=modes.pop())
    names = figure_columns(cfg)
    columns = [np.asarray(summary.column("iteration"))]
    for group in (g for g in ("pos", "neg", "all") if g in summary.groups):
        columns += [np.asarray(summary.group_column(m.name, group), dtype=float) for m in figure_metrics(cfg)]
    if len(columns) != len(names):
        raise StoreError(f"{run.name}: its groups ({', '.join(summary.groups)}) do not match its mode {cfg.mode}")
    return names, columns


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else ""
    return value


def csv_text(names: list[str], columns: list[np.ndarray]) -> str:
    """A CSV as the presets write it: a header, then one row a batch; floats with 6 significant
    digits, NaN as an empty cell."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(names)
    for row in zip(*(c.tolist() for c in columns), strict=True):
        writer.writerow([_cell(v) for v in row])
    return text.getvalue()


def export_csv(run: RunReader, folder: Path) -> list[Path]:
    """Write figure.csv (every figure series, the presets' columns) and one CSV per series
    (SERIES.csv: iteration, SERIES) into folder (created if missing). StoreError, nothing written,
    when a file of those names is already there or the folder cannot be made; a write that fails
    half-way (a full disk) removes the files it began."""
    from engine.store import StoreError

    names, columns = figure_series(run)
    files = {"figure.csv": csv_text(names, columns)}
    for name, column in zip(names[1:], columns[1:], strict=True):
        files[f"{name}.csv"] = csv_text(["iteration", name], [columns[0], column])
    if folder.exists() and not folder.is_dir():
        raise StoreError(f"{folder} is not a folder")
    taken = [name for name in files if (folder / name).exists()]
    if taken:
        raise StoreError(f"{folder} already holds {taken[0]}; export into an empty or new folder")
    written: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            written.append(folder / name)
            written[-1].write_text(text, encoding="utf-8")
    except OSError as exc:
        for path in written:  # a full disk half-way: no cut file left behind
            path.unlink(missing_ok=True)
        raise StoreError(f"cannot write into {folder}: {exc.strerror or exc}") from None
    return [folder / name for name in files]


def add_open_parser(sub: Any) -> None:
    """The `open` command on the CLI's subparsers."""
    op = sub.add_parser("open", help="replay a recorded run in the app, with a scrubber",
                        description="Open a recorded run in the app's panes: left/right step one iteration, "
                        "page up/down jump, home/end; the LHS/RHS histograms show the batch at the scrubber. "
                        "RUN is a run's name in the store (or a unique prefix, see fftui runs) or a folder path; "
                        "a sweep's folder shows each setting's mean over its seeds, with a band of ± one standard "
                        "deviation.")
    op.add_argument("run", metavar="RUN")
    op.add_argument("--compare", nargs="+", default=[], metavar="RUN",
                    help="runs drawn beside it in the Sparsening and Sparsity panes, named by run name")


def add_tool_parsers(actions: Any) -> None:
    """`runs diff` and `runs export` on the `runs` command's subparsers."""
    diff = actions.add_parser("diff", help="compare two runs: configuration and statistics",
                              description="The configuration differences of two runs and their summary "
                              "statistics side by side, per group.")
    diff.add_argument("runs", nargs=2, metavar="RUN")
    export = actions.add_parser("export", help="write a run's series as CSV or TensorBoard files",
                                description="--csv DIR: figure.csv (the presets' columns) and one CSV per "
                                "figure series. --tensorboard DIR: every numeric series as scalars per iteration "
                                "and the LHS/RHS histograms of the kept batches (needs fftui[tensorboard]).")
    export.add_argument("run", metavar="RUN")
    where = export.add_mutually_exclusive_group(required=True)
    where.add_argument("--csv", metavar="DIR", default=None)
    where.add_argument("--tensorboard", metavar="DIR", default=None)


def tool_command(args: argparse.Namespace) -> int:
    """Run `fftui runs diff` or `fftui runs export`; the exit status (2: bad input, one line)."""
    from engine.store import RunReader, StoreError

    warnings: list[str] = []
    try:
        if args.runs_action == "diff":
            from rich.console import Console

            a, b = (RunReader(locate(spec), on_warning=warnings.append) for spec in args.runs)
            tables = diff_tables(a, b)
            console = Console()
            for table in tables:
                console.print(table)
        else:
            run = RunReader(locate(args.run), on_warning=warnings.append)
            if args.csv is not None:
                written = export_csv(run, Path(args.csv))
                print(f"wrote {len(written)} CSV files into {args.csv}")
            else:
                from .tensorboard_export import export_tensorboard

                count = export_tensorboard(run, Path(args.tensorboard))
                print(f"wrote {count:,} scalars and histograms into {args.tensorboard}")
    except StoreError as exc:
        print(f"fftui runs: {exc}", file=sys.stderr)
        return 2
    finally:
        for line in warnings:
            print(f"fftui runs: warning: {line}", file=sys.stderr)
    return 0
