"""Which torch device a run uses, from the name the user gave."""
from __future__ import annotations

import re

import torch

from .errors import DataError


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (any case, surrounding blanks ignored) as a
    torch.device.

    ``auto`` is the first CUDA device when one is available, else the CPU. DataError (one line)
    for any other name, for CUDA on a machine without it, and for an index past the last device.
    """
    text = str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise DataError(f"unknown device {str(name)!r} (expected auto, cpu, cuda or cuda:N)")
    if not torch.cuda.is_available():
        raise DataError("CUDA was requested but no CUDA device is available")
    if match.group(1) is None:
        return torch.device("cuda")
    index = int(match.group(1))
    available = torch.cuda.device_count()
    if index >= available:
        plural = "device is" if available == 1 else "devices are"
        raise DataError(f"CUDA device {index} was requested but only {available} {plural} available")
    return torch.device("cuda", index)
