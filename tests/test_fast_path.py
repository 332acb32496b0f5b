"""The optimised path (Z' from the batch kernel, fused update, packed metrics) against the
straightforward one (dW as a matrix, a second pass through W'). Tolerance: float64, relative 1e-9
on every number; per-sample outcomes and predictions identical."""
import numpy as np
import pytest

from engine.config import Config
from engine.trainer import Trainer

CASES = [
    dict(mode="ff", loss="linear"),
    dict(mode="ff", loss="logistic", theta=1.0),
    dict(mode="descent", loss="linear", weight_decay=0.01),
]


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_fast_path_equals_straightforward(small_sample, kw):
    cfg = Config(width=300, batch_size=32, dtype="float64", lr=0.01, seed=4, **kw)
    fast = Trainer(cfg, small_sample, fast=True)
    slow = Trainer(cfg, small_sample, fast=False)
    for _ in range(5):
        a, b = fast.step(), slow.step()
        assert a.loss == pytest.approx(b.loss, rel=1e-9)
        assert a.sign_flip == pytest.approx(b.sign_flip, rel=1e-9, abs=1e-12)
        assert a.l2_remainder == pytest.approx(b.l2_remainder, rel=1e-6)
        for name in a.groups:
            ga, gb = a.groups[name], b.groups[name]
            for field in ("goodness", "sparsity", "silenced", "sparser", "theorem", "general",
                          "agree_theorem", "agree_general"):
                assert getattr(ga, field) == pytest.approx(getattr(gb, field), rel=1e-9, nan_ok=True), field
            np.testing.assert_allclose(ga.lhs, gb.lhs, rtol=1e-6)
            np.testing.assert_allclose(ga.rhs, gb.rhs, rtol=1e-6)
            np.testing.assert_array_equal(ga.actual, gb.actual)
            np.testing.assert_array_equal(ga.predicted_general, gb.predicted_general)
    np.testing.assert_allclose(fast.w.numpy(), slow.w.numpy(), rtol=1e-9, atol=1e-12)
