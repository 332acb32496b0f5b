"""Every outcome of a run against a float64 recomputation from the same weights.

For each batch the weights are copied before and after the step; h = ReLU(X W^T) and h' = ReLU(X W'^T)
are recomputed in float64 from them (independently of the engine's measurement), the norms are
taken in two passes and S(h') > S(h) decided as |h'|_1 |h|_2 < |h|_1 |h'|_2 in float64; where that
comparison's own margin is below 1e-9 of its sides, the decision is made exactly with Python
fractions from the float64 pre-activations. Samples the engine counts as exact ties (one active
unit before and after; no unit shared with another sample under a gradient step, active units
unchanged; an exactly zero step) are reported apart.

    python bench/outcome_check.py --preset fig3 [--iters N] [--dtype float32] [--data sample]
"""
from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.data import load_dataset  # noqa: E402
from engine.presets import preset_config  # noqa: E402
from engine.trainer import Trainer  # noqa: E402


def exact_sparser(z: np.ndarray, z_after: np.ndarray) -> bool:
    """S(h') > S(h) in exact rational arithmetic from float64 pre-activations of one sample:
    |h'|_1^2 |h|_2^2 < |h|_1^2 |h'|_2^2."""
    h = [Fraction(float(v)) for v in z if v > 0]
    h2 = [Fraction(float(v)) for v in z_after if v > 0]
    l1, l1b = sum(h, Fraction(0)), sum(h2, Fraction(0))
    g, gb = sum((v * v for v in h), Fraction(0)), sum((v * v for v in h2), Fraction(0))
    return l1b * l1b * g < l1 * l1 * gb


def truth(z: torch.Tensor, z_after: torch.Tensor) -> tuple[np.ndarray, np.ndarray, int]:
    """(valid, sparser) per sample from float64 pre-activations, and how many needed fractions."""
    h, hb = z.relu(), z_after.relu()
    l1, l2 = h.sum(1), h.norm(dim=1)
    l1b, l2b = hb.sum(1), hb.norm(dim=1)
    valid = ((l2 > 0) & (l2b > 0)).numpy()
    left, right = (l1b * l2).numpy(), (l1 * l2b).numpy()
    sparser = left < right
    close = valid & (np.abs(left - right) <= 1e-9 * np.maximum(left, right))
    for i in np.flatnonzero(close):
        sparser[i] = exact_sparser(z[i].numpy(), z_after[i].numpy())
    return valid, sparser, int(close.sum())


def known_ties(z: torch.Tensor, z_after: torch.Tensor, gradient_step: bool, zero: bool) -> np.ndarray:
    """The samples the engine counts as exact ties, found from the float64 masks."""
    m, mb = (z > 0).double(), (z_after > 0).double()
    units, units_after = m.sum(1), mb.sum(1)
    single = (units == 1) & (units_after == 1)
    alone = (m @ m.sum(0)) == units
    same = (m == mb).all(1)
    tie = single | (alone & same & gradient_step & (units > 0))
    return (tie | zero).numpy()


def check(trainer: Trainer, iters: int) -> dict[str, int]:
    """Run `iters` batches; count valid samples, flagged, wrong among unflagged and among flagged."""
    out = dict(valid=0, flagged=0, wrong_unflagged=0, wrong_flagged=0, ties=0, exact_checks=0, zero_steps=0)
    for _ in range(iters):
        with torch.inference_mode():
            x, n_pos = trainer.next_batch()
            w0 = trainer.w.clone()
            step = trainer.train_step(x, n_pos)
            w1 = trainer.w.clone()
            values = trainer.measure(x, n_pos, step)
        x64 = x.double()
        z, z_after = x64 @ w0.double().T, x64 @ w1.double().T
        valid, sparser, exact = truth(z, z_after)
        zero = bool(torch.equal(w0, w1))
        ties = known_ties(z, z_after, trainer.plan.gradient_step, zero) & valid
        measured = values["sparser_measured"].numpy() > 0.5
        flagged = values["undecided"].numpy() > 0.5
        counted = valid & ~ties
        out["valid"] += int(valid.sum())
        out["ties"] += int(ties.sum())
        out["exact_checks"] += exact
        out["zero_steps"] += int(zero)
        out["flagged"] += int((flagged & counted).sum())
        wrong = (measured != sparser) & counted
        out["wrong_unflagged"] += int((wrong & ~flagged).sum())
        out["wrong_flagged"] += int((wrong & flagged).sum())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fig3")
    parser.add_argument("--iters", type=int, default=0, help="batches (0: the preset's whole run)")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--data", default="sample")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    cfg = preset_config(args.preset, dtype=args.dtype)
    dataset = load_dataset(args.data, device="cpu", **({"data_dir": args.data_dir} if args.data_dir else {}))
    trainer = Trainer(cfg, dataset)
    iters = args.iters or trainer.total_iters or 100
    t0 = time.perf_counter()
    out = check(trainer, iters)
    share = out["flagged"] / max(1, out["valid"])
    print(f"{args.preset} {args.dtype} {args.data}, {iters} batches in {time.perf_counter() - t0:.0f} s: "
          f"{out['valid']:,} valid samples, {out['flagged']:,} flagged ({100 * share:.4f} %), "
          f"{out['wrong_unflagged']} wrong among unflagged, {out['wrong_flagged']} among flagged; "
          f"{out['ties']:,} exact ties, {out['zero_steps']} zero steps, {out['exact_checks']} decided by fractions")


if __name__ == "__main__":
    main()
