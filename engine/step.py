"""One batch's tensor work: the step plan decided once per configuration, the training step and the
quantities the metrics need from it (packed by name, engine/layout.py).

Nothing here touches the host: a CUDA graph captures these functions as they are."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from . import theory
from .config import Config, theorem_is_general
from .layer import Optimizer, forward, goodness, gradient, loss_and_weights

Tensor = torch.Tensor


@dataclass(frozen=True)
class StepPlan:
    """How a batch is trained and measured under one configuration; made when the configuration
    (or the optimiser) changes, never per batch.

    gradient_step: the optimiser's change is dW = -lr (grad + wd W) (SGD without momentum).
    fused_update: gradient step without weight decay on the fast path: W' = W - 2 lr (c H)^T X in one
      fused product, and dW is never formed as a matrix.
    theorem_scale: s with dZ = s E when the applied change is the theorem's direction (fused update,
      linear loss): the generalised first-order changes are s (P, |h|_2 Q), not packed; else None.
    captured: full batches run as one captured step (CUDA graph) instead of eagerly.
    fast: False takes the straightforward path (dW as a matrix, a second pass through W') that the
      tests compare the shortcuts with."""

    mode: str
    loss: str
    lr: float
    weight_decay: float
    theta: float
    inputs: int
    fast: bool
    gradient_step: bool
    fused_update: bool
    theorem_scale: float | None
    captured: bool

    def post_step_from_kernel(self, batch: int) -> bool:
        """Whether the post-step pre-activations come from the batch kernel, Z' = Z - 2 lr E - lr wd Z
        (a gradient step's change of Z), which is cheaper than a pass through W' while the
        batch is smaller than the input, and needed when dW is never formed."""
        return self.fused_update or (self.fast and self.gradient_step and batch < self.inputs)


def plan_step(cfg: Config, optimizer: Optimizer, *, inputs: int, fast: bool, graphs: bool,
              device_type: str) -> StepPlan:
    """The plan for a configuration, its optimiser and the input size (pixels a sample)."""
    gradient_step = optimizer.is_gradient_step
    fused = fast and gradient_step and not cfg.weight_decay
    return StepPlan(
        mode=cfg.mode, loss=cfg.loss, lr=cfg.lr, weight_decay=cfg.weight_decay, theta=cfg.theta,
        inputs=inputs, fast=fast, gradient_step=gradient_step, fused_update=fused,
        theorem_scale=-2.0 * cfg.lr if fused and theorem_is_general(cfg) else None,
        captured=graphs and fused and device_type == "cuda",
    )


# The outcome (sparser or not) is measured in float64 whatever the run's dtype: from the run's own
# weights before and after the step and its inputs, all exact in float64 (theory.sparsening_sign).
MEASURE_DTYPE = torch.float64


class StepTensors(NamedTuple):
    """What one training step leaves for the metrics (B samples, n units, m inputs)."""

    z: Tensor            # B x n pre-activations before the step
    h: Tensor            # B x n activations ReLU(z)
    g: Tensor            # B goodness |h|_2^2
    loss: Tensor         # the batch loss (a scalar)
    c: Tensor            # B loss weights dL/dg
    dw: Tensor | None    # the applied weight change, None for the fused update
    w: Tensor | None = None        # the weights, updated in place (W' once the step is taken)
    z_wide: Tensor | None = None   # B x n: X W^T before the step in MEASURE_DTYPE (None: not measured)
    w_norm: Tensor | None = None   # n: |W_j|_2 before the step, in MEASURE_DTYPE
    zero: Tensor | None = None     # scalar bool: the applied change was exactly zero (W' = W)


def train_math(plan: StepPlan, w: Tensor, optimizer: Optimizer, x: Tensor, n_pos: int,
               signs: Tensor, measured: bool = True) -> StepTensors:
    """Forward, loss weights, closed-form gradient and the optimiser's weight change, applied to w
    in place. signs: the theorem's c_k for this batch layout (layer.theorem_weights). measured: also
    keep what `measure` needs from before the update (X W^T and |W_j|_2 in MEASURE_DTYPE, whether
    the change was exactly zero)."""
    z, h = forward(w, x)
    z_wide = w_norm = None
    if measured:
        w_wide = w.to(MEASURE_DTYPE)
        z_wide = z if z.dtype == MEASURE_DTYPE else x.to(MEASURE_DTYPE) @ w_wide.T
        w_norm = torch.linalg.vector_norm(w_wide, dim=1)
    g = goodness(h)
    loss, c = loss_and_weights(plan.mode, plan.loss, g, n_pos, plan.theta, signs)
    if plan.fused_update:
        # W' = W - lr * 2 (c H)^T X in one fused product; dW is never needed as a matrix
        hc = h * c.unsqueeze(1)
        w.addmm_(hc.T, x, alpha=-2.0 * plan.lr)
        dw = None
        zero = (hc == 0).all() if measured else None  # a zero addend leaves W exactly as it was
    else:
        dw = optimizer.delta(gradient(h, x, c), w)
        w.add_(dw)
        zero = (dw == 0).all() if measured else None
    return StepTensors(z, h, g, loss, c, dw, w, z_wide, w_norm, zero)


def measure(plan: StepPlan, x: Tensor, step: StepTensors, signs: Tensor) -> dict[str, Tensor]:
    """What the metrics need from the B x n activations, by the names of engine/layout.py's PACKED:
    the loss, per sample |h|^2, |h|_1, |h'|^2, |h'|_1, P, |h|_2 Q (and the generalised first-order
    changes when they are not a multiple of P and Q), the numbers of units active before, after and
    in both, m_i . sum_k m_k, and the measured outcome (measured_outcome: sparser or not per sample,
    undecided where rounding cannot tell, whether the step was exactly zero). step must come from
    train_math with measured=True. signs: the theorem's c_k for this batch layout."""
    lr = plan.lr
    kernel = theory.input_kernel(x)
    drive = theory.kernel_drive(kernel, step.c, step.h)
    dz = None  # the applied pre-activation change, where it is formed
    if plan.post_step_from_kernel(x.shape[0]):
        if plan.weight_decay:
            dz = drive.mul(-2.0 * lr).add_(step.z, alpha=-lr * plan.weight_decay)
            h_new = torch.add(step.z, dz).relu_()
        else:
            h_new = torch.add(step.z, drive, alpha=-2.0 * lr).relu_()
    else:
        assert step.dw is not None  # only the fused update leaves no dW, and it takes the kernel path
        dz = x @ step.dw.T
        h_new = torch.add(step.z, dz).relu_()
    mask = theory.active_mask(step.h)
    drive_theorem = drive if plan.loss == "linear" else theory.kernel_drive(kernel, signs, step.h)
    p, q_scaled = theory.kernel_sums(drive_theorem, step.h, mask)
    values = {"loss": step.loss, "goodness": step.g, "l1": step.h.sum(dim=1),
              "goodness_after": goodness(h_new), "l1_after": h_new.sum(dim=1), "p": p, "q_scaled": q_scaled}
    if plan.theorem_scale is None:
        if dz is None:  # the fused update with other loss weights than the theorem's: dz = -2 lr E
            dz = drive.mul(-2.0 * lr)
        values["fo_dl1"], values["fo_l2_scaled"] = theory.first_order_changes(dz, step.h, mask)
    mask_new = theory.active_mask(h_new)
    # Active units before, after and in both (the sign flips), and m_i . sum_k m_k, which equals the
    # first count exactly when a sample shares no unit with another: they find the samples whose
    # outcome is a tie in exact arithmetic (one active unit, or no shared unit), which float sums
    # would otherwise decide by rounding
    values["units"] = mask.sum(dim=1)
    values["units_after"] = mask_new.sum(dim=1)
    values["units_both"] = torch.linalg.vecdot(mask, mask_new)
    values["shared"] = torch.mv(mask, mask.sum(dim=0))
    values.update(measured_outcome(x, step))
    return values


def measured_outcome(x: Tensor, step: StepTensors) -> dict[str, Tensor]:
    """The outcome of the step for each sample as a measurement: h = ReLU(X W^T) and h' = ReLU(X W'^T)
    recomputed in MEASURE_DTYPE from the run's own weights before and after the step (exact in it),
    S(h') > S(h) decided by theory.sparsening_sign from the changes of the norms, and flagged
    undecided only where its rounding bound cannot decide the sign. The bound on each pre-activation
    is gamma_m |W_j|_2 |x_i|_2 (a dot product of m terms, Cauchy-Schwarz on sum |W_jk x_ik|).
    Returns "sparser_measured", "undecided" (0/1 per sample) and "zero_step" (0/1 for the batch),
    in x's dtype."""
    assert step.w is not None and step.z_wide is not None and step.w_norm is not None and step.zero is not None
    x_wide = x.to(MEASURE_DTYPE)
    w_wide = step.w.to(MEASURE_DTYPE)
    z_after = x_wide @ w_wide.T
    row_scale = torch.linalg.vector_norm(x_wide, dim=1).mul_(theory.dot_error_scale(x.shape[1], MEASURE_DTYPE))
    sparser, undecided = theory.sparsening_outcome(step.z_wide, z_after, row_scale, step.w_norm,
                                                   torch.linalg.vector_norm(w_wide, dim=1))
    return {"sparser_measured": sparser.to(x.dtype), "undecided": undecided.to(x.dtype),
            "zero_step": step.zero.to(x.dtype)}
