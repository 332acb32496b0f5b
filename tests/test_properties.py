"""Property tests: random values for every command-line flag and every editor field.

Whatever is typed, the command line answers with exit status 0, 1 or 2 and never a traceback, a
refused value is met with one line, and an accepted value is the number or word the user typed.
The editor never applies a value it refused, and what it applies is what was typed.
"""
from __future__ import annotations

import asyncio
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fftui.cli as cli
from engine.config import PARAMS, Config, ConfigError
from engine.params import Param
from fftui.screens.editor import EditorScreen

# Texts a user might type or a script might pass: edge numbers, junk, other scripts' digits.
EDGE_TEXTS = ["", " ", "  7 ", "nan", "NaN", "inf", "-inf", "+inf", "1e30", "-1e30", "1e300", "1e-320",
              "1e309", "5e-324", "18446744073709551616", "9223372036854775807", "9223372036854775808",
              "-9223372036854775809", "-1", "0", "-0", "0.5", "1.0", "2", "3.7", "1_000", "0x10", "1e3",
              "abc", "on", "off", "none", "None", "true", "∞", "١٢", "12\u00a0", "--", "-", "=", "%d",
              "ff", "descent", "linear", "logistic", "adam", "sgd", "float64", "cpu", "sample"]
VALUE_TEXTS = st.one_of(
    st.sampled_from(EDGE_TEXTS),
    st.integers(-2 ** 70, 2 ** 70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: f"{v:g}"),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6),
)
VALUED = [p for p in PARAMS if p.kind != "bool"]  # --standardize is a switch: it takes no value


def number_typed(text: str) -> float | None:
    """What Python reads in a number as typed (spaces around it allowed), or None: the oracle for
    what an accepted numeric flag must hold, written apart from engine.params."""
    try:
        return float(text.strip())
    except ValueError:
        return None


def assert_accepted_as_typed(p: Param, text: str, value) -> None:
    """An accepted value is the one typed, inside the declared range."""
    if p.kind == "choice":
        assert value == text.strip().lower() and value in p.choices
    elif p.kind == "path":
        assert value == text
    elif p.kind in ("ints", "floats"):
        entries = [number_typed(t) for t in text.split(",")]
        if value is None:  # blank, or one layer (widths of one entry is --width)
            assert (p.blank is not None and text.strip().lower() in ("", "none")) or (
                p.name == "widths" and len(entries) == 1)
            return
        assert isinstance(value, tuple) and len(value) == len(entries)
        for v, typed in zip(value, entries, strict=True):
            assert typed is not None and v == typed and type(v) is (int if p.kind == "ints" else float)
            assert_accepted_as_typed(Param("float", p.default, p.help, low=p.low, high=p.high, low_open=p.low_open,
                                           high_open=p.high_open), str(v), v)
        return
    elif p.kind == "int":
        if value is None:
            assert p.blank is not None and text.strip().lower() in ("", "none")
            return
        assert isinstance(value, int) and not isinstance(value, bool)
        assert value == int(text.strip().replace("_", ""))
    else:
        typed = number_typed(text)
        assert typed is not None and math.isfinite(typed) and value == typed
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        special = any(value == v for v, _ in p.special)
        if p.low is not None and not special:
            assert value > p.low if p.low_open else value >= p.low
        if p.high is not None and not special:
            assert value < p.high if p.high_open else value <= p.high


def assert_one_clean_line(err: str) -> None:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err


@pytest.fixture
def no_run(monkeypatch):
    """main() up to the point where a run would start: the configuration it would run with."""
    seen: list[Config] = []

    def record(*args):
        seen.append(next(a for a in args if isinstance(a, Config)))
        return 0

    monkeypatch.setattr(cli, "_headless", record)
    monkeypatch.setattr(cli, "_app", record)
    return seen


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(p=st.sampled_from(VALUED), text=VALUE_TEXTS, headless=st.booleans(), joined=st.booleans())
def test_any_flag_value_is_taken_as_typed_or_refused_in_one_line(no_run, capsys, p, text, headless, joined):
    no_run.clear()
    argv = ["run", *(["--headless", "--iters", "3"] if headless else []),
            *([f"{p.flag}={text}"] if joined else [p.flag, text])]
    status = cli.main(argv)
    out, err = capsys.readouterr()
    assert status in (0, 2)
    if status == 2:
        assert_one_clean_line(err)
        assert not no_run  # nothing started
        return
    assert err == "" and len(no_run) == 1
    assert_accepted_as_typed(p, text, getattr(no_run[0], p.name))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(st.sampled_from(VALUED), VALUE_TEXTS), min_size=2, max_size=5))
def test_several_flags_together_never_leave_a_bad_configuration(no_run, capsys, pairs):
    no_run.clear()
    argv = ["run", "--headless", "--iters", "2"]
    for p, text in pairs:
        argv += [f"{p.flag}={text}"]
    status = cli.main(argv)
    _, err = capsys.readouterr()
    assert status in (0, 2)
    if status == 2:
        assert_one_clean_line(err)
        return
    cfg = no_run[-1]
    last = {p.name: text for p, text in pairs}  # the last of a repeated flag wins
    for p in VALUED:
        if p.name in last:
            assert_accepted_as_typed(p, last[p.name], getattr(cfg, p.name))
    Config(**cfg.as_dict())  # a configuration that was accepted can be built again from its values


# -- end to end, on a small generated data set ----------------------------------------------------
IMAGES = "train-images-idx3-ubyte"
LABELS = "train-labels-idx1-ubyte"


def write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-mnist")
    rng = np.random.default_rng(3)
    write_idx(folder / IMAGES, rng.integers(0, 256, (96, 28, 28)))
    write_idx(folder / LABELS, np.arange(96) % 10)
    return folder


# The flags that shape a run, with values small enough to run here in a fraction of a second.
def usually(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Mostly values in range (so that runs happen), sometimes anything."""
    return st.one_of(valid, valid, VALUE_TEXTS)


UNIT = st.floats(0, 1).map(repr)
RUN_FLAGS = {
    "--lr": usually(st.floats(1e-6, 10).map(repr)), "--theta": usually(st.floats(-1e4, 1e4).map(repr)),
    "--weight-decay": usually(st.floats(0, 1e3).map(repr)), "--momentum": usually(UNIT),
    "--beta1": usually(UNIT), "--beta2": usually(UNIT), "--seed": usually(st.integers(0, 2 ** 63).map(str)),
    "--mode": usually(st.sampled_from(["ff", "descent"])),
    "--loss": usually(st.sampled_from(["linear", "logistic"])),
    "--optimizer": usually(st.sampled_from(["sgd", "adam"])),
    "--dtype": usually(st.sampled_from(["float32", "float64"])),
    "--init": usually(st.sampled_from(["report", "kaiming"])),
    "--batch-size": st.one_of(st.integers(-3, 200).map(str), VALUE_TEXTS.filter(lambda t: number_typed(t) is None)),
    "--width": st.one_of(st.integers(-3, 300).map(str), VALUE_TEXTS.filter(lambda t: number_typed(t) is None)),
}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chosen=st.dictionaries(st.sampled_from(sorted(RUN_FLAGS)), st.just(None), min_size=1, max_size=4)
       .flatmap(lambda d: st.fixed_dictionaries({k: RUN_FLAGS[k] for k in d})))
def test_a_headless_run_with_random_values_ends_in_0_1_or_2_without_a_traceback(tiny_mnist, capsys, chosen):
    argv = ["run", "--headless", "--iters", "2", "--data", "mnist", "--data-dir", str(tiny_mnist),
            "--device", "cpu", "--keep-samples", "none"]
    for flag, text in chosen.items():
        argv.append(f"{flag}={text}")
    status = cli.main(argv)
    out, err = capsys.readouterr()
    assert status in (0, 1, 2), (argv, status, err)
    assert "Traceback" not in out + err
    if status:
        assert_one_clean_line(err)


# -- the editor -------------------------------------------------------------------------------------
EDITABLE = [p for p in PARAMS if not p.fixed]


def run_editor(dataset, edits: list[tuple[Param, str]]) -> list[tuple[Param, str, Config, Config, bool]]:
    """Type each edit into the editor of an app with a fake engine and press enter; for each, the
    pending configuration before and after and whether the editor closed."""
    from test_app import fake_app

    results = []

    async def body():
        app = fake_app(dataset)
        async with app.run_test(size=(100, 50)) as pilot:
            for p, text in edits:
                if not isinstance(app.screen, EditorScreen):
                    await pilot.press("e")
                    await pilot.pause()
                before = app.runner.pending_config
                field = app.screen.query_one(f"#field-{p.name}")
                shown = field.value
                field.value = text
                await pilot.pause()
                await pilot.press("enter")
                await pilot.pause()
                closed = not isinstance(app.screen, EditorScreen)
                results.append((p, text, before, app.runner.pending_config, closed))
                if not closed:  # put the value back, so that the next edit is judged alone
                    field.value = shown
                    await pilot.pause()

    asyncio.run(body())
    return results


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.sampled_from(EDITABLE), VALUE_TEXTS), min_size=4, max_size=8))
def test_the_editor_applies_what_was_typed_and_nothing_it_refused(small_sample, edits):
    for p, text, before, after, closed in run_editor(small_sample, edits):
        if not closed:  # refused: nothing changed
            assert after == before, (p.name, text)
            continue
        value = getattr(after, p.name)
        changed = {f.name for f in PARAMS if getattr(after, f.name) != getattr(before, f.name)}
        coupled = {"width", "widths"} if p.name in ("width", "widths") else set()  # width is the first layer's
        assert changed <= {p.name} | coupled, (p.name, text, changed)
        if p.kind == "bool":
            assert value in (True, False)
            continue
        if re.fullmatch(r"\s*", text) and p.blank is None and p.kind in ("int", "float"):
            raise AssertionError(f"{p.name}: a blank was applied")
        assert_accepted_as_typed(p, text, value)


def test_the_editor_refuses_known_bad_values(small_sample):
    """The cases that once slipped through, as fixed examples."""
    seed, lr = (next(p for p in PARAMS if p.name == n) for n in ("seed", "lr"))
    results = run_editor(small_sample, [(seed, "1e30"), (seed, "18446744073709551616"), (lr, "nan"),
                                        (lr, "1e309"), (seed, "-1")])
    for p, text, before, after, closed in results:
        assert not closed and after == before, (p.name, text)


def test_oracle_reads_numbers_like_a_user():
    assert number_typed(" 1e3 ") == 1000.0 and number_typed("abc") is None
    with pytest.raises(ConfigError):
        next(p for p in PARAMS if p.name == "seed").parse("1e30")
