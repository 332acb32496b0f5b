"""The report's experiments as presets: exact parameters, fig1a over every sample, agreement of
prediction and outcome in shortened fig2/fig3 runs, and the CSV each writes."""
import csv
import json

import numpy as np
import pytest

from engine.config import Config
from engine.figure1 import theorem1_at_init
from engine.presets import PRESETS, preset_config
from fftui.cli import main

REPORT = {
    # the parameters of the report's section 5 (one FF layer, SGD, lr 1e-3)
    "fig1a": dict(mode="descent", width=128, batch_size=128),
    "fig1b": dict(mode="descent", width=128),
    "fig2": dict(mode="descent", loss="linear", width=2000, batch_size=128, optimizer="sgd", lr=1e-3,
                 momentum=0.0, iters=938),
    "fig3": dict(mode="ff", loss="linear", width=2000, batch_size=128, optimizer="sgd", lr=1e-3,
                 momentum=0.0, iters=2345),
}


@pytest.mark.parametrize("name", sorted(REPORT))
def test_preset_configuration_is_the_reports(name):
    cfg = PRESETS[name].config
    for key, value in REPORT[name].items():
        assert getattr(cfg, key) == value, key
    assert cfg.init == "report" and cfg.weight_decay == 0.0 and cfg.normalize == "none" and cfg.label_value == "one"


def test_fig1b_batch_sizes_and_iteration_counts():
    assert PRESETS["fig1b"].batch_sizes == (2, 4, 8, 16, 32, 64, 128)
    # 938 = 2 MNIST epochs and 2345 = 5 epochs of ceil(60000 / 128) = 469 batches
    assert PRESETS["fig2"].config.iters == 2 * 469 and PRESETS["fig3"].config.iters == 5 * 469


def test_overrides_apply_over_preset():
    cfg = preset_config("fig3", loss="logistic", iters="40")
    assert cfg.loss == "logistic" and cfg.iters == 40 and cfg.width == 2000


def test_fig1a_counts_every_sample_of_the_sample(sample):
    cfg = PRESETS["fig1a"].config
    res = theorem1_at_init(sample, cfg, 128)
    assert res.samples == sample.size == 5000
    assert res.lhs.shape == (5000,) and res.rhs.shape == (5000,)
    assert res.satisfied == int(np.sum(res.lhs < res.rhs))
    assert res.ratio >= 0.99
    # with non-negative inputs every Q > 0, so LHS < RHS is the product-form prediction itself
    assert res.predicted_sparser == res.satisfied


def _agreement(folder):
    from engine.store import RunReader

    samples = RunReader(folder).samples
    agree = total = 0
    for group in samples.groups:
        actual = np.asarray(samples.column("actual", group))
        pred = np.asarray(samples.column("predicted_theorem", group), dtype=bool)
        valid = actual >= 0
        agree += int(np.sum(pred[valid] == (actual[valid] == 1)))
        total += int(valid.sum())
    return agree / total


@pytest.mark.parametrize("name,iters,cols", [
    ("fig2", 30, ["iteration", "sparser", "theorem1"]),
    ("fig3", 24, ["iteration", "pos_sparser", "pos_theorem2", "neg_sparser", "neg_theorem2"]),
])
def test_shortened_training_presets_agree_and_write_csv(tmp_path, capsys, name, iters, cols):
    out = tmp_path / name
    rc = main(["run", "--headless", "--preset", name, "--data", "sample", "--iters", str(iters),
               "--out", str(out), "--quiet"])
    assert rc == 0
    rows = list(csv.reader((out / f"{name}.csv").read_text().splitlines()))
    assert rows[0] == cols
    assert [int(r[0]) for r in rows[1:]] == list(range(1, iters + 1))
    for r in rows[1:]:
        assert all(0.0 <= float(v) <= 1.0 for v in r[1:])
    assert _agreement(out) >= 0.95
    printed = capsys.readouterr().out
    assert "iterations of" in printed and (out / f"{name}.txt").read_text().strip()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["preset"] == name and cfg["config"]["width"] == 2000


def test_logistic_override_adds_the_generalised_series(tmp_path):
    out = tmp_path / "log"
    assert main(["run", "--headless", "--preset", "fig3", "--loss", "logistic", "--data", "sample",
                 "--iters", "3", "--width", "200", "--out", str(out), "--quiet"]) == 0
    header = next(csv.reader((out / "fig3.csv").read_text().splitlines()))
    assert header == ["iteration", "pos_sparser", "pos_theorem2", "pos_general",
                      "neg_sparser", "neg_theorem2", "neg_general"]


def test_fig1b_csv_has_one_row_per_batch_size(tmp_path):
    out = tmp_path / "f1b"
    assert main(["run", "--headless", "--preset", "fig1b", "--data", "sample", "--out", str(out), "--quiet"]) == 0
    rows = list(csv.reader((out / "fig1b.csv").read_text().splitlines()))
    assert rows[0] == ["batch_size", "ratio", "satisfied", "samples"]
    assert [int(r[0]) for r in rows[1:]] == [2, 4, 8, 16, 32, 64, 128]
    assert all(int(r[3]) == 5000 for r in rows[1:])


def test_fig1_batched_evaluation_equals_literal_per_batch(sample):
    """44 digits in batches of 8 (five full batches and one of 4), against the report's sums."""
    import math

    import torch

    from engine import reference
    from engine.data import Dataset
    from engine.inputs import pixel_table, unit_rows
    from engine.layer import init_weights

    ds = Dataset(images=sample.images[:44].clone(), labels=sample.labels[:44].clone(), source="sample",
                 description="44 digits", note=None)
    cfg = Config(mode="descent", width=64, batch_size=8, dtype="float64", seed=2)
    res = theorem1_at_init(ds, cfg, 8)
    table = pixel_table(ds.images, torch.float64, "none")
    w = init_weights(64, 784, "report", torch.Generator().manual_seed(2), "cpu", torch.float64)
    order = torch.randperm(44, generator=torch.Generator().manual_seed(2 + 1_000_003))
    lhs, rhs = [], []
    for b in range(0, 44, 8):
        x = unit_rows(table[order[b:b + 8]])
        for row in reference.literal_theorem1(x, torch.relu(x @ w.T)):
            lhs.append(row["lhs"])
            rhs.append(row["rhs"])
    assert res.samples == 44
    for got, want in ((res.lhs, lhs), (res.rhs, rhs)):
        for g, v in zip(got, want, strict=True):
            assert (math.isnan(g) and math.isnan(v)) or g == pytest.approx(v, rel=1e-9)


def test_the_general_column_appears_wherever_it_can_differ_from_the_theorem():
    """Weight decay alone changes the applied step: the generalised predictor gets its column."""
    from engine.presets import figure_columns

    report = Config(mode="descent")
    assert not any("general" in c for c in figure_columns(report))
    for change in ({"weight_decay": 1e-4}, {"momentum": 0.5}, {"loss": "logistic"}, {"optimizer": "adam"}):
        assert any("general" in c for c in figure_columns(report.replace(**change))), change
