"""llmviz.tokens: exact bytes per token, split-character groups, labels without "�"."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmviz.tokens import (
    TokenPiece,
    bytes_to_unicode,
    hex_bytes,
    token_bytes,
    token_labels,
    token_pieces,
    visible,
)

TEXTS = [
    "",
    "hello world",
    "吾輩は猫である。名前はまだ無い。",
    "family: 👨\u200d👩\u200d👧\u200d👦 and 🏳️\u200d🌈",
    "e\u0301 vs é, n\u0303, 각\u11a8",  # combining marks, decomposed Hangul
    "  two spaces\n\ttab\r\nend",
    "𠮷野家の牛丼 ꙮ ᐃᓄᒃᑎᑐᑦ",  # astral CJK, rare Cyrillic, Inuktitut syllabics
]


@pytest.fixture(scope="module")
def gemma_tok():
    from llmviz.models import load_tokenizer

    return load_tokenizer("gemma-3-270m")


@pytest.fixture(scope="module")
def smollm_tok():
    from llmviz.models import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct")


def _check_lossless(tok, text, add_special=False):
    ids = tok.encode(text, add_special_tokens=add_special)
    pieces = token_pieces(tok, ids)
    assert [p.index for p in pieces] == list(range(len(ids)))
    assert [p.id for p in pieces] == ids
    assert b"".join(p.raw for p in pieces if not p.special) == text.encode("utf-8")
    labels = token_labels(tok, ids)
    assert len(labels) == len(ids)
    assert all("\ufffd" not in label and label for label in labels)
    # the characters of each group, read in order, give back the text
    groups: dict[int, bytes] = {}
    for p in pieces:
        groups[p.group] = groups.get(p.group, b"") + p.raw
    assert "".join(b.decode("utf-8") for g, b in sorted(groups.items())) == (
        b"".join(p.raw for p in pieces).decode("utf-8")
    )
    return pieces, labels


def test_byte_table_is_gpt2s():
    table = bytes_to_unicode()
    assert len(table) == 256 and len(set(table.values())) == 256
    assert table[0x20] == "Ġ" and table[0x0A] == "Ċ" and table[ord("a")] == "a"


def test_hex_bytes():
    assert hex_bytes("猫".encode()) == "E7 8C AB"
    assert hex_bytes(b"") == ""


@pytest.mark.parametrize("text", TEXTS)
def test_tiny_tokenizer_is_lossless(tiny_tokenizer, text):
    _check_lossless(tiny_tokenizer, text)


@pytest.mark.parametrize("text", TEXTS)
def test_smollm_is_lossless(smollm_tok, text):
    _check_lossless(smollm_tok, text)


@pytest.mark.parametrize("text", TEXTS)
def test_gemma_is_lossless(gemma_tok, text):
    _check_lossless(gemma_tok, text)


def test_japanese_split_characters_are_grouped(smollm_tok):
    # byte-level BPE with a mostly English vocabulary cuts 猫 (E7 8C AB) into several tokens
    pieces, labels = _check_lossless(smollm_tok, "猫")
    assert len(pieces) > 1
    assert all(p.partial and p.group == pieces[0].group and p.text == "猫" for p in pieces)
    n = len(pieces)
    assert labels == [f"猫({k}/{n})" for k in range(1, n + 1)]
    assert b"".join(p.raw for p in pieces) == b"\xe7\x8c\xab"


def test_whole_tokens_are_their_own_group(smollm_tok):
    pieces, labels = _check_lossless(smollm_tok, "hello world")
    assert [p.text for p in pieces] == ["hello", " world"]
    assert [p.group for p in pieces] == [0, 1]
    assert not any(p.partial for p in pieces)
    assert labels == ["hello", "␣world"]


def test_gpt2_style_known_bytes(smollm_tok):
    ids = smollm_tok.encode(" the\n", add_special_tokens=False)
    assert b"".join(token_bytes(smollm_tok, ids)) == b" the\n"


def test_gemma_byte_fallback_tokens(gemma_tok):
    # 𠮷 is outside Gemma's vocabulary: it is spelled with <0xF0> <0xA0> <0xAE> <0xB7>
    ids = gemma_tok.encode("𠮷", add_special_tokens=False)
    toks = gemma_tok.convert_ids_to_tokens(ids)
    assert toks == ["<0xF0>", "<0xA0>", "<0xAE>", "<0xB7>"]
    pieces = token_pieces(gemma_tok, ids)
    assert [p.raw for p in pieces] == [b"\xf0", b"\xa0", b"\xae", b"\xb7"]
    assert token_labels(gemma_tok, ids) == [f"𠮷({k}/4)" for k in range(1, 5)]


def test_gemma_spaces_are_metaspace(gemma_tok):
    ids = gemma_tok.encode("hello world", add_special_tokens=False)
    assert token_bytes(gemma_tok, ids) == [b"hello", b" world"]


def test_special_tokens_are_marked(gemma_tok, smollm_tok):
    ids = gemma_tok.encode("猫", add_special_tokens=True)
    pieces = token_pieces(gemma_tok, ids)
    assert pieces[0].special and pieces[0].raw == b"<bos>" and pieces[0].text == "<bos>"
    assert not pieces[1].special
    chat = smollm_tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    ids = smollm_tok.encode(chat, add_special_tokens=False)
    pieces = token_pieces(smollm_tok, ids)
    assert pieces[0].special and pieces[0].text == "<|im_start|>"
    assert "<|im_end|>" in [p.text for p in pieces if p.special]
    assert b"".join(p.raw for p in pieces) == chat.encode("utf-8")


def test_truncated_character_shows_hex(smollm_tok):
    ids = smollm_tok.encode("猫", add_special_tokens=False)[:-1]  # drop the last byte(s)
    pieces = token_pieces(smollm_tok, ids)
    labels = token_labels(smollm_tok, ids)
    assert all(p.partial and p.text == "" for p in pieces)
    assert all(label.startswith("<") and label.endswith(">") for label in labels)
    assert "".join(labels).replace("<", " ").replace(">", " ").split() == hex_bytes(
        b"".join(p.raw for p in pieces)
    ).split()


def test_mixed_token_carries_both_characters(tiny_tokenizer):
    # build a case by hand: b"a\xe7" + b"\x8c\xab" must form one group "a猫"
    pieces_ids = tiny_tokenizer.encode("a猫", add_special_tokens=False)
    pieces = token_pieces(tiny_tokenizer, pieces_ids)
    assert b"".join(p.raw for p in pieces) == "a猫".encode()
    assert "".join(dict((p.group, p.text) for p in pieces).values()) == "a猫"


def test_out_of_vocabulary_id_raises(tiny_tokenizer):
    with pytest.raises(ValueError, match="outside the vocabulary"):
        token_bytes(tiny_tokenizer, [10**7])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        token_bytes(tiny_tokenizer, [-1])


def test_own_token_bytes_method_is_used():
    class Adapter:
        special_ids = frozenset({9})

        def token_bytes(self, ids):
            return [b"<s>" if i == 9 else bytes([i]) for i in ids]

    pieces = token_pieces(Adapter(), [9, 0xE7, 0x8C, 0xAB, 0x21])
    assert pieces[0] == TokenPiece(0, 9, b"<s>", "<s>", 0, False, True)
    assert [p.text for p in pieces[1:]] == ["猫", "猫", "猫", "!"]
    assert [p.group for p in pieces[1:]] == [1, 1, 1, 2]
    assert token_labels(Adapter(), [0xE7, 0x8C, 0xAB]) == ["猫(1/3)", "猫(2/3)", "猫(3/3)"]


def test_visible():
    assert visible(" a\n\t") == "␣a↵⇥"
    assert visible("\u200d") == "[ZWJ]"
    assert visible("\u0301") == "◌́"
    assert visible("\x07") == "␇"
    assert visible("\ufffd") == "[U+FFFD]"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=40))
def test_any_text_round_trips_without_replacement_chars(tiny_tokenizer, text):
    _check_lossless(tiny_tokenizer, text)
