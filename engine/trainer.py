"""One FF layer trained batch by batch, with every metric of the report's theory per batch."""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from . import theory
from .config import RESET_FIELDS, Config, batches_per_epoch
from .data import Dataset
from .inputs import Batcher, pixel_table
from .layer import Optimizer, forward, gradient, goodness, init_weights, loss_and_weights, theorem_weights
from .metrics import MetricsRecord, group_from_rows

DTYPES = {"float32": torch.float32, "float64": torch.float64}


class EngineError(RuntimeError):
    """Training cannot go on (a non-finite loss, a device failure); the message is one line."""


class Trainer:
    """Owns the weights, the optimiser state and the batch order of one run."""

    def __init__(self, cfg: Config, dataset: Dataset) -> None:
        self.dataset = dataset
        self.device = dataset.images.device
        self.cfg = cfg
        self._build()

    # -- set-up ---------------------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.cfg
        self.dtype = DTYPES[cfg.dtype]
        self.weight_gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.data_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1_000_003)
        table = pixel_table(self.dataset.images, self.dtype, cfg.standardize)
        self.batcher = Batcher(table, self.dataset.labels, self.data_gen)
        self.inputs = table.shape[1]
        self.w = init_weights(cfg.width, self.inputs, cfg.init, self.weight_gen, self.device, self.dtype)
        self.optimizer = self._new_optimizer()
        self.iteration = 0

    def _new_optimizer(self) -> Optimizer:
        c = self.cfg
        return Optimizer(c.optimizer, c.lr, c.momentum, c.weight_decay, c.beta1, c.beta2)

    def reset(self) -> None:
        """A fresh layer and batch order from the seed; iteration back to 0."""
        self._build()

    def apply(self, cfg: Config) -> bool:
        """Take a new configuration from the next batch on. Returns True when it needed a reset."""
        old, self.cfg = self.cfg, cfg
        if any(getattr(old, f) != getattr(cfg, f) for f in RESET_FIELDS):
            self._build()
            return True
        if cfg.optimizer != old.optimizer:
            self.optimizer = self._new_optimizer()
        else:
            self.optimizer.configure(cfg.lr, cfg.momentum, cfg.weight_decay, cfg.beta1, cfg.beta2)
        return False

    @property
    def batches_per_epoch(self) -> int:
        return batches_per_epoch(self.batcher.size, self.cfg.batch_size)

    @property
    def total_iters(self) -> int:
        return self.cfg.total_iters(self.batcher.size)

    @property
    def finished(self) -> bool:
        return self.iteration >= self.total_iters

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # -- one batch ------------------------------------------------------------------------------
    def next_batch(self) -> tuple[torch.Tensor, int]:
        x, _labels, n_pos = self.batcher.batch(self.cfg.mode, self.cfg.batch_size)
        return x, n_pos

    def train_step(self, x: torch.Tensor, n_pos: int):
        """Forward, loss weights, closed-form gradient and the optimiser's weight change, applied."""
        cfg = self.cfg
        z, h = forward(self.w, x)
        g = goodness(h)
        loss, c = loss_and_weights(cfg.mode, cfg.loss, g, n_pos, cfg.theta)
        if self.optimizer.is_plain_sgd and not cfg.weight_decay:
            # W' = W - lr * 2 (c H)^T X in one fused product; dW is never needed as a matrix
            self.w.addmm_((h * c.unsqueeze(1)).T, x, alpha=-2.0 * cfg.lr)
            dw = None
        else:
            dw = self.optimizer.delta(gradient(h, x, c), self.w)
            self.w.add_(dw)
        self.iteration += 1
        return z, h, g, loss, c, dw

    def step(self, with_metrics: bool = True) -> MetricsRecord | None:
        """Train on the next batch; with metrics, measure and predict its sparsening."""
        with torch.inference_mode():
            x, n_pos = self.next_batch()
            epoch = self.batcher.epoch + 1
            t0 = time.perf_counter()
            z, h, g, loss, c, dw = self.train_step(x, n_pos)
            if not with_metrics:
                return None
            self._sync()
            t1 = time.perf_counter()
            loss_value = float(loss)
            if not math.isfinite(loss_value):
                raise EngineError(f"the loss became {loss_value} at iteration {self.iteration}; "
                                  "lower the learning rate and reset")
            record = self._measure(x, n_pos, z, h, g, c, dw, loss_value, epoch, t1 - t0)
            return record

    def _measure(self, x, n_pos, z, h, g, c, dw, loss_value, epoch, step_time) -> MetricsRecord:
        cfg = self.cfg
        t1 = time.perf_counter()
        batch = x.shape[0]
        kernel = theory.input_kernel(x)
        drive = theory.kernel_drive(kernel, c, h)
        # Post-step pre-activations: for plain SGD from the batch kernel (SPEC.md's Z' shortcut),
        # which is cheaper than a pass through W' while the batch is smaller than the input.
        if dw is None or (self.optimizer.is_plain_sgd and batch < self.inputs):
            dz = drive.mul(-2.0 * cfg.lr)
            if cfg.weight_decay:
                dz.add_(z, alpha=-cfg.lr * cfg.weight_decay)
        else:
            dz = x @ dw.T
        h_new = torch.relu(z + dz)

        l1, l2 = h.sum(dim=1), g.sqrt()
        l1n, l2n = theory.norms(h_new)
        sparsity = theory.hoyer_from_norms(l1, l2, h.shape[1])
        silenced = l2 == 0
        valid = (l2 > 0) & (l2n > 0)
        # S(h') > S(h)  <=>  |h'|_1 |h|_2 < |h|_1 |h'|_2 (eq. 10)
        sparser = (l1n * l2 < l1 * l2n) & valid

        if cfg.loss == "linear":
            drive_theorem = drive
        else:
            drive_theorem = theory.kernel_drive(kernel, theorem_weights(cfg.mode, batch, n_pos, g), h)
        p, q_scaled = theory.kernel_sums(drive_theorem, h)
        predicted_theorem = theory.kernel_prediction(p, q_scaled, l1, g)
        if drive_theorem is drive and self.optimizer.is_plain_sgd and not cfg.weight_decay:
            # dz = -2 lr E: the generalised first-order changes are the theorem's sums, scaled
            fo_l2_scaled = q_scaled * (-2.0 * cfg.lr)
            predicted_general = predicted_theorem
        else:
            predicted_general, _fo_l1, fo_l2_scaled = theory.change_prediction(dz, h, l1, g)
        sides = theory.theorem2_sides if cfg.mode == "ff" else theory.theorem1_sides
        lhs, rhs = sides(p, q_scaled, l1, l2)

        safe_l2 = torch.where(l2 > 0, l2, torch.ones_like(l2))
        fo_dl2 = fo_l2_scaled / safe_l2
        actual_dl2 = l2n - l2
        vf = valid.to(h.dtype)
        fo_total = (fo_dl2.abs() * vf).sum()
        remainder = ((actual_dl2 - fo_dl2).abs() * vf).sum() / fo_total
        flips = theory.sign_flips_between(h > 0, h_new > 0)
        newly_silenced = (l2 > 0) & (l2n == 0)

        rows = torch.stack([
            g, sparsity, silenced.to(g.dtype), valid.to(g.dtype), sparser.to(g.dtype),
            predicted_theorem.to(g.dtype), predicted_general.to(g.dtype), lhs, rhs,
        ])
        scalars = torch.stack([flips.to(g.dtype), remainder, newly_silenced[:n_pos].sum().to(g.dtype),
                               newly_silenced[n_pos:].sum().to(g.dtype)])
        rows_np = rows.cpu().numpy().astype(np.float64)
        scalars_np = scalars.cpu().numpy().astype(np.float64)
        if cfg.mode == "ff":
            groups = {
                "pos": group_from_rows("pos", rows_np[:, :n_pos], int(scalars_np[2])),
                "neg": group_from_rows("neg", rows_np[:, n_pos:], int(scalars_np[3])),
            }
        else:
            groups = {"all": group_from_rows("all", rows_np, int(scalars_np[2]))}
        t2 = time.perf_counter()
        return MetricsRecord(
            iteration=self.iteration,
            epoch=epoch,
            mode=cfg.mode,
            loss_name=cfg.loss,
            loss=loss_value,
            groups=groups,
            sign_flip=float(scalars_np[0]),
            l2_remainder=float(scalars_np[1]),
            step_time=step_time,
            metrics_time=t2 - t1,
        )
