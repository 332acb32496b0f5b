"""Hoyer sparsity stays in [0, 1] exactly at its ends, in float32 and float64 (report eq. 4)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine import theory
from engine.config import Config
from engine.trainer import Trainer
from fftui.headless.summary import rounding_note

DTYPES = (torch.float32, torch.float64)
WIDTHS = (2, 3, 7, 128, 2000)
VALUES = (0.37, 1.0, 3.3e-3, 123.456, 7e-20)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", WIDTHS)
def test_one_active_unit_is_exactly_one_and_all_equal_exactly_zero(dtype, n):
    for v in VALUES:
        one = torch.zeros(1, n, dtype=dtype)
        one[0, n // 2] = v
        assert theory.hoyer_sparsity(one).item() == 1.0, (n, v)
        assert theory.hoyer_sparsity(torch.full((1, n), v, dtype=dtype)).item() == 0.0, (n, v)
    assert math.isnan(theory.hoyer_sparsity(torch.zeros(1, n, dtype=dtype)).item())


@pytest.mark.parametrize("dtype", DTYPES)
def test_from_rounded_norms_the_ends_are_exact_with_the_unit_count(dtype):
    """The host derives S from the device's rounded sums; with the active-unit count and the
    dtype's resolution the ends come out exact, and nothing falls outside [0, 1]."""
    resolution = 64 * torch.finfo(dtype).eps
    for n in WIDTHS:
        for v in VALUES:
            rows = torch.zeros(2, n, dtype=dtype)
            rows[0] = v
            rows[1, 0] = v
            l1 = rows.sum(dim=1)
            l2 = torch.sqrt((rows * rows).sum(dim=1))  # as the host does: the root of the summed squares
            units = (rows > 0).sum(dim=1)
            s = theory.hoyer_from_norms(l1.numpy(), l2.numpy(), n, units.numpy(), resolution)
            assert s.tolist() == [0.0, 1.0], (n, v)


@pytest.mark.parametrize("dtype", DTYPES)
def test_random_rows_lie_in_the_interval_and_match_float64(dtype):
    gen = torch.Generator().manual_seed(5)
    n = 64
    h = torch.relu(torch.randn(4000, n, generator=gen, dtype=torch.float64))
    h[:500] = 0.0
    h[:500, 3] = torch.rand(500, generator=gen, dtype=torch.float64) + 0.1   # one active unit
    h[500:1000] = torch.rand(500, 1, generator=gen, dtype=torch.float64) + 0.1  # all equal
    h = h[(h > 0).any(dim=1)]
    s = theory.hoyer_sparsity(h.to(dtype)).double()
    assert bool(((s >= 0) & (s <= 1)).all())
    # float64 recomputation, a literal loop over rows
    for i in range(0, h.shape[0], 97):
        row = h[i][h[i] > 0]
        ratio = float(row.sum() / row.norm())
        expected = (math.sqrt(n) - ratio) / (math.sqrt(n) - 1)
        assert s[i].item() == pytest.approx(expected, abs=1e-5 if dtype == torch.float32 else 1e-12)
    assert (s[:500] == 1.0).all() and (s[500:1000] == 0.0).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_width_2_descent_run_keeps_every_mean_in_the_interval(sample, dtype):
    """Width 2 makes one-unit rows common: the batch means once read 1.0000000209978805."""
    cfg = Config(mode="descent", width=2, batch_size=64, iters=60, dtype=dtype, seed=3)
    trainer = Trainer(cfg, sample)
    values = np.array([trainer.step().groups["all"].sparsity for _ in range(60)])
    values = values[np.isfinite(values)]
    assert values.size > 0 and values.min() >= 0.0 and values.max() <= 1.0


def test_float64_is_never_advised():
    """The outcome is measured in float64 in every run: no dtype would decide more of them."""
    group = {"unresolved": 3.0, "valid": 12.0}
    note = rounding_note(group)
    assert "25.0 % of valid samples changed within rounding" in note and "float64" not in note
