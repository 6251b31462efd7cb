"""Generated text is shown without U+FFFD: a cut character appears as its bytes (real tokenizers)."""

from __future__ import annotations

import pytest

from llmviz.models import load_tokenizer
from llmviz.tokens import readable_bytes, readable_decode, stop_token_ids, tail_ids


@pytest.fixture(scope="module")
def smollm_tok():
    return load_tokenizer("smollm2-135m-instruct")  # byte-level BPE: splits Japanese characters


def _split_ids(tok, text):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    for cut in range(1, len(ids)):
        if "\ufffd" in tok.decode(ids[:cut]):
            return ids, cut
    pytest.skip("this tokenizer does not split the text inside a character")


def test_a_generation_cut_inside_a_character_ends_in_hex_bytes(smollm_tok):
    ids, cut = _split_ids(smollm_tok, "これでもう終わりです")
    shown = readable_decode(smollm_tok, ids[:cut])
    assert "\ufffd" not in shown and shown.endswith(">") and "<" in shown
    assert readable_decode(smollm_tok, ids) == smollm_tok.decode(ids)  # whole text: unchanged


def test_tail_ids_never_start_inside_a_character(smollm_tok):
    ids = smollm_tok("こんにちは、世界。今日はいい天気ですね。", add_special_tokens=False)["input_ids"]
    for n in range(1, len(ids)):
        tail = tail_ids(smollm_tok, ids, n)
        assert len(tail) <= n
        assert "\ufffd" not in smollm_tok.decode(tail)


def test_readable_bytes_marks_every_undecodable_run():
    assert readable_bytes(b"\xe3\x81" + "猫".encode() + b"\xff") == "<E3 81>猫<FF>"
    assert readable_bytes("\ufffd".encode()) == "<EF BF BD>"


def test_one_stop_token_set_for_sampling_and_compare(smollm_tok):
    from llmviz import generation

    ids = stop_token_ids(smollm_tok)
    assert smollm_tok.convert_tokens_to_ids("<|im_end|>") in ids
    assert not hasattr(generation, "eos_ids")  # the second, different definition is gone


def test_perplexity_spans_show_a_lone_byte_as_hex_not_replacement(smollm_tok):
    """A text that ends inside a character (its last token is half of 猫) is scored; the span
    shows that byte as hex, and the span positions still follow the text."""
    from llmviz.perplexity import TextScore, surprisal_spans

    ids, cut = _split_ids(smollm_tok, "吾輩は猫である")
    ids = ids[:cut]
    score = TextScore(
        text=smollm_tok.decode(ids), token_ids=tuple(ids), logprobs=tuple([-1.0] * len(ids)),
        predicted_ids=tuple([-1] * len(ids)), prefix_id=None, n_chars=0, n_bytes=0, window=512,
        stride=256, n_windows=1,
    )  # fmt: skip
    spans = surprisal_spans(score, smollm_tok)
    assert all("\ufffd" not in s.text for s in spans)
    assert spans[-1].text.startswith("<") and spans[-1].text.endswith(">")
