"""What the keys for a stack of layers do: choose the layer every pane shows, evaluate the test error
now, change the width of the layer shown. And what the screen says of them: the layer in the panes'
titles and the status bar, the newest test error, the panes and keys a one-layer run leaves out.

`LayerControl` sits between `fftui.viewing.ViewControl` and `fftui.app.FFApp`, which sets the
attributes it names."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from textual.widget import Widget

from .control import needs_engine
from .history import History
from .viewing import ViewControl
from .widgets.layers import test_error_text


class LayerControl(ViewControl):
    """The app's actions on a stack's layers and its test error. The subclass provides ``history``
    (`fftui.history.History`, or a recording's without layers), ``runner``, ``plots`` and, once
    mounted, ``_pane_widgets``, ``_tabs`` and the footer."""

    history: History
    plots: Any                      # fftui.scheduler.PlotScheduler
    _pane_widgets: dict[str, Widget]
    _layers_shown: tuple = ()

    # -- what is shown --------------------------------------------------------------------------
    def layer_count(self) -> int:
        """The layers of the run shown (1 before the first batch of one layer)."""
        if not hasattr(self.history, "select"):  # a history that shows one layer only
            return 1
        count = getattr(self.history, "layers", 1)
        if count < 2 and self.runner is not None and getattr(self.history, "_last", None) is None:
            config = getattr(self.runner, "config", None)
            count = len(config.layer_widths) if config is not None else 1
        return count

    def pane_count(self) -> int:
        """The panes offered to this run: a one-layer run leaves out the panes for stacks."""
        return sum(1 for spec in self.PANES if spec.layers <= self.layer_count())

    def shown_layer(self) -> int:
        """The layer the panes show (0 = the first)."""
        return min(getattr(self.history, "layer", 0), self.layer_count() - 1)

    def layer_text(self) -> str:
        """"layer 2 of 3" for a stack, "" for one layer."""
        count = self.layer_count()
        return f"layer {self.shown_layer() + 1} of {count}" if count > 1 else ""

    def test_text(self) -> str:
        """The newest test error of the run for the status bar, or what to expect of one ("" when
        the run does not evaluate)."""
        evaluations = getattr(self.history, "evaluations", ())
        if evaluations:
            return test_error_text(evaluations[-1])
        config = getattr(self.runner, "config", None)
        if config is not None and config.evaluate:
            return "test error: after the first epoch (t: now)"
        return ""

    def sync_layers(self) -> None:
        """The titles, tabs and footer for the run's layers: "layer k of L" in the titles of the
        panes that show one layer; the panes for stacks and the layer keys only for a stack; the
        evaluation key only with --evaluate."""
        if not getattr(self, "_mounted", False):
            return
        count, layer = self.layer_count(), self.shown_layer()
        config = getattr(self.runner, "config", None)
        evaluate = bool(config is not None and config.evaluate)
        key = (count, layer, evaluate)
        if key == self._layers_shown:
            return
        self._layers_shown = key
        hidden = set()
        for spec in self.PANES:
            widget = self._pane_widgets.get(spec.id)
            if widget is not None:
                tail = f" · layer {layer + 1} of {count}" if count > 1 and spec.plots and spec.layers < 2 else ""
                widget.border_title = spec.border_title + tail
            offered = count >= spec.layers
            if not offered:
                hidden.add(spec.key_entry().name)
            for tab in self.query(f"#tab-{spec.id}"):
                tab.display = offered
        if count < 2:
            hidden |= {"layer_next", "layer_previous"}
        if not evaluate:
            hidden.add("evaluate")
        from .widgets.footer import KeyFooter

        for footer in self.query(KeyFooter):
            footer.hide(frozenset(hidden))

    # -- actions --------------------------------------------------------------------------------
    def action_layer_next(self) -> None:
        self._step_layer(1)

    def action_layer_previous(self) -> None:
        self._step_layer(-1)

    def action_layer(self, layer: int) -> None:
        """Every pane shows layer ``layer`` (0 = the first)."""
        count = self.layer_count()
        if count < 2:
            self._set_message("one layer: < and > choose a layer of a stack (--widths 1000,1000,1000)", "warning")
            self._refresh_text()
            return
        layer = max(0, min(int(layer), count - 1))
        select = getattr(self.history, "select", None)
        if select is None:
            return
        select(layer)
        self.sync_layers()
        self.plots.hurry()
        self._set_message(f"every pane shows layer {layer + 1} of {count}")
        self._refresh_text()

    def _step_layer(self, by: int) -> None:
        count = self.layer_count()
        self.action_layer((self.shown_layer() + by) % count if count > 1 else 0)

    def layer_commands(self) -> Iterator[tuple[str, str, Callable[[], Any]]]:
        """(title, help, callback) of the command palette for each layer of a stack."""
        count = self.layer_count()
        if count < 2:
            return
        for layer in range(count):
            yield (f"Show layer {layer + 1} of {count}", "Every pane shows this layer of the stack",
                   partial(self.action_layer, layer))

    @needs_engine
    def action_evaluate(self) -> None:
        """The test error now, computed by the engine between two batches (never here)."""
        if not self.runner.config.evaluate:
            self._set_message("no test digits: start with --evaluate to measure the test error", "warning")
        elif not hasattr(self.runner, "evaluate"):
            self._set_message("this run does not train: no test error to measure", "warning")
        else:
            self.runner.evaluate()
            self._set_message("test error: measured between the next two batches")
        self._refresh_text()

    def on_evaluation(self, event: Any) -> None:
        """An evaluation event of the engine: kept with the run (the Layers pane plots it); said on
        the message line when asked for with t."""
        add = getattr(self.history, "add_evaluation", None)
        if add is not None:
            add(event.evaluation)
        if event.message:
            self._set_message(event.message)

    @needs_engine
    def action_width_up(self) -> None:
        self._change_width(up=True)

    @needs_engine
    def action_width_down(self) -> None:
        self._change_width(up=False)

    def _change_width(self, up: bool) -> None:
        """One layer: its width doubled or halved. A stack: the width of the layer shown (every
        layer of the network starts anew)."""
        config = self.runner.pending_config
        if config.widths is None:
            width = config.width * 2 if up else max(2, config.width // 2)
            self._change(width=width)
            return
        widths = list(config.widths)
        k = min(self.shown_layer(), len(widths) - 1)
        widths[k] = widths[k] * 2 if up else max(2, widths[k] // 2)
        self._change(widths=tuple(widths))
