"""Parameters declared once: a field added to a copy of the declaration reaches the CLI, the editor,
the Parameters pane, the help sentence, the status bar and validation; every real field round-trips
through the command line and the editor's text; bad values are refused with one line."""
from __future__ import annotations

import asyncio
import dataclasses
import io

import pytest
from rich.console import Console
from textual.app import App
from textual.widgets import Input, Label

from engine.config import FIELD_NAMES, FIXED_FIELDS, PARAMS, RESET_FIELDS, Config, ConfigError, parse_value
from engine.params import number, params_of, reset_sentence
from fftui.cli import UsageError, build_parser, config_from_args, main
from fftui.screens.editor import EditorScreen, editor_rows
from fftui.widgets.parameters import parameters_table
from fftui.widgets.status import config_line


@dataclasses.dataclass(frozen=True)
class Extended(Config):
    """The real configuration plus one throwaway field; Config itself is left as it is."""

    gain: float = number(1.5, "a throwaway gain", low=0, high=4, unit="x", metavar="G", resets=True,
                         status="g", hint="only a test")


EXTENDED = params_of(Extended)


def rendered(table) -> str:
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(table)
    return out.getvalue()


# -- a throwaway field reaches every place ------------------------------------------------------
def test_copy_adds_one_field_and_leaves_the_real_declaration_alone():
    assert [p.name for p in EXTENDED] == list(FIELD_NAMES) + ["gain"]
    assert params_of(Config) == PARAMS and "gain" not in FIELD_NAMES
    assert not hasattr(Config(), "gain")
    assert Extended().gain == 1.5


def test_throwaway_field_in_cli_help_and_parsing(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    parser = build_parser(EXTENDED)
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--help"])
    help_text = capsys.readouterr().out
    assert "--gain G" in help_text
    assert "a throwaway gain, in [0, 4] (default 1.5 x)" in help_text
    cfg = config_from_args(parser.parse_args(["run", "--gain", "2.5", "--lr", "0.01"]), default=Extended())
    assert isinstance(cfg, Extended) and cfg.gain == 2.5 and cfg.lr == 0.01
    with pytest.raises(UsageError) as info:
        config_from_args(parser.parse_args(["run", "--gain", "9"]), default=Extended())
    assert str(info.value) == "fftui run: gain must be at most 4, not 9"
    assert "gain" not in vars(build_parser().parse_args(["run"]))


def test_throwaway_field_in_the_editor_rows():
    rows = {row.name: row for row in editor_rows(Extended(gain=2.0), EXTENDED)}
    assert list(rows) == list(FIELD_NAMES) + ["gain"]
    gain = rows["gain"]
    assert (gain.text, gain.note, gain.suggestions, gain.fixed) == ("2", "resets · only a test · ≥ 0 and ≤ 4",
                                                                    (), False)
    assert "gain" not in {row.name for row in editor_rows(Config())}


class EditorHost(App):
    def __init__(self, screen: EditorScreen) -> None:
        super().__init__()
        self.editor = screen
        self.result: object = "open"

    def on_mount(self) -> None:
        self.push_screen(self.editor, self.editor_closed)

    def editor_closed(self, result) -> None:
        self.result = result


def test_throwaway_field_in_the_editor_screen():
    applied = []

    def apply(changes):
        applied.append(changes)
        return Extended().replace(**changes)

    async def body() -> None:
        app = EditorHost(EditorScreen(Extended(), apply, params=EXTENDED))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            field = app.screen.query_one("#field-gain", Input)
            note = app.screen.query_one("#note-gain", Label)
            assert field.value == "1.5"
            assert str(note.render()) == "resets · only a test · ≥ 0 and ≤ 4"
            field.value = "9"
            await pilot.pause()
            assert str(note.render()) == "gain must be at most 4, not 9"
            await pilot.press("enter")
            assert app.result == "open" and not applied
            field.value = "3"
            await pilot.pause()
            await pilot.press("enter")
            await pilot.pause()
        assert applied == [{"gain": 3.0}] and app.result == {"gain": 3.0}

    asyncio.run(body())


def test_throwaway_field_in_the_parameters_pane():
    text = rendered(parameters_table(Extended(), Extended(gain=2.0), EXTENDED))
    line = next(line for line in text.splitlines() if line.split()[:1] == ["gain"])
    assert line.split() == ["gain", "1.5", "→", "2", "resets"]
    assert "gain" not in rendered(parameters_table(Extended(), Extended(gain=2.0)))


def test_throwaway_field_in_the_help_sentence():
    assert reset_sentence(EXTENDED) == ("Changes apply at the next batch; a change of mode, width, seed, init, "
                                        "normalize, label_value, dtype, widths or gain starts a fresh layer.")
    assert reset_sentence(PARAMS) == ("Changes apply at the next batch; a change of mode, width, seed, init, "
                                      "normalize, label_value, dtype or widths starts a fresh layer.")


def test_throwaway_field_in_the_status_bar():
    now, queued = config_line(Extended(), Extended(gain=3.0, lr=0.002), EXTENDED)
    assert now == "ff · linear · sgd · lr 0.001 · N 128 · n 2000 · g 1.5"
    assert queued == "lr 0.002 · g 3"
    assert config_line(Extended(), Extended(gain=3.0)) == ("ff · linear · sgd · lr 0.001 · N 128 · n 2000", "")


def test_throwaway_field_is_validated():
    with pytest.raises(ConfigError) as info:
        Extended().replace(gain="9")
    assert str(info.value) == "gain must be at most 4, not 9"
    with pytest.raises(ConfigError) as info:
        Extended(gain=-1.0)
    assert str(info.value) == "gain must be at least 0, not -1"
    assert parse_value("gain", " 0.5 ", EXTENDED) == 0.5
    with pytest.raises(ConfigError, match="^unknown parameter 'gain'$"):
        parse_value("gain", "0.5")


# -- the real declaration -----------------------------------------------------------------------
def test_declared_types_match_the_annotations():
    annotation = {"choice": "str", "int": "int", "float": "float", "bool": "bool", "path": "str | None",
                  "ints": "tuple[int, ...] | None", "floats": "tuple[float, ...] | None"}
    types = {f.name: f.type for f in dataclasses.fields(Config)}
    for p in PARAMS:
        want = annotation[p.kind] + (" | None" if p.blank is not None and p.kind == "int" else "")
        assert types[p.name] == want, p.name
        assert p.help and p.flag == "--" + p.name.replace("_", "-")


def test_reset_and_fixed_fields_are_the_ones_the_engine_always_had():
    from engine import runner

    assert FIXED_FIELDS == runner.FIXED_FIELDS == {"device", "data", "data_dir", "evaluate"}
    assert {"mode", "width", "widths", "init", "seed", "normalize", "label_value", "device", "dtype", "data",
            "data_dir", "evaluate"} == RESET_FIELDS


# a value other than the default for every field: (as typed, as the Config holds it)
TYPED = {
    "mode": ("descent", "descent"), "loss": ("logistic", "logistic"), "optimizer": ("ADAM", "adam"),
    "lr": ("0.02", 0.02), "momentum": ("0.5", 0.5), "weight_decay": ("1e-4", 1e-4), "beta1": ("0.8", 0.8),
    "beta2": ("0.99", 0.99), "theta": ("-1.5", -1.5), "batch_size": ("64", 64), "width": ("1_000", 1000),
    "epochs": ("0", 0), "iters": ("40", 40), "seed": ("7", 7), "init": ("kaiming", "kaiming"),
    "normalize": ("Global", "global"), "label_value": ("max", "max"), "device": ("cpu", "cpu"),
    "dtype": ("float64", "float64"),
    "data": ("mnist", "mnist"), "data_dir": ("/no/such/folder", "/no/such/folder"), "smooth": ("50", 50),
    "widths": ("1000,250", (1000, 250)), "layer_lr": ("0.5", (0.5,)), "negatives": ("hard", "hard"),
    "evaluate": ("on", True), "score_layers": ("skip-first", "skip-first"), "readout": ("linear", "linear"),
}
# what a field's value needs beside it (the readout is tested beside the goodness classifier)
NEEDS = {"readout": {"evaluate": True}}
# fields whose rules join others: all at once, a stack of two layers takes two multipliers, and
# negatives and the classifier need ff mode (TYPED's mode is descent)
TOGETHER = {"layer_lr": ("0.5,2", (0.5, 2.0)), "negatives": ("wrong-label", "wrong-label")}


def test_every_field_has_a_round_trip_case():
    assert set(TYPED) == set(FIELD_NAMES)


@pytest.mark.parametrize("name", FIELD_NAMES)
def test_every_field_round_trips_through_the_cli(name):
    text, value = TYPED[name]
    flag = "--" + name.replace("_", "-")
    argv = ["run", flag, text.lower() if name in ("optimizer", "normalize") else text]
    if isinstance(value, bool):  # a switch is a flag without a value
        argv = argv[:2]
    argv += ["--" + k for k in NEEDS.get(name, {})]
    cfg = config_from_args(build_parser().parse_args(argv))
    assert getattr(cfg, name) == value and type(getattr(cfg, name)) is type(value)
    back = {name: getattr(Config(), name), **({"width": Config().width} if name == "widths" else {}),
            **{k: getattr(Config(), k) for k in NEEDS.get(name, {})}}
    assert dataclasses.replace(cfg, **back) == Config()


def test_all_fields_at_once_through_the_cli():
    argv = ["run"]
    typed = {**TYPED, **TOGETHER}
    typed.pop("evaluate")  # ff mode only
    typed.pop("readout")  # with evaluate only
    for name, (text, _) in typed.items():
        flag = "--" + name.replace("_", "-")
        argv += [flag, text.lower() if name in ("optimizer", "normalize") else text]
    cfg = config_from_args(build_parser().parse_args(argv))
    assert cfg.as_dict() == {name: value for name, (_, value) in typed.items()} | {"evaluate": False,
                                                                                          "readout": "none"}


@pytest.mark.parametrize("name", FIELD_NAMES)
def test_every_field_round_trips_through_the_editor_text(name):
    text, value = TYPED[name]
    base = Config().replace(**NEEDS.get(name, {}))
    cfg = base.replace(**{name: text})
    assert getattr(cfg, name) == value and type(getattr(cfg, name)) is type(value)
    shown = {row.name: row.text for row in editor_rows(cfg)}[name]
    assert base.replace(**{name: shown}) == cfg
    default_text = {row.name: row.text for row in editor_rows(base)}[name]
    assert base.replace(**{name: default_text}) == base


# -- bad values: one line, the same words as before ---------------------------------------------
REFUSED = [
    ("lr", "fast", "lr must be a number, not 'fast'"),
    ("lr", "16", "lr must be at most 10, not 16"),
    ("lr", "0", "lr must be positive, not 0"),
    ("lr", "nan", "lr must be a finite number, not nan"),
    ("momentum", "1", "momentum must be in [0, 1), not 1"),
    ("beta2", "1.5", "beta2 must be in [0, 1), not 1.5"),
    ("batch_size", "0", "batch_size must be between 1 and 65536, not 0"),
    ("batch_size", "", "batch_size needs a whole number"),
    ("width", "1", "width must be between 2 and 1000000, not 1"),
    ("width", "2k", "width must be a whole number, not '2k'"),
    ("width", "2.5", "width must be a whole number, not '2.5'"),
    ("epochs", "-1", "epochs must be at least 1 (or 0: until stopped), not -1"),
    ("iters", "-3", "iters must be at least 1, not -3"),
    ("mode", "sideways", "mode must be one of descent, ff, not 'sideways'"),
    ("normalize", "sideways", "normalize must be one of none, global, per-pixel, not 'sideways'"),
    # the bounds in the same words as the others (these read ">= 0" and "in [0, 1)" before)
    ("seed", "-1", "seed must be between 0 and 9223372036854775807, not -1"),
    ("weight_decay", "-0.5", "weight_decay must be at least 0, not -0.5"),
    ("momentum", "-0.5", "momentum must be at least 0, not -0.5"),
]


@pytest.mark.parametrize("name,text,message", REFUSED)
def test_bad_values_refused_with_one_line(name, text, message):
    with pytest.raises(ConfigError) as info:
        Config().replace(**{name: text})
    assert str(info.value) == message
    with pytest.raises(ConfigError) as info:
        parse_value(name, text)
    assert str(info.value) == message


@pytest.mark.parametrize("name,text,message", [r for r in REFUSED if r[1] and r[0] not in ("mode", "normalize")])
def test_bad_flags_exit_2_with_the_same_line(name, text, message, capsys):
    assert main(["run", "--headless", "--data", "sample", "--" + name.replace("_", "-"), text]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"fftui run: {message}"]


def test_rules_across_fields_and_direct_construction():
    with pytest.raises(ConfigError, match="^data_dir cannot be used with data=sample$"):
        Config().replace(data="sample", data_dir="/x")
    with pytest.raises(ConfigError, match="^data_dir cannot be used with data=sample$"):
        Config(data="sample", data_dir="/x")
    with pytest.raises(ConfigError, match="^lr must be a finite number, not '0.1'$"):
        Config(lr="0.1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="^label_value must be one of one, max, not 1$"):
        Config(label_value=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as info:
        Config().replace(nonsense=1)
    assert str(info.value) == "unknown parameter 'nonsense'; known: " + ", ".join(FIELD_NAMES)


# -- parsed once on the way to the engine thread -------------------------------------------------
def test_the_engine_thread_takes_the_config_that_set_params_built(small_sample):
    from engine.runner import Runner, wait_for

    r = Runner(Config(width=32, batch_size=8, iters=10_000), small_sample, start_paused=True).start()
    try:
        new = r.set_params(lr="0.002", epochs=3)
        assert r.pending_config is new and new.lr == 0.002 and new.epochs == 3
        assert wait_for(lambda: r.config is new, 5)
    finally:
        r.stop()
