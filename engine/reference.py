"""The report's sums evaluated literally, one sample and one partner at a time.

Slow on purpose of being obvious: it is the yardstick the batched theory is tested against and
the baseline the benchmark compares with. Float64 throughout."""
from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


def _cos(a: Tensor, b: Tensor) -> float:
    na, nb = float(a.norm()), float(b.norm())
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(a @ b) / (na * nb)


def literal_sums(x: Tensor, h: Tensor, c: list[float]) -> list[tuple[float, float]]:
    """Per sample i: P_i = sum_k c_k |h_k * m_i|_1 cos(x_k, x_i) and
    Q_i = sum_k c_k |h_k * m_i|_2 cos(h_i, h_k * m_i) cos(x_k, x_i) (eq. 6, 8)."""
    x = x.double()
    h = h.double()
    out = []
    for i in range(h.shape[0]):
        m_i = (h[i] > 0).double()
        p = q = 0.0
        for k in range(h.shape[0]):
            hkm = h[k] * m_i
            cx = _cos(x[k], x[i])
            p += c[k] * float(hkm.abs().sum()) * cx
            q += c[k] * float(hkm.norm()) * _cos(h[i], hkm) * cx
        out.append((p, q))
    return out


def literal_theorem1(x: Tensor, h: Tensor) -> list[dict]:
    """Theorem 1 per sample (eq. 6): LHS = |h_i|_1/|h_i|_2, RHS = P_i/Q_i, and whether decreasing the
    goodness is predicted to make h_i sparser (eq. 11 with the first-order changes of eq. 27, 38)."""
    sums = literal_sums(x, h, [1.0] * h.shape[0])
    rows = []
    for i, (p, q) in enumerate(sums):
        l1, l2 = float(h[i].double().abs().sum()), float(h[i].double().norm())
        lhs = l1 / l2 if l2 > 0 else math.nan
        rhs = p / q if (l2 > 0 and q != 0) else math.nan
        # d l1 = -2 lr P, d l2 = -2 lr Q; sparser iff d l1 |h|_2 < |h|_1 d l2
        predicted = (-p) * l2 < l1 * (-q) if l2 > 0 else False
        rows.append({"P": p, "Q": q, "lhs": lhs, "rhs": rhs, "predicted": predicted})
    return rows


def literal_theorem2(x: Tensor, h: Tensor, n_pos: int) -> list[dict]:
    """Theorem 2 per sample (eq. 7-8): A+-, B+- as separate sums over positives and negatives,
    LHS = |h_i|_2 (A+ - A-), RHS = |h_i|_1 (B+ - B-), predicted sparser iff LHS < RHS."""
    x = x.double()
    h = h.double()
    rows = []
    for i in range(h.shape[0]):
        m_i = (h[i] > 0).double()
        a = {"+": 0.0, "-": 0.0}
        b = {"+": 0.0, "-": 0.0}
        for k in range(h.shape[0]):
            side = "+" if k < n_pos else "-"
            hkm = h[k] * m_i
            cx = _cos(x[k], x[i])
            a[side] += float(hkm.abs().sum()) * cx
            b[side] += float(hkm.norm()) * _cos(h[i], hkm) * cx
        l1, l2 = float(h[i].abs().sum()), float(h[i].norm())
        lhs = l2 * (a["+"] - a["-"])
        rhs = l1 * (b["+"] - b["-"])
        alive = l2 > 0
        rows.append({"A+": a["+"], "A-": a["-"], "B+": b["+"], "B-": b["-"],
                     "lhs": lhs if alive else math.nan, "rhs": rhs if alive else math.nan,
                     "predicted": alive and lhs < rhs})
    return rows


def literal_hoyer(h_i: Tensor) -> float:
    """S(h) = (sqrt(n) - |h|_1/|h|_2) / (sqrt(n) - 1) (eq. 4); NaN for an all-zero vector."""
    n = h_i.numel()
    l2 = float(h_i.double().norm())
    if l2 == 0.0:
        return math.nan
    return (math.sqrt(n) - float(h_i.double().abs().sum()) / l2) / (math.sqrt(n) - 1.0)


def literal_outcome(w_before: Tensor, w_after: Tensor, x: Tensor) -> list[int]:
    """Per sample: 1 if S(ReLU(W' x_i)) > S(ReLU(W x_i)), 0 if not, -1 if either is all zero."""
    out = []
    for i in range(x.shape[0]):
        s0 = literal_hoyer(torch.relu(w_before.double() @ x[i].double()))
        s1 = literal_hoyer(torch.relu(w_after.double() @ x[i].double()))
        if math.isnan(s0) or math.isnan(s1):
            out.append(-1)
        else:
            out.append(1 if s1 > s0 else 0)
    return out
