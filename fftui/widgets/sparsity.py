"""Mean Hoyer sparsity and silenced fraction over iterations; goodness and loss."""
from __future__ import annotations

from rich.text import Text

from ..history import History, fmt
from .pane import Pane, View, time_series, x_range
from .plot import Figure, Series, nice_range

COLORS = {"pos": ("green", "cyan"), "neg": ("red", "orange"), "all": ("green", "cyan")}


class SparsityPane(Pane):
    """Hoyer sparsity and silenced fraction; goodness and loss."""

    def fill(self, history: History, view: View) -> None:
        left, right = self.plots
        if self.waiting(history):
            return
        groups = history.groups
        x, series = self.paired_series(history, view, ("sparsity", "silenced"), ("S", "silenced"), COLORS)
        left.show(Figure(series=tuple(series), ylim=(0.0, 1.0), xlim=x_range(x),
                         title="Hoyer sparsity, silenced fraction"))

        keys = [f"{g}.goodness" for g in groups] + ["loss"]
        x2, ys2 = time_series(history, keys, self.plot_width(1), view)
        series = [Series(x2, ys2[j], f"g {g}", COLORS.get(g, ("green",))[0]) for j, g in enumerate(groups)]
        series.append(Series(x2, ys2[-1], "loss (right)", "blue", yside="right"))
        right.show(Figure(series=tuple(series), xlim=x_range(x2), ylim=nice_range(ys2[:-1]),
                          ylim_right=nice_range(ys2[-1:]), title="goodness |h|², loss"))

        rec = history.latest
        assert rec is not None, "waiting() is False only once a batch has arrived"
        lines = []
        for g in groups:
            st = rec.groups[g]
            silenced = round(st.silenced * st.count) if st.count else 0
            lines.append(f"{g}  S {fmt(st.sparsity, '.3f')} · silenced {silenced}/{st.count}"
                         f" · goodness {fmt(st.goodness, '.4g')}")
        lines[0] += f" │ loss ({rec.loss_name}) {fmt(rec.loss, '.5g')}"
        self.set_summary(Text("\n".join(lines)))
