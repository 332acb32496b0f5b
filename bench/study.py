"""What changes the outcome of the report's Figures 2 and 3: the presets rerun with one parameter
changed at a time, each summarised in one table row.

    python bench/study.py [--device cpu|cuda] [--iters N] [--data auto|mnist|sample] [--json FILE]

Every row is a full headless run (per-sample arrays not kept). Ratios are over all N samples of a
batch, as in the report; "err" is the mean over iterations of |predicted ratio - actual ratio|."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.data import load_dataset, resolve_device  # noqa: E402
from engine.headless import run_headless  # noqa: E402
from engine.presets import SeriesSummary, figure_columns, figure_row, preset_config  # noqa: E402

VARIANTS = (
    ("fig2", {}),
    ("fig2", {"lr": 1e-2}),
    ("fig2", {"lr": 1e-4}),
    ("fig2", {"normalize": "per-pixel"}),
    ("fig2", {"loss": "logistic"}),
    ("fig3", {}),
    ("fig3", {"lr": 1e-2}),
    ("fig3", {"lr": 1e-4}),
    ("fig3", {"normalize": "per-pixel"}),
    ("fig3", {"loss": "logistic"}),
    ("fig3", {"loss": "logistic", "theta": 1.0}),
    ("fig3", {"optimizer": "adam", "lr": 1e-4}),
    ("fig3", {"momentum": 0.9}),
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", default="auto")
    p.add_argument("--iters", type=int, default=None, help="shorten every run to this many iterations")
    p.add_argument("--json", default=None)
    p.add_argument("--skip", type=int, default=0, help="leave out the first SKIP variants")
    args = p.parse_args()
    device = resolve_device(args.device)
    ds = load_dataset(args.data, device=device)
    print(f"data: {ds.description}; device: {device}")
    rows = []
    for name, change in VARIANTS[args.skip:]:
        over = dict(change, device=args.device)
        if args.iters:
            over["iters"] = args.iters
        cfg = preset_config(name, **over)
        series = SeriesSummary(figure_columns(cfg))
        t0 = time.perf_counter()
        outcome = run_headless(cfg, ds,
                               on_record=lambda r, c=cfg, s=series: s.rows.append(figure_row(r, c)))
        diverged = f" [stopped: {outcome['error']}]" if outcome["error"] else ""
        if not series.rows:
            print(f"{name} {change}: no iteration completed{diverged}")
            continue
        st = series.stats()
        theorem = "theorem1" if cfg.mode == "descent" else "theorem2"
        groups = [""] if cfg.mode == "descent" else ["pos_", "neg_"]
        for g in groups:
            row = {"preset": name, "change": change or "report", "group": g.rstrip("_") or "batch",
                   "iterations": len(series.rows), "seconds": time.perf_counter() - t0,
                   "sparser_mean": st[f"{g}sparser"]["mean"],
                   "sparser_first_tenth": st[f"{g}sparser"]["first_tenth"],
                   "sparser_last_tenth": st[f"{g}sparser"]["last_tenth"],
                   "iterations_above_half": st[f"{g}sparser"]["above_half"],
                   "stopped": diverged.strip(),
                   "theorem_err": series.prediction_error(f"{g}sparser", f"{g}{theorem}")["mean_abs"]}
            if f"{g}general" in series.columns:
                row["general_err"] = series.prediction_error(f"{g}sparser", f"{g}general")["mean_abs"]
            rows.append(row)
            ch = ", ".join(f"{k}={v}" for k, v in change.items()) or "report's parameters"
            gen = f"{row['general_err']:.4f}" if "general_err" in row else "  =   "
            print(f"{name} {ch:30s} {row['group']:5s} sparser mean {row['sparser_mean']:.3f} "
                  f"({row['sparser_first_tenth']:.3f} -> {row['sparser_last_tenth']:.3f}), >50% in "
                  f"{row['iterations_above_half']:.3f} of iterations; err theorem {row['theorem_err']:.4f} "
                  f"general {gen}{diverged}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
