"""What the keys that steer the run do: pause, step, reset, change a parameter, edit them all, run a
preset. Each command goes to the engine's runner and is reported on the status line.

`RunControl` is the base of `fftui.app.FFApp`, which adds the screen: layout, timer, plots.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from textual.app import App

from engine.config import RESET_FIELDS, VIEW_FIELDS, Config, ConfigError

from .screens.editor import EditorScreen
from .screens.presets import PresetScreen
from .widgets.parameters import show_value

if TYPE_CHECKING:  # engine.data imports torch, which the app's first frame does not wait for
    from engine.data import Dataset

Action = TypeVar("Action", bound=Callable[..., None])

# What can get a paused run going again, by the cause of the engine's error (engine.runner.Event).
RECOVERY = {
    "overflow": "the weights are no longer finite, so resuming cannot help: r resets the layer "
                "(lower lr first with [)",
    "memory": "B halves the batch size, W the width; then space resumes",
    "": "[ halves lr, r resets, space resumes",
}


def recovery_hint(cause: str) -> str:
    """The keys that can help after an engine error of this cause ("overflow", "memory", "")."""
    return RECOVERY.get(cause, RECOVERY[""])


def needs_engine(action: Action) -> Action:
    """An action that steers the run: while the data are still loading (no runner yet) it only says
    so on the status line."""
    @functools.wraps(action)
    def guarded(self: RunControl, *args: Any, **kwargs: Any) -> None:
        if self.runner is None:
            self._set_message("still loading the data: the run can be steered once it starts", "warning")
            self._refresh_text()
            return
        action(self, *args, **kwargs)

    return guarded  # type: ignore[return-value]


class RunControl(App):
    """The app's actions on the training run (``runner``: `engine.runner.Runner` or a stand-in with
    its interface). The subclass sets the attributes below and shows the state in `_refresh_text`."""

    runner: Any                            # None while the data load
    dataset: Dataset | None
    preset: str | None
    _requested: tuple[str, float] | None   # the state asked for, and when: shown until reached
    _message: tuple[str, str]              # the status line's message and its kind
    _editor: EditorScreen | None

    def _refresh_text(self) -> None:
        """Show the run's state, parameters and message now."""
        raise NotImplementedError

    def _set_message(self, text: str, kind: str = "info") -> None:
        """The status line's message (one line) and its kind: info, warning or error."""
        self._message = (" ".join(str(text).split()), kind)

    def _change(self, **changes: Any) -> None:
        runner = self.runner
        old = runner.pending_config
        try:
            new = runner.set_params(**changes)
        except ConfigError as exc:
            self._set_message(f"not applied: {exc}", "error")
            self.notify(str(exc), title="not applied", severity="error", markup=False)
            self._refresh_text()
            return
        self._report_change(old, new, list(changes))

    def _report_change(self, old: Config, new: Config, names: Iterable[str]) -> None:
        names = list(names)
        parts = [f"{n} {show_value(getattr(old, n))} → {show_value(getattr(new, n))}" for n in names]
        resets = any(getattr(old, f) != getattr(new, f) for f in RESET_FIELDS)
        what = "network" if len(new.layer_widths) > 1 or len(old.layer_widths) > 1 else "layer"
        when = f"resets the {what} at the next batch" if resets else "applies at the next batch"
        if set(names) <= VIEW_FIELDS:
            when = "applies now"
        text = f"{', '.join(parts)}: {when}"
        self._set_message(text, "warning" if resets else "info")
        if resets:
            self.notify(text, title="reset", severity="warning", timeout=3, markup=False)
        self._refresh_text()

    def _ended(self) -> bool:
        """Whether the run has ended (finished or stopped), said in the status line if so: neither
        space nor n can train it further, r can start it again."""
        state = self.runner.state
        if state not in ("finished", "stopped"):
            return False
        self._set_message(f"the run is {state}; r resets it", "warning")
        self._refresh_text()
        return True

    @needs_engine
    def action_toggle_run(self) -> None:
        state = self.runner.state
        want = "paused" if state == "running" else "running"
        if self._ended():
            return
        self.runner.toggle()
        self._requested = (want, time.monotonic())
        self._refresh_text()

    @needs_engine
    def action_step(self) -> None:
        if self._ended():
            return
        if self.runner.state == "running":
            self.runner.pause()
        self.runner.step()
        self._requested = ("paused", time.monotonic())
        self._set_message("one batch, then paused")
        self._refresh_text()

    @needs_engine
    def action_reset(self) -> None:
        self.runner.reset()
        self._set_message("reset requested: a fresh layer from the seed")
        self._refresh_text()

    @needs_engine
    def action_toggle_mode(self) -> None:
        mode = self.runner.pending_config.mode
        self._change(mode="descent" if mode == "ff" else "ff")

    @needs_engine
    def action_switch_loss(self) -> None:
        loss = self.runner.pending_config.loss
        self._change(loss="logistic" if loss == "linear" else "linear")

    @needs_engine
    def action_lr_up(self) -> None:
        self._change(lr=self.runner.pending_config.lr * 2)

    @needs_engine
    def action_lr_down(self) -> None:
        self._change(lr=self.runner.pending_config.lr / 2)

    @needs_engine
    def action_batch_up(self) -> None:
        self._change(batch_size=self.runner.pending_config.batch_size * 2)

    @needs_engine
    def action_batch_down(self) -> None:
        self._change(batch_size=max(1, self.runner.pending_config.batch_size // 2))

    @needs_engine
    def action_edit(self) -> None:
        def applied(changes: dict | None) -> None:
            if changes:
                self._report_change(old, self.runner.pending_config, list(changes))

        old = self.runner.pending_config
        if self._editor is None:
            self._editor = EditorScreen(old, self._apply_changes)
            self.install_screen(self._editor, "editor")
        else:
            self._editor.load(old)
        self.push_screen("editor", applied)

    def _apply_changes(self, changes: dict[str, Any]) -> Config:
        return self.runner.set_params(**changes)

    @needs_engine
    def action_presets(self) -> None:
        def chosen(name: str | None) -> None:
            if name:
                self.action_preset(name)

        self.push_screen(PresetScreen(), chosen)

    @needs_engine
    def action_preset(self, name: str) -> None:
        """fig1a, fig1b: Theorem 1 at initialisation over the whole data set, in its own screen.
        fig2, fig3: the report's parameters for the run, from a fresh layer at iteration 0."""
        from engine.presets import PRESETS
        from engine.runner import FIXED_FIELDS

        if name in ("fig1a", "fig1b"):
            from .screens.figure1 import Figure1Screen

            assert self.dataset is not None  # a runner exists, so the data have loaded
            self.push_screen(Figure1Screen(name, self.dataset))
            return
        target = PRESETS[name].config
        current = self.runner.pending_config
        changes = {f: getattr(target, f) for f in target.as_dict()
                   if f not in FIXED_FIELDS and getattr(target, f) != getattr(current, f)}
        recorder = getattr(self.runner, "recorder", None)
        if recorder is not None:  # the run that starts here is recorded under the preset's name
            recorder.next_preset = name
        try:
            if changes:
                self.runner.set_params(**changes)
        except ConfigError as exc:
            if recorder is not None:
                recorder.next_preset = None
            self._set_message(f"preset {name} not applied: {exc}", "error")
            self._refresh_text()
            return
        self.runner.reset()
        if self.runner.state != "running":
            self.runner.resume()
        self.preset = name
        text = f"preset {name}: {PRESETS[name].heading()}; the layer was reset"
        self._set_message(text, "warning")
        self.notify(text, title="preset", severity="information", timeout=4, markup=False)
        self._refresh_text()

