"""Failures met with one clear line, the right exit status and nothing lost: values past the dtype's
range, data folders that hold no usable pair, IDX headers that claim too much, output that cannot
be written, configurations that cannot fit in memory, and runs stopped by a failure or a signal."""
from __future__ import annotations

import errno
import gzip
import math
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

import engine.headless
import engine.memory
from engine.config import DTYPE_MAX, PARAMS, Config, ConfigError
from engine.data import DataError, read_idx
from engine.params import find
from engine.runner import Runner
from fftui.cli import main
from run_files import FillingFile
from stop_signals import default_stop_signals

FAST = ["run", "--headless", "--data", "sample", "--width", "20", "--batch-size", "4", "--quiet"]
SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "mnist-sample"
IMAGES, LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
ENV = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]) + os.pathsep
           + os.environ.get("PYTHONPATH", ""))


def one_line(captured) -> str:
    """The single line on standard error (and no traceback)."""
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


# --- values past the dtype's range ----------------------------------------------------------------


def test_the_dtype_limits_are_torchs():
    assert {"float32": torch.finfo(torch.float32).max, "float64": torch.finfo(torch.float64).max} == DTYPE_MAX


def test_theta_past_float32_is_refused_with_a_remedy_that_works(capsys):
    assert main(FAST + ["--iters", "2", "--loss", "logistic", "--theta=1e300"]) == 2
    line = one_line(capsys.readouterr())
    assert "theta" in line and "float32" in line and "float64" in line
    assert torch.tensor(1e300, dtype=torch.float32).isinf()  # the value has no float32 form at all
    # the suggested remedy trains: float64 holds the loss's terms
    assert main(FAST + ["--iters", "2", "--loss", "logistic", "--theta=1e300", "--dtype", "float64"]) == 0


@pytest.mark.parametrize("mode", ["ff", "descent"])
def test_theta_is_accepted_exactly_while_the_batch_loss_stays_finite(mode, small_sample):
    from engine.trainer import Trainer

    base = Config(mode=mode, loss="logistic", width=16, batch_size=8, iters=3)
    samples = 16 if mode == "ff" else 8
    fine, over = 3.0e38 / samples, 3.5e38 / samples
    # independently: float32 adds up `samples` copies of theta to a finite sum, or to inf
    assert torch.isfinite(torch.full((samples,), fine, dtype=torch.float32).sum())
    assert torch.isinf(torch.full((samples,), over, dtype=torch.float32).sum())
    trainer = Trainer(base.replace(theta=fine), small_sample, graphs=False)
    assert math.isfinite(trainer.step().loss)
    with pytest.raises(ConfigError, match="theta .* overflows float32.*set dtype to float64"):
        base.replace(theta=over)
    base.replace(theta=over, dtype="float64")  # float64 holds it


def test_theta_no_dtype_holds_names_the_largest_value():
    with pytest.raises(ConfigError) as err:
        Config(loss="logistic", dtype="float64", theta=1e308)
    assert "set dtype" not in str(err.value) and "keep |theta| at most" in str(err.value)
    # the linear ff loss does not use theta: no limit
    Config(loss="linear", mode="ff", theta=1e300)


def _decay_only(lr_wd: float, momentum: float, steps: int = 200) -> float:
    """|w| after `steps` SGD steps on the decay term alone (w' = w - lr m, m = momentum m + wd w)."""
    w, m = 1.0, 0.0
    for _ in range(steps):
        m = momentum * m + lr_wd * w
        w -= m
    return abs(w)


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_sgd_weight_decay_that_makes_the_weights_grow_without_bound_is_refused(momentum):
    limit = 2 * (1 + momentum)
    lr = 0.01
    below, above = 0.97 * limit / lr, 1.03 * limit / lr
    assert _decay_only(lr * below, momentum) < 1.0 < _decay_only(lr * above, momentum)
    Config(lr=lr, momentum=momentum, weight_decay=below)
    with pytest.raises(ConfigError, match="grow without bound"):
        Config(lr=lr, momentum=momentum, weight_decay=above)


def test_weight_decay_1e30_on_the_command_line_is_one_line(capsys):
    assert main(FAST + ["--iters", "2", "--weight-decay", "1e30"]) == 2
    assert "weight_decay" in one_line(capsys.readouterr())


def test_adam_weight_decay_whose_square_overflows_float32_is_refused():
    w = torch.randn(2000, 784, generator=torch.Generator().manual_seed(0)) * math.sqrt(2 / 2000)
    assert torch.isinf((1e30 * w) ** 2).any()  # Adam's second moment of the decay term
    with pytest.raises(ConfigError, match="weight_decay 1e\\+30 overflows float32.*set dtype to float64"):
        Config(optimizer="adam", weight_decay=1e30)
    Config(optimizer="adam", weight_decay=1e30, dtype="float64")
    Config(optimizer="adam", weight_decay=1e10)  # an ordinary large decay


def test_the_editor_refuses_a_seed_past_the_generator_and_out_of_range_values(small_sample):
    seed = find(PARAMS, "seed")
    for typed in ("1e30", 1e30, str(2**64)):
        with pytest.raises(ConfigError, match="seed"):
            seed.parse(typed)
    runner = Runner(Config(width=16, batch_size=8), small_sample)  # not started: set_params validates
    before = runner.pending_config
    for change in ({"seed": "1e30"}, {"weight_decay": "1e30"}, {"loss": "logistic", "theta": "1e300"}):
        with pytest.raises(ConfigError):
            runner.set_params(**change)
        assert runner.pending_config is before and runner.commands.empty()


# --- data folders a user named --------------------------------------------------------------------


def _labels_only(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{LABELS}.gz").write_bytes((SAMPLE / f"{LABELS}.gz").read_bytes())
    return folder


def _folder_in_place(d: Path) -> str:
    (_labels_only(d) / IMAGES).mkdir()
    return "is a folder, not a file"


def _link_loop(d: Path) -> str:
    _labels_only(d)
    (d / "a").symlink_to(d / "b")
    (d / "b").symlink_to(d / "a")
    (d / IMAGES).symlink_to(d / "a")
    return "loop of symbolic links"


def _fifo(d: Path) -> str:
    os.mkfifo(_labels_only(d) / IMAGES)
    return "FIFO"


def _dev_zero(d: Path) -> str:
    (_labels_only(d) / f"{IMAGES}.gz").symlink_to("/dev/zero")
    return "character device"


def _images_only(d: Path) -> str:
    d.mkdir()
    (d / f"{IMAGES}.gz").write_bytes((SAMPLE / f"{IMAGES}.gz").read_bytes())
    return f"holds {IMAGES}.gz but not {LABELS}"


def _split(d: Path) -> str:
    _labels_only(d / "MNIST" / "raw")
    (d / f"{IMAGES}.gz").write_bytes((SAMPLE / f"{IMAGES}.gz").read_bytes())
    return "put both in one folder"


def _empty(d: Path) -> str:
    d.mkdir()
    return "no MNIST training files"


@pytest.mark.parametrize("make", [_folder_in_place, _link_loop, _fifo, _dev_zero, _images_only, _split, _empty])
def test_a_named_data_folder_without_a_usable_pair_is_an_error_never_the_sample(make, tmp_path, capsys):
    folder = tmp_path / "data"
    needle = make(folder)
    assert main(FAST + ["--iters", "1", "--data", "auto", "--data-dir", str(folder)]) == 2
    line = one_line(capsys.readouterr())
    assert needle in line and str(folder) in line and "sample" not in line


@pytest.mark.parametrize("kind", ["loop", "device", "missing"])
def test_a_data_dir_that_is_no_folder_is_one_line(kind, tmp_path, capsys):
    folder = tmp_path / "d"
    if kind == "loop":
        folder.symlink_to(folder)
    elif kind == "device":
        folder = Path("/dev/zero")
    assert main(FAST + ["--iters", "1", "--data", "auto", "--data-dir", str(folder)]) == 2
    line = one_line(capsys.readouterr())
    assert str(folder) in line
    assert {"loop": "loop", "device": "not a folder", "missing": "does not exist"}[kind] in line


def test_read_idx_refuses_a_fifo_without_opening_it(tmp_path):
    fifo = tmp_path / IMAGES
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="FIFO"):  # opening it would wait for a writer forever
        read_idx(fifo)


@pytest.fixture
def no_large_arrays(monkeypatch):
    """Fail the test if the reader asks numpy for an array over 100 MB."""
    real = np.empty

    def guarded(shape, *args, **kwargs):
        assert int(np.prod(shape)) < 100_000_000, f"an array of {shape} was allocated"
        return real(shape, *args, **kwargs)

    monkeypatch.setattr("engine.data.idx.np.empty", guarded)


def test_a_sparse_idx_file_claiming_a_huge_size_is_one_line(tmp_path, no_large_arrays, capsys):
    folder = _labels_only(tmp_path / "data")
    count = 20_000_000  # 15.7 GB of digits, on disk as a sparse file
    with open(folder / IMAGES, "wb") as fh:
        fh.write(struct.pack(">BBBBIII", 0, 0, 8, 3, count, 28, 28))
        fh.truncate(16 + count * 784)
    assert os.stat(folder / IMAGES).st_size == 16 + count * 784
    assert main(FAST + ["--iters", "1", "--data", "auto", "--data-dir", str(folder)]) == 2
    assert "claims 15,680,000,000 bytes" in one_line(capsys.readouterr())


def _gzip_of(header: bytes, zeros: int) -> bytes:
    """A gzip stream of header and `zeros` zero bytes, made without holding them in memory."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(header)]
    block = bytes(1 << 20)
    while zeros > 0:
        parts.append(packer.compress(block[:min(zeros, len(block))]))
        zeros -= len(block)
    parts.append(packer.flush())
    return b"".join(parts)


class _CountingGzip(gzip.GzipFile):
    inflated = 0

    def read(self, size=-1):
        data = super().read(size)
        _CountingGzip.inflated += len(data)
        return data

    def readinto(self, buffer):
        n = super().readinto(buffer)
        _CountingGzip.inflated += n
        return n


def test_a_gzip_bomb_is_refused_before_it_is_inflated(tmp_path, monkeypatch, no_large_arrays):
    count = 400_000  # 314 MB of zero digits in a gzip file a thousandth of that
    bomb = tmp_path / f"{IMAGES}.gz"
    bomb.write_bytes(_gzip_of(struct.pack(">BBBBIII", 0, 0, 8, 3, count, 28, 28), count * 784))
    assert bomb.stat().st_size < count * 784 / 500
    monkeypatch.setattr("engine.data.idx.gzip.GzipFile", _CountingGzip)
    _CountingGzip.inflated = 0
    with pytest.raises(DataError, match="gzip bomb"):
        read_idx(bomb)
    assert _CountingGzip.inflated < 1000


def test_a_gzip_tail_past_the_data_is_not_inflated_whole(tmp_path, monkeypatch):
    images = np.arange(10 * 784, dtype=np.uint8).reshape(10, 28, 28)
    header = struct.pack(">BBBBIII", 0, 0, 8, 3, 10, 28, 28)
    path = tmp_path / f"{IMAGES}.gz"
    path.write_bytes(_gzip_of(header + images.tobytes(), 200 << 20))  # 200 MB of zeros after the digits
    monkeypatch.setattr("engine.data.idx.gzip.GzipFile", _CountingGzip)
    _CountingGzip.inflated = 0
    with pytest.raises(DataError, match=f"expected {16 + 7840} bytes, found more than"):
        read_idx(path)
    assert _CountingGzip.inflated < 4 << 20


def test_an_idx_file_larger_than_the_memory_available_is_refused(monkeypatch, no_large_arrays):
    monkeypatch.setattr(engine.memory, "available_memory", lambda device: 1_000_000)
    with pytest.raises(DataError, match="3,920,000 bytes of data need more than the 1 MB of memory available"):
        read_idx(SAMPLE / f"{IMAGES}.gz")  # 5,000 digits


# --- output that cannot be written ----------------------------------------------------------------


def _fill_summary(monkeypatch) -> None:
    import engine.store.writer

    real = engine.store.writer.open_append
    monkeypatch.setattr(engine.store.writer, "open_append",
                        lambda path: FillingFile(path) if path.name == "summary.jsonl.gz" else real(path))


def test_a_disk_that_fills_during_the_run_keeps_every_complete_record(tmp_path, monkeypatch, capsys):
    from run_files import iterations, run_info

    out = tmp_path / "run"
    _fill_summary(monkeypatch)  # full in the middle of the second flush of the summary
    assert main(FAST + ["--iters", "1000000", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    recorded = iterations(out)  # the file decompresses to whole lines, nothing after them
    assert recorded == list(range(1, len(recorded) + 1))
    assert 0 < len(recorded) < 1_000_000
    assert err.strip().splitlines()[-1] == (
        f"fftui: recording stopped: no space left on device (summary.jsonl.gz); "
        f"the {len(recorded):,} records written before it are kept in {out}")
    info = run_info(out)
    assert info["status"] == "failed" and info["records"] == len(recorded)
    assert info["recording_error"] == "no space left on device (summary.jsonl.gz)"


def test_a_records_file_on_a_full_device_says_none_were_kept(tmp_path, sample):
    from engine.store import RunWriter

    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.jsonl.gz").symlink_to("/dev/full")  # every write: ENOSPC
    writer = RunWriter(out, {"config": {}}).start()
    summary = engine.headless.run_headless(Config(width=16, batch_size=4, iters=5), sample, writer)
    assert summary["error"] == ("recording stopped: no space left on device (summary.jsonl.gz); "
                                f"the 0 records written before it are kept in {out}")
    assert summary["status"] == "failed"


@pytest.mark.parametrize("code,words", [(errno.EROFS, "Read-only file system"), (errno.EACCES, "Permission denied"),
                                        (errno.ENOSPC, "No space left on device")])
def test_an_out_folder_that_cannot_be_written_is_one_line(code, words, tmp_path, monkeypatch, capsys):
    out = tmp_path / "existing"
    out.mkdir()  # an existing folder; the file system refuses new files in it
    real_open = os.open

    def refuse(path, flags, *args, **kwargs):
        if Path(path).parent == out and flags & os.O_EXCL:
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(engine.headless.os, "open", refuse)
    assert main(FAST + ["--iters", "2", "--out", str(out)]) == 2
    assert one_line(capsys.readouterr()) == f"fftui: cannot write in --out folder {out}: {words}"
    assert list(out.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="permissions do not bind root")
def test_a_read_only_out_folder_is_one_line(tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        assert main(FAST + ["--iters", "2", "--out", str(out / "run")]) == 2
        assert "Permission denied" in one_line(capsys.readouterr())
    finally:
        out.chmod(0o700)


def test_config_json_that_cannot_be_written_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    import engine.store.files

    out = tmp_path / "run"
    real = os.write

    def full(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(f".config.json.{os.getpid()}.tmp"):
            real(fd, bytes(data)[:1])  # a part reached the disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(engine.store.files.os, "write", full)
    assert main(FAST + ["--iters", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"fftui: cannot record into {out}: No space left on device"
    assert list(out.iterdir()) == []  # nothing of the run is left, its claim neither


def _fftui(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fftui", *args], env=ENV, timeout=240, **kwargs)


def test_standard_output_on_a_full_device_is_one_line_and_status_1(tmp_path):
    out = tmp_path / "run"
    with open("/dev/full", "w") as full:
        done = _fftui(*FAST, "--iters", "5", "--out", str(out), stdout=full, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == "fftui: cannot write to standard output: No space left on device"
    from run_files import iterations

    assert iterations(out) == [1, 2, 3, 4, 5]  # the run's files are whole


@pytest.mark.parametrize("closed", [1, 2])
def test_a_closed_standard_stream_does_not_stop_the_run(closed, tmp_path):
    out = tmp_path / "run"
    done = _fftui(*FAST, "--iters", "300", "--out", str(out), preexec_fn=lambda: os.close(closed),
                  stdout=subprocess.PIPE if closed != 1 else None, stderr=subprocess.PIPE if closed != 2 else None)
    assert done.returncode == 0
    from run_files import iterations

    assert iterations(out) == list(range(1, 301))


def test_standard_error_on_a_full_device_does_not_stop_the_run(tmp_path):
    out = tmp_path / "run"
    progress = [a for a in FAST if a != "--quiet"]  # the progress lines go to standard error too
    with open("/dev/full", "w") as full:
        done = _fftui(*progress, "--iters", "300", "--out", str(out), stdout=subprocess.PIPE, stderr=full, text=True)
    assert done.returncode == 0
    assert done.stdout.startswith("300 of 300 iterations")
    from run_files import iterations

    assert len(iterations(out)) == 300


# --- memory ---------------------------------------------------------------------------------------


def test_a_configuration_larger_than_memory_is_refused_before_allocating(monkeypatch, capsys):
    monkeypatch.setattr(engine.memory, "available_memory", lambda device: 2_000_000_000)

    def never(*args, **kwargs):
        raise AssertionError("the layer was built")

    monkeypatch.setattr("engine.headless.Trainer", never)
    assert main(["run", "--headless", "--data", "sample", "--batch-size", "65536", "--width", "1000000",
                 "--iters", "1", "--quiet"]) == 2
    line = one_line(capsys.readouterr())
    # 10,000 samples (both sides of the 5,000 digits) x 1,000,000 units x 4 bytes = 40 GB for one activation
    assert line.startswith("fftui: batch_size 65536 and width 1000000 need about")
    assert "more than the 2 GB available" in line and "10,000 x 1,000,000" in line


def test_the_estimate_bounds_the_measured_peak(tmp_path):
    # A child process trains a configuration whose tensors dwarf everything else. Every large block
    # is mapped on its own (MALLOC_MMAP_THRESHOLD_), so resident memory follows the live tensors;
    # the peak (VmHWM, reset just before through clear_refs) above the resident memory before the
    # layer is built must lie under the estimate, and not far under it.
    code = textwrap.dedent("""
        import sys, torch
        torch.set_num_threads(1)
        from engine.config import Config
        from engine.data import load_dataset
        from engine.memory import estimate_memory
        from engine.trainer import Trainer
        def status(key):
            for line in open("/proc/self/status"):
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        ds = load_dataset("sample", device="cpu")
        cfg = Config(batch_size=1500, width=2500, optimizer="adam", loss="logistic")
        base = status("VmRSS:")
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        t = Trainer(cfg, ds, graphs=False)
        t.advance()
        t.flush()
        print(status("VmHWM:") - base, estimate_memory(cfg, ds.size).total)
    """)
    env = dict(ENV, MALLOC_MMAP_THRESHOLD_="131072")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240)
    if "clear_refs" in done.stderr:
        pytest.skip("the peak resident memory cannot be reset here")
    assert done.returncode == 0, done.stderr
    measured, estimate = map(int, done.stdout.split())
    assert measured > 150_000_000  # the configuration's tensors, not noise
    assert measured <= estimate <= 2 * measured


def test_the_editor_refuses_a_change_that_cannot_fit(monkeypatch, small_sample):
    runner = Runner(Config(width=16, batch_size=8), small_sample)
    monkeypatch.setattr(engine.memory, "available_memory", lambda device: 50_000_000)
    before = runner.pending_config
    with pytest.raises(ConfigError, match="need about .* more than the"):
        runner.set_params(batch_size=512, width=20000)
    assert runner.pending_config is before and runner.commands.empty()
    runner.set_params(width=32)  # what fits is taken


def test_available_memory_reads_the_device():
    room = engine.memory.available_memory("cpu")
    assert room is not None and 0 < room <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        assert 0 < engine.memory.available_memory(torch.device("cuda")) <= total


# --- runs stopped by a failure or a signal --------------------------------------------------------


def test_a_preset_that_diverges_exits_1_with_one_line(tmp_path):
    out = tmp_path / "fig3"
    done = _fftui("run", "--headless", "--preset", "fig3", "--lr", "10", "--data", "sample", "--quiet",
                  "--out", str(out), capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("fftui: stopped: the loss became") and "at iteration" in last
    from run_files import iterations, run_info

    recorded = len(iterations(out))
    assert run_info(out)["status"] == "diverged"
    assert f"Stopped by a failure after {recorded} of 2345 iterations" in done.stdout


def _wait_for_records(path: Path, size: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and (not path.exists() or path.stat().st_size < size):
        time.sleep(0.05)


def test_a_preset_stopped_by_ctrl_c_exits_130_and_says_how_far_it_got(tmp_path):
    out = tmp_path / "fig2"
    proc = subprocess.Popen([sys.executable, "-m", "fftui", "run", "--headless", "--preset", "fig2", "--data",
                             "sample", "--quiet", "--out", str(out)], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_stop_signals)
    _wait_for_records(out / "summary.jsonl.gz", 3_000, proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    from run_files import iterations, run_info

    recorded = len(iterations(out))
    assert run_info(out)["status"] == "interrupted"
    assert 0 < recorded < 938
    assert f"Stopped by SIGINT after {recorded} of 938 iterations" in stdout
    assert f"{recorded} iterations of descent training" in stdout
    assert stderr.strip().splitlines()[-1] == f"fftui: stopped by SIGINT; the {recorded} batches trained are kept"


# The data loads slowly here (a stand-in that says when it started), so that the signal lands in it.
SLOW_LOAD = textwrap.dedent("""
    import sys, time
    import fftui.cli
    def slow(cfg, quiet):
        print("loading", file=sys.stderr, flush=True)
        time.sleep(60)
    fftui.cli._load = slow
    sys.exit(fftui.cli.main(sys.argv[1:]))
""")


@pytest.mark.parametrize("name,status", [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_signal_while_the_data_loads_is_one_line(name, status, tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", SLOW_LOAD, *FAST, "--iters", "5", "--out", str(tmp_path / "r")],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_stop_signals)
    assert proc.stderr is not None
    assert proc.stderr.readline().strip() == "loading"
    proc.send_signal(getattr(signal, name))
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == status
    assert stderr.strip().splitlines() == [f"fftui: stopped by {name} while loading the data"]

