"""Every field of every record equals the values recorded before the metrics were restructured.

tests/data/make_reference.py wrote tests/data/reference/*.npz: 40 batches of fig2, fig3 and two
configurations that take the other paths (logistic loss with momentum and weight decay; Adam), in
float64 on the CPU. The comparison is exact: a restructuring must not move a single bit."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.trainer import Trainer

DATA = Path(__file__).with_name("data")
_spec = importlib.util.spec_from_file_location("make_reference", DATA / "make_reference.py")
assert _spec is not None and _spec.loader is not None
make_reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_reference)


def columns_now(cfg, dataset) -> dict[str, np.ndarray]:
    """The same columns as make_reference.py stores, from the code as it is now."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as when recorded: a reduction's order depends on the thread count
    try:
        trainer = Trainer(cfg, dataset)
        records = [trainer.step() for _ in range(make_reference.ITERS)]
    finally:
        torch.set_num_threads(threads)
    out: dict[str, np.ndarray] = {}
    for key in make_reference.RECORD_SCALARS:
        out[key] = np.array([getattr(r, key) for r in records], dtype=np.float64)
    for group in records[0].groups:
        for key in make_reference.GROUP_SCALARS:
            out[f"{group}.{key}"] = np.array([getattr(r.groups[group], key) for r in records], dtype=np.float64)
        for key in make_reference.GROUP_ARRAYS:
            out[f"{group}.{key}"] = np.concatenate([getattr(r.groups[group], key) for r in records])
            if key in ("lhs", "rhs"):  # kept in the run's dtype (float64) since; recorded as float32
                out[f"{group}.{key}"] = out[f"{group}.{key}"].astype(np.float32)
    return out


@pytest.mark.parametrize("case", sorted(make_reference.CASES))
def test_records_equal_the_recorded_reference(sample, case):
    reference = np.load(DATA / "reference" / f"{case}.npz", allow_pickle=False)
    now = columns_now(make_reference.CASES[case], sample)
    assert sorted(now) == sorted(reference.files)
    for key in reference.files:
        want, got = reference[key], now[key]
        assert got.shape == want.shape, key
        assert got.dtype == want.dtype, key
        assert np.array_equal(got, want, equal_nan=want.dtype.kind == "f"), key
