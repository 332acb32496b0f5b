"""The packed device layout and the metric declaration: quantities travel by name, and a metric
added to the declaration and to the code that computes it reaches every output."""
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from engine import layout
from engine.config import Config
from engine.layout import PACKED, PackMeta
from engine.metrics import METRICS
from engine.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def test_pack_and_unpack_go_by_name():
    meta = PackMeta(mode="descent", loss_name="logistic", batch=3, width=10, gradient_step=False)
    names = [q.name for q in PACKED]
    values = {name: np.arange(3) + 10 * k for k, name in enumerate(names)}
    values["loss"] = 7.0
    values["zero_step"] = 1.0
    vec = meta.layout.pack_array(dict(reversed(list(values.items()))))  # the order given does not matter
    assert vec.size == meta.layout.size == 2 + 3 * (len(names) - 2)
    out = meta.layout.unpack(np.stack([vec, vec + 1]))
    assert out["loss"].tolist() == [7.0, 8.0]
    assert out["zero_step"].tolist() == [1.0, 2.0]
    for name in (n for n in names if n not in ("loss", "zero_step")):
        np.testing.assert_array_equal(out[name], np.stack([values[name], values[name] + 1]))
    with pytest.raises(KeyError, match="missing"):
        meta.layout.pack_array({k: v for k, v in values.items() if k != "shared"})
    with pytest.raises(KeyError, match="not declared"):
        PackMeta("ff", "linear", 4, 10, True, -0.002).layout.pack_array(values)  # no first-order rows here


@pytest.fixture
def reversed_layout(monkeypatch):
    monkeypatch.setattr(layout, "PACKED", tuple(reversed(PACKED)))
    layout._layout.cache_clear()
    yield
    monkeypatch.undo()
    layout._layout.cache_clear()


def records(cfg, sample, steps=3):
    trainer = Trainer(cfg, sample)
    return [trainer.step() for _ in range(steps)]


@pytest.mark.parametrize("kw", [dict(mode="ff"), dict(mode="descent", loss="logistic", optimizer="adam")])
def test_reordering_the_device_layout_changes_no_metric(small_sample, request, kw):
    cfg = Config(width=60, batch_size=16, dtype="float64", lr=0.01, **kw)
    before = records(cfg, small_sample)
    request.getfixturevalue("reversed_layout")
    after = records(cfg, small_sample)
    for a, b in zip(before, after, strict=True):
        for m in METRICS:
            if m.level == "batch" and m.name not in ("step_time", "metrics_time"):
                assert getattr(a, m.name) == getattr(b, m.name) or np.isnan(getattr(a, m.name))
            elif m.level != "batch":
                for g in a.groups:
                    np.testing.assert_array_equal(getattr(a.groups[g], m.name), getattr(b.groups[g], m.name))


def test_a_metric_needs_the_declaration_and_its_computation_only(tmp_path):
    """A throwaway metric, declared in engine/metrics.py and computed in engine/derive.py (a copy of
    the code), shows in the recorded summary (summary.jsonl.gz), the records, the UI's history and
    the headless summary."""
    for part in ("engine", "fftui", "assets"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    metrics, derive = tmp_path / "engine" / "metrics.py", tmp_path / "engine" / "derive.py"
    anchor = '    Metric("lhs", SAMPLE'
    text = metrics.read_text()
    assert anchor in text
    metrics.write_text(text.replace(anchor, '    Metric("twice_valid", GROUP, "int64", "a throwaway: 2 x valid",'
                                            ' summary=True),\n' + anchor))
    anchor = '            "count": np.full((r, n_groups), per),'
    text = derive.read_text()
    assert anchor in text
    derive.write_text(text.replace(anchor, anchor + '\n            "twice_valid": 2 * counts["valid"],'))
    code = textwrap.dedent("""
        import json, sys
        from pathlib import Path
        from engine.store import RunWriter
        from engine.config import Config
        from engine.data import load_dataset
        from engine.headless import run_headless
        from fftui.history import History
        from engine.trainer import Trainer
        out = Path(sys.argv[1])
        out.mkdir()
        data = load_dataset("sample", device="cpu")
        cfg = Config(width=30, batch_size=8, iters=3)
        summary = run_headless(cfg, data, RunWriter(out, {"config": cfg.as_dict()}).start())
        rec = Trainer(cfg, data).step()
        history = History()
        history.add([rec])
        print(json.dumps({"summary": summary["groups"]["pos"]["twice_valid"],
                          "record": [rec.groups["pos"].twice_valid, rec.groups["pos"].valid],
                          "series": history.series("neg.twice_valid").tolist()}))
    """)
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["record"][0] == 2 * got["record"][1]
    assert len(got["series"]) == 1 and got["series"][0] % 2 == 0
    from run_files import summary_lines

    lines = summary_lines(tmp_path / "out")
    assert len(lines) == 3
    for line in lines:
        for group in line["groups"].values():
            assert group["twice_valid"] == 2 * group["valid"]
    mean_valid = np.mean([line["groups"]["pos"]["valid"] for line in lines])
    assert got["summary"] == pytest.approx(2 * mean_valid)
