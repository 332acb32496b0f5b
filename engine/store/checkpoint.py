"""A run's checkpoint: the weights and the optimiser's state (and whatever tensors a resume needs,
such as random generator states) in one safetensors file, replaced atomically: a crash leaves the
previous checkpoint or the new one whole, never a mix. No pickle."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import CHECKPOINT, FORMAT, StoreError

PARTS = ("weights", "optimizer")  # tensor names in the file are PART/NAME


@dataclass
class Checkpoint:
    """The last checkpoint: its iteration, the weights' and the optimiser's tensors by name (torch,
    CPU), and the string metadata they were saved with (with "iteration" and "format")."""

    iteration: int
    weights: dict[str, Any]
    optimizer: dict[str, Any]
    metadata: dict[str, str]


def write_checkpoint(folder: Path, iteration: int, weights: Mapping[str, Any], optimizer: Mapping[str, Any],
                     metadata: Mapping[str, Any] | None = None) -> None:
    """Write folder/checkpoint.safetensors through a temporary file and a rename. Tensors are
    copied to the CPU; metadata values are written as text. Raises OSError."""
    from safetensors.torch import save_file

    meta = {**{str(k): str(v) for k, v in (metadata or {}).items()}, "iteration": str(iteration),
            "format": str(FORMAT)}
    tensors = {f"{part}/{name}": value.detach().cpu().contiguous()
               for part, group in zip(PARTS, (weights, optimizer), strict=True) for name, value in group.items()}
    path = folder / CHECKPOINT
    tmp = path.with_name(f".{CHECKPOINT}.tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)


def read_checkpoint(folder: Path) -> Checkpoint | None:
    """folder's checkpoint, or None when it has none; StoreError (one line) when the file is damaged."""
    path = folder / CHECKPOINT
    if not path.exists():
        return None
    from safetensors import SafetensorError, safe_open

    parts: dict[str, dict[str, Any]] = {part: {} for part in PARTS}
    try:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 - a safetensors file is not a mapping
                part, _, name = key.partition("/")
                parts.setdefault(part, {})[name] = f.get_tensor(key)
            meta = dict(f.metadata() or {})
        iteration = int(meta["iteration"])
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise StoreError(f"{path} cannot be read: {exc}".splitlines()[0]) from None
    return Checkpoint(iteration, parts["weights"], parts["optimizer"], meta)
