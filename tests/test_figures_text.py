"""The presets' text figures: the iteration axis of Figures 2 and 3 is labelled in whole iterations."""
from __future__ import annotations

import re

from engine.presets import SeriesSummary
from fftui.headless.figures import render_series


def _axis_labels(text: str) -> list[str]:
    """The tick labels under the first plot's x axis: the line after the one with the axis' corners."""
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if "└" in line)
    return lines[i + 1].split()


def test_interrupted_run_axis_is_whole_iterations():
    # 44 iterations, as a fig3 run stopped early leaves: ticks were 1.0 11.8 22.5 33.2 44.0
    rows = [[float(i), 0.5, 0.5] for i in range(1, 45)]
    text = render_series(SeriesSummary(["iteration", "pos_sparser", "pos_theorem2"], rows), "Figure 3")
    labels = _axis_labels(text)
    assert labels, text
    assert all(re.fullmatch(r"\d+", label) for label in labels), labels
    assert labels[-1] == "44"
    assert [int(x) for x in labels] == sorted(int(x) for x in labels)


def test_long_run_axis_ends_at_last_iteration():
    rows = [[float(i), 0.6, 0.55] for i in range(1, 2346)]
    text = render_series(SeriesSummary(["iteration", "pos_sparser", "pos_theorem2"], rows), "Figure 3")
    labels = _axis_labels(text)
    assert all(re.fullmatch(r"\d+", label) for label in labels), labels
    assert labels[-1] == "2345"
    assert len(labels) >= 3
