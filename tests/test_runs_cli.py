"""`fftui runs`: the table of recorded runs, rm, prune and path, names by unique prefix, bad input."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from engine.chunk import MetricsChunk
from engine.metrics import BATCH, GROUP, GROUPS, METRICS
from engine.store import RunWriter, claim_run_folder
from fftui.cli import main


def made_chunk(mode: str, iterations: int, sparser: float, per: int = 4) -> MetricsChunk:
    """A chunk of the declared metrics with random values, every group's sparser ratio `sparser`."""
    rng = np.random.default_rng(5)
    groups = GROUPS[mode]
    columns: dict[str, object] = {}
    for m in METRICS:
        if m.dtype == "str":
            columns[m.name] = mode if m.name == "mode" else "logistic"
            continue
        shape = (iterations,) if m.level == BATCH else (iterations, len(groups)) if m.level == GROUP \
            else (iterations, len(groups), per)
        columns[m.name] = rng.integers(0, 2, shape) if m.dtype in ("bool", "int8") else rng.random(shape)
    columns["iteration"] = np.arange(1, iterations + 1)
    columns["sparser"] = np.full((iterations, len(groups)), sparser)
    return MetricsChunk(groups, per, columns)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("FFTUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "data" / "runs"


def make_run(name: str, mode: str = "ff", iterations: int = 10, sparser: float = 0.25, when: float | None = None,
             status: str = "finished", preset: str | None = None) -> Path:
    folder = claim_run_folder(name, when=when)
    cfg = {"mode": mode, "loss": "logistic", "optimizer": "adam"}
    writer = RunWriter(folder, {"config": cfg, "preset": preset}).start()
    writer.put(made_chunk(mode, iterations, sparser))
    writer.close(status)
    if when is not None:  # as if it had been recorded then
        info = json.loads((folder / "run.json").read_text())
        info["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(when))
        (folder / "run.json").write_text(json.dumps(info))
    return folder


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(["runs", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_table_lists_runs_newest_first_with_their_numbers(store, capsys):
    now = time.time()
    old = make_run("fig3", iterations=12, sparser=0.75, when=now - 3 * 86400, preset="fig3")
    new = make_run("descent-linear", mode="descent", iterations=7, sparser=0.5, when=now - 60, status="diverged")
    status, out, err = run_cli(capsys)
    assert status == 0 and err == ""
    lines = out.splitlines()
    rows = [line for line in lines if line.split() and line.split()[0] in (new.name, old.name)]
    assert [r.split()[0] for r in rows] == [new.name, old.name]
    assert rows[0].split()[3:9] == ["descent", "logistic", "adam", "7", "diverged", rows[0].split()[8]]
    assert "0.50" in rows[0].split() and "0.75/0.75" in rows[1].split() and "fig3" in rows[1].split()
    total = sum(p.stat().st_size for run in (old, new) for p in run.iterdir())
    assert f"2 runs, {total / 1000:.3g} kB in {store}" in " ".join(out.split())


def test_an_empty_store_says_so(store, capsys):
    assert run_cli(capsys) == (0, f"no recorded runs in {store}\n", "")


def test_path_takes_a_name_or_a_unique_prefix(store, capsys):
    a = make_run("fig2")
    b = make_run("fig3")
    assert run_cli(capsys, "path", a.name) == (0, f"{a}\n", "")
    assert run_cli(capsys, "path", b.name[:-1] + "3") == (0, f"{b}\n", "")
    status, out, err = run_cli(capsys, "path", a.name[:8])
    assert status == 2 and out == "" and err.count("\n") == 1 and "matches 2 runs" in err
    status, out, err = run_cli(capsys, "path", "nothing")
    assert status == 2 and err.startswith("fftui runs: no run named 'nothing'")
    for bad in ("../x", "..", "/etc"):
        status, _, err = run_cli(capsys, "path", bad)
        assert status == 2 and err.count("\n") == 1


def test_rm_deletes_the_runs_named_and_nothing_when_one_name_is_bad(store, capsys):
    a, b, c = make_run("one"), make_run("two"), make_run("three")
    status, _, err = run_cli(capsys, "rm", a.name, "nope")
    assert status == 2 and "no run named 'nope'" in err and a.exists()
    status, out, _ = run_cli(capsys, "rm", a.name, b.name)
    assert status == 0 and not a.exists() and not b.exists() and c.exists()
    assert out.splitlines() == [f"removed {a.name}", f"removed {b.name}"]


def test_a_run_being_recorded_is_neither_removed_nor_pruned(store, capsys):
    folder = claim_run_folder("live")
    writer = RunWriter(folder, {"config": {"mode": "ff"}}).start()
    try:
        status, _, err = run_cli(capsys, "rm", folder.name)
        assert status == 2 and "being recorded" in err and folder.exists()
        assert run_cli(capsys, "prune", "--keep", "0")[0] == 0 and folder.exists()
        assert "running" in run_cli(capsys)[1]
    finally:
        writer.close("interrupted")
    assert "interrupted" in run_cli(capsys)[1]


def test_prune_keeps_the_newest_or_the_recent(store, capsys):
    now = time.time()
    runs = [make_run(f"r{k}", when=now - k * 86400 - 10) for k in range(4)]  # r0 newest
    status, out, _ = run_cli(capsys, "prune", "--older-than", "1.5")
    assert status == 0 and [r.exists() for r in runs] == [True, True, False, False]
    assert out.splitlines()[-1] == "pruned 2 runs"
    status, out, _ = run_cli(capsys, "prune", "--keep", "1")
    assert status == 0 and [r.exists() for r in runs] == [True, False, False, False]


@pytest.mark.parametrize("argv", [["prune"], ["prune", "--keep", "-1"], ["prune", "--older-than", "x"],
                                  ["prune", "--keep", "1", "--older-than", "2"], ["rm"], ["path"], ["frobnicate"]])
def test_bad_arguments_are_one_line_and_status_2(store, capsys, argv):
    run = make_run("kept")
    status, out, err = run_cli(capsys, *argv)
    assert status == 2 and out == "" and err.count("\n") == 1 and run.exists()


def test_a_folder_in_the_store_that_is_not_a_run_is_listed_as_damaged(store, capsys):
    make_run("good")
    (store / "stray").mkdir()
    (store / "stray" / "notes.txt").write_text("hello")
    status, out, _ = run_cli(capsys)
    assert status == 0
    stray = next(line for line in out.splitlines() if line.strip().startswith("stray"))
    assert "damaged" in stray.split()
    # not fftui's (no run.json, no writer.lock): never deleted, by name or by pruning
    status, _, err = run_cli(capsys, "rm", "stray")
    assert status == 2 and "stray is not a run fftui recorded" in err
    assert (store / "stray" / "notes.txt").read_text() == "hello"
    assert run_cli(capsys, "prune", "--keep", "0")[0] == 0
    assert (store / "stray" / "notes.txt").exists() and not list(store.glob("*good*"))


def test_an_80_column_terminal_shows_every_runs_ratios_whole(store, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # also the width of a pipe
    interrupted = make_run("ff-logistic", sparser=0.25, status="interrupted")
    status, out, err = run_cli(capsys)
    assert status == 0 and err == "" and max(len(line) for line in out.splitlines()) <= 80
    row = next(line.split() for line in out.splitlines() if line.split() and line.split()[0] == interrupted.name)
    assert row[1:] == ["10", "interrupted", "0.25/0.25", row[4]] and "…" not in out.split("store")[0]
    caption = " ".join(out.split())
    assert "a wider terminal shows" in caption and "size" in caption.split("a wider terminal shows")[1]
