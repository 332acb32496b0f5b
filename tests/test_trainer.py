"""The trainer's measurements and predictions against independent computations."""
import math

import numpy as np
import pytest
import torch

from engine import reference
from engine.config import Config
from engine.inputs import Batcher, pixel_table
from engine.trainer import EngineError, Trainer


def capture_steps(trainer, steps):
    """Run steps; return (record, X, W before, W after, n_pos) for each."""
    out = []
    original = trainer.next_batch
    seen = {}

    def spy():
        x, n_pos = original()
        seen["x"], seen["n_pos"] = x.clone(), n_pos
        return x, n_pos

    trainer.next_batch = spy
    for _ in range(steps):
        seen.clear()
        w0 = trainer.w.clone()
        rec = trainer.step()
        out.append((rec, seen["x"], w0, trainer.w.clone(), seen["n_pos"]))
    trainer.next_batch = original
    return out


def groups_concat(rec, field):
    return np.concatenate([getattr(g, field) for g in rec.groups.values()])


CASES = [
    ("descent", "linear", "sgd", 0.0),
    ("descent", "logistic", "sgd", 0.0),
    ("ff", "linear", "sgd", 0.0),
    ("ff", "logistic", "sgd", 0.0),
    ("ff", "linear", "sgd", 0.9),
    ("ff", "logistic", "sgd", 0.9),
    ("descent", "linear", "adam", 0.0),
    ("ff", "logistic", "adam", 0.0),
]


@pytest.mark.parametrize("mode,loss,opt,momentum", CASES)
def test_small_step_generalised_prediction_matches_outcome(small_sample, mode, loss, opt, momentum):
    cfg = Config(mode=mode, loss=loss, optimizer=opt, momentum=momentum, lr=1e-7, width=400,
                 batch_size=32, dtype="float64", theta=1.0, seed=3)
    trainer = Trainer(cfg, small_sample)
    agree = total = 0
    for rec, x, w0, w1, _ in capture_steps(trainer, 4):
        outcome = np.array(reference.literal_outcome(w0, w1, x))
        predicted = groups_concat(rec, "predicted_general")
        valid = outcome >= 0
        agree += int((predicted[valid] == (outcome[valid] == 1)).sum())
        total += int(valid.sum())
    assert total >= 4 * (64 if mode == "ff" else 32) * 0.9
    assert agree / total >= 0.999


@pytest.mark.parametrize("mode", ["descent", "ff"])
def test_measured_outcome_equals_literal_recomputation(small_sample, mode):
    cfg = Config(mode=mode, lr=0.05, width=300, batch_size=24, dtype="float64", seed=5)
    trainer = Trainer(cfg, small_sample)
    for rec, x, w0, w1, _ in capture_steps(trainer, 3):
        outcome = np.array(reference.literal_outcome(w0, w1, x))
        np.testing.assert_array_equal(groups_concat(rec, "actual"), outcome)


def test_theorem_equals_general_for_linear_sgd_and_differs_for_logistic(small_sample):
    lin = Trainer(Config(mode="ff", loss="linear", width=300, batch_size=32, dtype="float64"), small_sample)
    for _ in range(3):
        rec = lin.step()
        np.testing.assert_array_equal(groups_concat(rec, "predicted_theorem"), groups_concat(rec, "predicted_general"))
    log = Trainer(Config(mode="ff", loss="logistic", width=300, batch_size=32, dtype="float64", theta=2.0),
                  small_sample)
    differs = 0
    for _ in range(5):
        rec = log.step()
        differs += int((groups_concat(rec, "predicted_theorem") != groups_concat(rec, "predicted_general")).sum())
    assert differs > 0


def test_record_sides_match_literal_theorem2(small_sample):
    trainer = Trainer(Config(mode="ff", width=200, batch_size=10, dtype="float64"), small_sample)
    rec, x, w0, _, n_pos = capture_steps(trainer, 1)[0]
    h = torch.relu(x @ w0.T)
    lit = reference.literal_theorem2(x, h, n_pos)
    lhs = groups_concat(rec, "lhs")
    rhs = groups_concat(rec, "rhs")
    for i, row in enumerate(lit):
        if math.isnan(row["lhs"]):
            assert math.isnan(lhs[i])
        else:
            assert lhs[i] == pytest.approx(row["lhs"], rel=1e-5)
            assert rhs[i] == pytest.approx(row["rhs"], rel=1e-5)


def test_ratios_count_only_valid_samples(small_sample):
    trainer = Trainer(Config(mode="descent", lr=0.5, width=100, batch_size=64, dtype="float64"), small_sample)
    for _ in range(6):
        rec = trainer.step()
    g = rec.groups["all"]
    valid = g.actual >= 0
    assert g.valid == int(valid.sum())
    if g.valid:
        assert g.sparser == pytest.approx((g.actual == 1).sum() / g.valid)
    assert g.silenced == pytest.approx(float(np.isnan(g.lhs).mean()))


def test_same_seed_same_metrics(small_sample):
    def run():
        t = Trainer(Config(width=200, batch_size=32, seed=11), small_sample)
        return [(r.loss, r.groups["pos"].sparser, r.groups["neg"].theorem, r.sign_flip)
                for r in (t.step() for _ in range(5))]

    assert run() == run()
    other = Trainer(Config(width=200, batch_size=32, seed=12), small_sample).step()
    assert other.loss != run()[0][0]


def test_negatives_never_carry_true_label_and_inputs_are_unit(sample):
    gen = torch.Generator().manual_seed(0)
    batcher = Batcher(pixel_table(sample.images, torch.float64, "none"), sample.labels, gen)
    seen = 0
    for _ in range(30):
        x, labels, n_pos = batcher.batch("ff", 128)
        torch.testing.assert_close(x.norm(dim=1), torch.ones(x.shape[0], dtype=torch.float64))
        pos_label = x[:n_pos, :10].argmax(dim=1)
        neg_label = x[n_pos:, :10].argmax(dim=1)
        assert torch.equal(pos_label, labels)
        assert not (neg_label == labels).any()
        # only one label pixel is set
        assert ((x[:, :10] > 0).sum(dim=1) == 1).all()
        seen += n_pos
    # wrong labels are spread over all 9 alternatives
    fresh = Batcher(pixel_table(sample.images, torch.float64, "none"), sample.labels, torch.Generator().manual_seed(9))
    x, labels, n_pos = fresh.batch("ff", 5000)
    assert n_pos == 5000
    shift = (x[n_pos:, :10].argmax(dim=1) - labels) % 10
    counts = torch.bincount(shift, minlength=10)
    assert counts[0] == 0 and (counts[1:] > 400).all()


def test_descent_inputs_are_plain_unit_images(sample):
    table = pixel_table(sample.images, torch.float64, "none")
    batcher = Batcher(table, sample.labels, torch.Generator().manual_seed(1))
    x, labels, n = batcher.batch("descent", 64)
    assert x.shape == (64, 784) and n == 64
    torch.testing.assert_close(x.norm(dim=1), torch.ones(64, dtype=torch.float64))
    assert (x >= 0).all()


def test_epoch_counts_partial_last_batch(small_sample):
    t = Trainer(Config(mode="descent", width=50, batch_size=100, epochs=2), small_sample)
    assert t.batches_per_epoch == 6 and t.total_iters == 12
    epochs = [t.step().epoch for _ in range(7)]
    assert epochs == [1] * 6 + [2]


def test_nan_loss_raises_engine_error(small_sample):
    t = Trainer(Config(mode="descent", width=50, batch_size=16), small_sample)
    t.w.fill_(float("nan"))
    with pytest.raises(EngineError, match="loss became"):
        t.step()


@pytest.mark.parametrize("mode,loss,opt", [("ff", "linear", "sgd"), ("ff", "logistic", "adam"),
                                           ("descent", "linear", "sgd")])
def test_every_scalar_of_a_record_matches_a_per_sample_loop(small_sample, mode, loss, opt):
    cfg = Config(mode=mode, loss=loss, optimizer=opt, lr=0.02, width=120, batch_size=16,
                 dtype="float64", theta=1.0, seed=8)
    trainer = Trainer(cfg, small_sample)
    for rec, x, w0, w1, n_pos in capture_steps(trainer, 3):
        batch = x.shape[0]
        h0 = [torch.relu(w0 @ x[i]) for i in range(batch)]
        h1 = [torch.relu(w1 @ x[i]) for i in range(batch)]
        g = [float(hi @ hi) for hi in h0]
        if loss == "linear":
            expect_loss = sum(g[n_pos:]) - sum(g[:n_pos]) if mode == "ff" else sum(g) - cfg.theta
        else:
            signs = [-1.0 if (mode == "ff" and i < n_pos) else 1.0 for i in range(batch)]
            expect_loss = sum(math.log1p(math.exp(s * (gi - cfg.theta))) for s, gi in zip(signs, g, strict=True))
        assert rec.loss == pytest.approx(expect_loss, rel=1e-9)
        flips = sum(int(((w0 @ x[i]) > 0).ne((w1 @ x[i]) > 0).sum()) for i in range(batch))
        assert rec.sign_flip == pytest.approx(flips / (batch * cfg.width), abs=1e-12)
        # first-order |h|_2 change from the applied dZ: h . (dW x) / |h|_2 over samples alive before and after
        num = den = 0.0
        for i in range(batch):
            l2a, l2b = float(h0[i].norm()), float(h1[i].norm())
            if l2a > 0 and l2b > 0:
                fo = float(h0[i] @ ((w1 - w0) @ x[i])) / l2a
                num += abs(l2b - l2a - fo)
                den += abs(fo)
        assert rec.l2_remainder == pytest.approx(num / den, rel=1e-6)
        names = ["pos", "neg"] if mode == "ff" else ["all"]
        per = batch // len(names)
        for gi, name in enumerate(names):
            grp = rec.groups[name]
            rows = range(gi * per, (gi + 1) * per)
            active = [i for i in rows if g[i] > 0]
            assert grp.count == per
            assert grp.goodness == pytest.approx(sum(g[i] for i in rows) / per, rel=1e-9)
            hoyer = [reference.literal_hoyer(h0[i]) for i in active]
            assert grp.sparsity == pytest.approx(sum(hoyer) / len(hoyer) if hoyer else math.nan, rel=1e-9, nan_ok=True)
            assert grp.silenced == pytest.approx(1 - len(active) / per)
            assert grp.newly_silenced == sum(1 for i in active if float(h1[i].norm()) == 0)
            outcome = reference.literal_outcome(w0, w1, x[gi * per:(gi + 1) * per])
            valid = [k for k, o in enumerate(outcome) if o >= 0]
            assert grp.valid == len(valid)
            if valid:
                pt, pg = grp.predicted_theorem, grp.predicted_general
                assert grp.sparser == pytest.approx(sum(outcome[k] for k in valid) / len(valid))
                assert grp.theorem == pytest.approx(sum(bool(pt[k]) for k in valid) / len(valid))
                assert grp.general == pytest.approx(sum(bool(pg[k]) for k in valid) / len(valid))
                assert grp.agree_theorem == pytest.approx(
                    sum(bool(pt[k]) == (outcome[k] == 1) for k in valid) / len(valid))
                assert grp.agree_general == pytest.approx(
                    sum(bool(pg[k]) == (outcome[k] == 1) for k in valid) / len(valid))


def test_chunk_of_mixed_layouts_unpacks_like_each_batch_alone(small_sample):
    from engine.derive import derive, derive_runs

    trainers = [Trainer(Config(mode="ff", width=60, batch_size=8, dtype="float64"), small_sample),
                Trainer(Config(mode="descent", loss="logistic", width=70, batch_size=12, dtype="float64"),
                        small_sample)]
    vectors, metas = [], []
    for t in (trainers[0], trainers[0], trainers[1], trainers[0]):
        with torch.inference_mode():
            x, n_pos = t.next_batch()
            out = t.train_step(x, n_pos)
            vec = t.packed(x, n_pos, out).numpy()
        meta = t.pack_meta(x.shape[0])
        assert vec.size == meta.layout.size
        vectors.append(vec)
        metas.append(meta)
    iterations = [1, 2, 1, 3]
    together = derive_runs(np.concatenate(vectors), metas, iterations, [1] * 4, 0.0, 0.0)
    assert [(c.mode, len(c)) for c in together] == [("ff", 2), ("descent", 1), ("ff", 1)]
    records = [r for c in together for r in c.records()]
    for vec, meta, it, rec in zip(vectors, metas, iterations, records, strict=True):
        alone = derive(vec.reshape(1, -1), meta, [it], [1], 0.0, 0.0).record(0)
        assert rec.loss == alone.loss and rec.iteration == alone.iteration == it
        assert rec.sign_flip == alone.sign_flip and rec.l2_remainder == alone.l2_remainder
        for name, grp in alone.groups.items():
            np.testing.assert_array_equal(rec.groups[name].actual, grp.actual)
            np.testing.assert_array_equal(rec.groups[name].lhs, grp.lhs)
            assert rec.groups[name].goodness == grp.goodness
            assert rec.groups[name].sparsity == pytest.approx(grp.sparsity, rel=0, abs=0, nan_ok=True)
            assert rec.groups[name].sparser == pytest.approx(grp.sparser, nan_ok=True)
    with pytest.raises(ValueError, match="packed metrics"):
        derive_runs(np.concatenate(vectors)[:-1], metas, iterations, [1] * 4, 0.0, 0.0)


def one_sample(kind="descent", loss="logistic", width=50, gradient_step=False, dtype=np.float64, **values):
    """The record of one hand-made batch of one sample, its packed vector laid out by name."""
    from engine.derive import derive
    from engine.layout import PackMeta

    meta = PackMeta(mode=kind, loss_name=loss, batch=1, width=width, gradient_step=gradient_step)
    if "sparser_measured" not in values:  # the device's measurement, here from the norms given
        values["sparser_measured"] = float(values["l1_after"] * math.sqrt(values["goodness"])
                                           < values["l1"] * math.sqrt(values["goodness_after"]))
    values = {"undecided": 0.0, "zero_step": 0.0, **values}
    vec = meta.layout.pack_array({"loss": 0.0, **values}, dtype=dtype)
    return derive(vec.reshape(1, -1), meta, [1], [1], 0.0, 0.0).record(0)


def test_one_active_unit_is_a_tie_not_a_rounding_outcome():
    """|h|_1 / |h|_2 = 1 for one active unit, before and after the step: never sparser, never
    predicted sparser, though float32 norms (here rounded so that the comparison would say
    sparser) do not show the tie."""
    import struct

    def f32(v):
        return struct.unpack("f", struct.pack("f", v))[0]

    h, h_after = f32(1 / 211), f32(1 / 223)
    g, g_after = f32(h * h), f32(h_after * h_after)
    assert h_after * math.sqrt(g) < h * math.sqrt(g_after)  # rounding alone says "sparser"
    e = f32(0.7)  # P = E_j, |h|_2 Q = h_j E_j for the one unit: the theorem's sides are equal
    p, q_scaled = f32(e), f32(h * e)
    assert -p * g < h * -q_scaled  # and rounding alone predicts "sparser"
    dz = f32(-0.01)  # the applied change of the unit's pre-activation, for the generalised predictor
    assert dz * g < h * f32(h * dz)  # which rounding alone also calls "sparser"
    # the unit is shared with another sample of the batch: only the one-unit rule makes the tie
    sample = dict(goodness=g, l1=h, goodness_after=g_after, l1_after=h_after, p=p, q_scaled=q_scaled,
                  fo_dl1=dz, fo_l2_scaled=f32(h * dz), units=1.0, units_after=1.0, units_both=1.0, shared=2.0)
    rec = one_sample(**sample)
    grp = rec.groups["all"]
    assert grp.actual.tolist() == [0] and grp.valid == 1
    assert not grp.predicted_theorem[0] and not grp.predicted_general[0]
    assert grp.agree_theorem == 1.0 and rec.sign_flip == 0.0
    # the same sample with a second unit active after the step is no tie: it became less sparse
    rec = one_sample(**{**sample, "units_after": 2.0, "units_both": 1.0})
    assert rec.sign_flip == pytest.approx(1 / 50)


def test_a_sample_sharing_no_unit_is_scaled_by_plain_sgd_a_tie():
    """No other sample active on its units: E_i * m_i = c_i K_ii h_i, so the theorem's sides are
    equal, and plain SGD scales h_i there: S is unchanged unless other units switch on. Float32
    sums (chosen here so that they say "sparser") must not decide it."""
    h = np.array([0.6369617, 0.2697867, 0.0409735], dtype=np.float32)
    h_after = (h * np.float32(0.998)).astype(np.float32)
    e = h * np.float32(0.9)
    sums = [np.dot(h, h), h.sum(dtype=np.float32), np.dot(h_after, h_after), h_after.sum(dtype=np.float32),
            e.sum(dtype=np.float32), np.dot(h, e)]
    g, l1, g_after, l1_after, p, q_scaled = (float(v) for v in sums)
    assert l1_after * math.sqrt(g) < l1 * math.sqrt(g_after) and -p * g < l1 * -q_scaled
    dz = -0.002 * e  # for the generalised predictor (one step of plain SGD)
    fo_dl1, fo_l2_scaled = float(dz.sum(dtype=np.float32)), float(np.dot(h, dz))

    def record(gradient_step, units_after=3.0, both=3.0, shared=3.0):
        return one_sample(width=20, gradient_step=gradient_step, goodness=g, l1=l1, goodness_after=g_after,
                          l1_after=l1_after, p=p, q_scaled=q_scaled, fo_dl1=fo_dl1, fo_l2_scaled=fo_l2_scaled,
                          units=3.0, units_after=units_after, units_both=both, shared=shared).groups["all"]

    tie = record(gradient_step=True)
    assert tie.actual.tolist() == [0]
    assert not tie.predicted_theorem[0] and not tie.predicted_general[0]
    # Adam's change is no multiple of h_i: the outcome and the generalised prediction stand, the
    # theorem's sides are still equal
    adam = record(gradient_step=False)
    assert adam.actual.tolist() == [1] and adam.predicted_general[0] and not adam.predicted_theorem[0]
    # a unit switched on in the step: no longer a scaling, the measured outcome stands
    grown = record(gradient_step=True, units_after=4.0)
    assert grown.actual.tolist() == [1]
    # another sample active on one of its units: no tie at all
    shared = record(gradient_step=True, shared=4.0)
    assert shared.actual.tolist() == [1] and shared.predicted_theorem[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_undecided_measurement_is_counted_unresolved_unless_a_tie(dtype):
    """The device's measurement flags a sample its rounding bound cannot decide: it is counted
    unresolved; a tie known exactly (one active unit, an exactly zero step) is not."""
    l1, g = 3.0, 2.0
    sample = dict(goodness=g, l1=l1, goodness_after=g, l1_after=l1 * (1 - 1e-3), p=1.0, q_scaled=1.0,
                  fo_dl1=0.1, fo_l2_scaled=0.1, units=5.0, units_after=5.0, units_both=5.0, shared=9.0,
                  sparser_measured=1.0)
    grp = one_sample(gradient_step=True, dtype=dtype, **sample).groups["all"]
    assert grp.unresolved == 0 and grp.actual.tolist() == [1] and grp.zero_step == 0
    grp = one_sample(gradient_step=True, dtype=dtype, **{**sample, "undecided": 1.0}).groups["all"]
    assert grp.unresolved == 1 and grp.actual.tolist() == [1]
    one = {**sample, "undecided": 1.0, "units": 1.0, "units_after": 1.0, "units_both": 1.0}
    grp = one_sample(gradient_step=True, dtype=dtype, **one).groups["all"]
    assert grp.unresolved == 0 and grp.actual.tolist() == [0]
    grp = one_sample(gradient_step=True, dtype=dtype, **{**sample, "zero_step": 1.0}).groups["all"]
    assert grp.unresolved == 0 and grp.actual.tolist() == [0] and grp.zero_step == 1 and grp.sparser == 0.0
