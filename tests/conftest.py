import atexit
import os
import shutil
import tempfile

import pytest
import torch

os.environ.setdefault("FFTUI_CACHE_DIR", os.path.join(os.path.dirname(__file__), ".cache-never-used"))
if not os.environ.get("FFTUI_LOG_DIR"):  # failures the tests provoke are logged here, not in the user's logs
    os.environ["FFTUI_LOG_DIR"] = tempfile.mkdtemp(prefix="fftui-test-logs-")
    atexit.register(shutil.rmtree, os.environ["FFTUI_LOG_DIR"], ignore_errors=True)
if not os.environ.get("FFTUI_DATA_DIR"):  # runs the tests record go here, never into the user's store
    os.environ["FFTUI_DATA_DIR"] = tempfile.mkdtemp(prefix="fftui-test-data-")
    atexit.register(shutil.rmtree, os.environ["FFTUI_DATA_DIR"], ignore_errors=True)
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def sample():
    from engine.data import load_dataset

    return load_dataset("sample", device="cpu")


@pytest.fixture(scope="session")
def small_sample(sample):
    """The first 512 digits of the shipped sample: real MNIST, quick to train on."""
    from engine.data import Dataset

    return Dataset(images=sample.images[:512].clone(), labels=sample.labels[:512].clone(),
                   source="sample", description="512 shipped digits", note=None)
