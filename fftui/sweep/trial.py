"""One trial of a sweep, as a Ray worker runs it: a headless run recorded into the sweep's
trials/NAME/ folder (a run of the store's format: `fftui runs --store SWEEP/trials`, `fftui open` read
it), then its statistics computed from its own records. Imports torch, never Ray or rich."""
from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

STAT_KEYS = ("first_tenth", "last_tenth", "sparser", "above_half", "error_theorem", "error_general",
             "agree_theorem", "agree_general")
"""The statistics of a trial, per group: the sparser ratio over the first and the last tenth of its
batches and over all of them, the fraction of batches above 50 %, the mean |theorem - sparser| and
|generalised - sparser|, the mean per-sample agreement of the theorem and of the generalised predictor."""

_DATA: dict[tuple, Any] = {}  # the data sets this worker process has loaded, reused by its next trials


def trial_stats(summary: Any) -> dict[str, dict[str, float]]:
    """Per group, STAT_KEYS over the batches of a run's summary (engine.store.Summary): those of
    `fftui runs diff` (fftui.runs_tools.summary_stats, NaN ratios of batches without a valid
    sample left out) and the mean sparser ratio over the first and the last tenth of the batches
    (at least one batch each; NaN where no batch there has a finite ratio)."""
    from fftui.runs_tools import summary_stats

    out = summary_stats(summary)
    n = len(summary)
    tenth = max(1, n // 10)
    for group, row in out.items():
        sparser = np.asarray(summary.group_column("sparser", group), dtype=float)
        agree = np.asarray(summary.group_column("agree_general", group), dtype=float)
        row["first_tenth"] = _nanmean(sparser[:tenth])
        row["last_tenth"] = _nanmean(sparser[-tenth:])
        row["agree_general"] = _nanmean(agree)
    return out


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan


def _dataset(cfg: Any) -> Any:
    from engine.data import load_dataset, resolve_device

    key = (cfg.data, cfg.data_dir, str(resolve_device(cfg.device)))
    if key not in _DATA:
        _DATA.clear()  # one data set at a time in a worker
        _DATA[key] = load_dataset(cfg.data, cfg.data_dir, device=key[2])
    return _DATA[key]


def run_trial(trial: dict[str, Any], sweep_folder: str, *, threads: int = 1, keep_samples: str = "auto",
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one trial ({"name", "config", ...} as sweep.json holds it) into
    `sweep_folder`/trials/NAME (a folder left by an earlier attempt that did not finish is replaced),
    with torch using `threads` intra-op threads (this process's setting: call it in a worker). Returns
    {"status": finished|diverged|failed|interrupted, "error": one line or None, "iterations",
    "seconds", "stats": trial_stats of its records}. Exceptions (data that do not load, a folder
    that cannot be written) propagate: the caller records them as the trial's failure."""
    import torch

    from engine.config import Config
    from engine.headless import prepare_out_dir, release_claim, run_description, run_headless
    from engine.store import RunReader, RunWriter

    torch.set_num_threads(max(1, int(threads)))
    cfg = Config().replace(**trial["config"])
    folder = Path(sweep_folder) / "trials" / trial["name"]
    if folder.exists():  # an attempt that was interrupted or failed: this one starts afresh
        shutil.rmtree(folder)
    started = time.perf_counter()
    prepare_out_dir(folder)
    writer = None
    try:
        dataset = _dataset(cfg)
        description = run_description(cfg, dataset, {"preset": None, "sweep": str(sweep_folder),
                                                     "trial": trial["name"], **(extra or {})})
        writer = RunWriter(folder, description, keep_samples=keep_samples).start()
    finally:
        if writer is None:
            release_claim(folder)
    summary = None
    try:
        summary = run_headless(cfg, dataset, writer)
    finally:
        if summary is None:
            writer.close("failed", "the trial stopped on an unexpected error")
    stats = trial_stats(RunReader(folder).summary) if summary["iterations"] else {}
    return {"status": summary["status"], "error": summary["error"], "iterations": summary["iterations"],
            "seconds": time.perf_counter() - started, "stats": stats}
