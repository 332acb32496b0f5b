"""`fftui open SWEEPDIR`: a sweep's trials in the replay app (fftui/replay.py), grouped by setting:
each setting's mean over its seeds per iteration is drawn as a run, and the band of ± one standard
deviation of its sparser ratio as two lines beside it (fftui/widgets/compare.py draws the runs
compared; a series that is NaN throughout is not drawn, so the band lines carry the sparser ratio
only). The histograms show the first seed of the first setting. Where the trials are stacks, every
layer's means are there too, and `>`/`<` choose the layer every curve shows (fftui/layering.py).

A setting's mean covers the iterations every one of its trials recorded (a diverged trial shortens
it); trials without a record are left out."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.metrics import BATCH_METRICS, GROUP_METRICS

from .definition import SweepError, label
from .state import SweepState

MAX_SETTINGS = 6  # settings drawn at most (each is three runs in the legend)


class SettingRun:
    """A setting of a sweep as a recorded run for the replay app: its summary holds, per iteration,
    the mean over the setting's trials of every numeric metric (`kind` "mean"), or the mean ± one
    standard deviation of the sparser ratio alone (`kind` "+sd" / "−sd", every other metric NaN).
    Everything else (configuration, per-sample arrays, run.json) is its first trial's."""

    def __init__(self, name: str, trials: list[Any], kind: str = "mean") -> None:
        from engine.store.reader import Summary

        self._first = trials[0]
        self.name = name
        self.events: list = []
        self.warnings: list[str] = []
        self.folder = Path(f"<{name}>")  # no file: the app reads this summary, never the trials' files
        summaries = [t.summary for t in trials]
        rows = min(len(s) for s in summaries)
        groups = summaries[0].groups
        columns: dict[str, np.ndarray] = {}
        for m in (*BATCH_METRICS, *GROUP_METRICS):
            first = summaries[0].columns[m.name][:rows]
            if m.dtype == "str" or m.name in ("iteration", "epoch"):
                columns[m.name] = first
                continue
            stack = np.stack([np.asarray(s.columns[m.name][:rows], dtype=float) for s in summaries])
            columns[m.name] = _nanmean(stack) if kind == "mean" or m.name == "sparser" else np.full(first.shape, np.nan)
        if kind != "mean":
            stack = np.stack([np.asarray(s.columns["sparser"][:rows], dtype=float) for s in summaries])
            sd = _nanstd(stack)
            columns["sparser"] = columns["sparser"] + (sd if kind == "+sd" else -sd)
        columns.update(_layer_means(summaries, rows, kind))
        self.summary = Summary(columns, groups)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._first, name)


def _layer_means(summaries: list[Any], rows: int, kind: str) -> dict[str, np.ndarray]:
    """A stack's per-layer columns (engine/store/layers.py) over the first ``rows`` rows, as
    SettingRun's own: the mean over the trials, or the mean ± one standard deviation of the sparser
    ratio (every other NaN). Nothing where the trials do not all hold the same layers (the setting
    then shows its first layer only)."""
    from engine.store.layers import PREFIX

    first = summaries[0].columns
    names = [k for k in first if k.startswith(PREFIX)]
    if not names or any(s.columns.get(k) is None or s.columns[k].shape[1:] != first[k].shape[1:]
                        for s in summaries for k in names):
        return {}
    out = {}
    for name in names:
        stack = np.stack([np.asarray(s.columns[name][:rows], dtype=float) for s in summaries])
        sparser = name == PREFIX + "sparser"
        if kind == "mean":
            out[name] = _nanmean(stack)
        elif sparser:
            sd = _nanstd(stack)
            out[name] = _nanmean(stack) + (sd if kind == "+sd" else -sd)
        else:
            out[name] = np.full(stack.shape[1:], np.nan)
    return out


def _nanmean(stack: np.ndarray) -> np.ndarray:
    finite = np.isfinite(stack)
    count = finite.sum(axis=0)
    total = np.where(finite, stack, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _nanstd(stack: np.ndarray) -> np.ndarray:
    """The sample standard deviation (n - 1) over the first axis, of the finite values; 0 with one."""
    mean = _nanmean(stack)
    finite = np.isfinite(stack)
    count = finite.sum(axis=0)
    square = np.where(finite, (stack - mean) ** 2, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 1, np.sqrt(square / np.maximum(count - 1, 1)), 0.0)


def setting_runs(folder: str | Path) -> tuple[Any, list[Any], str]:
    """The main run (the first setting's mean) and the others (its band, then each other setting's
    mean and band) for the replay app, and a note on what was left out. SweepError (one line) when
    the folder is not a sweep or no trial has a record."""
    from engine.store import RunReader, StoreError

    state = SweepState.open(folder)
    by_setting: dict[int, list[Any]] = {}
    for trial in state.trials:
        where = state.trial_folder(trial)
        if not (where / "run.json").exists():
            continue
        try:
            reader = RunReader(where)
            if len(reader.summary):
                by_setting.setdefault(trial["setting"], []).append(reader)
        except StoreError:
            continue
    if not by_setting:
        raise SweepError(f"{state.folder} holds no trial with a record yet ({state.status_line()})")
    settings = sorted(by_setting)
    note = ""
    if len(settings) > MAX_SETTINGS:
        note = f"the first {MAX_SETTINGS} of {len(settings)} settings"
        settings = settings[:MAX_SETTINGS]
    runs: list[Any] = []
    values = {t["setting"]: t["values"] for t in state.trials}
    for setting in settings:
        trials = by_setting[setting]
        name = f"{label(values[setting])} ({len(trials)} seed{'s' * (len(trials) != 1)})"
        runs.append(SettingRun(name, trials))
        if len(trials) > 1:
            runs += [SettingRun(f"{label(values[setting])} +sd", trials, "+sd"),
                     SettingRun(f"{label(values[setting])} −sd", trials, "−sd")]
    return runs[0], runs[1:], note


def is_sweep(folder: str) -> bool:
    """Whether `folder` holds a sweep's sweep.json."""
    from .state import SWEEP_JSON

    return (Path(folder).expanduser() / SWEEP_JSON).is_file()
