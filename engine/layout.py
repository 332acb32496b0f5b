"""The packed device layout: what the device computes per batch for the metrics, declared once.

Only the quantities that need the B x n activations are made on the device; every decision, side
and count is derived from them on the host (engine/derive.py). A batch's quantities travel as one
vector, laid out as declared here: the device packs them by name (`Layout.pack`) and the host
unpacks them by name (`Layout.unpack`), so nothing depends on two lists agreeing on an order."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import torch

from .metrics import BATCH, GROUPS, SAMPLE


@dataclass(frozen=True)
class PackMeta:
    """What the host knows of the batches of one layout without asking the device: enough to unpack
    and derive their vectors. Made once per configuration and batch size, shared by its batches.

    gradient_step: the optimiser's change is -lr (grad + wd W) (SGD without momentum), so the step's
    pre-activation change on a sample's active units is -2 lr E_i - lr wd h_i: a multiple of h_i on
    a sample that shares no unit with another.
    fo_scale set means the applied pre-activation change is fo_scale * E (plain SGD, linear loss, no
    weight decay): the generalised first-order changes are then fo_scale * (P, |h|_2 Q), its
    prediction is the theorem's, and the device does not pack them."""

    mode: str
    loss_name: str
    batch: int
    width: int
    gradient_step: bool
    fo_scale: float | None = None

    @property
    def groups(self) -> tuple[str, ...]:
        """The batch's groups of samples, in the order the samples come (engine/metrics.py GROUPS)."""
        return GROUPS[self.mode]

    @cached_property
    def layout(self) -> Layout:
        """Where each quantity sits in a batch's vector: those present for this meta, in declared order."""
        return _layout(tuple(q.present(self) for q in PACKED), self.batch)


def always(meta: PackMeta) -> bool:
    """Present in every batch's vector."""
    return True


def first_order_needed(meta: PackMeta) -> bool:
    """The generalised change is not a multiple of P and Q: its first-order changes are packed."""
    return meta.fo_scale is None


@dataclass(frozen=True)
class Packed:
    """One quantity of the packed vector: its name, one value per batch or per sample, its kind
    ("real", or "count": a whole number carried in the packed float dtype), what it means, and when
    it is present."""

    name: str
    per: str
    kind: str
    meaning: str
    present: Callable[[PackMeta], bool] = always


PACKED: tuple[Packed, ...] = (
    Packed("loss", BATCH, "real", "the batch loss L"),
    Packed("goodness", SAMPLE, "real", "g = |h|_2^2 before the step"),
    Packed("l1", SAMPLE, "real", "|h|_1 before the step"),
    Packed("goodness_after", SAMPLE, "real", "|h'|_2^2 after the step"),
    Packed("l1_after", SAMPLE, "real", "|h'|_1 after the step"),
    Packed("p", SAMPLE, "real", "P_i = m_i . E_i, the theorem's sum (eq. 27, 54)"),
    Packed("q_scaled", SAMPLE, "real", "|h_i|_2 Q_i = h_i . E_i, the theorem's sum (eq. 38, 57)"),
    Packed("fo_dl1", SAMPLE, "real", "first-order change of |h|_1 from the applied dZ (eq. 19)",
           first_order_needed),
    Packed("fo_l2_scaled", SAMPLE, "real", "|h|_2 times the first-order change of |h|_2 (eq. 36)",
           first_order_needed),
    Packed("units", SAMPLE, "count", "active units before the step"),
    Packed("units_after", SAMPLE, "count", "active units after the step"),
    Packed("units_both", SAMPLE, "count", "units active before and after"),
    Packed("shared", SAMPLE, "count", "m_i . sum_k m_k: equals units when no other sample shares a unit"),
    Packed("sparser_measured", SAMPLE, "count", "1 where S(h') > S(h), measured from the norms' changes "
           "(theory.sparsening_sign)"),
    Packed("undecided", SAMPLE, "count", "1 where the rounding bound of that measurement cannot decide it"),
    Packed("zero_step", BATCH, "count", "1 when the applied weight change was exactly zero (W' = W)"),
)


class Layout:
    """Where each present quantity sits in one batch's vector."""

    def __init__(self, quantities: tuple[Packed, ...], batch: int) -> None:
        self.quantities = quantities
        self.batch = batch
        self.names = tuple(q.name for q in quantities)
        self.slices: dict[str, slice] = {}
        offset = 0
        for q in quantities:
            size = 1 if q.per == BATCH else batch
            self.slices[q.name] = slice(offset, offset + size)
            offset += size
        self.size = offset

    def _check(self, values: Mapping[str, object]) -> None:
        if values.keys() != set(self.names):
            missing = sorted(set(self.names) - values.keys())
            extra = sorted(values.keys() - set(self.names))
            raise KeyError(f"packed quantities missing {missing}, not declared here {extra}")

    def pack(self, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """One vector on the device from every present quantity by name (per batch: a scalar tensor,
        per sample: `batch` values); KeyError when a quantity is missing or not declared."""
        self._check(values)
        return torch.cat([v if v.dim() == 1 else v.reshape(-1) for v in (values[name] for name in self.names)])

    def pack_array(self, values: Mapping[str, object], dtype=np.float64) -> np.ndarray:
        """The same vector on the host, from numbers or arrays (for tests and benchmarks)."""
        self._check(values)
        return np.concatenate([np.asarray(values[name], dtype=dtype).reshape(-1) for name in self.names])

    def unpack(self, block: np.ndarray, dtype=np.float64) -> dict[str, np.ndarray]:
        """r vectors (rows of block, r x size) by quantity, as contiguous arrays of dtype: per batch
        (r,), per sample (r, batch)."""
        if block.ndim != 2 or block.shape[1] != self.size:
            raise ValueError(f"a block of packed vectors must be r x {self.size}, not {block.shape}")
        out = {}
        for q in self.quantities:
            cut = block[:, self.slices[q.name]]
            out[q.name] = np.array(cut[:, 0] if q.per == BATCH else cut, dtype=dtype, order="C")
        return out


@lru_cache(maxsize=64)
def _layout(present: tuple[bool, ...], batch: int) -> Layout:
    return Layout(tuple(q for q, keep in zip(PACKED, present, strict=True) if keep), batch)
