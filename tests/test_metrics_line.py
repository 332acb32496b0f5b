"""metrics.jsonl lines: strict JSON (NaN and infinities as null), every field of the record, the
per-sample arrays to 7 significant digits or left out; written straight from a chunk's columns."""
import json
import math

import numpy as np
import pytest

from engine.chunk import MetricsChunk, record_to_line
from engine.config import Config
from engine.metrics import METRICS, GroupStats, MetricsRecord
from engine.trainer import Trainer

# the lines the record below gave before the metrics were kept as columns: byte for byte the same
LINE = ('{"iteration":3,"epoch":1,"mode":"descent","loss_name":"linear","loss":-0.6666666666666666,'
        '"sign_flip":0.001,"l2_remainder":null,"step_time":0.01,"metrics_time":0.002,"groups":{"all":'
        '{"name":"all","count":6,"goodness":1.5,"sparsity":null,"silenced":0.16666666666666666,'
        '"newly_silenced":0,"valid":4,"sparser":0.25,"theorem":0.5,"general":0.5,"agree_theorem":0.75,'
        '"agree_general":1.0,"unresolved":0,"zero_step":0,"sparser_of_batch":0.3333333333333333,"theorem_of_batch":0.5,'
        '"general_of_batch":0.3333333333333333')
ARRAYS = (',"lhs":[1.234568,-0.0001234568,null,1.234568e+07,null,0],"rhs":[2.5,null,null,3e-12,7,-1],'
          '"actual":[1,0,-1,0,0,1],"predicted_theorem":[true,false,false,true,false,true],'
          '"predicted_general":[true,false,false,false,false,true]')


def strict_loads(text):
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def make_record():
    lhs = np.array([1.23456789, -0.000123456789, math.nan, 12345678.9, math.inf, 0.0], dtype=np.float32)
    rhs = np.array([2.5, -math.inf, math.nan, 3e-12, 7.0, -1.0], dtype=np.float32)
    actual = np.array([1, 0, -1, 0, 0, 1], dtype=np.int8)
    theorem = np.array([True, False, False, True, False, True])
    general = np.array([True, False, False, False, False, True])
    grp = GroupStats(name="all", count=6, goodness=1.5, sparsity=math.nan, silenced=1 / 6, newly_silenced=0,
                     valid=4, sparser=0.25, theorem=0.5, general=0.5, agree_theorem=0.75, agree_general=1.0,
                     unresolved=0, zero_step=0, sparser_of_batch=(actual == 1).sum() / 6,
                     theorem_of_batch=theorem.sum() / 6,
                     general_of_batch=general.sum() / 6, lhs=lhs, rhs=rhs, actual=actual,
                     predicted_theorem=theorem, predicted_general=general)
    return MetricsRecord(iteration=3, epoch=1, mode="descent", loss_name="linear", loss=-2.0 / 3.0,
                         groups={"all": grp}, sign_flip=0.001, l2_remainder=math.inf, step_time=0.01,
                         metrics_time=0.002)


def test_line_is_the_same_bytes_as_before():
    assert record_to_line(make_record()) == LINE + ARRAYS + "}}}"
    assert record_to_line(make_record(), per_sample=False) == LINE + "}}}"


def test_line_is_strict_json_with_every_field():
    rec = make_record()
    d = strict_loads(record_to_line(rec))
    for name in MetricsRecord.FIELDS:
        if name != "groups":
            want = getattr(rec, name)
            assert d[name] == (None if isinstance(want, float) and not math.isfinite(want) else want)
    g = d["groups"]["all"]
    assert set(g) == set(GroupStats.FIELDS)
    assert g["sparsity"] is None and g["valid"] == 4 and g["silenced"] == pytest.approx(1 / 6, rel=1e-15)
    assert g["sparser_of_batch"] == pytest.approx(2 / 6)
    assert g["theorem_of_batch"] == pytest.approx(3 / 6) and g["general_of_batch"] == pytest.approx(2 / 6)
    src = rec.groups["all"]
    for key in ("lhs", "rhs"):
        for got, want in zip(g[key], getattr(src, key).tolist(), strict=True):
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


def test_keys_come_from_the_declaration():
    d = strict_loads(record_to_line(make_record()))
    declared = [m.key for m in METRICS if m.level == "batch"] + ["groups"]
    assert list(d) == declared
    group_keys = ["name"] + [m.key for m in METRICS if m.level != "batch"]
    assert list(d["groups"]["all"]) == group_keys


def test_chunk_lines_equal_each_record_written_alone(small_sample):
    """The encoder writes whole chunks from their columns; each line must read as the record's
    values (floats exactly, per-sample arrays to 7 digits), with silenced samples as null."""
    trainer = Trainer(Config(mode="ff", width=4, batch_size=16, lr=1.0, dtype="float64"), small_sample)
    chunks = [c for _ in range(6) for c in trainer.advance()] + trainer.flush()
    chunk = MetricsChunk.concat(chunks)
    lines = chunk.lines()
    assert len(lines) == 6
    nulls = 0
    for line, rec in zip(lines, chunk.records(), strict=True):
        d = strict_loads(line)
        assert d["iteration"] == rec.iteration and d["loss"] == rec.loss
        for name, grp in rec.groups.items():
            got = d["groups"][name]
            assert got["goodness"] == grp.goodness and got["valid"] == grp.valid
            for key in ("lhs", "rhs"):
                want = getattr(grp, key).astype(float)
                nulls += sum(v is None for v in got[key])
                assert [v is None for v in got[key]] == list(~np.isfinite(want))
                np.testing.assert_allclose([v for v in got[key] if v is not None], want[np.isfinite(want)],
                                           rtol=5e-7)
            assert got["actual"] == grp.actual.tolist()
        assert line == record_to_line(rec)
    assert nulls > 0  # a narrow layer at a high rate silences samples: the null path is exercised
