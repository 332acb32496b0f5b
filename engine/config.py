"""Run configuration: every parameter of a run, its default, and its validation."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any


class ConfigError(ValueError):
    """A parameter value that cannot be used; the message is one line meant for the user."""


MODES = ("descent", "ff")
LOSSES = ("linear", "logistic")
OPTIMIZERS = ("sgd", "adam")
INITS = ("report", "kaiming")
DEVICES = ("auto", "cpu", "cuda")
DATA_SOURCES = ("auto", "mnist", "sample")
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Config:
    """One run. Defaults are the report's (section 5): ff mode, N = 128, n = 2000, SGD lr 1e-3."""

    mode: str = "ff"
    loss: str = "linear"
    optimizer: str = "sgd"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    theta: float = 2.0
    batch_size: int = 128
    width: int = 2000
    epochs: int = 5
    iters: int | None = None
    seed: int = 0
    init: str = "report"
    standardize: bool = False
    device: str = "auto"
    dtype: str = "float32"
    data: str = "auto"
    data_dir: str | None = None

    def __post_init__(self) -> None:
        validate(self)

    def replace(self, **changes: Any) -> "Config":
        """A copy with some fields changed; values may be strings as typed by a user."""
        unknown = [k for k in changes if k not in FIELD_NAMES]
        if unknown:
            raise ConfigError(f"unknown parameter {unknown[0]!r}; known: {', '.join(FIELD_NAMES)}")
        parsed = {k: parse_value(k, v) for k, v in changes.items()}
        return dataclasses.replace(self, **parsed)

    def total_iters(self, dataset_size: int) -> int | None:
        """Batches in the run: iters when given, else epochs times batches per epoch; None when
        epochs is 0 and iters is not given (the run goes on until it is stopped)."""
        if self.iters is not None:
            return self.iters
        if self.epochs == 0:
            return None
        return self.epochs * batches_per_epoch(dataset_size, self.batch_size)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELD_NAMES = tuple(f.name for f in fields(Config))

# Changing one of these needs a fresh layer (or fresh data); the others apply at the next batch.
RESET_FIELDS = frozenset({"mode", "width", "init", "seed", "standardize", "device", "dtype", "data", "data_dir"})


def batches_per_epoch(dataset_size: int, batch_size: int) -> int:
    """The report counts a partial last batch: 60,000 digits at N = 128 give 469 iterations."""
    return max(1, math.ceil(dataset_size / batch_size))


_CHOICES = {
    "mode": MODES,
    "loss": LOSSES,
    "optimizer": OPTIMIZERS,
    "init": INITS,
    "device": DEVICES,
    "dtype": DTYPES,
    "data": DATA_SOURCES,
}
_INTS = ("batch_size", "width", "epochs", "iters", "seed")
_FLOATS = ("lr", "momentum", "weight_decay", "beta1", "beta2", "theta")


def parse_value(name: str, value: Any) -> Any:
    """Turn a user's value (often a string) into the field's type, or raise ConfigError."""
    if name in _CHOICES:
        text = str(value).strip().lower()
        if text not in _CHOICES[name]:
            raise ConfigError(f"{name} must be one of {', '.join(_CHOICES[name])}, not {value!r}")
        return text
    if name in _INTS:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
            if name == "iters":
                return None
            raise ConfigError(f"{name} needs a whole number")
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be a whole number, not {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip().replace("_", ""))
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if name in _FLOATS:
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be a number, not {value!r}")
        try:
            number = float(str(value).strip()) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, not {value!r}") from None
        return number
    if name == "standardize":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"standardize must be on or off, not {value!r}")
    if name == "data_dir":
        if value is None or str(value).strip() == "":
            return None
        return str(value)
    raise ConfigError(f"unknown parameter {name!r}")


def validate(cfg: Config) -> None:
    """Raise ConfigError with a one-line message for the first value out of range."""
    for name, choices in _CHOICES.items():
        if getattr(cfg, name) not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {getattr(cfg, name)!r}")
    for name in _FLOATS:
        v = getattr(cfg, name)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise ConfigError(f"{name} must be a finite number, not {v!r}")
    for name in _INTS:
        v = getattr(cfg, name)
        if v is None and name == "iters":
            continue
        if not isinstance(v, int) or isinstance(v, bool):
            raise ConfigError(f"{name} must be a whole number, not {v!r}")
    if not cfg.lr > 0:
        raise ConfigError(f"lr must be positive, not {cfg.lr:g}")
    if cfg.lr > 10:
        raise ConfigError(f"lr must be at most 10, not {cfg.lr:g}")
    if not 0 <= cfg.momentum < 1:
        raise ConfigError(f"momentum must be in [0, 1), not {cfg.momentum:g}")
    if cfg.weight_decay < 0:
        raise ConfigError(f"weight_decay must be >= 0, not {cfg.weight_decay:g}")
    for name in ("beta1", "beta2"):
        if not 0 <= getattr(cfg, name) < 1:
            raise ConfigError(f"{name} must be in [0, 1), not {getattr(cfg, name):g}")
    if not 1 <= cfg.batch_size <= 65536:
        raise ConfigError(f"batch_size must be between 1 and 65536, not {cfg.batch_size}")
    if not 2 <= cfg.width <= 1_000_000:
        raise ConfigError(f"width must be between 2 and 1000000, not {cfg.width}")
    if cfg.epochs < 0:
        raise ConfigError(f"epochs must be at least 1 (or 0: until stopped), not {cfg.epochs}")
    if cfg.iters is not None and cfg.iters < 1:
        raise ConfigError(f"iters must be at least 1, not {cfg.iters}")
    if cfg.seed < 0:
        raise ConfigError(f"seed must be >= 0, not {cfg.seed}")
    if not isinstance(cfg.standardize, bool):
        raise ConfigError(f"standardize must be true or false, not {cfg.standardize!r}")
    if cfg.data_dir is not None and cfg.data == "sample":
        raise ConfigError("data_dir cannot be used with data=sample")
