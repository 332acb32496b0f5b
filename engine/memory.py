"""How much memory a configuration needs, how much the device has, and the refusal of a
configuration that cannot fit, made before anything is allocated.

The estimate counts the tensors a training step holds at its peak (engine/step.py train_math and
measure, engine/layer.py, engine/inputs.py, engine/trainer.py _build), in the layer's dtype, for
S digits of m = 784 pixels, a layer of n units and a batch of B samples (B = 2 min(N, S) in ff mode,
min(N, S) in descent mode):

* the data table: S x m (pixel_table; normalising makes two more of it for a moment);
* the weights W, n x m, and the optimiser's state: one more for SGD with momentum, two for Adam;
* the step's weight-sized temporaries when dW is formed (every optimiser but plain SGD without
  weight decay): the gradient 2 (c H)^T X (two, for the product and its scaling), dW, grad + wd W
  with weight decay, Adam's two corrected moments;
* the batch: X and the images it is assembled from, 3 x B x m;
* the activations: Z, H, c H, the drive E, H', the two masks and dZ: 8 x B x n, one more for the
  theorem's own drive under the logistic loss;
* the input kernel K = X X^T and K c^T: 2 x B x B;
* the outcome's measurement, in float64 whatever the dtype (engine/step.py measured_outcome):
  X W^T and X W'^T, h, h', their difference, sum and its magnitude: 7 x B x n, with W and X as
  float64, n x m + B x m.

A stack (Config.widths) counts every layer's weights (n_l x n_(l-1)) and its activations at the
widest layer, plus the layer inputs and the end-to-end pass; hard negatives and the classifier add
the scoring of 10 labels an image, the classifier its test digits.

Against the peak resident memory measured on the CPU the estimate is 15 to 35 % high: an upper
bound. The digits themselves (S x m bytes) are already resident when the check runs, so they are in the
available memory's account, not in the estimate. Small vectors (per-sample sums) are left out: they
are B numbers each against the B x n and B x B arrays above.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Config, ConfigError

PIXELS = 784
ITEM_BYTES = {"float32": 4, "float64": 8}


@dataclass(frozen=True)
class MemoryEstimate:
    """The bytes a configuration needs at its peak, with the parts they come from (largest first).

    parts: (what, formula, bytes) for each kind of tensor; total: their sum."""

    parts: tuple[tuple[str, str, int], ...]

    @property
    def total(self) -> int:
        return sum(b for _, _, b in self.parts)

    def basis(self, count: int = 3) -> str:
        """The largest `count` parts in words: "input kernel 2 x 120,000² float32 = 115 GB, ..."."""
        return ", ".join(f"{what} {formula} = {human_bytes(b)}" for what, formula, b in self.parts[:count] if b)


def human_bytes(n: float) -> str:
    """Bytes in decimal units with three significant digits: 512 B, 3.2 MB, 115 GB, 1.5 TB."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def batch_samples(cfg: Config, dataset_size: int) -> int:
    """B, the samples of the largest batch: N (at most S) images, twice that in ff mode."""
    per_side = min(cfg.batch_size, max(1, dataset_size))
    return 2 * per_side if cfg.mode == "ff" else per_side


def estimate_memory(cfg: Config, dataset_size: int) -> MemoryEstimate:
    """The peak memory of training `cfg` on `dataset_size` digits, by the count in the module's
    docstring. Pure arithmetic: nothing is allocated."""
    e = ITEM_BYTES[cfg.dtype]
    m, n, s = PIXELS, max(cfg.layer_widths), dataset_size
    b = batch_samples(cfg, dataset_size)
    state = 2 if cfg.optimizer == "adam" else (1 if cfg.momentum else 0)
    fused = cfg.optimizer == "sgd" and not cfg.momentum and not cfg.weight_decay
    temps = 0 if fused else 3 + (1 if cfg.weight_decay else 0) + (2 if cfg.optimizer == "adam" else 0)
    weights = 1 + state + temps
    activations = 8 + (1 if cfg.loss == "logistic" else 0)
    tables = 1 if cfg.normalize == "none" else 3
    dt = cfg.dtype
    widths = cfg.layer_widths
    inputs = (m, *widths[:-1])
    matrices = sum(w * i for w, i in zip(widths, inputs, strict=True))
    shapes = " + ".join(f"{w:,} x {i:,}" for w, i in zip(widths, inputs, strict=True))
    shapes = shapes if len(widths) == 1 else f"({shapes})"
    parts = [
        ("input kernel", f"2 x {b:,}² {dt}", 2 * b * b * e),
        ("activations", f"{activations} x {b:,} x {n:,} {dt}", activations * b * n * e),
        ("weights, optimiser state and step", f"{weights} x {shapes} {dt}", weights * matrices * e),
        ("data table", f"{tables} x {s:,} x {m} {dt}", tables * s * m * e),
        ("batch inputs", f"3 x {b:,} x {m} {dt}", 3 * b * m * e),
        ("outcome measurement", f"7 x {b:,} x {n:,} + ({n:,} + {b:,}) x {m} float64",
         (7 * b * n + (n + b) * m) * 8),
    ]
    parts += _network_parts(cfg, b, n, e)
    return MemoryEstimate(tuple(sorted(parts, key=lambda p: -p[2])))


def _network_parts(cfg: Config, b: int, n: int, e: int) -> list[tuple[str, str, int]]:
    """A stack's layer inputs and end-to-end pass (3 x B x n, n the widest layer), and the scoring
    of 10 labels an image (hard negatives: the batch's N images; the classifier: 1,000 test digits at
    a time, and the 10,000 test digits' table): rows x 784 twice and 3 x rows x n. None for one layer
    with the report's negatives and no classifier."""
    dt, out = cfg.dtype, []
    if len(cfg.layer_widths) > 1:
        out.append(("layer inputs and end-to-end pass", f"3 x {b:,} x {n:,} {dt}", 3 * b * n * e))
    rows = max(10 * (b // 2) if cfg.negatives == "hard" else 0, 10 * 1000 if cfg.evaluate else 0)
    if rows:
        out.append(("label scoring", f"{rows:,} x (2 x {PIXELS} + 3 x {n:,}) {dt}",
                    rows * (2 * PIXELS + 3 * n) * e))
    if cfg.evaluate:
        out.append(("test digits", f"10,000 x {PIXELS} {dt}", 10_000 * PIXELS * e))
    return out


def available_memory(device: Any) -> int | None:
    """Bytes this process could still allocate on `device` (a torch.device or its name): on CUDA
    the free memory (torch.cuda.mem_get_info) plus what torch's cache holds unused; on the CPU
    MemAvailable from /proc/meminfo (else the free pages, os.sysconf), capped by the cgroup's
    limit when one is set. None when it cannot be told."""
    kind = getattr(device, "type", str(device).split(":")[0])
    if kind == "cuda":
        import torch

        try:
            free, _total = torch.cuda.mem_get_info(device)
            cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        except (RuntimeError, AssertionError, ValueError):
            return None
        return int(free + max(0, cached))
    if kind != "cpu":
        return None
    found = [v for v in (_meminfo_available(), _cgroup_room()) if v is not None]
    return min(found) if found else None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_room() -> int | None:
    """A cgroup v2 memory limit less the cgroup's use; None without a limit."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((root / "memory.current").read_text().strip()))
    except (OSError, ValueError):
        return None


def _widths_text(cfg: Config) -> str:
    return f"width {cfg.width}" if cfg.widths is None else f"widths {','.join(map(str, cfg.widths))}"


def check_fits(cfg: Config, dataset_size: int, device: Any, held: Config | None = None) -> None:
    """ConfigError (one line, with the estimate and its largest parts) when `cfg` needs more memory
    than `device` has available. `held`: a configuration whose tensors this process holds now and
    gives back when `cfg` replaces it (the editor's case). No check when the available memory
    cannot be told."""
    available = available_memory(device)
    if available is None:
        return
    need = estimate_memory(cfg, dataset_size)
    room = available + (estimate_memory(held, dataset_size).total if held is not None else 0)
    if need.total <= room:
        return
    raise ConfigError(
        f"batch_size {cfg.batch_size} and {_widths_text(cfg)} need about {human_bytes(need.total)} on {device}, "
        f"more than the {human_bytes(room)} available ({need.basis()}); lower batch_size or "
        + ("widths" if cfg.widths else "width") + (" or use float32" if cfg.dtype == "float64" else ""))
