"""How well each per-sample prediction matched the outcome, and what breaks the theory's assumptions."""
from __future__ import annotations

from rich.text import Text

from ..history import History, fmt
from .pane import Pane, View, event_marks, iteration_axis, time_series
from .plot import Figure, Series
from .sparsity import high, low

COLORS = {"pos": ("blue", "magenta"), "neg": ("cyan", "red"), "all": ("blue", "magenta")}


class AssumptionsPane(Pane):
    """Agreement of prediction and outcome; sign flips and the second-order remainder."""

    def fill(self, history: History, view: View) -> None:
        left, right = self.plots
        if self.waiting(history):
            return
        groups = history.groups
        x, series = self.paired_series(history, view, ("agree_theorem", "agree_general"),
                                       ("theorem", "general"), COLORS)
        xlim = iteration_axis(history, x)
        left.show(Figure(series=tuple(series), ylim=(0.0, 1.0), xlim=xlim, vlines=event_marks(history, xlim),
                         iterations=True, ylabel="fraction of valid samples", xlabel="iteration",
                         title="prediction = outcome"))

        x2, (flips, remainder) = time_series(history, ["sign_flip", "l2_remainder"], self.plot_width(1), view)
        right.show(Figure(
            series=(Series(x2, flips, "sign flips", "orange"),
                    Series(x2, remainder, "2nd-order remainder", "gray", yside="right")),
            xlim=(xlim2 := iteration_axis(history, x2)), vlines=event_marks(history, xlim2), iterations=True,
            ymin=low("sign_flip"), ymax=high("sign_flip"),
            ymin_right=low("l2_remainder"), ylabel="fraction of pre-activations",
            ylabel_right="remainder / first order", xlabel="iteration",
            title="sign-flip fraction, l2 remainder",
        ))

        rec = history.latest
        assert rec is not None, "waiting() is False only once a batch has arrived"
        parts = []
        for g in groups:
            st = rec.groups[g]
            line = (f"{g}  agree: theorem {fmt(st.agree_theorem, percent=True)}"
                    f" · general {fmt(st.agree_general, percent=True)}"
                    f" · valid {st.valid} · newly silenced {st.newly_silenced}")
            if st.zero_step:  # an exactly zero step (W' = W): nothing changed
                line += " · zero step"
            if st.unresolved:  # outcomes rounding cannot decide: not measurements
                line += f" · {st.unresolved} below rounding"
            parts.append(line)
        parts.append(f"sign flips {fmt(rec.sign_flip * 100, '.3g')} %"
                     f" · second-order remainder of Δ|h|₂ {fmt(rec.l2_remainder, '.3g')}")
        self.set_summary(Text("\n".join(parts)))
