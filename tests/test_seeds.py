"""A preset run once per seed (--seeds K): seeds S..S+K-1, one recorded run per seed, the printed mean
± sample sd of every summary number checked against the per-seed CSV and against each seed's own
records, computed here with the statistics module; the flag's checks; the seed runs in the store."""
from __future__ import annotations

import csv
import json
import math
import re
import statistics

import numpy as np
import pytest

from engine.store import RunReader
from fftui.cli import main

LINE = re.compile(r"^  (\S+)\s+(\S+) ± (\S+)  \(per seed: (.*)\)$")


def printed_table(text: str) -> dict[str, tuple[float, float, list[float]]]:
    """{name: (mean, sd, per-seed values)} from the printed table of summary numbers."""
    out = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            out[m[1]] = (float(m[2]), float(m[3]), [float(v) for v in m[4].split(", ")])
    return out


def read_csv(path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text().splitlines()))


def close(a: float, b: float) -> bool:
    """Equal to the 6 significant digits the table and the CSV print."""
    return a == pytest.approx(b, rel=2e-5, abs=1e-9)


@pytest.fixture(scope="module")
def fig3_three_seeds(tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds") / "fig3"
    import contextlib
    import io

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(["run", "--headless", "--preset", "fig3", "--data", "sample", "--iters", "20", "--width", "200",
                   "--seed", "5", "--seeds", "3", "--out", str(out)])
    return rc, out, stdout.getvalue(), stderr.getvalue()


def test_three_seeds_are_three_recorded_runs_with_consecutive_seeds(fig3_three_seeds):
    rc, out, _, _ = fig3_three_seeds
    assert rc == 0
    assert json.loads((out / "seeds.json").read_text())["seeds"] == [5, 6, 7]
    for seed in (5, 6, 7):
        run = RunReader(out / f"seed-{seed}")
        assert run.status == "finished"
        assert json.loads((out / f"seed-{seed}" / "config.json").read_text())["config"]["seed"] == seed
        assert len(run.summary) == 20


def test_the_per_iteration_csv_has_every_seed_and_equals_each_seed_runs_own_csv(fig3_three_seeds):
    _, out, _, _ = fig3_three_seeds
    rows = read_csv(out / "fig3.csv")
    assert [int(r["seed"]) for r in rows] == [5] * 20 + [6] * 20 + [7] * 20
    for seed in (5, 6, 7):
        own = read_csv(out / f"seed-{seed}" / "fig3.csv")
        mine = [{k: v for k, v in r.items() if k != "seed"} for r in rows if r["seed"] == str(seed)]
        assert mine == own


def test_printed_mean_and_sd_match_the_per_seed_csv(fig3_three_seeds):
    _, out, printed, _ = fig3_three_seeds
    table = printed_table(printed)
    per_seed = read_csv(out / "fig3-seeds.csv")
    assert [int(r["seed"]) for r in per_seed] == [5, 6, 7]
    assert [r["finished"] for r in per_seed] == ["1", "1", "1"]
    keys = [k for k in per_seed[0] if k not in ("seed", "finished")]
    assert set(table) == set(keys) and "pos_sparser_mean" in keys and "neg_theorem2_error" in keys
    for key in keys:
        values = [float(r[key]) for r in per_seed]
        mean, sd, shown = table[key]
        assert close(mean, statistics.mean(values)), key
        assert close(sd, statistics.stdev(values)), key  # the sample sd, n - 1
        assert all(close(a, b) for a, b in zip(shown, values, strict=True)), key
    assert statistics.stdev(float(r["pos_sparser_mean"]) for r in per_seed) > 0  # the seeds differ


def test_printed_mean_and_sd_match_each_seeds_own_records(fig3_three_seeds):
    """Each seed's summary numbers recomputed from its recorded per-batch ratios (summary.jsonl.gz)."""
    _, out, printed, _ = fig3_three_seeds
    table = printed_table(printed)
    for group in ("pos", "neg"):
        found: dict[str, list[float]] = {}
        for seed in (5, 6, 7):
            summary = RunReader(out / f"seed-{seed}").summary
            sparser = [float(v) for v in summary.group_column("sparser_of_batch", group)]
            theorem = [float(v) for v in summary.group_column("theorem_of_batch", group)]
            tenth = max(1, len(sparser) // 10)
            found.setdefault("sparser_mean", []).append(statistics.mean(sparser))
            found.setdefault("sparser_first_tenth", []).append(statistics.mean(sparser[:tenth]))
            found.setdefault("sparser_last_tenth", []).append(statistics.mean(sparser[-tenth:]))
            found.setdefault("sparser_above_half", []).append(sum(v > 0.5 for v in sparser) / len(sparser))
            found.setdefault("theorem2_mean", []).append(statistics.mean(theorem))
            found.setdefault("theorem2_error", []).append(
                statistics.mean(abs(t - s) for t, s in zip(theorem, sparser, strict=True)))
        for key, values in found.items():
            mean, sd, _ = table[f"{group}_{key}"]
            assert close(mean, statistics.mean(values)), (group, key)
            assert close(sd, statistics.stdev(values)), (group, key)


def test_the_summary_sentence_gives_mean_and_sd_in_percent(fig3_three_seeds):
    _, out, printed, _ = fig3_three_seeds
    per_seed = read_csv(out / "fig3-seeds.csv")
    values = [float(r["pos_sparser_above_half"]) for r in per_seed]
    want = f"above 50 % in {100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f} % of iterations"
    assert want in printed
    assert "Over 3 seeds (5-7; mean ± sample standard deviation (ddof = 1)" in printed
    assert (out / "fig3.txt").read_text().count("pos_sparser_mean") == 1


def test_progress_names_the_seed(fig3_three_seeds):
    _, _, _, progress = fig3_three_seeds
    for i, seed in enumerate((5, 6, 7), start=1):
        assert f"seed {seed} ({i}/3)" in progress


def test_fig1a_counts_per_seed_beside_the_report(tmp_path, capsys):
    """N = 2, where seeds give different counts; each seed's count from its own recorded event and
    from the LHS and RHS of every digit in the CSV."""
    out = tmp_path / "f1a"
    assert main(["run", "--headless", "--preset", "fig1a", "--data", "sample", "--batch-size", "2",
                 "--seeds", "3", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    rows = read_csv(out / "fig1a.csv")
    counts = []
    for seed in (0, 1, 2):
        (event,) = [e for e in RunReader(out / f"seed-{seed}").events if e["kind"] == "theorem1_at_init"]
        mine = [r for r in rows if r["seed"] == str(seed)]
        assert len(mine) == 5000
        from_csv = sum(1 for r in mine if r["lhs"] and r["rhs"] and float(r["lhs"]) < float(r["rhs"]))
        assert event["satisfied"] == from_csv
        counts.append(from_csv)
    assert len(set(counts)) > 1
    assert f"{statistics.mean(counts):,.1f} ± {statistics.stdev(counts):,.1f} of 5,000 satisfy LHS < RHS" in printed
    assert "per seed: " + ", ".join(f"{c:,}" for c in counts) + " of 5,000" in printed
    assert "59,993 of 60,000" in printed
    mean, sd, _ = printed_table(printed)["satisfied"]
    assert close(mean, statistics.mean(counts)) and close(sd, statistics.stdev(counts))


def test_fig1b_curve_per_seed_and_mean_and_sd_per_batch_size(tmp_path, capsys):
    out = tmp_path / "f1b"
    assert main(["run", "--headless", "--preset", "fig1b", "--data", "sample", "--seeds", "2", "--seed", "3",
                 "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    rows = read_csv(out / "fig1b.csv")
    assert [(int(r["seed"]), int(r["batch_size"])) for r in rows] == [
        (s, n) for s in (3, 4) for n in (2, 4, 8, 16, 32, 64, 128)]
    for r in rows:
        assert float(r["ratio"]) == pytest.approx(int(r["satisfied"]) / int(r["samples"]), rel=1e-5)
    for n in (2, 4, 8, 16, 32, 64, 128):
        ratios = [float(r["ratio"]) for r in rows if r["batch_size"] == str(n)]
        assert f"N = {n}: {100 * statistics.mean(ratios):.1f} ± {100 * statistics.stdev(ratios):.1f} %" in printed
    assert re.search(r"in every seed it |seed 3: it ", printed)


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "two", ""])
def test_a_bad_seed_count_is_one_line_and_status_2(tmp_path, capsys, value):
    out = tmp_path / "never"
    rc = main(["run", "--headless", "--preset", "fig2", "--data", "sample", f"--seeds={value}", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--seeds" in err
    assert not out.exists()


@pytest.mark.parametrize("argv,words", [
    (["--headless", "--iters", "2", "--seeds", "2"], "--seeds is for --headless --preset runs"),
    (["--preset", "fig2", "--seeds", "2"], "--seeds is for --headless --preset runs"),
    (["--headless", "--iters", "2", "--no-figures"], "--no-figures is for --headless --preset runs"),
    (["--headless", "--preset", "fig2", "--seed", str(2**63 - 1), "--seeds", "2"], "largest seed"),
])
def test_seeds_where_they_make_no_sense_are_refused(tmp_path, capsys, argv, words):
    out = tmp_path / "never"
    assert main(["run", "--data", "sample", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_folder_of_seed_runs_is_never_reused(tmp_path, capsys):
    out = tmp_path / "twice"
    base = ["run", "--headless", "--preset", "fig2", "--data", "sample", "--iters", "2", "--width", "16",
            "--out", str(out), "--quiet", "--no-figures"]
    assert main(base + ["--seeds", "2"]) == 0
    before = sorted(p.name for p in out.iterdir())
    assert "writer.lock" not in before  # the claim is given back; seeds.json keeps the folder taken
    assert main(base) == 2
    assert "seeds.json" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before


def test_seed_runs_in_the_store_are_listed_and_named_group_slash_seed(tmp_path, monkeypatch, capsys):
    from engine.store.catalog import list_runs, resolve

    monkeypatch.setenv("FFTUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--headless", "--preset", "fig2", "--data", "sample", "--iters", "2", "--width", "16",
                 "--seeds", "2", "--quiet", "--no-figures"]) == 0
    root = tmp_path / "data" / "runs"
    (group,) = list(root.iterdir())
    entries = list_runs(root)
    assert sorted(e.name for e in entries) == [f"{group.name}/seed-0", f"{group.name}/seed-1"]
    assert all(e.status == "finished" for e in entries)
    assert resolve(f"{group.name[:-2]}/seed-1", root) == group / "seed-1"
    capsys.readouterr()
    assert main(["runs", "path", f"{group.name}/seed-0"]) == 0
    assert capsys.readouterr().out.strip() == str(group / "seed-0")
    assert main(["runs", "path", f"{group.name}/seed-9"]) == 2
    from fftui.runs_tools import locate  # what `fftui open` and `fftui runs diff/export` read

    assert locate(f"{group.name}/seed-1") == group / "seed-1"
    assert main(["runs", "rm", f"{group.name}/seed-0"]) == 0
    assert [e.name for e in list_runs(root)] == [f"{group.name}/seed-1"]
    assert (group / "fig2-seeds.csv").exists()  # the group's own files stay with it


def test_one_seed_is_the_plain_preset_run(tmp_path):
    out = tmp_path / "one"
    assert main(["run", "--headless", "--preset", "fig2", "--data", "sample", "--iters", "3", "--width", "16",
                 "--seeds", "1", "--out", str(out), "--quiet", "--no-figures"]) == 0
    assert (out / "run.json").exists() and not (out / "seeds.json").exists()
    assert read_csv(out / "fig2.csv")[0].keys() == {"iteration", "sparser", "theorem1"}


def test_mean_sd_is_the_sample_deviation():
    from fftui.headless.seeds import mean_sd

    values = [0.25, 0.5, 1.0, math.nan]
    mean, sd = mean_sd(values)
    assert mean == pytest.approx(statistics.mean(values[:3])) and sd == pytest.approx(statistics.stdev(values[:3]))
    assert math.isnan(mean_sd([0.3])[1]) and np.isnan(mean_sd([])[0])


def test_a_seed_that_did_not_finish_stays_out_of_the_mean_and_sd(tmp_path, monkeypatch, capsys):
    """The last seed stopped (its run marked interrupted): the printed mean and sd are those of the
    finished seeds alone, recomputed here from the per-seed CSV's finished rows."""
    from fftui.headless import seeds as seeds_module

    real = seeds_module.measure

    def stopped_at_third(name, cfg, *args, **kwargs):
        m = real(name, cfg, *args, **kwargs)
        if cfg.seed == 7:
            m.outcome = {**m.outcome, "interrupted": True}
        return m

    monkeypatch.setattr(seeds_module, "measure", stopped_at_third)
    out = tmp_path / "fig3"
    main(["run", "--headless", "--preset", "fig3", "--data", "sample", "--iters", "12", "--width", "100",
          "--seed", "5", "--seeds", "3", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "Seed 7 did not finish" in printed and "left out of the mean and sd" in printed
    per_seed = read_csv(out / "fig3-seeds.csv")
    assert [(r["seed"], r["finished"]) for r in per_seed] == [("5", "1"), ("6", "1"), ("7", "0")]
    table = printed_table(printed)
    for key in ("pos_sparser_mean", "neg_sparser_mean", "pos_theorem2_error"):
        values = [float(r[key]) for r in per_seed if r["finished"] == "1"]
        mean, sd, shown = table[key]
        assert close(mean, statistics.mean(values)) and close(sd, statistics.stdev(values)), key
        assert len(shown) == 2
