"""The report's four experiments (section 5) as presets: their exact parameters, the evaluation
at initialisation behind Figure 1, and the per-iteration series of Figures 2 and 3."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import Config, theorem_is_general
from .metrics import FIGURE_METRICS, GROUPS, Metric, MetricsRecord


@dataclass(frozen=True)
class Preset:
    name: str
    title: str                     # str.format template: {width}, {batch_size} (heading() fills them)
    kind: str                      # "init": Theorem 1 at initialisation; "train": a training run;
    #                                "network": a stack trained with its test error (no report figure)
    config: Config                 # the report's parameters
    batch_sizes: tuple[int, ...] = ()
    claim: str = ""

    def heading(self, config: Config | None = None) -> str:
        """The title with the width n and batch size N of config (the preset's own when None): a
        Figure 1 run with --width 64 is headed "n = 64", never the report's 128."""
        cfg = config or self.config
        return self.title.format(width=cfg.width, batch_size=cfg.batch_size)


FIG1B_SIZES = (2, 4, 8, 16, 32, 64, 128)

PRESETS: dict[str, Preset] = {
    "fig1a": Preset(
        "fig1a", "Figure 1A: Theorem 1 at initialisation, n = {width}, N = {batch_size}", "init",
        Config(mode="descent", loss="linear", optimizer="sgd", lr=1e-3, momentum=0.0, width=128,
               batch_size=128, epochs=1),
        batch_sizes=(128,),
        claim="59,993 of 60,000 MNIST training digits (> 99.98 %) satisfy LHS < RHS"),
    "fig1b": Preset(
        "fig1b", "Figure 1B: the LHS < RHS ratio against the batch size N, n = {width}", "init",
        Config(mode="descent", loss="linear", optimizer="sgd", lr=1e-3, momentum=0.0, width=128,
               batch_size=128, epochs=1),
        batch_sizes=FIG1B_SIZES,
        claim="the ratio rises with N"),
    "fig2": Preset(
        "fig2", "Figure 2: descent training, actually sparser vs Theorem 1 per iteration", "train",
        Config(mode="descent", loss="linear", optimizer="sgd", lr=1e-3, momentum=0.0, width=2000,
               batch_size=128, iters=938),
        claim="the sparser ratio and the Theorem-1 ratio fall together as training goes on"),
    "fig3": Preset(
        "fig3", "Figure 3: FF training, actually sparser vs Theorem 2, positives and negatives", "train",
        Config(mode="ff", loss="linear", optimizer="sgd", lr=1e-3, momentum=0.0, width=2000,
               batch_size=128, iters=2345),
        claim="the sparser ratio is above 50 % most of the time, for positives and for negatives"),
    "loewex": Preset(
        "loewex", "A 3 x 1000 FF network as loeweX/Forward-Forward trains it, as far as fftui's model allows",
        "network",
        Config(mode="ff", loss="logistic", optimizer="adam", lr=1e-3, widths=(1000, 1000, 1000), batch_size=100,
               epochs=100, theta=1.0, init="kaiming", normalize="global", evaluate=True, score_layers="skip-first",
               readout="linear"),
        claim="loeweX/Forward-Forward reports 1.45 % test error on MNIST after 100 epochs. What differs here: "
        "its layers have biases, fftui's none; its inputs have length sqrt(m) (each layer's input divided by its "
        "root mean square) and its threshold is the layer width, fftui's inputs have unit length, so the "
        "same goodness-per-input-length threshold is theta = width / m, about 1 (used for every layer); its loss "
        "is the batch mean, fftui's the sum (Adam barely sees the difference); its 1.45 % is its linear "
        "classifier's on the activations of all layers but the first with a neutral label, trained beside the "
        "layers, and fftui's linear readout is that classifier (the number to compare), with the goodness "
        "classifier's over the same layers beside it; the readout reads activations of unit length where "
        "loeweX's have root mean square 1, and has its own Adam (lr 1e-3) where loeweX's shares the layers' "
        "optimiser; its weights start from N(0, 1/n) (n the layer's width) and its biases from 0, fftui's "
        "weights from kaiming N(0, 2/m). Its code also trains otherwise than fftui can: SGD with momentum 0.9 "
        "and weight decay 3e-4 for the layers (lr 1e-3) and lr 1e-2, weight decay 3e-3 for the classifier, "
        "where fftui uses Adam at lr 1e-3 for both; learning rates cooled linearly to 0 over the second half "
        "of the epochs; a peer-normalisation term (weight 0.03) in the loss; a ReLU whose gradient passes "
        "whatever the sign of its input; 50,000 training digits (10,000 kept for validation), fftui's 60,000"),
    "hinton": Preset(
        "hinton", "A 4 x 2000 FF network after Hinton (2022), as far as fftui's model allows", "network",
        Config(mode="ff", loss="logistic", optimizer="adam", lr=1e-3, widths=(2000, 2000, 2000, 2000),
               batch_size=100, epochs=60, theta=1.0, init="kaiming", normalize="global", evaluate=True,
               score_layers="skip-first"),
        claim="Hinton (2022) reports 1.36 % test error on MNIST with 4 hidden layers of 2,000 ReLUs after 60 "
        "epochs, the label in the first 10 pixels, goodness accumulated over all layers but the first. What "
        "differs here: the paper does not give its optimiser, learning rate, batch size or threshold (Adam lr "
        "1e-3, N = 100 and theta = 1 for unit-length inputs are fftui's choices); it normalises each layer's "
        "input by its length as fftui does, but its layers have biases and fftui's none"),
}


def preset_config(name: str, **overrides: Any) -> Config:
    """The preset's configuration with the user's overrides (strings as typed are fine)."""
    return PRESETS[name].config.replace(**overrides) if overrides else PRESETS[name].config


# -- Figures 2 and 3: per-iteration series ------------------------------------------------------
def figure_metrics(cfg: Config) -> tuple[Metric, ...]:
    """The figure's metrics for cfg: FIGURE_METRICS, with the generalised predictor's ratio only
    where it can differ from the theorem's (engine.config.theorem_is_general)."""
    return tuple(m for m in FIGURE_METRICS if m.name != "general_of_batch" or not theorem_is_general(cfg))


def figure_columns(cfg: Config) -> list[str]:
    """The figure's series (engine/metrics.py's FIGURE_METRICS): the report's ratios over all N
    samples of a batch, per group. With a loss or optimiser other than the report's, the
    generalised predictor's ratio is added beside the theorem's."""
    theorem = "theorem1" if cfg.mode == "descent" else "theorem2"
    prefixes = ("",) if cfg.mode == "descent" else tuple(f"{g}_" for g in GROUPS["ff"])
    cols = ["iteration"]
    for prefix in prefixes:
        cols += [prefix + m.figure.format(theorem=theorem) for m in figure_metrics(cfg)]
    return cols


def figure_row(record: MetricsRecord, cfg: Config) -> list[float]:
    """One CSV row of figure_columns(cfg) from a record."""
    row: list[float] = [record.iteration]
    for name in GROUPS[cfg.mode]:
        group = record.groups[name]
        row += [getattr(group, m.name) for m in figure_metrics(cfg)]
    return row


@dataclass
class SeriesSummary:
    """How a run's per-iteration ratios behaved, for the one-paragraph summary."""

    columns: list[str]
    rows: list[list[float]] = field(default_factory=list)

    def column(self, name: str) -> np.ndarray:
        i = self.columns.index(name)
        return np.array([r[i] for r in self.rows], dtype=float)

    def stats(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        n = len(self.rows)
        if not n:
            return out
        tenth = max(1, n // 10)
        for name in self.columns[1:]:
            v = self.column(name)
            out[name] = {
                "mean": float(np.nanmean(v)),
                "first_tenth": float(np.nanmean(v[:tenth])),
                "last_tenth": float(np.nanmean(v[-tenth:])),
                "above_half": float(np.nanmean(v > 0.5)),
            }
        return out

    def prediction_error(self, actual: str, predicted: str) -> dict[str, float]:
        """Per-iteration |predicted ratio - actual ratio|: mean, median, 90th percentile, signed mean."""
        d = self.column(predicted) - self.column(actual)
        return {"mean_abs": float(np.nanmean(np.abs(d))), "median_abs": float(np.nanmedian(np.abs(d))),
                "p90_abs": float(np.nanpercentile(np.abs(d), 90)), "mean_signed": float(np.nanmean(d))}
