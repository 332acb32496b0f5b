"""Process-wide settings for a process that trains: the allocator, the GIL switch interval, the
garbage collector and torch's thread count.

They belong to the whole process, so only entry points (the `fftui` command, the benchmarks) call
these functions; building a trainer, a runner or the app never changes them."""
from __future__ import annotations

import gc
import sys
from dataclasses import dataclass

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
HEAP_BLOCK_LIMIT = 32 * 1024 * 1024  # bytes served from the heap instead of a fresh mmap

# How often the interpreter offers the GIL to another thread while the app's thread runs Python:
# the training thread then waits at most this long between its (GIL-free) tensor operations.
APP_SWITCH_INTERVAL = 0.001  # seconds; Python's default is 0.005


def keep_freed_blocks_in_heap() -> bool:
    """Ask glibc to serve blocks up to 32 MiB from its heap and keep freed memory there.

    Every batch allocates and frees the same handful of B x n temporaries; by default each one above
    128 KiB is a fresh mmap, paid again in page faults on every batch, which made the metrics about
    half again as slow on the CPU. Returns whether the setting took (glibc only; False elsewhere)."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return (bool(libc.mallopt(_M_MMAP_THRESHOLD, HEAP_BLOCK_LIMIT))
                and bool(libc.mallopt(_M_TRIM_THRESHOLD, 4 * HEAP_BLOCK_LIMIT)))
    except (OSError, AttributeError):
        return False


def set_switch_interval(seconds: float) -> float:
    """Set the interpreter's thread switch interval (seconds, > 0); returns the previous one."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    return previous


def freeze_live_objects() -> None:
    """Move every object alive now (modules, torch, textual, the data) out of the collector's reach.

    They live as long as the process; without this each full collection walks them all and stalls
    the thread that triggered it for about 0.3 s."""
    gc.collect()
    gc.freeze()


@dataclass(frozen=True)
class ProcessSettings:
    """What `tune_for_training` set, for logs and benchmark reports."""

    heap_tuned: bool
    switch_interval: float
    frozen: bool


def tune_for_training(*, interactive: bool) -> ProcessSettings:
    """The settings the `fftui` command uses: the heap tuned (on the CPU for the step's temporaries,
    on every device for the host's derivation of the metrics, which works on arrays of a whole chunk
    of batches: without it each chunk paid about 3,000 page faults), and for the live app a short GIL
    switch interval and the start-up objects frozen. Call once, after the heavy imports."""
    heap = keep_freed_blocks_in_heap()
    if interactive:
        set_switch_interval(APP_SWITCH_INTERVAL)
        freeze_live_objects()
    return ProcessSettings(heap, sys.getswitchinterval(), interactive)
