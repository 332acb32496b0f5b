"""Where the grid of every plotting pane fits: for each terminal width, the fewest rows it needs.

    python bench/grid_fit.py [--widths 100:241:10] [--batches 200] [--mode ff]

How it measures. Real training steps on the shipped sample (the default configuration: ff mode,
N = 128, n = 2000, so two groups and the longest summaries) make the records; the app shows them
(a stand-in runner hands them over, paused) in the grid, at each terminal size tried. A size
passes when, for every plotting pane:

- its border title is whole on the screen (read back from the app's SVG export);
- every line of its summary lies inside the pane: the summary is as tall as its text wraps to at
  its width, and its last row is above the pane's bottom border;
- every plot it shows lies inside the pane and is usable: it drew data, its title row shows the
  whole title, and its frame holds at least `MIN_ROWS` rows and `MIN_COLS` columns between the axes.

For each width it finds the fewest rows that pass (bisection: more rows never hurt) and prints
the table; `fftui.app.FFApp.GRID_SIZES` takes corners of this staircase. The grid with the side
panes needs the same plus `FFApp.SIDE_WIDTH` columns. Rerun it when a pane's summary or plots
change shape.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIN_ROWS = 5    # rows of data between the plot's top and bottom frame: three y ticks or more
MIN_COLS = 20   # columns of data between the axes: 40 braille dots, x ticks apart


class StillRunner:
    """The runner's interface, paused, handing over fixed records once."""

    def __init__(self, config, records) -> None:
        self.config = self.pending_config = config
        self.state = "paused"
        self.iteration = records[-1].iteration if records else 0
        self.dropped = 0
        self._records = list(records)

    def start(self):
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.state = "stopped"

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def toggle(self) -> None: ...

    def step(self) -> None: ...

    def reset(self) -> None: ...

    def drain(self, limit=None):
        out, self._records = self._records, []
        return out

    def drain_events(self):
        return []


def train_records(mode: str, batches: int):
    from engine.config import Config
    from engine.data import load_dataset
    from engine.trainer import Trainer

    dataset = load_dataset("sample", device="cpu")
    config = Config(mode=mode, device="cpu", data="sample")
    trainer = Trainer(config, dataset)
    return config, dataset, [trainer.step() for _ in range(batches)]


def problems(app) -> list[str]:
    """What does not fit in the app's grid as it is on screen now (empty: everything fits)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_app import screen_text

    rows = screen_text(app).splitlines()
    out = []
    for pane in app.panes:
        if not pane.display:
            out.append(f"{pane.id}: hidden")
            continue
        box, inner = pane.region, pane.content_region
        if box.y >= len(rows) or pane.border_title not in rows[box.y]:
            out.append(f"{pane.id}: title cut")
        summary = pane.query_one(".summary")
        need = summary.get_content_height(inner.size, app.size, summary.size.width) if summary.size.width else 0
        if summary.region.height < need or summary.region.bottom > inner.bottom:
            out.append(f"{pane.id}: summary needs {need} rows, shows {inner.bottom - summary.region.y}")
        for plot in pane.plots:
            if not plot.display:
                continue
            lines = [s.text for s in plot._current_strips()]
            if plot.region.height <= 0 or plot.region.bottom > inner.bottom:
                out.append(f"{plot.id}: below the pane")
                continue
            if plot.figure.title and not (lines and plot.figure.title in lines[0]):
                out.append(f"{plot.id}: title cut")
            top = next((i for i, line in enumerate(lines) if "┌" in line), None)
            bottom = next((i for i, line in enumerate(lines) if "└" in line), None)
            if top is None or bottom is None:
                out.append(f"{plot.id}: no frame")
                continue
            data_rows, data_cols = bottom - top - 1, lines[top].count("─")
            if data_rows < MIN_ROWS or data_cols < MIN_COLS:
                out.append(f"{plot.id}: {data_cols}x{data_rows} cells of data")
    return out


async def measure(widths: list[int], mode: str, batches: int, low: int = 20, high: int = 80) -> dict[int, int | None]:
    from fftui.app import FFApp

    config, dataset, records = train_records(mode, batches)

    class Probe(FFApp):
        GRID_SIZES = ((10**6, 10**6),)   # never automatic: the probe sets the grid itself

    app = Probe(config=config, dataset=dataset, runner_factory=lambda c, d: StillRunner(c, records))

    async def fits(width: int, height: int) -> bool:
        await pilot.resize_terminal(width, height)
        await pilot.pause()
        app.view = "grid"
        for _ in range(4):   # a draw can change the summaries' heights: draw until it settles
            await pilot.pause()
            app.draw_now()
        await pilot.pause()
        return not problems(app)

    found: dict[int, int | None] = {}
    async with app.run_test(size=(widths[0], high)) as pilot:
        while app.runner._records:
            await pilot.pause(0.05)
        for width in widths:
            if not await fits(width, high):
                found[width] = None
                continue
            lo, hi = low, high          # fits(hi) holds; find the least height that fits
            while lo < hi:
                mid = (lo + hi) // 2
                if await fits(width, mid):
                    hi = mid
                else:
                    lo = mid + 1
            found[width] = hi
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="100:241:10", help="start:stop:step of the widths tried")
    parser.add_argument("--batches", type=int, default=200, help="training steps behind the records")
    parser.add_argument("--mode", default="ff", choices=("ff", "descent"))
    args = parser.parse_args()
    start, stop, step = (int(v) for v in args.widths.split(":"))
    found = asyncio.run(measure(list(range(start, stop, step)), args.mode, args.batches))
    print(f"grid fit, {args.mode} mode, {args.batches} batches; min plot {MIN_COLS}x{MIN_ROWS} cells of data")
    print("columns  fewest rows")
    for width, height in found.items():
        print(f"{width:7d}  {height if height is not None else 'never (too narrow)'}")


if __name__ == "__main__":
    main()
