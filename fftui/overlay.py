"""The ``o`` key: pick a recorded run of the store to draw beside the run shown (live or recorded) in
the Sparsening and Sparsity panes (fftui/widgets/compare.py), or take the overlays away.

The runs overlaid are the history's ``others``; a run picked is read in a thread (its summary and
kept arrays), then joins them in the app's thread. Several may be overlaid; each is named in the
legends by its run name (without its date where the names stay apart). Each shows the layer the
panes show (`>`/`<`, fftui/layering.py; the last of its own where it has fewer)."""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

REMOVE = "remove"  # the option that takes every overlay away


class OverlayScreen(ModalScreen[str | None]):
    """Lists runs as (folder, one line); returns the chosen folder as text, REMOVE to take every
    overlay away (offered when `overlaid` is not zero), or None when closed."""

    AUTO_FOCUS = "OptionList"
    BINDINGS = [Binding("escape,q,o", "cancel", "Close", id="overlay.close")]
    DEFAULT_CSS = """
    OverlayScreen { align: center middle; }
    OverlayScreen > Vertical { width: 100; max-width: 95%; height: auto; border: round $accent;
                               background: $surface; padding: 0 1; }
    OverlayScreen OptionList { height: auto; max-height: 16; }
    """

    def __init__(self, runs: list[tuple[Path, str]], overlaid: int = 0) -> None:
        super().__init__()
        self.runs = runs
        self.overlaid = overlaid

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Recorded runs, newest first: enter draws one beside this run in Sparsening and "
                         "Sparsity; esc closes")
            options = [Option(line, id=str(folder)) for folder, line in self.runs]
            if self.overlaid:
                options.insert(0, Option(f"take away the {self.overlaid} run(s) overlaid", id=REMOVE))
            yield OptionList(*options)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


def run_line(entry: Any) -> str:
    """One run of the list: name, status, iterations, mode and loss."""
    reader = entry.reader
    cfg = reader.config.get("config") or {}
    return (f"{entry.name}  {entry.status} · {reader.info.get('iteration', 0):,} iterations · "
            f"{cfg.get('mode', '?')} {cfg.get('loss', '?')}")


def pick_overlay(app: Any) -> None:
    """Show the store's readable runs (not the one shown) for the user to pick one to overlay."""
    from engine.store import StoreError
    from engine.store.catalog import list_runs

    try:
        entries = list_runs()
    except StoreError as exc:
        _say(app, str(exc), "error")
        return
    shown = getattr(getattr(app, "run_reader", None), "folder", None)
    if shown is None:  # the live app: the run it records now is not one to overlay
        shown = getattr(getattr(getattr(app, "runner", None), "recorder", None), "folder", None)
    history = app.history
    others = list(getattr(history, "others", []))
    taken = {o.run.folder for o in others}
    runs = [(e.folder, run_line(e)) for e in entries
            if e.reader is not None and not _same(e.folder, shown) and e.folder not in taken]
    if not runs and not others:
        _say(app, "no recorded run to overlay (fftui runs lists the store's)", "warning")
        return

    def chosen(choice: str | None) -> None:
        if choice == REMOVE:
            history.others = []
            history.version += 1
            _say(app, "overlays taken away")
        elif choice:
            _read(app, Path(choice))

    app.push_screen(OverlayScreen(runs, len(others)), chosen)


def _same(folder: Path, other: Path | None) -> bool:
    return other is not None and folder.resolve() == Path(other).resolve()


def _say(app: Any, text: str, kind: str = "info") -> None:
    app._set_message(text, kind)
    app._refresh_text()


def _read(app: Any, folder: Path) -> None:
    """Read the run in a thread, then add it to the history's overlays in the app's thread."""
    from engine.store import RunReader, StoreError

    from .recording import RecordedHistory

    _say(app, f"reading {folder.name}…")

    def deliver(*args: Any) -> None:
        if app.is_running:
            with contextlib.suppress(RuntimeError):  # the app has ended
                app.call_from_thread(*args)

    def work() -> None:
        try:
            other = RecordedHistory(RunReader(folder))
        except StoreError as exc:
            deliver(_say, app, f"not overlaid: {exc}", "error")
            return
        deliver(_add, app, other)

    threading.Thread(target=work, name="fftui-overlay", daemon=True).start()


def _add(app: Any, other: Any) -> None:
    from .recording import short_names

    history = app.history
    other.select(getattr(history, "layer", 0))  # a stack's: the layer the panes show (History.select)
    others = [*getattr(history, "others", []), other]
    shown = getattr(getattr(app, "run_reader", None), "name", None)  # a recording's own name counts too
    names = [*([shown] if shown else []), *(o.run.name for o in others)]
    for run, label in zip(others, short_names(names)[len(names) - len(others):], strict=True):
        run.label = label
    history.others = others
    history.version += 1
    app.plots.hurry()
    _say(app, f"overlaid: {other.label} ({other.rows:,} batches) in Sparsening and Sparsity; o again to change")
