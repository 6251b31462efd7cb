"""Perplexity and bits per token: how surprised is a language model by a text?

A causal model gives every token a probability given the tokens before it. From the natural-log
probabilities ``log p(x_i | x_<i)`` of the scored tokens:

* surprisal of one token = ``-log2 p`` bits;
* ``nll_mean`` = mean of ``-log p`` (nats) = the cross-entropy loss transformers reports;
* perplexity = ``exp(nll_mean)`` ("as unsure as a uniform choice among this many tokens");
* bits per token = ``log2(perplexity)`` = ``nll_mean / ln 2``;
* bits per character / per UTF-8 byte = total bits / characters / bytes of the scored text.
  Unlike perplexity and bits per token these do not depend on how the tokenizer cuts the text,
  so they compare models with different tokenizers, and Japanese with English.

Worked example: three tokens with probabilities 1/2, 1/4, 1/8 cost 1 + 2 + 3 = 6 bits, so
2 bits per token and a perplexity of 2**2 = 4.

The first token (BOS): a model cannot predict the very first token of a text from nothing. Like
lm-evaluation-harness, we put one *prefix* token before the text (the tokenizer's BOS token, else
its EOS token) as context and score every token of the text itself, so all characters count.
Gemma's tokenizer adds ``<bos>`` anyway; the prefix is never scored. Only a tokenizer with
neither token leaves the first text token unscored (its log-probability is NaN and its characters
are left out of the per-character figures).

Long text: a model sees at most ``window`` tokens at once; longer text is scored with the sliding
window of the transformers perplexity guide (each window moves ``stride`` tokens, and only its
new tokens are scored, with the overlap as context). Each window starts with the prefix token again
so every window looks like the start of a document. Text over ``max_tokens`` is refused.

This module never loads a model (callers pass one) and knows nothing about gradio or plotting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmviz import checks, config
from llmviz.errors import UserError
from llmviz.library import torch
from llmviz.tokens import readable_bytes, token_bytes, token_pieces

LN2 = math.log(2.0)


def nats_to_bits(nats):
    """Natural-log units to bits: divide by ln 2 (works on numbers and arrays).

    >>> round(nats_to_bits(math.log(8)), 12)  # p = 1/8 costs 3 bits
    3.0
    """
    return nats / LN2
_LOGSOFTMAX_ROWS = 128  # rows of the (T, vocab) logits turned into log-probs at once (memory)


@dataclass(frozen=True)
class TextScore:
    """A text scored by one model. Arrays are per text token, in order."""

    text: str
    token_ids: tuple[int, ...]  # the text's tokens (the prefix token is not included)
    logprobs: tuple[float, ...]  # natural log p(token | tokens before); NaN if unscored
    predicted_ids: tuple[int, ...]  # the model's most likely token at each position (-1 if none)
    prefix_id: int | None  # BOS (or EOS) token put before the text as context; None if none
    n_chars: int  # characters of the scored text
    n_bytes: int  # UTF-8 bytes of the scored text
    window: int  # context tokens per forward pass
    stride: int
    n_windows: int

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def n_scored(self) -> int:
        return int(np.isfinite(np.asarray(self.logprobs, dtype=float)).sum())

    @property
    def sliding(self) -> bool:
        """True when the text was longer than one window."""
        return self.n_windows > 1

    @property
    def min_context(self) -> int:
        """Tokens of context every token scored after the first window sees at least."""
        return self.window - self.stride

    @property
    def surprisal_bits(self) -> np.ndarray:  # (n_tokens,)
        """-log2 p per token (NaN where unscored)."""
        return nats_to_bits(-np.asarray(self.logprobs, dtype=float))

    @property
    def probabilities(self) -> np.ndarray:  # (n_tokens,)
        """p per token (NaN where unscored)."""
        return np.exp(np.asarray(self.logprobs, dtype=float))

    @property
    def total_nll(self) -> float:
        """Sum of -log p over the scored tokens (nats)."""
        lp = np.asarray(self.logprobs, dtype=float)
        return float(-lp[np.isfinite(lp)].sum())

    @property
    def total_bits(self) -> float:
        return nats_to_bits(self.total_nll)

    @property
    def nll_mean(self) -> float:
        return self.total_nll / self.n_scored

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll_mean)

    @property
    def bits_per_token(self) -> float:
        return math.log2(self.perplexity)

    @property
    def bits_per_char(self) -> float:
        return self.total_bits / self.n_chars

    @property
    def bits_per_byte(self) -> float:
        return self.total_bits / self.n_bytes


def prefix_token_id(tokenizer: Any) -> int | None:
    """The context token put before the text: BOS if the tokenizer has one, else EOS, else None."""
    for tid in (getattr(tokenizer, "bos_token_id", None), getattr(tokenizer, "eos_token_id", None)):
        if isinstance(tid, int):
            return tid
    return None


def check_text(text: object, max_chars: int = config.PPL_MAX_CHARS) -> str:
    """Refuse empty, over-long and broken (lone-surrogate) text, before any tokenizing.

    >>> check_text("吾輩は猫である。")
    '吾輩は猫である。'
    """
    return checks.text(
        text,
        max_chars,
        empty_key="ppl_empty",
        empty_message="Type or paste some text to score: the text is empty.",
        long_key="ppl_too_many_chars",
        long_message="The text has {n} characters; the limit is {limit}. Paste a shorter passage.",
    )


def _check_window(window: int, stride: int, max_positions: int | None) -> tuple[int, int]:
    if max_positions:
        window = min(window, int(max_positions) - 1)  # one position goes to the prefix token
    if window < 2:
        raise UserError(
            f"The window must be at least 2 tokens (got {window}).", key="ppl_window", window=window
        )
    if not 1 <= stride <= window:
        raise UserError(
            f"The stride must be between 1 and the window ({window}); got {stride}.",
            key="ppl_stride",
            stride=stride,
            window=window,
        )
    return window, stride


def _token_logprobs(model: Any, input_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """log p(input[j+1] | input[:j+1]) and the argmax prediction at each j, for j < len-1."""
    device = getattr(model, "device", None) or next(model.parameters()).device
    ids = torch.tensor([input_ids], dtype=torch.long, device=device)
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, :-1]  # (T-1, vocab)
        targets = ids[0, 1:]
        out_lp = torch.empty(len(targets), dtype=torch.float64)
        out_arg = torch.empty(len(targets), dtype=torch.long)
        # float32 like transformers' loss; in row chunks so a 262k vocabulary stays small
        for start in range(0, len(targets), _LOGSOFTMAX_ROWS):
            rows = logits[start : start + _LOGSOFTMAX_ROWS].float()
            lp = torch.log_softmax(rows, dim=-1)
            tgt = targets[start : start + _LOGSOFTMAX_ROWS]
            out_lp[start : start + len(tgt)] = lp.gather(1, tgt[:, None])[:, 0].double().cpu()
            out_arg[start : start + len(tgt)] = rows.argmax(-1).cpu()
    return out_lp.numpy(), out_arg.numpy()


def _unscored_span(tokenizer: Any, text: str, first_id: int) -> tuple[int, int]:
    """Characters and bytes of the first token when nothing can predict it."""
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        end = enc["offset_mapping"][0][1]
        piece = text[:end]
    except (NotImplementedError, KeyError, IndexError, TypeError, ValueError):
        piece = tokenizer.decode([first_id])
    return len(piece), len(piece.encode("utf-8"))


def score_text(
    model: Any,
    tokenizer: Any,
    text: str,
    max_tokens: int = config.PPL_MAX_TOKENS,
    window: int = config.PPL_WINDOW,
    stride: int = config.PPL_STRIDE,
) -> TextScore:
    """Score ``text`` with a causal LM: per-token log-probabilities and the summary numbers.

    ``window`` is clipped to the model's ``max_position_embeddings - 1``. Raises ``UserError`` for
    empty text, text over ``config.PPL_MAX_CHARS`` characters or ``max_tokens`` tokens, and a bad
    window or stride.
    """
    check_text(text)
    max_pos = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    window, stride = _check_window(int(window), int(stride), max_pos)
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    n = len(ids)
    if n == 0:
        raise UserError("Type or paste some text to score: the text is empty.", key="ppl_empty")
    if n > max_tokens:
        raise UserError(
            f"The text is {n:,} tokens long for this tokenizer; the limit is {max_tokens:,} tokens. "
            "Shorten the text (about the first half would fit) and score again.",
            key="ppl_too_many_tokens",
            n=f"{n:,}",
            limit=f"{max_tokens:,}",
        )
    prefix = prefix_token_id(tokenizer)
    logprobs = np.full(n, np.nan)
    predicted = np.full(n, -1, dtype=np.int64)
    n_windows, prev_end = 0, 0
    # The transformers perplexity guide's loop, on text tokens, with the prefix before each window.
    for begin in range(0, n, stride):
        end = min(begin + window, n)
        new = end - prev_end  # tokens scored by this window (the rest is context)
        chunk = ids[begin:end]
        inp = ([prefix] if prefix is not None else []) + chunk
        lp, arg = _token_logprobs(model, inp)
        # lp[j] scores inp[j + 1]; text token i (begin <= i < end) is inp[i - begin + offset]
        offset = 1 if prefix is not None else 0
        for i in range(end - new, end):
            j = i - begin + offset - 1
            if j >= 0:
                logprobs[i], predicted[i] = lp[j], arg[j]
        n_windows += 1
        prev_end = end
        if end == n:
            break
    n_chars, n_bytes = len(text), len(text.encode("utf-8"))
    if prefix is None:
        c, b = _unscored_span(tokenizer, text, ids[0])
        n_chars, n_bytes = n_chars - c, n_bytes - b
        if not np.isfinite(logprobs).any():
            raise UserError(
                "This tokenizer has no BOS/EOS token, so a one-token text has nothing to score. "
                "Type a longer text.",
                key="ppl_one_token",
            )
    return TextScore(
        text=text,
        token_ids=tuple(int(i) for i in ids),
        logprobs=tuple(float(x) for x in logprobs),
        predicted_ids=tuple(int(i) for i in predicted),
        prefix_id=prefix,
        n_chars=max(n_chars, 1),
        n_bytes=max(n_bytes, 1),
        window=window,
        stride=stride,
        n_windows=n_windows,
    )


@dataclass(frozen=True)
class Span:
    """One unit of the coloured text: a token, or the tokens that share a split character.

    Byte-level tokenizers may cut ``猫`` (3 UTF-8 bytes) into two tokens; neither is readable
    alone, so they are shown together and their surprisals add up (the cost of the character).
    """

    text: str
    token_indices: tuple[int, ...]  # indices into ``TextScore.token_ids``
    bits: float  # total surprisal of these tokens (NaN if none was scored)
    char_end: int  # characters of the text up to the end of this span


def surprisal_spans(score: TextScore, tokenizer: Any) -> list[Span]:
    """Group the scored tokens into readable spans (see ``Span``).

    With Gemma, "吾輩は" is one token per character, so three spans of one token each; a
    byte-level BPE that cuts "猫" into two tokens gives one span "猫" whose bits are the sum.
    """
    pieces = token_pieces(tokenizer, score.token_ids)
    raws = token_bytes(tokenizer, score.token_ids)
    bits = score.surprisal_bits
    spans: list[Span] = []
    chars = 0
    k = 0
    while k < len(pieces):
        j = k + 1
        while j < len(pieces) and pieces[j].group == pieces[k].group:
            j += 1
        raw = b"".join(raws[k:j])
        chars += len(raw.decode("utf-8", "replace"))  # positions in the text as decoded
        text = readable_bytes(raw)  # what is shown: bytes of no character as <E3 81>, never "\ufffd"
        group_bits = bits[k:j]
        total = float(np.nansum(group_bits)) if np.isfinite(group_bits).any() else math.nan
        spans.append(Span(text, tuple(range(k, j)), total, chars))
        k = j
    return spans


def cumulative_bits(spans: list[Span]) -> tuple[np.ndarray, np.ndarray]:
    """(characters so far, bits so far) after each span; the slope is bits per character.

    >>> cumulative_bits([Span("ab", (0,), 3.0, 2), Span("c", (1,), 1.0, 3)])
    (array([2, 3]), array([3., 4.]))
    """
    x = np.array([s.char_end for s in spans], dtype=int)
    y = np.cumsum([0.0 if math.isnan(s.bits) else s.bits for s in spans])
    return x, y
