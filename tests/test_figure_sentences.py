"""The Figure 1 sentences say what the numbers say: the width in use, how the ratio moves with N,
and both counts where the literal LHS < RHS and the product form differ."""
from __future__ import annotations

import numpy as np
import pytest

from engine.figure1 import InitResult
from fftui.headless.figures import summarise_init, trend

SIZES = [2, 4, 8, 16, 32]


@pytest.mark.parametrize("ratios,expected", [
    ([0.1, 0.2, 0.3, 0.4, 0.5], "rises at every step"),
    ([0.5, 0.9, 1.0, 1.0, 1.0], "rises up to N = 8, then stays at 100.0 %"),
    ([1.0, 1.0, 1.0, 1.0, 1.0], "stays at 100.0 % for every N"),
    ([0.5, 0.6, 0.6, 0.7, 0.8], "never falls, level from N = 4 to N = 8"),
    ([0.5, 0.6, 0.55, 0.7, 0.65], "falls from N = 4 to N = 8 (60.0 % to 55.0 %), from N = 16 to N = 32 "
                                  "(70.0 % to 65.0 %)"),
])
def test_the_trend_is_read_from_the_numbers(ratios, expected):
    assert trend(SIZES, ratios) == expected


def result(n_batch: int, satisfied: int, predicted: int, width: int = 64) -> InitResult:
    return InitResult(n_batch, np.zeros(10), np.zeros(10), satisfied, 0, 10, predicted_sparser=predicted, width=width)


def test_fig1a_names_the_width_in_use_and_both_counts():
    text = summarise_init([result(128, 9, 8, width=300)], "claim", "data")
    assert "n = 300" in text and "n = 128" not in text
    assert "9 satisfy Theorem 1's LHS < RHS" in text and "8 are predicted sparser by the product form" in text
    assert "predicted sparser" not in summarise_init([result(128, 9, 9)], "claim", "data")


def test_fig1b_never_claims_a_rise_that_is_flat():
    results = [result(n, s, s) for n, s in zip(SIZES, [5, 9, 10, 10, 10], strict=True)]
    text = summarise_init(results, "the ratio rises with N", "data")
    assert "rises up to N = 8, then stays at 100.0 %" in text and "every step" not in text
    assert "(n = 64)" in text
