"""What trying the stacks out showed: the status bar names every layer's width, and a recording
shows the test errors its run recorded."""
from __future__ import annotations

import numpy as np

from engine.config import Config
from fftui.recording import RecordedHistory
from fftui.widgets.layers import test_figure as error_figure
from fftui.widgets.status import config_line


def test_status_line_names_every_layer_of_a_stack():
    now, queued = config_line(Config(widths=(64, 32, 16)), Config(widths=(64, 32, 16)))
    assert now.split(" · ")[-1] == "n 64,32,16"
    assert queued == ""
    assert config_line(Config(width=48), Config(width=48))[0].split(" · ")[-1] == "n 48"


class _Run:
    """A recorded run's events as RunReader gives them (engine/store), nothing else."""

    def __init__(self, events):
        self.events = events


def _recorded(iterations, events):
    history = RecordedHistory.__new__(RecordedHistory)  # only the cursor and the events are read
    history.run = _Run(events)
    history._iterations = np.asarray(iterations, dtype=np.int64)
    history.cursor = len(iterations) - 1
    history._base = Config(widths=(8, 4), evaluate=True)
    history._changes = None
    return history


def test_recording_shows_its_recorded_test_errors():
    events = [
        {"kind": "evaluation", "iteration": 20, "epoch": 1, "test_error": 0.5, "wrong": 500, "total": 1000,
         "layers": "all", "digits": "1,000 digits", "readout_error": 0.25, "readout_wrong": 250},
        {"kind": "change", "iteration": 25, "changes": {"lr": [0.001, 0.002]}},
        {"kind": "evaluation", "iteration": 40, "epoch": 2, "test_error": 0.4, "wrong": 400, "total": 1000,
         "layers": "all", "digits": "1,000 digits"},
    ]
    history = _recorded(range(1, 41), events)
    got = [(e.iteration, e.epoch, e.error, e.readout_error) for e in history.evaluations]
    assert got == [(20, 1, 0.5, 0.25), (40, 2, 0.4, None)]
    figure = error_figure(history)
    assert figure.series and list(figure.series[0].y) == [50.0, 40.0]
    history.cursor = 29   # iteration 30: the second evaluation is still to come
    assert [e.iteration for e in history.evaluations] == [20]
    history.cursor = 5
    assert history.evaluations == []


def _stack_run(folder, seed: int) -> None:
    from fftui.cli import main

    assert main(["run", "--headless", "--data", "sample", "--widths", "16,12", "--batch-size", "8", "--iters", "3",
                 "--quiet", "--seed", str(seed), "--out", str(folder)]) == 0


def test_a_sweep_settings_counts_read_as_whole_numbers_in_every_layer(tmp_path):
    """A count (valid samples) of a sweep setting is the mean over its seeds: "valid 8", as a run
    shows it, in the first layer as in the others (not "8.0"); a mean between two whole numbers
    stays as it is (not cut to the number below)."""
    from engine.store import RunReader
    from fftui.recording import _as_declared
    from fftui.sweep.overlay import SettingRun

    folders = [tmp_path / "a", tmp_path / "b"]
    for seed, folder in enumerate(folders):
        _stack_run(folder, seed)
    history = RecordedHistory(SettingRun("s", [RunReader(f) for f in folders]))
    for layer in (0, 1):
        history.select(layer)
        valid = history.latest.groups["pos"].valid
        assert isinstance(valid, int) and valid == 8 and f"valid {valid}" == "valid 8"
    assert _as_declared(np.float64(31.5), "int64") == 31.5
    assert _as_declared(np.float64(32.0), "int64") == 32 and isinstance(_as_declared(32.0, "int64"), int)


def test_tensorboard_export_holds_the_recorded_test_errors(tmp_path):
    """A run with --evaluate and a linear readout: its export holds each recorded test error (the
    events.jsonl "evaluation" lines, read here) at its iteration."""
    import importlib.util
    import json

    import pytest

    from fftui.cli import main

    if importlib.util.find_spec("tensorboard") is None:
        pytest.skip("the TensorBoard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "r"
    assert main(["run", "--headless", "--data", "sample", "--widths", "16,12", "--batch-size", "8", "--iters", "4",
                 "--evaluate", "--readout", "linear", "--quiet", "--out", str(run)]) == 0
    recorded = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    recorded = [e for e in recorded if e.get("kind") == "evaluation"]
    assert recorded
    assert main(["runs", "export", str(run), "--tensorboard", str(tmp_path / "tb")]) == 0
    events = EventAccumulator(str(tmp_path / "tb" / "r"), size_guidance={"scalars": 0})
    events.Reload()
    for tag, key in (("test/error", "test_error"), ("test/readout_error", "readout_error")):
        got = [(s.step, s.value) for s in events.Scalars(tag)]
        assert got == [(e["iteration"], pytest.approx(e[key], rel=1e-6)) for e in recorded]


def test_a_group_with_one_counted_seed_prints_no_nan_spread(monkeypatch):
    """A seed group stopped during its second seed counts one: its summary numbers are the mean
    alone ("40", not "40 ± nan"); two seeds give the sample sd (ddof = 1)."""
    from fftui.headless import seeds
    from fftui.headless.experiments import Measured

    values = {0: {"iterations": 40.0, "sparser_mean": 0.5}, 1: {"iterations": 40.0, "sparser_mean": 0.7}}
    monkeypatch.setattr(seeds, "summary_numbers", lambda m, cfg: values[m.seed])
    one = seeds.number_table([Measured("fig2", 0)], Config()).splitlines()[1:]
    assert [line.split() for line in one] == [["iterations", "40", "(per", "seed:", "40)"],
                                              ["sparser_mean", "0.5", "(per", "seed:", "0.5)"]]
    two = seeds.number_table([Measured("fig2", 0), Measured("fig2", 1)], Config()).splitlines()[1:]
    assert two[1].split()[:4] == ["sparser_mean", "0.6", "±", f"{np.std([0.5, 0.7], ddof=1):.6g}"]
    assert "nan" not in "\n".join(one + two)


def test_sweep_status_of_a_run_folder_names_it_a_run(tmp_path, capsys):
    """`fftui sweep --status RUN` of a recorded run: one line that it is a run, not "not a recorded
    run, or half-written"; status 2."""
    from fftui.cli import main

    run = tmp_path / "r"
    run.mkdir()
    (run / "run.json").write_text("{}")
    assert main(["sweep", "--status", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "not a recorded run" not in err and "is not a sweep" in err and "a recorded run" in err


def test_the_text_summary_counts_layers_from_one_as_the_app_does():
    from fftui.headless.summary import layer_lines

    numbers = {k: 0.5 for k in ("sparser", "theorem", "agree_theorem", "sparser_end", "agree_theorem_end",
                                "sparsity", "silenced")}
    lines = layer_lines([{"pos": numbers}, {"pos": numbers, "neg": numbers}])
    assert [line.split()[:2] for line in lines] == [["layer", "1"], ["layer", "2"], ["layer", "2"]]


def test_a_recording_does_not_offer_the_test_key():
    from fftui.replay import ReplayApp

    assert "evaluate" not in {k.action for k in ReplayApp.KEYS}
