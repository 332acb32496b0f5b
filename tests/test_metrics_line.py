"""metrics.jsonl lines: strict JSON (NaN and infinities as null), every field of the record, the
per-sample arrays to 7 significant digits or left out."""
import dataclasses
import json
import math

import numpy as np
import pytest

from engine.metrics import GroupStats, MetricsRecord, record_to_line


def strict_loads(text):
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def make_record():
    lhs = np.array([1.23456789, -0.000123456789, math.nan, 12345678.9, math.inf, 0.0], dtype=np.float32)
    rhs = np.array([2.5, -math.inf, math.nan, 3e-12, 7.0, -1.0], dtype=np.float32)
    grp = GroupStats(name="all", count=6, goodness=1.5, sparsity=math.nan, silenced=1 / 6, newly_silenced=0,
                     valid=4, sparser=0.25, theorem=0.5, general=0.5, agree_theorem=0.75, agree_general=1.0,
                     lhs=lhs, rhs=rhs, actual=np.array([1, 0, -1, 0, 0, 1], dtype=np.int8),
                     predicted_theorem=np.array([True, False, False, True, False, True]),
                     predicted_general=np.array([True, False, False, False, False, True]))
    return MetricsRecord(iteration=3, epoch=1, mode="descent", loss_name="linear", loss=-2.0 / 3.0,
                         groups={"all": grp}, sign_flip=0.001, l2_remainder=math.inf, step_time=0.01,
                         metrics_time=0.002)


def test_line_is_strict_json_with_every_field():
    rec = make_record()
    d = strict_loads(record_to_line(rec))
    for f in dataclasses.fields(MetricsRecord):
        if f.name != "groups":
            want = getattr(rec, f.name)
            assert d[f.name] == (None if isinstance(want, float) and not math.isfinite(want) else want)
    g = d["groups"]["all"]
    assert g["sparsity"] is None and g["valid"] == 4 and g["silenced"] == pytest.approx(1 / 6, rel=1e-15)
    assert g["sparser_of_batch"] == pytest.approx(2 / 6)
    assert g["theorem_of_batch"] == pytest.approx(3 / 6) and g["general_of_batch"] == pytest.approx(2 / 6)
    src = rec.groups["all"]
    for key in ("lhs", "rhs"):
        for got, want in zip(g[key], getattr(src, key).tolist()):
            if math.isfinite(want):
                assert got == pytest.approx(want, rel=5e-7, abs=0.0)
                assert len(f"{abs(got):e}".split("e")[0].replace(".", "").rstrip("0")) <= 7
            else:
                assert got is None
    assert g["actual"] == [1, 0, -1, 0, 0, 1]
    assert g["predicted_theorem"] == [True, False, False, True, False, True]


def test_summary_line_leaves_out_the_arrays():
    d = strict_loads(record_to_line(make_record(), per_sample=False))
    g = d["groups"]["all"]
    assert not {"lhs", "rhs", "actual", "predicted_theorem", "predicted_general"} & set(g)
    assert g["sparser"] == 0.25 and g["sparser_of_batch"] == pytest.approx(2 / 6)
