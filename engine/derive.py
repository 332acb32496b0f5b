"""The host side of the metrics: packed device vectors (engine/layout.py) in, a chunk of columns
(engine/chunk.py) out, every metric of engine/metrics.py derived for a whole run of batches at
once, in float64 numpy arrays with one row per batch.

Arithmetic and comparisons give the same bits in numpy as in torch. Two kinds of step are left to
torch, which the recorded reference values were made with: the square roots (torch's float64 sqrt
is MKL's where torch has MKL, within an ulp but not always numpy's correctly rounded one) and the
four float sums (goodness and sparsity per group, the two sums of the l2 remainder), whose order is
torch's. Both give each element and each row the same bits for any number of rows and threads, so
a chunk derives exactly as its batches would one by one.

Those torch calls run in the calling thread only: in blocks below the sizes at which torch hands
work to its thread pool, with MKL told to use one thread in this thread meanwhile. Small operations
spread over threads cost several times more (on two busy cores, a hundred times more) than on one."""
from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache

import numpy as np
import torch

from . import theory
from .chunk import MetricsChunk
from .layout import PackMeta

RESOLUTION_EPS = 64  # Hoyer sparsity within 64 machine epsilons of 0 in an all-active row is 0

# torch hands an operation to its thread pool from these sizes on (elements): reductions from
# at::internal::GRAIN_SIZE, its MKL elementwise kernels (sqrt) from 2048
_SUM_BLOCK = 32768 - 1
_SQRT_BLOCK = 2048 - 1


@lru_cache(maxsize=1)
def _mkl_local_threads() -> Callable[[int], int] | None:
    """MKL's per-thread thread count setter in torch's own MKL, or None where torch has no MKL."""
    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        setter = lib.MKL_Set_Num_Threads_Local
    except (OSError, AttributeError):
        return None
    setter.argtypes = [ctypes.c_int]
    setter.restype = ctypes.c_int
    return setter


@contextlib.contextmanager
def one_mkl_thread() -> Iterator[None]:
    """MKL runs single-threaded in this thread inside the block (other threads keep their count)."""
    setter = _mkl_local_threads()
    if setter is None:
        yield
        return
    previous = setter(1)
    try:
        yield
    finally:
        setter(previous)


def _row_sums(a: np.ndarray) -> np.ndarray:
    """Sums over the last axis in torch's order (see the module's note), in blocks of whole rows."""
    a = np.ascontiguousarray(a)
    flat = a.reshape(-1, a.shape[-1])
    rows = max(1, _SUM_BLOCK // max(1, a.shape[-1]))
    parts = [torch.from_numpy(flat[i:i + rows]).sum(-1).numpy() for i in range(0, flat.shape[0], rows)]
    return (parts[0] if len(parts) == 1 else np.concatenate(parts)).reshape(a.shape[:-1])


def _sqrt(a: np.ndarray) -> np.ndarray:
    """Elementwise square roots as torch takes them (see the module's note), in blocks."""
    src = np.ascontiguousarray(a).reshape(-1)
    out = np.empty_like(src)
    for i in range(0, src.size, _SQRT_BLOCK):
        torch.sqrt(torch.from_numpy(src[i:i + _SQRT_BLOCK]), out=torch.from_numpy(out[i:i + _SQRT_BLOCK]))
    return out.reshape(a.shape)


def _group_counts(flags: dict[str, np.ndarray], groups: int, per: int) -> dict[str, np.ndarray]:
    """Per batch and group, how many samples each boolean flag (r x batch) holds: name -> (r, groups)."""
    stacked = np.stack(list(flags.values()), axis=1)  # r x flags x batch, one byte a sample
    counts = stacked.reshape(stacked.shape[0], len(flags), groups, per).view(np.uint8).sum(axis=3, dtype=np.uint32)
    return {name: counts[:, k].astype(np.int64) for k, name in enumerate(flags)}


Times = float | Sequence[float]


def derive(block: np.ndarray, meta: PackMeta, iterations: Sequence[int], epochs: Sequence[int],
           step_time: Times, metrics_time: Times) -> MetricsChunk:
    """The chunk of r batches of one layout; block holds their packed vectors, one per row (r x size).
    The times are seconds, one for all batches or one per batch. Every metric of engine/metrics.py
    is computed here, and only here."""
    r = block.shape[0]
    n_groups = len(meta.groups)
    per = meta.batch // n_groups
    resolution = RESOLUTION_EPS * float(np.finfo(block.dtype).eps)
    q = meta.layout.unpack(block)
    g, l1, g_after, l1_after, p, q_scaled = (q[k] for k in ("goodness", "l1", "goodness_after", "l1_after",
                                                              "p", "q_scaled"))
    units, units_after, units_both, shared = (q[k] for k in ("units", "units_after", "units_both", "shared"))
    by_group = (r, n_groups, per)
    with one_mkl_thread(), np.errstate(all="ignore"):
        l2, l2_after = _sqrt(g), _sqrt(g_after)
        active = l2 > 0
        alive_after = l2_after > 0
        valid = active & alive_after
        # Ties in exact arithmetic, which rounding must not decide: one active unit (S = 1), or no unit
        # shared with another sample (the theorem's sides are equal; a gradient step scales h_i on its units).
        single = theory.one_active_unit(units)
        alone = theory.shares_no_unit(shared, units) & active
        scaled = alone & meta.gradient_step
        same_units = (units_after == units) & (units_both == units)
        # an exactly zero step (W' = W) changes no sample: a tie, not a rounding question
        zero_step = (q["zero_step"] > 0.5)[:, None]
        unchanged = (single & theory.one_active_unit(units_after)) | (scaled & same_units) | zero_step
        counted = valid & ~unchanged
        # S(h') > S(h), measured on the device from the changes of the norms in float64
        # (theory.sparsening_sign); unresolved only where its rounding bound cannot tell the sign
        sparser = (q["sparser_measured"] > 0.5) & counted
        unresolved = (q["undecided"] > 0.5) & counted
        sparsity = theory.hoyer_from_norms(l1, l2, meta.width, units, resolution)
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
        remainder_terms, first_order_terms = theory.l2_remainder_terms(l2, l2_after, fo_l2_scaled, valid)

        counts = _group_counts({
            "active": active, "newly_silenced": active & ~alive_after, "valid": valid, "sparser": sparser,
            "theorem": predicted_theorem & valid, "general": predicted_general & valid,
            "agree_theorem": ~(predicted_theorem ^ sparser) & valid,
            "agree_general": ~(predicted_general ^ sparser) & valid,
            "unresolved": unresolved, "zero_step": valid & zero_step, "predicted_theorem": predicted_theorem,
            "predicted_general": predicted_general}, n_groups, per)
        n_active, n_valid = counts["active"], counts["valid"]
        columns = {
            "iteration": iterations, "epoch": epochs, "mode": meta.mode, "loss_name": meta.loss_name,
            "loss": q["loss"],
            "sign_flip": theory.sign_flips_from_counts(units, units_after, units_both, meta.batch * meta.width),
            "l2_remainder": _row_sums(remainder_terms) / _row_sums(first_order_terms),
            "step_time": np.zeros(r) + np.asarray(step_time, dtype=np.float64),
            "metrics_time": np.zeros(r) + np.asarray(metrics_time, dtype=np.float64),
            "count": np.full((r, n_groups), per),
            "goodness": _row_sums(g.reshape(by_group)) / per,
            "sparsity": _row_sums(np.where(active, sparsity, 0.0).reshape(by_group)) / n_active,
            "silenced": 1.0 - n_active / per,
            "newly_silenced": counts["newly_silenced"],
            "valid": n_valid,
            "unresolved": counts["unresolved"],
            "zero_step": counts["zero_step"],
            "sparser_of_batch": counts["sparser"] / per,
            "theorem_of_batch": counts["predicted_theorem"] / per,
            "general_of_batch": counts["predicted_general"] / per,
            "lhs": lhs.astype(block.dtype).reshape(by_group),  # in the run's dtype
            "rhs": rhs.astype(block.dtype).reshape(by_group),
            "actual": np.where(valid, sparser.astype(np.int8), np.int8(-1)).reshape(by_group),
            "predicted_theorem": predicted_theorem.reshape(by_group),
            "predicted_general": predicted_general.reshape(by_group),
        }
        for name in ("sparser", "theorem", "general", "agree_theorem", "agree_general"):
            columns[name] = counts[name] / n_valid  # NaN where nothing is valid
    return MetricsChunk(meta.groups, per, columns)


def derive_runs(flat: np.ndarray, metas: Sequence[PackMeta], iterations: Sequence[int], epochs: Sequence[int],
                step_time: Times, metrics_time: Times) -> list[MetricsChunk]:
    """The chunks of consecutive packed vectors laid end to end in flat, one meta, iteration and
    epoch (and possibly times) per batch: each run of batches with equal metas is derived together.
    ValueError when flat's size is not what the metas describe."""
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
        # a stack's meta (engine/stack.py StackMeta) derives its own layers
        derive_block = getattr(metas[a], "derive_block", None)
        if derive_block is not None:
            out.append(derive_block(block, iterations[a:b], epochs[a:b], _cut(step_time, a, b),
                                    _cut(metrics_time, a, b)))
            offset += size
            continue
        out.append(derive(block, metas[a], iterations[a:b], epochs[a:b], _cut(step_time, a, b),
                          _cut(metrics_time, a, b)))
        offset += size
    return out


def _cut(times: Times, a: int, b: int) -> Times:
    return times if isinstance(times, (int, float)) else times[a:b]
