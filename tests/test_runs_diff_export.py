"""`fftui runs diff` and `fftui runs export`: the numbers against hand computations over the arrays the
training produced, the files against the recorded values, and bad input."""
from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.store import RunReader, claim_run_folder
from fftui.cli import main
from fftui.runs_tools import config_differences, summary_stats
from fftui.tensorboard_export import INSTALL
from test_replay import batch_arrays, column, record, recorded_runs, train


@pytest.fixture(scope="module")
def runs(small_sample, tmp_path_factory):
    return recorded_runs(small_sample, tmp_path_factory)


def hand_stats(chunks: list, group: int) -> dict[str, float]:
    """The diff's statistics of one group, computed here from the training's chunks."""
    sparser = column(chunks, "sparser", group)
    theorem = column(chunks, "theorem", group)
    general = column(chunks, "general", group)
    ok = ~np.isnan(sparser)
    return {"sparser": sum(sparser[ok]) / ok.sum(),
            "above_half": sum(1 for v in sparser[ok] if v > 0.5) / ok.sum(),
            "error_theorem": sum(abs(t - s) for t, s in zip(theorem[ok], sparser[ok], strict=True)) / ok.sum(),
            "error_general": sum(abs(g - s) for g, s in zip(general[ok], sparser[ok], strict=True)) / ok.sum(),
            "agree_theorem": float(np.nanmean(column(chunks, "agree_theorem", group)))}


def test_the_diff_statistics_are_the_hand_computed_means(runs):
    for name in ("alpha", "beta"):
        folder, chunks = runs[name]
        stats = summary_stats(RunReader(folder).summary)
        assert set(stats) == {"pos", "neg"}
        for gi, group in enumerate(("pos", "neg")):
            want = hand_stats(chunks, gi)
            assert stats[group] == pytest.approx(want, rel=1e-12), (name, group)
    assert hand_stats(runs["alpha"][1], 0)["error_theorem"] != hand_stats(runs["beta"][1], 0)["error_theorem"]


def test_runs_diff_prints_the_configuration_differences_and_the_statistics_side_by_side(runs, capsys):
    (a, a_chunks), (b, b_chunks) = runs["alpha"], runs["beta"]
    assert main(["runs", "diff", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    lines = {line.split("  ")[0].strip(): line.split() for line in out.splitlines() if line.strip()}
    assert lines["config.loss"][-2:] == ["linear", "logistic"]
    assert lines["config.iters"][-2:] == ["60", "40"]
    assert "config.seed" not in lines and "config.width" not in lines  # the same in both
    for gi, group in enumerate(("pos", "neg")):
        wa, wb = hand_stats(a_chunks, gi), hand_stats(b_chunks, gi)
        assert lines[f"{group} sparser ratio"][-2:] == [f"{wa['sparser']:.4f}", f"{wb['sparser']:.4f}"]
        errors = [f"{wa['error_theorem']:.4f}", f"{wb['error_theorem']:.4f}"]
        assert lines[f"{group} |theorem − sparser|"][-2:] == errors
        above = lines[f"{group} batches sparser > 50 %"]
        assert above[-4:] == [f"{100 * wa['above_half']:.1f}", "%", f"{100 * wb['above_half']:.1f}", "%"]
    assert lines["batches"][-2:] == ["60", "40"]
    differences = dict((k, (x, y)) for k, x, y in config_differences(RunReader(a), RunReader(a)))
    assert differences == {}


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_export_csv_writes_the_figure_series_as_the_presets_do(runs, tmp_path, capsys):
    folder, chunks = runs["beta"]  # logistic: the generalised predictor has its column too
    out = tmp_path / "csv"
    assert main(["runs", "export", str(folder), "--csv", str(out)]) == 0
    header, rows = read_csv(out / "figure.csv")
    assert header == ["iteration", "pos_sparser", "pos_theorem2", "pos_general", "neg_sparser", "neg_theorem2",
                      "neg_general"]
    assert [int(r[0]) for r in rows] == list(range(1, 41))
    for gi, group in enumerate(("pos", "neg")):
        for name, metric in (("sparser", "sparser_of_batch"), ("theorem2", "theorem_of_batch"),
                             ("general", "general_of_batch")):
            want = column(chunks, metric, gi)
            got = [r[header.index(f"{group}_{name}")] for r in rows]
            assert [float(v) for v in got] == pytest.approx(want.tolist(), rel=1e-5)
            assert got == [f"{v:.6g}" for v in want.tolist()]
            series_header, series_rows = read_csv(out / f"{group}_{name}.csv")
            assert series_header == ["iteration", f"{group}_{name}"]
            assert series_rows == [[r[0], v] for r, v in zip(rows, got, strict=True)]
    assert sorted(p.name for p in out.iterdir()) == sorted(["figure.csv", *(f"{c}.csv" for c in header[1:])])
    # a second export into the same folder is refused, and leaves the files as they were
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(["runs", "export", str(folder), "--csv", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds figure.csv" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_export_of_a_descent_run_has_the_presets_descent_columns(small_sample, tmp_path):
    descent = train(small_sample, 10, mode="descent")
    folder = record(tmp_path / "descent", descent, "none", mode="descent")
    assert main(["runs", "export", str(folder), "--csv", str(tmp_path / "out")]) == 0
    header, rows = read_csv(tmp_path / "out" / "figure.csv")
    assert header == ["iteration", "sparser", "theorem1"]
    want = column(descent, "theorem_of_batch", 0)
    assert [float(r[2]) for r in rows] == pytest.approx(want.tolist(), rel=1e-5)


def test_export_tensorboard_without_the_extra_is_one_line_status_2(runs, tmp_path, capsys, monkeypatch):
    folder, _ = runs["alpha"]
    for name in [m for m in sys.modules if m == "tensorboard" or m.startswith("tensorboard.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # importing it raises ImportError
    out = tmp_path / "tb"
    assert main(["runs", "export", str(folder), "--tensorboard", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"fftui runs: TensorBoard export needs the tensorboard extra: {INSTALL}\n"
    assert INSTALL == "pip install 'fftui[tensorboard]'"
    assert not out.exists()


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="the tensorboard extra is not installed")
def test_export_tensorboard_writes_the_scalars_and_histograms_tensorboard_reads_back(runs, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder, chunks = runs["alpha"]
    assert main(["runs", "export", str(folder), "--tensorboard", str(tmp_path)]) == 0
    events = EventAccumulator(str(tmp_path / folder.name), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    sparser = events.Scalars("neg/sparser")
    assert [e.step for e in sparser] == list(range(1, 61))
    assert [e.value for e in sparser] == pytest.approx(column(chunks, "sparser", 1).tolist(), rel=1e-6)
    assert [e.value for e in events.Scalars("batch/loss")] == pytest.approx(column(chunks, "loss").tolist(), rel=1e-6)
    lhs = events.Histograms("pos/lhs")
    assert [h.step for h in lhs] == [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56]
    for h in lhs:
        values = batch_arrays(chunks, h.step, "lhs", 0)
        values = values[np.isfinite(values)]
        assert h.histogram_value.num == values.size
        assert h.histogram_value.sum == pytest.approx(float(values.astype(float).sum()), rel=1e-6)
        assert h.histogram_value.min == pytest.approx(float(values.min()))


def test_diff_and_export_refuse_what_is_not_a_run_and_find_runs_by_prefix(runs, tmp_path, capsys, store_run):
    folder, _ = runs["alpha"]
    empty = tmp_path / "empty"
    empty.mkdir()
    for argv in (["runs", "diff", str(folder), str(empty)], ["runs", "diff", str(folder), "no-such-run"],
                 ["runs", "export", str(empty), "--csv", str(tmp_path / "x")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("fftui runs: "), err
    assert not (tmp_path / "x").exists() and list(empty.iterdir()) == []
    assert main(["runs", "diff", store_run.name[:18], str(folder)]) == 0  # a unique prefix of its name
    out = capsys.readouterr().out
    assert "configuration: the same" in out and store_run.name in out


@pytest.fixture
def store_run(runs, tmp_path, monkeypatch):
    """alpha's files copied into a fresh store as a run named by its date."""
    monkeypatch.setenv("FFTUI_DATA_DIR", str(tmp_path / "data"))
    folder = claim_run_folder("prefix-test")
    for f in runs["alpha"][0].iterdir():
        if f.is_file() and f.name != "metrics.jsonl":
            (folder / f.name).write_bytes(f.read_bytes())
    return folder


def test_export_of_a_run_without_a_batch_is_one_line_status_2_and_writes_nothing(tmp_path, capsys):
    folder = record(tmp_path / "empty", [], "8")  # as fig1a and fig1b record: events, no batch
    actions = [["--csv", str(tmp_path / "csv")]]
    if importlib.util.find_spec("tensorboard") is not None:
        actions.append(["--tensorboard", str(tmp_path / "tb")])
    for action in actions:
        assert main(["runs", "export", str(folder), *action]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "empty holds no batch to export" in err
        assert not Path(action[1]).exists()


def test_diff_of_two_folders_of_one_name_tells_their_columns_apart(runs, tmp_path, capsys):
    import shutil

    (a, _), (b, _) = runs["alpha"], runs["beta"]
    first, second = tmp_path / "x" / "run", tmp_path / "y" / "run"
    shutil.copytree(a, first)
    shutil.copytree(b, second)
    assert main(["runs", "diff", str(first), str(second)]) == 0
    out = capsys.readouterr().out
    assert f"A: {first}" in out and f"B: {second}" in out
    headers = [line.split() for line in out.splitlines() if line.split()[:1] in (["parameter"], ["statistic"])]
    assert headers == [["parameter", "A", "B"], ["statistic", "A", "B"]]


def test_export_onto_a_full_file_system_is_one_line_status_2_and_leaves_no_cut_file(runs, tmp_path, capsys):
    import subprocess

    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        folder = runs["beta"][0]
        actions = [("--csv", mount / "csv")]
        if importlib.util.find_spec("tensorboard") is not None:
            actions.append(("--tensorboard", mount / "tb"))
        for flag, target in actions:
            assert main(["runs", "export", str(folder), flag, str(target)]) == 2
            err = capsys.readouterr().err
            assert err == f"fftui runs: cannot write into {target if flag == '--csv' else target / 'beta'}: " \
                          "No space left on device\n"  # one line: no traceback of TensorBoard's thread
            assert [p for p in target.rglob("*") if p.is_file()] == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)
