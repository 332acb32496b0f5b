"""Tensor operations in one step with every metric, as a CUDA graph captures it, counted on the CPU.

    python bench/op_count.py [--width 2000] [--batch-size 128] [--list]

Runs the step's tensor work (`Trainer.step_function`: assembling the batch, the forward pass,
the loss, the update and the metrics) once under a dispatch hook and counts the ATen operations
that reach it, with and without the ones that only make views. On a GPU each operation that is not
a view launches one kernel or more (a vector dot product is two), so the count tracks what a
replayed graph pays per batch in fixed launch costs."""
from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from engine.config import Config  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.trainer import Trainer  # noqa: E402


class Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[torch._ops.OpOverload] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func)
        return func(*args, **(kwargs or {}))


def is_view(op) -> bool:
    schema = op._schema
    returns_alias = any(r.alias_info is not None and not r.alias_info.is_write for r in schema.returns)
    return returns_alias or op.overloadpacket.__name__ in ("lift_fresh", "detach")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--list", action="store_true", help="also list the operations of each step")
    args = p.parse_args()
    dataset = load_dataset("sample")
    print(f"n = {args.width}, N = {args.batch_size}; plain SGD, full batch, every metric")
    for mode, loss in (("ff", "linear"), ("ff", "logistic"), ("descent", "linear"), ("descent", "logistic")):
        cfg = Config(mode=mode, loss=loss, width=args.width, batch_size=args.batch_size)
        trainer = Trainer(cfg, dataset)
        math = trainer.step_function(cfg.batch_size)
        idx = torch.arange(cfg.batch_size)
        shift = torch.ones(cfg.batch_size, dtype=torch.long)
        with torch.inference_mode():
            math(idx, shift)  # first call makes the cached signs, as the graph's warm-up does
            with Recorder() as rec:
                math(idx, shift)
        real = [op for op in rec.ops if not is_view(op)]
        print(f"{mode:8s} {loss:9s} {len(rec.ops):4d} operations, {len(real):4d} not views")
        if args.list:
            counts = collections.Counter(op.overloadpacket.__name__ for op in real)
            print("    " + ", ".join(f"{name} {k}" for name, k in counts.most_common()))


if __name__ == "__main__":
    main()
