"""Mean Hoyer sparsity and silenced fraction over iterations; goodness and loss."""
from __future__ import annotations

from rich.text import Text

from engine.metrics import BY_NAME

from ..history import History, fmt
from .pane import Pane, View, iteration_axis, time_series
from .plot import Figure, Series

COLORS = {"pos": ("green", "cyan"), "neg": ("red", "orange"), "all": ("green", "cyan")}


def floor_of(name: str) -> float | None:
    """The least value a metric can take, from its declaration (engine/metrics.py), or None."""
    return BY_NAME[name].low


class SparsityPane(Pane):
    """Hoyer sparsity (around the data, or 0..1 with ``View.full_range``) and silenced fraction;
    goodness and loss (log10 axes with ``View.log``)."""

    def fill(self, history: History, view: View) -> None:
        left, right = self.plots
        if self.waiting(history):
            return
        groups = history.groups
        keys = [f"{g}.{name}" for g in groups for name in ("sparsity", "silenced")]
        x, ys = time_series(history, keys, self.plot_width(0), view)
        series = []
        for j, g in enumerate(groups):
            c1, c2 = COLORS.get(g, COLORS["all"])
            series.append(Series(x, ys[2 * j], f"S {g}", c1))
            series.append(Series(x, ys[2 * j + 1], f"silenced {g}", c2, yside="right"))
        full = (0.0, 1.0) if view.full_range else None
        left.show(Figure(series=tuple(series), ylim=full, ylim_right=full, xlim=iteration_axis(history, x),
                         ymin=floor_of("sparsity"), ymin_right=floor_of("silenced"), iterations=True,
                         ylabel="Hoyer S", ylabel_right="silenced", xlabel="iteration",
                         title="Hoyer sparsity S, silenced fraction",
                         note="z: " + ("around the data" if view.full_range else "0..1")))

        keys = [f"{g}.goodness" for g in groups] + ["loss"]
        x2, ys2 = time_series(history, keys, self.plot_width(1), view)
        series = [Series(x2, ys2[j], f"g {g}", COLORS.get(g, COLORS["all"])[0]) for j, g in enumerate(groups)]
        series.append(Series(x2, ys2[-1], "loss", "blue", yside="right"))
        right.show(Figure(series=tuple(series), xlim=iteration_axis(history, x2), iterations=True,
                          ymin=floor_of("goodness"), log=view.log, log_right=view.log,
                          ylabel="goodness |h|²", ylabel_right="loss", xlabel="iteration",
                          title="goodness |h|², loss", note="y: " + ("linear" if view.log else "log scale")))

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
