"""--normalize and --label-value: the inputs built as each option says, checked against a literal
per-sample construction in float64 numpy; the report's definitions stay the default."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.config import Config
from engine.inputs import LABEL_PIXELS, assemble, pixel_table
from engine.trainer import Trainer


def literal_table(images: np.ndarray, normalize: str) -> np.ndarray:
    x = images.reshape(images.shape[0], -1).astype(np.float64) / 255.0
    if normalize == "global":
        return (x - x.mean()) / x.std(ddof=1)
    if normalize == "per-pixel":
        std = x.std(axis=0, ddof=1)
        return (x - x.mean(axis=0)) / np.where(std > 1e-8, std, 1.0)
    return x


@pytest.mark.parametrize("normalize", ["none", "global", "per-pixel"])
def test_the_table_is_normalised_as_asked(small_sample, normalize):
    got = pixel_table(small_sample.images, torch.float64, normalize).numpy()
    want = literal_table(small_sample.images.numpy(), normalize)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    if normalize == "global":
        assert abs(got.mean()) < 1e-12 and abs(got.std(ddof=1) - 1) < 1e-12


def test_global_uses_the_data_not_constants(small_sample):
    x = small_sample.images.double().div(255)
    table = pixel_table(small_sample.images, torch.float64, "global")
    # the first pixel (background, 0) lands at -mean/std of this data set
    assert table[0, 0].item() == pytest.approx((-x.mean() / x.std()).item(), rel=1e-12)


def test_an_unknown_normalisation_is_refused():
    with pytest.raises(ValueError, match="normalize must be none, global or per-pixel"):
        pixel_table(torch.zeros(2, 4, dtype=torch.uint8), torch.float32, "zscore")


@pytest.mark.parametrize("label_value", ["one", "max"])
@pytest.mark.parametrize("normalize", ["none", "global"])
def test_ff_batches_write_the_label_as_asked(small_sample, label_value, normalize):
    table = pixel_table(small_sample.images, torch.float64, normalize)
    idx = torch.tensor([3, 17, 250, 511])
    shift = torch.tensor([1, 9, 4, 5])
    x = assemble(table, small_sample.labels, idx, shift, "ff", label_value).numpy()
    rows = table.numpy()
    labels = small_sample.labels.numpy()
    for k in range(8):  # literally, one sample at a time: positives, then the same images as negatives
        i = int(idx[k % 4])
        label = labels[i] if k < 4 else (labels[i] + int(shift[k % 4])) % 10
        row = rows[i].copy()
        value = row.max() if label_value == "max" else 1.0
        row[:LABEL_PIXELS] = 0.0
        row[label] = value
        row /= np.linalg.norm(row)
        np.testing.assert_allclose(x[k], row, rtol=1e-12, atol=1e-15)


def test_the_report_definitions_are_the_default():
    cfg = Config()
    assert cfg.normalize == "none" and cfg.label_value == "one"


def test_training_and_the_captured_step_use_the_pipeline(small_sample):
    cfg = Config(mode="ff", width=32, batch_size=16, lr=0.01, normalize="global", label_value="max", seed=2)
    trainer = Trainer(cfg, small_sample)
    idx = torch.arange(cfg.batch_size)
    shift = torch.ones(cfg.batch_size, dtype=torch.long)
    with torch.inference_mode():
        w0 = trainer.w.clone()
        captured = trainer.step_function(cfg.batch_size)(idx, shift)
        w_captured = trainer.w.clone()
        trainer.w.copy_(w0)
        x = assemble(trainer.batcher.table, trainer.batcher.labels, idx, shift, "ff", "max")
        step = trainer.train_math(x, cfg.batch_size)
        eager = trainer.pack_meta(x.shape[0]).layout.pack(trainer.measure(x, cfg.batch_size, step))
    torch.testing.assert_close(captured, eager)
    torch.testing.assert_close(trainer.w, w_captured)
    default = Trainer(cfg.replace(normalize="none", label_value="one"), small_sample)
    assert not torch.equal(default.batcher.table, trainer.batcher.table)
    record = trainer.step()
    assert np.isfinite(record.loss)
