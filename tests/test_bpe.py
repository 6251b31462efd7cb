"""The hand-written BPE (llmviz.bpe): worked examples, and the same merges as `tokenizers`."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from llmviz import bpe
from llmviz.tokenizer_training import builtin_corpus


def test_pair_counts_worked_example():
    assert bpe.pair_counts([[1, 2, 3, 1, 2]], [1]) == Counter({(1, 2): 2, (2, 3): 1, (3, 1): 1})
    assert bpe.pair_counts([[1, 2], [1, 2, 1]], [3, 2]) == Counter({(1, 2): 5, (2, 1): 2})
    assert bpe.pair_counts([], []) == Counter()


def test_merge_word_left_to_right_without_overlap():
    assert bpe.merge_word([1, 1, 1, 2], (1, 1), 9) == [9, 1, 2]
    assert bpe.merge_word([1, 1, 1, 1], (1, 1), 9) == [9, 9]
    assert bpe.merge_word([], (1, 1), 9) == []


def test_ties_go_to_the_smaller_pair_of_ids():
    counts = Counter({(5, 1): 3, (2, 7): 3, (0, 0): 1, (9, 9): 0})
    assert bpe.best_pair(counts, 3) == [((2, 7), 3), ((5, 1), 3), ((0, 0), 1)]
    assert bpe.best_pair(Counter({(1, 1): 0})) == []


def test_sennrich_example():
    r = bpe.train({"low": 5, "lower": 2, "newest": 6, "widest": 3}, vocab_size=20)
    assert [m.token for m in r.merges[:4]] == ["es", "est", "lo", "low"]
    assert [m.count for m in r.merges[:4]] == [9, 9, 7, 7]
    assert len(r.vocab) == 20


def _library(word_lines, vocab_size, byte_level=True):
    tok = Tokenizer(models.BPE())
    if byte_level:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        alphabet = []
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<unk>"], initial_alphabet=alphabet,
        show_progress=False,
    )  # fmt: skip
    tok.train_from_iterator(word_lines, trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in merges]
    mine = bpe.train(
        bpe.word_counts(tok.pre_tokenizer, word_lines), vocab_size, ["<unk>"], alphabet
    )
    return tok, merges, mine


def test_same_merges_as_the_library_on_the_builtin_corpus():
    lines = [line for line in builtin_corpus().splitlines() if line.strip()][::3]  # ~1/3: speed
    tok, merges, mine = _library(lines, 700)
    assert len(merges) > 300
    assert [(m.left, m.right) for m in mine.merges] == merges
    assert mine.vocab == tok.get_vocab()


def test_counts_match_a_replay_of_the_library_merges():
    lines = ["low low low lower newest newest widest", "東京 東京都 京都 京都府"]
    tok, merges, mine = _library(lines, 300)
    wc = bpe.word_counts(tok.pre_tokenizer, lines)
    assert bpe.replay(wc, merges) == [m.count for m in mine.merges]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.text(alphabet="abcab ねこ猫\n", min_size=1, max_size=30), min_size=1, max_size=6),
    st.integers(min_value=1, max_value=60),
)
def test_same_merges_as_the_library_on_random_text(lines, extra):
    for byte_level in (True, False):
        base = 257 if byte_level else 1
        _, merges, mine = _library(lines, base + extra, byte_level)
        assert [(m.left, m.right) for m in mine.merges] == merges


def test_min_frequency_stops_early():
    r = bpe.train({"ab": 1, "cd": 1}, vocab_size=100, min_frequency=2)
    assert r.merges == []


@pytest.mark.parametrize("words", [{}, {"a": 3}])
def test_nothing_to_merge(words):
    assert bpe.train(words, vocab_size=50).merges == []
