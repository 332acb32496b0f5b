"""The linear readout (engine/readout.py): its step against float64 autograd and torch's Adam, its
test error against a per-digit loop, the layers' training untouched by it, bad input refused, and a
resumed run bit for bit the uninterrupted one."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from engine import network
from engine.config import Config
from engine.data import Dataset
from engine.evaluate import Evaluation
from engine.readout import Readout, cross_entropy_gradient
from engine.trainer import Trainer
from fftui.cli import main


def literal_features(weights: list[torch.Tensor], pixels: torch.Tensor, skip_first: bool,
                     label_value: str = "one") -> torch.Tensor:
    """Row by row: the neutral label written by hand, each layer's ReLU activation divided by its
    length, the scored layers' activations side by side. float64."""
    rows = []
    for p in pixels.double():
        x = p.clone()
        tenth = (x.max() if label_value == "max" else 1.0) / 10
        for i in range(10):
            x[i] = tenth
        x = x / x.norm()
        parts = []
        for layer, w in enumerate(weights):
            h = torch.clamp(w.double() @ x, min=0)
            x = h / h.norm() if h.norm() > 0 else h
            if layer > 0 or not skip_first:
                parts.append(x)
        rows.append(torch.cat(parts))
    return torch.stack(rows)


@pytest.mark.parametrize("skip_first,label_value", [(False, "one"), (True, "max")])
def test_the_readouts_steps_are_adam_on_the_autograd_cross_entropy_gradient(skip_first, label_value):
    gen = torch.Generator().manual_seed(3)
    weights = [torch.randn(12, 30, generator=gen, dtype=torch.float64),
               torch.randn(9, 12, generator=gen, dtype=torch.float64)]
    readout = Readout((12, 9), skip_first, label_value, 0.05, torch.device("cpu"), torch.float64)
    start = torch.randn(readout.w.shape, generator=gen, dtype=torch.float64)
    readout.w.copy_(start)
    reference = torch.nn.Parameter(start.clone())
    adam = torch.optim.Adam([reference], lr=0.05, betas=(0.9, 0.999), eps=1e-8)
    assert reference.shape == (10, 9 if skip_first else 21)
    for _ in range(5):
        pixels = torch.rand(16, 30, generator=gen, dtype=torch.float64)
        labels = torch.randint(0, 10, (16,), generator=gen)
        f = literal_features(weights, pixels, skip_first, label_value)
        adam.zero_grad()
        F.cross_entropy(f @ reference.T, labels).backward()
        assert reference.grad is not None
        assert torch.allclose(cross_entropy_gradient(readout.w.clone(), f, labels), reference.grad,
                              rtol=1e-12, atol=1e-15)
        adam.step()
        readout.step(weights, pixels, labels)
        assert torch.allclose(readout.w, reference.detach(), rtol=1e-10, atol=1e-12)
    assert not torch.equal(readout.w, start)


def test_the_readouts_test_error_is_a_loop_over_the_test_digits(tmp_path, capsys, sample):
    out = tmp_path / "run"
    assert main(["run", "--headless", "--quiet", "--data", "sample", "--widths", "32,32", "--evaluate", "--readout",
                 "linear", "--batch-size", "64", "--iters", "30", "--dtype", "float64", "--out", str(out)]) == 0
    assert "linear readout's test error" in capsys.readouterr().out
    (event,) = [e for e in map(json.loads, (out / "events.jsonl").read_text().splitlines())
                if e["kind"] == "evaluation"]
    saved = load_file(str(out / "checkpoint.safetensors"))
    weights = [saved["weights/w"], saved["weights/w1"]]
    w = saved["weights/readout_w"]
    assert w.shape == (10, 64) and event["iteration"] == 30
    test = range(4, sample.size, 5)  # every fifth digit of the sample is held out
    wrong = 0
    for k in test:
        f = literal_features(weights, sample.images[k:k + 1].double() / 255.0, skip_first=False)[0]
        wrong += int(int(torch.argmax(w.double() @ f)) != int(sample.labels[k]))
    assert event["total"] == len(test) == 1000
    assert event["readout_wrong"] == wrong and event["readout_error"] == wrong / 1000
    assert 0 < wrong < 900  # it learnt something in 30 batches


def stack_config(**changes) -> Config:
    return Config().replace(**{"widths": "24,24", "batch_size": 16, "evaluate": True, "optimizer": "adam",
                               **changes})


@pytest.mark.parametrize("changes", [{}, {"widths": "24", "optimizer": "sgd"}, {"negatives": "hard"},
                                     {"score_layers": "skip-first", "negatives": "shuffled", "label_value": "max"}])
def test_the_readout_leaves_the_layers_training_bit_for_bit(small_sample, changes):
    runs = []
    for readout in ("none", "linear"):
        trainer = Trainer(stack_config(readout=readout, **changes), small_sample)
        for _ in range(7):
            trainer.step()
        runs.append(trainer)
    plain, read = runs
    assert plain.readout is None and read.readout is not None and read.readout.optimizer.steps == 7
    assert torch.count_nonzero(read.readout.w) > 0
    for a, b in zip([plain.w, *(u.w for u in plain.upper)], [read.w, *(u.w for u in read.upper)], strict=True):
        assert torch.equal(a, b)
    for a_opt, b_opt in zip([plain.optimizer, *(u.optimizer for u in plain.upper)],
                            [read.optimizer, *(u.optimizer for u in read.upper)], strict=True):
        assert a_opt.steps == b_opt.steps
        for key in ("_m", "_v"):
            a_state, b_state = getattr(a_opt, key), getattr(b_opt, key)
            assert (a_state is None and b_state is None) or torch.equal(a_state, b_state)
    assert torch.equal(plain.batcher.generator.get_state(), read.batcher.generator.get_state())


def test_a_live_change_makes_drops_or_retunes_the_readout(small_sample):
    trainer = Trainer(stack_config(), small_sample)
    assert trainer.readout is None
    assert trainer.apply(trainer.cfg.replace(readout="linear")) is False
    assert trainer.readout is not None and trainer.readout.optimizer.lr == 1e-3
    trainer.step()
    kept = trainer.readout
    trainer.apply(trainer.cfg.replace(lr=5e-3))
    assert trainer.readout is kept and kept.optimizer.lr == 5e-3 and kept.optimizer.steps == 1
    trainer.apply(trainer.cfg.replace(score_layers="skip-first"))
    assert trainer.readout is not kept and trainer.readout.w.shape == (10, 24)
    trainer.apply(trainer.cfg.replace(readout="none"))
    assert trainer.readout is None


@pytest.mark.parametrize("flags,line", [
    (["--readout", "linear"], "fftui run: readout linear needs ff mode with evaluate on: it is tested beside the "
     "goodness classifier"),
    (["--mode", "descent", "--readout", "linear"], "fftui run: readout linear needs ff mode with evaluate on: it "
     "is tested beside the goodness classifier"),
    (["--evaluate", "--readout", "softmax"], "fftui run: argument --readout: invalid choice: 'softmax' (choose from "
     "'none', 'linear') (see fftui run --help)"),
])
def test_bad_readouts_are_refused_in_one_line(flags, line, capsys, tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--headless", "--data", "sample", "--iters", "1", "--out", str(out), *flags]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [line]
    assert not out.exists()


def test_a_resumed_run_with_a_readout_is_the_uninterrupted_run(tmp_path, capsys):
    fast = ["run", "--headless", "--quiet", "--data", "sample", "--widths", "24,24", "--evaluate", "--readout",
            "linear", "--optimizer", "adam", "--batch-size", "100"]
    first, whole = tmp_path / "first", tmp_path / "whole"
    assert main([*fast, "--iters", "13", "--out", str(first)]) == 0
    assert main([*fast, "--iters", "50", "--out", str(whole)]) == 0
    assert main(["run", "--headless", "--quiet", "--resume", str(first), "--iters", "50"]) == 0
    a, b = (load_file(str(f / "checkpoint.safetensors")) for f in (first, whole))
    assert a.keys() == b.keys() and {"weights/readout_w", "optimizer/readout_m", "optimizer/readout_v",
                                     "optimizer/readout_steps"} <= a.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert int(a["optimizer/readout_steps"][0]) == 50

    def evaluations(folder: Path) -> list[tuple]:
        return [(e["iteration"], e["test_error"], e["readout_error"], e["readout_wrong"])
                for e in map(json.loads, (folder / "events.jsonl").read_text().splitlines())
                if e["kind"] == "evaluation" and e["iteration"] > 13]
    assert evaluations(first) == evaluations(whole) and [e[0] for e in evaluations(whole)] == [40, 50]


def test_a_checkpoint_without_the_readout_is_refused(tmp_path, capsys):
    folder = tmp_path / "run"
    assert main(["run", "--headless", "--quiet", "--data", "sample", "--widths", "24,24", "--evaluate",
                 "--iters", "3", "--out", str(folder)]) == 0
    config = json.loads((folder / "config.json").read_text())
    config["config"]["readout"] = "linear"
    (folder / "config.json").write_text(json.dumps(config))
    before = (folder / "checkpoint.safetensors").read_bytes()
    assert main(["run", "--headless", "--quiet", "--resume", str(folder), "--iters", "6"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "fftui: the checkpoint holds no state of the linear readout the configuration has"
    assert (folder / "checkpoint.safetensors").read_bytes() == before


def test_the_readouts_error_follows_the_goodness_classifiers(tmp_path):
    from fftui.headless.summary import evaluation_lines
    from fftui.widgets.layers import test_error_text

    with_readout = Evaluation(400, 2, 42, 1000, "skip-first", "1,000 digits of the shipped sample", 31)
    without = Evaluation(400, 2, 42, 1000, "skip-first", "1,000 digits of the shipped sample")
    assert with_readout.fields()["readout_error"] == 0.031 and "readout_error" not in without.fields()
    assert with_readout.sentence().startswith("test error 4.2 % (linear readout 3.1 %) after 400 iterations: 42 of")
    assert "readout" not in without.sentence()
    assert test_error_text(with_readout) == ("test error 4.2 % (linear readout 3.1 %) after epoch 2 (1,000 held-out "
                                             "digits of the sample)")
    lines = evaluation_lines([with_readout])
    assert len(lines) == 2 and "linear readout's test error 3.10 % (31 of 1,000" in lines[1]
    assert len(evaluation_lines([without])) == 1


def test_the_loewex_preset_trains_the_readout():
    from engine.presets import PRESETS

    preset = PRESETS["loewex"]
    assert preset.config.readout == "linear" and "linear readout is that classifier" in preset.claim


def test_the_captured_steps_path_trains_the_readout_as_the_eager_path(small_sample):
    """The path a CUDA graph takes (its CPU stand-in): the readout steps before the captured layer's
    step, on the same images, as on the eager path."""
    cfg = stack_config(widths="24", optimizer="sgd", readout="linear")
    eager, captured = Trainer(cfg, small_sample), Trainer(cfg, small_sample)
    plain = Trainer(cfg.replace(readout="none"), small_sample)
    for trainer in (eager, captured, plain):
        if trainer is not eager:
            trainer.plan = dataclasses.replace(trainer.plan, captured=True)
        for _ in range(7):
            trainer.step()
    assert captured._captured and eager.readout is not None and captured.readout is not None
    assert torch.equal(captured.w, eager.w) and torch.equal(plain.w, captured.w)
    assert torch.equal(captured.readout.w, eager.readout.w) and captured.readout.optimizer.steps == 7


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_on_cuda_the_captured_step_is_untouched_by_the_readout(small_sample):
    data = Dataset(images=small_sample.images.cuda(), labels=small_sample.labels.cuda(), source="sample",
                   description=small_sample.description, note=None)
    runs = []
    for readout in ("none", "linear"):
        trainer = Trainer(stack_config(widths="24", optimizer="sgd", readout=readout), data, graphs=True)
        for _ in range(7):
            trainer.step()
        assert trainer.plan.captured and trainer.graph_error is None
        runs.append(trainer)
    plain, read = runs
    assert torch.equal(plain.w, read.w) and read.readout is not None and read.readout.optimizer.steps == 7
    evaluation = network.evaluate(read)
    assert evaluation is not None and evaluation.readout_wrong is not None
