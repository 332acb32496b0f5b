"""Write the reference records that test_reference.py compares every later version with.

Run once from the repository root: `python tests/data/make_reference.py`. Each case trains 40
batches on the shipped sample on the CPU in float64 and stores every field of every record (per
batch and per group scalars, and the per-sample arrays laid end to end) in a compressed .npz (no pickle)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.config import Config  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.presets import PRESETS  # noqa: E402
from engine.trainer import Trainer  # noqa: E402

ITERS = 40
CASES = {
    "fig2": PRESETS["fig2"].config.replace(iters=ITERS, dtype="float64"),
    "fig3": PRESETS["fig3"].config.replace(iters=ITERS, dtype="float64"),
    # the paths fig2 and fig3 do not take: logistic loss, momentum with weight decay, Adam
    "ff-logistic-momentum-wd": Config(mode="ff", loss="logistic", momentum=0.9, weight_decay=1e-3,
                                      lr=1e-2, width=300, batch_size=64, iters=ITERS, dtype="float64",
                                      seed=5),
    "descent-adam": Config(mode="descent", optimizer="adam", lr=1e-3, width=300, batch_size=50,
                           iters=ITERS, dtype="float64", seed=7),
}
RECORD_SCALARS = ("iteration", "epoch", "loss", "sign_flip", "l2_remainder")
GROUP_SCALARS = ("count", "goodness", "sparsity", "silenced", "newly_silenced", "valid", "sparser",
                 "theorem", "general", "agree_theorem", "agree_general", "unresolved",
                 "sparser_of_batch", "theorem_of_batch", "general_of_batch")
GROUP_ARRAYS = ("lhs", "rhs", "actual", "predicted_theorem", "predicted_general")


def main() -> None:
    torch.set_num_threads(1)
    dataset = load_dataset("sample", device="cpu")
    out = Path(__file__).with_name("reference")
    out.mkdir(exist_ok=True)
    for name, cfg in CASES.items():
        trainer = Trainer(cfg, dataset)
        records = [trainer.step() for _ in range(ITERS)]
        columns: dict[str, np.ndarray] = {}
        for key in RECORD_SCALARS:
            columns[key] = np.array([getattr(r, key) for r in records], dtype=np.float64)
        for group in records[0].groups:
            for key in GROUP_SCALARS:
                columns[f"{group}.{key}"] = np.array([getattr(r.groups[group], key) for r in records],
                                                     dtype=np.float64)
            for key in GROUP_ARRAYS:
                # batches may differ in size (the last of an epoch is partial): laid end to end
                columns[f"{group}.{key}"] = np.concatenate([getattr(r.groups[group], key) for r in records])
        np.savez_compressed(out / f"{name}.npz", **columns)
        print(name, len(columns), "columns")


if __name__ == "__main__":
    main()
