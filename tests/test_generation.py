"""Step-by-step generation: same tokens as ``model.generate`` with the same seed, a KV cache that
matches full forwards, a stream that stops cleanly, and the textbook experiment."""

from __future__ import annotations

import threading

import pytest
import torch

from llmviz import config
from llmviz.errors import UserError
from llmviz.generation import (
    Decoder,
    Session,
    candidate_labels,
    check_max_new_tokens,
    check_seed,
    encode_prompt,
    generate_defaults,
    generate_ids,
    next_token_view,
    step,
    stream,
    temperature_experiment,
)
from llmviz.sampling import SamplingSettings, sample_next

PROMPT = "こんにちは、"

SETTINGS = [
    SamplingSettings(),  # generate's defaults: T = 1, top-k 50
    SamplingSettings(temperature=0.7, top_k=0, top_p=0.9),
    SamplingSettings(temperature=1.4, top_k=30, top_p=0.8, min_p=0.02),
    SamplingSettings(temperature=0.5, top_k=5, min_p=0.3),
    SamplingSettings(temperature=0),  # greedy
]


def library_tokens(model, tokenizer, prompt, settings, n, seed):
    ids = torch.tensor([encode_prompt(tokenizer, prompt)])
    torch.manual_seed(seed)
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=n,
        pad_token_id=tokenizer.pad_token_id,
        **settings.generate_kwargs(),
    )
    return out[0, ids.shape[1] :].tolist()


@pytest.mark.parametrize("settings_", SETTINGS, ids=str)
@pytest.mark.parametrize("model_name", ["tiny_llama", "tiny_gemma3"])
@pytest.mark.parametrize("seed", [0, 42])
def test_seeded_steps_equal_model_generate(request, tiny_tokenizer, model_name, settings_, seed):
    model = request.getfixturevalue(model_name)
    ours = generate_ids(model, tiny_tokenizer, PROMPT, settings_, 25, seed)
    assert ours == library_tokens(model, tiny_tokenizer, PROMPT, settings_, 25, seed)
    assert len(ours) >= 1


def test_step_by_step_equals_stream_and_generate(tiny_llama, tiny_tokenizer):
    s = SamplingSettings(temperature=1.1, top_k=40, top_p=0.95)
    session = Session.start(tiny_llama, tiny_tokenizer, PROMPT, seed=7)
    for _ in range(6):
        session.step(s)
    stepped = [h.token_id for h in session.history]
    assert stepped == generate_ids(tiny_llama, tiny_tokenizer, PROMPT, s, 6, 7)[: len(stepped)]
    assert stepped == library_tokens(tiny_llama, tiny_tokenizer, PROMPT, s, 6, 7)[: len(stepped)]


def test_default_settings_are_what_generate_uses_when_told_nothing(tiny_llama, tiny_tokenizer):
    """``generate(do_sample=True)`` with no other argument = our defaults (top-k 50 included)."""
    ids = torch.tensor([encode_prompt(tiny_tokenizer, PROMPT)])
    torch.manual_seed(3)
    out = tiny_llama.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        do_sample=True,
        max_new_tokens=20,
        pad_token_id=tiny_tokenizer.pad_token_id,
    )
    ours = generate_ids(tiny_llama, tiny_tokenizer, PROMPT, SamplingSettings(), 20, 3)
    assert ours == out[0, ids.shape[1] :].tolist()
    assert generate_defaults(tiny_llama) == {
        "temperature": 1.0,
        "top_k": 50,
        "top_p": 1.0,
        "min_p": None,
    }


def test_kv_cache_logits_equal_full_forward(tiny_gemma3, tiny_tokenizer):
    dec = Decoder(tiny_gemma3, tiny_tokenizer, PROMPT)
    for token in (5, 17, 250):
        dec.advance(token)
    with torch.inference_mode():
        full = tiny_gemma3(torch.tensor([dec.ids])).logits[0, -1].float()
    torch.testing.assert_close(dec.logits, full, rtol=1e-4, atol=1e-4)
    assert dec.n_generated == 3 and dec.ids[-3:] == [5, 17, 250]


def test_next_token_view_covers_the_whole_vocabulary(tiny_llama, tiny_tokenizer):
    view = next_token_view(tiny_llama, tiny_tokenizer, PROMPT, SamplingSettings(top_k=10))
    assert view.vocab_size == tiny_llama.config.vocab_size
    assert view.original_probs.sum() == pytest.approx(1.0, rel=1e-5)
    assert view.n_survivors == 10 and view.chosen is None
    # the distribution is the full softmax, not a renormalized top-50
    assert (view.original_probs > 0).sum() > 50


def test_stream_stops_on_event_and_keeps_the_decoder_consistent(tiny_llama, tiny_tokenizer):
    dec = Decoder(tiny_llama, tiny_tokenizer, PROMPT)
    stop = threading.Event()
    got = []
    for token in stream(dec, SamplingSettings(top_k=0), 50, torch.Generator().manual_seed(1), stop):
        got.append(token.token_id)
        if len(got) == 3:
            stop.set()
    assert len(got) == 3
    assert dec.ids == dec.prompt_ids + got


def test_stream_closed_by_consumer_keeps_what_was_yielded(tiny_llama, tiny_tokenizer):
    dec = Decoder(tiny_llama, tiny_tokenizer, PROMPT)
    gen = stream(dec, SamplingSettings(top_k=0), 50, torch.Generator().manual_seed(1))
    first = [next(gen).token_id, next(gen).token_id]
    gen.close()
    assert dec.ids == dec.prompt_ids + first
    # the session can go on from there, step by step
    result, token = step(dec, SamplingSettings(temperature=0), None)
    assert token.token_id == result.chosen and dec.n_generated == 3


def test_stream_ends_at_end_of_text(tiny_llama, tiny_tokenizer):
    eos = tiny_tokenizer.eos_token_id
    dec = Decoder(tiny_llama, tiny_tokenizer, PROMPT)
    step(dec, SamplingSettings(), None, forced=eos)
    assert dec.finished
    with pytest.raises(UserError, match="ended the text"):
        list(stream(dec, SamplingSettings(), 5, torch.Generator()))


def test_stream_records_probability_and_rank(tiny_llama, tiny_tokenizer):
    s = SamplingSettings(temperature=0.8, top_k=20)
    dec = Decoder(tiny_llama, tiny_tokenizer, PROMPT)
    logits = dec.logits.clone()
    token = next(stream(dec, s, 1, torch.Generator().manual_seed(4)))
    probs = torch.softmax(logits, -1)
    assert token.prob == pytest.approx(float(probs[token.token_id]), rel=1e-5)
    assert token.rank == int((logits > logits[token.token_id]).sum()) + 1
    assert token.survivors == 20 and 0 < token.final_prob <= 1


def test_session_restarts_only_when_prompt_seed_or_model_change(tiny_llama, tiny_tokenizer):
    session = Session.start(tiny_llama, tiny_tokenizer, PROMPT, 5, model_key="tiny")
    assert session.matches(PROMPT, 5, "tiny")
    assert session.matches(PROMPT, 5.0, "tiny")
    assert not session.matches(PROMPT + "x", 5, "tiny")
    assert not session.matches(PROMPT, 6, "tiny")
    assert not session.matches(PROMPT, 5, "other")
    assert not session.matches(PROMPT, -1, "tiny")


def test_session_refuses_a_step_while_streaming(tiny_llama, tiny_tokenizer):
    session = Session.start(tiny_llama, tiny_tokenizer, PROMPT, 1)
    session.lock.acquire()
    try:
        with pytest.raises(UserError, match="press Stop"):
            session.step(SamplingSettings())
    finally:
        session.lock.release()
    session.step(SamplingSettings())
    assert len(session.history) == 1


def test_session_stops_at_the_token_limit(tiny_llama, tiny_tokenizer, monkeypatch):
    monkeypatch.setattr(config, "SAMPLING_MAX_NEW_TOKENS", 3)
    session = Session.start(tiny_llama, tiny_tokenizer, PROMPT, 1)
    s = SamplingSettings(top_k=0)
    list(session.stream(s, 3))
    if not session.decoder.finished:
        with pytest.raises(UserError, match="limit"):
            session.step(s)


def test_forced_token_outside_vocab_is_refused_and_state_unchanged(tiny_llama, tiny_tokenizer):
    session = Session.start(tiny_llama, tiny_tokenizer, PROMPT, 1)
    vocab = session.decoder.vocab_size
    for bad in (-1, vocab, 1e9, 3.5):
        with pytest.raises(UserError, match=f"0 to {vocab - 1}"):
            session.step(SamplingSettings(), forced=bad)
    assert session.history == [] and session.decoder.n_generated == 0
    session.step(SamplingSettings(), forced=vocab - 1)
    assert session.history[-1].forced and session.decoder.ids[-1] == vocab - 1


def test_temperature_experiment_is_reproducible_and_greedy_rows_agree(tiny_llama, tiny_tokenizer):
    rows = temperature_experiment(tiny_llama, tiny_tokenizer, PROMPT, max_new_tokens=8, seed=3)
    assert [(r.temperature, r.sample) for r in rows][:4] == [(0.0, 1), (0.0, 2), (0.0, 3), (0.5, 1)]
    assert len(rows) == len(config.SAMPLING_EXPERIMENT_TEMPERATURES) * 3
    greedy = [r.token_ids for r in rows if r.temperature == 0]
    assert len(set(greedy)) == 1
    hot = [r.token_ids for r in rows if r.temperature == 2.0]
    assert len(set(hot)) > 1
    again = temperature_experiment(tiny_llama, tiny_tokenizer, PROMPT, max_new_tokens=8, seed=3)
    assert [r.token_ids for r in again] == [r.token_ids for r in rows]
    # the greedy row equals greedy generate
    lib = library_tokens(tiny_llama, tiny_tokenizer, PROMPT, SamplingSettings(temperature=0), 8, 0)
    assert list(greedy[0]) == lib[: len(greedy[0])]


def test_experiment_rows_equal_single_runs_with_their_seed(tiny_gemma3, tiny_tokenizer):
    """The documented relation: row (T, i) = our one-row sampler (= generate) with seed + i - 1,
    temperature only; batching does not change the tokens here (fp32, no near-ties hit)."""
    rows = temperature_experiment(tiny_gemma3, tiny_tokenizer, PROMPT, max_new_tokens=6, seed=11)
    for row in rows:
        single = generate_ids(
            tiny_gemma3,
            tiny_tokenizer,
            PROMPT,
            SamplingSettings(row.temperature, top_k=0),
            6,
            row.seed,
        )
        assert list(row.token_ids) == single, row


def test_candidate_labels_complete_split_characters(tiny_tokenizer):
    ids = tiny_tokenizer("吾輩は猫")["input_ids"]
    labels = candidate_labels(tiny_tokenizer, ids[:-1], [ids[-1]])
    assert "\ufffd" not in labels[0] and labels[0]


@pytest.mark.parametrize(
    ("prompt", "needle"),
    [("", "empty"), ("   \n", "empty"), (None, "empty"), ("猫" * 5000, "too long"),
     ("猫\ud83dです", "lone UTF-16 surrogate")],  # fmt: skip
)
def test_bad_prompts(tiny_llama, tiny_tokenizer, prompt, needle):
    with pytest.raises(UserError, match=needle):
        Decoder(tiny_llama, tiny_tokenizer, prompt)


def test_prompt_just_over_the_token_limit(tiny_tokenizer):
    text = "The animal didn't cross the street. " * 60
    assert len(tiny_tokenizer(text)["input_ids"]) > config.MAX_PROMPT_TOKENS
    with pytest.raises(UserError, match=str(config.MAX_PROMPT_TOKENS)):
        encode_prompt(tiny_tokenizer, text)


@pytest.mark.parametrize("bad", [0, -3, 10**9, 2.5, float("nan"), "many", float("inf"), None])
def test_bad_max_new_tokens(bad):
    with pytest.raises(UserError, match="1 to 200|whole number"):
        check_max_new_tokens(bad)


@pytest.mark.parametrize("bad", [-1, 2**31, 1.5, float("nan"), float("inf"), -float("inf"), True])
def test_bad_seed(bad):
    with pytest.raises(UserError, match="seed"):
        check_seed(bad)


# --- the real model (at the tab's precision) ----------------------------------------------------------
@pytest.fixture(scope="module")
def gemma_tab():
    from llmviz.models import load_model

    return load_model("gemma-3-270m", config.SAMPLING_PRECISION)


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings_",
    [SamplingSettings(temperature=0.8, top_p=0.95), SamplingSettings(temperature=0)],
    ids=str,
)
def test_gemma_seeded_steps_equal_generate(gemma_fp32, settings_):
    """In float32. Our decoding steps always run batched (``lane._batched_step``), and in bf16 the
    CPU rounds generate's one-row products differently, so there the tokens may part after a
    few dozen; the sampler itself is the same (tiny models: every setting, every seed)."""
    gemma = gemma_fp32
    ours = generate_ids(gemma.model, gemma.tokenizer, "昔々、あるところに", settings_, 8, 42)
    assert ours == library_tokens(
        gemma.model, gemma.tokenizer, "昔々、あるところに", settings_, 8, 42
    )


@pytest.mark.slow
def test_gemma_next_token_view_is_full_vocabulary_and_japanese(gemma_tab):
    gemma = gemma_tab
    view = next_token_view(gemma.model, gemma.tokenizer, PROMPT, SamplingSettings())
    assert view.vocab_size == gemma.model.config.vocab_size > 200_000
    # top-k keeps every token tied with the 50th (transformers' TopKLogitsWarper does the same);
    # in bf16 (the "auto" precision on avx512_bf16 CPUs) ties at the boundary are common
    assert 50 <= view.n_survivors <= 60
    assert 0 < view.survivor_mass < 1
    labels = candidate_labels(
        gemma.tokenizer, encode_prompt(gemma.tokenizer, PROMPT), view.top_ids(20)
    )
    assert not any("\ufffd" in label for label in labels)
    assert any(
        "\u3040" <= ch <= "\u9fff" for label in labels for ch in label
    )  # Japanese candidates


def test_text_groups_join_a_split_character_and_multiply_its_probabilities(tiny_tokenizer):
    """The colored text shows 猫 once, with the probability of the whole character."""
    from llmviz.generation import GeneratedToken, text_groups

    prompt = tiny_tokenizer("吾輩は", add_special_tokens=False)["input_ids"]
    new = tiny_tokenizer("猫!", add_special_tokens=False)["input_ids"]
    s = SamplingSettings()
    history = [GeneratedToken(t, 0.5, 0.5, 1 + i, 10, i == 0, s) for i, t in enumerate(new)]
    groups = text_groups(tiny_tokenizer, prompt + new, len(prompt), history)
    assert "".join(g.text for g in groups) == "猫!"
    cat = groups[0]
    n = len(cat.steps)  # byte-level BPE: 猫 may take one token or several
    assert cat.text == "猫" and cat.prob == pytest.approx(0.5**n) and cat.forced and cat.rank == 1
    assert "\ufffd" not in "".join(g.text for g in groups)


def test_nucleus_size_and_tempered_choices():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.1, 0.1]))
    view = sample_next(logits, SamplingSettings(temperature=1.0, top_k=0, top_p=0.75), draw_token=False)
    assert view.nucleus_size == 2  # 0.5 + 0.3 reaches 0.75
    assert view.tempered_choices == pytest.approx(2 ** view.tempered_entropy_bits)
    greedy = sample_next(logits, SamplingSettings(temperature=0), draw_token=False)
    assert greedy.nucleus_size == 1
