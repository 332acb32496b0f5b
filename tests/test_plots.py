"""The plots' pure parts: ticks, labels, axes, legends, and what the panes compute for them. Every
expected value below is worked out by hand (the comments show how)."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from engine.config import Config, theorem_is_general
from engine.metrics import BY_NAME, GroupStats
from fftui.widgets.legend import coincide, legend_entries
from fftui.widgets.lhs_rhs import side_names, sparser_side
from fftui.widgets.pane import SMOOTH_WINDOWS, next_window, with_hint
from fftui.widgets.plot import Figure, FigurePlot, Series, plan_axis
from fftui.widgets.sparsening import agreement_counts
from fftui.widgets.ticks import (
    LABEL_WIDTH,
    iteration_ticks,
    labels_read_back,
    nice_axis,
    nice_step,
    power_labels,
    tick_labels,
)


# -- steps and axes -----------------------------------------------------------------------------
@pytest.mark.parametrize(("span", "intervals", "integer", "step"), [
    (1.0, 4, False, 0.25),      # 1/4 = 0.25 exactly, a nice step
    (1.0, 5, False, 0.2),       # 1/5 = 0.2 = 2 x 0.1
    (0.09, 4, False, 0.025),    # 0.0225 -> the next nice one up is 2.5 x 0.01
    (316, 4, False, 100.0),     # 79 -> 100
    (3, 6, True, 1.0),          # 0.5, but whole numbers only -> 1
    (250, 10, True, 25.0),      # 25 = 2.5 x 10 is whole
    (7e34, 4, False, 2e34),     # 1.75e34 -> 2e34
])
def test_nice_step(span, intervals, integer, step):
    assert nice_step(span, intervals, integer) == pytest.approx(step, rel=1e-12)


@pytest.mark.parametrize("span", [0.0, -1.0, math.inf, math.nan])
def test_nice_step_refuses_a_span_without_size(span):
    with pytest.raises(ValueError):
        nice_step(span, 4)


@pytest.mark.parametrize(("lo", "hi", "intervals", "floor", "axis"), [
    # fractions over most of 0..1: quarters, not sixths
    (0.01, 0.97, 4, None, (0.0, 1.0, [0.0, 0.25, 0.5, 0.75, 1.0])),
    # Hoyer drifting from 0.44 to 0.35: span 0.09 / 4 = 0.0225 -> 0.025; 0.35 = 14 x 0.025, 0.44 -> 18 x 0.025
    (0.35, 0.44, 4, None, (0.35, 0.45, [0.35, 0.375, 0.4, 0.425, 0.45])),
    # a constant 3 gets +-10 %: 2.7..3.3, step 0.6 / 4 -> 0.2, 13 x 0.2 .. 17 x 0.2
    (3.0, 3.0, 4, 0.0, (2.6, 3.4, [2.6, 2.8, 3.0, 3.2, 3.4])),
    # a constant 0 that cannot be negative: 0..1, not -1..1
    (0.0, 0.0, 4, 0.0, (0.0, 1.0, [0.0, 0.25, 0.5, 0.75, 1.0])),
    # goodness that blew up: 5.2e12 / 4 = 1.3e12 -> 2e12; nothing below 0
    (1.0, 5.2e12, 4, 0.0, (0.0, 6e12, [0.0, 2e12, 4e12, 6e12])),
    # across zero with room for one interval: two are needed; 4.1 / 2 -> 2.5 gives 3, so 5 (x 0.1)
    (-0.07, 0.34, 1, None, (-0.5, 0.5, [-0.5, 0.0, 0.5])),
    (-1e35, 3e34, 4, None, (-1e35, 5e34, [-1e35, -5e34, 0.0, 5e34])),
])
def test_nice_axis(lo, hi, intervals, floor, axis):
    a, b, ticks = nice_axis(lo, hi, intervals, floor)
    assert a == pytest.approx(axis[0], abs=1e-12) and b == pytest.approx(axis[1], abs=1e-12)
    assert ticks == pytest.approx(axis[2], abs=1e-12)


@pytest.mark.parametrize(("lo", "hi"), [(-1e308, 1e308), (1e-300, 3e-300), (0.0, 1.7e308), (-5.0, -4.99)])
def test_nice_axis_covers_any_finite_range_with_few_finite_ticks(lo, hi):
    a, b, ticks = nice_axis(lo, hi, 4)
    assert all(math.isfinite(t) for t in ticks) and 2 <= len(ticks) <= 5
    assert a <= lo and b >= hi and ticks == sorted(ticks)


def test_a_quantity_that_cannot_be_negative_is_never_padded_below_zero():
    rng = np.random.default_rng(1)
    for _ in range(200):
        lo = float(rng.uniform(0, 1)) * 10.0 ** rng.integers(-6, 12)
        hi = lo + float(rng.uniform(0, 1)) * 10.0 ** rng.integers(-6, 12)
        a, _, ticks = nice_axis(lo, hi, int(rng.integers(1, 6)), floor=0.0)
        assert a >= 0.0 and min(ticks) >= 0.0


# -- x ticks: whole iterations, the last one the current iteration --------------------------------
@pytest.mark.parametrize(("first", "last", "most", "ticks"), [
    (1, 300, 4, [100, 200, 300]),                  # 299 / 4 -> 100
    (1, 317, 4, [100, 200, 317]),                  # 300 is 17 from 317, under half a step: left out
    (1, 3, 6, [1, 2, 3]),
    (5, 5, 4, [5]),
    (1, 12345, 5, [2500, 5000, 7500, 10000, 12345]),
    (4001, 5000, 3, [4500, 5000]),                 # 999 / 3 -> 500
])
def test_iteration_ticks(first, last, most, ticks):
    assert iteration_ticks(first, last, most) == ticks


def test_iteration_ticks_are_whole_increasing_and_end_at_the_current_iteration():
    rng = np.random.default_rng(2)
    for _ in range(300):
        first = int(rng.integers(1, 10**6))
        last = first + int(rng.integers(0, 10**6))
        most = int(rng.integers(2, 12))
        ticks = iteration_ticks(first, last, most)
        assert ticks[-1] == last and all(isinstance(t, int) for t in ticks)
        assert all(b > a for a, b in zip(ticks, ticks[1:], strict=False)) and len(ticks) <= most
        assert all(first <= t for t in ticks)


# -- labels ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("ticks", "labels"), [
    ([0, 0.25, 0.5, 0.75, 1], ["0", "0.25", "0.5", "0.75", "1"]),
    ([0.35, 0.375, 0.4], ["0.35", "0.375", "0.4"]),
    ([1000, 1500, 2000], ["1000", "1500", "2000"]),
    ([10000, 20000], ["1e4", "2e4"]),                         # past 1e4: scientific
    ([0, 1e12, 2e12], ["0", "1e12", "2e12"]),
    ([1.5e12, 1.75e12, 2e12], ["1.5e12", "1.75e12", "2e12"]),
    ([-1e35, -5e34, 0, 5e34], ["-1e35", "-5e34", "0", "5e34"]),
    ([1e-4, 2e-4], ["1e-4", "2e-4"]),                         # under 1e-3: scientific
    ([-0.0, 0.5], ["0", "0.5"]),
])
def test_tick_labels(ticks, labels):
    assert tick_labels(ticks) == labels


def test_labels_are_never_wider_than_the_bound():
    rng = np.random.default_rng(3)
    for _ in range(500):
        centre = float(rng.normal()) * 10.0 ** rng.integers(-300, 300)
        half = abs(centre) * float(rng.uniform(1e-3, 3)) or 1.0
        _, _, ticks = nice_axis(centre - half, centre + half, int(rng.integers(2, 6)))
        labels = tick_labels(ticks)
        assert max(len(s) for s in labels) <= LABEL_WIDTH, labels


def test_an_axis_labels_every_tick_so_that_it_reads_back_within_half_a_step():
    rng = np.random.default_rng(4)
    for _ in range(500):
        centre = float(rng.normal()) * 10.0 ** rng.integers(-300, 300)
        half = abs(centre) * float(rng.uniform(1e-3, 3)) or 1.0
        axis = plan_axis([np.array([centre - half, centre + half])], int(rng.integers(2, 6)))
        assert axis is not None and max(len(s) for s in axis.labels) <= LABEL_WIDTH
        step = axis.ticks[1] - axis.ticks[0]
        for t, s in zip(axis.ticks, axis.labels, strict=True):
            assert abs(float(s) - t) <= step / 2 * (1 + 1e-9), (axis.ticks, axis.labels)
    # the case that needs fewer ticks: -1.5e-279 does not fit in 8 characters, so steps of 1e-279
    axis = plan_axis([np.array([-2e-279, -5e-280])], 4)
    assert axis is not None and axis.labels == ["-2e-279", "-1e-279", "0"]
    # nor do steps of 5e-116 at -3.4e-114: the axis widens until the labels tell the ticks apart
    axis = plan_axis([np.array([-3.45e-114, -3.35e-114])], 4)
    assert axis is not None and axis.lo <= -3.45e-114 and axis.hi >= -3.35e-114
    assert len(set(axis.labels)) == len(axis.labels) >= 2


def test_labels_read_back():
    assert labels_read_back([0.0, 0.5, 1.0], ["0", "0.5", "1"])
    assert not labels_read_back([-2e-279, -1.5e-279], ["-2e-279", "-1e-279"])


def test_power_labels():
    assert power_labels([-4, -2, 0, 2, 3, 5]) == ["1e-4", "0.01", "1", "100", "1000", "1e5"]


# -- axes as drawn -------------------------------------------------------------------------------
def test_an_axis_over_values_that_cannot_be_negative_starts_at_zero_not_below():
    axis = plan_axis([np.array([0.2, 3.0, np.nan, np.inf])], 4, floor=0.0)
    assert axis is not None and axis.lo == 0.0 and axis.hi == 3.0 and axis.labels[0] == "0"


def test_a_log_axis_needs_positive_values_else_it_stays_linear():
    axis = plan_axis([np.array([1.0, 1e6])], 3, log=True)
    assert axis is not None and axis.log and axis.labels[0] == "1" and axis.labels[-1] == "1e6"
    assert axis.scale(np.array([1.0, 1e6])).tolist() == pytest.approx([0.0, 1.0])
    linear = plan_axis([np.array([-3.0, 1e6])], 3, log=True)
    assert linear is not None and not linear.log


def test_a_fixed_range_keeps_its_ends():
    axis = plan_axis([np.array([0.4, 0.45])], 4, ylim=(0.0, 1.0))
    assert axis is not None and (axis.lo, axis.hi) == (0.0, 1.0)
    assert axis.labels == ["0", "0.25", "0.5", "0.75", "1"]


# -- legends: coinciding series say so -------------------------------------------------------------
def test_coinciding_series_are_named_together():
    x = np.arange(5.0)
    a = Series(x, np.array([0.1, 0.2, np.nan, 0.4, 0.5]), "theorem", "blue")
    b = Series(x, np.array([0.1, 0.2, np.nan, 0.4, 0.5]), "general", "magenta")
    c = Series(x, np.array([0.1, 0.2, np.nan, 0.4, 0.501]), "sparser", "green")
    d = Series(x, np.array([0.1, 0.2, np.nan, 0.4, 0.9]), "other", "red")
    assert coincide(a, b, 0.0) == "="
    assert coincide(a, c, 0.01) == "≈" and coincide(a, c, 0.0001) == ""
    assert coincide(a, d, 0.01) == ""
    groups = legend_entries((a, b, c, d), {"left": 0.01})
    assert [[(s.label, r) for s, r in g] for g in groups] == [
        [("theorem", ""), ("general", "="), ("sparser", "≈")], [("other", "")]]


# -- whole figures -------------------------------------------------------------------------------
def _lines(figure: Figure, width: int, height: int) -> list[str]:
    plot = FigurePlot()
    plot.show(figure)
    return [line.plain for line in plot.lines(width, height)]


@pytest.mark.parametrize(("width", "height"), [(38, 12), (58, 20)])
def test_huge_values_still_draw_a_frame_with_compact_ordered_ticks(width, height):
    x = np.arange(1, 301, dtype=float)
    y = np.exp(np.linspace(0, 80, 300))          # up to 5.5e34
    y[50], y[60], y[70] = np.inf, np.nan, -np.inf
    loss = -y / 2
    lines = _lines(Figure(series=(Series(x, y, "g pos", "green"), Series(x, loss, "loss", "blue", yside="right")),
                          title="goodness, loss", iterations=True, xlim=(1, 300), ymin=0.0), width, height)
    text = "\n".join(lines)
    assert len(lines) == height and all(len(line) <= width for line in lines)
    assert "┌" in text and "└" in text                 # the frame is there
    numbers = [tok for line in lines for tok in re.findall(r"-?\d[\d.e-]*", line)]
    assert any("e3" in tok for tok in numbers)                # 1e35, 2e34: scientific
    assert max(len(tok) for tok in numbers) <= LABEL_WIDTH    # no 35-digit numbers
    bottom = lines[lines.index(next(line for line in lines if "└" in line)) + 1].split()
    assert [int(t) for t in bottom] == sorted(int(t) for t in bottom) and bottom[-1] == "300"


def test_the_legend_sits_above_the_plot_not_on_it():
    x = np.arange(1, 41, dtype=float)
    lines = _lines(Figure(series=(Series(x, np.full(40, 0.9), "theorem", "blue"),), ylim=(0.0, 1.0),
                          title="fraction", hlines=((0.5, "half the samples"),), iterations=True), 60, 14)
    legend = next(i for i, line in enumerate(lines) if "theorem" in line)
    top = next(i for i, line in enumerate(lines) if "┌" in line)
    assert legend < top and "0.5: half the samples" in lines[legend]
    assert not any("theorem" in line for line in lines[top:])


def test_a_figure_with_no_finite_value_says_so():
    x = np.arange(3.0)
    lines = _lines(Figure(series=(Series(x, np.full(3, np.nan), "a", "blue"),), title="t"), 40, 10)
    assert any("no finite values" in line for line in lines)


# -- what the panes compute ----------------------------------------------------------------------
def _group(actual, theorem, general) -> GroupStats:
    n = len(actual)
    values = {m: 0 for m in GroupStats.FIELDS if m != "name"}
    values.update(actual=np.array(actual, dtype=np.int8), predicted_theorem=np.array(theorem, dtype=bool),
                  predicted_general=np.array(general, dtype=bool), count=n)
    return GroupStats(name="pos", **values)


def test_agreement_counts_come_from_the_samples():
    # 5 samples; the last is not valid (-1). Valid: 1, 0, 1, 0.
    # theorem predicts T, F, F, F: equals the outcome on samples 1, 2, 4 -> 3 of 4
    # general predicts T, F, T, T: equals the theorem on samples 1, 2 -> 2 of 4
    g = _group([1, 0, 1, 0, -1], [True, False, False, False, True], [True, False, True, True, False])
    assert agreement_counts(g) == (4, 3, 2)


@pytest.mark.parametrize(("changes", "exact"), [
    ({}, True),
    ({"mode": "descent"}, True),
    ({"loss": "logistic"}, False),
    ({"momentum": 0.9}, False),
    ({"optimizer": "adam"}, False),
    ({"weight_decay": 1e-4}, False),
])
def test_the_theorem_is_the_general_predictor_only_for_the_linear_loss_and_plain_sgd(changes, exact):
    assert theorem_is_general(Config().replace(**changes)) is exact


def test_metrics_that_cannot_be_negative_are_declared_so():
    for name in ("goodness", "sparsity", "silenced", "sparser", "theorem", "general", "sign_flip", "l2_remainder"):
        assert BY_NAME[name].low == 0.0, name
    for name in ("sparsity", "silenced", "sparser", "theorem", "general", "sign_flip"):
        assert BY_NAME[name].high == 1.0, name
    assert BY_NAME["goodness"].high is None and BY_NAME["l2_remainder"].high is None
    assert BY_NAME["loss"].low is None   # the ff linear loss G(H-) - G(H+) is often negative


def test_an_axis_over_values_that_cannot_exceed_one_ends_at_one():
    # Hoyer sparsity of 0.95 to 1 (samples with one active unit have S = 1 exactly): steps of
    # 0.05 / 4 -> 0.0125 would pad to 1.0125; the ceiling keeps the last tick at 1
    axis = plan_axis([np.array([0.95, 1.0])], 2, floor=0.0, ceiling=1.0)
    assert axis is not None and axis.hi == 1.0 and axis.labels[-1] == "1"
    # float32 rounding puts S = 1 at 1.0000001: still within the bound
    axis = plan_axis([np.array([0.6, 1.0000001])], 2, floor=0.0, ceiling=1.0)
    assert axis is not None and axis.hi == 1.0 and axis.labels[-1] == "1"
    # data clearly past a bound are drawn, not cut: the bound does not hold for them
    axis = plan_axis([np.array([0.6, 1.2])], 2, floor=0.0, ceiling=1.0)
    assert axis is not None and axis.hi >= 1.2
    # a constant 1 gets +-10 % cut at the ceiling: 0.9..1, 0.1 / 4 = 0.025
    assert nice_axis(1.0, 1.0, 4, floor=0.0, ceiling=1.0) == pytest.approx(
        (0.9, 1.0, [0.9, 0.925, 0.95, 0.975, 1.0]))


def test_the_sides_say_what_they_are_and_which_way_means_sparser():
    theorem, lhs, rhs = side_names("ff")
    assert theorem == "Theorem 2" and "A⁺−A⁻" in lhs and "B⁺−B⁻" in rhs
    short, sentence = sparser_side("ff")
    assert "LHS2 < RHS2" in short and "positives and negatives" in sentence
    assert "Q > 0" in sparser_side("descent")[1]


def test_smoothing_windows_step_up_and_down():
    assert next_window(25, up=True) == 50 and next_window(25, up=False) == 10
    assert next_window(30, up=True) == 50 and next_window(30, up=False) == 25
    assert next_window(SMOOTH_WINDOWS[-1], up=True) == SMOOTH_WINDOWS[-1]
    assert next_window(SMOOTH_WINDOWS[0], up=False) == SMOOTH_WINDOWS[0]


def test_a_plot_without_room_says_so_instead_of_drawing_garbage():
    x = np.arange(1, 11, dtype=float)
    lines = _lines(Figure(series=(Series(x, x, "a", "blue"),), title="t", iterations=True), 40, 5)
    assert len(lines) <= 5 and "too small to draw" in lines[-1] and not any("┌" in line for line in lines)


def test_a_key_hint_is_added_only_where_it_fits():
    assert with_hint("pos  S 0.5", "z: S on 0..1", 40) == "pos  S 0.5 │ z: S on 0..1"
    assert with_hint("pos  S 0.5", "z: S on 0..1", 20) == "pos  S 0.5"


def test_histograms_that_coincide_say_same_counts_never_lhs_equals_rhs():
    """After a blow-up every sample falls into one bin on both sides: the counts are equal, the
    sides are not (the header says what share has LHS < RHS)."""
    from fftui.widgets.legend import header_lines

    centres = np.array([0.5, 1.5, 2.5])
    counts = np.array([0.0, 128.0, 0.0])
    fig = Figure(series=(Series(centres, counts, "LHS2 = |h|₂(A⁺−A⁻)", "cyan"),
                         Series(centres, counts.copy(), "RHS2 = |h|₁(B⁺−B⁻)", "orange")), histogram=True)
    text = " ".join(str(line) for line in header_lines(fig, 200, {"left": 0.0}))
    assert "same counts per bin" in text and "and RHS2" in text
    assert "= RHS2" not in text and "LHS2 = RHS2" not in text
    lines = Figure(series=fig.series)  # the same series as curves: drawn on top of each other
    assert "= RHS2" in " ".join(str(line) for line in header_lines(lines, 200, {"left": 0.0}))
