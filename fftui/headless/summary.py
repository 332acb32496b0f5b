"""What a headless run prints: the status beside its progress bar and the closing summary, with
the metrics' labels taken from their declaration (engine/metrics.py)."""
from __future__ import annotations

import math
from typing import Any

from engine.metrics import SUMMARY_LINE, MetricsRecord

GROUP_LABELS = {"pos": "positives", "neg": "negatives", "all": "batch"}


def _percent(value: float) -> str:
    return "  –  " if not math.isfinite(value) else f"{value * 100:4.1f}%"


def short_status(record: MetricsRecord) -> str:
    """One line for the progress bar: per group the sparser ratio and both predicted ratios."""
    return "  ".join(f"{name}: sparser {_percent(g.sparser)} thm {_percent(g.theorem)} "
                     f"gen {_percent(g.general)}" for name, g in record.groups.items())


def format_summary(summary: dict[str, Any]) -> str:
    """The closing lines of a headless run from run_headless's summary: iterations, time and rate,
    then per group the means over batches of the summary metrics, and where the run is recorded
    (its "folder", None when it was not)."""
    lines = [f"{summary['iterations']} of {summary['planned']} iterations in {summary['seconds']:.1f} s "
             f"({summary['batches_per_second']:.1f} batches/s); final loss {summary['final_loss']:.6g}"
             + ("; interrupted" if summary["interrupted"] else "")]
    if summary.get("resumed_from") is not None:
        lines[0] = lines[0].replace(" iterations in ", f" iterations (resumed at {summary['resumed_from']:,}) in ", 1)
    for name, g in summary["groups"].items():
        label = GROUP_LABELS.get(name, name)
        means = "".join(m.label.format(g[m.name]) for m in SUMMARY_LINE)
        lines.append(f"  {label:9s} mean over batches, ratios of valid samples: {means}"
                     + rounding_note(g))
    lines += layer_lines(summary.get("layers") or [])
    lines += evaluation_lines(summary.get("evaluations") or [])
    if summary.get("folder") is not None:
        lines.append(f"  recorded in {summary['folder']} ({summary.get('records', 0):,} batches)")
    return "\n".join(lines)


def rounding_note(group: dict[str, float]) -> str:
    """Say what share of the valid samples had an exactly zero step (W' = W: nothing changed, so
    nothing became sparser), and what share of the others changed within rounding (an outcome the
    float64 measurement's rounding bound cannot decide, engine/theory.py sparsening_sign), when any.
    No dtype is advised: the outcome is measured in float64 whatever the run's dtype."""
    unresolved, valid = group.get("unresolved", 0.0), group.get("valid", 0.0)
    zero = group.get("zero_step", 0.0)
    note = ""
    if zero and valid:
        note += (f"; the step was exactly zero for {100 * zero / valid:.1f} % of valid samples "
                 "(no weight changed: every loss weight c_k or activation was 0)")
    if unresolved and valid:
        note += (f"; {100 * unresolved / valid:.1f} % of valid samples changed within rounding "
                 "(their outcome is not a measurement)")
    return note


def layer_lines(layers: list[dict[str, dict[str, float]]]) -> list[str]:
    """A stack's lines: per layer and group, the sparser ratio and the theorem's with the input held
    fixed, and once every layer stepped (the end-to-end outcome and the theorem's agreement with it).
    Layers are counted from 1 here, as the app counts them; the records' and CSVs' `layer` column
    counts from 0."""
    lines = []
    for layer, groups in enumerate(layers):
        for name, g in groups.items():
            lines.append(f"  layer {layer + 1} {GROUP_LABELS.get(name, name):9s} input fixed: "
                         f"sparser {g['sparser']:.3f}, "
                         f"theorem {g['theorem']:.3f} (agreement {g['agree_theorem']:.3f}); every layer stepped: "
                         f"sparser {g['sparser_end']:.3f} (theorem's agreement {g['agree_theorem_end']:.3f}); "
                         f"Hoyer sparsity {g['sparsity']:.3f}, silenced {g['silenced']:.3f}")
    return lines


def evaluation_lines(evaluations: list) -> list[str]:
    """The goodness classifier's test error after each evaluation, and on which digits; with a
    linear readout (engine/readout.py) its test error on the same digits in a line of its own."""
    if not evaluations:
        return []
    last = evaluations[-1]
    layers = "all layers" if last.layers == "all" else "all layers but the first"
    per_epoch = ", ".join(f"{e.error * 100:.2f} %" for e in evaluations)
    lines = [f"  test error {last.error * 100:.2f} % ({last.wrong:,} of {last.total:,}: {last.description}; "
             f"goodness summed over {layers}); after each evaluation: {per_epoch}"]
    if last.readout_wrong is not None:
        per_epoch = ", ".join("-" if e.readout_error is None else f"{e.readout_error * 100:.2f} %" for e in evaluations)
        lines.append(f"  linear readout's test error {last.readout_error * 100:.2f} % ({last.readout_wrong:,} of "
                     f"{last.total:,}, the same digits; on the unit-length activations of {layers}); after each "
                     f"evaluation: {per_epoch}")
    return lines
