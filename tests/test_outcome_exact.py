"""The outcome S(h') > S(h) is a measurement: decided from the changes of the norms with a rounding
bound (engine/theory.py sparsening_sign), checked against exact rational arithmetic on constructed
near-ties and against a float64 recomputation of whole float32 runs from their own weights."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from engine import theory
from engine.config import Config
from engine.presets import preset_config
from engine.trainer import Trainer
from fftui.headless.summary import rounding_note


def exact_f(z: np.ndarray, z_after: np.ndarray) -> Fraction:
    """F = |h'|_1^2 |h|_2^2 - |h|_1^2 |h'|_2^2 exactly (same sign as the F of sparsening_sign)."""
    h = [Fraction(float(v)) for v in z if v > 0]
    hb = [Fraction(float(v)) for v in z_after if v > 0]
    l1, l1b = sum(h, Fraction(0)), sum(hb, Fraction(0))
    g, gb = sum((v * v for v in h), Fraction(0)), sum((v * v for v in hb), Fraction(0))
    return l1b * l1b * g - l1 * l1 * gb


def near_ties(rows: int, n: int, seed: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows whose step is a scaling (an exact tie) plus a perturbation from 1e-3 down to 1e-17 of it."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(rows, n, generator=gen, dtype=torch.float64)
    scale = 1.0 + 1e-3 * torch.rand(rows, 1, generator=gen, dtype=torch.float64)
    tiny = torch.logspace(-3, -17, rows, dtype=torch.float64).unsqueeze(1)
    z_after = z * scale + tiny * torch.randn(rows, n, generator=gen, dtype=torch.float64)
    return z.to(dtype), z_after.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_bound_holds_and_decides_near_ties(dtype):
    """Exact pre-activations (err = 0): wherever the bound decides, the sign is the exact one, and
    the computed F is within the bound of the exact F (scaled to the computed one's units)."""
    z, z_after = near_ties(60, 50, 1, dtype)
    rows, units = torch.ones(z.shape[0], dtype=dtype), torch.zeros(z.shape[1], dtype=dtype)
    f, bound = theory.sparsening_sign(z, z_after, rows, units, units)
    sparser, undecided = theory.sparsening_outcome(z, z_after, rows, units, units)
    decided = 0
    for i in range(z.shape[0]):
        exact = exact_f(z[i].numpy(), z_after[i].numpy())
        h = [Fraction(float(v)) for v in z[i] if v > 0]
        # F of sparsening_sign is exact_f; |computed - exact| <= bound, in exact arithmetic
        assert abs(Fraction(float(f[i])) - exact) <= Fraction(float(bound[i])), i
        if not undecided[i]:
            decided += 1
            assert bool(sparser[i]) == (exact < 0), i
        assert h  # every row has active units
    assert 10 < decided < z.shape[0]  # the large perturbations are decided, the smallest are not


def test_an_exact_scaling_is_undecided_and_a_clear_change_is_not():
    z = torch.tensor([[1.0, 2.0, 0.5, -1.0], [1.0, 2.0, 0.5, -1.0]], dtype=torch.float64)
    z_after = torch.stack([z[0] * 2.0, torch.tensor([1.5, 2.0, 0.0, -1.0], dtype=torch.float64)])
    rows, units = torch.ones(2, dtype=z.dtype), torch.zeros(4, dtype=z.dtype)
    sparser, undecided = theory.sparsening_outcome(z, z_after, rows, units, units)
    assert undecided.tolist() == [True, False]   # 2h is an exact tie; a unit switched off is sparser
    assert bool(sparser[1])


def test_errors_in_the_pre_activations_are_covered():
    """Pre-activations known only within err: for computed values moved by up to err from exact
    ones, |computed F - exact F| stays within the bound, units near zero included."""
    gen = torch.Generator().manual_seed(3)
    z, z_after = near_ties(40, 30, 2)
    z[:, :3] = 1e-9 * torch.randn(40, 3, generator=gen, dtype=torch.float64)  # units at the kink
    rows = 10.0 ** -torch.randint(6, 10, (40,), generator=gen).double()  # errors from 1e-6 to 1e-9 a row
    units = torch.rand(30, generator=gen, dtype=torch.float64) + 0.5
    err = rows.unsqueeze(1) * units
    moved = z + err * (2 * torch.rand(z.shape, generator=gen, dtype=torch.float64) - 1)
    moved_after = z_after + err * (2 * torch.rand(z.shape, generator=gen, dtype=torch.float64) - 1)
    f, bound = theory.sparsening_sign(moved, moved_after, rows, units, units)
    for i in range(z.shape[0]):
        assert abs(Fraction(float(f[i])) - exact_f(z[i].numpy(), z_after[i].numpy())) <= Fraction(float(bound[i])), i


def _truth(z: torch.Tensor, z_after: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Valid and sparser from float64 pre-activations, norms in two passes; near-equal sides by fractions."""
    h, hb = z.relu(), z_after.relu()
    l1, l2, l1b, l2b = h.sum(1), h.norm(dim=1), hb.sum(1), hb.norm(dim=1)
    valid = ((l2 > 0) & (l2b > 0)).numpy()
    left, right = (l1b * l2).numpy(), (l1 * l2b).numpy()
    sparser = left < right
    for i in np.flatnonzero(valid & (np.abs(left - right) <= 1e-9 * np.maximum(left, right))):
        sparser[i] = exact_f(z[i].numpy(), z_after[i].numpy()) < 0
    return valid, sparser


def _ties(z: torch.Tensor, z_after: torch.Tensor, gradient_step: bool) -> np.ndarray:
    """The exact ties the engine knows combinatorially (engine/theory.py one_active_unit,
    shares_no_unit), from the float64 masks."""
    m, mb = (z > 0).double(), (z_after > 0).double()
    units, units_after = m.sum(1), mb.sum(1)
    single = (units == 1) & (units_after == 1)
    alone = ((m @ m.sum(0)) == units) & (m == mb).all(1) & gradient_step
    return (single | alone).numpy()


@pytest.mark.parametrize("preset", ["fig3", "fig2"])
def test_float32_outcomes_equal_a_float64_recomputation(sample, preset):
    trainer = Trainer(preset_config(preset, dtype="float32"), sample)
    valid_total = flagged_total = compared = 0
    for _ in range(200):
        with torch.inference_mode():
            x, n_pos = trainer.next_batch()
            w0 = trainer.w.clone()
            step = trainer.train_step(x, n_pos)
            w1 = trainer.w.clone()
            values = trainer.measure(x, n_pos, step)
        x64 = x.double()
        z, z_after = x64 @ w0.double().T, x64 @ w1.double().T
        valid, sparser = _truth(z, z_after)
        counted = valid & ~_ties(z, z_after, trainer.plan.gradient_step)
        flagged = values["undecided"].numpy() > 0.5
        measured = values["sparser_measured"].numpy() > 0.5
        check = counted & ~flagged
        assert (measured[check] == sparser[check]).all()
        valid_total += int(valid.sum())
        flagged_total += int((flagged & counted).sum())
        compared += int(check.sum())
    assert compared > 0.9 * valid_total
    assert flagged_total < 0.001 * valid_total


def test_an_exactly_zero_step_is_named_and_never_unresolved(sample):
    cfg = Config(mode="descent", loss="logistic", theta=1e4, dtype="float64", width=64, batch_size=32,
                 iters=3, seed=2)
    trainer = Trainer(cfg, sample)
    w0 = trainer.w.clone()
    for _ in range(3):
        group = trainer.step().groups["all"]
        assert group.valid > 0 and group.zero_step == group.valid and group.unresolved == 0
        assert group.sparser == 0.0
    assert torch.equal(trainer.w, w0)  # the step was exactly zero indeed
    note = rounding_note({"valid": 32.0, "zero_step": 32.0, "unresolved": 0.0})
    assert "the step was exactly zero for 100.0 % of valid samples" in note
    assert "float64" not in note and "within rounding" not in note


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_per_sample_sides_are_stored_in_the_runs_dtype(sample, tmp_path, monkeypatch, dtype):
    """LHS and RHS as the run computed them: a float64 run's are not rounded to float32."""
    from engine.store import RunReader, RunWriter, claim_run_folder

    monkeypatch.setenv("FFTUI_DATA_DIR", str(tmp_path / "data"))
    cfg = Config(mode="descent", width=32, batch_size=16, iters=3, seed=4, dtype=dtype)
    trainer = Trainer(cfg, sample, chunk=2)
    chunks = []
    while trainer.iteration < 3:
        chunks += trainer.advance()
    chunks += trainer.flush()
    assert all(c.columns["lhs"].dtype == np.dtype(dtype) for c in chunks)
    folder = claim_run_folder("descent")
    writer = RunWriter(folder, {"config": cfg.as_dict()}, keep_samples="all").start()
    for chunk in chunks:
        assert writer.put(chunk)
    writer.close("finished")
    arrays = RunReader(folder).samples.at(2, "all")
    assert arrays is not None
    want = chunks[0].columns["lhs"] if chunks[0].first_iteration <= 2 <= chunks[0].last_iteration else None
    for name in ("lhs", "rhs"):
        assert arrays[name].dtype == np.dtype(dtype)
    if want is not None:
        k = 2 - chunks[0].first_iteration
        np.testing.assert_array_equal(arrays["lhs"], want[k, 0])
