"""Every run recorded: headless runs and presets into the store by default (or --out), --no-record,
--keep-samples, --config to run a recorded configuration again, and the engine's runner recording
resets, changes, pauses and checkpoints through engine.recording.Recording."""
from __future__ import annotations

import json
import re

import pytest

from engine.config import Config
from fftui.cli import main
from run_files import FillingFile, events, iterations, run_info, store_runs, summary_lines

FAST = ["run", "--headless", "--data", "sample", "--width", "24", "--batch-size", "8", "--quiet"]
STAMP = r"\d{8}-\d{6}"


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An empty store of its own for the test: $FFTUI_DATA_DIR/runs."""
    monkeypatch.setenv("FFTUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # nothing may land in the working folder
    return tmp_path / "data" / "runs"


def new_runs(store) -> list:
    return store_runs(store)


# -- headless ---------------------------------------------------------------------------------------
def test_a_headless_run_is_recorded_in_the_store_by_default(store, capsys):
    assert main(FAST + ["--iters", "3", "--mode", "descent", "--loss", "logistic"]) == 0
    (run,) = new_runs(store)
    assert re.fullmatch(f"{STAMP}-descent-logistic", run.name)
    assert iterations(run) == [1, 2, 3]
    info = run_info(run)
    assert info["status"] == "finished" and info["iteration"] == 3 and info["checkpoint_iteration"] == 3
    assert json.loads((run / "config.json").read_text())["config"]["loss"] == "logistic"
    assert f"recorded in {run} (3 batches)" in capsys.readouterr().out
    assert sorted(p.name for p in store.parent.parent.iterdir()) == ["data"]


def test_two_runs_started_in_the_same_second_get_two_folders(store):
    assert main(FAST + ["--iters", "1"]) == 0
    assert main(FAST + ["--iters", "1"]) == 0
    names = [p.name for p in new_runs(store)]
    assert len(names) == 2 and all(re.fullmatch(f"{STAMP}-ff-linear(-2)?", n) for n in names)


def test_a_preset_is_recorded_under_its_name_with_its_figure(store):
    assert main(["run", "--headless", "--preset", "fig2", "--data", "sample", "--iters", "3", "--width", "32",
                 "--quiet"]) == 0
    (run,) = new_runs(store)
    assert re.fullmatch(f"{STAMP}-fig2", run.name)
    assert iterations(run) == [1, 2, 3]
    assert (run / "fig2.csv").read_text().splitlines()[0] == "iteration,sparser,theorem1"
    assert (run / "fig2.txt").read_text().strip()
    assert json.loads((run / "config.json").read_text())["preset"] == "fig2"


def test_no_record_writes_nothing(store, tmp_path, capsys):
    assert main(FAST + ["--iters", "3", "--no-record"]) == 0
    assert not store.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert "recorded in" not in capsys.readouterr().out


def test_a_preset_without_recording_prints_its_figure_and_writes_nothing(store, tmp_path, capsys):
    assert main(["run", "--headless", "--preset", "fig2", "--data", "sample", "--iters", "2", "--width", "16",
                 "--quiet", "--no-record"]) == 0
    assert "not recorded" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_out_and_no_record_together_are_one_line(store, capsys):
    assert main(FAST + ["--iters", "1", "--no-record", "--out", "x"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "fftui run: --out and --no-record contradict each other; give one"]
    assert not store.exists()


def test_a_run_whose_data_do_not_load_leaves_no_folder_in_the_store(store, tmp_path, capsys):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    assert main(["run", "--headless", "--data", "mnist", "--data-dir", str(empty), "--iters", "1"]) == 2
    assert new_runs(store) == []


def test_a_run_whose_data_do_not_load_gives_its_out_folder_back(store, tmp_path):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    out = tmp_path / "out"
    assert main(["run", "--headless", "--data", "mnist", "--data-dir", str(empty), "--iters", "1",
                 "--out", str(out)]) == 2
    assert list(out.iterdir()) == []  # no claim left: the folder can be used again
    assert main(FAST + ["--iters", "1", "--out", str(out)]) == 0


@pytest.mark.parametrize("value,kept", [("all", 40), ("none", 0), ("8", 17)])
def test_keep_samples_chooses_the_batches_with_arrays(store, value, kept):
    from engine.store import RunReader

    assert main(FAST + ["--iters", "40", "--keep-samples", value]) == 0
    (run,) = new_runs(store)
    its = RunReader(run).samples.iterations("pos").tolist() if kept else []
    # 8: every batch up to 8, then every 2nd up to 16, every 4th up to 32, every 8th after
    expected = {"all": list(range(1, 41)), "none": [],
                "8": [*range(1, 9), 10, 12, 14, 16, 20, 24, 28, 32, 40]}[value]
    assert its == expected and len(expected) == kept
    assert len(iterations(run)) == 40


# -- --config -------------------------------------------------------------------------------------
def test_config_runs_a_recorded_configuration_again_with_the_same_numbers(store, tmp_path):
    first = tmp_path / "first"
    assert main(FAST + ["--iters", "4", "--mode", "descent", "--lr", "0.01", "--seed", "5", "--optimizer", "adam",
                        "--out", str(first)]) == 0
    again = tmp_path / "again"
    assert main(["run", "--headless", "--quiet", "--config", str(first / "config.json"), "--out", str(again)]) == 0
    a, b = (json.loads((p / "config.json").read_text())["config"] for p in (first, again))
    assert a == b and a["seed"] == 5 and a["optimizer"] == "adam"
    numbers = ("iteration", "loss", "sign_flip")
    assert ([[r[k] for k in numbers] for r in summary_lines(first)]
            == [[r[k] for k in numbers] for r in summary_lines(again)])
    assert ([r["groups"] for r in summary_lines(first)] == [r["groups"] for r in summary_lines(again)])


def test_flags_beside_config_override_its_values(store, tmp_path):
    first = tmp_path / "first"
    assert main(FAST + ["--iters", "3", "--lr", "0.02", "--out", str(first)]) == 0
    assert main(["run", "--headless", "--quiet", "--config", str(first / "config.json"), "--iters", "2",
                 "--width", "12"]) == 0
    (run,) = new_runs(store)
    cfg = json.loads((run / "config.json").read_text())["config"]
    assert cfg["iters"] == 2 and cfg["width"] == 12 and cfg["lr"] == 0.02 and cfg["batch_size"] == 8
    assert iterations(run) == [1, 2]


@pytest.mark.parametrize("content,words", [
    ("{", "is not JSON"),
    ('{"settings": {}}', 'is not an fftui run\'s config.json (no "config" object)'),
    ('["config"]', 'is not an fftui run\'s config.json (no "config" object)'),
    ('{"config": {"lr": -1}}', "does not validate: lr must be"),
    ('{"config": {"speed": 3}}', "does not validate: unknown parameter 'speed'"),
])
def test_a_config_file_that_is_not_fftuis_or_does_not_validate_is_one_line(store, tmp_path, capsys, content,
                                                                            words):
    path = tmp_path / "config.json"
    path.write_text(content)
    assert main(["run", "--headless", "--config", str(path), "--iters", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"fftui run: --config {path} ") and words in err[0]
    assert path.read_text() == content and not store.exists()


def test_a_missing_config_file_is_one_line(store, tmp_path, capsys):
    assert main(["run", "--headless", "--config", str(tmp_path / "nope.json")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"fftui run: --config {tmp_path / 'nope.json'} does not exist"]


# -- the runner's recording (what the live app records) -------------------------------------------------
def _recording_runner(small_sample, store, cfg: Config, **options):
    from engine.recording import Recording
    from engine.runner import Runner
    from engine.store import claim_run_folder

    rec = Recording(claim_run_folder("first", store), small_sample, cfg, root=store, **options)
    return rec, Runner(cfg, small_sample, start_paused=True, recorder=rec).start()


def _steps(runner, n: int) -> None:
    from engine.runner import wait_for

    target = runner.iteration + n
    for _ in range(n):
        runner.step()
    assert wait_for(lambda: runner.iteration == target and runner.state == "paused", 60)


def _reset(runner) -> None:
    """Reset and wait until the engine has done it (its "reset:" message)."""
    from engine.runner import wait_for

    runner.drain_events()
    runner.reset()
    messages: list[str] = []

    def done() -> bool:
        messages.extend(e.message for e in runner.drain_events())
        return any(m.startswith("reset:") for m in messages)

    assert wait_for(done, 30)


def test_a_parameter_change_is_an_event_at_its_iteration(small_sample, store):
    from engine.runner import wait_for

    cfg = Config(width=16, batch_size=8, epochs=0)
    rec, runner = _recording_runner(small_sample, store, cfg)
    _steps(runner, 3)
    runner.set_params(loss="logistic", batch_size=4)
    assert wait_for(lambda: runner.config.loss == "logistic", 30)
    _steps(runner, 2)
    runner.stop()
    rec.close()
    (run,) = rec.folders
    lines = summary_lines(run)
    # the change applies after iteration 3: the records say so on their own
    assert [(r["iteration"], r["loss_name"], r["groups"]["pos"]["count"]) for r in lines] == [
        (1, "linear", 8), (2, "linear", 8), (3, "linear", 8), (4, "logistic", 4), (5, "logistic", 4)]
    (change,) = [e for e in events(run) if e["kind"] == "change"]
    assert change["iteration"] == 3
    assert change["changes"] == {"loss": ["linear", "logistic"], "batch_size": [8, 4]}
    info = run_info(run)
    assert info["status"] == "finished" and info["checkpoint_iteration"] == 5  # the clean stop's checkpoint


def test_a_reset_or_a_mode_change_ends_the_run_and_starts_the_next(small_sample, store):
    from engine.runner import wait_for
    from engine.store import read_checkpoint

    cfg = Config(width=16, batch_size=8, epochs=0)
    rec, runner = _recording_runner(small_sample, store, cfg)
    _steps(runner, 4)
    _reset(runner)
    assert len(rec.folders) == 2 and runner.iteration == 0
    _steps(runner, 2)
    runner.set_params(mode="descent")
    assert wait_for(lambda: len(rec.folders) == 3, 30)
    _steps(runner, 3)
    runner.stop()
    rec.close()
    first, second, third = rec.folders
    assert [iterations(f) for f in rec.folders] == [[1, 2, 3, 4], [1, 2], [1, 2, 3]]
    assert [run_info(f)["status"] for f in rec.folders] == ["finished"] * 3
    assert re.fullmatch(f"{STAMP}-ff-linear(-\\d)?", second.name)
    assert re.fullmatch(f"{STAMP}-descent-linear(-\\d)?", third.name)
    assert json.loads((third / "config.json").read_text())["config"]["mode"] == "descent"
    assert read_checkpoint(first).iteration == 4 and read_checkpoint(second).iteration == 2
    assert [p.name for p in store_runs(store)] == sorted(p.name for p in rec.folders)


def test_pauses_and_engine_errors_are_events(small_sample, store, monkeypatch):
    import math

    import torch

    from engine.runner import wait_for
    from engine.trainer import Trainer

    original = Trainer.train_math

    def overflow_at_6(self, x, n_pos):
        out = original(self, x, n_pos)
        return out._replace(loss=torch.full_like(out.loss, math.inf)) if self.iteration == 5 else out

    monkeypatch.setattr(Trainer, "train_math", overflow_at_6)
    cfg = Config(width=16, batch_size=8, epochs=0)
    rec, runner = _recording_runner(small_sample, store, cfg)
    runner.resume()
    assert wait_for(lambda: runner.state == "error", 60)
    runner.stop()
    rec.close()
    (run,) = rec.folders
    kinds = [(e["kind"], e["iteration"]) for e in events(run)]
    assert kinds[0] == ("resume", 0) and kinds[-1][0] == "error"
    (error,) = [e for e in events(run) if e["kind"] == "error"]
    assert error["cause"] == "overflow" and "the loss became inf at iteration 6" in error["message"]
    assert run_info(run)["status"] == "diverged"


def test_checkpoints_come_every_few_minutes(small_sample, store):
    from engine.store import read_checkpoint

    now = [0.0]
    cfg = Config(width=16, batch_size=8, epochs=0)
    rec, runner = _recording_runner(small_sample, store, cfg, checkpoint_every=300.0, clock=lambda: now[0])
    _steps(runner, 2)
    rec.writer.sync(10)
    assert read_checkpoint(rec.folder) is None
    now[0] = 301.0
    runner.resume()
    from engine.runner import wait_for

    assert wait_for(lambda: rec.writer.sync(10) and read_checkpoint(rec.folder) is not None, 30)
    assert read_checkpoint(rec.folder).iteration >= 3
    runner.stop()
    rec.close()


def filling_opener(path):
    from engine.store.writer import open_append

    return FillingFile(path) if path.name == "summary.jsonl.gz" else open_append(path)


def test_a_full_disk_stops_the_recording_and_the_training_goes_on(small_sample, store):
    from engine.runner import wait_for

    cfg = Config(width=16, batch_size=8, epochs=0)
    rec, runner = _recording_runner(small_sample, store, cfg, opener=filling_opener, flush_interval=0.01)
    _steps(runner, 2)
    assert rec.writer.sync(10)  # the first flush: two records
    runner.resume()
    assert wait_for(lambda: rec.error is not None, 30)
    at = runner.iteration
    assert wait_for(lambda: runner.iteration > at + 5, 30)  # training goes on
    assert rec.status_text() == "recording stopped: no space left on device (summary.jsonl.gz)"
    runner.stop()
    rec.close()
    (run,) = rec.folders
    assert iterations(run) == [1, 2]  # every complete record, nothing after them
    assert rec.summary() == f"recording stopped: no space left on device (summary.jsonl.gz); 2 records kept in {run}"


def test_the_help_names_the_default_policy():
    from engine.store import SamplePolicy
    from fftui.cli import SAMPLES_IN_FULL

    assert SamplePolicy.DEFAULT_FULL == SAMPLES_IN_FULL


def test_after_out_the_next_runs_go_beside_it(small_sample, tmp_path, store):
    from engine.headless import prepare_out_dir
    from engine.recording import Recording
    from engine.runner import Runner, wait_for

    out = tmp_path / "mine"
    cfg = Config(width=16, batch_size=8, epochs=0)
    rec = Recording(prepare_out_dir(out), small_sample, cfg, out=out)
    runner = Runner(cfg, small_sample, start_paused=True, recorder=rec).start()
    _steps(runner, 2)
    _reset(runner)
    _steps(runner, 1)
    runner.set_params(width=32)
    assert wait_for(lambda: len(rec.folders) == 3, 30)
    runner.stop()
    rec.close()
    assert rec.folders == [out, tmp_path / "mine-2", tmp_path / "mine-3"]
    assert [iterations(f) for f in rec.folders] == [[1, 2], [1], []]
    assert json.loads((rec.folders[2] / "config.json").read_text())["config"]["width"] == 32
    assert not store.exists()


def test_a_store_that_cannot_be_written_is_one_line_and_no_record_still_runs(tmp_path, monkeypatch, capsys):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("FFTUI_DATA_DIR", str(blocked))
    assert main(FAST + ["--iters", "1"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"fftui: cannot create a run folder in {blocked}/runs: Not a directory (--no-record runs without recording)"]
    assert main(FAST + ["--iters", "1", "--no-record"]) == 0
    assert blocked.read_text() == "not a folder"


def test_a_preset_chosen_in_the_app_names_the_next_run_and_no_empty_run_is_kept(small_sample, store):

    cfg = Config(width=16, batch_size=8, epochs=0)
    rec, runner = _recording_runner(small_sample, store, cfg)
    _steps(runner, 2)
    rec.next_preset = "fig3"         # what the app's preset action does: a change that resets, then a reset
    runner.set_params(width=24, mode="descent")
    _reset(runner)
    assert runner.config.width == 24
    _steps(runner, 1)
    _reset(runner)                   # two resets in a row: the run between them recorded nothing
    _reset(runner)
    _steps(runner, 1)
    runner.stop()
    rec.close()
    first, preset_run, last = rec.folders
    assert re.fullmatch(f"{STAMP}-fig3(-\\d)?", preset_run.name)
    assert json.loads((preset_run / "config.json").read_text())["preset"] == "fig3"
    assert re.fullmatch(f"{STAMP}-descent-linear(-\\d)?", last.name)
    assert [iterations(f) for f in rec.folders] == [[1, 2], [1], [1]]
    assert store_runs(store) == sorted(rec.folders)


def test_the_checkpoint_holds_the_layer_and_where_training_stands(store, tmp_path, sample):
    import torch

    from engine.store import read_checkpoint
    from engine.trainer import Trainer

    out = tmp_path / "ck"
    assert main(FAST + ["--iters", "3", "--optimizer", "adam", "--out", str(out), "--no-cuda-graphs"]) == 0
    ck = read_checkpoint(out)
    assert ck.iteration == 3 and ck.metadata["optimizer"] == "adam" and ck.metadata["epoch"] == "0"
    assert ck.optimizer["steps"].tolist() == [3]
    assert ck.optimizer["batch_position"].tolist() == [3 * 8]  # three batches of 8 images
    assert sorted(ck.optimizer["batch_order"].tolist()) == list(range(5000))  # a permutation of the sample
    trainer = Trainer(Config(width=24, batch_size=8, iters=3, optimizer="adam"), sample, graphs=False)
    for _ in range(3):
        trainer.step()
    assert torch.equal(ck.weights["w"], trainer.w.cpu())
    assert torch.equal(ck.optimizer["m"], trainer.optimizer._m.cpu())


def test_keep_samples_with_no_record_is_refused_and_a_run_folder_stands_for_its_config(capsys, tmp_path):
    from fftui.cli import main

    assert main(["run", "--headless", "--iters", "2", "--data", "sample", "--no-record",
                 "--keep-samples", "all"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "fftui run: --keep-samples and --no-record contradict each other; give one"]
    folder = tmp_path / "run"
    assert main(["run", "--headless", "--iters", "2", "--data", "sample", "--width", "40", "--out", str(folder)]) == 0
    capsys.readouterr()
    assert main(["run", "--headless", "--config", str(folder), "--iters", "1", "--out", str(tmp_path / "again")]) == 0
    import json

    again = json.loads((tmp_path / "again" / "config.json").read_text())["config"]
    assert again["width"] == 40 and again["iters"] == 1
