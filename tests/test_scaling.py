"""Scaling-law arithmetic: presets reproduced by hand from the formulas' constants."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmviz import config, scaling
from llmviz.errors import UserError

# The constants of the Chinchilla fit, written out again here on purpose.
A, B, ALPHA, BETA, L0 = 406.4, 410.7, 0.34, 0.28, 1.69


def by_hand_loss(n: float, d: float) -> float:
    return A / n**ALPHA + B / d**BETA + L0


@pytest.mark.parametrize(
    ("key", "n", "d"),
    [
        ("gpt2", 1.5e9, 10e9),
        ("gpt3", 175e9, 300e9),
        ("gopher", 280e9, 300e9),
        ("chinchilla", 70e9, 1.4e12),
        ("llama3-8b", 8e9, 15e12),
    ],
)
def test_presets_reproduce_6ND_and_the_fit(key, n, d):
    s = scaling.summarize(key)
    assert (s.preset.n_params, s.preset.n_tokens) == (n, d)
    assert s.flops == pytest.approx(6 * n * d, rel=1e-12)
    assert s.loss == pytest.approx(by_hand_loss(n, d), rel=1e-12)
    assert s.optimum.flops == s.flops


def test_headline_numbers():
    assert scaling.training_flops(175e9, 300e9) == pytest.approx(3.15e23, rel=1e-12)
    assert scaling.training_flops(70e9, 1.4e12) == pytest.approx(5.88e23, rel=1e-12)
    assert scaling.training_flops(280e9, 300e9) == pytest.approx(5.04e23, rel=1e-12)
    assert scaling.inference_flops_per_token(8e9) == 1.6e10
    # The Chinchilla paper's own comparison: Gopher 1.993 vs Chinchilla 1.937 (3 decimals).
    assert round(scaling.loss(280e9, 300e9), 3) == 1.993
    assert round(scaling.loss(70e9, 1.4e12), 3) == 1.937


def test_chinchilla_beats_gopher_at_about_the_same_compute():
    ch, go = scaling.summarize("chinchilla"), scaling.summarize("gopher")
    assert abs(ch.flops / go.flops - 1) < 0.2  # 5.88e23 vs 5.04e23
    assert ch.loss < go.loss
    assert go.preset.n_params == 4 * ch.preset.n_params
    # Even squeezed into Gopher's smaller budget, a 70B model beats Gopher.
    d, losses = scaling.iso_compute(go.flops, np.array([70e9, 280e9]))
    assert losses[0] < losses[1] == pytest.approx(go.loss)
    assert d[0] == pytest.approx(go.flops / (6 * 70e9))


@pytest.mark.parametrize("budget", [1e18, 5.88e23, 1e26])
def test_compute_optimal_closed_form_matches_numeric_search(budget):
    opt = scaling.compute_optimal(budget)
    g = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    assert opt.n_params == pytest.approx(g * (budget / 6) ** (BETA / (ALPHA + BETA)), rel=1e-12)
    assert 6 * opt.n_params * opt.n_tokens == pytest.approx(budget, rel=1e-12)
    n = scaling.log_grid(opt.n_params / 100, opt.n_params * 100, 20_001)
    _, losses = scaling.iso_compute(budget, n)
    best = n[np.argmin(losses)]
    assert best == pytest.approx(opt.n_params, rel=2e-3)
    assert opt.loss <= losses.min() + 1e-12


def test_loss_is_vectorized_and_decreasing():
    n = scaling.log_grid(1e8, 1e12, 5)
    out = scaling.loss(n, 1e12)
    assert out.shape == (5,) and np.all(np.diff(out) < 0)
    assert np.all(out > L0)
    terms = scaling.loss_terms(70e9, 1.4e12)
    assert sum(terms) == pytest.approx(by_hand_loss(70e9, 1.4e12))


def test_training_time_by_hand():
    t = scaling.training_time(3.15e23, "a100", 1024, 0.4)
    seconds = 3.15e23 / (1024 * 312e12 * 0.4)
    assert t.seconds == pytest.approx(seconds)
    assert t.days == pytest.approx(seconds / 86400)
    assert t.gpu_hours == pytest.approx(seconds * 1024 / 3600)
    # Twice the GPUs: half the time, same GPU-hours.
    t2 = scaling.training_time(3.15e23, "a100", 2048, 0.4)
    assert t2.days == pytest.approx(t.days / 2) and t2.gpu_hours == pytest.approx(t.gpu_hours)


def test_gpu_presets_are_dense_datasheet_numbers():
    assert scaling.GPUS["a100"].peak_flops == 312e12
    assert scaling.GPUS["h100"].peak_flops == 1979e12 / 2
    assert scaling.GPUS["rtx4090"].peak_flops == 165.2e12
    assert scaling.GPUS["v100"].peak_flops == 125e12


def test_inference_speed_bounds():
    compute, memory = scaling.inference_tokens_per_second(8e9, "h100", 1.0, 2.0)
    assert compute == pytest.approx(989.5e12 / 1.6e10)
    assert memory == pytest.approx(3.35e12 / 16e9)
    assert memory < compute  # one user: memory-bound


@pytest.mark.parametrize(
    ("call", "key"),
    [
        (lambda: scaling.training_flops(0, 1e9), "scaling_n_positive"),
        (lambda: scaling.training_flops(-5, 1e9), "scaling_n_positive"),
        (lambda: scaling.training_flops(float("nan"), 1e9), "scaling_n_positive"),
        (lambda: scaling.training_flops("lots", 1e9), "scaling_n_positive"),
        (lambda: scaling.training_flops(1e9, 0), "scaling_d_positive"),
        (lambda: scaling.training_flops(1e9, float("inf")), "scaling_d_positive"),
        (lambda: scaling.training_flops(config.SCALING_MAX_PARAMS * 10, 1e9), "scaling_n_range"),
        (lambda: scaling.training_flops(1e9, 1e30), "scaling_d_range"),
        (lambda: scaling.training_flops(0.5, 1e9), "scaling_n_range"),
        (lambda: scaling.compute_optimal(0), "scaling_c_positive"),
        (lambda: scaling.compute_optimal(1e40), "scaling_c_range"),
        (lambda: scaling.training_time(1e23, "tpu-v9", 8, 0.4), "scaling_gpu_unknown"),
        (lambda: scaling.training_time(1e23, "h100", 0, 0.4), "scaling_gpus"),
        (lambda: scaling.training_time(1e23, "h100", 2.5, 0.4), "scaling_gpus"),
        (lambda: scaling.training_time(1e23, "h100", 8, 0), "scaling_utilization"),
        (lambda: scaling.training_time(1e23, "h100", 8, 1.5), "scaling_utilization"),
        (lambda: scaling.get_preset("gpt-9"), "scaling_preset_unknown"),
        (lambda: scaling.loss(np.array([1e9, -1.0]), 1e9), "scaling_loss_positive"),
    ],
)
def test_bad_input_is_a_user_error(call, key):
    with pytest.raises(UserError) as err:
        call()
    assert err.value.key == key
    assert len(err.value.message) > 20


def test_messages_say_what_to_do():
    with pytest.raises(UserError, match="positive number"):
        scaling.training_flops(-1, 1e9)
    with pytest.raises(UserError, match=r"outside the range.*e\.g\. 7e9"):
        scaling.training_flops(1e20, 1e9)
    assert math.isfinite(scaling.training_flops(1e14, 1e16))  # the limits themselves are accepted


@pytest.mark.parametrize(
    ("call", "key"),
    [
        (lambda: scaling.check_params(True), "scaling_n_positive"),  # a bool is not a count
        (lambda: scaling.check_tokens("\ud800"), "scaling_d_positive"),
        (lambda: scaling.check_budget(float("-inf")), "scaling_c_positive"),
        (lambda: scaling.training_time(1e23, "h100", True, 0.4), "scaling_gpus"),
        (lambda: scaling.training_time(1e23, "h100", float("inf"), 0.4), "scaling_gpus"),
        (lambda: scaling.training_time(1e23, "h100", 8, float("inf")), "scaling_utilization"),
        (lambda: scaling.training_time(1e23, "h100", 8, "\ud800"), "scaling_utilization"),
        (lambda: scaling.training_time(1e23, "\ud800", 8, 0.4), "scaling_gpu_unknown"),
        (lambda: scaling.get_preset(None), "scaling_preset_unknown"),
    ],
)
def test_bad_values_are_refused_with_printable_messages(call, key):
    with pytest.raises(UserError) as err:
        call()
    assert err.value.key == key
    err.value.message.encode("utf-8")
    assert all(str(v).encode("utf-8") for v in err.value.params.values())


def test_numeric_text_is_accepted_like_the_number():
    assert scaling.training_time(1e23, "h100", "8", "0.4").n_gpus == 8
    assert scaling.check_params(" 7e9 ") == 7e9


def test_doctests():
    import doctest

    assert doctest.testmod(scaling).failed == 0


def test_report_holds_the_labs_numbers():
    r = scaling.report("70e9", 1.4e12, 5.88e23, "a100", "1024", 0.4)
    assert r.flops == pytest.approx(6 * 70e9 * 1.4e12)
    assert r.equivalent_tokens == pytest.approx(3 * 1.4e12)  # 6ND / 2N
    assert r.weights_bytes == 2 * 70e9 and r.tokens_per_param == pytest.approx(20)
    assert r.loss == pytest.approx(by_hand_loss(70e9, 1.4e12))
    assert r.time.n_gpus == 1024 and r.time.gpu is scaling.GPUS["a100"]
    assert r.optimum == scaling.compute_optimal(5.88e23)
    assert (r.compute_tps, r.memory_tps) == scaling.inference_tokens_per_second(70e9, "a100")
    with pytest.raises(UserError) as err:
        scaling.report(70e9, 1.4e12, 0, "a100", 8, 0.4)
    assert err.value.key == "scaling_c_positive"


def test_duration_units_and_the_verdict():
    assert scaling.duration(730) == (2.0, "years")
    assert scaling.duration(1) == (1, "days")
    assert scaling.duration(0.5) == (12.0, "hours")
    v = scaling.chinchilla_vs_gopher()
    assert v.flops_ratio == pytest.approx(5.88e23 / 5.04e23)
