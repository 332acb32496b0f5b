"""Run configuration: every parameter of a run, declared once with its default, range, help and
behaviour (see engine/params.py for what a declaration holds and what derives from it)."""
from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .params import ConfigError, Param, choice, declare, find, format_value, integer, number, params_of, path

__all__ = ["FIELD_NAMES", "FIXED_FIELDS", "PARAMS", "RESET_FIELDS", "VIEW_FIELDS", "Config", "ConfigError",
           "Param", "batches_per_epoch", "parse_value", "theorem_is_general", "validate"]

MODES = ("descent", "ff")
LOSSES = ("linear", "logistic")
OPTIMIZERS = ("sgd", "adam")
INITS = ("report", "kaiming")
DEVICES = ("auto", "cpu", "cuda")
DATA_SOURCES = ("auto", "mnist", "sample")
DTYPES = ("float32", "float64")
NORMALIZATIONS = ("none", "global", "per-pixel")
LABEL_VALUES = ("one", "max")
NEGATIVES = ("wrong-label", "hard", "shuffled", "hybrid")
SCORE_LAYERS = ("all", "skip-first")
READOUTS = ("none", "linear")
MAX_LAYERS = 16


@dataclass(frozen=True)
class Config:
    """One run. Defaults are the report's (section 5): ff mode, N = 128, n = 2000, SGD lr 1e-3.

    Each field is declared here once; constructing a Config checks every field (ConfigError, one
    line). ``replace`` is the way in for a user's values: it parses and checks only what changes."""

    mode: str = choice(MODES, "ff", "descent: decrease the summed goodness of plain images (Theorem 1); "
                       "ff: positives and negatives, L = G(H-) - G(H+) (Theorem 2)", resets=True, status="")
    loss: str = choice(LOSSES, "linear", "linear: the report's loss; logistic: Hinton's softplus loss "
                       "around --theta", status="")
    optimizer: str = choice(OPTIMIZERS, "sgd", "sgd (with --momentum) or adam", status="")
    lr: float = number(1e-3, "learning rate", low=0, low_open=True, high=10, metavar="FLOAT", status="lr")
    momentum: float = number(0.0, "SGD momentum", low=0, high=1, high_open=True, metavar="FLOAT")
    weight_decay: float = number(0.0, "L2 weight decay added to the gradient", low=0, metavar="FLOAT")
    beta1: float = number(0.9, "Adam beta1", low=0, high=1, high_open=True, metavar="FLOAT")
    beta2: float = number(0.999, "Adam beta2", low=0, high=1, high_open=True, metavar="FLOAT")
    theta: float = number(2.0, "goodness threshold; only the logistic loss depends on it", metavar="FLOAT",
                          hint="logistic loss only")
    batch_size: int = integer(128, "images a batch (per side in ff mode)", low=1, high=65536, unit="images",
                              metavar="N", status="N", hint="N per group")
    width: int = integer(2000, "units in the layer", low=2, high=1_000_000, unit="units", metavar="n",
                         resets=True, status="n", hint="n")
    epochs: int = integer(5, "passes over the data", low=1, special=((0, "until stopped"),), unit="passes",
                          metavar="E")
    iters: int | None = integer(None, "number of batches; overrides --epochs (cycles through the data as "
                                "needed)", low=1, blank="epochs decide", unit="batches", metavar="I")
    seed: int = integer(0, "seed of the weights, batch order and wrong labels", low=0, high=2**63 - 1, metavar="S",
                        resets=True)
    init: str = choice(INITS, "report", "report: W ~ N(0, 2/n); kaiming: N(0, 2/m) (fan-in)", resets=True)
    normalize: str = choice(NORMALIZATIONS, "none", "pixels in [0, 1] before the inputs are scaled to unit "
                            "length: none: as they are (the report's definition); global: minus the data "
                            "set's mean pixel, over its standard deviation (MNIST: about 0.1307 and 0.3081, "
                            "computed); per-pixel: each pixel standardised over the data set", resets=True)
    label_value: str = choice(LABEL_VALUES, "one", "ff mode: the value written in the label's pixel of the "
                              "one-hot head: one: 1 (the report's definition); max: the image's largest "
                              "value after normalisation", resets=True)
    device: str = choice(DEVICES, "auto", "auto: CUDA when present, else the CPU", group="data", resets=True,
                         fixed=True)
    dtype: str = choice(DTYPES, "float32", "floating point type of the layer and the metrics", resets=True)
    data: str = choice(DATA_SOURCES, "auto", "auto: MNIST if present or downloadable, else the shipped "
                       "5,000-digit sample; mnist: MNIST or an error; sample: the shipped sample",
                       group="data", resets=True, fixed=True)
    data_dir: str | None = path("a folder holding the MNIST IDX files (train-images-idx3-ubyte[.gz], "
                                "train-labels-idx1-ubyte[.gz]); never downloaded into, never replaced by the "
                                "shipped sample", metavar="DIR",
                                group="data", resets=True, fixed=True)
    smooth: int = integer(25, "moving-average window of the app's smoothed curves (s turns smoothing on, "
                          "+ and - change the window); the engine ignores it", low=2, high=5000,
                          unit="iterations", metavar="K", group="display", view=True, hint="s on/off")
    widths: tuple[int, ...] | None = declare(
        "ints", None, "units of each layer of a stack, comma-separated (2000,2000,2000); layer l+1's input is "
        "layer l's activation scaled to unit length; the first entry is --width; at most 16 layers", low=2,
        high=1_000_000,
        items=MAX_LAYERS, blank="one layer of --width", unit="units", metavar="n,n,...", resets=True,
        hint="a stack")
    layer_lr: tuple[float, ...] | None = declare(
        "floats", None, "each layer's multiplier of --lr, comma-separated, one per layer", low=0, low_open=True,
        high=1e6, items=MAX_LAYERS, blank="1 for every layer", metavar="x,x,...")
    negatives: str = choice(NEGATIVES, "wrong-label", "ff mode: how negatives are made: wrong-label: the image "
                            "with a uniformly drawn wrong label (the report's); hard: the wrong label the "
                            "network finds best (highest goodness); shuffled: the label of another sample of "
                            "the batch whose label differs; hybrid: two different digits mixed through a "
                            "blurred random mask, no label in any input (Hinton's unsupervised variant)")
    evaluate: bool = declare("bool", False, "ff mode: the goodness classifier's test error every epoch (in "
                             "the app also on t): each "
                             "test digit with each of the 10 labels, the label of the highest summed goodness; "
                             "MNIST's 10,000 test digits, or on the shipped sample 1,000 of its digits (every "
                             "fifth, 100 of each class), which are then held out of training", resets=True,
                             fixed=True)
    score_layers: str = choice(SCORE_LAYERS, "all", "the layers whose goodness the classifier (and the hard "
                               "negatives) sum: all, or all but the first (Hinton's choice for deep nets)")
    readout: str = choice(READOUTS, "none", "with evaluate: linear: also a softmax-regression classifier on the "
                          "unit-length activations of the layers --score-layers names, for each positive image "
                          "with every label entry a tenth of the label value, trained by cross-entropy and its "
                          "own Adam (--lr) on every batch without touching the layers' training; its test "
                          "error is reported beside the goodness classifier's (loeweX/Forward-Forward's "
                          "downstream classifier)", hint="with --evaluate")

    def __post_init__(self) -> None:
        for name in ("widths", "layer_lr"):  # lists (a JSON file's) as tuples
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        for name, value in _synced_widths(self.__dict__, self.__dict__).items():
            object.__setattr__(self, name, value)
        validate(self)

    @property
    def layer_widths(self) -> tuple[int, ...]:
        """The units of every layer: widths, or (width,) for one layer."""
        return self.widths if self.widths is not None else (self.width,)

    @property
    def layer_rates(self) -> tuple[float, ...]:
        """Every layer's learning rate: lr times its layer_lr multiplier (1 when not given)."""
        factors = self.layer_lr if self.layer_lr is not None else (1.0,) * len(self.layer_widths)
        return tuple(self.lr * f for f in factors)

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed; values may be strings as typed by a user. Each changed
        value is parsed and checked once; then the rules that join fields. Raises ConfigError."""
        params = params_of(type(self))
        names = {p.name: p for p in params}
        unknown = [k for k in changes if k not in names]
        if unknown:
            raise ConfigError(f"unknown parameter {unknown[0]!r}; known: {', '.join(names)}")
        parsed = {k: names[k].parse(v) for k, v in changes.items()}
        return self._with_parsed({**parsed, **_synced_widths(parsed, self.__dict__)})

    def _with_parsed(self, values: dict[str, Any]) -> Config:
        """A copy with values that are already parsed and checked (Param.parse); only the rules
        that join fields run again. Use ``replace`` for anything else."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.update(values)
        check_rules(new)
        return new

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


PARAMS: tuple[Param, ...] = params_of(Config)
FIELD_NAMES = tuple(p.name for p in PARAMS)

# Changing one of these needs a fresh layer (or fresh data); the others apply at the next batch.
RESET_FIELDS = frozenset(p.name for p in PARAMS if p.resets)
# Fixed for the lifetime of a runner: changing them means loading other data or another device.
FIXED_FIELDS = frozenset(p.name for p in PARAMS if p.fixed)
# How the live app shows the run: the engine never reads them; a change applies at once.
VIEW_FIELDS = frozenset(p.name for p in PARAMS if p.view)


def _synced_widths(changes: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """width is always the first layer's: widths, when given, sets it (a one-entry widths is one layer
    of that width, widths None); a new width alone replaces the first entry of the stack's widths."""
    widths = changes.get("widths", current.get("widths"))
    if "widths" in changes and widths is not None:
        if not isinstance(widths, tuple) or not widths or not isinstance(widths[0], int):
            return {}  # the declaration's check says what is wrong
        if "width" in changes and changes is not current and changes["width"] != widths[0]:
            raise ConfigError(f"width {changes['width']} differs from the first entry of widths "
                              f"{format_value(widths)}; give one of them")
        return {"width": widths[0], "widths": widths if len(widths) > 1 else None}
    if "width" in changes and widths is not None and "widths" not in changes:
        return {"widths": (changes["width"], *widths[1:])}
    return {}


def theorem_is_general(cfg: Config) -> bool:
    """Whether the generalised predictor is exactly the report's theorem for this configuration.

    The theorem takes c = +-1 and the plain gradient step dW = -lr dL/dW. The linear loss has
    exactly those loss weights (c_k = dL/dg_k = +-1, SPEC "Goodness and losses"), and plain SGD
    without momentum or weight decay applies exactly that step; any other loss, optimiser,
    momentum or weight decay changes the applied dW, and the generalised predictor follows it."""
    return (cfg.loss == "linear" and cfg.optimizer == "sgd" and cfg.momentum == 0.0
            and cfg.weight_decay == 0.0)


def batches_per_epoch(dataset_size: int, batch_size: int) -> int:
    """The report counts a partial last batch: 60,000 digits at N = 128 give 469 iterations."""
    return max(1, math.ceil(dataset_size / batch_size))


def parse_value(name: str, value: Any, params: Sequence[Param] = PARAMS) -> Any:
    """Turn a user's value (often a string) into the field's type, checked against the field's
    range, or raise ConfigError with a one-line message."""
    return find(params, name).parse(value)


def validate(cfg: Config) -> None:
    """Raise ConfigError with a one-line message for the first value out of its declared type or
    range, then for the rules that join fields."""
    for p in params_of(type(cfg)):
        p.check(getattr(cfg, p.name))
    check_rules(cfg)


def check_rules(cfg: Config) -> None:
    """The rules that join several fields (each field's own range is checked by its declaration)."""
    if cfg.data_dir is not None and cfg.data == "sample":
        raise ConfigError("data_dir cannot be used with data=sample")
    check_stack_rules(cfg)
    check_numeric_range(cfg)


def check_stack_rules(cfg: Config) -> None:
    """The rules of a stack, its negatives and its classifier (one line each)."""
    layers = len(cfg.layer_widths)
    if cfg.layer_lr is not None and len(cfg.layer_lr) != layers:
        raise ConfigError(f"layer_lr has {len(cfg.layer_lr)} entries but the network has {layers} layer"
                          f"{'s' if layers > 1 else ''} (widths {format_value(cfg.layer_widths)}); give one per layer")
    if cfg.mode == "descent" and cfg.negatives != "wrong-label":
        raise ConfigError(f"negatives {cfg.negatives} need ff mode: descent mode has no negatives")
    if cfg.evaluate and cfg.mode != "ff":
        raise ConfigError("evaluate needs ff mode: the classifier reads the label written into the input")
    if cfg.evaluate and cfg.negatives == "hybrid":
        raise ConfigError("evaluate cannot score a network trained on hybrid negatives: no input carries a label")
    if cfg.readout != "none" and not (cfg.evaluate and cfg.mode == "ff"):
        raise ConfigError(f"readout {cfg.readout} needs ff mode with evaluate on: it is tested beside the goodness "
                          "classifier")
    if cfg.score_layers == "skip-first" and layers < 2 and (cfg.evaluate or cfg.negatives == "hard"):
        raise ConfigError("score_layers skip-first needs at least two layers (--widths)")


# The largest finite number of each dtype (torch.finfo(dtype).max), written out so that checking a
# configuration never imports torch.
DTYPE_MAX = {"float32": 3.4028234663852886e38, "float64": sys.float_info.max}
# Initial weights are N(0, s^2) (engine/layer.py init_weights); among the n x 784 of them none lies
# farther than this many s from 0 in practice (P(|x| > 6 s) = 2e-9 per weight).
WEIGHT_SPREAD = 6.0


def check_numeric_range(cfg: Config) -> None:
    """Refuse, with one line, values that make the first steps leave the dtype's finite range or
    make the weights grow without bound whatever the data; the line suggests float64 when float64
    would hold the values.

    theta: the logistic loss (and the linear one in descent mode) adds up |theta| over the B
    samples of a batch (2N in ff mode, N in descent mode), so B |theta| must be finite.
    weight_decay with SGD: the decay alone scales W by (1 - lr wd) a step (with momentum m, the
    heavy-ball iteration on wd |W|^2 / 2), which diverges unless lr wd < 2 (1 + m): no dtype helps.
    weight_decay with Adam: the second moment holds (wd W)^2, finite only while
    wd * 6 s <= sqrt(max), s the initial weights' standard deviation.
    """
    samples = cfg.batch_size * (2 if cfg.mode == "ff" else 1)
    if cfg.loss == "logistic" or cfg.mode == "descent":
        loss_kind = "logistic" if cfg.loss == "logistic" else "linear"
        _fits(cfg, "theta", cfg.theta, samples * abs(cfg.theta), samples,
              f"the {loss_kind} loss adds up |theta| over the {samples} samples of a batch")
    if not cfg.weight_decay:
        return
    if cfg.optimizer == "sgd":
        limit = 2.0 * (1.0 + cfg.momentum)
        if cfg.lr * cfg.weight_decay >= limit:
            with_momentum = f" with momentum {format_value(cfg.momentum)}" if cfg.momentum else ""
            raise ConfigError(
                f"weight_decay {cfg.weight_decay:g} with lr {cfg.lr:g} makes every SGD step{with_momentum} "
                f"scale the weights by about {abs(1.0 - cfg.lr * cfg.weight_decay):.3g}, so they grow without "
                f"bound; keep lr x weight_decay below {limit:g}")
        return
    spread = WEIGHT_SPREAD * math.sqrt(2.0 / (min(cfg.layer_widths) if cfg.init == "report" else 784))
    _fits(cfg, "weight_decay", cfg.weight_decay, (cfg.weight_decay * spread) ** 2, (1.0 / spread) ** 2,
          "Adam's second moment holds (weight_decay x W)^2")


def _fits(cfg: Config, name: str, value: float, reached: float, per_unit: float, why: str) -> None:
    """ConfigError unless `reached`, the largest number `value` leads to, is finite in cfg.dtype.
    `reached` grows as `per_unit` times the square (Adam) or the magnitude (theta) of value; the
    message says which dtype holds it, or how large the value may be."""
    top = DTYPE_MAX[cfg.dtype]
    if reached <= top:
        return
    wider = [d for d, m in DTYPE_MAX.items() if m > top and reached <= m]
    squared = name == "weight_decay"
    largest = math.sqrt(top / per_unit) if squared else top / per_unit
    remedy = (f"set dtype to {wider[0]}, or keep |{name}| at most {largest:.3g}" if wider
              else f"keep |{name}| at most {largest:.3g}")
    raise ConfigError(f"{name} {value:g} overflows {cfg.dtype} ({why}: {reached:.3g}, more than {cfg.dtype}'s "
                      f"largest number {top:.3g}); {remedy}")
