"""The pure sampler: masks equal transformers' warpers, the order equals generate's, draws are seeded.

The hand-built vectors are ported from transformers' own tests
(``tests/generation/test_logits_process.py``: ``test_top_k_dist_warper``,
``test_top_p_dist_warper``, ``test_min_p_dist_warper``, ``test_temperature_dist_warper``).
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import GenerationConfig
from transformers.generation.logits_process import (
    LogitsProcessorList,
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from llmviz import config, sampling
from llmviz.errors import UserError
from llmviz.sampling import (
    FILTER_ORDER,
    SamplingSettings,
    check_token_id,
    entropy_bits,
    filter_scores,
    min_p_keep,
    sample_next,
    top_k_keep,
    top_p_keep,
)


def removed(scores: torch.Tensor) -> list:
    return torch.isinf(scores).tolist()


# --- ported hand-built vectors ---------------------------------------------------------------------
def test_top_k_ramp_vectors():
    vocab, batch = 10, 2
    ramp = torch.arange(vocab, dtype=torch.float).unsqueeze(0).repeat(batch, 1)
    ramp[1:, : vocab // 2] = ramp[1:, : vocab // 2] + vocab
    keep = top_k_keep(ramp, 3)
    assert (~keep[0]).tolist() == 7 * [True] + 3 * [False]
    assert (~keep[1]).tolist() == 2 * [True] + 3 * [False] + 5 * [True]
    assert torch.equal(~keep, torch.isinf(TopKLogitsWarper(3)(None, ramp)))


def test_top_k_min_tokens_to_keep_vectors():
    uniform = torch.ones((2, 5)) / 5
    assert top_k_keep(uniform, 1, min_keep=3).all()  # a uniform distribution is not changed
    ramp = torch.arange(5, dtype=torch.float).unsqueeze(0).repeat(2, 1)
    assert (~top_k_keep(ramp, 1, min_keep=3)).sum(dim=-1).tolist() == [2, 2]  # min_keep overrides k
    lib = TopKLogitsWarper(top_k=1, filter_value=0.0, min_tokens_to_keep=3)(None, ramp)
    assert torch.equal(~top_k_keep(ramp, 1, min_keep=3), lib == 0.0)


def test_top_p_hand_built_distribution():
    dist = torch.log(torch.tensor([[0.3, 0.1, 0.1, 0.5], [0.15, 0.3, 0.3, 0.25]]))
    keep = top_p_keep(dist, 0.8)
    filtered = torch.exp(dist.masked_fill(~keep, -float("inf")))
    expected = torch.tensor([[0.3, 0.0, 0.0, 0.5], [0.0, 0.3, 0.3, 0.25]])
    torch.testing.assert_close(filtered, expected, rtol=1e-3, atol=1e-3)
    assert torch.equal(~keep, torch.isinf(TopPLogitsWarper(0.8)(None, dist)))


def test_top_p_extreme_logits_min_keep():
    ramp = torch.arange(10, dtype=torch.float).unsqueeze(0).repeat(2, 1) - 5
    ramp[1] = ramp[1] * 100.0
    keep = top_p_keep(ramp, 0.9, min_keep=2)
    assert keep.sum(dim=-1).tolist() == [3, 2]
    lib = TopPLogitsWarper(0.9, min_tokens_to_keep=2, filter_value=0.0)(None, ramp)
    assert torch.equal(keep, lib != 0.0)


def test_min_p_hand_built_distribution():
    dist = torch.log(
        torch.tensor(
            [
                [0.9, 0.0274, 0.047, 0.0274],  # 0.047 > 0.9 * 0.05 survives
                [0.15, 0.3, 0.3, 0.25],  # no dominant token: all survive
                [0.97, 0.01, 0.01, 0.01],  # only the first survives
            ]
        )
    )
    keep = min_p_keep(dist, 0.05)
    filtered = torch.exp(dist.masked_fill(~keep, -float("inf")))
    expected = torch.tensor([[0.9, 0.0, 0.047, 0.0], [0.15, 0.3, 0.3, 0.25], [0.97, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(filtered, expected, rtol=1e-3, atol=1e-3)
    assert torch.equal(~keep, torch.isinf(MinPLogitsWarper(0.05)(None, dist)))


def test_min_p_extreme_logits_min_keep():
    ramp = (torch.arange(10, dtype=torch.float) - 5).unsqueeze(0).repeat(2, 1)
    ramp[1] = ramp[1] * 100.0
    keep = min_p_keep(ramp, 0.9, min_keep=2)
    assert keep.sum(dim=-1).tolist() == [2, 2]
    lib = MinPLogitsWarper(0.9, min_tokens_to_keep=2, filter_value=0.0)(None, ramp)
    assert torch.equal(keep, lib != 0.0)


def test_temperature_sharpens_and_flattens_like_the_library():
    length = 20
    scores = torch.ones(length) / length
    scores[5] = 1 / length + 0.1  # a peak
    scores[10] = 1 / length - 0.4  # a valley
    probs = torch.softmax(scores, -1)
    sharp = sample_next(scores, SamplingSettings(temperature=0.5, top_k=0), draw_token=False)
    smooth = sample_next(scores, SamplingSettings(temperature=1.3, top_k=0), draw_token=False)
    assert sharp.tempered_probs.max() > probs.max() and sharp.tempered_probs.min() < probs.min()
    assert smooth.tempered_probs.max() < probs.max() and smooth.tempered_probs.min() > probs.min()
    lib = torch.softmax(TemperatureLogitsWarper(0.5)(None, scores[None])[0], -1)
    np.testing.assert_array_equal(sharp.tempered_probs, lib.numpy())
    uniform = sample_next(torch.zeros(8), SamplingSettings(temperature=0.5), draw_token=False)
    np.testing.assert_allclose(uniform.tempered_probs, np.full(8, 1 / 8), rtol=1e-6)


def test_filters_do_not_change_logits_in_place():
    logits = torch.randn(50)
    before = logits.clone()
    filter_scores(logits, SamplingSettings(temperature=0.7, top_k=5, top_p=0.5, min_p=0.1))
    assert torch.equal(logits, before)


# --- the same pipeline as generate ------------------------------------------------------------------
def generate_processors(model, settings: SamplingSettings) -> LogitsProcessorList:
    """The warpers ``model.generate`` would build for these settings (its own private builder)."""
    gen = GenerationConfig(**settings.generate_kwargs())
    gen.update(**GenerationConfig._get_default_generation_params(), defaults_only=True)
    return model._get_logits_processor(generation_config=gen, input_ids_seq_length=1, device="cpu")


def test_generate_builds_the_filters_in_our_order(tiny_llama):
    procs = generate_processors(
        tiny_llama, SamplingSettings(temperature=0.7, top_k=10, top_p=0.9, min_p=0.05)
    )
    names = [type(p).__name__ for p in procs]
    assert names == [
        "TemperatureLogitsWarper",
        "TopKLogitsWarper",
        "TopPLogitsWarper",
        "MinPLogitsWarper",
    ]
    assert FILTER_ORDER == ("temperature", "top_k", "top_p", "min_p")


def test_generate_applies_top_k_50_by_default(tiny_llama):
    gen = GenerationConfig(do_sample=True)
    gen.update(**GenerationConfig._get_default_generation_params(), defaults_only=True)
    procs = tiny_llama._get_logits_processor(
        generation_config=gen, input_ids_seq_length=1, device="cpu"
    )
    top_k = [p for p in procs if isinstance(p, TopKLogitsWarper)]
    assert [p.top_k for p in top_k] == [50] == [SamplingSettings().top_k]


SETTINGS = [
    SamplingSettings(),
    SamplingSettings(temperature=0.7, top_k=0, top_p=0.9),
    SamplingSettings(temperature=1.5, top_k=20, top_p=0.8, min_p=0.05),
    SamplingSettings(temperature=0.3, top_k=3, top_p=1.0, min_p=0.2),
    SamplingSettings(temperature=2.0, top_k=0, top_p=0.5, min_p=0.0),
    SamplingSettings(temperature=1.0, top_k=1),
    SamplingSettings(temperature=0.01, top_k=0, top_p=0.99),
]


@pytest.mark.parametrize("settings_", SETTINGS, ids=str)
@pytest.mark.parametrize("kind", ["randn", "ties", "peaked"])
def test_final_scores_equal_generate_pipeline(tiny_llama, settings_, kind):
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(400, generator=gen) * 3
    if kind == "ties":  # many exact ties around the cut-offs
        logits = torch.round(logits)
    if kind == "peaked":
        logits[7] += 25
    lib = generate_processors(tiny_llama, settings_)(None, logits[None].clone())[0]
    ours = filter_scores(logits, settings_).final
    assert torch.equal(ours, lib)
    step = sample_next(logits, settings_, draw_token=False)
    assert np.array_equal(step.kept_min_p, torch.isfinite(lib).numpy())
    assert step.n_survivors == int(torch.isfinite(lib).sum())


def test_stage_masks_equal_each_warper_on_its_own_input():
    gen = torch.Generator().manual_seed(11)
    logits = torch.randn(1000, generator=gen) * 2
    s = SamplingSettings(temperature=0.8, top_k=100, top_p=0.7, min_p=0.1)
    step = sample_next(logits, s, draw_token=False)
    tempered = TemperatureLogitsWarper(0.8)(None, logits[None])
    after_k = TopKLogitsWarper(100)(None, tempered)
    after_p = TopPLogitsWarper(0.7)(None, after_k)
    after_m = MinPLogitsWarper(0.1)(None, after_p)
    assert np.array_equal(step.kept_top_k, torch.isfinite(after_k[0]).numpy())
    assert np.array_equal(step.kept_top_p, torch.isfinite(after_p[0]).numpy())
    assert np.array_equal(step.kept_min_p, torch.isfinite(after_m[0]).numpy())
    np.testing.assert_array_equal(step.final_probs, torch.softmax(after_m[0], -1).numpy())
    # the cumulative curve is measured on what top-p sees: renormalized after top-k
    np.testing.assert_allclose(step.top_p_input_probs.sum(), 1.0, rtol=1e-5)
    assert (step.top_p_input_probs[~step.kept_top_k] == 0).all()


# --- drawing --------------------------------------------------------------------------------------------
def test_draw_equals_torch_multinomial_with_the_same_seed():
    logits = torch.randn(300, generator=torch.Generator().manual_seed(1))
    s = SamplingSettings(temperature=1.2, top_k=40, top_p=0.9)
    ours = [sample_next(logits, s, torch.Generator().manual_seed(k)).chosen for k in range(20)]
    probs = torch.softmax(filter_scores(logits, s).final[None], -1)
    theirs = []
    for k in range(20):
        torch.manual_seed(k)
        theirs.append(int(torch.multinomial(probs, 1)[0, 0]))
    assert ours == theirs
    assert len(set(ours)) > 1  # the seeds really change the draw


def test_chosen_token_always_survives():
    logits = torch.randn(500, generator=torch.Generator().manual_seed(2))
    s = SamplingSettings(temperature=1.0, top_k=30, top_p=0.6, min_p=0.05)
    rng = torch.Generator().manual_seed(0)
    for _ in range(50):
        step = sample_next(logits, s, rng)
        assert step.kept_min_p[step.chosen] and step.final_probs[step.chosen] > 0


def test_temperature_zero_is_greedy_and_consumes_no_randomness():
    logits = torch.tensor([0.1, 2.0, 1.9, -1.0])
    rng = torch.Generator().manual_seed(5)
    state = rng.get_state()
    step = sample_next(logits, SamplingSettings(temperature=0), rng)
    assert step.chosen == 1 and step.chosen_rank == 1
    assert step.n_survivors == 1 and step.final_probs.tolist() == [0, 1, 0, 0]
    assert step.removed_by([0, 1]) == ["greedy", ""]
    assert torch.equal(rng.get_state(), state)
    assert SamplingSettings(temperature=0).generate_kwargs() == {"do_sample": False}


def test_forced_token_is_recorded_with_its_probability_and_rank():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    step = sample_next(logits, SamplingSettings(top_k=2), forced=3)
    assert step.forced and step.chosen == 3 and step.chosen_rank == 4
    assert (
        step.final_probs[3] == 0
    )  # forcing a removed token is allowed; it had 0 after the filters
    assert step.removed_by([0, 2, 3]) == ["", "top_k", "top_k"]


def test_numbers_a_teacher_points_at():
    uniform = sample_next(torch.zeros(8), SamplingSettings(top_k=0), draw_token=False)
    assert uniform.entropy_bits == pytest.approx(3.0)
    assert uniform.effective_choices == pytest.approx(8.0)
    step = sample_next(
        torch.log(torch.tensor([0.5, 0.3, 0.1, 0.1])),
        SamplingSettings(top_k=0, top_p=0.8),
        forced=0,
    )
    assert step.n_survivors == 2
    assert step.survivor_mass == pytest.approx(0.8, abs=1e-6)
    assert step.final_probs[:2] == pytest.approx([0.625, 0.375], abs=1e-6)
    assert entropy_bits(np.array([0.5, 0.5, 0.0])) == pytest.approx(1.0)
    assert step.top_ids(3).tolist() == [0, 1, 2]
    assert step.nucleus_curve(4)[:2] == pytest.approx([0.5, 0.8], abs=1e-6)


def test_removed_by_names_the_first_filter_that_removed_each_token():
    logits = torch.log(torch.tensor([0.4, 0.3, 0.2, 0.06, 0.04]))
    step = sample_next(logits, SamplingSettings(top_k=4, top_p=0.85, min_p=0.6), draw_token=False)
    # top-k 4 drops 0.04; top-p 0.85 (of the renormalized 4) drops 0.06; min-p 0.6 x top drops 0.2
    assert step.removed_by(range(5)) == ["", "", "min_p", "top_p", "top_k"]


def test_module_docstring_example_runs():
    assert doctest.testmod(sampling).failed == 0


# --- properties -----------------------------------------------------------------------------------------
logit_vectors = st.lists(
    st.floats(-30, 30, allow_nan=False, allow_infinity=False), min_size=1, max_size=60
).map(lambda xs: torch.tensor(xs, dtype=torch.float32))
temperatures = st.one_of(st.just(0.0), st.floats(config.SAMPLING_MIN_TEMPERATURE, 5.0))
top_ps = st.floats(0.001, 1.0)
min_ps = st.floats(0.0, 1.0)


@settings(max_examples=150, deadline=None)
@given(logit_vectors, temperatures, st.integers(0, 70), top_ps, min_ps, st.integers(0, 2**31 - 1))
def test_final_distribution_is_a_distribution_with_a_survivor(logits, t, k, p, m, seed):
    step = sample_next(
        logits,
        SamplingSettings(temperature=t, top_k=k, top_p=p, min_p=m),
        torch.Generator().manual_seed(seed),
    )
    assert step.n_survivors >= 1
    assert math.isclose(float(step.final_probs.astype(np.float64).sum()), 1.0, rel_tol=1e-5)
    assert math.isclose(float(step.original_probs.astype(np.float64).sum()), 1.0, rel_tol=1e-5)
    assert step.kept_min_p[step.chosen]
    # each stage only removes: survivors are nested
    assert not (step.kept_top_p & ~step.kept_top_k).any()
    assert not (step.kept_min_p & ~step.kept_top_p).any()
    assert 0 < step.survivor_mass <= 1 + 1e-6


@settings(max_examples=100, deadline=None)
@given(logit_vectors, st.integers(0, 70), st.integers(0, 70))
def test_top_k_mask_grows_with_k(logits, k1, k2):
    small, large = sorted((k1, k2))
    if small == 0:  # 0 means "off": keeps everything, the largest set
        small, large = large, 0
    assert not (top_k_keep(logits, small) & ~top_k_keep(logits, large)).any()


@settings(max_examples=100, deadline=None)
@given(logit_vectors, top_ps, top_ps)
def test_top_p_mask_grows_with_p(logits, p1, p2):
    small, large = sorted((p1, p2))
    assert not (top_p_keep(logits, small) & ~top_p_keep(logits, large)).any()


@settings(max_examples=100, deadline=None)
@given(logit_vectors, min_ps, min_ps)
def test_min_p_mask_shrinks_with_min_p(logits, m1, m2):
    small, large = sorted((m1, m2))
    assert not (min_p_keep(logits, large) & ~min_p_keep(logits, small)).any()


@settings(max_examples=60, deadline=None)
@given(logit_vectors, st.floats(0.05, 5.0), st.integers(0, 70), top_ps, min_ps)
def test_masks_equal_transformers_on_random_vectors(logits, t, k, p, m):
    s = SamplingSettings(temperature=t, top_k=k, top_p=p, min_p=m)
    procs = LogitsProcessorList([TemperatureLogitsWarper(float(t))])
    if k:
        procs.append(TopKLogitsWarper(k))
    if p < 1:
        procs.append(TopPLogitsWarper(p))
    procs.append(MinPLogitsWarper(m))
    lib = procs(None, logits[None].clone())[0]
    assert torch.equal(torch.isfinite(filter_scores(logits, s).final), torch.isfinite(lib))


# --- bad input ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"temperature": -0.5}, "between 0 and 5"),
        ({"temperature": float("nan")}, "between 0 and 5"),
        ({"temperature": 1e9}, "between 0 and 5"),
        ({"temperature": float("inf")}, "between 0 and 5"),
        ({"temperature": 1e-9}, "use 0 for greedy"),
        ({"temperature": "hot"}, "must be a number"),
        ({"temperature": None}, "must be a number"),
        ({"top_p": 0}, "greater than 0 and at most 1"),
        ({"top_p": -0.1}, "greater than 0 and at most 1"),
        ({"top_p": 1.01}, "greater than 0 and at most 1"),
        ({"top_p": float("nan")}, "greater than 0 and at most 1"),
        ({"top_k": -1}, "whole number >= 0"),
        ({"top_k": 2.5}, "whole number >= 0"),
        ({"top_k": float("nan")}, "whole number >= 0"),
        ({"top_k": float("inf")}, "whole number >= 0"),
        ({"top_k": -float("inf")}, "whole number >= 0"),
        ({"min_p": -0.01}, "between 0 and 1"),
        ({"min_p": 1.5}, "between 0 and 1"),
        ({"min_p": float("nan")}, "between 0 and 1"),
    ],
)
def test_bad_settings_raise_user_error_with_the_limit(kwargs, needle):
    with pytest.raises(UserError, match=needle) as info:
        SamplingSettings(**kwargs)
    assert info.value.key and info.value.key.startswith("sampling_")


def test_settings_accept_integral_floats_and_edges():
    s = SamplingSettings(temperature=0, top_k=50.0, top_p=1, min_p=1)
    assert s.top_k == 50 and isinstance(s.top_k, int) and s.greedy
    assert SamplingSettings(temperature=5, top_p=1e-6, min_p=0).temperature == 5.0


@pytest.mark.parametrize("bad", [-1, 400, 2.5, float("nan"), "x", 10**12, float("inf"), -float("inf")])
def test_forced_token_outside_the_vocabulary(bad):
    with pytest.raises(UserError, match=r"0 to 399|number"):
        check_token_id(bad, 400)
    with pytest.raises(UserError):
        sample_next(torch.zeros(400), SamplingSettings(), forced=bad)
