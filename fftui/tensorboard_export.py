"""`fftui runs export RUN --tensorboard DIR`: a recorded run as TensorBoard event files, written with
TensorBoard's own event writer and summary protocol buffers (the optional extra
``pip install 'fftui[tensorboard]'``; without it, one line says how to install it).

What is written, into DIR/<run name>/ (so that ``tensorboard --logdir DIR`` names runs by name): per
iteration, one event holding every numeric per-batch metric ("batch/loss", ...) and every per-group
metric ("pos/sparser", ...) as scalars (engine/metrics.py); per batch that kept its per-sample arrays,
the histograms of the theorem's two sides per group ("pos/lhs", "pos/rhs"; finite values only).

A stack's run (its summary holds every layer, engine/store/layers.py) writes every layer's, tagged
by the layer's index in the records (0 = the first, as the summary lines' "layer", the per-sample
arrays' layer column and the CSVs count): "layer1/batch/loss", "layer1/pos/sparser", the end-to-end
metrics too ("layer1/pos/sparser_end"), "layer1/pos/lhs"; what every layer of a batch shares (its
timings, its epoch) keeps its one-layer tag ("batch/step_time"). A one-layer run's tags are the
ones above. A run with --evaluate adds its test errors at the iterations it measured them:
"test/error" and, with --readout linear, "test/readout_error" (fractions, 0 to 1)."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np

from engine.metrics import BATCH_METRICS, GROUP_METRICS
from engine.store import RunReader, StoreError
from engine.store.layers import PREFIX
from engine.store.reader import Summary

INSTALL = "pip install 'fftui[tensorboard]'"
HISTOGRAM_BUCKETS = 30


class MissingExtra(StoreError):
    """An optional dependency is not installed; the message (one line) says how to install it."""


def _tensorboard() -> tuple[Any, Any, Any, Any]:
    """TensorBoard's event writer, Event and Summary messages, and its histogram summary; MissingExtra
    when TensorBoard is not installed."""
    try:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError:
        raise MissingExtra(f"TensorBoard export needs the tensorboard extra: {INSTALL}") from None
    return EventFileWriter, Event, Summary, HistogramProto


def histogram_value(summary_class: Any, histogram_class: Any, tag: str, data: np.ndarray) -> Any:
    """A histogram as a summary value in TensorBoard's HistogramProto (its histograms plugin reads
    it): HISTOGRAM_BUCKETS equal buckets over the finite data (at least one value), each bucket
    given by its right edge and its count."""
    lo, hi = float(data.min()), float(data.max())
    counts, edges = np.histogram(data, bins=HISTOGRAM_BUCKETS, range=(lo, hi) if hi > lo else (lo - 0.5, lo + 0.5))
    histo = histogram_class(min=lo, max=hi, num=float(data.size), sum=float(data.sum()),
                            sum_squares=float(np.square(data).sum()), bucket_limit=edges[1:].tolist(),
                            bucket=counts.astype(float).tolist())
    return summary_class.Value(tag=tag, histo=histo)


def _quiet_disk_errors(hook: Any) -> Any:
    """A threading.excepthook that leaves out OSError (TensorBoard's writer thread failing on a full
    disk: the writer raises it again in the exporting thread) and passes anything else to hook."""
    def quiet(args: Any) -> None:
        if not (isinstance(args.exc_type, type) and issubclass(args.exc_type, OSError)):
            hook(args)
    return quiet


def _started(run: RunReader) -> float:
    """When the run began (run.json's "created"), in seconds since the epoch; now if unknown."""
    import time
    from datetime import datetime

    text = run.info.get("created")
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return time.time()


def _tag(layer: int, layers: int, tag: str) -> str:
    """A tag of one layer: as it is for one layer, prefixed "layerK/" in a stack (K: the layer's
    index in the records, 0 = the first)."""
    return f"layer{layer}/{tag}" if layers > 1 else tag


def scalar_series(summary: Summary) -> list[tuple[str, np.ndarray]]:
    """(tag, one value per summary row as float64, NaN for null) of every numeric metric the run's
    summary holds (the module's docstring says the tags): one layer's, or every layer's of a stack."""
    layers = summary.layers
    out: list[tuple[str, np.ndarray]] = []
    for m in BATCH_METRICS:
        if m.dtype == "str" or m.name == "iteration":
            continue
        own = [summary.layer_column(m.key, layer) for layer in range(layers)] if layers > 1 else [None]
        if any(col is None for col in own):  # one layer, or a number every layer of a batch shares
            out.append((f"batch/{m.name}", np.asarray(summary.column(m.name), dtype=float)))
        else:
            out += [(_tag(layer, layers, f"batch/{m.name}"), np.asarray(col, dtype=float))
                    for layer, col in enumerate(own)]
    if layers < 2:
        return out + [(f"{g}/{m.name}", np.asarray(summary.group_column(m.name, g), dtype=float))
                      for g in summary.groups for m in GROUP_METRICS]
    names = [k[len(PREFIX):] for k, col in summary.columns.items() if k.startswith(PREFIX) and col.ndim == 3]
    for layer in range(layers):
        for gi, g in enumerate(summary.groups):
            for name in names:
                col = summary.layer_column(name, layer)
                assert col is not None
                out.append((_tag(layer, layers, f"{g}/{name}"), np.asarray(col[:, gi], dtype=float)))
    return out


def evaluation_scalars(events: list) -> list[tuple[int, list[tuple[str, float]]]]:
    """(iteration, [(tag, value)]) of every test error the run recorded (its "evaluation" events,
    engine/evaluate.py Evaluation.fields): "test/error" (the goodness classifier's, a fraction 0 to
    1) and, with a linear readout, "test/readout_error"; an event without a finite error is left out."""
    out = []
    for e in events:
        if e.get("kind") != "evaluation" or not isinstance(e.get("iteration"), int):
            continue
        values = [(tag, float(e[key])) for tag, key in (("test/error", "test_error"),
                                                       ("test/readout_error", "readout_error"))
                  if isinstance(e.get(key), (int, float)) and np.isfinite(e[key])]
        if any(tag == "test/error" for tag, _ in values):
            out.append((e["iteration"], values))
    return out


def export_tensorboard(run: RunReader, folder: Path) -> int:
    """Write the run's event file into folder/<run name>/ (created); returns the number of scalars
    and histograms written. StoreError (one line), nothing written, when that folder already holds
    files or cannot be made; MissingExtra without TensorBoard."""
    from .runs_tools import no_batch

    writer_class, event_class, summary_class, histogram_class = _tensorboard()
    if not len(run.summary):
        raise StoreError(no_batch(run))
    target = folder / run.name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise StoreError(f"{target} already exists and is not empty; export into another folder")
    summary = run.summary
    samples = run.samples
    scalars = scalar_series(summary)
    iterations = np.asarray(summary.column("iteration"), dtype=np.int64)
    seconds = np.nan_to_num(np.asarray(summary.column("step_time"), dtype=float)
                            + np.asarray(summary.column("metrics_time"), dtype=float))
    wall = _started(run) + np.cumsum(seconds)  # when each batch ended, as near as the record tells
    layers = summary.layers
    kept = {(g, layer): set(samples.iterations(g, layer).tolist())
            for g in summary.groups if g in samples.groups for layer in range(layers)}
    count = 0
    done = False
    hook = threading.excepthook
    threading.excepthook = _quiet_disk_errors(hook)  # they reach this thread through the writer
    try:
        target.mkdir(parents=True, exist_ok=True)
        writer = writer_class(str(target))
        try:
            for row, iteration in enumerate(iterations.tolist()):
                values = [summary_class.Value(tag=tag, simple_value=float(col[row]))
                          for tag, col in scalars if np.isfinite(col[row])]
                for (group, layer), its in kept.items():
                    if iteration in its:
                        arrays = samples.at(iteration, group, layer)
                        assert arrays is not None
                        for side in ("lhs", "rhs"):
                            data = np.asarray(arrays[side], dtype=float)
                            data = data[np.isfinite(data)]
                            if data.size:
                                tag = _tag(layer, layers, f"{group}/{side}")
                                values.append(histogram_value(summary_class, histogram_class, tag, data))
                count += len(values)
                writer.add_event(event_class(step=iteration, wall_time=float(wall[row]),
                                             summary=summary_class(value=values)))
            for iteration, values in evaluation_scalars(run.events):
                row = max(0, int(np.searchsorted(iterations, iteration, side="right")) - 1)
                count += len(values)
                writer.add_event(event_class(step=iteration, wall_time=float(wall[row]), summary=summary_class(
                    value=[summary_class.Value(tag=tag, simple_value=v) for tag, v in values])))
        finally:
            writer.close()
        done = True
    except OSError as exc:
        raise StoreError(f"cannot write into {target}: {exc.strerror or exc}") from None
    finally:
        threading.excepthook = hook
        if not done:  # a failure half-way: leave nothing behind
            shutil.rmtree(target, ignore_errors=True)
    return count
