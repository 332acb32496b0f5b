"""Resuming a recorded run from its last checkpoint: what may be resumed (checked before anything is
changed), the trainer put back where the checkpoint left it, and the run's folder made ready for
the records that follow.

A resumed run trains on from the checkpoint's iteration K with the weights, the optimiser's state,
the batch order and the random generator that draws the data order and the negatives' wrong labels
exactly as they were, so that on the same device its records from K + 1 on are those the run would
have made without the stop (bit for bit on the CPU). Records the run made after K (it was killed
between two checkpoints) are dropped from the folder first (engine/store/resume.py)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import Config, ConfigError
from .store import Checkpoint, RunReader, StoreError
from .store.files import WriterLock

# Presets that train nothing (they measure Theorem 1 at initialisation): nothing to resume.
UNTRAINED_PRESETS = ("fig1a", "fig1b")


@dataclass
class ResumePlan:
    """A run that may be resumed, its writer lock held (release it with `release`): the folder, the
    run read back, its configuration as it will go on (cfg: the recorded one with the new end), its
    checkpoint and the planned end (total iterations, or None when cfg sets it by epochs)."""

    folder: Path
    reader: RunReader
    cfg: Config
    checkpoint: Checkpoint
    lock: WriterLock

    @property
    def iteration(self) -> int:
        return self.checkpoint.iteration

    @property
    def preset(self) -> str | None:
        preset = self.reader.config.get("preset")
        return preset if isinstance(preset, str) and preset else None

    def release(self) -> None:
        """Let the run's writer lock go (a resume that will not start)."""
        self.lock.release()

    def description(self, base: dict) -> dict:
        """config.json for the resumed run: the recorded one with the configuration as it goes on
        and, under "resumed", each resume's iteration and time (the earlier ones kept)."""
        out = dict(self.reader.config)
        # the configuration the run started with (the parameter changes recorded as events apply
        # over it), with its new end
        out["config"] = {**dict(self.reader.config.get("config") or {}),
                         **{k: base["config"][k] for k in ("iters", "epochs")}}
        for key in ("device", "torch", "python", "platform"):  # where it runs now
            if key in base:
                out[key] = base[key]
        out["resumed"] = [*list(out.get("resumed") or []),
                          {"iteration": self.iteration, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}]
        return out



def hold_writer_lock(folder: Path, busy: str) -> WriterLock:
    """The run folder's writer lock, held for a resume; StoreError with the line `busy` when a live
    writer holds it, or naming the folder when it cannot be written."""
    lock = WriterLock(folder)
    try:
        lock.acquire()
    except BlockingIOError:
        raise StoreError(busy) from None
    except OSError as exc:
        raise StoreError(f"cannot record into {folder}: {exc.strerror or exc}") from None
    return lock

def plan_resume(folder: Path, iters: int | None = None, epochs: int | None = None) -> ResumePlan:
    """Check that the run in folder can be resumed and take its writer lock; StoreError (one line)
    otherwise, nothing changed. iters / epochs: a new end for the run (its total, as --iters and
    --epochs always count from the run's start); None keeps the recorded one. Refused: a folder that
    is not a readable run, a run being recorded now, a run with no checkpoint or a damaged one, a
    run that diverged, a preset that trains nothing, a configuration that no longer validates, and
    an end the checkpoint has reached already (with the flags that move it)."""
    reader = RunReader(folder)
    name = reader.name
    lock = hold_writer_lock(reader.folder, f"{name} is being recorded now; resume it once its run has stopped")
    try:
        return _plan(reader, lock, iters, epochs)
    except BaseException:
        lock.release()
        raise


def _plan(reader: RunReader, lock: WriterLock, iters: int | None, epochs: int | None) -> ResumePlan:
    name = reader.name
    preset = reader.config.get("preset")
    if preset in UNTRAINED_PRESETS:
        raise StoreError(f"{name} is the preset {preset}, which measures the layer at initialisation and trains "
                         "nothing: there is nothing to resume (run it again)")
    status = reader.info.get("status")
    if status == "diverged":
        raise StoreError(f"{name} diverged: resumed, it would diverge again at the same batch; start a new run "
                         f"with a lower learning rate (fftui run --config {reader.folder} --lr ...)")
    values: dict = dict(reader.config.get("config") or {})
    try:
        cfg = Config().replace(**values)
    except (ConfigError, TypeError) as exc:
        raise StoreError(f"{name}'s configuration no longer validates: {exc}".splitlines()[0]) from None
    checkpoint = reader.checkpoint()
    if checkpoint is None:
        raise StoreError(f"{name} has no checkpoint to resume from (it stopped before its first one)")
    try:
        if iters is not None or epochs is not None:
            cfg = cfg.replace(iters=iters, epochs=epochs if epochs is not None else cfg.epochs)
    except ConfigError as exc:
        raise StoreError(str(exc)) from None
    order = checkpoint.optimizer.get("batch_order")  # the images the run trains on (less the held-out test)
    size = order.numel() if order is not None else (reader.config.get("dataset") or {}).get("size")
    total = cfg.total_iters(size) if isinstance(size, int) else cfg.iters
    if total is not None and total <= checkpoint.iteration:
        said = f"--iters {iters}" if iters is not None else f"--epochs {epochs}" if epochs is not None else None
        how = (f"{said} is not past it" if said else
               f"it has reached its planned end; give --iters above {checkpoint.iteration:,} (the run's new "
               "total) to train it further")
        raise StoreError(f"{name} stands at iteration {checkpoint.iteration:,}: {how}")
    changes = changes_until(reader.events, checkpoint.iteration)
    if changes:  # parameters changed live (the app) before the checkpoint: the run goes on with them
        try:
            cfg = cfg.replace(**changes)
        except (ConfigError, TypeError) as exc:
            raise StoreError(f"{name}'s recorded parameter changes no longer validate: {exc}".splitlines()[0]) from None
    return ResumePlan(reader.folder, reader, cfg, checkpoint, lock)


def changes_until(events: list[dict], iteration: int) -> dict[str, Any]:
    """The parameters as the run's "change" events (engine/recording.py: {name: [old, new]} at the
    iteration after which they apply) left them by `iteration`: {name: newest value}."""
    out: dict[str, Any] = {}
    for event in events:
        at, changes = event.get("iteration"), event.get("changes")
        if event.get("kind") == "change" and isinstance(at, int) and at <= iteration and isinstance(changes, dict):
            out.update({k: v[1] for k, v in changes.items() if isinstance(v, list) and len(v) == 2})
    return out


def check_checkpoint(checkpoint: Checkpoint, cfg: Config, size: int, inputs: int) -> None:
    """StoreError (one line) when the checkpoint cannot go on as cfg on a data set of `size` images
    of `inputs` values each: another width, dtype, optimiser or data set, or a checkpoint without
    the training state a resume needs. Checked before anything is allocated or changed."""
    w = checkpoint.weights.get("w")
    opt = checkpoint.optimizer
    needed = ("steps", "data_generator", "batch_order", "batch_position")
    if w is None or any(key not in opt for key in needed):
        raise StoreError("the checkpoint lacks the training state a resume needs (written by another fftui)")
    dtype = str(w.dtype).removeprefix("torch.")
    if tuple(w.shape) != (cfg.width, inputs) or dtype != cfg.dtype:
        raise StoreError(f"the checkpoint's layer ({tuple(w.shape)}, {dtype}) is not the configuration's "
                         f"({(cfg.width, inputs)}, {cfg.dtype})")
    widths = cfg.layer_widths
    for layer in range(1, len(widths)):  # a stack's layers above the first
        upper = checkpoint.weights.get(f"w{layer}")
        shape = (widths[layer], widths[layer - 1])
        if upper is None or tuple(upper.shape) != shape:
            got = "none" if upper is None else str(tuple(upper.shape))
            raise StoreError(f"the checkpoint's layer {layer} ({got}) is not the configuration's {shape}")
    if f"w{len(widths)}" in checkpoint.weights:
        raise StoreError(f"the checkpoint holds more layers than the configuration's {len(widths)}")
    if cfg.readout != "none" and ("readout_w" not in checkpoint.weights or "readout_steps" not in opt):
        raise StoreError(f"the checkpoint holds no state of the {cfg.readout} readout the configuration has")
    kind = checkpoint.metadata.get("optimizer", cfg.optimizer)
    if kind != cfg.optimizer:
        raise StoreError(f"the checkpoint's optimiser is {kind}, the configuration's {cfg.optimizer}")
    if opt["batch_order"].numel() != size:
        raise StoreError(f"the checkpoint's data set held {opt['batch_order'].numel():,} images, this one "
                         f"{size:,}: not the run's data")


def restore(trainer: Any, checkpoint: Checkpoint) -> None:
    """Put a new Trainer (engine/trainer.py, built from the run's configuration) where the
    checkpoint left its run: the weights, the optimiser's step count and moment buffers, the data
    generator's state, this epoch's batch order and position, the epoch and the iteration (see
    engine/headless.py training_state), and a stack's layers above the first theirs. StoreError (one
    line) when the checkpoint does not fit the configuration or the data (another width, number of
    layers, dtype, optimiser or data set). A linear readout gets its weights and Adam state back."""
    check_checkpoint(checkpoint, trainer.cfg, trainer.batcher.size, trainer.inputs)
    w, opt, meta = checkpoint.weights["w"], checkpoint.optimizer, checkpoint.metadata
    batcher, order = trainer.batcher, checkpoint.optimizer["batch_order"]
    device = trainer.w.device
    with torch.inference_mode():
        trainer.w.copy_(w.to(device))
        optimizer = trainer.optimizer
        optimizer.steps = int(opt["steps"].reshape(-1)[0])
        for key in ("m", "v"):
            value = opt.get(key)
            setattr(optimizer, f"_{key}", None if value is None else value.to(device=device, dtype=trainer.w.dtype))
        for layer, up in enumerate(getattr(trainer, "upper", ()), start=1):  # a stack's layers above the first
            up.w.copy_(checkpoint.weights[f"w{layer}"].to(device))
            up.optimizer.steps = optimizer.steps  # every layer steps on every batch
            for key in ("m", "v"):
                value = opt.get(f"{key}{layer}")
                setattr(up.optimizer, f"_{key}", None if value is None else value.to(device=device, dtype=up.w.dtype))
        readout = getattr(trainer, "readout", None)
        if readout is not None:  # the linear readout's weights and Adam state
            try:
                readout.load({**checkpoint.weights, **opt})
            except ValueError as exc:
                raise StoreError(str(exc)) from None
        batcher.generator.set_state(opt["data_generator"].to("cpu"))
        batcher._perm = order.to(device=device, dtype=torch.int64)
        batcher._pos = int(opt["batch_position"].reshape(-1)[0])
    batcher.epoch = int(meta.get("epoch", 0))
    trainer.iteration = checkpoint.iteration
