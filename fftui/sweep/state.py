"""A sweep's folder: sweep.json (the definition, every trial with its configuration, status, reason
and statistics) and trials/NAME/, one recorded run per trial (engine/store).

sweep.json is rewritten atomically (at most about once a second while trials end, and at the end),
so a reader sees the old file or the new one. Statuses: pending, running, finished, diverged (the
run's outcome: kept, never rerun), failed (with its reason), interrupted. `--resume` runs the trials
that are not finished or diverged."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from engine.config import Config, ConfigError

from .definition import Sweep, SweepError

SWEEP_JSON = "sweep.json"
LOCK = "sweep.lock"  # flock held by the process running the sweep
TRIALS = "trials"
KIND = "fftui-sweep"
FORMAT = 1
DONE = ("finished", "diverged")  # outcomes; every other status is run again by --resume
STATUSES = ("pending", "running", "finished", "diverged", "failed", "interrupted")


class SweepState:
    """The trials of a sweep folder and their status, kept in sweep.json. `trials`: one dict per
    trial: index, name, setting, values, seed, config (every parameter), status, error, stats
    (see fftui.sweep.trial.trial_stats), seconds, iterations."""

    def __init__(self, folder: Path, data: dict[str, Any]) -> None:
        self.folder = folder
        self.data = data
        self._written = 0.0
        self._unsaved = False  # a mark not yet in sweep.json (written by save_if_due)
        self._lock_fd: int | None = None

    # -- creating and reading ----------------------------------------------------------------------
    @staticmethod
    def check_free(folder: Path) -> None:
        """SweepError unless `folder` is new or an empty folder (where a new sweep can be made)."""
        folder = Path(folder).expanduser()
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise SweepError(f"{folder} exists and is not an empty folder; choose another --out")

    @classmethod
    def create(cls, folder: Path, sweep: Sweep) -> SweepState:
        """Make `folder` (new, or empty) a sweep folder for `sweep`; SweepError when it holds anything."""
        folder = Path(folder).expanduser()
        cls.check_free(folder)
        try:
            (folder / TRIALS).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SweepError(f"cannot create the sweep folder {folder}: {exc.strerror or exc}") from None
        data = {
            "kind": KIND, "format": FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "definition": sweep.definition, "base": sweep.base.as_dict(), "swept": list(sweep.swept),
            "seeds": list(sweep.seeds), "settings": sweep.settings,
            "trials": [{"index": t.index, "name": t.name, "setting": t.setting, "values": t.values,
                        "seed": t.seed, "config": t.config.as_dict(), "status": "pending", "error": None,
                        "stats": None, "seconds": None, "iterations": None} for t in sweep.trials],
        }
        state = cls(folder.resolve(), data)
        state.save()
        return state

    @classmethod
    def open(cls, folder: str | Path) -> SweepState:
        """The sweep in `folder`; SweepError (one line) for a folder that is not a sweep."""
        from engine.store.files import StoreError, read_json

        where = Path(folder).expanduser()
        if not where.is_dir():
            raise SweepError(f"{where} is not a folder")
        if not (where / SWEEP_JSON).exists():   # read_json's words are a run's ("not a recorded run")
            run = " (a recorded run: fftui open it)" if (where / "run.json").is_file() else ""
            raise SweepError(f"{where} is not a sweep: it has no {SWEEP_JSON}{run}")
        try:
            data = read_json(where / SWEEP_JSON, str(where))
        except StoreError as exc:
            raise SweepError(f"{where} is not a sweep: {exc}") from None
        if data.get("kind") != KIND or not isinstance(data.get("trials"), list):
            raise SweepError(f"{where} is not a sweep ({SWEEP_JSON} is not an fftui sweep's)")
        if data.get("format") != FORMAT:
            raise SweepError(f"{where} is a sweep of format {data.get('format')}; this fftui reads format {FORMAT}")
        return cls(where.resolve(), data)

    # -- the trials ------------------------------------------------------------------------------
    @property
    def trials(self) -> list[dict[str, Any]]:
        return self.data["trials"]

    @property
    def swept(self) -> list[str]:
        return list(self.data.get("swept", []))

    def trial_folder(self, trial: dict[str, Any]) -> Path:
        return self.folder / TRIALS / trial["name"]

    def config(self, trial: dict[str, Any]) -> Config:
        """The trial's Config, validated again from sweep.json; SweepError when it no longer validates."""
        try:
            return Config().replace(**trial["config"])
        except ConfigError as exc:
            raise SweepError(f"trial {trial['name']} in {self.folder / SWEEP_JSON}: {exc}") from None

    def to_run(self) -> list[dict[str, Any]]:
        """The trials not finished (pending, running, failed, interrupted), in order."""
        return [t for t in self.trials if t["status"] not in DONE]

    def counts(self) -> dict[str, int]:
        """How many trials have each status."""
        out = dict.fromkeys(STATUSES, 0)
        for t in self.trials:
            out[t["status"]] = out.get(t["status"], 0) + 1
        return out

    def mark(self, index: int, status: str, **fields: Any) -> None:
        """Set a trial's status (and error, stats, seconds, iterations); sweep.json is written when
        a second has passed since the last write (`save` writes it at once, `save_if_due` later)."""
        trial = self.trials[index]
        trial["status"] = status
        trial.update(fields)
        self._unsaved = True
        self.save_if_due()

    def save_if_due(self) -> None:
        """Write sweep.json when a mark is not in it yet and a second has passed since the last
        write: called on every mark and between the scheduler's steps, so that a mark made within
        a second of the one before still reaches the file while a long trial runs."""
        if self._unsaved and time.monotonic() - self._written >= 1.0:
            self.save()

    def lock(self) -> None:
        """Hold the sweep's lock (sweep.lock, flock) for as long as this process lives; SweepError
        when another process runs the sweep. Where flock does not exist nothing is locked."""
        import os

        try:
            import fcntl
        except ImportError:
            return
        try:
            fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SweepError(f"cannot write in the sweep folder {self.folder}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SweepError(f"{self.folder} is being run by another fftui sweep; wait for it, or stop it "
                             "(--status shows its progress)") from None
        self._lock_fd = fd

    def unlock(self) -> None:
        """Let the sweep's lock go."""
        import os

        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def save(self) -> None:
        """Write sweep.json now (atomically); SweepError when it cannot be written."""
        from engine.store.files import write_json_atomic

        try:
            write_json_atomic(self.folder / SWEEP_JSON, self.data)
        except OSError as exc:
            raise SweepError(f"cannot write {self.folder / SWEEP_JSON}: {exc.strerror or exc}") from None
        self._written = time.monotonic()
        self._unsaved = False

    def status_line(self) -> str:
        """One line: "12 trials: 8 finished, 1 diverged, 1 failed, 2 pending"."""
        counts = self.counts()
        parts = [f"{n} {name}" for name, n in counts.items() if n]
        return f"{len(self.trials)} trials: " + ", ".join(parts)
