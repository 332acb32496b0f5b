"""Per iteration: the actually-sparser ratio beside the theorem's and the generalised predictor's
predicted ratios (the report's Figures 2 and 3), or actual minus predicted (``d``)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from rich.text import Text

from engine.config import theorem_is_general
from engine.metrics import GroupStats

from ..history import History, fmt
from .pane import GROUP_LABEL, Pane, View, event_marks, iteration_axis, smoothing_note, time_series, with_hint
from .plot import Figure, Series

# The fractions sparser, predicted by the theorem and by the generalised predictor (engine/metrics.py),
# per denominator (View.of_batch): of the valid samples, or of all N samples of the batch (the report's).
RATIOS = {False: ("sparser", "theorem", "general"), True: ("sparser_of_batch", "theorem_of_batch", "general_of_batch")}
DENOMINATOR = {False: "valid samples", True: "all samples of the batch"}
SHORT = {False: "of valid", True: "of all N"}  # the titles' short form


def ratio_keys(group: str, of_batch: bool) -> list[str]:
    """History keys of a group's sparser, theorem and general fractions over the chosen denominator."""
    return [f"{group}.{name}" for name in RATIOS[of_batch]]


def denominator_hint(of_batch: bool) -> str:
    """The key hint for the other denominator, its key taken from the key declaration (fftui/keys.py)."""
    from ..keys import RUN_KEYS

    key = next(k for k in RUN_KEYS if k.action == "denominator")
    return f"{key.display or key.keys.split(',')[0]}: of {DENOMINATOR[not of_batch]}"


def agreement_counts(g: GroupStats) -> tuple[int, int, int]:
    """Over one batch's valid samples (active before and after the step): how many there are, on
    how many the theorem's prediction equals the outcome, and on how many it equals the
    generalised predictor's. From the per-sample arrays, not from the ratios."""
    actual = np.asarray(g.actual)
    valid = actual >= 0
    sparser = actual == 1
    theorem = np.asarray(g.predicted_theorem, dtype=bool)
    general = np.asarray(g.predicted_general, dtype=bool)
    return (int(valid.sum()), int((theorem == sparser)[valid].sum()),
            int((theorem == general)[valid].sum()))


def coincidence_line(group: str, g: GroupStats) -> str:
    """"pos: theorem = actual on 120/127 valid · = general on 127/127" for the newest batch."""
    if not np.asarray(g.actual).size:  # a recorded batch that did not keep its per-sample arrays
        return f"{group}: this batch's per-sample arrays were not kept"
    valid, actual, general = agreement_counts(g)
    if not valid:
        return f"{group}: no valid sample in the last batch"
    return f"{group}: theorem = actual on {actual}/{valid} valid · theorem = general on {general}/{valid}"


class SparseningPane(Pane):
    """Per group, the fraction that became sparser beside the two predicted fractions; with
    ``View.difference``, the fraction sparser minus each predicted fraction."""

    def fill(self, history: History, view: View) -> None:
        groups = history.groups or ("pos", "neg")
        lines = []
        for i, plot in enumerate(self.plots):
            if i >= len(groups):
                plot.display = False
                continue
            plot.display = True
            group = groups[i]
            if not len(history):
                plot.show(Figure(note=f"{GROUP_LABEL[group]}: waiting for the first batch"))
                continue
            keys = ratio_keys(group, view.of_batch)
            of = DENOMINATOR[view.of_batch]
            x, (actual, theorem, general) = time_series(history, keys, self.plot_width(i), view)
            xlim = iteration_axis(history, x)
            axis = Figure(xlim=xlim, iterations=True, xlabel="iteration", vlines=event_marks(history, xlim))
            if view.difference:
                figure = replace(
                    axis, series=(Series(x, actual - theorem, "sparser − theorem", "blue"),
                                  Series(x, actual - general, "sparser − general", "magenta")),
                    hlines=((0.0, "prediction = outcome"),), ylabel=f"difference of fractions of {of}",
                    title=f"{GROUP_LABEL[group]}: actual − predicted ({SHORT[view.of_batch]})")
            else:
                figure = replace(
                    axis, series=(Series(x, theorem, "theorem", "blue"),
                                  Series(x, general, "general", "magenta"),
                                  Series(x, actual, "sparser", "green")),
                    ylim=(0.0, 1.0), hlines=((0.5, "half the samples"),), ylabel=f"fraction of {of}",
                    title=f"{GROUP_LABEL[group]}: fraction sparser ({SHORT[view.of_batch]})")
            plot.show(figure)
            g = history.group(group)
            if g is not None:
                silenced = round(g.silenced * g.count) if g.count else 0
                sparser, theorem_, general_ = (getattr(g, name) for name in RATIOS[view.of_batch])
                of_all = f"of all {g.count}: " if view.of_batch else ""
                lines.append(
                    f"{group}  {of_all}sparser {fmt(sparser, percent=True)} · theorem {fmt(theorem_, percent=True)}"
                    f" · general {fmt(general_, percent=True)} · valid {g.valid} · silenced {silenced}"
                )
                lines.append(coincidence_line(group, g))
        if history.latest is not None:
            parts = [smoothing_note(view)]
            if history.config is not None and theorem_is_general(history.config):
                parts.append("linear loss, plain SGD: theorem = general")
            hint = "d: " + ("the fractions" if view.difference else "actual − predicted")
            hint += " · " + denominator_hint(view.of_batch)
            lines.append(with_hint(" · ".join(parts), hint, (self.size.width or 80) - 2))
        self.set_summary(Text("\n".join(lines)))
