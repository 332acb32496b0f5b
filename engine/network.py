"""The Trainer's work for a network beyond one layer with the report's negatives: the layers above
the first (engine/stack.py), other negatives (engine/negatives.py), the classifier's test error
(engine/evaluate.py) and the linear readout beside it (engine/readout.py). Functions of the trainer,
kept apart so that engine/trainer.py stays the one-layer path it was; a one-layer run never enters
them but for `loss_column`, `train_readout` and the readout's set-up."""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from .chunk import MetricsChunk
from .evaluate import Evaluation, count_wrong, test_pixels
from .inputs import unit_rows
from .layer import Optimizer, init_weights
from .layout import PackMeta
from .negatives import negative_batch
from .readout import Readout
from .stack import StackChunk, StackMeta, UpperLayer, end_to_end, layer_config, new_optimizer
from .step import StepPlan, measure, plan_step, train_math

if TYPE_CHECKING:
    from .config import Config
    from .trainer import Trainer


def build_upper(trainer: Trainer) -> list[UpperLayer]:
    """Fresh layers 1.. of cfg.widths: weights drawn after the first layer's from the same
    generator (so the first layer is the one-layer run's), each with its own optimiser."""
    cfg, out = trainer.cfg, []
    widths = cfg.layer_widths
    for layer in range(1, len(widths)):
        w = init_weights(widths[layer], widths[layer - 1], cfg.init, trainer.weight_gen, trainer.device,
                         trainer.dtype)
        opt = new_optimizer(cfg, layer)
        out.append(UpperLayer(w, opt, _plan(trainer, layer, opt)))
    return out


def _plan(trainer: Trainer, layer: int, optimizer: Optimizer) -> StepPlan:
    cfg = trainer.cfg
    return plan_step(layer_config(cfg, layer), optimizer, inputs=cfg.layer_widths[layer - 1], fast=trainer.fast,
                     graphs=False, device_type=trainer.device.type)


def replan_upper(trainer: Trainer) -> None:
    """Every upper layer's plan for the configuration as it is now."""
    for layer, up in enumerate(getattr(trainer, "upper", ()), start=1):
        up.plan = _plan(trainer, layer, up.optimizer)


def configure_upper(trainer: Trainer, new_kind: bool) -> None:
    """A live change of the optimiser's settings: new optimisers when its kind changed, else the
    new rates and coefficients with the moment buffers kept."""
    cfg = trainer.cfg
    for layer, up in enumerate(trainer.upper, start=1):
        if new_kind:
            up.optimizer = new_optimizer(cfg, layer)
        else:
            up.optimizer.configure(cfg.layer_rates[layer], cfg.momentum, cfg.weight_decay, cfg.beta1, cfg.beta2)


def weights(trainer: Trainer) -> list[torch.Tensor]:
    """Every layer's weights, first to last."""
    return [trainer.w, *(up.w for up in trainer.upper)]


def build_readout(trainer: Trainer) -> Readout | None:
    """A fresh linear readout for cfg.readout "linear" (engine/readout.py), else None."""
    cfg = trainer.cfg
    if cfg.readout != "linear":
        return None
    return Readout(cfg.layer_widths, cfg.score_layers == "skip-first", cfg.label_value, cfg.lr, trainer.device,
                   trainer.dtype)


def configure_readout(trainer: Trainer, old: Config) -> None:
    """A live change: a readout made or dropped when cfg.readout changed, a new one when the layers
    it reads did (score_layers), else the new lr with its Adam state kept."""
    cfg = trainer.cfg
    if (cfg.readout, cfg.score_layers) != (old.readout, old.score_layers):
        trainer.readout = build_readout(trainer)
    elif trainer.readout is not None:
        trainer.readout.optimizer.lr = cfg.lr


def train_readout(trainer: Trainer, n_pos: int) -> None:
    """The readout's step on the batch's positives (the first n_pos of the batcher's last images)
    through the layers as they stand before their step; nothing without a readout."""
    readout, batcher = trainer.readout, trainer.batcher
    if readout is None or batcher.last is None:
        return
    idx = batcher.last[:n_pos]
    readout.step(weights(trainer), batcher.table[idx], batcher.labels[idx])


def test_table(trainer: Trainer) -> torch.Tensor | None:
    """The test digits as floats, normalised as the training table (None without evaluate)."""
    if trainer.test is None:
        return None
    return test_pixels(trainer.test, trainer.dataset.images, trainer.dtype, trainer.cfg.normalize)


def next_batch(trainer: Trainer) -> tuple[torch.Tensor, int]:
    """An ff batch under cfg.negatives (not wrong-label): X (2N, m) and N."""
    cfg, batcher = trainer.cfg, trainer.batcher
    idx = batcher.next_indices(cfg.batch_size)
    x = negative_batch(cfg.negatives, batcher.table, batcher.labels, idx, batcher.generator, cfg.label_value,
                       weights(trainer), cfg.score_layers == "skip-first")
    return x, idx.shape[0]


def stack_meta(trainer: Trainer, batch: int) -> StackMeta:
    """The StackMeta of this configuration's batches of `batch` samples."""
    meta = trainer._stack_metas.get(batch)
    if meta is None:
        metas = [trainer.pack_meta(batch)]
        for up, width in zip(trainer.upper, trainer.cfg.layer_widths[1:], strict=True):
            plan = up.plan
            metas.append(PackMeta(plan.mode, plan.loss, batch, width, plan.gradient_step,
                                  plan.theorem_scale))
        meta = trainer._stack_metas[batch] = StackMeta(tuple(metas), batch)
    return meta


def advance(trainer: Trainer, with_metrics: bool) -> list[MetricsChunk]:
    """One batch through the stack, eagerly: each layer's step and metrics with its input held fixed
    (its input: the unit-length activation of the layer below before the step), then the end-to-end
    pass through the new network. Ships the batch's vector (StackMeta's layout)."""
    with torch.inference_mode():
        x, n_pos = trainer.next_batch()
        train_readout(trainer, n_pos)
        epoch = trainer.batcher.epoch + 1
        batch = x.shape[0]
        signs = trainer.signs(batch, n_pos)
        meta = stack_meta(trainer, batch) if with_metrics else None
        layers = [(trainer.w, trainer.optimizer, trainer.plan)] + [(u.w, u.optimizer, u.plan) for u in trainer.upper]
        packs, losses = [], []
        step_time = metrics_time = 0.0
        inputs = x
        for layer, (w, opt, plan) in enumerate(layers):
            t0 = time.perf_counter()
            step = train_math(plan, w, opt, inputs, n_pos, signs)
            losses.append(step.loss)
            t1 = time.perf_counter()
            step_time += t1 - t0
            if meta is not None:
                packs.append(meta.metas[layer].layout.pack(measure(plan, inputs, step, signs)))
            if layer + 1 < len(layers):
                inputs = unit_rows(step.h)
            metrics_time += time.perf_counter() - t1
        trainer.iteration += 1
        if trainer.device.type != "cuda":
            trainer._stop_at_overflow(float(sum(float(v) for v in losses)))
        if meta is None:
            return []
        t1 = time.perf_counter()
        for values in end_to_end(weights(trainer), x):
            packs.append(meta.end_layout.pack(values))
        packed = torch.cat(packs)
        metrics_time += time.perf_counter() - t1
        if trainer.device.type == "cuda":
            return trainer._ship(packed, batch, epoch)
        return trainer._ship(packed, batch, epoch, (step_time, metrics_time))


def loss_column(chunk: MetricsChunk) -> np.ndarray:
    """The losses that must stay finite: the layer's, or every layer's summed (a stack)."""
    if isinstance(chunk, StackChunk):
        return np.sum([c.column("loss") for c in chunk.layers], axis=0)
    return chunk.column("loss")


def evaluate(trainer: Trainer) -> Evaluation | None:
    """The goodness classifier's test error now (engine/evaluate.py); None without evaluate. One
    host sync: the count of wrong digits."""
    if trainer.test is None or trainer.test_table is None:
        return None
    cfg = trainer.cfg
    with torch.inference_mode():
        wrong = count_wrong(weights(trainer), trainer.test_table, trainer.test.labels, cfg.label_value,
                            cfg.score_layers == "skip-first")
        readout = trainer.readout
        readout_wrong = (None if readout is None else
                         int(readout.count_wrong(weights(trainer), trainer.test_table, trainer.test.labels)))
    total = trainer.test.size
    iteration = trainer.iteration
    epoch = math.ceil(iteration / trainer.batches_per_epoch) if iteration else 0
    return Evaluation(iteration, epoch, int(wrong), total, cfg.score_layers, trainer.test.description,
                      readout_wrong)
