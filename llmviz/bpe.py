"""Byte pair encoding, one merge at a time: the hand-written version of the lesson.

Training BPE repeats three steps until the vocabulary is big enough:

1. count every pair of neighbouring symbols in the corpus (each word weighted by how often
   it occurs): ``{"low": 5, "lower": 2}`` -> ``("l","o"): 7, ("o","w"): 7, ("w","e"): 2, ...``;
2. take the most frequent pair and give it a new symbol (``"l"+"o"`` -> ``"lo"``);
3. replace that pair everywhere (left to right, no overlaps: ``a a a`` -> ``aa a``).

This module exists to *show* those steps (with the pair counts that decided each merge). Real
training uses the ``tokenizers`` library (``llmviz.tokenizer_training``); the tests check that
both learn the same merges in the same order on the same words.

Making the two comparable (how ties are broken): the library gives ids to the special tokens
first, then to the alphabet sorted by code point, then to each new token in creation order, and
when two pairs are equally frequent it takes the pair with the smaller ``(left id, right id)``.
We number symbols the same way and break ties the same way. Words come from the library's own
pre-tokenizer (``word_counts`` below), because the lesson is about merging, not about the regex
that splits words. Not handled here (the library has them): ``limit_alphabet``,
``continuing_subword_prefix``, ``end_of_word_suffix``, ``max_token_length``.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Pair = tuple[int, int]


@dataclass(frozen=True)
class MergeStep:
    """One merge: ``left + right -> token`` because the pair occurred ``count`` times."""

    rank: int  # 0 for the first merge
    left: str
    right: str
    token: str
    new_id: int
    count: int
    runners_up: tuple[tuple[str, str, int], ...] = ()  # the next most frequent pairs


@dataclass(frozen=True)
class BPEResult:
    vocab: dict[str, int]  # token -> id
    merges: list[MergeStep]


def pair_counts(words: Sequence[Sequence[int]], counts: Sequence[int]) -> Counter[Pair]:
    """Weighted counts of neighbouring pairs.

    >>> dict(pair_counts([[1, 2, 3, 1, 2]], [1]))
    {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    """
    out: Counter[Pair] = Counter()
    for word, n in zip(words, counts, strict=True):
        for pair in zip(word, word[1:], strict=False):
            out[pair] += n
    return out


def merge_word(word: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """Replace ``pair`` by ``new_id`` left to right, without overlaps.

    >>> merge_word([1, 1, 1, 2], (1, 1), 9)
    [9, 1, 2]
    """
    out: list[int] = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == pair[0] and word[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def best_pair(counts: Counter[Pair], n: int = 1) -> list[tuple[Pair, int]]:
    """The ``n`` most frequent pairs; equal counts: smaller ``(left id, right id)`` first.

    >>> best_pair(Counter({(5, 1): 3, (2, 7): 3, (0, 0): 1}), 2)
    [((2, 7), 3), ((5, 1), 3)]
    """
    positive = (kv for kv in counts.items() if kv[1] > 0)
    if n == 1:
        best = min(positive, key=_order, default=None)
        return [] if best is None else [best]
    return heapq.nsmallest(n, positive, key=_order)


def _order(kv: tuple[Pair, int]) -> tuple[int, Pair]:
    return (-kv[1], kv[0])


def train(
    word_counts: dict[str, int],
    vocab_size: int,
    special_tokens: Sequence[str] = (),
    initial_alphabet: Iterable[str] = (),
    min_frequency: int = 0,
    runners_up: int = 0,
) -> BPEResult:
    """Learn BPE merges from ``{word: count}`` until ``vocab_size`` tokens (or no pair is left).

    >>> r = train({"low": 5, "lower": 2, "newest": 6, "widest": 3}, vocab_size=20)
    >>> [m.token for m in r.merges[:3]]
    ['es', 'est', 'lo']
    """
    vocab: dict[str, int] = {}
    id_to_token: list[str] = []

    def add(token: str) -> int:
        if token not in vocab:
            vocab[token] = len(id_to_token)
            id_to_token.append(token)
        return vocab[token]

    for tok in special_tokens:
        add(tok)
    for ch in sorted(set(initial_alphabet) | {c for w in word_counts for c in w}, key=ord):
        add(ch)
    names = list(word_counts)
    words = [[vocab[c] for c in w] for w in names]
    counts = [word_counts[w] for w in names]
    where: dict[Pair, set[int]] = {}
    for i, w in enumerate(words):
        for pair in zip(w, w[1:], strict=False):
            where.setdefault(pair, set()).add(i)
    pc = pair_counts(words, counts)

    merges: list[MergeStep] = []
    while len(vocab) < vocab_size:
        top = best_pair(pc, 1 + runners_up)
        if not top or top[0][1] < max(1, min_frequency):
            break
        (a, b), n = top[0]
        token = id_to_token[a] + id_to_token[b]
        new_id = add(token)
        merges.append(
            MergeStep(
                rank=len(merges),
                left=id_to_token[a],
                right=id_to_token[b],
                token=token,
                new_id=new_id,
                count=n,
                runners_up=tuple((id_to_token[x], id_to_token[y], c) for (x, y), c in top[1:]),
            )
        )
        # update only the words that contain the pair: remove their old pairs, add the new ones
        for i in where.pop((a, b), set()):
            old = words[i]
            for pair in zip(old, old[1:], strict=False):
                pc[pair] -= counts[i]
            new = merge_word(old, (a, b), new_id)
            words[i] = new
            for pair in zip(new, new[1:], strict=False):
                pc[pair] += counts[i]
                where.setdefault(pair, set()).add(i)
        del pc[(a, b)]
        for pair in [p for p, c in pc.items() if c == 0] if len(merges) % 64 == 0 else ():
            del pc[pair]  # keep the table small: pairs that disappeared
    return BPEResult(vocab, merges)


def word_counts(pre_tokenizer: Any, lines: Iterable[str]) -> dict[str, int]:
    """``{word: count}`` as the library's trainer sees it: each line pre-tokenized separately."""
    out: Counter[str] = Counter()
    for line in lines:
        out.update(w for w, _ in pre_tokenizer.pre_tokenize_str(line))
    return dict(out)


def replay(
    word_counts: dict[str, int], merges: Sequence[tuple[str, str]], limit: int | None = None
) -> list[int]:
    """How often each given merge's pair occurred at its turn (for merges learned elsewhere).

    Counted like ``train`` (and the library): every adjacent occurrence, overlapping ones
    included, even though merging "aaa" then joins only one of its two "a a" pairs.

    >>> replay({"aab": 2}, [("a", "a"), ("aa", "b")])
    [2, 2]
    >>> replay({"aaa": 1}, [("a", "a")])
    [2]
    """
    words = [list(w) for w in word_counts]
    counts = list(word_counts.values())
    out = []
    for a, b in merges[:limit]:
        n = 0
        for i, w in enumerate(words):
            n += counts[i] * sum(1 for x, y in zip(w, w[1:], strict=False) if x == a and y == b)
            merged: list[str] = []
            j = 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    merged.append(a + b)
                    j += 2
                else:
                    merged.append(w[j])
                    j += 1
            words[i] = merged
        out.append(n)
    return out
