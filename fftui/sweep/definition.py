"""What a sweep is: a base configuration, the parameters swept (a grid of values, or ranges sampled
at random), the seeds; and the trials they give, each a full, validated Config.

Values are parsed and checked by the parameters' own declarations (engine/config.py, engine/params.py):
a name that is no parameter, a value a declaration refuses, or a combination the joining rules refuse
is a SweepError naming the value, raised before any trial starts. Nothing here imports Ray or torch."""
from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import Config, ConfigError
from engine.params import Param, find, format_value, params_of

MAX_TRIALS = 100_000  # more than this needs --yes
DEFINITION_KEYS = ("preset", "config", "grid", "variants", "random", "samples", "seeds", "sample_seed")


class SweepError(Exception):
    """A sweep definition or folder that cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class Axis:
    """One swept parameter: `values` (a grid: every one is tried) or `low`/`high` (sampled: `log`
    says log-uniform), already parsed by the parameter's declaration."""

    name: str
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False

    @property
    def sampled(self) -> bool:
        return self.low is not None


@dataclass
class Trial:
    """One run of a sweep: its name (its folder under trials/), the setting it belongs to (the
    swept values other than the seed), its seed and its full configuration."""

    index: int
    name: str
    setting: int
    values: dict[str, Any]
    seed: int
    config: Config


@dataclass
class Sweep:
    """A sweep's definition and its trials. base: the configuration every trial starts from; axes:
    the parameters swept; seeds: the seeds each setting is run with; settings: the swept values of
    each setting (seed left out), in order."""

    base: Config
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...]
    definition: dict[str, Any]
    settings: list[dict[str, Any]] = field(default_factory=list)
    trials: list[Trial] = field(default_factory=list)

    @property
    def swept(self) -> tuple[str, ...]:
        """The names of the parameters swept (the seed only when it is the one swept)."""
        return tuple(a.name for a in self.axes)


def _param(name: str) -> Param:
    try:
        return find(params_of(Config), name.strip().replace("-", "_"))
    except ConfigError:
        known = ", ".join(p.name for p in params_of(Config))
        raise SweepError(f"unknown parameter {name.strip()!r} in the sweep; known: {known}") from None


def _parse(p: Param, value: Any, where: str) -> Any:
    try:
        parsed = p.parse(value)
        p.check(parsed)
    except ConfigError as exc:
        raise SweepError(f"{where}: {exc}") from None
    return parsed


def _split(entry: str, flag: str) -> tuple[str, str]:
    name, sep, text = entry.partition("=")
    if not sep or not name.strip():
        raise SweepError(f"{flag} {entry!r}: expected NAME=VALUES, e.g. lr=1e-4,1e-3")
    return name.strip(), text


def grid_axis(name: str, values: Any) -> Axis:
    """A grid axis from a name and its values: a comma-separated string or a list (TOML); each value
    parsed by the parameter's declaration. A list parameter (widths, layer_lr) has its values
    separated by semicolons, each a comma list: "widths=500,500;1000,1000" (in TOML a list of lists).
    SweepError for an unknown name, an empty list, a value the declaration refuses or a value given
    twice."""
    p = _param(name)
    listed = p.kind in ("ints", "floats")
    items: list[Any]
    if isinstance(values, str):
        items = values.split(";" if listed else ",")
    elif listed and isinstance(values, (list, tuple)) and values and not isinstance(values[0], (list, tuple)):
        items = [values]  # TOML widths = [500, 500]: one setting
    else:
        items = list(values) if isinstance(values, (list, tuple)) else [values]
    if isinstance(values, str):
        items = [v.strip() for v in items if v.strip()]
    if not items:
        raise SweepError(f"the grid of {p.name} has no values")
    parsed = tuple(_parse(p, v, f"grid value {format_value(v) if not isinstance(v, str) else v!r} of {p.name}")
                   for v in items)
    if len(set(map(repr, parsed))) != len(parsed):
        raise SweepError(f"the grid of {p.name} names a value twice: {', '.join(map(format_value, parsed))}")
    return Axis(p.name, values=parsed)


def random_axis(name: str, spec: Any) -> Axis:
    """A sampled axis: "LOW:HIGH" (or [LOW, HIGH]) for a number, sampled log-uniformly when the
    parameter is declared positive (open at 0, a rate) or both bounds are positive and a hundredfold
    apart, else uniformly (whole numbers for an integer); "A,B,C" (or a list of words) picks one of
    the values uniformly. Bounds are checked by the declaration."""
    p = _param(name)
    pair: list[Any] | None = None
    if isinstance(spec, str) and ":" in spec:
        pair = spec.split(":")
    elif isinstance(spec, (list, tuple)) and len(spec) == 2 and p.kind in ("int", "float") \
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec):
        pair = list(spec)
    if pair is None:
        axis = grid_axis(name, spec)
        return axis  # a list of values: one of them at random (see sample_settings)
    if len(pair) != 2 or p.kind not in ("int", "float"):
        raise SweepError(f"random range of {p.name} {spec!r}: expected LOW:HIGH for a number")
    low, high = (_parse(p, v, f"random bound {str(v).strip()!r} of {p.name}") for v in pair)
    if low is None or high is None or not low < high:
        raise SweepError(f"random range of {p.name}: LOW must be less than HIGH, not {spec!r}")
    positive = p.low == 0 and p.low_open
    log = p.kind == "float" and low > 0 and (positive or high / low >= 100)
    return Axis(p.name, low=float(low), high=float(high), log=log)


def _draw(axis: Axis, p: Param, rng: random.Random) -> Any:
    if not axis.sampled:
        return rng.choice(axis.values)
    assert axis.low is not None and axis.high is not None
    if p.kind == "int":
        return rng.randint(int(axis.low), int(axis.high))
    if axis.log:
        return float(math.exp(rng.uniform(math.log(axis.low), math.log(axis.high))))
    return rng.uniform(axis.low, axis.high)


def _entries(value: Any, flag: str) -> dict[str, Any]:
    """{name: values} from CLI entries ["lr=1e-4,1e-3", ...] or a TOML table."""
    if isinstance(value, dict):
        return dict(value)
    out: dict[str, Any] = {}
    for entry in value or ():
        name, text = _split(entry, flag)
        if name in out:
            raise SweepError(f"{flag} names {name} twice")
        out[name] = text
    return out


def label(values: dict[str, Any]) -> str:
    """A setting as text: "lr=0.001 loss=linear" (the report's parameters when nothing is swept)."""
    return " ".join(f"{k}={format_value(v)}" for k, v in values.items()) or "base"


_UNSAFE = re.compile(r"[^A-Za-z0-9_.+=-]+")


def trial_name(index: int, values: dict[str, Any], seed: int, width: int) -> str:
    """A trial's folder name: its index, the setting's values and the seed, e.g.
    "0003-lr=0.001-loss=linear-seed1" (shortened to stay under 120 characters)."""
    parts = "-".join(f"{k}={format_value(v)}" for k, v in values.items())
    text = _UNSAFE.sub("_", parts)[:90].strip("-")
    return f"{index:0{width}d}" + (f"-{text}" if text else "") + f"-seed{seed}"


def build(definition: dict[str, Any], base: Config, *, allow_many: bool = False) -> Sweep:
    """The sweep's trials from its definition ({"grid": {...} or ["name=v1,v2", ...], "random":
    {...}, "samples": K, "seeds": K or [s1, s2...], "sample_seed": S}) on top of `base`. Every trial's
    Config is built and validated here; SweepError (one line) for anything refused, an empty sweep,
    or more than MAX_TRIALS trials unless allow_many."""
    grid = [grid_axis(k, v) for k, v in _entries(definition.get("grid"), "--grid").items()]
    sampled = [random_axis(k, v) for k, v in _entries(definition.get("random"), "--random").items()]
    variants = _variants(definition.get("variants"))
    variant_names = list(dict.fromkeys(k for v in variants for k in v))
    names = [a.name for a in grid + sampled] + [n for n in variant_names if n not in {a.name for a in grid}]
    twice = sorted({n for n in names if names.count(n) > 1} | ({a.name for a in grid} & set(variant_names)))
    if twice:
        raise SweepError(f"{twice[0]} is swept twice (grid, variants, random); give it once")
    samples = definition.get("samples")
    if sampled and not samples:
        raise SweepError("--random needs --samples K (how many settings to draw)")
    if samples and not sampled:
        raise SweepError("--samples needs --random NAME=LOW:HIGH (what to draw)")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise SweepError(f"--samples must be a whole number, at least 1, not {samples!r}")
    seeds = _seeds(definition.get("seeds"), base, "seed" in names)
    if not grid and not sampled and len(variants) < 2 and len(seeds) < 2:
        raise SweepError("the sweep is empty: give --grid NAME=V1,V2, --random NAME=LOW:HIGH or --seeds K")
    count = math.prod(len(a.values) for a in grid) * max(1, len(variants)) * (samples or 1) \
        * (1 if "seed" in names else len(seeds))
    if count > MAX_TRIALS and not allow_many:  # counted before anything is built
        raise SweepError(f"the sweep has {count:,} trials, more than {MAX_TRIALS:,}; give --yes to run it anyway")
    sample_seed = definition.get("sample_seed") or 0
    if isinstance(sample_seed, bool) or not isinstance(sample_seed, int):
        raise SweepError(f"--sample-seed must be a whole number, not {sample_seed!r}")
    combos: list[dict[str, Any]] = [dict(zip([a.name for a in grid], values, strict=True))
                                    for values in itertools.product(*(a.values for a in grid))]
    if variants:
        combos = [{**v, **c} for v in variants for c in combos]
    if sampled:
        rng = random.Random(sample_seed)
        params = {a.name: _param(a.name) for a in sampled}
        combos = [{**c, **{a.name: _draw(a, params[a.name], rng) for a in sampled}}
                  for c in combos for _ in range(samples or 1)]
    if count == 0:
        raise SweepError("the sweep is empty: it gives no trial")
    axes = grid + [Axis(n, values=tuple(dict.fromkeys(v[n] for v in variants if n in v))) for n in variant_names]
    sweep = Sweep(base, tuple(axes + sampled), seeds, definition)
    width = len(str(count - 1))
    for setting, values in enumerate(combos):
        for seed in ([values["seed"]] if "seed" in names else seeds):
            index = len(sweep.trials)
            try:
                cfg = base.replace(**{**values, "seed": seed})
            except ConfigError as exc:
                raise SweepError(f"setting {label(values)}: {exc}") from None
            sweep.trials.append(Trial(index, trial_name(index, values, seed, width), setting, values, seed, cfg))
        sweep.settings.append(values)
    return sweep


def _variants(value: Any) -> list[dict[str, Any]]:
    """The settings listed one by one (TOML [[variants]] tables, each NAME = VALUE); parsed by the
    declarations. An empty table is the base configuration itself."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise SweepError("variants must be a list of tables ([[variants]] NAME = VALUE)")
    out = []
    for i, table in enumerate(value):
        parsed = {}
        for name, item in table.items():
            p = _param(name)
            parsed[p.name] = _parse(p, item, f"variant {i + 1}, {p.name} {item!r}")
        out.append(parsed)
    return out


def _seeds(value: Any, base: Config, seed_swept: bool) -> tuple[int, ...]:
    """--seeds K: the seeds base.seed .. base.seed + K - 1; a list: those seeds."""
    if value is None:
        return (base.seed,)
    if seed_swept:
        raise SweepError("--seeds and a swept seed contradict each other; give one")
    p = _param("seed")
    if isinstance(value, (list, tuple)):
        seeds = tuple(_parse(p, v, f"seed {v!r}") for v in value)
        if not seeds:
            raise SweepError("the list of seeds is empty")
        return seeds
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SweepError(f"--seeds must be a whole number, at least 1, not {value!r}")
    return tuple(base.seed + i for i in range(value))


def read_toml(path: str | Path) -> dict[str, Any]:
    """A sweep definition from a TOML file: top-level keys of DEFINITION_KEYS ("preset", "config" a
    run's folder or config.json, "seeds", "samples", "sample_seed"), tables [grid] and [random] of
    NAME = [values] or "LOW:HIGH", and a table [base] of parameters set on every trial. SweepError
    (one line) when it cannot be read or holds an unknown key."""
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ModuleNotFoundError:
            raise SweepError("reading a TOML sweep on Python 3.10 needs tomli: pip install tomli") from None
    where = Path(path).expanduser()
    try:
        data = tomllib.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepError(f"sweep file {where} does not exist") from None
    except OSError as exc:
        raise SweepError(f"cannot read sweep file {where}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SweepError(f"sweep file {where} is not valid TOML: {str(exc).splitlines()[0]}") from None
    unknown = [k for k in data if k not in (*DEFINITION_KEYS, "base")]
    if unknown:
        raise SweepError(f"sweep file {where}: unknown key {unknown[0]!r}; known: "
                         f"{', '.join((*DEFINITION_KEYS, 'base'))}")
    for key in ("grid", "random", "base"):  # variants: checked by build
        if key in data and not isinstance(data[key], dict):
            raise SweepError(f"sweep file {where}: {key} must be a table ([{key}])")
    return data


def base_config(preset: str | None, config_file: str | None, base: dict[str, Any] | None) -> Config:
    """The configuration trials start from: a preset's, a recorded run's (its folder or
    config.json), else the default; then `base`'s values. SweepError (one line) when refused."""
    from engine.presets import PRESETS

    if preset and config_file:
        raise SweepError("give --preset or --config, not both")
    if preset:
        if preset not in PRESETS:
            raise SweepError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        if PRESETS[preset].kind != "train":
            raise SweepError(f"preset {preset} trains nothing; a sweep needs a training preset "
                             f"({', '.join(k for k, v in PRESETS.items() if v.kind == 'train')})")
        cfg = PRESETS[preset].config
    elif config_file:
        from fftui.cli import UsageError
        from fftui.record import read_config_file

        try:
            cfg = read_config_file(config_file)
        except UsageError as exc:
            raise SweepError(str(exc).replace("fftui run: ", "")) from None
    else:
        cfg = Config()
    try:
        for key, value in (base or {}).items():
            p = _param(key)
            cfg = cfg.replace(**{p.name: value})
    except ConfigError as exc:
        raise SweepError(f"base: {exc}") from None
    if cfg.iters is None and cfg.epochs == 0:
        raise SweepError("a sweep's trials need an end: set iters or epochs (at least 1)")
    return cfg
