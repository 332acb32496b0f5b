"""Mean Hoyer sparsity and silenced fraction over iterations; goodness and loss."""
from __future__ import annotations

from rich.text import Text

from engine.metrics import BY_NAME

from ..history import History, fmt
from .pane import Pane, View, event_marks, iteration_axis, time_series, with_hint
from .plot import Figure, Series

COLORS = {"pos": ("green", "cyan"), "neg": ("red", "orange"), "all": ("green", "cyan")}


def low(name: str) -> float | None:
    """The least value a metric can take, from its declaration (engine/metrics.py), or None."""
    return BY_NAME[name].low


def high(name: str) -> float | None:
    """The greatest value a metric can take, from its declaration (engine/metrics.py), or None."""
    return BY_NAME[name].high


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
        colors = [COLORS.get(g, COLORS["all"]) for g in groups]
        series = [Series(x, ys[2 * j], f"S {g}", colors[j][0]) for j, g in enumerate(groups)]
        series += [Series(x, ys[2 * j + 1], f"silenced {g}", colors[j][1], yside="right")
                   for j, g in enumerate(groups)]
        full = (0.0, 1.0) if view.full_range else None
        xlim = iteration_axis(history, x)
        left.show(Figure(series=tuple(series), ylim=full, ylim_right=full, xlim=xlim, vlines=event_marks(history, xlim),
                         iterations=True, ylabel="Hoyer S", ylabel_right="silenced", xlabel="iteration",
                         title="Hoyer sparsity S, silenced fraction",
                         ymin=low("sparsity"), ymax=high("sparsity"), ymin_right=low("silenced"),
                         ymax_right=high("silenced")))

        keys = [f"{g}.goodness" for g in groups] + ["loss"]
        x2, ys2 = time_series(history, keys, self.plot_width(1), view)
        series = [Series(x2, ys2[j], f"g {g}", COLORS.get(g, COLORS["all"])[0]) for j, g in enumerate(groups)]
        series.append(Series(x2, ys2[-1], "loss", "blue", yside="right"))
        xlim2 = iteration_axis(history, x2)
        right.show(Figure(series=tuple(series), xlim=xlim2, vlines=event_marks(history, xlim2), iterations=True,
                          log=view.log, log_right=view.log, ylabel="goodness |h|²", ylabel_right="loss",
                          xlabel="iteration", title="goodness |h|², loss", ymin=low("goodness")))

        rec = history.latest
        assert rec is not None, "waiting() is False only once a batch has arrived"
        lines = []
        for g in groups:
            st = rec.groups[g]
            silenced = round(st.silenced * st.count) if st.count else 0
            lines.append(f"{g}  S {fmt(st.sparsity, '.3f')} · silenced {silenced}/{st.count}"
                         f" · goodness {fmt(st.goodness, '.4g')}")
        lines[0] += f" │ loss ({rec.loss_name}) {fmt(rec.loss, '.5g')}"
        lines[-1] = with_hint(lines[-1], f"z: S {'around the data' if view.full_range else 'on 0..1'}"
                              f" · y: {'linear' if view.log else 'log'} scales", (self.size.width or 80) - 2)
        self.set_summary(Text("\n".join(lines)))
