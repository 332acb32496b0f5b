"""`fftui sweep`: definitions refused before anything starts, a real local Ray Tune sweep whose table
equals the means of its trials' own records, resume, and failing trials reported while the others
finish. One local Ray for the module (module-scoped fixture), shut down at its end."""
from __future__ import annotations

import csv
import gzip
import json
import math
import os
import statistics
import sys
import time

import pytest

from fftui.cli import main
from test_app import run_async, screen_text
from test_replay import opened

ray = pytest.importorskip("ray", reason="the sweep tests need fftui[sweep]")

TINY = ["--preset", "fig3", "--width", "16", "--iters", "20", "--batch-size", "32", "--data", "sample"]


# -- bad input: one line, status 2, nothing started ---------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["--grid", "nosuch=1,2"], "unknown parameter 'nosuch'"),
    (["--grid", "lr=1e-3,-1"], "-1"),
    (["--grid", "loss=linear,hinge"], "hinge"),
    (["--grid", "lr=,"], "no values"),
    (["--grid", "weight_decay=0,1e4", "--lr", "1"], "weight_decay 10000"),
    ([], "empty"),
    (["--random", "lr=1e-4:1e-2"], "--samples"),
    (["--random", "lr=1e-2:1e-4", "--samples", "3"], "LOW must be less than HIGH"),
    (["--grid", "width=" + ",".join(map(str, range(2, 402))), "batch_size=" + ",".join(map(str, range(1, 301)))],
     "more than 100,000"),
    (["--seeds", "0"], "at least 1"),
    (["--cpus-per-trial", "-1", "--seeds", "2"], "--cpus-per-trial"),
])
def test_bad_definitions_are_one_line_and_start_nothing(tmp_path, capsys, argv, words):
    out = tmp_path / "sweep"
    assert main(["sweep", *TINY, *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fftui sweep: ") and words in err[0], err
    assert not out.exists()


def test_folders_that_are_not_sweeps_are_refused(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "sweep.json").write_text('{"kind": "something else", "trials": []}')
    for flag in ("--status", "--resume", "--table"):
        for folder in (tmp_path / "plain", tmp_path / "other", tmp_path / "missing"):
            assert main(["sweep", flag, str(folder)]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and "not a" in err[0], err


@pytest.mark.parametrize("extra, named", [
    (["--preset", "fig3"], "--preset"), (["--grid", "lr=1e-3,1e-2"], "--grid"), (["--lr", "0.1"], "--lr"),
    (["--out", "elsewhere"], "--out"), (["--seeds", "3"], "--seeds"), (["bench/study.toml"], "bench/study.toml"),
])
def test_flags_that_define_a_sweep_are_refused_with_status_table_and_resume(tmp_path, capsys, extra, named):
    folder = tmp_path / "plain"
    folder.mkdir()
    for flag in ("--status", "--resume", "--table"):
        assert main(["sweep", flag, str(folder), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{flag} goes on with the sweep as it was defined: {named}" in err[0], err
    assert list(folder.iterdir()) == []


def test_an_address_where_nothing_answers_gives_up_in_time():
    from fftui.sweep.definition import SweepError
    from fftui.sweep.execute import ADDRESS_TIMEOUT, check_address

    assert ADDRESS_TIMEOUT <= 30
    started = time.monotonic()
    with pytest.raises(SweepError, match="no Ray cluster answers at 127.0.0.1:9"):
        check_address("127.0.0.1:9", timeout=2.0)
    assert time.monotonic() - started < 6
    with pytest.raises(SweepError, match="HOST:PORT"):
        check_address("nowhere")


def test_without_ray_the_command_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    out = tmp_path / "sweep"
    assert main(["sweep", *TINY, "--seeds", "2", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == "fftui sweep: fftui sweep needs Ray Tune: pip install 'fftui[sweep]'"
    assert not out.exists()


def test_random_rates_are_drawn_log_uniformly_within_their_range():
    from engine.presets import preset_config
    from fftui.sweep.definition import build

    sweep = build({"random": {"lr": "1e-4:1e-2", "momentum": "0:0.9"}, "samples": 400, "sample_seed": 3},
                  preset_config("fig3"))
    lrs = [t.config.lr for t in sweep.trials]
    momenta = [t.config.momentum for t in sweep.trials]
    assert len(lrs) == 400 and all(1e-4 <= v <= 1e-2 for v in lrs) and all(0 <= m <= 0.9 for m in momenta)
    # log-uniform: half below the geometric middle 1e-3 (uniform would put 9 % there); momentum: uniform
    assert 0.4 < sum(v < 1e-3 for v in lrs) / 400 < 0.6
    assert 0.4 < sum(m < 0.45 for m in momenta) / 400 < 0.6


def test_grid_and_seeds_give_every_combination_validated():
    from engine.presets import preset_config
    from fftui.sweep.definition import build

    sweep = build({"grid": ["lr=1e-3,1e-2", "loss=linear,logistic"], "seeds": 3}, preset_config("fig3"))
    assert len(sweep.trials) == 12 and len(sweep.settings) == 4
    assert {(t.config.lr, t.config.loss, t.config.seed) for t in sweep.trials} == {
        (lr, loss, s) for lr in (1e-3, 1e-2) for loss in ("linear", "logistic") for s in (0, 1, 2)}
    assert len({t.name for t in sweep.trials}) == 12


def test_a_list_parameter_takes_its_grid_values_apart_by_semicolons():
    from engine.presets import preset_config
    from fftui.sweep.definition import SweepError, build

    base = preset_config("fig3")
    sweep = build({"grid": ["widths=64,64;128,32,16"]}, base)
    assert sorted(t.config.widths for t in sweep.trials) == [(64, 64), (128, 32, 16)]
    assert build({"grid": ["widths=64,64"]}, base).trials[0].config.widths == (64, 64)  # one setting
    toml = build({"grid": {"widths": [[10, 20], [30, 40]], "layer_lr": [1.0, 0.5]}}, base)
    assert sorted({(t.config.widths, t.config.layer_lr) for t in toml.trials}) == [
        ((10, 20), (1.0, 0.5)), ((30, 40), (1.0, 0.5))]
    assert len({t.name for t in sweep.trials}) == 2 and all("," not in t.name for t in sweep.trials)
    with pytest.raises(SweepError, match="twice"):
        build({"grid": ["widths=64,64;64,64"]}, base)
    with pytest.raises(SweepError, match="widths"):
        build({"grid": ["widths=64,0"]}, base)


def test_the_study_file_defines_the_study():
    from fftui.sweep.definition import base_config, build, read_toml

    path = os.path.join(os.path.dirname(__file__), "..", "bench", "study.toml")
    data = read_toml(path)
    sweep = build({**data, "seeds": 5}, base_config(data.get("preset"), None, data.get("base")))
    assert len(sweep.trials) == 5 * len(sweep.settings) and len(sweep.settings) >= 8


# -- real sweeps on a local Ray -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray():
    from fftui.sweep.execute import QUIET_ENV

    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=True,
             logging_level="ERROR")
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def finished_sweep(local_ray, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweeps") / "lr"
    status = main(["sweep", *TINY, "--grid", "lr=1e-3,1e-2", "--seeds", "2", "--out", str(out), "--quiet"])
    assert status == 0
    return out


def _records(folder):
    with gzip.open(folder / "summary.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f]


def _independent_stats(records, group):
    """The statistics of one trial computed here from its JSON lines."""
    sparser = [r["groups"][group]["sparser"] for r in records]
    tenth = max(1, len(records) // 10)
    finite = [v for v in sparser if v is not None and math.isfinite(v)]

    def mean(key):
        values = [r["groups"][group][key] for r in records]
        return statistics.fmean(v for v in values if v is not None and math.isfinite(v))

    return {"first_tenth": statistics.fmean(sparser[:tenth]), "last_tenth": statistics.fmean(sparser[-tenth:]),
            "sparser": statistics.fmean(finite), "above_half": sum(v > 0.5 for v in finite) / len(finite),
            "error_theorem": statistics.fmean(abs(r["groups"][group]["theorem"] - r["groups"][group]["sparser"])
                                              for r in records),
            "error_general": statistics.fmean(abs(r["groups"][group]["general"] - r["groups"][group]["sparser"])
                                              for r in records),
            "agree_theorem": mean("agree_theorem"), "agree_general": mean("agree_general")}


def test_the_table_holds_the_means_of_the_trials_own_records(finished_sweep):
    sweep = json.loads((finished_sweep / "sweep.json").read_text())
    assert [t["status"] for t in sweep["trials"]] == ["finished"] * 4
    folders = sorted((finished_sweep / "trials").iterdir())
    assert len(folders) == 4
    for folder in folders:  # each trial is a recorded run of its own configuration
        assert json.loads((folder / "run.json").read_text())["status"] == "finished"
        assert len(_records(folder)) == 20
    with open(finished_sweep / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4  # 2 settings x (pos, neg)
    for row in rows:
        trials = [t for t in sweep["trials"] if t["values"]["lr"] == float(row["lr"])]
        assert len(trials) == 2 and {t["seed"] for t in trials} == {0, 1}
        assert all(t["config"]["lr"] == float(row["lr"]) for t in trials)
        per_trial = [_independent_stats(_records(finished_sweep / "trials" / t["name"]), row["group"])
                     for t in trials]
        for key in per_trial[0]:
            values = [s[key] for s in per_trial]
            assert float(row[f"{key}_mean"]) == pytest.approx(statistics.fmean(values), rel=1e-5, abs=1e-7), key
            assert float(row[f"{key}_sd"]) == pytest.approx(statistics.stdev(values), rel=1e-4, abs=1e-6), key


def test_status_and_table_read_the_folder(finished_sweep, capsys):
    assert main(["sweep", "--status", str(finished_sweep)]) == 0
    assert capsys.readouterr().out.strip() == "4 trials: 4 finished"
    assert main(["sweep", "--table", str(finished_sweep)]) == 0
    assert "lr=0.01" in capsys.readouterr().out


def test_the_trials_are_runs_that_fftui_runs_lists(finished_sweep, capsys):
    assert main(["runs", "--store", str(finished_sweep / "trials")]) == 0
    listed = capsys.readouterr().out
    for folder in (finished_sweep / "trials").iterdir():
        assert folder.name in listed
    assert "4 runs" in listed
    assert main(["runs", "--store", str(finished_sweep / "trials"), "path", "0-"]) == 0
    assert capsys.readouterr().out.strip() == str(next((finished_sweep / "trials").glob("0-*")))


def test_resume_runs_only_the_trials_not_finished(finished_sweep, capsys):
    path = finished_sweep / "sweep.json"
    sweep = json.loads(path.read_text())
    redo = sweep["trials"][2]
    redo["status"], redo["stats"] = "interrupted", None
    path.write_text(json.dumps(sweep))
    kept = {t["name"]: (finished_sweep / "trials" / t["name"] / "run.json").stat().st_mtime_ns
            for t in sweep["trials"] if t is not redo}
    assert main(["sweep", "--resume", str(finished_sweep), "--quiet"]) == 0
    after = json.loads(path.read_text())
    assert [t["status"] for t in after["trials"]] == ["finished"] * 4 and after["trials"][2]["stats"]
    for name, mtime in kept.items():  # the finished trials were not run again
        assert (finished_sweep / "trials" / name / "run.json").stat().st_mtime_ns == mtime
    capsys.readouterr()
    assert main(["sweep", "--resume", str(finished_sweep)]) == 0
    assert "nothing to resume" in capsys.readouterr().out


def test_a_sweep_being_run_is_not_resumed_twice(finished_sweep, capsys):
    from fftui.sweep.state import SweepState

    running = SweepState.open(finished_sweep)
    running.lock()
    try:
        assert main(["sweep", "--resume", str(finished_sweep)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is being run by another fftui sweep" in err[0]
    finally:
        running.unlock()


def test_failed_and_diverged_trials_are_recorded_and_the_others_finish(local_ray, tmp_path, capsys, monkeypatch):
    import torch

    from fftui.sweep import execute

    monkeypatch.setattr(execute, "TUNER_TRIALS", 3)  # the 4 trials in two Tuners, one after the other

    out = tmp_path / "failing"
    devices = "cpu" if torch.cuda.is_available() else "cpu,cuda"  # without CUDA, the cuda trials fail
    argv = ["sweep", "--preset", "fig3", "--width", "64", "--iters", "20", "--data", "sample",
            "--grid", "lr=1e-3,10", f"device={devices}", "--out", str(out), "--quiet"]
    status = main(argv)
    err = capsys.readouterr().err
    trials = {(t["values"]["lr"], t["values"]["device"]): t
              for t in json.loads((out / "sweep.json").read_text())["trials"]}
    assert trials[(1e-3, "cpu")]["status"] == "finished"
    diverged = trials[(10.0, "cpu")]
    assert diverged["status"] == "diverged" and "the loss became" in diverged["error"]
    assert json.loads((out / "trials" / diverged["name"] / "run.json").read_text())["status"] == "diverged"
    if torch.cuda.is_available():
        assert status == 0
        return
    assert status == 1
    for lr in (1e-3, 10.0):
        failed = trials[(lr, "cuda")]
        assert failed["status"] == "failed" and "CUDA" in failed["error"]
        assert f"trial {failed['name']} failed: " in err
    with open(out / "results.csv", newline="") as f:
        rows = {(r["lr"], r["device"], r["group"]): r for r in csv.DictReader(f)}
    assert rows[("10", "cpu", "–")]["diverged"] == "1" and rows[("0.001", "cpu", "pos")]["finished"] == "1"
    assert rows[("10", "cuda", "–")]["failed"] == "1"
    assert "Traceback" not in err and "RayTaskError" not in err  # Ray's own reports stay off the terminal


@run_async
async def test_open_draws_each_settings_mean_over_seeds_with_its_band(finished_sweep):
    import numpy as np

    from fftui.replay import ReplayApp
    from fftui.sweep.overlay import setting_runs
    from fftui.widgets.sparsening import SparseningPane

    sweep = json.loads((finished_sweep / "sweep.json").read_text())
    records = {lr: [_records(finished_sweep / "trials" / t["name"]) for t in sweep["trials"]
                    if t["values"]["lr"] == lr] for lr in (1e-3, 1e-2)}

    def per_seed(lr, group):
        return np.array([[r["groups"][group]["sparser"] for r in seed] for seed in records[lr]])

    main_run, others, _ = setting_runs(finished_sweep)
    app = ReplayApp(main_run, others)
    async with app.run_test(size=(160, 48)) as pilot:
        await opened(pilot, app)
        assert "compared with lr=0.001 +sd, lr=0.001 −sd, lr=0.01 (2 seeds)" in screen_text(app)
        pane = app.query_one(SparseningPane)
        for plot, group in zip(pane.plots, ("pos", "neg"), strict=True):
            series = {s.label: s for s in plot.figure.series}
            np.testing.assert_allclose(series["sparser"].y, per_seed(1e-3, group).mean(axis=0))
            np.testing.assert_allclose(series["sparser lr=0.01 (2 seeds)"].y, per_seed(1e-2, group).mean(axis=0))
            values = per_seed(1e-3, group)
            mean, sd = values.mean(axis=0), values.std(axis=0, ddof=1)
            np.testing.assert_allclose(series["sparser lr=0.001 +sd"].y, mean + sd)
            np.testing.assert_allclose(series["sparser lr=0.001 −sd"].y, mean - sd)
            assert "theorem lr=0.001 +sd" not in series  # the band carries the sparser ratio only


def test_open_refuses_a_sweep_without_records(tmp_path, capsys):
    from engine.presets import preset_config
    from fftui.sweep.definition import build
    from fftui.sweep.state import SweepState

    SweepState.create(tmp_path / "empty", build({"seeds": 2}, preset_config("fig3")))
    assert main(["open", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no trial with a record yet (2 trials: 2 pending)" in err[0]


def test_without_matplotlib_the_csv_is_written_and_one_line_says_how_to_get_the_png(finished_sweep, capsys,
                                                                                   monkeypatch):
    from fftui.sweep.command import show_results
    from fftui.sweep.state import SweepState

    state = SweepState.open(finished_sweep)
    (finished_sweep / "results.csv").unlink()
    (finished_sweep / "plots.png").unlink(missing_ok=True)  # absent without the plots extra
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    show_results(state, plot=False, write=True)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fftui sweep: plots.png needs matplotlib: pip install 'fftui[plots]'",
                   f"fftui sweep: wrote results.csv into {state.folder}"]
    assert (finished_sweep / "results.csv").exists() and not (finished_sweep / "plots.png").exists()


def test_a_trial_started_within_a_second_of_another_ending_reaches_sweep_json(tmp_path, monkeypatch):
    from engine.presets import preset_config
    from fftui.sweep import state as state_module
    from fftui.sweep.definition import build
    from fftui.sweep.state import SweepState

    now = [100.0]
    monkeypatch.setattr(state_module.time, "monotonic", lambda: now[0])
    state = SweepState.create(tmp_path / "s", build({"seeds": 2}, preset_config("fig3")))

    def on_disk() -> list[str]:
        return [t["status"] for t in SweepState.open(tmp_path / "s").trials]

    now[0] += 1.0
    state.mark(0, "finished")
    now[0] += 0.3
    state.mark(1, "running")  # within the second: held back
    assert on_disk() == ["finished", "pending"]
    state.save_if_due()
    assert on_disk() == ["finished", "pending"]
    now[0] += 0.8  # what the scheduler's next step does once the second has passed
    state.save_if_due()
    assert on_disk() == ["finished", "running"]


def test_a_cluster_that_answers_but_cannot_be_joined_is_one_line_and_nothing_is_made(tmp_path, capfd, monkeypatch):
    from fftui.sweep import execute

    def refuse(**options):
        os.write(2, b"gcs_client.cc: Failed to get cluster ID from GCS server\n")  # what Ray's core prints
        raise ConnectionError(f"Failed to connect to Ray cluster at {options['address']}")

    monkeypatch.setattr(execute, "check_address", lambda address, timeout=0: None)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    log = tmp_path / "log" / "fftui.log"
    monkeypatch.setattr("engine.logs.log_file", lambda: log)
    out = tmp_path / "sweep"
    assert main(["sweep", *TINY, "--seeds", "2", "--address", "10.1.2.3:6379", "--out", str(out)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fftui sweep: could not join the Ray cluster at 10.1.2.3:6379: "), err
    assert "RAY_AUTH_MODE=token" in err[0]
    assert not out.exists()
    assert "Failed to get cluster ID" in log.read_text()  # the core's retries went to the log
