"""A stack of FF layers: every layer's metrics against a literal float64 computation, one sample at a
time, with each layer's input built by hand; the first layer of a stack is the one-layer run; the
goodness classifier against a per-image loop; the negative strategies' properties; bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine import network
from engine.config import Config, ConfigError
from engine.data import Dataset
from engine.evaluate import count_wrong, split_for_evaluation
from engine.negatives import (
    check_labels,
    hard_labels,
    hybrid_batch,
    negative_batch,
    shuffled_labels,
    with_label,
)
from engine.reference import literal_hoyer, literal_theorem2
from engine.trainer import Trainer


@pytest.fixture(scope="module")
def mixed(sample):
    """400 shipped digits of every class (the sample is sorted by class: every 12th)."""
    return Dataset(images=sample.images[::12][:400].clone(), labels=sample.labels[::12][:400].clone(),
                   source="sample", description="400 shipped digits", note=None)


def unit(v: torch.Tensor) -> torch.Tensor:
    n = math.sqrt(sum(float(a) ** 2 for a in v))
    return v / n if n > 0 else v.clone()


def literal_layer_input(h: torch.Tensor) -> torch.Tensor:
    """Rows of h scaled to unit length one by one (a zero row stays zero)."""
    return torch.stack([unit(row) for row in h])


def literal_step(w: torch.Tensor, x: torch.Tensor, n_pos: int, lr: float, loss: str, optimizer: str,
                 theta: float) -> torch.Tensor:
    """W' after one step, summing the gradient sample by sample: dL/dW = sum_k 2 c_k h_k x_k^T with
    c_k = dL/dg_k (linear: -1 positives, +1 negatives; logistic: the sigmoid weights). Adam's first
    step is -lr g / (|g| + eps) (its bias-corrected moments are g and g^2)."""
    grad = torch.zeros_like(w)
    for k in range(x.shape[0]):
        h = torch.relu(w @ x[k])
        g = float(h @ h)
        sign = -1.0 if k < n_pos else 1.0
        c = sign if loss == "linear" else sign / (1.0 + math.exp(-sign * (g - theta)))
        grad += 2.0 * c * torch.outer(h, x[k])
    if optimizer == "adam":
        return w - lr * grad / (grad.abs() + 1e-8)
    return w - lr * grad


def first_batch(trainer: Trainer):
    """The first batch the trainer will train on, recorded as it is made."""
    seen = {}
    make = trainer.next_batch

    def recording():
        x, n_pos = make()
        seen["x"], seen["n_pos"] = x.clone(), n_pos
        return x, n_pos

    trainer.next_batch = recording  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("loss,optimizer", [("linear", "sgd"), ("logistic", "sgd"), ("logistic", "adam")])
def test_every_layer_of_a_stack_against_a_literal_computation(mixed, loss, optimizer):
    cfg = Config(widths=(24, 16, 12), batch_size=6, iters=1, dtype="float64", loss=loss, optimizer=optimizer,
                 theta=0.5, layer_lr=(1.0, 2.0, 0.5), lr=0.05, seed=3)
    trainer = Trainer(cfg, mixed)
    before = [w.clone() for w in network.weights(trainer)]
    seen = first_batch(trainer)
    chunks = trainer.advance() + trainer.flush()
    chunk = chunks[-1]
    x, n_pos = seen["x"].double(), seen["n_pos"]
    assert len(chunk.layers) == 3 and chunk.layer_column("lhs").shape == (1, 3, 2, 6)
    inputs, after = x, []
    for layer, w in enumerate(before):
        w_new = literal_step(w, inputs, n_pos, cfg.layer_rates[layer], loss, optimizer, cfg.theta)
        after.append(w_new)
        assert torch.allclose(network.weights(trainer)[layer], w_new, rtol=1e-9, atol=1e-12), layer
        h = torch.stack([torch.relu(w @ row) for row in inputs])
        sides = literal_theorem2(inputs, h, n_pos)
        lhs = chunk.layer_column("lhs")[0, layer].reshape(-1)
        rhs = chunk.layer_column("rhs")[0, layer].reshape(-1)
        predicted = chunk.layer_column("predicted_theorem")[0, layer].reshape(-1)
        actual = chunk.layer_column("actual")[0, layer].reshape(-1)
        for i, row in enumerate(sides):
            if math.isnan(row["lhs"]):
                assert math.isnan(lhs[i]) and not predicted[i]
                continue
            assert lhs[i] == pytest.approx(row["lhs"], rel=1e-5, abs=1e-7)
            assert rhs[i] == pytest.approx(row["rhs"], rel=1e-5, abs=1e-7)
            if abs(row["lhs"] - row["rhs"]) > 1e-9 * (abs(row["lhs"]) + abs(row["rhs"])) and predicted[i]:
                assert row["predicted"]
            s0 = literal_hoyer(h[i])
            s1 = literal_hoyer(torch.relu(w_new @ inputs[i]))
            if math.isnan(s1):
                assert actual[i] == -1
            elif abs(s1 - s0) > 1e-9:
                assert actual[i] == int(s1 > s0), (layer, i)
        # the group means of goodness and Hoyer sparsity
        good = chunk.layer_column("goodness")[0, layer]
        for gi, rows in enumerate((range(0, n_pos), range(n_pos, 2 * n_pos))):
            assert good[gi] == pytest.approx(np.mean([float(h[k] @ h[k]) for k in rows]), rel=1e-12)
            active = [literal_hoyer(h[k]) for k in rows if float(h[k].abs().sum()) > 0]
            if active:
                assert chunk.layer_column("sparsity")[0, layer, gi] == pytest.approx(np.mean(active), rel=1e-9)
        silenced_in = int(sum(float(row.abs().sum()) == 0 for row in inputs)) if layer else 0
        assert chunk.layer_column("input_silenced")[0, layer].sum() == silenced_in
        inputs = literal_layer_input(h)  # the activation before the step: the next layer's input
    # end to end: the batch through the new network, each layer's input the new layer below's
    new_input, h_old_input = x, x
    for layer in range(3):
        h_old = torch.stack([torch.relu(before[layer] @ row) for row in h_old_input])
        h_end = torch.stack([torch.relu(after[layer] @ row) for row in new_input])
        ends = chunk.layer_column("actual_end")[0, layer].reshape(-1)
        for i in range(x.shape[0]):
            s0, s1 = literal_hoyer(h_old[i]), literal_hoyer(h_end[i])
            if math.isnan(s0) or math.isnan(s1):
                assert ends[i] == -1
            elif abs(s1 - s0) > 1e-9:
                assert ends[i] == int(s1 > s0), (layer, i)
        valid = ends >= 0
        theorem = chunk.layer_column("predicted_theorem")[0, layer].reshape(-1)
        agree = [(theorem[i] == bool(ends[i])) for i in range(len(ends)) if valid[i]]
        per_group = chunk.layer_column("agree_theorem_end")[0, layer]
        if valid.all():
            assert np.mean(per_group) == pytest.approx(np.mean(agree))
        h_old_input = literal_layer_input(h_old)
        new_input = literal_layer_input(h_end)


def test_the_first_layer_of_a_stack_is_the_one_layer_run(mixed):
    one = Trainer(Config(width=32, batch_size=16, iters=6, seed=5), mixed)
    two = Trainer(Config(widths=(32, 8), batch_size=16, iters=6, seed=5), mixed)
    a = [one.advance() for _ in range(6)]
    b = [two.advance() for _ in range(6)]
    first = [c for cs in a for c in cs] + one.flush()
    stack = [c for cs in b for c in cs] + two.flush()
    assert torch.equal(one.w, two.w)
    for name in ("loss", "goodness", "sparser", "theorem", "lhs", "rhs", "actual", "predicted_general"):
        want = np.concatenate([c.column(name) for c in first])
        got = np.concatenate([c.layers[0].column(name) for c in stack])
        assert np.array_equal(want, got, equal_nan=True), name
    assert Config(widths=(32,)) == Config(width=32)  # one entry is one layer of that width


def test_width_and_widths_stay_one_number():
    cfg = Config(widths=(100, 50))
    assert cfg.width == 100 and cfg.layer_widths == (100, 50)
    assert cfg.replace(width=300).widths == (300, 50)
    assert cfg.replace(widths="7,8,9").width == 7
    with pytest.raises(ConfigError, match="differs from the first entry"):
        Config().replace(width=10, widths="20,30")


def literal_classify(weights, pixels, labels, skip_first=False, label_value="one") -> int:
    """Per image and label: the label written into the head, the row scaled to unit length, the
    goodness summed over the layers (each layer's input the unit-length activation below)."""
    wrong = 0
    for img, label in zip(pixels, labels, strict=True):
        best, best_score = None, -math.inf
        for c in range(10):
            x = img.clone()
            top = float(x.max())
            x[:10] = 0.0
            x[c] = 1.0 if label_value == "one" else top
            x = unit(x)
            score = 0.0
            for layer, w in enumerate(weights):
                h = torch.relu(w @ x)
                if layer or not skip_first:
                    score += float(h @ h)
                x = unit(h)
            if score > best_score:
                best, best_score = c, score
        wrong += best != int(label)
    return wrong


@pytest.mark.parametrize("skip_first,label_value", [(False, "one"), (True, "one"), (False, "max")])
def test_the_classifier_against_a_per_image_loop(skip_first, label_value):
    gen = torch.Generator().manual_seed(11)
    weights = [torch.randn(20, 784, generator=gen, dtype=torch.float64),
               torch.randn(15, 20, generator=gen, dtype=torch.float64),
               torch.randn(9, 15, generator=gen, dtype=torch.float64)]
    pixels = torch.rand(37, 784, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 10, (37,), generator=gen)
    want = literal_classify(weights, pixels, labels, skip_first, label_value)
    got = count_wrong(weights, pixels, labels, label_value, skip_first, rows=8)
    assert int(got) == want and 0 < want < 37


def test_the_sample_holds_out_every_fifth_digit_and_the_trainer_evaluates_on_it(sample):
    cfg = Config(widths=(16, 8), batch_size=50, iters=2, evaluate=True)
    train, test = split_for_evaluation(sample, cfg)
    assert (train.size, test.size) == (4000, 1000)
    assert torch.equal(test.images, sample.images[4::5]) and torch.equal(test.labels, sample.labels[4::5])
    assert torch.bincount(test.labels).tolist() == [100] * 10
    kept = torch.ones(5000, dtype=torch.bool)
    kept[4::5] = False
    assert torch.equal(train.images, sample.images[kept])
    trainer = Trainer(cfg, sample)
    assert trainer.dataset.size == 4000 and trainer.batcher.size == 4000
    result = network.evaluate(trainer)
    assert result is not None and result.total == 1000
    pixels = test.images.double() / 255.0
    assert result.wrong == literal_classify([w.double() for w in network.weights(trainer)], pixels, test.labels)


def test_shuffled_labels_are_another_samples_and_never_the_true_one():
    gen = torch.Generator().manual_seed(0)
    for rounds in range(20):
        labels = torch.randint(0, 10, (64,), generator=gen)
        if rounds % 4 == 0:
            labels[:60] = 3  # nearly every sample of one class: some find no partner by drawing
        wrong = shuffled_labels(labels, gen)
        assert (wrong != labels).all()
        assert ((wrong >= 0) & (wrong < 10)).all()
        if rounds % 4:
            assert set(wrong.tolist()) <= set(labels.tolist())


def test_hard_negatives_take_the_wrong_label_of_the_highest_goodness():
    gen = torch.Generator().manual_seed(4)
    weights = [torch.randn(30, 784, generator=gen, dtype=torch.float64),
               torch.randn(10, 30, generator=gen, dtype=torch.float64)]
    pixels = torch.rand(12, 784, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 10, (12,), generator=gen)
    got = hard_labels(weights, pixels, labels)
    for i in range(12):
        scores = []
        for c in range(10):
            x = pixels[i].clone()
            x[:10] = 0.0
            x[c] = 1.0
            x = unit(x)
            h0 = torch.relu(weights[0] @ x)
            h1 = torch.relu(weights[1] @ unit(h0))
            scores.append(float(h0 @ h0 + h1 @ h1) if c != int(labels[i]) else -math.inf)
        assert int(got[i]) == int(np.argmax(scores))
    # and the batch writes it as any label is written
    table = pixels
    idx = torch.arange(12)
    x = negative_batch("hard", table, labels, idx, gen, "one", weights)
    assert torch.equal(x[12:], with_label(pixels, got))
    assert torch.equal(x[:12], with_label(pixels, labels))


def test_hybrid_negatives_mix_two_digits_of_different_classes_without_labels():
    gen = torch.Generator().manual_seed(2)
    labels = torch.randint(0, 10, (40,), generator=gen)
    table = (labels.double().unsqueeze(1) + 1.0).repeat(1, 784)  # digit of class k: every pixel k + 1
    x = hybrid_batch(table, labels, torch.arange(40), gen)
    assert x.shape == (80, 784) and (x[:, :10] == 0).all()
    for i in range(40):
        row = x[40 + i, 10:]
        values = sorted(set(torch.round(row / row.min(), decimals=9).tolist()))
        assert len(values) <= 2
        if len(values) == 2:  # the ratio of the two digits' values: two different classes
            own = float(labels[i]) + 1.0
            assert any(abs(values[1] * min(own, p) - max(own, p)) < 1e-6 for p in range(1, 11) if p != own)


def test_negative_strategies_train_a_stack(mixed):
    for strategy in ("hard", "shuffled", "hybrid"):
        trainer = Trainer(Config(widths=(16, 8), batch_size=8, iters=2, negatives=strategy), mixed)
        chunks = trainer.advance() + trainer.advance() + trainer.flush()
        assert trainer.iteration == 2 and sum(len(c) for c in chunks) == 2


def test_strategies_need_labels_of_two_classes():
    one_class = torch.zeros(30, dtype=torch.long)
    with pytest.raises(ConfigError, match="^negatives shuffled need digits of at least two classes"):
        check_labels(Config(negatives="shuffled"), one_class)
    check_labels(Config(negatives="shuffled"), torch.tensor([0, 1]))
    check_labels(Config(mode="descent"), one_class)


BAD = [
    (["--widths", ""], "fftui run: --widths needs a value, not ''"),
    (["--widths", "0"], "fftui run: widths must be between 2 and 1000000, not 0 (an entry of widths)"),
    (["--widths=-5,10"], "fftui run: widths must be between 2 and 1000000, not -5 (an entry of widths)"),
    (["--widths", "100,1.5"], "fftui run: widths must be a whole number, not '1.5'"),
    (["--widths", "100,abc"], "fftui run: widths must be a whole number, not 'abc'"),
    (["--widths", ",".join(["10"] * 17)], "fftui run: widths takes at most 16 entries, not 17"),
    (["--widths", "100,100", "--layer-lr", "1"],
     "fftui run: layer_lr has 1 entries but the network has 2 layers (widths 100,100); give one per layer"),
    (["--mode", "descent", "--negatives", "hard"], "fftui run: negatives hard need ff mode: descent mode has no "
     "negatives"),
    (["--evaluate", "--negatives", "hybrid"], "fftui run: evaluate cannot score a network trained on hybrid "
     "negatives: no input carries a label"),
]


@pytest.mark.parametrize("flags,line", BAD)
def test_bad_stacks_are_refused_in_one_line(flags, line, capsys, tmp_path):
    from fftui.cli import main

    out = tmp_path / "run"
    assert main(["run", "--headless", "--data", "sample", "--iters", "1", "--out", str(out), *flags]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [line]
    assert not out.exists()


def test_a_stack_too_large_for_memory_is_refused_before_anything_starts(capsys, tmp_path):
    from fftui.cli import main

    out = tmp_path / "run"
    assert main(["run", "--headless", "--data", "sample", "--iters", "1", "--out", str(out),
                 "--widths", "1000000,1000000,1000000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "widths 1000000,1000000,1000000 need about" in err[0]
    assert not any(out.glob("*.json"))


@pytest.mark.parametrize("loss,opt,momentum", [("linear", "sgd", 0.0), ("logistic", "sgd", 0.0),
                                               ("linear", "sgd", 0.9), ("logistic", "adam", 0.0)])
def test_small_steps_every_layer_predicted_by_the_generalised_predictor(mixed, loss, opt, momentum):
    """The one-layer target at every layer of a 3-layer stack: in float64 with a small step, the
    generalised prediction (the layer's input held fixed) equals the literal outcome for at least
    99.9 % of the valid samples."""
    from engine.reference import literal_outcome

    cfg = Config(widths=(300, 200, 100), loss=loss, optimizer=opt, momentum=momentum, lr=1e-7, batch_size=24,
                 dtype="float64", theta=1.0, seed=3)
    trainer = Trainer(cfg, mixed)
    agree = [0, 0, 0]
    total = [0, 0, 0]
    for _ in range(4):
        before = [w.clone() for w in network.weights(trainer)]
        seen = first_batch(trainer)
        chunk = (trainer.advance() + trainer.flush())[-1]
        trainer.next_batch = type(trainer).next_batch.__get__(trainer)  # type: ignore[method-assign]
        inputs = seen["x"]
        for layer in range(3):
            outcome = np.array(literal_outcome(before[layer], network.weights(trainer)[layer], inputs))
            predicted = chunk.layer_column("predicted_general")[-1, layer].reshape(-1)
            valid = outcome >= 0
            agree[layer] += int((predicted[valid] == (outcome[valid] == 1)).sum())
            total[layer] += int(valid.sum())
            inputs = literal_layer_input(torch.relu(inputs @ before[layer].T))
    for layer in range(3):
        assert total[layer] >= 4 * 48 * 0.9, layer
        assert agree[layer] / total[layer] >= 0.999, (layer, agree[layer], total[layer])


def write_idx(path, array: np.ndarray) -> None:
    """An uncompressed IDX file of unsigned bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_evaluate_without_mnists_test_split_is_refused_before_anything_starts(tmp_path, capsys):
    from fftui.cli import main

    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (40, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(40) % 10)
    out = tmp_path / "run"
    args = ["run", "--headless", "--data", "mnist", "--data-dir", str(tmp_path), "--iters", "1", "--out", str(out)]
    assert main([*args, "--evaluate"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fftui: MNIST's test split (t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) is not in "
                   f"{tmp_path}; evaluate needs it"]
    assert not any(out.glob("*.json"))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (12, 28, 28)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(12) % 10)
    assert main([*args, "--evaluate", "--widths", "16,8", "--batch-size", "8", "--quiet"]) == 0
    captured = capsys.readouterr().out
    assert "test error" in captured and "of 12: MNIST's 12 test digits" in captured
