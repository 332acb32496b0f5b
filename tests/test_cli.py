"""The fftui command line: headless runs, files written, one-line errors with exit status 2."""
import json
import subprocess
import sys

import pytest
import torch

from fftui.cli import main
from run_files import iterations, run_info, summary_lines
from stop_signals import default_stop_signals

FAST = ["run", "--headless", "--data", "sample", "--width", "64", "--batch-size", "16", "--quiet"]


def test_headless_writes_config_and_one_record_per_batch(tmp_path, capsys):
    from engine.store import RunReader

    out = tmp_path / "run"
    rc = main(FAST + ["--iters", "7", "--mode", "descent", "--loss", "logistic", "--out", str(out)])
    assert rc == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["mode"] == "descent" and cfg["config"]["iters"] == 7
    assert cfg["dataset"]["source"] == "sample"
    recs = summary_lines(out)
    assert [r["iteration"] for r in recs] == list(range(1, 8))
    assert 0.0 <= recs[0]["groups"]["all"]["sparser"] <= 1.0
    samples = RunReader(out).samples
    assert samples.iterations("all").tolist() == list(range(1, 8))
    assert samples.column("lhs", "all").shape == (7, 16) and samples.column("actual", "all").shape == (7, 16)
    info = run_info(out)
    assert info["status"] == "finished" and info["iteration"] == 7 and info["records"] == 7
    assert (out / "checkpoint.safetensors").exists()
    assert f"recorded in {out} (7 batches)" in capsys.readouterr().out


def test_keep_samples_none_leaves_out_arrays(tmp_path):
    from engine.store import RunReader

    out = tmp_path / "s"
    assert main(FAST + ["--iters", "2", "--out", str(out), "--keep-samples", "none"]) == 0
    rec = summary_lines(out)[0]
    assert set(rec["groups"]) == {"pos", "neg"} and "sparser" in rec["groups"]["pos"]
    assert len(RunReader(out).samples) == 0 and run_info(out)["sample_records"] == 0


@pytest.mark.parametrize("value", ["some", "-1", "1.5", ""])
def test_a_bad_keep_samples_is_one_line_and_records_nothing(value, capsys):
    from run_files import store_runs

    before = store_runs()
    assert main(FAST + ["--iters", "2", "--keep-samples", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fftui run: --keep-samples takes all, none or a whole number")
    assert store_runs() == before


@pytest.mark.parametrize("name", ["metrics.jsonl", "run.json", "writer.lock"])
def test_existing_run_is_never_overwritten(tmp_path, capsys, name):
    out = tmp_path / "keep"
    out.mkdir()
    (out / name).write_text("precious\n")
    assert main(FAST + ["--iters", "2", "--out", str(out)]) == 2
    assert (out / name).read_text() == "precious\n"
    assert sorted(p.name for p in out.iterdir()) == [name]
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fftui: {out} already holds {name}; choose another --out folder"]


@pytest.mark.parametrize("args,needle", [
    (["--lr", "fast"], "lr must be a number"),
    (["--batch-size", "0"], "batch_size must be"),
    (["--mode", "sideways"], "invalid choice"),
    (["--momentum", "1"], "momentum must be in"),
    (["--no-such-flag"], "unrecognized arguments"),
    (["--iters", "-3"], "iters must be at least 1"),
    (["--epochs", "0"], "needs --iters or --epochs"),
    (["--epochs", "-1"], "epochs must be at least 1"),
])
def test_bad_flags_one_line_exit_2(args, needle, capsys):
    assert main(FAST + args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]
    assert "Traceback" not in captured.err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_gpu_is_a_clear_error(capsys):
    assert main(FAST + ["--device", "cuda", "--iters", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fftui: CUDA was requested but no CUDA device is available"]


def test_missing_data_dir_is_a_clear_error(tmp_path, capsys):
    assert main(["run", "--headless", "--data", "mnist", "--data-dir", str(tmp_path), "--iters", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path) in err[0]


def test_help_names_every_flag_via_module():
    res = subprocess.run([sys.executable, "-m", "fftui", "run", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0
    for flag in ["--headless", "--mode", "--loss", "--optimizer", "--lr", "--momentum", "--theta",
                 "--batch-size", "--width", "--epochs", "--iters", "--seed", "--device", "--data",
                 "--data-dir", "--out"]:
        assert flag in res.stdout


def test_a_run_that_overflows_stops_with_one_line_and_keeps_its_records(tmp_path, capsys, monkeypatch):
    import math

    from engine.trainer import Trainer

    original = Trainer.train_math

    def overflow_at_4(self, x, n_pos):
        out = original(self, x, n_pos)
        return out._replace(loss=torch.full_like(out.loss, math.inf)) if self.iteration == 3 else out

    monkeypatch.setattr(Trainer, "train_math", overflow_at_4)
    monkeypatch.setenv("FFTUI_LOG_DIR", str(tmp_path / "logs"))
    out = tmp_path / "over"
    assert main(FAST + ["--iters", "10", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    err = captured.err
    assert "Traceback" not in err
    # the run stops at the batch that overflowed, not a chunk later
    assert captured.out.startswith("4 of 10 iterations")
    log = tmp_path / "logs" / "fftui.log"
    assert err.strip().splitlines()[-1] == ("fftui: stopped: the loss became inf at iteration 4; "
                                            f"lower the learning rate (--lr) and run again (details: {log})")
    assert iterations(out) == [1, 2, 3]
    assert run_info(out)["status"] == "diverged"
    logged = log.read_text()
    assert "Traceback (most recent call last)" in logged and "engine.trainer.Overflow" in logged


def test_summary_names_outcomes_within_rounding():
    from fftui.headless.summary import format_summary

    group = {"sparser": 0.5, "theorem": 0.5, "general": 0.5, "agree_theorem": 0.9, "agree_general": 0.9,
             "sparsity": 0.4, "silenced": 0.0, "valid": 128.0, "unresolved": 32.0}
    summary = {"iterations": 3, "planned": 3, "seconds": 1.0, "batches_per_second": 3.0, "final_loss": 0.0,
               "interrupted": False, "groups": {"pos": group, "neg": dict(group, unresolved=0.0)}}
    text = format_summary(summary)
    assert "25.0 % of valid samples changed within rounding" in text
    assert text.count("within rounding") == 1


@pytest.mark.parametrize("name,status", [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_signal_stops_a_headless_run_between_batches_and_keeps_every_batch(tmp_path, name, status):
    import signal
    import time

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "fftui", "run", "--headless", "--data", "sample",
                             "--iters", "10000000", "--width", "20", "--batch-size", "4", "--quiet",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_stop_signals)
    metrics = out / "summary.jsonl.gz"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not metrics.exists() or metrics.stat().st_size < 5_000):
        time.sleep(0.05)
    proc.send_signal(getattr(signal, name))
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == status, stderr
    trained = int(stdout.split(" of ", 1)[0])
    assert stderr.strip().splitlines()[-1] == f"fftui: stopped by {name}; the {trained} batches trained are kept"
    assert trained > 0 and iterations(out) == list(range(1, trained + 1))
    info = run_info(out)
    assert info["status"] == "interrupted" and info["iteration"] == trained
    assert (out / "checkpoint.safetensors").exists()


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["run", "--lr", "abc"], ["run", "--nope"]])
def test_help_and_bad_flags_answer_without_importing_torch(argv):
    # torch takes seconds to import: the command line is parsed and answered before it is needed
    code = ("import sys\nfrom fftui.cli import main\ntry:\n    status = main(sys.argv[1:])\n"
            "except SystemExit as exc:\n    status = exc.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nsys.exit(status)")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == (0 if "--help" in argv else 2), done.stderr
    assert "torch was imported" not in done.stderr


@pytest.mark.parametrize("text,value", [("-1e3", -1000.0), ("-2.5", -2.5), ("-7", -7.0), ("-inf", None)])
def test_negative_values_are_taken_without_the_equals_form(text, value, capsys):
    from fftui.cli import config_from_args, parse

    if value is None:  # parsed as a value, then refused by the parameter's own check: one line
        assert main(["run", "--headless", "--theta", text]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "theta" in err[0] and "expected one argument" not in err[0]
        return
    assert config_from_args(parse(["run", "--theta", text])).theta == value


@pytest.mark.parametrize("flag", ["--iters", "--epochs", "--lr", "--data-dir", "--out"])
@pytest.mark.parametrize("value", ["", " "])
def test_a_flag_given_an_empty_value_is_refused(flag, value, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written, even by mistake
    assert main(["run", "--headless", "--data", "sample", "--width", "20", flag, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fftui run: {flag} needs a value, not {value!r}"]
    assert list(tmp_path.iterdir()) == []


def test_a_seed_beyond_the_generators_range_is_refused_and_the_largest_runs(capsys):
    assert main(["run", "--headless", "--data", "sample", "--seed", str(2**64)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fftui run: seed must be between 0 and {2**63 - 1}, not {2**64}"]
    assert main(FAST + ["--iters", "1", "--seed", str(2**63 - 1)]) == 0


def test_an_out_folder_with_anothers_config_json_is_refused_and_left_alone(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"not": "fftui"}')
    assert main(FAST + ["--iters", "2", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"fftui: {out} already holds config.json; choose another --out folder"
    assert (out / "config.json").read_text() == '{"not": "fftui"}'
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]


def test_an_out_folder_is_claimed_by_one_run_and_default_names_never_collide(tmp_path):
    from engine.headless import OutputError, claim_new_dir, prepare_out_dir

    prepare_out_dir(tmp_path / "a")
    with pytest.raises(OutputError, match="already holds writer.lock"):
        prepare_out_dir(tmp_path / "a")  # a second run given the same folder, even before it writes
    stem = str(tmp_path / "fig2-20261129-160000")
    first, second, third = claim_new_dir(stem), claim_new_dir(stem), claim_new_dir(stem)
    assert [p.name for p in (first, second, third)] == [
        "fig2-20261129-160000", "fig2-20261129-160000-2", "fig2-20261129-160000-3"]


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_that_cannot_be_written_is_one_line_and_status_1(flag):
    """argparse drops an OSError while printing help; a full device must not look like success."""
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "fftui", flag], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["fftui: cannot write to standard output: No space left on device"]
