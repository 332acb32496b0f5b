"""Tests for engine.data: the IDX reader, the folder and cache lookups, the download (from local
stand-in mirrors), the fallback to the shipped sample, and device resolution. None of them needs
the network."""
from __future__ import annotations

import errno
import gzip
import hashlib
import http.client
import http.server
import os
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import data
from engine.data import DataError, find_idx_pair, load_dataset, read_idx, resolve_device

IMAGES = "train-images-idx3-ubyte"
LABELS = "train-labels-idx1-ubyte"


@pytest.fixture(autouse=True)
def empty_cache(tmp_path_factory, monkeypatch) -> Path:
    cache_root = tmp_path_factory.mktemp("cache-root")
    monkeypatch.setenv("FFTUI_CACHE_DIR", str(cache_root))
    return cache_root


def idx_bytes(array: np.ndarray, type_byte: int = 0x08) -> bytes:
    header = struct.pack(">BBBB", 0, 0, type_byte, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write(path: Path, payload: bytes, compress: bool | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress is None:
        compress = path.name.endswith(".gz")
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def digits(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = (np.arange(count) % 10).astype(np.uint8)
    return images, labels


def write_pair(folder: Path, count: int = 30, gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    images, labels = digits(count)
    suffix = ".gz" if gz else ""
    write(folder / f"{IMAGES}{suffix}", idx_bytes(images))
    write(folder / f"{LABELS}{suffix}", idx_bytes(labels))
    return images, labels


def assert_one_line(message: str) -> None:
    assert message.strip()
    assert "\n" not in message and "\r" not in message


# --- the shipped sample -----------------------------------------------------------------------


def test_sample_loads_5000_balanced_digits():
    ds = load_dataset("sample")
    assert ds.source == "sample"
    assert ds.size == 5000
    assert ds.images.shape == (5000, 784)
    assert ds.images.dtype == torch.uint8
    assert ds.labels.shape == (5000,)
    assert ds.labels.dtype == torch.int64
    assert ds.images.device.type == "cpu" and ds.labels.device.type == "cpu"
    assert torch.equal(torch.bincount(ds.labels, minlength=10), torch.full((10,), 500))
    assert int(ds.labels.min()) == 0 and int(ds.labels.max()) == 9
    assert int(ds.images.max()) == 255
    assert "sample" in ds.description
    assert ds.note is None


def test_sample_ignores_data_dir(tmp_path):
    write_pair(tmp_path, count=30)
    ds = load_dataset("sample", data_dir=str(tmp_path))
    assert ds.source == "sample" and ds.size == 5000


def test_sample_dir_holds_the_files():
    folder = data.sample_dir()
    assert (folder / f"{IMAGES}.gz").is_file()
    assert (folder / f"{LABELS}.gz").is_file()


def test_missing_sample_is_a_data_error(tmp_path, monkeypatch):
    monkeypatch.setattr(data.loading, "__file__", str(tmp_path / "engine" / "data" / "loading.py"))
    with pytest.raises(DataError, match="sample is missing"):
        data.sample_dir()


# --- read_idx -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [IMAGES, f"{IMAGES}.gz"])
def test_read_idx_round_trip(tmp_path, name):
    images, _ = digits(7, seed=3)
    path = write(tmp_path / name, idx_bytes(images))
    got = read_idx(path)
    assert got.dtype == np.uint8
    assert got.shape == (7, 28, 28)
    assert np.array_equal(got, images)


def test_read_idx_detects_gzip_by_magic(tmp_path):
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    path = write(tmp_path / LABELS, idx_bytes(labels), compress=True)
    assert np.array_equal(read_idx(path), labels)


def test_read_idx_accepts_str_path(tmp_path):
    labels = np.array([9, 0], dtype=np.uint8)
    path = write(tmp_path / LABELS, idx_bytes(labels))
    assert np.array_equal(read_idx(str(path)), labels)


@pytest.mark.parametrize("name", [IMAGES, f"{IMAGES}.gz"])
def test_truncated_file_names_the_file(tmp_path, name):
    images, _ = digits(5)
    payload = idx_bytes(images)
    path = write(tmp_path / name, payload[:1000])
    with pytest.raises(DataError) as err:
        read_idx(path)
    message = str(err.value)
    assert_one_line(message)
    assert str(path) in message
    assert f"expected {len(payload)} bytes, found 1000" in message


@pytest.mark.parametrize("name", [IMAGES, f"{IMAGES}.gz"])
def test_trailing_bytes_name_the_file(tmp_path, name):
    images, _ = digits(2)
    payload = idx_bytes(images)
    path = write(tmp_path / name, payload + b"\x00" * 5)
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert str(path) in str(err.value)
    assert f"expected {len(payload)} bytes, found {len(payload) + 5}" in str(err.value)


def test_cut_gzip_stream_names_the_file(tmp_path):
    images, _ = digits(20)
    packed = gzip.compress(idx_bytes(images))
    path = tmp_path / f"{IMAGES}.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert_one_line(str(err.value))
    assert str(path) in str(err.value)


def test_garbage_gzip_names_the_file(tmp_path):
    path = tmp_path / f"{IMAGES}.gz"
    path.write_bytes(b"this is not gzip at all, just some text" * 10)
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert_one_line(str(err.value))
    assert str(path) in str(err.value)


def test_wrong_magic(tmp_path):
    path = tmp_path / IMAGES
    path.write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 2) + b"\x00\x01")
    with pytest.raises(DataError, match="magic") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_wrong_type_byte(tmp_path):
    path = tmp_path / IMAGES
    path.write_bytes(b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00\x00\x00\x00")
    with pytest.raises(DataError, match="0x0d") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_zero_dimensions(tmp_path):
    path = tmp_path / IMAGES
    path.write_bytes(b"\x00\x00\x08\x00")
    with pytest.raises(DataError, match="dimensions"):
        read_idx(path)


def test_missing_file(tmp_path):
    path = tmp_path / IMAGES
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert str(path) in str(err.value)


# --- find_idx_pair ----------------------------------------------------------------------------


def test_find_idx_pair_layouts(tmp_path):
    assert find_idx_pair(tmp_path) is None
    assert find_idx_pair(tmp_path / "does-not-exist") is None
    raw = tmp_path / "MNIST" / "raw"
    write_pair(raw, count=3)
    assert find_idx_pair(tmp_path) == (raw / f"{IMAGES}.gz", raw / f"{LABELS}.gz")
    other = tmp_path / "other"
    write_pair(other / "raw", count=3, gz=False)
    assert find_idx_pair(other) == (other / "raw" / IMAGES, other / "raw" / LABELS)


def test_find_idx_pair_prefers_uncompressed(tmp_path):
    write_pair(tmp_path, count=3, gz=True)
    write_pair(tmp_path, count=3, gz=False)
    assert find_idx_pair(str(tmp_path)) == (tmp_path / IMAGES, tmp_path / LABELS)


def test_find_idx_pair_needs_both_files(tmp_path):
    images, _ = digits(3)
    write(tmp_path / f"{IMAGES}.gz", idx_bytes(images))
    assert find_idx_pair(tmp_path) is None


# --- data_dir ---------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["mnist", "auto"])
def test_data_dir_with_valid_pair(tmp_path, source):
    folder = tmp_path / "mine"
    images, labels = write_pair(folder, count=30)
    ds = load_dataset(source, data_dir=str(folder), download=False)
    assert ds.source == "mnist"
    assert ds.size == 30
    assert ds.note is None
    assert ds.images.shape == (30, 784) and ds.images.dtype == torch.uint8
    assert ds.labels.dtype == torch.int64
    assert np.array_equal(ds.images.numpy(), images.reshape(30, 784))
    assert np.array_equal(ds.labels.numpy(), labels.astype(np.int64))
    assert "30 digits" in ds.description and str(folder) in ds.description


def test_empty_data_dir_is_an_error(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("mnist", data_dir=str(tmp_path))
    message = str(err.value)
    assert_one_line(message)
    assert f"no MNIST training files in {tmp_path}" in message
    assert list(tmp_path.iterdir()) == []


def test_empty_data_dir_in_auto_is_an_error_not_the_sample(tmp_path):
    # a folder the user named is never silently replaced by the shipped sample
    with pytest.raises(DataError) as err:
        load_dataset("auto", data_dir=str(tmp_path))
    assert_one_line(str(err.value))
    assert f"no MNIST training files in {tmp_path}" in str(err.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source", ["auto", "mnist"])
def test_truncated_file_in_data_dir_is_not_replaced_by_sample(tmp_path, source):
    images, _ = write_pair(tmp_path, count=30)
    bad = tmp_path / f"{IMAGES}.gz"
    bad.write_bytes(gzip.compress(idx_bytes(images)[:500]))
    with pytest.raises(DataError) as err:
        load_dataset(source, data_dir=str(tmp_path))
    assert str(bad) in str(err.value)


def test_labels_out_of_range_name_the_labels_file(tmp_path):
    images, labels = digits(10)
    labels[4] = 10
    write(tmp_path / IMAGES, idx_bytes(images))
    write(tmp_path / LABELS, idx_bytes(labels))
    with pytest.raises(DataError) as err:
        load_dataset("auto", data_dir=str(tmp_path))
    assert str(tmp_path / LABELS) in str(err.value)


def test_count_mismatch(tmp_path):
    images, labels = digits(10)
    write(tmp_path / IMAGES, idx_bytes(images))
    write(tmp_path / LABELS, idx_bytes(labels[:9]))
    with pytest.raises(DataError, match="9 labels"):
        load_dataset("mnist", data_dir=str(tmp_path))


def test_wrong_image_shape(tmp_path):
    write(tmp_path / IMAGES, idx_bytes(np.zeros((4, 28, 27), dtype=np.uint8)))
    write(tmp_path / LABELS, idx_bytes(np.zeros(4, dtype=np.uint8)))
    with pytest.raises(DataError, match="shape"):
        load_dataset("mnist", data_dir=str(tmp_path))


# --- cache and download -----------------------------------------------------------------------


def test_cache_dir_honours_env(empty_cache):
    assert data.cache_dir() == empty_cache / "mnist"
    assert data.cache_dir().is_absolute()


def test_cache_dir_default_is_per_user(monkeypatch):
    monkeypatch.delenv("FFTUI_CACHE_DIR", raising=False)
    path = data.cache_dir()
    assert path.is_absolute()
    assert path.name == "mnist" and "fftui" in path.parts
    assert path != Path.cwd() / "mnist"


def test_cached_mnist_is_used(empty_cache):
    write_pair(data.cache_dir() / "MNIST" / "raw", count=20, gz=False)
    ds = load_dataset("auto", download=False)
    assert ds.source == "mnist" and ds.size == 20 and ds.note is None


def test_auto_without_cache_or_download_uses_sample(empty_cache):
    ds = load_dataset("auto", download=False)
    assert ds.source == "sample" and ds.size == 5000
    assert ds.note
    assert_one_line(ds.note)
    assert str(data.cache_dir()) in ds.note


def test_mnist_without_cache_or_download_is_an_error():
    with pytest.raises(DataError, match="MNIST is not in"):
        load_dataset("mnist", download=False)


def test_corrupt_cache_in_auto_falls_back_naming_the_file(empty_cache):
    raw = data.cache_dir() / "MNIST" / "raw"
    write_pair(raw, count=20, gz=False)
    (raw / LABELS).write_bytes(idx_bytes(np.zeros(20, dtype=np.uint8))[:15])
    ds = load_dataset("auto", download=False)
    assert ds.source == "sample"
    assert ds.note and str(raw / LABELS) in ds.note
    assert_one_line(ds.note)
    with pytest.raises(DataError, match="corrupt"):
        load_dataset("mnist", download=False)


class _Mirror:
    """A local HTTP server standing in for one MNIST mirror.

    ``routes`` maps a file name to the bytes to serve, an HTTP status to answer with, or
    ``"stall"`` (accept the request and never answer). Each request records what the process
    looked like while it was served: ``sys.stdout`` and the socket module's default timeout.
    """

    def __init__(self, routes: dict) -> None:
        self.routes = dict(routes)
        self.release = threading.Event()
        self.seen: list[tuple[str, object, float | None]] = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                mirror.seen.append((name, sys.stdout, socket.getdefaulttimeout()))
                answer = mirror.routes.get(name, 404)
                if answer == "stall":
                    mirror.release.wait(30)
                    return
                if isinstance(answer, int):
                    self.send_error(answer)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mnist/"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirrors(monkeypatch):
    """Start local mirrors: ``mirrors(routes, ...)`` points the download at them, in order."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    started: list[_Mirror] = []

    def start(*routes: dict) -> list[_Mirror]:
        servers = [_Mirror(r) for r in routes]
        started.extend(servers)
        monkeypatch.setattr(data.download, "MIRRORS", tuple(m.url for m in servers))
        return servers

    yield start
    for server in started:
        server.close()


def served_pair(monkeypatch, count: int = 30) -> tuple[np.ndarray, np.ndarray, dict]:
    """Gzipped IDX files of ``count`` digits, with the download told to expect their MD5 sums."""
    images, labels = digits(count, seed=5)
    files = {f"{IMAGES}.gz": gzip.compress(idx_bytes(images)), f"{LABELS}.gz": gzip.compress(idx_bytes(labels))}
    monkeypatch.setattr(data.download, "FILES", tuple((n, hashlib.md5(b).hexdigest()) for n, b in files.items()))
    return images, labels, files


def forbid_global_state(monkeypatch) -> None:
    def refuse(*args):
        raise AssertionError("the download must not set a process-wide socket timeout")

    monkeypatch.setattr(socket, "setdefaulttimeout", refuse)


def test_download_fetches_checks_and_loads(monkeypatch, mirrors, capfd):
    images, labels, files = served_pair(monkeypatch)
    forbid_global_state(monkeypatch)
    (server,) = mirrors(files)
    stdout = sys.stdout
    ds = load_dataset("mnist", timeout=5)
    assert ds.source == "mnist" and ds.size == 30 and ds.note is None
    assert np.array_equal(ds.images.numpy(), images.reshape(30, 784))
    assert np.array_equal(ds.labels.numpy(), labels.astype(np.int64))
    raw = data.cache_dir() / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(files)
    for name, payload in files.items():
        assert (raw / name).read_bytes() == payload
    assert [name for name, _, _ in server.seen] == list(files)
    assert all(out is stdout and timeout is None for _, out, timeout in server.seen)
    assert capfd.readouterr() == ("", "")
    # the second time the cache answers: no request
    assert load_dataset("mnist", download=False).size == 30
    assert len(server.seen) == 2


def test_download_falls_through_to_the_next_mirror(monkeypatch, mirrors):
    _, _, files = served_pair(monkeypatch, count=12)
    broken, good = mirrors({}, files)
    ds = load_dataset("mnist", timeout=5)
    assert ds.source == "mnist" and ds.size == 12
    assert [name for name, _, _ in broken.seen] == list(files)
    assert [name for name, _, _ in good.seen] == list(files)


def test_failed_download_cleans_up_and_is_one_line(monkeypatch, mirrors, capfd):
    _, _, files = served_pair(monkeypatch)
    forbid_global_state(monkeypatch)
    images_only = {f"{IMAGES}.gz": files[f"{IMAGES}.gz"]}
    first, _ = mirrors(images_only, {f"{LABELS}.gz": "stall"})
    start = time.monotonic()
    with pytest.raises(DataError) as err:
        load_dataset("mnist", timeout=0.5)
    elapsed = time.monotonic() - start
    message = str(err.value)
    assert_one_line(message)
    assert message == (f"MNIST is not in {data.cache_dir()} and could not be downloaded "
                       "(HTTP 404 Not Found; timed out)")
    assert elapsed < 5, f"giving up took {elapsed:.1f} s"
    assert [name for name, _, _ in first.seen] == [f"{IMAGES}.gz", f"{LABELS}.gz"]
    assert socket.getdefaulttimeout() is None
    # the images file had arrived whole; it goes too, with the folders the attempt made
    assert not data.cache_dir().exists()
    assert capfd.readouterr() == ("", "")

    ds = load_dataset("auto", timeout=0.5)
    assert ds.source == "sample"
    assert ds.note and "could not be downloaded" in ds.note
    assert_one_line(ds.note)


def test_a_file_with_the_wrong_checksum_is_not_kept(monkeypatch, mirrors):
    _, _, files = served_pair(monkeypatch)
    damaged = dict(files)
    good = files[f"{LABELS}.gz"]
    damaged[f"{LABELS}.gz"] = good[:20] + bytes([good[20] ^ 0xFF]) + good[21:]
    mirrors(damaged)
    with pytest.raises(DataError, match=r"could not be downloaded \(checksum mismatch\)$"):
        load_dataset("mnist", timeout=5)
    assert not data.cache_dir().exists()


def test_failed_download_keeps_files_that_were_there(monkeypatch, mirrors):
    _, _, files = served_pair(monkeypatch)
    mirrors({f"{IMAGES}.gz": files[f"{IMAGES}.gz"]})
    keep = data.cache_dir() / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    write(keep, b"kept")
    with pytest.raises(DataError, match="HTTP 404"):
        load_dataset("mnist", timeout=5)
    assert keep.read_bytes() == b"kept"
    assert sorted(p.name for p in keep.parent.iterdir()) == [keep.name]


def test_a_cache_that_cannot_be_written_is_one_line(monkeypatch, mirrors, empty_cache):
    _, _, files = served_pair(monkeypatch)
    mirrors(files)
    (empty_cache / "mnist").write_text("a file where the cache folder should be")
    with pytest.raises(DataError) as err:
        load_dataset("mnist", timeout=5)
    assert_one_line(str(err.value))
    assert f"cannot write {empty_cache / 'mnist'}" in str(err.value)


def test_failure_reason_reads_the_exception_not_its_text():
    reason = data.failure_reason
    # the class decides, whatever the text says
    assert reason(TimeoutError("no words about it")) == "timed out"
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "timed out")
    assert reason(refused) == os.strerror(errno.ECONNREFUSED)
    assert reason(urllib.error.URLError(TimeoutError())) == "timed out"
    lookup = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert reason(urllib.error.URLError(lookup)) == "name lookup failed: Name or service not known"
    not_found = urllib.error.HTTPError("http://x/f.gz", 404, "Not Found", None, None)
    assert reason(not_found) == "HTTP 404 Not Found"
    assert reason(http.client.IncompleteRead(b"abc", 10)) == "broken HTTP response (IncompleteRead)"
    # a message that merely looks like a timeout is not taken for one
    assert reason(RuntimeError("Tried https://a/, got:\n<urlopen error timed out>")) != "timed out"
    assert "\n" not in reason(RuntimeError("two\nlines"))


def test_mirrors_and_checksums_are_mnists():
    """The files and sums are the published ones (as torchvision, an independent source, lists them)."""
    mnist = pytest.importorskip("torchvision.datasets").MNIST
    assert tuple(data.MIRRORS) == tuple(mnist.mirrors)
    published = dict(mnist.resources)
    assert {name: published[name] for name, _ in data.FILES} == dict(data.FILES)
    assert [name for name, _ in data.FILES] == [f"{IMAGES}.gz", f"{LABELS}.gz"]


def test_silent_name_server_gives_up_within_timeout(monkeypatch):
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    release = threading.Event()

    def hanging_lookup(*args, **kwargs):
        release.wait(30)
        raise socket.gaierror("released")

    def never_called(*args, **kwargs):
        raise AssertionError("the download should not start when names do not resolve")

    monkeypatch.setattr(data.download, "MIRRORS", ("https://mirror-one.invalid/mnist/", "http://mirror-two.invalid/"))
    monkeypatch.setattr(socket, "getaddrinfo", hanging_lookup)
    monkeypatch.setattr(urllib.request, "urlopen", never_called)
    start = time.monotonic()
    try:
        ds = load_dataset("auto", timeout=0.5)
    finally:
        release.set()
    elapsed = time.monotonic() - start
    assert elapsed < 3, f"giving up took {elapsed:.1f} s"
    assert ds.source == "sample"
    assert ds.note and "name server" in ds.note
    assert_one_line(ds.note)
    assert not data.cache_dir().exists()


def _network_reachable() -> bool:
    try:
        with socket.create_connection(("ossci-datasets.s3.amazonaws.com", 443), timeout=2):
            return True
    except OSError:
        return False


def test_offline_download_gives_up_quickly():
    pytest.importorskip("torchvision")
    if _network_reachable():
        pytest.skip("the network is reachable; this test is about failing offline")
    start = time.monotonic()
    ds = load_dataset("auto", download=True, timeout=3.0)
    elapsed = time.monotonic() - start
    if ds.source == "mnist":
        pytest.skip("MNIST downloaded after all")
    assert elapsed < 15, f"giving up took {elapsed:.1f} s"
    assert ds.source == "sample"
    assert ds.note and "could not be downloaded" in ds.note
    assert_one_line(ds.note)
    assert not data.cache_dir().exists() or list(data.cache_dir().rglob("*")) == []


# --- devices and arguments --------------------------------------------------------------------


def test_resolve_device_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.parametrize("name", ["bogus", "cuda:x", "gpu", ""])
def test_resolve_device_rejects_unknown(name):
    with pytest.raises(DataError, match="unknown device"):
        resolve_device(name)


@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_resolve_device_cuda_without_cuda(name):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is available")
    with pytest.raises(DataError, match="CUDA was requested but no CUDA device is available"):
        resolve_device(name)


def test_resolve_device_cuda_index_out_of_range():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    with pytest.raises(DataError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_load_dataset_on_cuda_when_available():
    if not torch.cuda.is_available():
        with pytest.raises(DataError, match="CUDA"):
            load_dataset("sample", device="cuda")
        return
    ds = load_dataset("sample", device="cuda")
    assert ds.images.is_cuda and ds.labels.is_cuda
    assert ds.images.shape == (5000, 784) and ds.images.dtype == torch.uint8


def test_unknown_source():
    with pytest.raises(DataError, match="unknown data source"):
        load_dataset("imagenet")


def test_dataset_is_frozen():
    ds = load_dataset("sample")
    with pytest.raises(AttributeError):
        ds.source = "mnist"  # type: ignore[misc]
