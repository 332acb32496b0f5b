"""The status bar: what runs, on what data, how fast, and whether it is running."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget

from engine.config import PARAMS, Config
from engine.params import Param

STATE_STYLE = {
    "running": ("▶ running", "bold $success"),
    "paused": ("⏸ paused", "bold $warning"),
    "finished": ("■ finished", "bold $accent"),
    "error": ("✖ error", "bold $error"),
    "stopped": ("■ stopped", "dim"),
}


@dataclass(frozen=True)
class StatusInfo:
    state: str
    requested: str | None
    config: Config
    pending: Config
    data: str
    sample: bool
    device: str
    epoch: int | None
    iteration: int
    total: int | None
    rate: float | None
    dropped: int
    message: str = ""
    message_kind: str = "info"
    data_size: int | None = None    # images in the data set: a batch never holds more
    recording: str = ""             # the run's folder name, or "recording stopped: REASON"
    layer: str = ""                 # a stack's layer the panes show: "layer 2 of 3"
    test: str = ""                  # the newest test error: "test error 4.2 % after epoch 3 (...)"


def _value(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def batch_in_use(config: Config, data_size: int | None) -> str:
    """The batch as the engine trains on it: ``min(batch_size, data_size)`` images a batch (the
    batcher slices one epoch's permutation of the data set, engine/inputs.py); in ff mode that many
    positives and as many negatives (the same images with wrong labels). The requested size follows
    when the data set holds fewer images: ``5000 pos + 5000 neg (65536 asked)``."""
    n = config.batch_size if data_size is None else max(1, min(config.batch_size, data_size))
    text = f"{n} pos + {n} neg" if config.mode == "ff" else str(n)
    if n < config.batch_size:
        text += f" ({config.batch_size} asked)"
    return text


def config_line(config: Config, pending: Config, params: Sequence[Param] = PARAMS,
                data_size: int | None = None) -> tuple[str, str]:
    """The status bar's configuration line as two strings: the parameters that declare a status
    label, each as label and value (the batch size as `batch_in_use` when ``data_size`` is given;
    a stack's width as every layer's units, ``n 64,32,16``, not the first layer's alone);
    and the queued changes of any parameter, as requested ("" when none)."""
    def shown(p: Param, cfg: Config, label: str | None) -> str:
        if p.name == "batch_size" and cfg is config and data_size is not None:
            value = batch_in_use(config, data_size)
        elif p.name == "width" and cfg.widths is not None:   # a stack: every layer's units
            value = ",".join(map(str, cfg.layer_widths))
        else:
            value = _value(getattr(cfg, p.name))
        return f"{label} {value}" if label else value

    listed = [p for p in params if p.status is not None]
    changed = [p for p in listed if getattr(pending, p.name) != getattr(config, p.name)]
    changed += [p for p in params if p.status is None and getattr(pending, p.name) != getattr(config, p.name)]
    return (" · ".join(shown(p, config, p.status) for p in listed),
            " · ".join(shown(p, pending, p.status or p.name) for p in changed))


def status_text(info: StatusInfo, styles: dict[str, str], params: Sequence[Param] = PARAMS) -> Text:
    label, style = STATE_STYLE.get(info.state, (info.state, "bold"))
    text = Text(no_wrap=True, overflow="ellipsis")   # a long line ends in …, the next lines stay
    text.append(f" {label} ", style=styles.get(style, style))
    if info.requested and info.requested != info.state:
        text.append(f"→ {info.requested} ", style="bold")
    if info.layer:
        text.append(f" {info.layer} ·", style="bold")
    epoch = "–" if info.epoch is None else str(info.epoch)
    rate = "–" if info.rate is None else f"{info.rate:.1f}"
    total = "" if info.total is None else f"/{info.total:,}"
    text.append(f" epoch {epoch} · it {info.iteration:,}{total} · {rate} batch/s · dropped ")
    text.append(f"{info.dropped:,}", style=styles.get("bold $warning", "bold") if info.dropped else "")
    text.append("\n ")
    now, queued = config_line(info.config, info.pending, params, info.data_size)
    text.append(now)
    if queued:
        text.append("  → " + queued, style="bold")
        text.append(" at next batch", style="dim")
    if info.test:
        text.append("\n ")
        text.append(info.test, style="bold")
        text.append(" · data ", style="bold")
    else:
        text.append("\n data ", style="bold")
    text.append(info.data)
    if info.sample:
        text.append(" · not full MNIST", style=styles.get("bold $warning", "bold"))
    text.append(f" · device {info.device}")
    if info.recording:
        stopped = info.recording.startswith("recording stopped")
        text.append(" · ")
        text.append(info.recording, style=styles.get("bold $error", "bold") if stopped else "dim")
    text.append("\n ")
    kind_style = {"error": "bold $error", "warning": "bold $warning"}.get(info.message_kind)
    message = info.message or "F1/? help · e edit parameters · ctrl+p commands"
    text.append(message, style=styles.get(kind_style, "bold") if kind_style else "italic")
    return text


class StatusBar(Widget):
    """Four lines, drawn straight to strips; rebuilt only when the information changes."""

    DEFAULT_CSS = """
    StatusBar { height: 4; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._last: StatusInfo | None = None
        self._text = Text("")
        self._strips: list[Strip] | None = None
        self._strips_key: tuple | None = None

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, _theme) -> None:
        if self._last is not None:
            self._text = status_text(self._last, self._styles())
        self._strips = None
        self.refresh()

    @property
    def text(self) -> str:
        return self._text.plain

    def show(self, info: StatusInfo) -> bool:
        if info == self._last:
            return False
        self._last = info
        self._text = status_text(info, self._styles())
        self._strips = None
        self.refresh()
        return True

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.visual_style.rich_style
        key = (width, self.size.height, base)
        if self._strips is None or key != self._strips_key:
            console = self.app.console
            options = console.options.update_width(max(1, width))
            lines = console.render_lines(self._text, options, style=base, pad=True)
            self._strips = [Strip(line, width) for line in lines]
            self._strips_key = key
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width, base)

    def _styles(self) -> dict[str, str]:
        variables = self.app.theme_variables
        out = {}
        for token, name in (("bold $success", "success"), ("bold $warning", "warning"),
                            ("bold $error", "error"), ("bold $accent", "accent")):
            color = variables.get(name)
            out[token] = f"bold {color}" if color else "bold"
        return out
