"""The report's theory in batched form: Hoyer sparsity, the per-sample sides of Theorems 1 and 2,
and the first-order predictors of sparsening. Every function works on a whole batch at once
(rows are samples); none loops over samples. The functions that only compare and combine values
element by element take torch tensors or numpy arrays alike (the host derives a chunk of batches
in numpy)."""
from __future__ import annotations

import math
from typing import Any, TypeVar

import numpy as np
import torch

Tensor = torch.Tensor
# the element-by-element functions take either, and return the kind they were given
Values = TypeVar("Values", torch.Tensor, np.ndarray)


def _namespace(a: Any) -> Any:
    """torch for a tensor, numpy for an array: both spell where, full_like and ones_like alike."""
    return torch if isinstance(a, torch.Tensor) else np


def _as_float(mask: Any, like: Any) -> Any:
    """A boolean mask as 0/1 numbers of like's dtype."""
    return mask.to(like.dtype) if isinstance(mask, torch.Tensor) else mask.astype(like.dtype)


def active_mask(h: Tensor) -> Tensor:
    """m_i = 1[h_i > 0] as numbers (eq. 2); h >= 0 after ReLU, so its sign is the mask."""
    return torch.sign(h)


def norms(h: Tensor) -> tuple[Tensor, Tensor]:
    """|h_i|_1 and |h_i|_2 per row; h is non-negative after ReLU, so |h|_1 is a row sum (eq. 19-20)."""
    return h.sum(dim=1), torch.linalg.vector_norm(h, dim=1)


def hoyer_from_norms(l1: Values, l2: Values, n: int, units: Values | None = None,
                     resolution: float = 0.0) -> Values:
    """S = (sqrt(n) - |h|_1/|h|_2) / (sqrt(n) - 1) (eq. 4) per row, from the norms; NaN where h is all
    zero (silenced). Every other value lies in [0, 1] exactly: for h >= 0, 1 <= |h|_1/|h|_2 <= sqrt(n)
    (Cauchy-Schwarz), so the ratio is clipped to that interval and rounding of the norms cannot push
    S past either end.

    units (optional): the active units of each row. A row with one active unit is exactly 1, which
    its rounded norms may miss by an ulp. A row with every unit active whose ratio lies within
    ``resolution`` (relative) of sqrt(n) is exactly 0: Cauchy-Schwarz holds with equality only for
    an all-equal row, and the rounded sums cannot tell such a row from one that is all-equal.
    l1, l2, units: tensors or arrays of one shape; n: the width; resolution: a relative error bound
    of l1/l2 (0: no snapping)."""
    xp = _namespace(l2)
    root = math.sqrt(n)
    ratio = l1 / xp.where(l2 > 0, l2, xp.full_like(l2, math.nan))
    if units is not None and resolution > 0:
        ratio = xp.where((units == n) & (ratio >= root * (1.0 - resolution)), xp.full_like(ratio, root), ratio)
    ratio = xp.minimum(xp.maximum(ratio, xp.ones_like(ratio)), xp.full_like(ratio, root))
    s = (root - ratio) / (root - 1.0)
    if units is not None:
        s = xp.where(one_active_unit(units) & (l2 > 0), xp.ones_like(s), s)
    return s


def hoyer_sparsity(h: Tensor) -> Tensor:
    """Hoyer sparsity of each row of h (eq. 4), in [0, 1]: exactly 1 for one active unit, exactly 0
    for an all-equal row; NaN for an all-zero row. h: (rows, n), >= 0."""
    l1, l2 = norms(h)
    s = hoyer_from_norms(l1, l2, h.shape[1], units=(h > 0).sum(dim=1))
    equal = (h == h[:, :1]).all(dim=1) & (h[:, 0] > 0)
    return torch.where(equal, torch.zeros_like(s), s)


def input_kernel(x: Tensor) -> Tensor:
    """K = X X^T; K_ik = cos(x_k, x_i) for unit-length inputs (assumption 4, eq. 27)."""
    return x @ x.transpose(-1, -2)


def kernel_drive(kernel: Tensor, c: Tensor, h: Tensor) -> Tensor:
    """E = (K * c^T) H: row i is sum_k c_k cos(x_k, x_i) h_k, the update direction of eq. 25 / 52
    before the mask m_i and the factor -2 lr."""
    return (kernel * c.unsqueeze(-2)) @ h


def kernel_sums(drive: Tensor, h: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """P_i = sum_k c_k K_ik |h_k * m_i|_1 and Q_i |h_i|_2 = sum_k c_k K_ik (h_k * m_i) . h_i (eq. 27, 38).

    Both come from E = (K * c^T) H: m_i . E_i = P_i, and h_i . E_i = |h_i|_2 Q_i because h_i is
    zero off m_i. P_i and Q_i are the report's sums with c = +1 (Theorem 1) and, for c = -1 on
    positives and +1 on negatives, P_i = A-_i - A+_i and Q_i = B-_i - B+_i (eq. 54, 57)."""
    mask = active_mask(h) if mask is None else mask
    return torch.linalg.vecdot(mask, drive), torch.linalg.vecdot(h, drive)


def predicts_sparser(dl1: Values, dl2_scaled: Values, l1: Values, g: Values) -> Values:
    """S rises iff dl1 |h|_2 < |h|_1 dl2 (eq. 11); here both sides times |h|_2 >= 0, with
    dl2_scaled = |h|_2 dl2 and g = |h|_2^2, so no division by a norm that may be zero."""
    return dl1 * g < l1 * dl2_scaled


def kernel_prediction(p: Values, q_scaled: Values, l1: Values, g: Values) -> Values:
    """Theorems 1 and 2 in product form: sparser iff P_i |h_i|_2 > |h_i|_1 Q_i (eq. 45, 63).

    With dl1 = -2 lr P_i and dl2 = -2 lr Q_i (eq. 27, 38) this is predicts_sparser with the
    positive factor 2 lr dropped."""
    return predicts_sparser(-p, -q_scaled, l1, g)


def first_order_changes(delta_z: Tensor, h: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """From the pre-activation change dW x_i actually applied (any optimiser), d_i = (dW x_i) * m_i:
    dl1 ~ sum(d_i) and |h_i|_2 dl2 ~ h_i . d_i (eq. 19, 36)."""
    dl1 = torch.linalg.vecdot(active_mask(h) if mask is None else mask, delta_z)
    return dl1, torch.linalg.vecdot(h, delta_z)


def change_prediction(delta_z: Tensor, h: Tensor, l1: Tensor, g: Tensor,
                      mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """First-order predictor of sparsening from the applied change dW x_i (eq. 11 with eq. 19, 36).

    Returns (predicted sparser, first-order dl1, first-order |h_i|_2 dl2)."""
    dl1, dl2_scaled = first_order_changes(delta_z, h, mask)
    return predicts_sparser(dl1, dl2_scaled, l1, g), dl1, dl2_scaled


def l2_remainder_terms(l2: Values, l2_after: Values, fo_l2_scaled: Values, valid: Values) -> tuple[Values, Values]:
    """Per sample, |d|h|_2 - first-order d|h|_2| and |first-order d|h|_2| (eq. 36), zero where the
    sample is not valid: l2_remainder is the ratio of their sums over the last axis."""
    xp = _namespace(l2)
    fo_dl2 = fo_l2_scaled / xp.where(l2 > 0, l2, xp.ones_like(l2))
    vf = _as_float(valid, l2)
    return abs(l2_after - l2 - fo_dl2) * vf, abs(fo_dl2) * vf


def l2_remainder(l2: Tensor, l2_after: Tensor, fo_l2_scaled: Tensor, valid: Tensor) -> Tensor:
    """Over valid samples, sum |d|h|_2 - first-order d|h|_2| / sum |first-order d|h|_2| (eq. 36's neglected terms)."""
    remainder, first_order = l2_remainder_terms(l2, l2_after, fo_l2_scaled, valid)
    return remainder.sum(-1) / first_order.sum(-1)


def theorem1_sides(p: Values, q_scaled: Values, l1: Values, l2: Values) -> tuple[Values, Values]:
    """Theorem 1 as the report writes it (eq. 6): LHS = |h_i|_1 / |h_i|_2, RHS = P_i / Q_i.
    NaN for silenced samples. The comparison LHS < RHS means "sparser" only while Q_i > 0."""
    xp = _namespace(l2)
    nan = xp.full_like(l2, math.nan)
    safe_l2 = xp.where(l2 > 0, l2, nan)
    lhs = l1 / safe_l2
    q = q_scaled / safe_l2
    rhs = p / xp.where(q != 0, q, nan)
    return lhs, rhs


def theorem2_sides(p: Values, q_scaled: Values, l1: Values, l2: Values) -> tuple[Values, Values]:
    """Theorem 2 as the report writes it (eq. 7): LHS = |h_i|_2 (A+ - A-), RHS = |h_i|_1 (B+ - B-),
    with A+ - A- = -P_i and B+ - B- = -Q_i for c = -1 on positives, +1 on negatives. NaN if silenced."""
    xp = _namespace(l2)
    nan = xp.full_like(l2, math.nan)
    alive = l2 > 0
    safe_l2 = xp.where(alive, l2, nan)
    lhs = xp.where(alive, -l2 * p, nan)
    rhs = -l1 * q_scaled / safe_l2
    return lhs, rhs


def sign_flip_fraction(z_before: Tensor, z_after: Tensor) -> Tensor:
    """Fraction of pre-activations whose sign changed in the step (the assumption behind eq. 23)."""
    return sign_flips_between(active_mask(torch.relu(z_before)), active_mask(torch.relu(z_after)))


def sign_flips_between(mask_before: Tensor, mask_after: Tensor) -> Tensor:
    """Fraction of entries where two 0/1 masks of equal shape differ (float arithmetic: on the CPU
    it is several times faster than comparing booleans)."""
    return torch.sub(mask_before, mask_after).abs_().sum() / mask_before.numel()


def sign_flips_from_counts(units: Values, units_after: Values, units_both: Values, entries: int) -> Values:
    """The same fraction from per-sample counts of active units before, after and in both: a unit
    flips when it is active on one side only (the assumption behind eq. 23). Sums the last axis."""
    return (units + units_after - 2.0 * units_both).sum(-1) / entries


def shares_no_unit(shared: Values, units: Values) -> Values:
    """Samples no other sample of the batch is active with on any unit: shared = m_i . sum_k m_k
    equals |m_i|_0. Then E_i * m_i = c_i K_ii h_i, the theorem's sides are equal (eq. 6, 7), and
    a plain SGD step only scales h_i on its units (eq. 25): S changes only if other units switch on."""
    return shared == units


def one_active_unit(units: Values) -> Values:
    """Samples with a single active unit: |h|_1 = |h|_2, so S(h) = 1 exactly (eq. 4), and the
    first-order changes of |h|_1 and |h|_2 are equal (eq. 11 holds with equality: not sparser)."""
    return units == 1


def dot_error_scale(count: int, dtype: torch.dtype) -> float:
    """gamma_k = k u / (1 - k u) for the unit roundoff u of dtype: a sum or dot product of k terms
    computed in any order (blocked, pairwise, with or without FMA) is within gamma_k sum |terms|
    of the exact one (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., eq. 3.5)."""
    u = torch.finfo(dtype).eps / 2
    return count * u / (1.0 - count * u)


def sparsening_sign(z: Tensor, z_after: Tensor, row_scale: Tensor, unit_err: Tensor,
                    unit_err_after: Tensor) -> tuple[Tensor, Tensor]:
    """Whether each sample became sparser, decided from the changes of its norms (eq. 4, 10), with a
    rigorous bound on the rounding of that decision. Returns (F, bound), one value per row:
    S(h') > S(h) exactly when F < 0, and |F - computed F| <= bound, so the sign of the computed F
    is the exact one wherever |F| > bound.

    z, z_after: (rows, n) pre-activations W x and W' x as computed (in the dtype the bound is for);
    their absolute errors are at most row_scale_i * unit_err_j and row_scale_i * unit_err_after_j
    (rows,), (n,), (n,): for z = fl(X W^T), gamma_m |x_i|_2 and |W_j|_2 (dot_error_scale and
    Cauchy-Schwarz on sum_k |W_jk x_ik|).

    With l1 = |h|_1, g = |h|_2^2, d1 = |h'|_1 - |h|_1, d2 = |h'|_2^2 - |h|_2^2 and s = |h|_1 + |h'|_1:
    |h'|_1/|h'|_2 < |h|_1/|h|_2  <=>  (l1 + d1)^2 g < l1^2 (g + d2)  <=>  F = d1 s g - l1^2 d2 < 0.
    d1 = sum_j (h'_j - h_j) and d2 = sum_j (h'_j - h_j)(h_j + h'_j) are sums of the per-unit changes,
    which for a unit active before and after are z'_j - z_j itself: nothing in F is the difference of
    two rounded norms, and its terms cancel only as much as the exact F is small.

    The bound, term by term (u the unit roundoff, gamma_n as in dot_error_scale, n the width,
    e_j = row_scale (unit_err_j + unit_err_after_j)):
    - ReLU is 1-Lipschitz, so each computed h_j, h'_j is within its z's error bound of the exact one.
    - delta_j = h'_j - h_j is one rounded subtraction: error <= e_j + u |delta_j| (1 + 1e-7);
      sigma_j = h_j + h'_j likewise with u sigma_j. The product delta_j sigma_j: the factors' errors
      expanded exactly, e_j (sigma_j + |delta_j|)(1 + u) + e_j^2 + (2u + u^2) |delta_j| sigma_j,
      plus u |delta_j sigma_j| for its own rounding.
    - every row sum (l1, |h'|_1, g, d1, d2) adds gamma_n times the sum of its terms' magnitudes; g's
      terms h_j^2 carry err_j (2 h_j + err_j).
    - the products d1 s g and l1^2 d2 are bounded by expanding (|x| + e_x)(|y| + e_y)... - |x||y|...
      into its non-negative terms (no first-order truncation), and F's own evaluation adds
      2u(|d1 s g| + |l1^2 d2|) + u |F|.
    Every term is non-negative and computed from non-negative factors, so the bound's own rounding
    is a relative (1 + k u) with k below 100; the bound is multiplied by 1.01 for it (and for the
    rounding of the norms in row_scale and unit_err). Underflow to subnormal numbers is not
    accounted for. Units inactive on both sides count in the error terms too (a looser bound for
    fewer operations)."""
    dtype = z.dtype
    u = torch.finfo(dtype).eps / 2
    u1 = u * 1.0000001
    gam = dot_error_scale(z.shape[-1], dtype)
    h, h_after = torch.relu(z), torch.relu(z_after)
    delta = h_after - h
    sigma = h + h_after
    adelta = delta.abs()
    pair = unit_err + unit_err_after
    r = row_scale
    l1, l1_after = h.sum(-1), h_after.sum(-1)
    g = torch.linalg.vecdot(h, h)
    d1, d2 = delta.sum(-1), torch.linalg.vecdot(delta, sigma)
    a1, a2 = adelta.sum(-1), torch.linalg.vecdot(adelta, sigma)  # sum |delta_j|, sum |delta_j sigma_j|
    s = l1 + l1_after
    e_l1 = r * unit_err.sum() + gam * l1
    e_l1_after = r * unit_err_after.sum() + gam * l1_after
    e_s = e_l1 + e_l1_after + u * s
    e_g = 2.0 * r * torch.mv(h, unit_err) + r * r * unit_err.square().sum() + (gam + u) * g
    e_d1 = r * pair.sum() + (u1 + gam) * a1
    e_d2 = ((1.0 + u) * r * (torch.mv(sigma, pair) + torch.mv(adelta, pair)) + r * r * pair.square().sum()
            + (3.0 * u1 + u1 * u1 + gam) * a2)
    first = d1 * s * g
    second = l1 * l1 * d2
    f = first - second
    e_first = _product_error((d1.abs(), e_d1), (s, e_s), (g, e_g))
    e_second = _product_error((l1, e_l1), (l1, e_l1), (d2.abs(), e_d2))
    bound = (e_first + e_second + 2.0 * u * (first.abs() + second.abs()) + u * f.abs()) * 1.01
    return f, bound


def _product_error(*factors: tuple[Tensor, Tensor]) -> Tensor:
    """prod(|x| + e_x) - prod |x| for non-negative magnitudes |x| and error bounds e_x, expanded
    into its non-negative terms (every product with at least one e) so that nothing cancels."""
    total = torch.zeros_like(factors[0][0])
    exact = torch.ones_like(factors[0][0])  # prod |x| over the factors seen so far
    for x, e in factors:
        # (exact + total)(x + e) - exact x = total (x + e) + exact e
        total = total * (x + e) + exact * e
        exact = exact * x
    return total


def sparsening_outcome(z: Tensor, z_after: Tensor, row_scale: Tensor, unit_err: Tensor,
                       unit_err_after: Tensor) -> tuple[Tensor, Tensor]:
    """(sparser, undecided) per row from sparsening_sign (same arguments): sparser where the
    computed F < 0; undecided where |F| does not exceed its bound (a NaN or infinite F too)."""
    f, bound = sparsening_sign(z, z_after, row_scale, unit_err, unit_err_after)
    return f < 0, ~(f.abs() > bound)
