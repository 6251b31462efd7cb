"""The quantization lab: hand-written methods tested equal to bitsandbytes, error numbers, zeros."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from llmviz import quantize
from llmviz.errors import UserError


@pytest.fixture
def weights():
    """Gaussian weights like a trained layer (std 0.02), with one outlier, in an odd shape."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((72, 200)) * 0.02).astype(np.float32)
    w[5, 7] = 0.6
    return w


def test_naive_rounding_turns_small_weights_into_zeros(weights):
    r = quantize.quantize(weights, "naive", 3)
    assert r.zero_share > 0.99  # the textbook's point: |w| < 0.5 rounds to 0
    assert set(np.unique(r.dequantized)) <= {-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0}


def test_naive_range_is_the_signed_integer_range():
    w = np.array([[-100.0, -4.4, 0.4, 2.6, 100.0]], dtype=np.float32)
    assert quantize.naive(w, 3).tolist() == [[-4.0, -4.0, 0.0, 3.0, 3.0]]
    assert quantize.naive(w, 8).tolist() == [[-100.0, -4.0, 0.0, 3.0, 100.0]]


def test_absmax_row_at_8_bits_equals_bitsandbytes_int8(weights):
    import bitsandbytes.functional as F

    cb, scb, _ = F.int8_vectorwise_quant(torch.from_numpy(weights))
    reference = (cb.float() * scb[:, None] / 127).numpy()
    np.testing.assert_allclose(quantize.absmax(weights, 8, "row"), reference, rtol=0, atol=1e-7)


@pytest.mark.parametrize("shape", [(72, 200), (64, 64), (3, 7), (1, 1000)])
def test_nf4_by_hand_equals_bitsandbytes(shape):
    import bitsandbytes.functional as F

    rng = np.random.default_rng(1)
    w = (rng.standard_normal(shape) * 0.05).astype(np.float32)
    q, state = F.quantize_4bit(torch.from_numpy(w), blocksize=64, quant_type="nf4")
    reference = F.dequantize_4bit(q, state).numpy()
    np.testing.assert_array_equal(quantize.nf4(w), reference)


def test_nf4_levels_are_bitsandbytes_table():
    levels = quantize.nf4_levels()
    assert levels.shape == (16,) and levels[0] == -1.0 and levels[-1] == 1.0 and 0.0 in levels
    assert np.all(np.diff(levels) > 0)


def test_finer_scales_give_smaller_errors(weights):
    by = {r.method: r for r in quantize.quantize_all(weights, 4)}
    assert (
        by["naive"].rel_error > by["tensor"].rel_error > by["row"].rel_error > by["block"].rel_error
    )
    assert by["nf4"].rel_error < by["block"].rel_error  # same 4 bits and blocks, better levels
    assert by["tensor"].zero_share > by["row"].zero_share > by["block"].zero_share
    assert by["block"].scale_bits_per_weight == 0.5 and by["row"].scale_bits_per_weight == 32 / 200
    assert by["nf4"].bits == 4


def test_each_bit_buys_about_6_db(weights):
    sqnr = [quantize.quantize(weights, "block", b).sqnr_db for b in range(2, 9)]
    assert all(b > a for a, b in zip(sqnr, sqnr[1:], strict=False))
    slope = (sqnr[-1] - sqnr[2]) / 4  # 4 -> 8 bits
    assert 5.0 < slope < 7.0


def test_error_numbers_by_hand():
    w = np.array([3.0, 4.0])
    rel, sqnr, zeros = quantize.errors(w, np.array([3.0, 0.0]))
    assert rel == pytest.approx(0.8)  # |(0, 4)| / |(3, 4)|
    assert sqnr == pytest.approx(10 * math.log10(25 / 16))
    assert zeros == 0.5
    assert quantize.errors(w, w)[1] == math.inf


def test_histogram_counts_every_weight(weights):
    edges = np.linspace(-0.1, 0.1, 41)  # narrower than the outlier: clipped into the end bin
    counts = quantize.histogram(weights, edges)
    assert counts.sum() == weights.size and counts[-1] >= 1


@pytest.mark.parametrize("bad", [1, 9, 0, -3, 2.5, "abc", None, float("nan")])
def test_bad_bits(weights, bad):
    with pytest.raises(UserError) as err:
        quantize.quantize(weights, "block", bad)
    assert err.value.key == "mem_bits_range" and "2 to 8" in err.value.message


def test_weight_matrix_of_a_real_model(tiny_llama):
    layers, names = quantize.matrix_names(tiny_llama)
    assert layers == 2 and "self_attn.q_proj" in names and "mlp.down_proj" in names
    w = quantize.weight_matrix(tiny_llama, 1, "mlp.down_proj")
    expected = tiny_llama.model.layers[1].mlp.down_proj.weight.detach().numpy()
    np.testing.assert_array_equal(w, expected)


@pytest.mark.parametrize(
    ("layer", "matrix", "key"),
    [
        (2, "mlp.down_proj", "mem_layer_range"),
        (-1, "mlp.down_proj", "mem_layer_range"),
        ("x", "mlp.down_proj", "mem_layer_range"),
        (float("inf"), "mlp.down_proj", "mem_layer_range"),  # was OverflowError
        (float("-inf"), "mlp.down_proj", "mem_layer_range"),
        (0.5, "mlp.down_proj", "mem_layer_range"),
        (0, "mlp.nope", "mem_matrix_unknown"),
    ],
)
def test_weight_matrix_bad_choice(tiny_llama, layer, matrix, key):
    with pytest.raises(UserError) as err:
        quantize.weight_matrix(tiny_llama, layer, matrix)
    assert err.value.key == key


def test_weight_matrix_caps_the_size(tiny_llama, monkeypatch):
    monkeypatch.setattr("llmviz.config.MEMORY_LAB_MAX_ELEMENTS", 32 * 10)
    w = quantize.weight_matrix(tiny_llama, 0, "self_attn.q_proj")  # 32 x 32
    assert w.shape == (10, 32)


@pytest.mark.parametrize("bad", [True, "\ud800", float("inf"), float("-inf"), "3.5"])
def test_bad_bits_messages_are_printable(bad):
    with pytest.raises(UserError) as err:
        quantize.check_bits(bad)
    assert err.value.key == "mem_bits_range"
    err.value.message.encode("utf-8")
    assert all(str(v).encode("utf-8") for v in err.value.params.values())
    assert quantize.check_bits(" 4 ") == 4


def test_doctests():
    import doctest

    assert doctest.testmod(quantize).failed == 0


def test_histogram_edges_are_symmetric_and_cover_every_weight(weights):
    edges = quantize.histogram_edges(weights)
    assert len(edges) == 121 and edges[0] == -edges[-1] == -np.abs(weights).max()
    assert 0.0 in edges  # even bins: 0 on an edge, the spike of zeros stands alone
    assert quantize.histogram(weights, edges).sum() == weights.size
    assert quantize.histogram_edges(np.zeros((2, 2)), 4).tolist() == [-1, -0.5, 0, 0.5, 1]
    amax, typical = quantize.magnitudes(weights)
    assert amax == np.abs(weights).max() and typical == pytest.approx(np.median(np.abs(weights)))
    assert quantize.lab_layer_slider(18) == (17, 3) and quantize.lab_layer_slider(1) == (0, 0)
