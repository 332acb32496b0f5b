"""Per iteration: the actually-sparser ratio beside the theorem's and the generalised predictor's
predicted ratios (the report's Figures 2 and 3)."""
from __future__ import annotations

from rich.text import Text

from ..history import History, fmt
from .pane import GROUP_LABEL, Pane, View, time_series, x_range
from .plot import Figure, Series


class SparseningPane(Pane):
    """Per group, the fraction that became sparser beside the two predicted fractions."""

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
            keys = [f"{group}.sparser", f"{group}.theorem", f"{group}.general"]
            x, (actual, theorem, general) = time_series(history, keys, self.plot_width(i), view)
            plot.show(Figure(
                series=(Series(x, theorem, "theorem", "blue"),
                        Series(x, general, "general", "magenta"),
                        Series(x, actual, "sparser", "green")),
                ylim=(0.0, 1.0), xlim=x_range(x), hlines=(0.5,),
                title=f"{GROUP_LABEL[group]}: fraction sparser",
            ))
            g = history.group(group)
            if g is not None:
                silenced = round(g.silenced * g.count) if g.count else 0
                lines.append(
                    f"{group}  sparser {fmt(g.sparser, percent=True)} · theorem {fmt(g.theorem, percent=True)}"
                    f" · general {fmt(g.general, percent=True)} · valid {g.valid} · silenced {silenced}"
                )
        if history.latest is not None:
            tail = f"smoothed over {view.window} iterations" if view.smoothing else "raw, per batch"
            if history.latest.loss_name == "linear":
                tail += "; linear loss: theorem = general"
            lines.append(tail)
        self.set_summary(Text("\n".join(lines)))
