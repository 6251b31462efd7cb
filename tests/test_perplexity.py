"""Perplexity core: equal to exp(transformers' loss), sliding window, per-char/byte, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from llmviz import config
from llmviz.errors import UserError
from llmviz.perplexity import (
    TextScore,
    cumulative_bits,
    prefix_token_id,
    score_text,
    surprisal_spans,
)

EN = "The animal didn't cross the street because it was too tired."
JA = "吾輩は猫である。名前はまだ無い。"
LONG = " ".join([EN, JA, "Large language models predict the next token."] * 6)


def hf_loss(model, ids: list[int]) -> float:
    """The cross-entropy transformers computes itself (mean over tokens 1..n-1)."""
    with torch.inference_mode():
        return float(model(torch.tensor([ids]), labels=torch.tensor([ids])).loss)


def text_ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def test_worked_example_from_docstring():
    s = TextScore(
        text="abc",
        token_ids=(1, 2, 3),
        logprobs=tuple(math.log(p) for p in (1 / 2, 1 / 4, 1 / 8)),
        predicted_ids=(0, 0, 0),
        prefix_id=0,
        n_chars=3,
        n_bytes=3,
        window=8,
        stride=4,
        n_windows=1,
    )
    assert s.total_bits == pytest.approx(6.0)
    assert s.bits_per_token == pytest.approx(2.0)
    assert s.perplexity == pytest.approx(4.0)
    assert s.bits_per_char == pytest.approx(2.0)
    np.testing.assert_allclose(s.surprisal_bits, [1, 2, 3])
    assert not s.sliding


@pytest.mark.parametrize("text", [EN, JA, "a", "🙂 emoji"])
def test_perplexity_is_exp_of_transformers_loss(tiny_llama, tiny_tokenizer, text):
    s = score_text(tiny_llama, tiny_tokenizer, text)
    ids = [tiny_tokenizer.bos_token_id, *text_ids(tiny_tokenizer, text)]
    loss = hf_loss(tiny_llama, ids)
    assert s.prefix_id == tiny_tokenizer.bos_token_id
    assert s.token_ids == tuple(ids[1:])
    assert s.n_scored == s.n_tokens == len(ids) - 1
    assert s.nll_mean == pytest.approx(loss, rel=1e-5)
    assert s.perplexity == pytest.approx(math.exp(loss), rel=1e-5)
    assert s.bits_per_token == pytest.approx(loss / math.log(2), rel=1e-5)
    assert not s.sliding and s.n_windows == 1


def test_gemma3_architecture_too(tiny_gemma3, tiny_tokenizer):
    s = score_text(tiny_gemma3, tiny_tokenizer, JA)
    loss = hf_loss(tiny_gemma3, [tiny_tokenizer.bos_token_id, *text_ids(tiny_tokenizer, JA)])
    assert s.perplexity == pytest.approx(math.exp(loss), rel=1e-5)


def test_per_token_logprobs_and_predictions(tiny_llama, tiny_tokenizer):
    s = score_text(tiny_llama, tiny_tokenizer, EN)
    ids = [s.prefix_id, *s.token_ids]
    with torch.inference_mode():
        logp = torch.log_softmax(tiny_llama(torch.tensor([ids])).logits[0].float(), -1)
    for i, tid in enumerate(s.token_ids):
        assert s.logprobs[i] == pytest.approx(float(logp[i, tid]), abs=1e-5)
        assert s.predicted_ids[i] == int(logp[i].argmax())
    assert np.all(s.surprisal_bits > 0)


def test_bits_per_char_and_byte_count_the_whole_text(tiny_llama, tiny_tokenizer):
    s = score_text(tiny_llama, tiny_tokenizer, JA)
    assert s.n_chars == len(JA) and s.n_bytes == len(JA.encode()) == 3 * len(JA)
    assert s.bits_per_char == pytest.approx(s.total_bits / len(JA))
    assert s.bits_per_byte == pytest.approx(s.bits_per_char / 3)
    assert s.total_bits == pytest.approx(s.bits_per_token * s.n_tokens)


def test_window_covering_the_text_equals_full_computation(tiny_llama, tiny_tokenizer):
    n = len(text_ids(tiny_tokenizer, LONG))
    full = score_text(tiny_llama, tiny_tokenizer, LONG, window=n, stride=n)
    bigger = score_text(tiny_llama, tiny_tokenizer, LONG, window=n + 50, stride=7)
    assert not full.sliding and not bigger.sliding
    np.testing.assert_allclose(full.logprobs, bigger.logprobs, rtol=0, atol=1e-6)
    loss = hf_loss(tiny_llama, [tiny_tokenizer.bos_token_id, *text_ids(tiny_tokenizer, LONG)])
    assert full.perplexity == pytest.approx(math.exp(loss), rel=1e-5)


def test_sliding_window_matches_the_transformers_guide_loop(tiny_llama, tiny_tokenizer):
    """The guide's loop (labels = -100 on the overlap), with the prefix before each window."""
    window, stride = 40, 16
    s = score_text(tiny_llama, tiny_tokenizer, LONG, window=window, stride=stride)
    ids = text_ids(tiny_tokenizer, LONG)
    bos = tiny_tokenizer.bos_token_id
    nll_sum, n_scored, prev_end = 0.0, 0, 0
    for begin in range(0, len(ids), stride):
        end = min(begin + window, len(ids))
        trg_len = end - prev_end
        inp = torch.tensor([[bos, *ids[begin:end]]])
        labels = inp.clone()
        labels[:, :-trg_len] = -100
        with torch.inference_mode():
            loss = float(tiny_llama(inp, labels=labels).loss)
        nll_sum += loss * trg_len
        n_scored += trg_len
        prev_end = end
        if end == len(ids):
            break
    assert s.sliding and s.n_windows == math.ceil((len(ids) - window) / stride) + 1
    assert s.n_scored == n_scored == len(ids)
    assert s.nll_mean == pytest.approx(nll_sum / n_scored, rel=1e-5)
    full = score_text(tiny_llama, tiny_tokenizer, LONG, window=len(ids), stride=len(ids))
    assert s.logprobs[:window] == pytest.approx(full.logprobs[:window], abs=1e-5)
    assert s.logprobs != pytest.approx(full.logprobs, abs=1e-5)  # later tokens lost context


def test_window_is_clipped_to_the_model_context(tiny_llama, tiny_tokenizer):
    s = score_text(tiny_llama, tiny_tokenizer, EN, window=10**6, stride=10)
    assert s.window == tiny_llama.config.max_position_embeddings - 1


@pytest.mark.parametrize("text", [EN, JA, "🙂 emoji, 猫!"])
def test_spans_cover_the_text_and_add_up(tiny_llama, tiny_tokenizer, text):
    s = score_text(tiny_llama, tiny_tokenizer, text)
    spans = surprisal_spans(s, tiny_tokenizer)
    assert "".join(sp.text for sp in spans) == text
    assert [i for sp in spans for i in sp.token_indices] == list(range(s.n_tokens))
    assert sum(sp.bits for sp in spans) == pytest.approx(s.total_bits)
    x, y = cumulative_bits(spans)
    assert x[-1] == len(text) and y[-1] == pytest.approx(s.total_bits)
    assert np.all(np.diff(x) > 0)


def test_split_characters_become_one_span(tiny_llama, tiny_tokenizer):
    """The tiny byte-level BPE has not learnt 鬱, so its 3 bytes are 2-3 tokens: one span."""
    s = score_text(tiny_llama, tiny_tokenizer, "鬱")
    spans = surprisal_spans(s, tiny_tokenizer)
    assert s.n_tokens > 1 and len(spans) == 1 and spans[0].text == "鬱"
    assert spans[0].bits == pytest.approx(s.total_bits)


class _NoSpecialTokens:
    """A tokenizer without BOS and EOS (delegates everything else)."""

    bos_token_id = None
    eos_token_id = None

    def __init__(self, tok):
        self._tok = tok

    def __call__(self, *args, **kwargs):
        return self._tok(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self._tok.decode(*args, **kwargs)


def test_without_bos_or_eos_the_first_token_is_not_scored(tiny_llama, tiny_tokenizer):
    tok = _NoSpecialTokens(tiny_tokenizer)
    assert prefix_token_id(tok) is None
    s = score_text(tiny_llama, tok, EN)
    ids = text_ids(tiny_tokenizer, EN)
    assert math.isnan(s.logprobs[0]) and s.n_scored == len(ids) - 1
    assert s.perplexity == pytest.approx(math.exp(hf_loss(tiny_llama, ids)), rel=1e-5)
    first = tiny_tokenizer.decode(ids[:1])
    assert s.n_chars == len(EN) - len(first)


@pytest.mark.parametrize(
    ("text", "kwargs", "key"),
    [
        ("", {}, "ppl_empty"),
        ("   \n\t", {}, "ppl_empty"),
        ("x" * (config.PPL_MAX_CHARS + 1), {}, "ppl_too_many_chars"),
        ("half an emoji \ud83d here", {}, "text_surrogate"),  # the tokenizer raised TypeError
        (None, {}, "ppl_empty"),
        (LONG, {"max_tokens": 20}, "ppl_too_many_tokens"),
        (EN, {"window": 1, "stride": 1}, "ppl_window"),
        (EN, {"window": 8, "stride": 9}, "ppl_stride"),
        (EN, {"window": 8, "stride": 0}, "ppl_stride"),
    ],
)
def test_bad_input_is_a_user_error(tiny_llama, tiny_tokenizer, text, kwargs, key):
    with pytest.raises(UserError) as err:
        score_text(tiny_llama, tiny_tokenizer, text, **kwargs)
    assert err.value.key == key
    assert len(err.value.message) > 20


def test_too_many_tokens_message_says_the_numbers(tiny_llama, tiny_tokenizer):
    n = len(text_ids(tiny_tokenizer, LONG))
    with pytest.raises(UserError, match=f"{n:,} tokens.*limit is 20 tokens"):
        score_text(tiny_llama, tiny_tokenizer, LONG, max_tokens=20)


@pytest.mark.slow
def test_real_gemma_english_and_japanese(gemma):
    """Gemma knows both languages: far below its 262k-way uniform guess, and equal to its loss."""
    en = score_text(gemma.model, gemma.tokenizer, EN)
    ja = score_text(gemma.model, gemma.tokenizer, JA)
    ids = [gemma.tokenizer.bos_token_id, *text_ids(gemma.tokenizer, EN)]
    assert en.perplexity == pytest.approx(math.exp(hf_loss(gemma.model, ids)), rel=2e-3)
    for s in (en, ja):
        assert 1 < s.perplexity < 1000 < len(gemma.tokenizer)
        assert 0 < s.bits_per_char < 8


@pytest.mark.slow
def test_real_gemma_bf16_vs_nf4(gemma):
    """4-bit weights cost a little perplexity, not a lot: the comparison the UI offers."""
    from llmviz.models import load_model

    nf4 = load_model("gemma-3-270m", "nf4")
    a = score_text(gemma.model, gemma.tokenizer, EN)
    b = score_text(nf4.model, nf4.tokenizer, EN)
    assert a.token_ids == b.token_ids
    assert a.perplexity != b.perplexity
    assert 0.7 < b.perplexity / a.perplexity < 1.5
    spans = surprisal_spans(a, gemma.tokenizer)
    assert "".join(sp.text for sp in spans) == EN


def test_doctests():
    import doctest

    from llmviz import perplexity

    assert doctest.testmod(perplexity).failed == 0


def test_bits_and_probabilities_per_token(tiny_llama, tiny_tokenizer):
    from llmviz.perplexity import nats_to_bits

    s = score_text(tiny_llama, tiny_tokenizer, EN)
    lp = np.asarray(s.logprobs)
    np.testing.assert_allclose(s.surprisal_bits, -lp / math.log(2))
    np.testing.assert_allclose(s.probabilities, np.exp(lp))
    assert nats_to_bits(math.log(2) * 5) == pytest.approx(5)
    assert s.total_bits == pytest.approx(s.surprisal_bits.sum())
    assert s.min_context == s.window - s.stride
