"""The run store: every run recorded in its own folder, read back later.

Where: ``platformdirs.user_data_dir("fftui")/runs`` (``$FFTUI_DATA_DIR/runs`` when set), one folder
per run named ``YYYYMMDD-HHMMSS-NAME`` (``-2``, ``-3``... when two runs start in the same second),
claimed atomically; or a folder the user names (``--out DIR``).

A run folder (format 1):

- ``run.json``: format, status (running, finished, interrupted, diverged, failed), last iteration,
  records written, per-sample batches kept and dropped, the mean over the last 100 batches of the
  sparser ratio and the agreements per group ("final"), why recording stopped if it did; rewritten
  atomically about once a second. A run marked running whose writer is gone reads as interrupted.
- ``config.json``: every parameter, the data and the machine (engine/headless.py run_description).
- ``summary.jsonl.gz``: one JSON line per batch (orjson), every BATCH and GROUP metric of
  engine/metrics.py under its key (MetricsChunk.lines without the per-sample arrays), in a
  gzip stream flushed (Z_SYNC_FLUSH) after whole lines, so that a killed run's file decompresses to
  its last flushed line (``zcat summary.jsonl.gz | jq`` reads it). Compressed because a summary
  line is about 900 bytes: an hour of the app at 35 batches a second is 113 MB as plain text and
  about 15 MB compressed.
- ``samples.arrows``: the per-sample arrays (every SAMPLE metric: both sides, the outcome, both
  predictions) as an Apache Arrow IPC stream (pyarrow), one row per group of a kept batch
  (iteration, group, one list per metric), zstd-compressed record batches of about a second each.
  A stack's rows are per layer and group of a kept batch, with a ``layer`` column (0 = the first;
  a batch is kept with every layer or not at all); rows without it (one layer, or a stack recorded
  before every layer was kept) are layer 0. A stack's summary lines hold every layer's numbers
  under "layers" (engine/store/layers.py).
  A stream and not Parquet: a stream is written by appending self-delimited messages, so a file
  cut at any byte reads back to its last complete batch, while a Parquet file is unreadable until
  its footer is written at the end; reading a stream back needs no index and maps to numpy without
  copies. Which batches keep their arrays: SamplePolicy (every batch at first, then thinned).
- ``events.jsonl``: parameter changes, pauses, errors, one JSON line each, with their iteration.
- A resumed run (engine/store/resume.py) appends to its files: the summary then holds one gzip
  member per stretch of the run (``zcat`` reads them as one), the samples one Arrow stream each.
- ``checkpoint.safetensors``: the last checkpoint, weights and optimiser state (tensors
  ``weights/NAME``, ``optimizer/NAME``) in one file replaced atomically (no pickle anywhere).
- ``writer.lock``: created exclusively when the folder is claimed (engine/headless.py
  prepare_out_dir: of two runs given one folder only one gets it), then held by the live writer
  (flock). No other file marks a claim.

Writing: RunWriter (writer.py), on its own thread, fed through a bounded queue that never blocks the
training thread. Reading: RunReader (reader.py). Checkpoints: checkpoint.py. Listing, names, removal:
catalog.py."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .checkpoint import Checkpoint, read_checkpoint, write_checkpoint
from .columns import SAMPLE_SCHEMA, SamplePolicy, sample_rows, sample_schema, summary_lines
from .files import (
    FORMAT,
    STATUSES,
    StoreError,
    claim_out_folder,
    claim_run_folder,
    run_stem,
    store_root,
    writer_alive,
)
from .reader import RunReader, Samples, Summary
from .writer import RunWriter


def run_name(mode: str, loss: str, preset: str | None = None) -> str:
    """A run's name in the store: the preset's, else mode-loss (e.g. ff-logistic)."""
    return preset or f"{mode}-{loss}"


def start_recording(name: str, description: dict, out: str | Path | None = None, *, root: Path | None = None,
                    **writer_options: Any) -> RunWriter:
    """Claim a folder (`out` as given, else a fresh one named after `name` in the store), write its
    config.json (description) and run.json, and start a RunWriter on it (writer_options: see
    RunWriter). Raises StoreError (one line) when no folder can be claimed or written."""
    folder = claim_out_folder(out) if out is not None else claim_run_folder(name, root)
    return RunWriter(folder, description, **writer_options).start()

__all__ = [
    "FORMAT", "SAMPLE_SCHEMA", "STATUSES", "Checkpoint", "RunReader", "RunWriter", "SamplePolicy", "Samples",
    "StoreError", "Summary", "claim_out_folder", "claim_run_folder", "run_name", "run_stem", "sample_rows",
    "read_checkpoint", "sample_schema", "start_recording", "store_root", "summary_lines", "write_checkpoint",
    "writer_alive",
]
