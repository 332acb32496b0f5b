"""The two denominators of "sparser" in the app: the valid samples (active before and after the
step) by default, or all N samples of each batch (the report's figures and CSVs) with `a`; the
plots' titles and the summary say which one is shown, and the key's help and hint come from its
one declaration (fftui/keys.py)."""
from __future__ import annotations

import numpy as np

from fftui import keys
from fftui.widgets.plot import FigurePlot
from fftui.widgets.sparsening import denominator_hint
from test_app import fake_app, make_records, run_async, screen_text, settle


def _by_label(plot: FigurePlot) -> dict[str, np.ndarray]:
    return {s.label: np.asarray(s.y) for s in plot.figure.series}


@run_async
async def test_a_switches_the_sparsening_fractions_to_all_samples_of_the_batch_and_back(small_sample):
    records = make_records(30)
    app = fake_app(small_sample, records=records)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        plot = app.query_one("#sparsening-plot0", FigurePlot)
        # over the valid samples: sparser = samples with outcome 1 / samples with outcome >= 0
        valid = [float((r.groups["pos"].actual == 1).sum()) / (r.groups["pos"].actual >= 0).sum() for r in records]
        np.testing.assert_allclose(_by_label(plot)["sparser"], valid, rtol=0, atol=1e-12)
        assert "positives: fraction sparser (of valid)" in screen_text(app)

        await pilot.press("a")
        await settle(pilot)
        assert app.view_options.of_batch
        # over all N samples: the silenced ones count in the denominator (never as sparser)
        of_all = [float((r.groups["pos"].actual == 1).sum()) / r.groups["pos"].actual.size for r in records]
        np.testing.assert_allclose(_by_label(plot)["sparser"], of_all, rtol=0, atol=1e-12)
        assert not np.allclose(valid, of_all)
        text = screen_text(app)
        assert "positives: fraction sparser (of all N)" in text
        last = records[-1].groups["pos"]
        assert f"pos  of all {last.count}: sparser {100 * of_all[-1]:.1f} %" in text
        assert "a: of valid samples" in text  # the hint names the other denominator

        await pilot.press("d")  # actual − predicted over the same denominator
        await settle(pilot)
        theorem = [float(r.groups["pos"].predicted_theorem.sum()) / r.groups["pos"].actual.size for r in records]
        np.testing.assert_allclose(_by_label(plot)["sparser − theorem"], np.subtract(of_all, theorem),
                                   rtol=0, atol=1e-12)
        assert "actual − predicted (of all N)" in screen_text(app)

        await pilot.press("d", "a")
        await settle(pilot)
        assert not app.view_options.of_batch
        np.testing.assert_allclose(_by_label(plot)["sparser"], valid, rtol=0, atol=1e-12)


def test_the_key_is_declared_once_and_its_help_and_hint_follow_the_declaration(monkeypatch):
    (key,) = [k for k in keys.RUN_KEYS if k.action == "denominator"]
    assert (key.keys, key.title) in keys.help_rows(keys.key_table(()))
    from fftui.app import FFApp

    assert any(title == key.title for title, _help, _cb in keys.palette_entries(keys.RUN_KEYS, FFApp))
    assert denominator_hint(False) == f"{key.keys}: of all samples of the batch"
    moved = tuple(k if k.action != "denominator" else type(k)("A", k.action, k.footer, k.title, k.help)
                  for k in keys.RUN_KEYS)
    monkeypatch.setattr(keys, "RUN_KEYS", moved)
    assert denominator_hint(True) == "A: of valid samples"
