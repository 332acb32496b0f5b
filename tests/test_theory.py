"""The batched theory against the report's sums evaluated literally, and the closed forms
against autograd."""
import math

import pytest
import torch

from engine import reference, theory
from engine.inputs import unit_rows
from engine.layer import forward, goodness, gradient, loss_and_weights, theorem_weights


def random_batch(batch, m, n, signed, seed):
    g = torch.Generator().manual_seed(seed)
    raw = torch.randn(batch, m, generator=g, dtype=torch.float64)
    if not signed:
        raw = raw.abs() * (torch.rand(batch, m, generator=g, dtype=torch.float64) < 0.4)
    x = unit_rows(raw)
    w = torch.randn(n, m, generator=g, dtype=torch.float64) * math.sqrt(2.0 / n)
    return x, w


@pytest.mark.parametrize("signed", [False, True], ids=["non-negative", "standardised"])
def test_theorem1_batched_equals_literal(signed):
    x, w = random_batch(20, 40, 60, signed, seed=1)
    z, h = forward(w, x)
    c = theorem_weights("descent", 20, 20, h)
    p, q_scaled = theory.kernel_sums(theory.kernel_drive(theory.input_kernel(x), c, h), h)
    l1, l2 = theory.norms(h)
    lhs, rhs = theory.theorem1_sides(p, q_scaled, l1, l2)
    pred = theory.kernel_prediction(p, q_scaled, l1, goodness(h))
    lit = reference.literal_theorem1(x, h)
    active = 0
    for i, row in enumerate(lit):
        assert p[i].item() == pytest.approx(row["P"], rel=1e-10, abs=1e-12)
        if l2[i] > 0:
            active += 1
            assert (q_scaled[i] / l2[i]).item() == pytest.approx(row["Q"], rel=1e-10, abs=1e-12)
            assert lhs[i].item() == pytest.approx(row["lhs"], rel=1e-10)
            assert rhs[i].item() == pytest.approx(row["rhs"], rel=1e-8)
        else:
            assert math.isnan(lhs[i].item()) and math.isnan(row["lhs"])
        assert bool(pred[i]) == row["predicted"]
    assert active >= 15


@pytest.mark.parametrize("signed", [False, True], ids=["non-negative", "standardised"])
def test_theorem2_batched_equals_literal(signed):
    n_pos = 9
    x, w = random_batch(2 * n_pos, 40, 60, signed, seed=2)
    z, h = forward(w, x)
    c = theorem_weights("ff", 2 * n_pos, n_pos, h)
    p, q_scaled = theory.kernel_sums(theory.kernel_drive(theory.input_kernel(x), c, h), h)
    l1, l2 = theory.norms(h)
    lhs, rhs = theory.theorem2_sides(p, q_scaled, l1, l2)
    pred = theory.kernel_prediction(p, q_scaled, l1, goodness(h))
    lit = reference.literal_theorem2(x, h, n_pos)
    agree_pred = 0
    for i, row in enumerate(lit):
        if l2[i] == 0:
            assert math.isnan(lhs[i].item()) and not bool(pred[i]) and not row["predicted"]
            continue
        assert lhs[i].item() == pytest.approx(row["lhs"], rel=1e-9, abs=1e-12)
        assert rhs[i].item() == pytest.approx(row["rhs"], rel=1e-9, abs=1e-12)
        assert bool(pred[i]) == row["predicted"]
        agree_pred += 1
    assert agree_pred >= 14


def test_hoyer_matches_literal_and_marks_silenced():
    x, w = random_batch(12, 30, 50, False, seed=3)
    _, h = forward(w, x)
    h[3] = 0.0
    s = theory.hoyer_sparsity(h)
    for i in range(12):
        want = reference.literal_hoyer(h[i])
        if math.isnan(want):
            assert math.isnan(s[i].item())
        else:
            assert s[i].item() == pytest.approx(want, rel=1e-12)
    assert math.isnan(s[3].item())
    one_hot = torch.zeros(1, 50, dtype=torch.float64)
    one_hot[0, 7] = 2.5
    assert theory.hoyer_sparsity(one_hot).item() == pytest.approx(1.0)
    assert theory.hoyer_sparsity(torch.ones(1, 50, dtype=torch.float64)).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("mode", ["descent", "ff"])
@pytest.mark.parametrize("loss", ["linear", "logistic"])
def test_closed_form_gradient_equals_autograd(mode, loss):
    n_pos = 6
    x, w = random_batch(12, 30, 40, False, seed=4)
    w = w.clone().requires_grad_(True)
    _, h = forward(w, x)
    g = goodness(h)
    value, _ = loss_and_weights(mode, loss, g, n_pos, theta=1.3)
    value.backward()
    with torch.no_grad():
        _, h0 = forward(w, x)
        _, c = loss_and_weights(mode, loss, goodness(h0), n_pos, theta=1.3)
        closed = gradient(h0, x, c)
    torch.testing.assert_close(closed, w.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("loss", ["linear", "logistic"])
def test_loss_weights_are_autograd_derivative(loss):
    g = torch.linspace(0.1, 4.0, 10, dtype=torch.float64, requires_grad=True)
    value, c = loss_and_weights("ff", loss, g, 5, theta=2.0)
    value.backward()
    torch.testing.assert_close(c.detach(), g.grad)
    if loss == "linear":
        assert c[:5].eq(-1).all() and c[5:].eq(1).all()


def test_z_shortcut_equals_second_pass():
    n_pos = 10
    x, w = random_batch(2 * n_pos, 50, 70, False, seed=5)
    lr, wd = 0.01, 0.1
    z, h = forward(w, x)
    _, c = loss_and_weights("ff", "logistic", goodness(h), n_pos, theta=1.0)
    w_new = w - lr * (gradient(h, x, c) + wd * w)
    z_direct = x @ w_new.T
    drive = theory.kernel_drive(theory.input_kernel(x), c, h)
    z_short = z - 2 * lr * drive - lr * wd * z
    torch.testing.assert_close(z_short, z_direct, rtol=1e-10, atol=1e-12)


def test_change_prediction_equals_kernel_prediction_for_plain_sgd():
    x, w = random_batch(16, 40, 80, True, seed=6)
    z, h = forward(w, x)
    c = theorem_weights("ff", 16, 8, h)
    drive = theory.kernel_drive(theory.input_kernel(x), c, h)
    p, qs = theory.kernel_sums(drive, h)
    l1, _ = theory.norms(h)
    g = goodness(h)
    by_kernel = theory.kernel_prediction(p, qs, l1, g)
    by_change, dl1, _ = theory.change_prediction(-2e-3 * drive, h, l1, g)
    assert torch.equal(by_kernel, by_change)
    torch.testing.assert_close(dl1, -2e-3 * p)


def test_sign_flip_fraction_counts_changes():
    a = torch.tensor([[1.0, -1.0, 2.0, -3.0]])
    b = torch.tensor([[1.0, 1.0, -2.0, -3.0]])
    assert theory.sign_flip_fraction(a, b).item() == pytest.approx(0.5)
