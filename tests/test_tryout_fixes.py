"""Faults found by using fftui as a new user would, each with the test that showed it."""
from __future__ import annotations

import json

import pytest

from fftui.cli import main
from test_resume import FAST, lines_of, same_records


# -- a stack resumed from its checkpoint goes on with every layer's weights and optimiser state ------
@pytest.mark.parametrize("extra", [["--widths", "24,16"],
                                   ["--widths", "24,16,8", "--optimizer", "adam", "--lr", "3e-3",
                                    "--layer-lr", "1,0.5,2", "--negatives", "hard"]])
def test_a_stack_resumed_past_its_end_records_what_one_longer_run_records(tmp_path, capsys, extra):
    first, whole = tmp_path / "first", tmp_path / "whole"
    assert main(FAST + extra + ["--iters", "7", "--keep-samples", "all", "--out", str(first)]) == 0
    assert main(FAST + extra + ["--iters", "16", "--keep-samples", "all", "--out", str(whole)]) == 0
    assert main(["run", "--headless", "--quiet", "--resume", str(first), "--iters", "16"]) == 0
    capsys.readouterr()
    records = lines_of(whole)
    assert len(records[0]["layers"]) == len(extra[1].split(","))  # every layer is in the records
    same_records(first, whole)  # layers above the first included, bit for bit


def test_a_stack_checkpoint_without_its_upper_layers_is_refused(tmp_path, capsys):
    one = tmp_path / "one"
    assert main(FAST + ["--iters", "3", "--out", str(one)]) == 0
    path = one / "config.json"
    config = json.loads(path.read_text())
    config["config"]["widths"] = [24, 16]  # the one-layer run's checkpoint cannot be a stack's
    path.write_text(json.dumps(config))
    before = {p.name: p.read_bytes() for p in one.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["run", "--headless", "--quiet", "--resume", str(one), "--iters", "6"]) == 2
    err = capsys.readouterr().err
    assert "layer 1" in err and len(err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in one.iterdir() if p.is_file()} == before


# -- a stack whose layers differ in width or rate may score all layers but the first ----------------
@pytest.mark.parametrize("extra", [["--widths", "24,16"], ["--widths", "24,24", "--layer-lr", "1,0.5"]])
def test_a_stack_of_unlike_layers_evaluates_skipping_the_first(tmp_path, capsys, extra):
    out = tmp_path / "run"
    argv = FAST + extra + ["--evaluate", "--score-layers", "skip-first", "--negatives", "hard", "--iters", "3",
                           "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "skip-first" not in captured.err
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    (evaluation,) = [e for e in events if e["kind"] == "evaluation"]
    assert evaluation["layers"] == "skip-first" and evaluation["total"] == 1000  # the sample's held-out digits


# -- a resumed stack's closing lines count the batches before its checkpoint ------------------------
def _layer_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("  layer ")]


def test_a_resumed_stack_prints_the_per_layer_means_of_the_whole_run(tmp_path, capsys):
    first, whole = tmp_path / "first", tmp_path / "whole"
    extra = ["--widths", "24,16", "--keep-samples", "all"]
    assert main(FAST + extra + ["--iters", "6", "--out", str(first)]) == 0
    capsys.readouterr()
    assert main(FAST + extra + ["--iters", "15", "--out", str(whole)]) == 0
    whole_lines = _layer_lines(capsys.readouterr().out)
    assert main(["run", "--headless", "--quiet", "--resume", str(first), "--iters", "15"]) == 0
    resumed_lines = _layer_lines(capsys.readouterr().out)
    assert len(whole_lines) == 4 and resumed_lines == whole_lines


# -- a network preset resumes from its checkpoint (it started over before, in the same folder) -------
def test_a_network_preset_resumes_where_it_stopped(tmp_path, capsys):
    first, whole = tmp_path / "first", tmp_path / "whole"
    preset = ["run", "--headless", "--quiet", "--preset", "loewex", "--data", "sample", "--widths", "24,16",
              "--batch-size", "8", "--no-figures", "--keep-samples", "all"]
    assert main(preset + ["--iters", "5", "--out", str(first)]) == 0
    assert main(preset + ["--iters", "12", "--out", str(whole)]) == 0
    # refused before: the checkpoint's 4,000 training digits against the sample's 5,000 (--evaluate)
    assert main(["run", "--headless", "--quiet", "--resume", str(first), "--iters", "12"]) == 0
    capsys.readouterr()
    same_records(first, whole)  # iterations 1 to 12 once each, every value as the uninterrupted run's
    assert (first / "loewex.csv").read_text() == (whole / "loewex.csv").read_text()


# -- a run that holds digits out for its test error counts its epochs on the digits it trains on -----
def test_epochs_of_a_resumed_run_with_held_out_digits_count_the_digits_it_trains_on(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["run", "--headless", "--quiet", "--data", "sample", "--widths", "16,8", "--evaluate",
            "--batch-size", "500", "--epochs", "1", "--out", str(run)]
    assert main(argv) == 0  # 4,000 of the sample's 5,000 digits train: 8 batches of 500 an epoch
    capsys.readouterr()
    assert main(["run", "--headless", "--quiet", "--resume", str(run), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "stands at iteration 8" in err and len(err.strip().splitlines()) == 1
    assert main(["run", "--headless", "--quiet", "--resume", str(run), "--epochs", "2"]) == 0
    assert "resuming run at iteration 8 of 16" in capsys.readouterr().err
    assert json.loads((run / "run.json").read_text())["iteration"] == 16
