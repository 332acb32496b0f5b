"""A stack in the app: the history keeps every layer, < and > choose the layer every pane shows, the
Layers pane sets them side by side, t measures the test error through the engine's command queue,
and w changes the width of the layer shown. The chunks come from real short runs of a tiny stack."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine import network
from engine.config import Config
from engine.runner import Runner, wait_for
from engine.stack import StackChunk
from engine.trainer import Trainer
from fftui.app import FFApp
from fftui.history import History
from fftui.widgets.footer import KeyFooter
from test_app import FakeRunner, FixedClock, fake_app, run_async, screen_text, settle, wait_until
from test_deep import literal_classify

STACK = Config(widths=(24, 16, 8), batch_size=16, iters=40, seed=3)


@pytest.fixture(scope="module")
def stack_chunks(small_sample) -> list[StackChunk]:
    """Twenty batches of a three-layer stack, as the trainer ships them."""
    trainer = Trainer(STACK, small_sample)
    chunks = []
    for _ in range(20):
        chunks += trainer.advance()
    chunks += trainer.flush()
    assert all(isinstance(c, StackChunk) for c in chunks) and sum(len(c) for c in chunks) == 20
    return chunks


def layer_values(chunks, name: str) -> np.ndarray:
    """A metric of every batch with the layer as the second axis, from the chunks themselves."""
    return np.concatenate([c.layer_column(name) for c in chunks]).astype(float)


def pooled(chunks, name: str, weight: str, layer: int) -> np.ndarray:
    """A group ratio of a layer over the positives and negatives together: the samples it counts,
    summed over the groups, over the samples it is a fraction of."""
    ratio, count = layer_values(chunks, name)[:, layer], layer_values(chunks, weight)[:, layer]
    return (np.nan_to_num(ratio) * count).sum(axis=1) / count.sum(axis=1)


def test_the_history_keeps_every_layer(stack_chunks):
    history = History(maxlen=12, batches=3)
    history.add(stack_chunks)
    assert history.layers == 3 and len(history) == 12
    np.testing.assert_array_equal(history.iterations(), np.arange(9, 21))
    for layer in range(3):
        for name, group in (("sparser", 0), ("goodness", 1), ("silenced", 0), ("sparser_end", 1),
                            ("agree_theorem_end", 0)):
            want = layer_values(stack_chunks, name)[-12:, layer, group]
            got = history.series(f"{history.groups[group]}.{name}", layer)
            np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)
        np.testing.assert_allclose(history.series("loss", layer), layer_values(stack_chunks, "loss")[-12:, layer],
                                   rtol=1e-6)
    history.select(2)
    assert history.series("pos.sparser").tolist() == history.series("pos.sparser", 2).tolist()
    newest = stack_chunks[-1].layers[2]
    assert history.latest is not None and history.latest.groups["neg"].goodness == pytest.approx(
        float(newest.columns["goodness"][-1, 1]))
    lhs, _ = history.sides("pos")
    want_lhs = np.concatenate([c.layers[2].columns["lhs"][:, 0] for c in stack_chunks])[-3:].ravel()
    np.testing.assert_array_equal(lhs, want_lhs.astype(float))


def test_a_run_with_other_layers_starts_anew(stack_chunks, small_sample):
    history = History()
    history.add(stack_chunks)
    runs = history.runs
    one = Trainer(Config(width=24, batch_size=16, iters=3, seed=3), small_sample)
    chunks = one.advance() + one.advance() + one.flush()
    history.add(chunks)
    assert history.runs == runs + 1 and history.layers == 1 and len(history) == 2
    assert history.series("pos.sparser", 1).size == 0


class ChunkRunner(FakeRunner):
    """FakeRunner fed chunks (a Trainer's) instead of records."""

    def drain(self, limit=None):
        out, self._records = self._records, []
        if out:
            self.iteration = out[-1].last_iteration
        return out


def stack_app(dataset, chunks, cfg: Config = STACK):
    return FFApp(config=cfg, dataset=dataset, runner_factory=lambda c, d: ChunkRunner(c, d, chunks),
                 clock=FixedClock())


@run_async
async def test_the_layer_keys_choose_what_every_pane_shows(small_sample, stack_chunks):
    app = stack_app(small_sample, stack_chunks)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert "layer 1 of 3" in app._status.text
        await pilot.press("greater_than_sign", "2")
        await settle(pilot)
        assert "layer 2 of 3" in app._status.text
        pane = app.query_one("#sparsening")
        assert pane.border_title.endswith("· layer 2 of 3")
        figure = pane.plots[0].figure
        sparser = next(s for s in figure.series if s.label == "sparser")
        np.testing.assert_allclose(sparser.y, layer_values(stack_chunks, "sparser")[:, 1, 0], rtol=1e-6)
        await pilot.press("less_than_sign", "less_than_sign")
        await settle(pilot)
        assert "layer 3 of 3" in app._status.text  # below the first: the last
        theorem = next(s for s in pane.plots[1].figure.series if s.label == "theorem")
        np.testing.assert_allclose(theorem.y, layer_values(stack_chunks, "theorem")[:, 2, 1], rtol=1e-6)
        assert "layer 3 of 3" in screen_text(app)


@run_async
async def test_the_layers_pane_sets_every_layer_side_by_side(small_sample, stack_chunks):
    app = stack_app(small_sample, stack_chunks)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        pane = app.query_one("#layers")
        fixed, end, state, test = (p.figure for p in pane.plots)
        for layer in range(3):
            series = {s.label: s.y for s in fixed.series + end.series + state.series}
            np.testing.assert_allclose(series[f"L{layer + 1} sparser"],
                                       pooled(stack_chunks, "sparser", "valid", layer), rtol=1e-6)
            np.testing.assert_allclose(series[f"L{layer + 1} theorem"],
                                       pooled(stack_chunks, "theorem", "valid", layer), rtol=1e-6)
            np.testing.assert_allclose(series[f"L{layer + 1} end-to-end"],
                                       pooled(stack_chunks, "sparser_end", "valid_end", layer), rtol=1e-6)
            count = layer_values(stack_chunks, "count")[:, layer]
            silenced = layer_values(stack_chunks, "silenced")[:, layer] * count
            np.testing.assert_allclose(series[f"L{layer + 1} silenced"], silenced.sum(axis=1) / count.sum(axis=1),
                                       rtol=1e-6, atol=1e-12)
        assert test.note == "no test error: start with --evaluate"
        text = screen_text(app)
        last = pooled(stack_chunks, "sparser", "valid", 2)[-1]
        assert f"L3 (8): sparser {100 * last:.1f} %" in text


@run_async
async def test_one_layer_looks_as_before_and_says_so(small_sample):
    from test_app import make_records

    app = fake_app(small_sample, records=make_records(20))
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        assert not app.query_one("#tab-layers").display
        footer = app.query_one(KeyFooter)
        shown = {k.name for k in footer._choice(200)[0]}
        assert not shown & {"layer_next", "layer_previous", "evaluate", "view_layers"}
        await pilot.press("greater_than_sign")
        await pilot.pause()
        assert "one layer" in app._message[0] and app.history.layer == 0
        assert "layer 1 of" not in app._status.text
        commands = [c.title for c in app.get_system_commands(app.screen)]
        assert not any(title.startswith("Show layer ") for title in commands)


@run_async
async def test_the_palette_shows_each_layer(small_sample, stack_chunks):
    app = stack_app(small_sample, stack_chunks)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        commands = {c.title: c.callback for c in app.get_system_commands(app.screen)}
        assert [t for t in commands if t.startswith("Show layer ")] == [f"Show layer {k} of 3" for k in (1, 2, 3)]
        commands["Show layer 3 of 3"]()
        await settle(pilot)
        assert "layer 3 of 3" in app._status.text and app.history.shown_layer == 2


@run_async
async def test_w_doubles_the_width_of_the_layer_shown_and_says_the_network_resets(small_sample, stack_chunks):
    app = stack_app(small_sample, stack_chunks)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("greater_than_sign", "w")
        await pilot.pause()
        runner: FakeRunner = app.runner
        assert ("set", {"widths": (24, 32, 8)}) in runner.calls
        assert "resets the network" in app._message[0]


class Events:
    """A recorder that keeps the run's events (engine/runner.py's recorder interface)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, dict]] = []

    def chunk(self, chunk) -> None:
        pass

    def change(self, *args) -> None:
        pass

    def event(self, kind: str, iteration: int, **fields) -> None:
        self.events.append((kind, iteration, fields))

    def checkpoint(self, trainer) -> None:
        pass

    def checkpoint_due(self) -> bool:
        return False


EVALUATED = Config(widths=(16, 8), batch_size=64, iters=14, evaluate=True, seed=2)


@pytest.mark.parametrize("iters", [14, 10])
def test_the_runner_evaluates_every_epoch_and_at_the_end_and_records_it(small_sample, iters):
    recorder = Events()
    runner = Runner(EVALUATED.replace(iters=iters), small_sample, recorder=recorder).start()
    try:
        assert wait_for(lambda: runner.state == "finished", timeout=60)
    finally:
        runner.stop()
    per_epoch = math.ceil((512 - 512 // 5) / 64)  # every fifth digit held out of training
    want = sorted({per_epoch, 2 * per_epoch, iters} - {k for k in (2 * per_epoch,) if k > iters})
    events = [e for e in runner.drain_events() if e.evaluation is not None]
    assert [e.iteration for e in events] == want
    assert all(e.message == "" for e in events)  # not asked for: nothing on the message line
    recorded = [(it, f) for kind, it, f in recorder.events if kind == "evaluation"]
    assert [it for it, _ in recorded] == want
    assert recorded[-1][1]["total"] == 512 // 5 and recorded[-1][1]["wrong"] == events[-1].evaluation.wrong


@run_async
async def test_t_measures_the_test_error_between_batches(small_sample):
    holder = {}

    def factory(cfg, dataset):
        holder["runner"] = Runner(cfg, dataset, start_paused=True, recorder=Events())
        return holder["runner"]

    app = FFApp(config=EVALUATED, dataset=small_sample, runner_factory=factory, clock=FixedClock())
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("n", "n", "n")
        assert await wait_until(pilot, lambda: app.runner.iteration == 3 and len(app.history) == 3)
        assert "test error: after the first epoch" in app._status.text
        await pilot.press("t")
        assert await wait_until(pilot, lambda: bool(app.history.evaluations), timeout=30)
        evaluation = app.history.evaluations[-1]
        trainer = app.runner._trainer
        weights = [w.double() for w in network.weights(trainer)]
        pixels = trainer.test.images.double() / 255.0
        assert evaluation.iteration == 3
        assert evaluation.wrong == literal_classify(weights, pixels, trainer.test.labels)
        shown = (f"test error {100 * evaluation.wrong / (512 // 5):.1f} % after epoch 1 "
                 "(102 held-out digits of the sample)")
        await pilot.pause(0.6)
        assert shown in app._status.text
        assert f"{evaluation.wrong} of 102 digits" in app._message[0]
        recorded = [e for e in app.runner.recorder.events if e[0] == "evaluation"]
        assert recorded[-1][1] == 3 and recorded[-1][2]["wrong"] == evaluation.wrong
        await pilot.press("6")
        await settle_real(pilot)
        test = app.query_one("#layers").plots[3].figure
        assert test.series[0].y.tolist() == [pytest.approx(100 * evaluation.wrong / 102)]


async def settle_real(pilot) -> None:
    for _ in range(3):
        await pilot.pause()
        pilot.app.draw_now()
    await pilot.pause()

