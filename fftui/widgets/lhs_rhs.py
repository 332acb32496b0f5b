"""The theorem's two sides per sample over the recent batches, as overlaid histograms (Figure 1A)."""
from __future__ import annotations

import numpy as np
from rich.text import Text

from ..history import History, fmt
from .pane import GROUP_LABEL, Pane, View
from .plot import Figure, Series


def side_names(mode: str | None) -> tuple[str, str, str]:
    """The theorem of a mode and what its two sides are (report eq. 6 and 7)."""
    if mode == "descent":
        return "Theorem 1", "LHS = |h|₁/|h|₂", "RHS = P/Q"
    return "Theorem 2", "LHS2 = |h|₂(A⁺−A⁻)", "RHS2 = |h|₁(B⁺−B⁻)"


def sparser_side(mode: str | None) -> tuple[str, str]:
    """Which way the inequality reads "predicted sparser": a short form for a plot's header and a
    sentence for the pane. Theorem 2 has c = -1 on positives and +1 on negatives inside A and B,
    so the same inequality LHS2 < RHS2 holds for both groups; Theorem 1's LHS < RHS means sparser
    only while Q > 0 (SPEC, "The prediction")."""
    _, lhs, rhs = side_names(mode)
    if mode == "descent":
        return "sparser: LHS < RHS", f"{lhs}, {rhs}: predicted sparser where LHS < RHS (while Q > 0)"
    return "sparser: LHS2 < RHS2", (f"{lhs}, {rhs}: predicted sparser where LHS2 < RHS2, "
                                    "for positives and negatives alike")


OFF_RANGE = "off-range: outside the 1st–99th percentile of both sides; counted, not drawn"


def histograms(lhs: np.ndarray, rhs: np.ndarray, bins: int):
    """Counts of both sides on shared bins spanning the 1st to 99th percentile of all finite values.
    Returns centres, lhs counts, rhs counts and how many finite values fell outside."""
    both = np.concatenate([lhs[np.isfinite(lhs)], rhs[np.isfinite(rhs)]])
    if both.size == 0:
        return None
    lo, hi = np.percentile(both, [1, 99])
    if not hi > lo:
        lo, hi = float(both.min()), float(both.max())
    if not hi > lo:
        pad = abs(lo) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    edges = np.linspace(lo, hi, bins + 1)
    fl = lhs[np.isfinite(lhs)]
    fr = rhs[np.isfinite(rhs)]
    cl, _ = np.histogram(fl, edges)
    cr, _ = np.histogram(fr, edges)
    outside = int(((fl < lo) | (fl > hi)).sum() + ((fr < lo) | (fr > hi)).sum())
    centres = (edges[:-1] + edges[1:]) / 2
    return centres, cl.astype(float), cr.astype(float), outside


class LhsRhsPane(Pane):
    """Per group, the two sides of the theorem over the recent batches, as overlaid histograms."""

    def fill(self, history: History, view: View) -> None:
        groups = history.groups or ("pos", "neg")
        theorem, lname, rname = side_names(history.mode)
        plots = self.plots
        lines = []
        for i, plot in enumerate(plots):
            if i >= len(groups):
                plot.display = False
                continue
            plot.display = True
            group = groups[i]
            lhs, rhs = history.sides(group)
            n_batches = history.sides_batches(group)
            if lhs.size == 0:
                missing = history.sides_missing(group) if hasattr(history, "sides_missing") else None  # a recording's
                plot.show(Figure(note=f"{GROUP_LABEL[group]}: {missing or 'waiting for the first batch'}"))
                lines.append(f"{group}: {missing or 'no batch yet'}")
                continue
            silenced = int((~np.isfinite(lhs) & ~np.isfinite(rhs)).sum())
            both = np.isfinite(lhs) & np.isfinite(rhs)
            below = float((lhs[both] < rhs[both]).mean()) if both.any() else float("nan")
            width = plot.size.width or self.plot_width(i)
            bins = int(np.clip((width - 12) // 2, 8, 48))
            hist = histograms(lhs, rhs, bins)
            outside = 0
            if hist is None:
                plot.show(Figure(note=f"{GROUP_LABEL[group]}: every sample silenced"))
            else:
                centres, cl, cr, outside = hist
                plot.show(Figure(
                    series=(Series(centres, cl, lname, "cyan"),
                            Series(centres, cr, rname, "orange")),
                    title=f"{theorem}, {GROUP_LABEL[group]}", note=sparser_side(history.mode)[0], ymin=0.0,
                    xlabel="value of the side", ylabel="samples per bin", histogram=True,
                ))
            lines.append(
                f"{group} {lhs.size:,} samples ({n_batches} batch{'es' * (n_batches != 1)}) · {silenced:,} silenced"
                f" · LHS<RHS {fmt(below, percent=True)} · {outside:,} off-range"
            )
        lines += [sparser_side(history.mode)[1], OFF_RANGE]
        self.set_summary(Text("\n".join(lines)))
