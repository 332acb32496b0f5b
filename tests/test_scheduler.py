"""The plot scheduler on its own: fake panes, fake plots whose builds cost what the test says, and a
clock the test moves."""
from __future__ import annotations

from fftui.scheduler import PlotScheduler


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakePlot:
    """Publishing one costs ``cost`` CPU seconds, reported as the app's plots report their builds."""

    def __init__(self, name: str, log: list, scheduler_box: list, cost: float) -> None:
        self.name = name
        self.pending = False
        self.display = True
        self._log = log
        self._box = scheduler_box
        self._cost = cost

    def publish(self) -> None:
        self.pending = False
        self._log.append(self.name)
        self._box[0].spend(self._cost, self._cost)


class FakePane:
    def __init__(self, id: str, plots: list[FakePlot]) -> None:
        self.id = id
        self.plots = plots
        self.fills = 0


class World:
    """Panes whose picture depends on a data version the test bumps."""

    def __init__(self, names=("a", "b"), plots=2, cost=0.001, **kwargs) -> None:
        self.clock = Clock()
        self.log: list[str] = []
        box: list = [None]
        self.panes = [FakePane(n, [FakePlot(f"{n}{i}", self.log, box, cost) for i in range(plots)])
                      for n in names]
        self.version = 0
        self.scheduler = box[0] = PlotScheduler(self.clock, **kwargs)

    def key(self, pane):
        return (self.version, pane.id)

    def fill(self, pane) -> None:
        pane.fills += 1
        for plot in pane.plots:
            plot.pending = True

    def step(self, force: bool = False, panes=None) -> list[str]:
        before = len(self.log)
        self.scheduler.step(self.panes if panes is None else panes, self.key, self.fill, force)
        return self.log[before:]


def test_one_plot_per_step_at_least_gap_apart_oldest_pane_first():
    w = World(gap=0.25, interval=0.5)     # times in binary fractions: exact sums
    assert w.step() == ["a0"]             # a and b never filled: the first is filled
    assert w.step() == []                 # within the gap
    w.clock.now += 0.125
    assert w.step() == []
    w.clock.now += 0.125
    assert w.step() == ["a1"]             # a's second plot before any new fill
    w.clock.now += 0.25
    assert w.step() == ["b0"]
    w.clock.now += 0.25
    assert w.step() == ["b1"]
    assert [p.fills for p in w.panes] == [1, 1]
    w.clock.now += 1.0
    assert w.step() == []                 # nothing changed: nothing filled
    w.version += 1
    assert w.step() == ["a0"]             # both stale: a was filled longest ago
    w.clock.now += 0.25
    assert w.step() == ["a1"]
    w.clock.now += 0.25
    assert w.step() == ["b0"]
    assert [p.fills for p in w.panes] == [2, 2]


def test_building_takes_no_more_cpu_than_the_budget():
    cost, budget, burst, seconds = 0.05, 0.02, 0.1, 100.0
    w = World(names=("a",), plots=1, cost=cost, gap=0.0, budget=budget, burst=burst)
    t0 = w.clock.now
    while w.clock.now - t0 < seconds:
        w.version += 1                    # new data all the time
        w.step()
        w.clock.now += 0.01
    spent = len(w.log) * cost
    # the bucket starts full (burst), refills at `budget`, and the last build may overdraw it once
    assert spent <= burst + budget * seconds + cost
    assert spent >= budget * seconds - cost
    assert w.scheduler.builds == len(w.log) and abs(w.scheduler.cpu_seconds - spent) < 1e-9


def test_a_spent_budget_waits_until_refilled():
    w = World(names=("a",), plots=1, cost=0.3, gap=0.0, budget=0.02, burst=0.1)
    assert w.step() == ["a0"]             # 0.1 in the bucket: one build may overdraw it, to -0.2
    w.version += 1
    w.clock.now += 9.9                    # refilled by 0.198: still in debt
    assert w.step() == []
    w.clock.now += 0.2                    # 10.1 s after the build: 0.202 refilled
    assert w.step() == ["a0"]


def test_hurry_ignores_the_budget_until_every_pane_shown_is_up_to_date():
    w = World(cost=1.0, gap=0.2, budget=0.02, burst=0.1)
    w.step()                              # one expensive build: deep in debt for 45 s
    w.clock.now += 0.01
    assert w.step() == []
    w.scheduler.hurry()                   # the view changed
    published = []
    for _ in range(10):
        w.clock.now += 0.01               # well within the gap, far from refilled
        published += w.step()
    assert published == ["a1", "b0", "b1"]   # one per step, until both panes are drawn since
    assert not w.scheduler.hurrying
    w.version += 1
    w.clock.now += 1.0
    assert w.step() == []                 # the budget applies again


def test_force_draws_everything_then_waits_the_interval():
    w = World(gap=0.25, interval=0.5)
    assert sorted(w.step(force=True)) == ["a0", "a1", "b0", "b1"]
    w.version += 1
    w.clock.now += 0.25
    assert w.step() == []
    w.clock.now += 0.25
    assert w.step() == ["a0"]


def test_force_fills_stale_panes_even_while_a_plot_waits():
    w = World(gap=0.25)
    assert w.step() == ["a0"]             # a1 still waits
    w.version += 1                        # a and b both out of date
    assert sorted(w.step(force=True)) == ["a0", "a1", "b0", "b1"]
    assert [p.fills for p in w.panes] == [2, 1]
    assert not any(w.scheduler.stale(p, w.key(p)) for p in w.panes)


def test_hidden_plots_and_panes_not_shown_are_left_alone():
    w = World(gap=0.0)
    w.panes[0].plots[1].display = False
    shown = [w.panes[0]]
    published = []
    for _ in range(5):
        w.clock.now += 1.0
        published += w.step(panes=shown)
    assert published == ["a0"]
    assert w.panes[1].fills == 0 and w.scheduler.stale(w.panes[1], w.key(w.panes[1]))
    assert not w.scheduler.stale(w.panes[0], w.key(w.panes[0]))
