"""The header above a plot: its title, note and legend, packed into a few lines. Series that
coincide are named together ("theorem = general"), so that a curve hidden under another is never
taken for a missing one."""
from __future__ import annotations

import numpy as np
from plotext._dict import color_codes
from rich.text import Text

from . import ticks as tk
from .figure import Figure, Series


def rich_color(color: str) -> str:
    """The rich colour of a plotext colour name (plotext's names are the 16 ANSI colours: its
    "orange" is ANSI 3)."""
    code = color_codes.get(color)
    return f"color({code})" if code is not None else "default"


def coincide(a: Series, b: Series, tolerance: float) -> str:
    """"=" when two series have the same points, "≈" when they differ nowhere by more than
    ``tolerance`` (less than a dot apart on the screen), "" otherwise (or when either is empty)."""
    if a.yside != b.yside or a.x.shape != b.x.shape or not np.array_equal(a.x, b.x):
        return ""
    ya, yb = np.asarray(a.y, dtype=float), np.asarray(b.y, dtype=float)
    fa, fb = np.isfinite(ya), np.isfinite(yb)
    if not fa.any() or not np.array_equal(fa, fb):
        return ""
    diff = np.abs(ya[fa] - yb[fb])
    if not diff.any():
        return "="
    return "≈" if float(diff.max()) <= tolerance else ""


def legend_entries(series: tuple[Series, ...], tolerances: dict[str, float]) -> list[list[tuple[Series, str]]]:
    """The legend as groups of series that coincide, in drawing order: each group is a list of
    (series, relation to the previous one: "", "=" or "≈"). Series without a label are left out."""
    groups: list[list[tuple[Series, str]]] = []
    for s in series:
        if not s.label:
            continue
        for group in groups:
            relation = coincide(group[0][0], s, tolerances.get(s.yside, 0.0))
            if relation:
                group.append((s, relation))
                break
        else:
            groups.append([(s, "")])
    return groups


def legend_items(series: tuple[Series, ...], hlines: tuple[tuple[float, str], ...],
                 tolerances: dict[str, float], short: bool = False, histogram: bool = False,
                 vlines: tuple[tuple[float, str], ...] = ()) -> list[Text]:
    """The legend's entries: a coloured mark and the label of each series; coinciding series joined
    with = or ≈ behind the colour drawn last (the one on top); "(right)" for series on the right
    axis; then the labelled reference lines. ``short``: labels "NAME = definition" as NAME, and
    "→" for "(right)". ``histogram``: the series are counts per bin; coinciding ones are joined
    with "and" and said to have the same counts ("≈": nearly)."""
    items = []
    for group in legend_entries(series, tolerances):
        top = group[-1][0]
        text = Text("━", style=rich_color(top.color))
        for s, relation in group:
            if relation:
                text.append(" and" if histogram else f" {relation}")
            label = s.label.split(" = ")[0] if short else s.label
            text.append(f" {label}", style=rich_color(s.color))
        if histogram and len(group) > 1:
            nearly = any(relation == "≈" for _, relation in group)
            text.append(": nearly the same counts per bin" if nearly else ": same counts per bin", style="dim")
        if top.yside == "right":
            text.append(" →" if short else " (right)", style="dim")
        items.append(text)
    for level, label in hlines:
        if label:
            items.append(Text.assemble(("┄ ", rich_color("gray")), (f"{tk.tick_labels([level])[0]}: {label}", "dim")))
    return items + mark_items(vlines)


MARKS_NAMED = 2  # the legend names the last few marks; earlier ones are counted


def mark_items(vlines: tuple[tuple[float, str], ...]) -> list[Text]:
    """The legend's entries for the event marks: "│ 120: lr 0.001→0.01" for the last MARKS_NAMED,
    "│ 3 earlier" for the rest."""
    from .plot import MARK_COLOR

    items = []
    earlier = len(vlines) - MARKS_NAMED
    if earlier > 0:
        items.append(Text.assemble(("│ ", rich_color(MARK_COLOR)), (f"{earlier} earlier", "dim")))
    for at, label in vlines[-MARKS_NAMED:]:
        items.append(Text.assemble(("│ ", rich_color(MARK_COLOR)), (f"{at:g}: {label}", "dim")))
    return items


def pack(items: list[Text], width: int, most: int) -> list[Text]:
    """Items side by side, two spaces apart, each in the first line of ``width`` cells with room
    for it; at most ``most`` lines: an item wider than a line is cut with …, as is the last line
    if items are left."""
    lines: list[Text] = []
    for item in items:
        for line in lines:
            if line.cell_len + 2 + item.cell_len <= width:
                line.append("  ")
                line.append_text(item)
                break
        else:
            lines.append(item.copy())
    if len(lines) > most:
        lines = lines[:most]
        lines[-1].append(" …")
    for line in lines:
        line.truncate(width, overflow="ellipsis")
    return lines


def header_lines(fig: Figure, width: int, tolerances: dict[str, float], most: int = 3) -> list[Text]:
    """The title, the note and the legend above the plot, packed into at most ``most`` lines
    (with short labels when the full ones need more)."""
    head = [Text(fig.title, style="bold")] if fig.title else []
    if fig.note and fig.series:
        head.append(Text(fig.note, style="dim"))
    for short in (False, True):
        legend = legend_items(fig.series, fig.hlines, tolerances, short=short, histogram=fig.histogram,
                              vlines=fig.vlines)
        together = pack(head + legend, width, 2)
        if len(together) == 1:          # all on one line
            return together
        lines = pack(head, width, most) + pack(legend, width, most)   # the legend on lines of its own
        if len(lines) <= most:
            return lines
    return pack(head, width, most) + pack(legend, width, max(1, most - len(pack(head, width, most))))
