"""An offline machine pays for the MNIST download attempt at most once a day with --data auto;
--data mnist always tries."""
from __future__ import annotations

import json
import time

import pytest

import engine.data.download as download
from engine.data import Unavailable, load_dataset
from engine.data.loading import download_failures


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty cache in tmp_path and a download that fails like an offline machine's; the list
    holds the folder of every attempt."""
    monkeypatch.setenv("FFTUI_CACHE_DIR", str(tmp_path / "cache"))
    attempts: list = []

    def fail(folder, raw, timeout, prefix):
        attempts.append(folder)
        raise Unavailable(f"{prefix} (name lookup failed: Temporary failure in name resolution)")

    monkeypatch.setattr(download, "_download", fail)
    return attempts


def test_auto_tries_once_then_not_for_a_day(offline, tmp_path):
    first = load_dataset("auto")
    assert len(offline) == 1 and first.source == "sample"
    marker = download_failures()
    assert marker == tmp_path / "cache" / "mnist-download-failed.json"
    record = json.loads(marker.read_text())
    assert abs(record["time"] - time.time()) < 60
    assert record["message"].endswith("(name lookup failed: Temporary failure in name resolution)")

    second = load_dataset("auto")
    assert len(offline) == 1, "the second start must not try again"
    assert second.source == "sample"
    assert "not tried again before 24 h have passed (--data mnist tries now)" in second.note
    assert "name lookup failed" in second.note and " s ago" in second.note


def test_mnist_always_tries(offline):
    assert load_dataset("auto").source == "sample"  # the failure is remembered
    for expected in (2, 3):
        with pytest.raises(Unavailable, match="could not be downloaded"):
            load_dataset("mnist")
        assert len(offline) == expected


def test_auto_tries_again_after_a_day(offline):
    download.remember_failure(download_failures(), "MNIST is not in X and could not be downloaded (timed out)",
                              when=time.time() - download.RETRY_AFTER - 60)
    load_dataset("auto")
    assert len(offline) == 1
    load_dataset("auto")
    assert len(offline) == 1  # the fresh failure counts from now


@pytest.mark.parametrize("content", ["", "not json", '{"time": "soon"}', '{"message": "x"}'])
def test_an_unreadable_record_does_not_stop_the_attempt(offline, content):
    marker = download_failures()
    marker.parent.mkdir(parents=True)
    marker.write_text(content)
    load_dataset("auto")
    assert len(offline) == 1


def test_a_success_forgets_the_failure(tmp_path, monkeypatch):
    marker = tmp_path / "failed.json"
    download.remember_failure(marker, "it failed")
    assert download.last_failure(marker)[1] == "it failed"
    monkeypatch.setattr(download, "_download", lambda folder, raw, timeout, prefix: None)
    assert download.download_mnist(tmp_path / "c", 1.0, failures=marker) == tmp_path / "c" / "MNIST" / "raw"
    assert not marker.exists()
