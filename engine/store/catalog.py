"""The store's runs as a list: what each is (from run.json and config.json, without reading its
records), names given as a unique prefix, removal and pruning. A run whose writer is alive is never
removed."""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .files import LOCK, RUN_JSON, StoreError, folder_size, store_root, writer_alive
from .reader import RunReader


@dataclass
class RunEntry:
    """One folder of the store. reader: the run (None when the folder is not a readable run, and
    `problem` says why). created: seconds since the epoch (from run.json, else the folder's
    modification time). size: bytes on disk."""

    folder: Path
    reader: RunReader | None
    problem: str | None
    created: float
    size: int
    group: str = ""  # the group folder a seed's run is in (see SEEDS_MARKER), "" for a run of its own

    @property
    def name(self) -> str:
        """The run's name in the store: its folder's, GROUP/seed-SEED for a seed's run in a group."""
        return f"{self.group}/{self.folder.name}" if self.group else self.folder.name

    @property
    def status(self) -> str:
        """The run's status (see RunReader.status), or "damaged" for a folder that is not a readable run;
        "running" for one whose writer holds its lock but has not written run.json yet."""
        if self.reader is not None:
            return self.reader.status
        return "running" if writer_alive(self.folder, {}) else "damaged"


def _created(reader: RunReader | None, folder: Path) -> float:
    text = reader.info.get("created") if reader is not None else None
    if isinstance(text, str):
        try:
            return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp()
        except ValueError:
            pass
    try:
        return folder.stat().st_mtime
    except OSError:
        return 0.0


# A preset run once per seed (fftui run --preset ... --seeds K) is a group folder holding this file and
# one run folder per seed, seed-SEED; the store lists and names those runs as GROUP/seed-SEED.
SEEDS_MARKER = "seeds.json"


def _seed_runs(folder: Path) -> list[Path]:
    """The seeds' run folders of a group folder (one holding SEEDS_MARKER and no run of its own);
    [] for any other folder."""
    if not (folder / SEEDS_MARKER).is_file() or (folder / RUN_JSON).exists():
        return []
    return sorted((p for p in folder.iterdir() if p.is_dir() and p.name.startswith("seed-")),
                  key=lambda p: (len(p.name), p.name))


def list_runs(root: Path | None = None) -> list[RunEntry]:
    """Every folder of the store, newest first, a group of seed runs as its runs (GROUP/seed-SEED);
    empty when the store does not exist yet."""
    root = store_root() if root is None else root
    try:
        folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StoreError(f"cannot read the run store {root}: {exc.strerror or exc}") from None
    entries = []
    for group in list(folders):
        if (group / SEEDS_MARKER).is_file() and not (group / RUN_JSON).exists():
            folders.remove(group)  # a group: its seeds' runs are listed, not the group itself
            for folder in _seed_runs(group):
                entry = _entry(folder)
                entry.group = group.name
                entries.append(entry)
    for folder in folders:
        entries.append(_entry(folder))
    entries.sort(key=lambda e: (e.created, e.name), reverse=True)
    return entries


def _entry(folder: Path) -> RunEntry:
    """One folder as a RunEntry (reader None and the problem when it is not a readable run)."""
    reader: RunReader | None
    try:
        reader, problem = RunReader(folder), None
    except StoreError as exc:
        reader, problem = None, str(exc)
    return RunEntry(folder, reader, problem, _created(reader, folder), folder_size(folder))


def resolve(spec: str, root: Path | None = None) -> Path:
    """The store folder a run name stands for: the folder of that name, else the only one whose name
    starts with it; GROUP/seed-SEED names a seed's run in a group folder (GROUP as a name or prefix).
    StoreError (one line) when none or several match."""
    root = store_root() if root is None else root
    group, _, seed = spec.partition("/")
    if seed.startswith("seed-") and seed == Path(seed).name and group:
        folder = resolve(group, root) / seed
        if folder in _seed_runs(folder.parent):
            return folder
        raise StoreError(f"no run named {spec!r} in {root} (fftui runs lists them)")
    if not spec or spec != Path(spec).name or spec in (".", ".."):
        raise StoreError(f"{spec!r} is not a run name (fftui runs lists them)")
    if (root / spec).is_dir():
        return root / spec
    try:
        names = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith(spec))
    except FileNotFoundError:
        names = []
    if not names:
        raise StoreError(f"no run named {spec!r} in {root} (fftui runs lists them)")
    if len(names) > 1:
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise StoreError(f"{spec!r} matches {len(names)} runs ({shown}); give more of the name")
    return root / names[0]


def made_by_fftui(folder: Path) -> bool:
    """Whether a folder of the store was claimed by fftui's writer (it holds writer.lock or
    run.json): only such folders are ever deleted, damaged or not; anything else in the store is
    someone's own and is left as it is."""
    return (folder / LOCK).exists() or (folder / RUN_JSON).exists()


def _check_removable(folder: Path) -> None:
    if not made_by_fftui(folder):
        raise StoreError(f"{folder.name} is not a run fftui recorded (no {RUN_JSON} or {LOCK}): "
                         "left as it is") from None
    try:
        reader = RunReader(folder)
    except StoreError:
        if writer_alive(folder, {}):  # claimed, its writer still setting up: not damaged
            raise StoreError(f"{folder.name} is being recorded now; stop its run first") from None
        return  # a damaged folder of the store can go
    if reader.status == "running":
        raise StoreError(f"{folder.name} is being recorded now; stop its run first")


def remove(specs: list[str], root: Path | None = None) -> list[Path]:
    """Delete the runs named (names or unique prefixes). Every name is checked first: one that
    matches nothing, matches several, or names a run being recorded raises StoreError and nothing
    is deleted. Returns the folders deleted."""
    folders = list(dict.fromkeys(resolve(spec, root) for spec in specs))
    for folder in folders:
        _check_removable(folder)
    for folder in folders:
        _delete(folder)
    return folders


def prune(older_than_days: float | None = None, keep: int | None = None, root: Path | None = None,
          now: float | None = None) -> list[Path]:
    """Delete the runs created more than older_than_days ago, or all but the `keep` newest (exactly
    one of the two); runs being recorded stay, and so do folders fftui did not make (made_by_fftui),
    though they count among the newest. Returns the folders deleted. ValueError for a
    negative or missing bound."""
    if (older_than_days is None) == (keep is None):
        raise ValueError("prune needs exactly one of older_than_days and keep")
    entries = list_runs(root)
    if keep is not None:
        if keep < 0:
            raise ValueError("keep must be at least 0")
        doomed = entries[keep:]
    else:
        assert older_than_days is not None
        if older_than_days < 0:
            raise ValueError("older_than_days must be at least 0")
        cutoff = (time.time() if now is None else now) - older_than_days * 86400.0
        doomed = [e for e in entries if e.created < cutoff]
    doomed = [e for e in doomed if e.status != "running" and made_by_fftui(e.folder)]
    for entry in doomed:
        _delete(entry.folder)
    return [e.folder for e in doomed]


def _delete(folder: Path) -> None:
    try:
        shutil.rmtree(folder)
    except OSError as exc:
        raise StoreError(f"cannot delete {folder}: {exc.strerror or exc}") from None
