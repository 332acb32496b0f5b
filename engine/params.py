"""What a configuration parameter is: its declaration, and the parsing and checking derived from it.

Every field of :class:`engine.config.Config` is declared once with one of :func:`choice`,
:func:`integer`, :func:`number`, :func:`switch` or :func:`path`. Each returns a ``dataclasses.field``
whose metadata holds a :class:`Param`: type, default, range or choices, unit, help, CLI flag and
metavar, whether a change resets the layer, whether the field is fixed for a runner's lifetime, its
status-bar label and its editor hint. :func:`params_of` reads the declarations of a dataclass back,
in field order; everything else (parsing, range checks and their messages, CLI flags, the editor,
the Parameters pane, the status bar, the help screen) derives from that tuple.
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

KINDS = ("choice", "int", "float", "bool", "path", "ints", "floats")
GROUPS = ("training", "data", "display")


class ConfigError(ValueError):
    """A parameter value that cannot be used; the message is one line meant for the user."""


def format_value(value: Any) -> str:
    """A value as a user would type it: none, on/off, floats in %g, everything else as str."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (tuple, list)):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Param:
    """The declaration of one configuration field.

    kind: "choice", "int", "float", "bool", "path", or "ints"/"floats": a list of whole numbers or of
    numbers, typed comma-separated ("2000,2000"), held as a tuple, at most ``items`` long, each entry
    checked against the range. default: the field's default. help: one line
    (the CLI's help; the editor's note adds choices, hint and range). choices: the allowed words of a
    choice. low/high: bounds of a number (None: unbounded); low_open/high_open: the bound itself is
    excluded. special: values outside the range that are allowed, each with what it means (epochs 0:
    until stopped). blank: when set, None is allowed (typed as a blank or "none") and this says what
    it means. unit: what the number counts (shown in the CLI help). metavar: the CLI's placeholder
    (choices and switches have their own). group: "training" or "data" (the CLI's argument group).
    resets: a change needs a fresh layer. fixed: fixed for a runner's lifetime (other data or
    another device); otherwise the change applies live, at the next batch. view: how the live app
    shows the run, nothing the engine reads: a change never resets and applies at once (group
    "display"). status: the label in the
    status bar's configuration line ("" shows the value alone; None leaves the field out). hint: a
    short note for the editor. name and flag are filled in by :func:`params_of`.
    """

    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    special: tuple[tuple[Any, str], ...] = ()
    blank: str | None = None
    unit: str = ""
    metavar: str = ""
    group: str = "training"
    resets: bool = False
    fixed: bool = False
    view: bool = False
    status: str | None = None
    hint: str = ""
    items: int = 0
    name: str = ""
    flag: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TypeError(f"parameter kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if (self.kind == "choice") != bool(self.choices):
            raise TypeError("choices go with kind 'choice' and only with it")
        if self.group not in GROUPS:
            raise TypeError(f"parameter group must be one of {', '.join(GROUPS)}, not {self.group!r}")
        if self.view and (self.resets or self.fixed or self.group != "display"):
            raise TypeError("a view parameter is in the display group and neither resets nor is fixed")

    # -- the way in ------------------------------------------------------------------------------
    def parse(self, value: Any) -> Any:
        """A user's value (a string as typed, or a value of the field's type) as the field's type,
        checked against the range: the one way a value enters a configuration. Raises ConfigError."""
        typed = self._convert(value)
        self.check(typed)
        return typed

    def _convert(self, value: Any) -> Any:
        name = self.name
        if self.kind in ("ints", "floats"):
            return self._convert_list(value)
        if self.kind == "choice":
            return str(value).strip().lower()
        if self.kind == "path":
            return None if value is None or str(value).strip() == "" else str(value)
        if self.blank is not None and (value is None or
                                       (isinstance(value, str) and value.strip().lower() in ("", "none"))):
            return None
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{name} must be on or off, not {value!r}")
        if self.kind == "int":
            if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
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
        if isinstance(value, bool):  # float
            raise ConfigError(f"{name} must be a number, not {value!r}")
        try:
            return float(value.strip()) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, not {value!r}") from None

    def _convert_list(self, value: Any) -> tuple | None:
        """A comma-separated text, or a list or tuple, as a tuple of the entries' type."""
        if self.blank is not None and (value is None or
                                       (isinstance(value, str) and value.strip().lower() in ("", "none"))):
            return None
        if isinstance(value, str):
            entries: list[Any] = [v.strip() for v in value.split(",")]
        elif isinstance(value, (list, tuple)):
            entries = list(value)
        else:
            entries = [value]
        if not entries or entries == [""]:
            raise ConfigError(f"{self.name} needs at least one value")
        one = dataclasses.replace(self, kind="int" if self.kind == "ints" else "float", blank=None, items=0)
        out = []
        for entry in entries:
            if isinstance(entry, str) and not entry:
                raise ConfigError(f"{self.name} has an empty entry in {value!r}")
            out.append(one._convert(entry))
        return tuple(out)

    # -- checks ----------------------------------------------------------------------------------
    def check(self, value: Any) -> None:
        """Raise ConfigError (one line) unless value has the field's type and lies in its range."""
        name = self.name
        if value is None and (self.blank is not None or self.kind == "path"):
            return
        if self.kind == "choice":
            if value not in self.choices:
                raise ConfigError(f"{name} must be one of {', '.join(self.choices)}, not {value!r}")
            return
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{name} must be true or false, not {value!r}")
            return
        if self.kind == "path":
            if not isinstance(value, (str, os.PathLike)):
                raise ConfigError(f"{name} must be a folder, not {value!r}")
            return
        if self.kind in ("ints", "floats"):
            self._check_list(value)
            return
        if self.kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
            raise ConfigError(f"{name} must be a whole number, not {value!r}")
        if self.kind == "float" and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                     or not math.isfinite(value)):
            raise ConfigError(f"{name} must be a finite number, not {value!r}")
        if any(value == v for v, _ in self.special):
            return
        requirement = self._requirement(value)
        if requirement:
            also = "".join(f" (or {format_value(v)}: {meaning})" for v, meaning in self.special)
            raise ConfigError(f"{name} must be {requirement}{also}, not {format_value(value)}")

    def _check_list(self, value: Any) -> None:
        if not isinstance(value, tuple) or not value:
            raise ConfigError(f"{self.name} must be a non-empty list, not {value!r}")
        if self.items and len(value) > self.items:
            raise ConfigError(f"{self.name} takes at most {self.items} entries, not {len(value)}")
        one = dataclasses.replace(self, kind="int" if self.kind == "ints" else "float", blank=None, items=0)
        for entry in value:
            try:
                one.check(entry)
            except ConfigError as exc:
                raise ConfigError(f"{exc} (an entry of {self.name})") from None

    def _requirement(self, value: float) -> str | None:
        """What the value fails to be, in words, or None when it is in range. A whole-number range
        closed at both ends reads "between a and b"; a crossed closed bound "at least"/"at most"; a
        crossed open bound "positive" (open at 0), else the interval (or "greater/less than")."""
        lo, hi = self.low, self.high
        below = lo is not None and (value <= lo if self.low_open else value < lo)
        above = hi is not None and (value >= hi if self.high_open else value > hi)
        if not (below or above):
            return None
        if self.kind == "int" and lo is not None and hi is not None and not (self.low_open or self.high_open):
            return f"between {format_value(lo)} and {format_value(hi)}"
        if below and not self.low_open:
            return f"at least {format_value(lo)}"
        if above and not self.high_open:
            return f"at most {format_value(hi)}"
        if below and lo == 0:
            return "positive"
        if self.interval():
            return "in " + self.interval()
        return f"greater than {format_value(lo)}" if below else f"less than {format_value(hi)}"

    # -- texts -----------------------------------------------------------------------------------
    def interval(self) -> str:
        """A range bounded on both sides in interval notation, e.g. "[0, 1)"; else ""."""
        if self.low is None or self.high is None:
            return ""
        return (f"{'(' if self.low_open else '['}{format_value(self.low)}, "
                f"{format_value(self.high)}{')' if self.high_open else ']'}")

    def range_text(self) -> str:
        """The range for a reader: "1 to 65536" (whole numbers, closed), "> 0 and ≤ 10", "≥ 1"."""
        lo, hi = self.low, self.high
        if self.kind == "int" and lo is not None and hi is not None and not (self.low_open or self.high_open):
            return f"{format_value(lo)} to {format_value(hi)}"
        parts = []
        if lo is not None:
            parts.append(f"{'>' if self.low_open else '≥'} {format_value(lo)}")
        if hi is not None:
            parts.append(f"{'<' if self.high_open else '≤'} {format_value(hi)}")
        return " and ".join(parts)

    def choice_texts(self) -> tuple[str, ...]:
        """The words a user may type: a choice's words, on/off for a switch, else none."""
        if self.kind == "choice":
            return self.choices
        if self.kind == "bool":
            return ("on", "off")
        return ()

    def note(self) -> str:
        """The editor's note: fixed, or resets · choices · hint · range · special values · blank."""
        if self.fixed:
            return "fixed for this run"
        parts = [" | ".join(self.choice_texts()), self.hint, self.range_text()]
        parts += [f"{format_value(v)}: {meaning}" for v, meaning in self.special]
        if self.blank is not None and self.kind != "path":
            parts.append(f"blank: {self.blank}")
        note = " · ".join(p for p in parts if p)
        if self.resets:
            note = f"resets · {note}" if note else "resets the layer"
        return note

    def mark(self) -> str:
        """The Parameters pane's mark: "fixed", "resets", "view" or ""."""
        return "fixed" if self.fixed else ("resets" if self.resets else ("view" if self.view else ""))


def declare(kind: str, default: Any, help: str, **meta: Any) -> Any:
    """A dataclass field carrying its declaration (see Param for the keywords)."""
    return dataclasses.field(default=default, metadata={"param": Param(kind, default, help, **meta)})


def choice(choices: tuple[str, ...], default: str, help: str, **meta: Any) -> Any:
    """A field that takes one of a few words."""
    return declare("choice", default, help, choices=tuple(choices), **meta)


def integer(default: int | None, help: str, **meta: Any) -> Any:
    """A whole-number field (None allowed when ``blank`` says what it means)."""
    return declare("int", default, help, **meta)


def number(default: float, help: str, **meta: Any) -> Any:
    """A finite floating-point field."""
    return declare("float", default, help, **meta)


def switch(default: bool, help: str, **meta: Any) -> Any:
    """An on/off field (a store-true flag on the command line)."""
    return declare("bool", default, help, **meta)


def path(help: str, **meta: Any) -> Any:
    """A folder; None (blank) by default."""
    return declare("path", None, help, **meta)


_DECLARED: dict[type, tuple[Param, ...]] = {}


def params_of(cls: type) -> tuple[Param, ...]:
    """The declarations of a dataclass's fields, in field order, with name and flag filled in.
    Raises TypeError for a field without a declaration or whose default is out of its own range."""
    if cls not in _DECLARED:
        _DECLARED[cls] = _read_declarations(cls)
    return _DECLARED[cls]


def _read_declarations(cls: type) -> tuple[Param, ...]:
    out = []
    for f in dataclasses.fields(cls):
        declared = f.metadata.get("param")
        if not isinstance(declared, Param):
            raise TypeError(f"{cls.__name__}.{f.name} has no parameter declaration")
        p = dataclasses.replace(declared, name=f.name, flag=declared.flag or "--" + f.name.replace("_", "-"))
        try:
            p.check(p.default)
        except ConfigError as exc:
            raise TypeError(f"{cls.__name__}.{f.name}: the default is refused: {exc}") from None
        out.append(p)
    return tuple(out)


def find(params: Iterable[Param], name: str) -> Param:
    """The declaration called name; ConfigError("unknown parameter ...") when there is none."""
    for p in params:
        if p.name == name:
            return p
    raise ConfigError(f"unknown parameter {name!r}")


def reset_sentence(params: Iterable[Param]) -> str:
    """The help screen's sentence on when a change starts a fresh layer (fixed fields left out)."""
    names = [p.name for p in params if p.resets and not p.fixed]
    if not names:
        return "Changes apply at the next batch."
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return f"Changes apply at the next batch; a change of {listed} starts a fresh layer."
