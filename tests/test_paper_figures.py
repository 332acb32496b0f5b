"""The presets' figures as PNG and SVG (fftui.headless.paper): the files are valid, what is drawn is
the CSV's data (the mean over seeds and its ± sample sd band, computed here with the statistics
module), and without matplotlib one line says how to install it while the text outputs are written."""
from __future__ import annotations

import csv
import statistics
import struct
import sys
import xml.etree.ElementTree as ET

import pytest

from fftui.cli import main
from fftui.headless import paper

pytest.importorskip("matplotlib")


def read_csv(path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text().splitlines()))


@pytest.fixture
def drawn(monkeypatch):
    """Every Figure the presets build, kept for the test (they are closed after saving, their data stay)."""
    figures = []
    real = paper.build

    def keep(*args, **kwargs):
        fig = real(*args, **kwargs)
        figures.append(fig)
        return fig

    monkeypatch.setattr(paper, "build", keep)
    return figures


def curves(ax) -> dict[str, tuple[list[float], list[float]]]:
    """The labelled lines of an axes: {label: (x, y)} (the 50 % guide and per-seed dots are unlabelled
    or "each seed")."""
    return {ln.get_label(): (list(map(float, ln.get_xdata())), list(map(float, ln.get_ydata())))
            for ln in ax.get_lines() if not ln.get_label().startswith("_") and ln.get_label() != "each seed"}


def band_at(collection, x: float) -> tuple[float, float]:
    """The lowest and highest y of a fill_between band at x."""
    ys = [float(v[1]) for path in collection.get_paths() for v in path.vertices if abs(v[0] - x) < 1e-9]
    return min(ys), max(ys)


def assert_png_and_svg(folder, name):
    png = (folder / f"{name}.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 400 and height > 300
    root = ET.parse(folder / f"{name}.svg").getroot()
    assert root.tag.endswith("svg")


def test_fig3_with_three_seeds_draws_the_csv_mean_and_sd_band(tmp_path, drawn):
    out = tmp_path / "f3"
    assert main(["run", "--headless", "--preset", "fig3", "--data", "sample", "--iters", "12", "--width", "200",
                 "--seeds", "3", "--out", str(out), "--quiet"]) == 0
    assert_png_and_svg(out, "fig3")
    import matplotlib

    assert matplotlib.get_backend().lower() == "agg"
    (fig,) = drawn
    rows = read_csv(out / "fig3.csv")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["A: positives", "B: negatives"]
    assert "ratio over all N samples of the batch" in panels[0].get_ylabel()
    legend = fig.legends[0]
    assert "band ± 1 sample sd (ddof = 1)" in legend.get_title().get_text()
    for ax, group in zip(panels, ("pos", "neg"), strict=True):
        lines = curves(ax)
        assert list(lines) == ["actually sparser", "Theorem 2 (predicted sparser)"]
        for (label, (x, y)), column, band in zip(lines.items(), ("sparser", "theorem2"), ax.collections, strict=True):
            assert x == list(range(1, 13)), label
            for it, value in zip(x, y, strict=True):
                seeds = [100 * float(r[f"{group}_{column}"]) for r in rows if int(r["iteration"]) == it]
                assert len(seeds) == 3
                mean, sd = statistics.mean(seeds), statistics.stdev(seeds)
                assert value == pytest.approx(mean, abs=1e-3), (label, it)
                low, high = band_at(band, it)
                assert low == pytest.approx(mean - sd, abs=1e-3) and high == pytest.approx(mean + sd, abs=1e-3)


def test_fig2_one_seed_draws_its_csv_without_a_band(tmp_path, drawn):
    out = tmp_path / "f2"
    assert main(["run", "--headless", "--preset", "fig2", "--data", "sample", "--iters", "8", "--width", "32",
                 "--out", str(out), "--quiet"]) == 0
    assert_png_and_svg(out, "fig2")
    (fig,) = drawn
    (ax,) = fig.axes
    rows = read_csv(out / "fig2.csv")
    lines = curves(ax)
    assert list(lines) == ["actually sparser", "Theorem 1 (predicted sparser)"]
    for (_, (x, y)), column in zip(lines.items(), ("sparser", "theorem1"), strict=True):
        assert x == [float(r["iteration"]) for r in rows]
        assert y == pytest.approx([100 * float(r[column]) for r in rows], abs=1e-3)
    assert not ax.collections and fig.legends[0].get_title().get_text() == ""


def test_fig1b_draws_the_mean_ratio_per_batch_size_on_a_log2_axis(tmp_path, drawn):
    out = tmp_path / "f1b"
    assert main(["run", "--headless", "--preset", "fig1b", "--data", "sample", "--seeds", "2", "--out", str(out),
                 "--quiet"]) == 0
    assert_png_and_svg(out, "fig1b")
    (fig,) = drawn
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and "log₂" in ax.get_xlabel()
    rows = read_csv(out / "fig1b.csv")
    (x, y), = curves(ax).values()
    sizes = [2, 4, 8, 16, 32, 64, 128]
    assert x == sizes
    for n, value in zip(sizes, y, strict=True):
        ratios = [100 * int(r["satisfied"]) / int(r["samples"]) for r in rows if int(r["batch_size"]) == n]
        assert value == pytest.approx(statistics.mean(ratios), abs=1e-9)
        low, high = band_at(ax.collections[0], n)
        assert high - low == pytest.approx(2 * statistics.stdev(ratios), abs=1e-9)


def test_fig1a_draws_the_histograms_of_the_csv_sides(tmp_path, drawn):
    """Counts per bin recounted here from the CSV's LHS and RHS (6 significant digits: a value on a
    bin's edge may fall on the other side, so a few may move)."""
    out = tmp_path / "f1a"
    assert main(["run", "--headless", "--preset", "fig1a", "--data", "sample", "--out", str(out), "--quiet"]) == 0
    assert_png_and_svg(out, "fig1a")
    (fig,) = drawn
    (ax,) = fig.axes
    rows = read_csv(out / "fig1a.csv")
    lines = curves(ax)
    assert list(lines) == ["LHS = |h|₁ / |h|₂", "RHS = P / Q"]
    for (x, y), side in zip(lines.values(), ("lhs", "rhs"), strict=True):
        half = (x[1] - x[0]) / 2
        values = [float(r[side]) for r in rows if r[side]]
        mine = [sum(1 for v in values if c - half <= v < c + half) for c in x]
        assert sum(abs(a - b) for a, b in zip(mine, y, strict=True)) <= 4
        assert sum(y) >= 0.98 * len(values)  # the 0.5th to 99.5th percentiles are drawn


def test_without_matplotlib_one_line_says_how_to_install_and_the_text_outputs_are_written(tmp_path, monkeypatch,
                                                                                         capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    for seeds in ("1", "2"):
        out = tmp_path / f"no-mpl-{seeds}"
        assert main(["run", "--headless", "--preset", "fig2", "--data", "sample", "--iters", "3", "--width", "16",
                     "--seeds", seeds, "--out", str(out), "--quiet"]) == 0
        captured = capsys.readouterr()
        assert captured.err.strip().splitlines() == [f"fftui: {paper.MISSING}"]
        assert "pip install 'fftui[plots]'" in captured.err
        assert (out / "fig2.csv").exists() and (out / "fig2.txt").exists()
        assert not list(out.glob("*.png")) and not list(out.glob("*.svg"))
        assert "fig2.png" not in captured.out


def test_no_figures_writes_none_and_says_nothing(tmp_path, capsys):
    out = tmp_path / "nofig"
    assert main(["run", "--headless", "--preset", "fig2", "--data", "sample", "--iters", "3", "--width", "16",
                 "--no-figures", "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert (out / "fig2.csv").exists() and not list(out.glob("fig2.*g"))


def test_band_is_mean_and_sample_sd_over_seeds():
    import numpy as np

    rows = np.array([[1.0, 2.0, np.nan], [3.0, 2.0, 5.0], [8.0, 2.0, np.nan]])
    mean, sd = paper.band(rows)
    assert mean[0] == pytest.approx(statistics.mean([1, 3, 8])) and sd[0] == pytest.approx(statistics.stdev([1, 3, 8]))
    assert sd[1] == 0 and mean[2] == 5 and np.isnan(sd[2])
