"""`fftui run --headless --resume GROUP`: a preset's group of seed runs (--seeds) stopped during its
second seed and resumed gives the group files of one uninterrupted group run, value for value; its
finished seeds are not touched (their bytes compared); a seed without a checkpoint begins again, a
seed never begun is run; bad input is one line, status 2, nothing changed."""
from __future__ import annotations

import csv
import fcntl
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from fftui.cli import main
from test_resume import events_of, lines_of, same_records

FIG2 = ["run", "--headless", "--quiet", "--data", "sample", "--preset", "fig2", "--iters", "24", "--width", "32"]
SEEDS = ["--seed", "3", "--seeds", "3"]
STOP_AT = 9  # the iteration after which the second seed's run gets SIGTERM


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under folder, by its path relative to folder, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def stop_seed(monkeypatch, seed: int, at: int) -> None:
    """Make the run of `seed` receive SIGTERM once it has trained `at` batches (as `kill -TERM`
    would, between two batches): it stops cleanly, checkpoint at `at`, status interrupted."""
    from engine.trainer import Trainer
    from fftui.headless import experiments

    real = experiments.run_headless

    def run_headless(cfg, dataset, writer=None, **kwargs):
        if cfg.seed == seed and kwargs.get("trainer") is None:
            trainer = Trainer(cfg, dataset)
            advance = trainer.advance

            def advancing(*args, **kw):
                chunks = advance(*args, **kw)
                if trainer.iteration == at:
                    os.kill(os.getpid(), signal.SIGTERM)
                return chunks

            trainer.advance = advancing
            kwargs["trainer"] = trainer
        return real(cfg, dataset, writer, **kwargs)

    monkeypatch.setattr(experiments, "run_headless", run_headless)


def stopped_group(monkeypatch, folder: Path | None) -> None:
    """A fig2 group of seeds 3, 4, 5 stopped by SIGTERM in seed 4 (the second), into folder (None:
    the run store)."""
    with monkeypatch.context() as m:
        stop_seed(m, 4, STOP_AT)
        out = ["--out", str(folder)] if folder is not None else []
        assert main(FIG2 + SEEDS + out) == 128 + signal.SIGTERM


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("whole") / "fig2"
    assert main(FIG2 + SEEDS + ["--keep-samples", "all", "--out", str(folder)]) == 0
    return folder


@pytest.fixture(scope="module")
def stopped_once(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stopped") / "fig2"
    with pytest.MonkeyPatch.context() as m:
        stop_seed(m, 4, STOP_AT)
        assert main(FIG2 + SEEDS + ["--keep-samples", "all", "--out", str(folder)]) == 128 + signal.SIGTERM
    return folder


@pytest.fixture
def stopped(stopped_once, tmp_path) -> Path:
    """A fresh copy of the stopped group, for a test to resume or to refuse."""
    folder = tmp_path / "fig2"
    shutil.copytree(stopped_once, folder)
    return folder


def same_group_files(resumed: Path, whole: Path) -> None:
    """The group's CSVs equal value for value (they hold no wall time) and its text figure equal."""
    for name in ("fig2-seeds.csv", "fig2.csv"):
        a, b = rows(resumed / name), rows(whole / name)
        assert len(a) == len(b) > 0 and a == b, name
    assert [r["seed"] for r in rows(resumed / "fig2-seeds.csv")] == ["3", "4", "5"]
    assert [r["finished"] for r in rows(resumed / "fig2-seeds.csv")] == ["1", "1", "1"]
    assert (resumed / "fig2.txt").read_text() == (whole / "fig2.txt").read_text()


def test_a_group_stopped_in_its_second_seed_resumes_to_the_files_of_one_uninterrupted_run(stopped, whole, capsys):
    info = json.loads((stopped / "seed-4" / "run.json").read_text())
    assert info["status"] == "interrupted" and info["checkpoint_iteration"] == STOP_AT
    assert not (stopped / "seed-5").exists()
    assert [r["finished"] for r in rows(stopped / "fig2-seeds.csv")] == ["1", "0"]
    first = tree(stopped / "seed-3")
    for name in ("fig2.png", "fig2.svg"):
        (stopped / name).unlink()  # written again by the resume
    capsys.readouterr()
    assert main(["run", "--headless", "--quiet", "--resume", str(stopped)]) == 0
    err = capsys.readouterr().err
    assert "seed-3 finished (kept), seed-4 from iteration 9, seed-5 not begun" in err
    assert tree(stopped / "seed-3") == first  # the finished seed: not a byte changed
    same_group_files(stopped, whole)
    assert (stopped / "fig2.png").stat().st_size > 0 and (stopped / "fig2.svg").stat().st_size > 0
    for seed in (4, 5):  # each seed's run holds the records of the uninterrupted one, bit for bit
        same_records(stopped / f"seed-{seed}", whole / f"seed-{seed}")
        assert json.loads((stopped / f"seed-{seed}" / "run.json").read_text())["status"] == "finished"
    assert [e["iteration"] for e in events_of(stopped / "seed-4") if e["kind"] == "resumed"] == [STOP_AT]
    assert (stopped / "seed-4" / "fig2.csv").read_text() == (whole / "seed-4" / "fig2.csv").read_text()
    assert not (stopped / "writer.lock").exists() and not (whole / "writer.lock").exists()


def test_a_seed_without_a_checkpoint_begins_again_and_one_claimed_but_never_begun_runs(tmp_path, whole,
                                                                                      monkeypatch, capsys):
    """In the run store, resumed by a prefix of the group's name: seed 4's checkpoint gone (as a run
    killed before its first one) and seed 5's folder claimed but empty (a stop before its run began)."""
    store = tmp_path / "data"
    monkeypatch.setenv("FFTUI_DATA_DIR", str(store))
    stopped_group(monkeypatch, None)
    (group,) = (store / "runs").iterdir()
    (group / "seed-4" / "checkpoint.safetensors").unlink()
    (group / "seed-5").mkdir()
    (group / "seed-5" / "writer.lock").touch()
    capsys.readouterr()
    assert main(["run", "--headless", "--quiet", "--resume", group.name[:12]]) == 0
    assert "seed-4 afresh (no checkpoint), seed-5 afresh" in capsys.readouterr().err
    same_group_files(group, whole)
    for seed in (4, 5):
        assert [r["iteration"] for r in lines_of(group / f"seed-{seed}")] == list(range(1, 25))
        assert lines_of(group / f"seed-{seed}") == lines_of(whole / f"seed-{seed}")
        assert not [e for e in events_of(group / f"seed-{seed}") if e["kind"] == "resumed"]
        config = json.loads((group / f"seed-{seed}" / "config.json").read_text())
        assert config["config"]["seed"] == seed and config["preset"] == "fig2"


def _refused(capsys, folder: Path, argv: list[str], words: str) -> None:
    before = tree(folder)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert tree(folder) == before


def test_a_group_whose_seeds_all_finished_says_so_and_changes_nothing(whole, capsys):
    _refused(capsys, whole, ["run", "--headless", "--quiet", "--resume", str(whole)], "nothing to resume")


def test_a_seed_stopped_after_its_last_batch_counts_as_finished(whole, tmp_path, capsys):
    """A signal that came with a seed's last batch leaves it interrupted with every batch recorded
    and the group's files counting it out: the resume trains nothing and writes the group's files."""
    group = tmp_path / "fig2"
    shutil.copytree(whole, group)
    info_path = group / "seed-5" / "run.json"
    info_path.write_text(info_path.read_text().replace('"finished"', '"interrupted"'))
    for name in ("fig2-seeds.csv", "fig2.csv", "fig2.txt"):
        (group / name).unlink()
    seed = tree(group / "seed-5")
    assert main(["run", "--headless", "--quiet", "--resume", str(group)]) == 0
    assert "seed-5 stopped after its last batch" in capsys.readouterr().err
    assert tree(group / "seed-5") == seed
    same_group_files(group, whole)


@pytest.mark.parametrize("flags, words", [
    (["--lr", "0.1"], "--lr"), (["--iters", "40"], "--iters"), (["--seeds", "3"], "--seeds"),
    (["--out", "elsewhere"], "--out"), (["--preset", "fig2"], "--preset"), (["--width", "8"], "--width")])
def test_a_flag_that_would_change_the_group_is_refused(stopped, capsys, flags, words):
    _refused(capsys, stopped, ["run", "--headless", "--quiet", "--resume", str(stopped), *flags], words)


def test_the_live_app_sends_a_group_to_headless(stopped, capsys):
    _refused(capsys, stopped, ["run", "--resume", str(stopped)], "--headless")


def test_a_group_with_a_seed_being_recorded_is_refused(stopped, capsys):
    for lock in (stopped / "seed-4" / "writer.lock", stopped / "writer.lock"):
        lock.touch()
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a live writer holds it
            _refused(capsys, stopped, ["run", "--headless", "--quiet", "--resume", str(stopped)], "being recorded now")
        finally:
            os.close(fd)
            if lock.parent == stopped:
                lock.unlink()


def test_a_group_of_a_preset_that_trains_nothing_is_refused(tmp_path, capsys):
    folder = tmp_path / "fig1a"
    folder.mkdir()
    (folder / "seeds.json").write_text(json.dumps({"preset": "fig1a", "seeds": [0, 1], "runs": ["seed-0", "seed-1"]}))
    _refused(capsys, folder, ["run", "--headless", "--quiet", "--resume", str(folder)], "trains nothing")
