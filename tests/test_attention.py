"""Attention core and figures: real eager weights from tiny random models and the packaged models,
hand-built maps for the statistics, and the pictures' geometry."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from llmviz import config
from llmviz.attention import (
    PATTERNS,
    compute_attention,
    downsample,
    encode_text,
    focus,
    head_layout,
    head_stats,
    hide_first_token,
    strongest_head,
)
from llmviz.errors import UserError
from llmviz.plots.attention import (
    MASKED,
    colorize,
    focus_figure,
    head_figure,
    overview_geometry,
    overview_image,
    overview_tile_at,
    overview_tile_center,
    stats_figure,
)
from llmviz.tokens import token_labels

MIXED = "The cat sat on the mat. 猫が好きな猫。The cat!"


def assert_causal_distributions(weights: np.ndarray, atol: float = 1e-5) -> None:
    t = weights.shape[-1]
    assert weights.dtype == np.float32
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=atol)
    assert np.all(weights[..., np.triu_indices(t, 1)[0], np.triu_indices(t, 1)[1]] == 0.0)
    assert np.all(weights >= 0.0)


# --- tiny random models --------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_gemma3"])
def test_tiny_models_rows_sum_to_one_and_future_is_zero(fixture, request, tiny_tokenizer):
    model = request.getfixturevalue(fixture)
    ids = encode_text(tiny_tokenizer, MIXED)
    r = compute_attention(model, tiny_tokenizer, ids)
    assert r.weights.shape == (2, 4, len(ids), len(ids))
    assert_causal_distributions(r.weights)
    assert r.token_ids == tuple(ids)
    assert r.labels == tuple(token_labels(tiny_tokenizer, ids))


def test_results_are_read_only(tiny_llama, tiny_tokenizer):
    """The tab shares results between sessions: nobody may edit them in place."""
    r = compute_attention(tiny_llama, tiny_tokenizer, encode_text(tiny_tokenizer, "the cat"))
    with pytest.raises(ValueError, match="read-only"):
        r.weights[0, 0, 0, 0] = 0.5
    out = hide_first_token(r.weights)
    assert out.flags.writeable and downsample(r.weights, 1).flags.writeable


def test_weights_equal_the_full_models_output(tiny_llama, tiny_tokenizer):
    """Skipping the LM head changes nothing: same maps as transformers' own CausalLM forward."""
    ids = encode_text(tiny_tokenizer, MIXED)
    with torch.no_grad():
        out = tiny_llama(torch.tensor([ids]), output_attentions=True)
    expected = torch.stack([a[0] for a in out.attentions]).float().numpy()
    r = compute_attention(tiny_llama, tiny_tokenizer, ids)
    np.testing.assert_allclose(r.weights, expected, rtol=0, atol=1e-7)


def test_labels_match_tokens_one_to_one_with_repeats_and_japanese(tiny_llama, tiny_tokenizer):
    ids = encode_text(tiny_tokenizer, "猫猫 the the 猫")
    r = compute_attention(tiny_llama, tiny_tokenizer, ids)
    assert len(r.labels) == len(ids) == r.weights.shape[-1]
    assert all("\ufffd" not in label for label in r.labels)
    repeated = [i for i, x in enumerate(ids) if ids.count(x) > 1]
    assert repeated, "the text must repeat a token for this test to mean anything"
    fig = head_figure(r.weights[0, 0], r.labels, "t", "q", "k")
    axis = fig.layout.yaxis
    assert list(axis.tickvals) == list(range(len(ids)))  # one row per position, repeats kept
    assert list(axis.ticktext) == list(r.labels)
    assert fig.data[0].z.shape == (len(ids), len(ids))


def test_sliding_window_layers_really_cut_attention(tiny_tokenizer):
    """Gemma 3's local layers: eager weights are zero beyond the window, so a long enough text
    shows a diagonal band; global layers see everything."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=8,
        sliding_window=4,
        layer_types=["sliding_attention", "full_attention"],
        attn_implementation="eager",
    )
    model = Gemma3ForCausalLM(cfg).eval()
    ids = encode_text(tiny_tokenizer, "The animal didn't cross the street")
    r = compute_attention(model, tiny_tokenizer, ids)
    t = len(ids)
    assert t > 6
    dist = np.arange(t)[:, None] - np.arange(t)[None, :]
    assert np.all(r.weights[0][:, dist >= 4] == 0.0)  # local: only the last 4 tokens (incl. self)
    assert np.all(r.weights[1][:, dist >= 4] > 0.0)  # global: all earlier tokens
    assert_causal_distributions(r.weights)
    lay = r.layout
    assert lay.sliding_layers == (0,) and lay.sliding_window == 4
    assert lay.window_visible(t) and not lay.window_visible(4)
    assert lay.n_kv_heads == 1 and lay.group_size == 4 and lay.kv_head_of(3) == 0


def test_layout_of_tiny_llama(tiny_llama):
    lay = head_layout(tiny_llama)
    assert (lay.n_layers, lay.n_heads, lay.n_kv_heads, lay.group_size) == (2, 4, 2, 2)
    assert [lay.kv_head_of(h) for h in range(4)] == [0, 0, 1, 1]
    assert lay.is_gqa and lay.sliding_layers == () and lay.sliding_window is None


# --- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "needle"),
    [("", "empty"), (None, "empty"), ("   \n\t ", "only spaces"), ("\u3000", "only spaces")],
)
def test_empty_and_blank_text_are_refused(tiny_tokenizer, value, needle):
    with pytest.raises(UserError, match=needle):
        encode_text(tiny_tokenizer, value)


def test_token_cap_is_stated(tiny_tokenizer):
    limit = config.MAX_ATTENTION_TOKENS
    ok = encode_text(tiny_tokenizer, "a " * 50)
    assert 0 < len(ok) <= limit
    with pytest.raises(UserError, match=f"at most {limit} tokens") as err:
        encode_text(tiny_tokenizer, "the street " * 200)
    assert err.value.key == "att_too_long" and err.value.params["n"] > limit
    with pytest.raises(UserError, match="characters long") as err:
        encode_text(tiny_tokenizer, "x" * 1_000_000)
    assert err.value.key == "att_too_long_chars"
    small = encode_text(tiny_tokenizer, "cat " * 10, max_tokens=10**6)
    with pytest.raises(UserError, match="at most 5 tokens"):
        encode_text(tiny_tokenizer, "cat " * 10, max_tokens=5)
    assert len(small) > 5


def test_compute_refuses_empty_and_over_cap_ids(tiny_llama, tiny_tokenizer):
    with pytest.raises(UserError, match="empty"):
        compute_attention(tiny_llama, tiny_tokenizer, [])
    with pytest.raises(UserError, match="at most 256 tokens"):
        compute_attention(tiny_llama, tiny_tokenizer, [5] * 257)


def test_unknown_model_is_refused_before_anything_runs():
    from llmviz.models import get_spec

    with pytest.raises(UserError, match="Unknown model"):
        get_spec("no-such-model")


# --- transforms -----------------------------------------------------------------------------------
def test_hide_first_token_renormalises_rows():
    w = np.array([[1.0, 0, 0], [0.8, 0.2, 0], [0.5, 0.25, 0.25]], dtype=np.float32)
    out = hide_first_token(w)
    np.testing.assert_allclose(out, [[0, 0, 0], [0, 1, 0], [0, 0.5, 0.5]], atol=1e-7)
    assert w[1, 0] == np.float32(0.8)  # input untouched
    sink = np.array([[1.0, 0], [1.0, 0]], dtype=np.float32)
    assert np.all(hide_first_token(sink) == 0)  # nothing left to renormalise: stays empty


def test_hide_first_token_on_a_real_map(tiny_gemma3, tiny_tokenizer):
    r = compute_attention(tiny_gemma3, tiny_tokenizer, encode_text(tiny_tokenizer, MIXED))
    out = hide_first_token(r.weights)
    assert np.all(out[..., 0] == 0)
    np.testing.assert_allclose(out[..., 1:, :].sum(-1), 1.0, atol=1e-5)


def _brute_downsample(w: np.ndarray, size: int) -> np.ndarray:
    t = w.shape[-1]
    k = -(-t // size)
    p = -(-t // k)
    out = np.zeros((p, p))
    for a in range(p):
        for b in range(p):
            out[a, b] = w[a * k : (a + 1) * k, b * k : (b + 1) * k].mean()
    return out


@pytest.mark.parametrize(("t", "size"), [(4, 2), (5, 2), (7, 3), (128, 60), (256, 36), (10, 10)])
def test_downsample_is_a_block_mean(t, size):
    rng = np.random.default_rng(t)
    w = rng.random((t, t)).astype(np.float32)
    out = downsample(w[None, None], size)[0, 0]
    assert out.shape[0] <= size
    np.testing.assert_allclose(out, _brute_downsample(w, size), rtol=1e-5)


def test_downsample_docstring_example():
    w = np.array([[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0.2, 0.2, 0.6, 0], [0.1, 0.1, 0.1, 0.7]])
    np.testing.assert_allclose(downsample(w, 2), [[0.5, 0], [0.15, 0.35]], atol=1e-7)


# --- statistics on hand-built heads ----------------------------------------------------------------
def _heads(t: int) -> np.ndarray:
    """(1, 3, T, T): a previous-token head, a sink head and a uniform head."""
    prev = np.zeros((t, t))
    prev[0, 0] = 1
    prev[np.arange(1, t), np.arange(t - 1)] = 1
    sink = np.zeros((t, t))
    sink[:, 0] = 1
    uniform = np.tril(np.ones((t, t))) / np.arange(1, t + 1)[:, None]
    return np.stack([prev, sink, uniform])[None].astype(np.float32)


def test_stats_of_hand_built_heads():
    t = 6
    s = head_stats(_heads(t), [1, 2, 3, 4, 5, 6])
    i = np.arange(1, t)
    np.testing.assert_allclose(s.prev_share[0], [1, 1 / (t - 1), np.mean(1 / (i + 1))], rtol=1e-6)
    np.testing.assert_allclose(s.first_share[0], [1 / (t - 1), 1, np.mean(1 / (i + 1))], rtol=1e-6)
    np.testing.assert_allclose(s.lookback[0], [1, i.mean(), np.mean(i / 2)], rtol=1e-6)
    np.testing.assert_allclose(s.entropy[0], [0, 0, np.mean(np.log2(i + 1))], atol=1e-6)
    np.testing.assert_allclose(s.self_share[0], [0, 0, np.mean(1 / (i + 1))], atol=1e-6)
    assert np.all(np.isnan(s.same_token_share))  # no token repeats
    assert strongest_head(s, "previous")[:2] == (0, 0)
    assert strongest_head(s, "first")[:2] == (0, 1)
    assert strongest_head(s, "broad")[:2] == (0, 2)
    assert strongest_head(s, "same_token") is None
    assert s.of(0, 1)["first_share"] == pytest.approx(1.0)


def test_same_token_share_counts_earlier_copies_only():
    ids = [7, 8, 7, 8]
    copy_head = np.zeros((4, 4))
    copy_head[0, 0] = copy_head[1, 1] = 1
    copy_head[2, 0] = 1  # token 7 looks at its earlier copy
    copy_head[3, 1] = 0.5  # token 8: half on its earlier copy
    copy_head[3, 3] = 0.5  # ... and half on itself (not "earlier")
    s = head_stats(copy_head[None, None], ids)
    assert s.same_token_share[0, 0] == pytest.approx(0.75)
    assert PATTERNS["same_token"] == "same_token_share"


def test_one_token_has_no_statistics():
    s = head_stats(np.ones((2, 3, 1, 1), dtype=np.float32), [5])
    assert s.entropy.shape == (2, 3) and np.all(np.isnan(s.entropy))


def test_focus_rows_and_means():
    rng = np.random.default_rng(0)
    w = rng.random((3, 2, 5, 5)).astype(np.float32)
    f = focus(w, 1, 0, 3)
    np.testing.assert_array_equal(f.head, w[1, 0, 3, :4])
    np.testing.assert_allclose(f.layer_mean, w[1, :, 3, :4].mean(0), rtol=1e-6)
    np.testing.assert_allclose(f.model_mean, w[:, :, 3, :4].mean((0, 1)), rtol=1e-6)
    with pytest.raises(UserError, match="outside"):
        focus(w, 3, 0, 0)


# --- figures ---------------------------------------------------------------------------------------
def test_head_figure_masks_the_future_and_the_hidden_first_token():
    w = _heads(5)[0, 2]
    z = head_figure(w, list("abcde"), "t", "q", "k").data[0].z
    assert np.all(np.isnan(z[np.triu_indices(5, 1)])) and not np.any(np.isnan(np.tril(z)))
    z = head_figure(hide_first_token(w), list("abcde"), "t", "q", "k", hide_first=True).data[0].z
    assert np.all(np.isnan(z[:, 0]))


def test_long_texts_get_fewer_tick_labels_but_every_row():
    labels = [f"w{i}" for i in range(128)]
    fig = head_figure(np.eye(128, dtype=np.float32), labels, "t", "q", "k")
    ticks = list(fig.layout.xaxis.tickvals)
    assert len(ticks) <= 48 and ticks[0] == 0
    assert [fig.layout.xaxis.ticktext[j] for j in range(len(ticks))] == [labels[i] for i in ticks]
    assert fig.data[0].z.shape == (128, 128)
    assert len(fig.to_json()) < 120_000  # float32 base64: ~87 kB for 128 x 128


def test_overview_click_maps_back_to_each_tile():
    for n_layers, n_heads in [(18, 4), (30, 9), (2, 4)]:
        tile, pitch = overview_geometry(n_layers, n_heads)
        pooled = np.random.default_rng(0).random((n_layers, n_heads, 8, 8)).astype(np.float32)
        img = overview_image(pooled, [n_layers - 1], (0, 0))
        assert img.size == (40 + n_layers * pitch, 28 + n_heads * pitch)
        assert img.size[0] <= 1240
        for layer in range(n_layers):
            for head in range(n_heads):
                x, y = (int(v) for v in overview_tile_center(layer, head, n_layers, n_heads))
                assert overview_tile_at(x, y, n_layers, n_heads) == (layer, head)
        assert overview_tile_at(5, 5, n_layers, n_heads) is None  # the label margin
        assert overview_tile_at(40 + tile + 1, 30, n_layers, n_heads) is None  # a gap


def test_overview_tiles_grey_out_the_future():
    pooled = np.tril(np.ones((8, 8), dtype=np.float32))[None, None]
    img = np.asarray(overview_image(pooled, [], (0, 0)))
    tile, _ = overview_geometry(1, 1)
    top_right = img[28 + 4, 40 + tile - 4]
    bottom_left = img[28 + tile - 4, 40 + 4]
    assert tuple(top_right) == tuple(int(MASKED[i : i + 2], 16) for i in (1, 3, 5))
    assert tuple(bottom_left) == (30, 27, 75)  # the darkest colour: the tile's own maximum


def test_colorize_maps_nan_to_mask_and_ends_of_the_scale():
    rgb = colorize(np.array([0.0, 1.0, np.nan]))
    assert rgb.tolist() == [[255, 255, 255], [30, 27, 75], [229, 231, 235]]


def test_focus_and_stats_figures_are_small_and_labelled():
    f = focus_figure(["a", "b", "a"], [("h", np.array([0.2, 0.3, 0.5]))], "t", "k", "w")
    assert list(f.layout.xaxis.ticktext) == ["a", "b", "a"]
    values = np.random.default_rng(1).random((30, 9)).astype(np.float32)
    s = stats_figure([("e", values, ".1f"), ("f", values, ".0%")], (4, 2), "layer", "head")
    assert len(s.data) == 2 and len(s.layout.shapes) == 2
    assert len(json.dumps(s.to_plotly_json(), default=str)) < 60_000


# --- the real packaged models ----------------------------------------------------------------------
def _tolerance(loaded) -> float:
    """Rows sum to 1 within float rounding: fp32 (this CPU) 1e-5; bf16 (where "auto" picks it) 2e-2."""
    return 1e-5 if loaded.precision == "fp32" else 2e-2


@pytest.fixture(scope="module")
def gemma_tab():
    from llmviz.models import load_model

    return load_model("gemma-3-270m", config.ATTENTION_PRECISION)


@pytest.fixture(scope="module")
def smollm_tab():
    from llmviz.models import load_model

    return load_model("smollm2-135m-instruct", config.ATTENTION_PRECISION)


@pytest.mark.slow
def test_real_gemma_maps_are_causal_distributions_with_gqa_and_windows(gemma_tab):
    tok = gemma_tab.tokenizer
    text = "The animal didn't cross the street because it was too tired. 吾輩は猫である。猫"
    ids = encode_text(tok, text)
    r = compute_attention(gemma_tab.model, tok, ids)
    assert r.weights.shape == (18, 4, len(ids), len(ids))
    assert_causal_distributions(r.weights, atol=_tolerance(gemma_tab))
    assert r.labels[0] == "<bos>" and len(r.labels) == len(ids)
    assert r.labels == tuple(token_labels(tok, ids))
    assert "猫" in r.labels and r.labels.count("猫") == 2  # both copies keep their own row
    lay = r.layout
    assert (lay.n_heads, lay.n_kv_heads, lay.group_size) == (4, 1, 4)
    assert lay.sliding_window == 512 and len(lay.sliding_layers) == 15
    assert not lay.window_visible(config.MAX_ATTENTION_TOKENS)  # the cap is inside the window
    s = head_stats(r.weights, r.token_ids)
    assert strongest_head(s, "previous")[2] > 0.5  # Gemma has a clear previous-token head
    assert strongest_head(s, "first")[2] > 0.9  # ... and a sink


@pytest.mark.slow
def test_real_smollm_splits_japanese_characters_and_labels_each_piece(smollm_tab):
    tok = smollm_tab.tokenizer
    ids = encode_text(tok, "猫が猫を見た")
    r = compute_attention(smollm_tab.model, tok, ids)
    assert r.weights.shape == (30, 9, len(ids), len(ids))
    assert_causal_distributions(r.weights, atol=_tolerance(smollm_tab))
    assert len(r.labels) == len(ids)
    assert r.labels.count("猫(1/3)") == 2 and "猫(3/3)" in r.labels
    assert all("\ufffd" not in label for label in r.labels)
    assert r.layout.n_kv_heads == 3 and r.layout.kv_head_of(8) == 2
