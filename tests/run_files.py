"""Reading a recorded run's files in tests, straight from the files (gzip and JSON), so that the
tests do not rely on the reader they may be testing."""
from __future__ import annotations

import errno
import json
import os
import zlib
from pathlib import Path


def summary_lines(folder: Path) -> list[dict]:
    """Every complete line of folder/summary.jsonl.gz as a dict (a gzip stream cut short, as a
    killed or full run leaves it, reads to its last complete line)."""
    data = (Path(folder) / "summary.jsonl.gz").read_bytes()
    text = zlib.decompressobj(31).decompress(data) if data else b""
    lines = text.split(b"\n")
    lines.pop()  # b"" after the last newline, or an incomplete line
    return [json.loads(line) for line in lines]


def iterations(folder: Path) -> list[int]:
    """The iteration of each line of the summary, in order."""
    return [line["iteration"] for line in summary_lines(folder)]


def run_info(folder: Path) -> dict:
    """folder/run.json."""
    return json.loads((Path(folder) / "run.json").read_text())


def events(folder: Path) -> list[dict]:
    """Every line of folder/events.jsonl."""
    path = Path(folder) / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def store_runs(root: Path | None = None) -> list[Path]:
    """The run folders of the store ($FFTUI_DATA_DIR/runs), oldest name first."""
    import os

    root = Path(os.environ["FFTUI_DATA_DIR"]) / "runs" if root is None else Path(root)
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


__all__ = ["events", "iterations", "run_info", "store_runs", "summary_lines"]


class FillingFile:
    """A run file on a disk that fills (an opener for engine.store.RunWriter): the first write goes
    through, the second only in part, then every write fails with ENOSPC."""

    def __init__(self, path) -> None:
        self.file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed by the writer
        self.calls = 0

    def write(self, data) -> int:
        self.calls += 1
        if self.calls == 1:
            return self.file.write(data)
        if self.calls == 2:
            return self.file.write(bytes(data)[: max(1, len(data) // 2)])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def truncate(self, size: int) -> int:
        return self.file.truncate(size)

    def close(self) -> None:
        self.file.close()
