"""The host side of the metrics: packed device vectors (engine/layout.py) in, a chunk of columns
(engine/chunk.py) out, every metric of engine/metrics.py derived for a whole run of batches at
once, in float64 numpy arrays with one row per batch.

Arithmetic and comparisons give the same bits in numpy as in torch. Two kinds of step are left to
torch, which the recorded reference values were made with: the square roots (torch's float64 sqrt
is MKL's, within an ulp but not always numpy's correctly rounded one) and the four float sums
(goodness and sparsity per group, the two sums of the l2 remainder), whose order is torch's. Both
give each element and each row the same bits for any number of rows and threads, so a chunk derives
exactly as its batches would one by one."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from . import theory
from .chunk import MetricsChunk
from .layout import PackMeta

RESOLUTION_EPS = 64  # a relative change below 64 machine epsilons of the packed dtype is unresolved


def _row_sums(a: np.ndarray) -> np.ndarray:
    """Sums over the last axis in torch's order (see the module's note)."""
    return torch.from_numpy(np.ascontiguousarray(a)).sum(-1).numpy()


def _sqrt(a: np.ndarray) -> np.ndarray:
    """Elementwise square roots as torch takes them (see the module's note)."""
    return torch.from_numpy(a).sqrt().numpy()


def derive(block: np.ndarray, meta: PackMeta, iterations: Sequence[int], epochs: Sequence[int],
           step_time: float, metrics_time: float) -> MetricsChunk:
    """The chunk of r batches of one layout; block holds their packed vectors, one per row (r x size)."""
    r = block.shape[0]
    groups = meta.groups
    n_groups = len(groups)
    per = meta.batch // n_groups
    resolution = RESOLUTION_EPS * float(np.finfo(block.dtype).eps)
    q = meta.layout.unpack(block)
    g, l1, g_after, l1_after, p, q_scaled = (q[k] for k in ("goodness", "l1", "goodness_after", "l1_after",
                                                              "p", "q_scaled"))
    units, units_after, units_both, shared = (q[k] for k in ("units", "units_after", "units_both", "shared"))
    with np.errstate(all="ignore"):
        l2, l2_after = _sqrt(np.stack([g, g_after]))
        active = l2 > 0
        alive_after = l2_after > 0
        valid = active & alive_after
        # Ties in exact arithmetic, which rounding must not decide: one active unit (S = 1), or no unit
        # shared with another sample (the theorem's sides are equal; a gradient step scales h_i on its units).
        single = theory.one_active_unit(units)
        alone = theory.shares_no_unit(shared, units) & active
        scaled = alone & meta.gradient_step
        same_units = (units_after == units) & (units_both == units)
        unchanged = (single & theory.one_active_unit(units_after)) | (scaled & same_units)
        counted = valid & ~unchanged
        # S(h') > S(h)  <=>  |h'|_1 |h|_2 < |h|_1 |h'|_2 (eq. 10)
        sparser = (l1_after * l2 < l1 * l2_after) & counted
        # A change of |h|_1/|h|_2 within rounding of the float sums is no measurement (not a tie)
        unresolved = theory.below_resolution(l1, l2, l1_after, l2_after, resolution) & counted
        sparsity = theory.hoyer_from_norms(l1, l2, meta.width)
        predicted_theorem = theory.kernel_prediction(p, q_scaled, l1, g) & active & ~(single | alone)
        if meta.fo_scale is not None:
            fo_l2_scaled = q_scaled * meta.fo_scale
            predicted_general = predicted_theorem
        else:
            fo_l2_scaled = q["fo_l2_scaled"]
            predicted_general = (theory.predicts_sparser(q["fo_dl1"], fo_l2_scaled, l1, g) & active
                                 & ~(single | scaled))
        sides = theory.theorem2_sides if meta.mode == "ff" else theory.theorem1_sides
        lhs, rhs = sides(p, q_scaled, l1, l2)
        remainder_sums = _row_sums(np.stack(theory.l2_remainder_terms(l2, l2_after, fo_l2_scaled, valid), axis=1))
        remainder = remainder_sums[:, 0] / remainder_sums[:, 1]

        # per group: counts of flags, and the float sums
        pt_valid, pg_valid = predicted_theorem & valid, predicted_general & valid
        flags = np.stack([active, active & ~alive_after, valid, sparser, pt_valid, pg_valid,
                          ~(predicted_theorem ^ sparser) & valid, ~(predicted_general ^ sparser) & valid,
                          unresolved, predicted_theorem, predicted_general], axis=1)
        counts = np.count_nonzero(flags.reshape(r, flags.shape[1], n_groups, per), axis=3)
        sums = _row_sums(np.stack([g, np.where(active, sparsity, 0.0)], axis=1).reshape(r, 2, n_groups, per))
        n_active, n_valid = counts[:, 0], counts[:, 2]
        ratios = counts[:, 3:8] / n_valid[:, None]  # NaN where nothing is valid
        of_batch = counts[:, [3, 9, 10]] / per
        columns = {
            "iteration": iterations, "epoch": epochs, "mode": meta.mode, "loss_name": meta.loss_name,
            "loss": q["loss"],
            "sign_flip": theory.sign_flips_from_counts(units, units_after, units_both, meta.batch * meta.width),
            "l2_remainder": remainder,
            "step_time": np.full(r, step_time), "metrics_time": np.full(r, metrics_time),
            "count": np.full((r, n_groups), per),
            "goodness": sums[:, 0] / per,
            "sparsity": sums[:, 1] / n_active,
            "silenced": 1.0 - n_active / per,
            "newly_silenced": counts[:, 1],
            "valid": n_valid,
            "sparser": ratios[:, 0], "theorem": ratios[:, 1], "general": ratios[:, 2],
            "agree_theorem": ratios[:, 3], "agree_general": ratios[:, 4],
            "unresolved": counts[:, 8],
            "sparser_of_batch": of_batch[:, 0], "theorem_of_batch": of_batch[:, 1],
            "general_of_batch": of_batch[:, 2],
            "lhs": lhs.astype(np.float32).reshape(r, n_groups, per),
            "rhs": rhs.astype(np.float32).reshape(r, n_groups, per),
            "actual": np.where(valid, sparser.astype(np.int8), np.int8(-1)).reshape(r, n_groups, per),
            "predicted_theorem": predicted_theorem.reshape(r, n_groups, per),
            "predicted_general": predicted_general.reshape(r, n_groups, per),
        }
    return MetricsChunk(groups, per, columns)


def derive_runs(flat: np.ndarray, metas: Sequence[PackMeta], iterations: Sequence[int], epochs: Sequence[int],
                step_time: float, metrics_time: float) -> list[MetricsChunk]:
    """The chunks of consecutive packed vectors laid end to end in flat, one meta, iteration and
    epoch per batch: each run of batches with equal metas is derived together. ValueError when
    flat's size is not what the metas describe."""
    flat = np.asarray(flat)
    runs: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(metas) + 1):
        if i == len(metas) or not (metas[i] is metas[start] or metas[i] == metas[start]):
            runs.append((start, i))
            start = i
    expected = sum(metas[a].layout.size * (b - a) for a, b in runs)
    if expected != flat.size:
        raise ValueError(f"packed metrics hold {flat.size} values, the batches describe {expected}")
    out, offset = [], 0
    for a, b in runs:
        size = metas[a].layout.size * (b - a)
        block = flat[offset:offset + size].reshape(b - a, -1)
        out.append(derive(block, metas[a], iterations[a:b], epochs[a:b], step_time, metrics_time))
        offset += size
    return out
