"""`fftui runs`: the recorded runs as a table (rich), and `rm`, `prune`, `path` on them.

Run names may be given as a unique prefix. Bad input (no such run, a prefix of several, a run being
recorded, a folder that is not a run) is one line on stderr and exit status 2, nothing changed."""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

GROUP_ORDER = ("pos", "neg", "all")


def add_runs_parser(sub: Any) -> None:
    """The `runs` command and its actions on the CLI's subparsers."""
    runs = sub.add_parser("runs", help="list, remove and locate recorded runs",
                          description="The runs recorded in the store (newest first), with their status, size "
                          "and final ratios. RUN is a run's name or a unique prefix of it. The store is "
                          "$FFTUI_DATA_DIR/runs when that is set, else the user data folder's fftui/runs.")
    runs.add_argument("--store", default=None, metavar="DIR", help="the runs in DIR instead of the store "
                      "(a sweep's trials: --store SWEEP/trials)")
    actions = runs.add_subparsers(dest="runs_action", parser_class=type(runs))
    actions.add_parser("list", help="the table of runs (the default)")
    rm = actions.add_parser("rm", help="delete runs", description="Delete the runs named; nothing is deleted "
                            "when one name matches no run or several.")
    rm.add_argument("runs", nargs="+", metavar="RUN")
    prune = actions.add_parser("prune", help="delete old runs",
                               description="Delete runs older than DAYS, or all but the N newest. Runs being "
                               "recorded stay.")
    which = prune.add_mutually_exclusive_group(required=True)
    which.add_argument("--older-than", type=_days, metavar="DAYS", help="runs created more than DAYS days ago")
    which.add_argument("--keep", type=_count, metavar="N", help="keep the N newest runs")
    path = actions.add_parser("path", help="print a run's folder")
    path.add_argument("run", metavar="RUN")
    from .runs_tools import add_tool_parsers

    add_tool_parsers(actions)


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"DAYS must be a number of days, 0 or more, not {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"N must be a whole number, 0 or more, not {text!r}")
    return value


def human_size(size: float) -> str:
    """Bytes as B, kB, MB or GB (powers of 1000), three significant figures at most."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.3g} {unit}"
        size /= 1000
    return f"{size:.3g} TB"


def _ratio(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"


def _per_group(final: dict, key: str) -> str:
    """The groups' values as "0.62/0.55" (positives/negatives) or "0.62" (one group, descent)."""
    names = sorted(final, key=lambda g: GROUP_ORDER.index(g) if g in GROUP_ORDER else len(GROUP_ORDER))
    return "/".join(_ratio(final[g].get(key)) for g in names)


def entry_row(entry: Any) -> list[str]:
    """One row of the table: name, date, preset, mode, loss, optimiser, iterations, status, size,
    final sparser ratio and agreement per group (means over the run's last batches, run.json)."""
    reader = entry.reader
    date = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.created))
    if reader is None:
        return [entry.name, date, "", "", "", "", "", entry.status, human_size(entry.size), "", ""]
    cfg = reader.config.get("config", {})
    info = reader.info
    final = info.get("final") or {}
    loss = (info.get("constants") or {}).get("loss_name") or cfg.get("loss", "")
    return [entry.name, date, str(reader.config.get("preset") or ""), str(cfg.get("mode", "")), str(loss),
            str(cfg.get("optimizer", "")), str(info.get("iteration", "")), entry.status, human_size(entry.size),
            _per_group(final, "sparser"), _per_group(final, "agree_theorem")]


HEADERS = ("run", "date", "preset", "mode", "loss", "optimiser", "iters", "status", "size", "sparser",
           "agreement")
NO_WRAP = ("run",)


DROP_ORDER = ("optimiser", "preset", "date", "loss", "mode", "size")  # left out first when the table is too wide


def list_table(entries: list, root: Any, width: int = 200) -> Any:
    """The rich Table of the runs, its caption the count and total size of the store. Columns of
    DROP_ORDER are left out, in that order, while the table would be wider than `width`."""
    from rich import box
    from rich.table import Table

    rows = [entry_row(e) for e in entries]
    widths = {h: max(len(h), *(len(r[i]) for r in rows)) + 3 for i, h in enumerate(HEADERS)}
    shown = list(HEADERS)
    for header in DROP_ORDER:
        if sum(widths[h] for h in shown) <= width:
            break
        shown.remove(header)
    total = sum(e.size for e in entries)
    hidden = [h for h in HEADERS if h not in shown]
    caption = (f"{len(entries)} run{'s' * (len(entries) != 1)}, {human_size(total)} in {root}. sparser, "
               "agreement: means over the last 100 batches, positives/negatives"
               + (f"; a wider terminal shows {', '.join(hidden)}" if hidden else ""))
    table = Table(caption=caption, caption_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in shown:
        table.add_column(header, justify="right" if header in ("iters", "size") else "left",
                         no_wrap=header in NO_WRAP)
    for row in rows:
        table.add_row(*(cell for h, cell in zip(HEADERS, row, strict=True) if h in shown))
    return table


def runs_command(args: argparse.Namespace) -> int:
    """Run `fftui runs [list|rm|prune|path]`; returns the exit status (2 for bad input, one line)."""
    from engine.store import StoreError, store_root
    from engine.store.catalog import list_runs, prune, remove, resolve
    from fftui.headless import emit

    root = Path(args.store).expanduser().absolute() if getattr(args, "store", None) else store_root()
    action = getattr(args, "runs_action", None) or "list"
    if action in ("diff", "export"):
        from .runs_tools import tool_command

        return tool_command(args)
    try:
        if action == "list":
            from rich.console import Console

            entries = list_runs(root)
            if not entries:
                emit(f"no recorded runs in {root}")
                return 0
            console = Console()
            with console.capture() as captured:  # written by emit: a full device is one line, status 1
                console.print(list_table(entries, root, console.width))
            emit(captured.get().rstrip("\n"))
        elif action == "path":
            emit(str(resolve(args.run, root)))
        elif action == "rm":
            for folder in remove(args.runs, root):
                emit(f"removed {folder.name}")
        elif action == "prune":
            gone = prune(older_than_days=args.older_than, keep=args.keep, root=root)
            for folder in gone:
                emit(f"removed {folder.name}")
            emit(f"pruned {len(gone)} run{'s' * (len(gone) != 1)}")
    except StoreError as exc:
        print(f"fftui runs: {exc}", file=sys.stderr)
        return 2
    return 0
