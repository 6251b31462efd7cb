"""The learning-rate lab: gradient descent on a bowl against its closed form, the bigram training
run against the counts' entropy bound, the schedule against its formula, bad input in English and
Japanese, and the endpoints through the running app."""

from __future__ import annotations

import json
import math
import threading
from collections import Counter

import httpx
import numpy as np
import pytest

from benchmarks import harness
from llmviz import config, lane
from llmviz import learning_rate as lr
from llmviz.config import ASSETS
from llmviz.errors import UserError

BOWLS = [lr.Bowl((10.0, 1.0), 30.0), lr.Bowl((3.0, 0.4), 120.0), lr.Bowl((2.0, 2.0), 0.0)]
#: α in units of 1/λmax: crawling, good, zig-zagging, at the edge, just past it, far past it
FACTORS = (0.05, 0.1, 1.0, 1.5, 1.99, 2.05, 2.1, 3.0)


# --- the bowl ------------------------------------------------------------------------------------
@pytest.mark.parametrize("bowl", BOWLS, ids=lambda b: f"{b.curvatures}-{b.angle_deg}")
@pytest.mark.parametrize("factor", FACTORS)
def test_iterated_path_equals_the_closed_form(bowl, factor):
    alpha = factor / bowl.lam_max
    path = lr.descend(bowl, alpha, config.LR_GD_MAX_STEPS)
    for k, point in enumerate(path.points):  # divergent ones too, up to the clip
        expected = lr.closed_form(bowl, alpha, k)
        assert np.allclose(
            point, expected, rtol=1e-9, atol=1e-9 * np.linalg.norm(expected) + 1e-12
        ), k
    # per eigen-direction the coordinate is multiplied by (1 - αλ) every step
    coords = path.points @ bowl.rotation  # (k + 1, 2) in the eigen-basis
    start = coords[0]
    for i, lam in enumerate(bowl.curvatures):
        ks = np.arange(len(coords))
        assert np.allclose(coords[:, i], start[i] * (1 - alpha * lam) ** ks, rtol=1e-9, atol=1e-9)
    assert path.losses == pytest.approx(bowl.loss(path.points))


@pytest.mark.parametrize("bowl", BOWLS, ids=lambda b: f"{b.curvatures}-{b.angle_deg}")
@pytest.mark.parametrize("factor", FACTORS)
def test_divergence_is_detected_exactly_where_the_closed_form_leaves_the_bound(bowl, factor):
    alpha = factor / bowl.lam_max
    n = config.LR_GD_MAX_STEPS
    path = lr.descend(bowl, alpha, n)
    bound = config.LR_DIVERGE_FACTOR * math.hypot(*config.LR_START)
    norms = [np.linalg.norm(lr.closed_form(bowl, alpha, k)) for k in range(n + 1)]
    outside = [k for k, v in enumerate(norms) if v > bound]
    if factor < 2:  # |1 - αλ| < 1 everywhere: never further from the bottom than the start
        assert outside == [] and path.diverged_at is None and path.steps == n
        assert max(norms) <= norms[0] * (1 + 1e-12)
    else:
        assert path.diverged_at == outside[0]  # stopped at the first step past the bound
        assert path.steps == outside[0]  # and clipped there: nothing drawn after it
        assert all(np.linalg.norm(p) <= bound for p in path.points[:-1])
        assert path.losses[-1] > path.losses[0]


def test_huge_learning_rates_diverge_at_once_without_an_error():
    bowl = BOWLS[0]
    for alpha in (1e6, 1e300, 1.7e308):
        path = lr.descend(bowl, alpha, 50)
        assert path.diverged_at == 1 and path.steps == 1
        assert not path.converged()


def test_the_presets_crawl_converge_and_diverge():
    bowl = BOWLS[0]
    small, good, large = (lr.descend(bowl, a, 50) for a in lr.preset_alphas(bowl))
    assert lr.preset_alphas(bowl) == pytest.approx((0.01, 0.1, 0.21))
    assert small.diverged_at is None and not small.converged()
    assert np.linalg.norm(small.points[-1]) > 0.5 * np.linalg.norm(small.points[0])
    assert good.converged()
    assert large.diverged_at is not None
    assert lr.descend(bowl, lr.best_alpha(bowl), 50).converged()


# --- the schedule --------------------------------------------------------------------------------
def closed_form_lr(step, peak, warmup, total, ratio):
    if step < warmup:
        return peak * step / warmup
    progress = (step - warmup) / (total - warmup)
    return peak * (ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


@pytest.mark.parametrize(
    ("peak", "warmup", "total", "ratio"),
    [
        (2.5e-4, 2000, 20000, 0.1),
        (1e-3, 0, 500, 0.0),
        (3.0, 7, 11, 0.5),
        (6e-4, 1, 10_000_000, 0.1),
    ],
)
def test_schedule_equals_its_formula_and_peaks_at_the_end_of_warmup(peak, warmup, total, ratio):
    s = lr.schedule(peak, warmup, total, ratio)
    expected = [closed_form_lr(int(k), peak, warmup, total, ratio) for k in s.steps]
    assert s.lrs == pytest.approx(expected, rel=1e-12, abs=1e-300)
    assert s.steps[0] == 0 and s.steps[-1] == total and warmup in s.steps
    assert s.lrs[s.steps == warmup][0] == pytest.approx(peak, rel=1e-12)
    assert s.lrs.max() == pytest.approx(peak, rel=1e-12)
    assert s.lrs[-1] == pytest.approx(ratio * peak, rel=1e-12, abs=1e-300)
    rising, falling = s.lrs[s.steps <= warmup], s.lrs[s.steps >= warmup]
    assert np.all(np.diff(rising) > 0) and np.all(np.diff(falling) <= 1e-18)
    if warmup:
        assert s.lrs[0] == 0.0


def test_the_schedule_is_what_a_driven_optimizer_gets():
    peak, warmup, total, ratio = 2.5e-4, 10, 60, 0.1
    s = lr.schedule(peak, warmup, total, ratio, points=total + 1)
    assert list(s.steps) == list(range(total + 1))
    scheduler = lr.library_schedule(peak, warmup, total, ratio)
    optimizer = scheduler.optimizer
    seen = []
    for _ in range(total + 1):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx(list(s.lrs), rel=1e-12, abs=1e-300)


# --- the bigram run ------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", lr.CORPORA)
def test_reference_entropy_equals_a_direct_count(lang):
    text = (ASSETS / "tokenizer" / f"corpus_{lang}.txt").read_text(encoding="utf-8")
    pairs = Counter(zip(text, text[1:], strict=False))
    firsts = Counter(text[:-1])
    n = len(text) - 1
    direct = -sum(c / n * math.log(c / firsts[a]) for (a, _), c in pairs.items())
    corpus = lr.load_corpus(lang)
    counts = lr.bigram_counts(corpus)
    assert counts.sum() == n and corpus.vocab == len(set(text))
    assert lr.conditional_entropy(counts) == pytest.approx(direct, rel=1e-12)
    assert lr.uniform_loss(corpus) == pytest.approx(math.log(len(set(text))))
    assert 0 < direct < lr.uniform_loss(corpus)


@pytest.mark.parametrize("lang", lr.CORPORA)
def test_the_training_loss_is_the_cross_entropy_over_every_pair_and_the_counts_attain_the_bound(
    lang,
):
    import torch

    corpus = lr.load_corpus(lang)
    counts = torch.tensor(lr.bigram_counts(corpus), dtype=torch.float64)
    ids = torch.tensor(corpus.ids)
    g = torch.Generator().manual_seed(3)
    table = torch.randn(corpus.vocab, corpus.vocab, generator=g, dtype=torch.float64) * 3
    pairwise = float(torch.nn.functional.cross_entropy(table[ids[:-1]], ids[1:]))
    rows = lr.block_rows(corpus.vocab)
    assert rows * corpus.vocab < 32_768  # every op on a block stays serial
    for k in (corpus.vocab, rows, 7):  # one block, the training's blocks, many small ones
        loss = lr.corpus_loss(table.split(k), counts.split(k))
        assert float(loss) == pytest.approx(pairwise, rel=1e-12)
    # its gradient is autograd's through the library's own cross-entropy
    w = table.clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(w[ids[:-1]], ids[1:]).backward()
    blocks = [b.clone().requires_grad_(True) for b in table.split(rows)]
    lr.corpus_loss(blocks, counts.split(rows)).backward()
    assert torch.allclose(torch.cat([b.grad for b in blocks]), w.grad, rtol=1e-10, atol=1e-15)
    best = torch.log(counts / counts.sum(1, keepdim=True).clamp(min=1) + 1e-300)  # log-frequencies
    h = lr.conditional_entropy(lr.bigram_counts(corpus))
    assert float(lr.corpus_loss([best], [counts])) == pytest.approx(h, rel=1e-9)


def _run(lang, alphas, steps=config.LR_TRAIN_DEFAULT_STEPS, **kw):
    return list(lr.train(lr.load_corpus(lang), alphas, steps, **kw))


@pytest.mark.parametrize("lang", lr.CORPORA)
def test_the_measured_learning_rates_crawl_converge_and_overshoot(lang):
    import torch

    corpus = lr.load_corpus(lang)
    ln_v = lr.uniform_loss(corpus)
    bound = lr.conditional_entropy(lr.bigram_counts(corpus))
    gap = ln_v - bound
    rng_before = torch.random.get_rng_state()
    threads = torch.get_num_threads()
    snaps = _run(lang, lr.presets(lang), budget_s=600)  # the budget is not what this test tests
    last = snaps[-1]
    assert last.done and not last.out_of_time and last.step == config.LR_TRAIN_DEFAULT_STEPS
    small, good, large = last.runs
    for run in last.runs[:2]:
        assert run.losses[0] == pytest.approx(ln_v, rel=1e-6)  # the all-zero table is uniform
        assert len(run.losses) == last.step + 1
    # good: decreases all the way and ends near the best bigram table
    assert np.all(np.diff(good.losses) < 1e-6)
    assert good.final - bound < 0.05 * gap
    # too small: barely moves
    assert ln_v - small.final < 0.2 * gap
    assert small.final > good.final + 0.5 * gap
    # too large: diverged, or worse than guessing uniformly
    assert large.diverged_at is not None or large.final > ln_v
    # seeded samples from the local generator; torch's own generator and threads untouched
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    assert torch.get_num_threads() == threads
    for run in (small, good):
        assert len(run.sample) == config.LR_SAMPLE_CHARS + 1 and set(run.sample) <= set(
            corpus.chars
        )
        assert "\ufffd" not in run.sample
    again = _run(lang, lr.presets(lang)[:2], budget_s=600)[-1]
    assert [r.sample for r in again.runs] == [small.sample, good.sample]
    assert np.array_equal(again.runs[1].losses, good.losses)


def test_a_non_finite_run_is_stopped_and_marked_diverged():
    snaps = _run("en", [50.0, 1e300, 1e39], steps=40, every=10)
    good, huge, over_float32 = snaps[-1].runs
    assert good.diverged_at is None and len(good.losses) == 41
    for run in (huge, over_float32):  # α·∇L overflows a float32 table at the first step
        assert run.diverged_at == 1 and len(run.losses) == 1 and run.sample is None
    assert [s.step for s in snaps] == [10, 20, 30, 40, 40]


def test_snapshots_grow_and_the_budget_stops_the_run():
    snaps = _run("ja", [300.0], steps=100, every=25)
    assert [s.step for s in snaps] == [25, 50, 75, 100, 100]
    assert [len(s.runs[0].losses) for s in snaps] == [25, 50, 75, 100, 101]
    assert all(s.runs[0].sample is None for s in snaps[:-1]) and snaps[-1].runs[0].sample
    cut = _run("ja", [300.0], steps=100, every=25, budget_s=0.0)
    assert [s.step for s in cut] == [25] and cut[-1].done and cut[-1].out_of_time


def test_closing_the_generator_stops_the_run_and_frees_the_lane():
    events = lr.train(lr.load_corpus("en"), [50.0], 1000, every=10)
    first = next(events)
    assert first.step == 10
    events.close()  # what gradio does on Stop
    got = threading.Event()

    def take_the_lane():
        with lane.COMPUTE:
            got.set()

    worker = threading.Thread(target=take_the_lane, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert got.is_set()


# --- bad input -----------------------------------------------------------------------------------
def _descend(alpha=0.1, steps=10, lam1=10, lam2=1, angle=30):
    return lr.descend(lr.make_bowl(lam1, lam2, angle), alpha, steps)


def _train(lang="en", alpha=1.0, steps=5):
    return lr.train(lr.load_corpus(lang), [alpha, 1.0, 1.0], steps)


def _schedule(peak=2.5e-4, warmup=100, total=1000, ratio=0.1):
    return lr.schedule(peak, warmup, total, ratio)


NAN, INF = float("nan"), float("inf")
BAD = [
    # (call, key, English fragment, Japanese fragment)
    *[(lambda v=v: _descend(alpha=v), "labs_lr_alpha", "must be a number above 0", "0 より大きい数")
      for v in (0, -0.1, NAN, INF, -INF, "abc", None, True, [1])],
    *[(lambda v=v: _train(alpha=v), "labs_lr_alpha", "α₁ must be a number above 0", "学習率 α₁")
      for v in (0, NAN, INF, "", None)],
    *[(lambda v=v: _descend(steps=v), "labs_lr_steps", "from 1 to 500", "1 から 500")
      for v in (0, -3, 501, 1e300, NAN, 2.5, None)],
    *[(lambda v=v: _train(steps=v), "labs_lr_steps", "from 1 to 1000", "1 から 1000")
      for v in (0, -1, 1001, INF, "many")],
    *[(lambda v=v: _descend(lam1=v), "labs_lr_curvature", "λ₁ must be a number from 0.1 to 50", "曲率 λ₁")
      for v in (0, -1, 51, NAN)],
    (lambda: _descend(lam2=1e9), "labs_lr_curvature", "λ₂", "曲率 λ₂"),
    (lambda: _descend(angle=400), "labs_lr_angle", "from 0 to 180 degrees", "0 度から 180 度"),
    *[(lambda v=v: _train(lang=v), "labs_lr_corpus", "Choose one of: en, ja", "次から選んでください")
      for v in ("fr", None, ["en"], "../corpus_en")],
    *[(lambda v=v: _schedule(peak=v), "labs_lr_peak", "peak learning rate must be a number above 0",
       "学習率のピーク") for v in (0, -2.5e-4, INF, NAN)],
    *[(lambda v=v: _schedule(total=v), "labs_lr_total", "from 1 to 10000000", "1 から 10000000")
      for v in (0, 1e8, 3.5)],
    (lambda: _schedule(warmup=-1), "labs_lr_warmup", "from 0 to 10000000", "0 から 10000000"),
    *[(lambda w=w: _schedule(warmup=w, total=1000), "labs_lr_warmup_long",
       "must be shorter than the whole run (1,000 steps)", "学習全体（1,000 ステップ）より短く")
      for w in (1000, 5000)],
    *[(lambda v=v: _schedule(ratio=v), "labs_lr_final", "from 0 to 1", "0 から 1")
      for v in (-0.1, 1.5, NAN)],
]  # fmt: skip


@pytest.mark.parametrize(("call", "key", "en", "ja"), BAD)
def test_bad_input_is_explained_in_english_and_japanese(call, key, en, ja):
    from llmviz.ui.common import error_message

    with pytest.raises(UserError) as info:
        call()
    err = info.value
    assert err.key == key
    assert en in error_message(err, "en"), error_message(err, "en")
    message_ja = error_message(err, "ja")
    assert ja in message_ja and message_ja != error_message(err, "en"), message_ja
    assert "{" not in message_ja


def test_every_error_key_of_the_lab_is_exercised_and_translated():
    data = json.loads((ASSETS / "i18n" / "labs_lr.json").read_text(encoding="utf-8"))
    keys = {k.removeprefix("errors.") for k in data["en"] if k.startswith("errors.")}
    assert keys == {key for _, key, _, _ in BAD}
    assert all(k.startswith(("labs.lr.", "errors.labs_lr_")) for k in data["en"])


def test_limits_stated_in_the_ui_match_config():
    en = json.loads((ASSETS / "i18n" / "labs_lr.json").read_text(encoding="utf-8"))["en"]
    assert f"1 to {config.LR_GD_MAX_STEPS:,}" in en["labs.lr.gd.steps_info"]
    assert f"1 to {config.LR_TRAIN_MAX_STEPS:,}" in en["labs.lr.train.steps_info"]
    assert f"{config.LR_TRAIN_SECONDS:g} s" in en["labs.lr.train.steps_info"]
    assert (
        f"{config.LR_CURVATURE_MIN:g} to {config.LR_CURVATURE_MAX:g}" in en["labs.lr.gd.lam_info"]
    )
    assert f"1 to {config.LR_SCHEDULE_MAX_STEPS:,}" in en["labs.lr.sched.total_info"]
    assert "2.5e-4" in en["labs.lr.sched.peak_info"] and config.LR_SCHEDULE_PEAK == 2.5e-4


# --- through the running app ---------------------------------------------------------------------
def test_descent_api(client):
    from llmviz.ui.labs_lr import BowlScreen

    out = BowlScreen.named(client.predict(0.15, 50, 10, 1, 30, api_name="/labs_learning_rate"))
    large = lr.descend(lr.Bowl((10.0, 1.0), 30.0), 2.1 / 10, 50)
    assert f"diverged after {large.diverged_at} steps" in out["summary"]
    assert "α = 0.15 (yours)" in out["summary"] and "reached the bottom" in out["summary"]
    assert out["bowl"] is not None and out["losses"] is not None


def test_training_api_streams_to_a_result(client):
    from llmviz.ui.labs_lr import TrainScreen

    out = TrainScreen.named(client.predict("ja", 0.5, 300, 1e300, 40, api_name="/labs_lr_training"))
    assert "40 steps in" in out["summary"]
    assert "diverged at step 1" in out["summary"]
    assert out["samples"].count('class="labs-lr-sample"') == 3 and "\ufffd" not in out["samples"]


def test_api_bad_input_in_japanese_and_the_next_request_works(app_url, client):
    with httpx.Client(timeout=120, headers={"accept-language": "ja-JP,ja;q=0.9"}) as http:
        res = harness.call(app_url, "labs_lr_schedule", [2.5e-4, 5000, 1000, 0.1], 120, client=http)
    assert res.status == "error" and "学習全体（1,000 ステップ）より短く" in res.message
    res = harness.call(app_url, "labs_learning_rate", [float("nan"), 50, 10, 1, 30], 120)
    assert res.status == "error" and "must be a number above 0" in res.message
    chart, summary = client.predict(2.5e-4, 2000, 20000, 0.1, api_name="/labs_lr_schedule")
    assert "**2,000**" in summary and "**2.50e-05**" in summary and chart is not None
