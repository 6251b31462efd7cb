"""Running a causal language model one token at a time, with the sampler of ``sampling.py``.

* ``next_token_view``: the model's distribution over its WHOLE vocabulary after a prompt, filtered
  with the settings (nothing truncated before filtering).
* ``Decoder``: token ids + KV cache + the next-token logits; ``advance(token)`` costs one forward
  pass of one token (the prompt is encoded once).
* ``step`` / ``stream``: draw (or force) tokens with an explicit ``torch.Generator``. Seeded with
  ``s``, the tokens equal ``torch.manual_seed(s); model.generate(do_sample=True, ...)`` with the
  same settings: same forward calls (prefill with ``logits_to_keep=1``, then one token with the
  cache), same float32 filters, same ``torch.multinomial``. ``stream`` is a generator that ends
  when a ``threading.Event`` is set or the consumer closes it; the decoder stays consistent.
* ``Session``: one student's step-by-step run (decoder, generator, history, a lock).
* ``temperature_experiment``: the textbook's table (temperatures x samples), batched.

Deliberately not here: loading models (``llmviz.models``), display (``llmviz.plots`` / ``ui``).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmviz import checks, config, lane, library
from llmviz.errors import UserError
from llmviz.library import torch
from llmviz.sampling import (
    SamplingSettings,
    SamplingStep,
    check_token_id,
    draw_with_prob,
    filter_scores,
    rank_of,
    sample_next,
)
from llmviz.tokens import hex_bytes, labels_of, readable_decode, stop_token_ids, token_pieces


# --- validation ---------------------------------------------------------------------------------
def check_seed(seed: object) -> int:
    return checks.whole(
        seed,
        0,
        config.SAMPLING_MAX_SEED,
        key="sampling_seed",
        message="seed must be a whole number from 0 to {max}; got {value}.",
        max=config.SAMPLING_MAX_SEED,
    )


def check_max_new_tokens(n: object, limit: int = config.SAMPLING_MAX_NEW_TOKENS) -> int:
    return checks.whole(
        n,
        1,
        limit,
        key="sampling_max_tokens",
        message="max new tokens must be a whole number from 1 to {max}; got {value}.",
        max=limit,
    )


def encode_prompt(tokenizer: Any, prompt: object) -> list[int]:
    """Token ids of ``prompt`` as ``generate`` would get them (special tokens such as <bos> added)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise UserError(
            "The prompt is empty: type a few words for the model to continue, e.g. 「こんにちは、」.",
            key="sampling_prompt_empty",
        )
    checks.utf8(prompt)  # half an emoji would reach the tokenizer as a TypeError
    # cheap guard before tokenizing megabytes: no token is shorter than one character... almost
    if len(prompt) > config.MAX_PROMPT_TOKENS * 16:
        raise _too_long(len(prompt) // 4)
    ids = tokenizer(prompt)["input_ids"]
    if len(ids) > config.MAX_PROMPT_TOKENS:
        raise _too_long(len(ids))
    return list(ids)


def _too_long(n: int) -> UserError:
    return UserError(
        f"The prompt is too long (about {n} tokens); the limit is {config.MAX_PROMPT_TOKENS} "
        "tokens. Shorten it.",
        key="sampling_prompt_long",
        n=n,
        max=config.MAX_PROMPT_TOKENS,
    )


def generate_defaults(model: Any) -> dict[str, Any]:
    """What ``model.generate(do_sample=True)`` uses when you pass nothing: the model's
    ``generation_config`` first, then transformers' global defaults (top_k = 50!)."""
    library.ready()
    from transformers import GenerationConfig

    defaults = GenerationConfig._get_default_generation_params()
    own = getattr(model, "generation_config", None)
    out = {}
    for name in ("temperature", "top_k", "top_p", "min_p"):
        value = getattr(own, name, None) if own is not None else None
        out[name] = value if value is not None else defaults.get(name)
    return out


def candidate_labels(
    tokenizer: Any, context_ids: Sequence[int], candidates: Sequence[int], limit: int = 14
) -> list[str]:
    """A label per candidate as it would read after ``context_ids``.

    Each candidate is labelled inside its last few context tokens, so a byte that completes a
    Japanese character shows that character (``猫(2/2)``) instead of a bare byte.
    """
    ctx = [int(i) for i in context_ids[-4:]]
    return [labels_of(token_pieces(tokenizer, [*ctx, int(c)]), limit)[-1] for c in candidates]


# --- incremental decoding -------------------------------------------------------------------------
def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


class Decoder:
    """Token ids, the KV cache and the next-token logits (V,) float32 of the current position."""

    def __init__(self, model: Any, tokenizer: Any, prompt: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.prompt = prompt
        self.prompt_ids = encode_prompt(tokenizer, prompt)
        self.ids: list[int] = list(self.prompt_ids)
        self.eos = frozenset(stop_token_ids(tokenizer, model))
        self.cache: Any = None  # built on the first advance: a view alone never needs it
        self._keep = (
            {"logits_to_keep": 1}
            if "logits_to_keep" in inspect.signature(model.forward).parameters
            else {}
        )
        # the prompt's distribution is shared between sessions and batched with concurrent
        # views (llmviz.lane); never changed in place (advance replaces it)
        self.logits = lane.last_logits(model, tokenizer, self.prompt_ids)

    def _forward(self, new_ids: list[int]) -> torch.Tensor:
        inputs = torch.tensor([new_ids], device=_device(self.model))
        with torch.inference_mode():
            out = self.model(
                input_ids=inputs, past_key_values=self.cache, use_cache=True, **self._keep
            )
        self.cache = out.past_key_values
        # generate() samples from a float32 copy of the last position's logits: so do we
        return out.logits[0, -1].to(dtype=torch.float32, copy=True)

    @property
    def vocab_size(self) -> int:
        return int(self.logits.shape[0])

    @property
    def n_generated(self) -> int:
        return len(self.ids) - len(self.prompt_ids)

    @property
    def finished(self) -> bool:
        """The last token ended the text (an end-of-sequence token was chosen)."""
        return self.n_generated > 0 and self.ids[-1] in self.eos

    @property
    def room(self) -> int:
        return config.SAMPLING_MAX_NEW_TOKENS - self.n_generated

    def advance(self, token_id: int) -> None:
        """Append ``token_id`` and compute the logits for the position after it (one forward)."""
        token_id = check_token_id(token_id, self.vocab_size)
        if self.room <= 0:
            raise UserError(
                f"This text already has {config.SAMPLING_MAX_NEW_TOKENS} new tokens, the limit. "
                "Press Reset to start again from the prompt.",
                key="sampling_full",
                max=config.SAMPLING_MAX_NEW_TOKENS,
            )
        if self.cache is None:  # the KV cache of the prompt, by the same one-row pass as ever
            self._forward(self.prompt_ids)
        # one token: batched with the steps of the other students' generations (llmviz.lane)
        self.logits, self.cache = lane.decode_step(self.model, self.cache, token_id, owner=self)
        self.ids.append(token_id)


@dataclass(frozen=True)
class GeneratedToken:
    """One generated token and how likely the model found it (the colored-text view)."""

    token_id: int
    prob: float  # original probability (T = 1) the model gave it
    final_prob: float  # probability after temperature and filters (what the draw used)
    rank: int  # 1 = the model's favourite
    survivors: int  # candidates left after the filters
    forced: bool
    settings: SamplingSettings
    seed: int | None = None


def next_token_view(
    model: Any, tokenizer: Any, prompt: str, settings: SamplingSettings
) -> SamplingStep:
    """The full-vocabulary next-token distribution after ``prompt``, filtered (no draw)."""
    return sample_next(Decoder(model, tokenizer, prompt).logits, settings, draw_token=False)


def _fast_pick(
    logits: torch.Tensor, settings: SamplingSettings, rng: torch.Generator | None
) -> tuple[int, float, float, int, int]:
    """The streaming path: same filters and draw as ``sample_next``, only the numbers shown per token."""
    stages = filter_scores(logits, settings)
    token, final_prob = draw_with_prob(stages.final, rng, settings.greedy)
    prob = float(torch.exp(logits[token] - torch.logsumexp(logits, dim=-1)))
    survivors = int(torch.count_nonzero(torch.isfinite(stages.final)))
    return token, prob, final_prob, rank_of(logits, token), survivors


def _check_room(decoder: Decoder) -> None:
    if decoder.finished:
        raise UserError(
            "The model ended the text (it chose an end-of-text token). Press Reset or change the prompt.",
            key="sampling_ended",
        )
    if decoder.room <= 0:
        raise UserError(
            f"This text already has {config.SAMPLING_MAX_NEW_TOKENS} new tokens, the limit. "
            "Press Reset to start again from the prompt.",
            key="sampling_full",
            max=config.SAMPLING_MAX_NEW_TOKENS,
        )


def step(
    decoder: Decoder,
    settings: SamplingSettings,
    rng: torch.Generator | None,
    forced: int | None = None,
    seed: int | None = None,
) -> tuple[SamplingStep, GeneratedToken]:
    """Draw (or force) the next token, advance the decoder, return the full step and its record."""
    _check_room(decoder)
    result = sample_next(decoder.logits, settings, rng, forced=forced)
    assert result.chosen is not None and result.chosen_rank is not None
    token = GeneratedToken(
        token_id=result.chosen,
        prob=float(result.original_probs[result.chosen]),
        final_prob=float(result.final_probs[result.chosen]),
        rank=result.chosen_rank,
        survivors=result.n_survivors,
        forced=result.forced,
        settings=settings,
        seed=seed,
    )
    decoder.advance(result.chosen)
    return result, token


def stream(
    decoder: Decoder,
    settings: SamplingSettings,
    max_new_tokens: int,
    rng: torch.Generator | None,
    stop: threading.Event | None = None,
    lock: threading.Lock | None = None,
    seed: int | None = None,
) -> Iterator[GeneratedToken]:
    """Yield up to ``max_new_tokens`` sampled tokens, advancing ``decoder`` before each yield.

    Ends early at an end-of-text token, when ``stop`` is set, or when the consumer closes the
    generator; the decoder always holds every yielded token and nothing else. ``lock`` (if given)
    is held only while one token is computed, never across a ``yield``.
    """
    n = check_max_new_tokens(max_new_tokens, limit=config.SAMPLING_MAX_NEW_TOKENS)
    _check_room(decoder)
    n = min(n, decoder.room)
    for _ in range(n):
        if (stop is not None and stop.is_set()) or decoder.finished:
            return
        with lock if lock is not None else _NoLock():
            token, prob, final_prob, rank, survivors = _fast_pick(decoder.logits, settings, rng)
            decoder.advance(token)
        yield GeneratedToken(token, prob, final_prob, rank, survivors, False, settings, seed)


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def generate_ids(
    model: Any,
    tokenizer: Any,
    prompt: str,
    settings: SamplingSettings,
    max_new_tokens: int,
    seed: int,
) -> list[int]:
    """Our whole sampling loop in one call: the new token ids (compare with ``model.generate``)."""
    decoder = Decoder(model, tokenizer, prompt)
    rng = torch.Generator(device=decoder.logits.device).manual_seed(check_seed(seed))
    return [t.token_id for t in stream(decoder, settings, max_new_tokens, rng)]


# --- one student's run ----------------------------------------------------------------------------
@dataclass(frozen=True)
class TextGroup:
    """One readable unit of the generated text: a token, or the tokens of one character that a
    byte-level tokenizer split (their probabilities multiply: the character's probability)."""

    text: str  # the characters; bytes that form none as <E3 81>; a special token as itself
    prob: float  # product of the tokens' original probabilities
    rank: int  # rank of the first token
    forced: bool  # any of them forced by the student
    steps: tuple[int, ...]  # indices into ``Session.history``
    special: bool


def text_groups(tokenizer: Any, ids: Sequence[int], n_prompt: int,
                history: Sequence[GeneratedToken]) -> list[TextGroup]:  # fmt: skip
    """The generated part of ``ids`` (after ``n_prompt`` prompt tokens) grouped into characters.

    A group whose tokens have no history record (a prompt character that a generated token
    completed) is left out.
    """
    pieces = token_pieces(tokenizer, ids)[n_prompt:]
    out: list[TextGroup] = []
    k = 0
    while k < len(pieces):
        j = k + 1
        while j < len(pieces) and pieces[j].group == pieces[k].group:
            j += 1
        steps = tuple(i for i in range(k, j) if i < len(history))
        first = pieces[k]
        if steps:
            records = [history[i] for i in steps]
            if first.special or first.text or not first.partial:
                shown = first.text
            else:
                shown = "<" + hex_bytes(first.raw) + ">"
            out.append(
                TextGroup(
                    text=shown,
                    prob=float(np.prod([r.prob for r in records])),
                    rank=records[0].rank,
                    forced=any(r.forced for r in records),
                    steps=steps,
                    special=first.special,
                )
            )
        k = j
    return out


@dataclass
class Session:
    """Per-user state of the step-by-step view (kept in ``gr.State``; never shared)."""

    decoder: Decoder
    seed: int
    model_key: str = ""
    rng: torch.Generator = field(init=False)
    history: list[GeneratedToken] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.seed = check_seed(self.seed)
        self.rng = torch.Generator(device=self.decoder.logits.device).manual_seed(self.seed)

    @classmethod
    def start(
        cls, model: Any, tokenizer: Any, prompt: str, seed: object, model_key: str = ""
    ) -> Session:
        return cls(Decoder(model, tokenizer, prompt), check_seed(seed), model_key)

    def matches(self, prompt: str, seed: object, model_key: str) -> bool:
        """Same prompt, seed and model: continue; otherwise the UI starts a new session."""
        try:
            return (prompt, check_seed(seed), model_key) == (
                self.decoder.prompt,
                self.seed,
                self.model_key,
            )
        except UserError:
            return False

    def view(self, settings: SamplingSettings) -> SamplingStep:
        """The distribution at the current position under ``settings`` (no draw, no model call)."""
        return sample_next(self.decoder.logits, settings, draw_token=False)

    def step(self, settings: SamplingSettings, forced: int | None = None) -> SamplingStep:
        if not self.lock.acquire(blocking=False):
            raise UserError(
                "Tokens are still being generated: press Stop first.", key="sampling_busy"
            )
        try:
            result, token = step(self.decoder, settings, self.rng, forced, seed=self.seed)
            self.history.append(token)
            return result
        finally:
            self.lock.release()

    def stream(self, settings: SamplingSettings, max_new_tokens: int) -> Iterator[GeneratedToken]:
        self.stop.clear()
        for token in stream(
            self.decoder, settings, max_new_tokens, self.rng, self.stop, self.lock, self.seed
        ):
            self.history.append(token)
            yield token


# --- the textbook's experiment --------------------------------------------------------------------
@dataclass(frozen=True)
class ExperimentRow:
    temperature: float
    sample: int  # 1-based
    seed: int
    token_ids: tuple[int, ...]
    text: str
    mean_prob: float  # mean original probability of the chosen tokens (falls as T rises)


def temperature_experiment(
    model: Any,
    tokenizer: Any,
    prompt: str,
    temperatures: Sequence[float] = config.SAMPLING_EXPERIMENT_TEMPERATURES,
    samples: int = config.SAMPLING_EXPERIMENT_SAMPLES,
    max_new_tokens: int = config.SAMPLING_EXPERIMENT_TOKENS,
    seed: int = 0,
) -> list[ExperimentRow]:
    """Continue ``prompt`` ``samples`` times at each temperature, temperature only (no top-k/p).

    Sample ``i`` (1-based) at every temperature uses a generator seeded ``seed + i - 1``, so the
    table is reproducible. All rows run as one batch (they share the prompt, so no padding); a row
    may therefore differ in rare near-ties from a one-row run with the same seed.
    """
    seed = check_seed(seed)
    n = check_max_new_tokens(max_new_tokens, limit=config.SAMPLING_EXPERIMENT_MAX_TOKENS)
    settings = [SamplingSettings(temperature=t, top_k=0) for t in temperatures]
    prompt_ids = encode_prompt(tokenizer, prompt)
    dev = _device(model)
    rows = [(s, i) for s in settings for i in range(samples)]
    rngs = [torch.Generator(device=dev).manual_seed(seed + i) for _, i in rows]
    eos = frozenset(stop_token_ids(tokenizer, model))
    batch = torch.tensor([prompt_ids] * len(rows), device=dev)
    keep = (
        {"logits_to_keep": 1}
        if "logits_to_keep" in inspect.signature(model.forward).parameters
        else {}
    )
    chosen: list[list[int]] = [[] for _ in rows]
    probs: list[list[float]] = [[] for _ in rows]
    done = [False] * len(rows)
    cache = None
    with torch.inference_mode():
        for _ in range(n):
            out = model(input_ids=batch, past_key_values=cache, use_cache=True, **keep)
            cache = out.past_key_values
            logits = out.logits[:, -1].to(torch.float32)
            nxt = []
            for r, ((s, _), rng) in enumerate(zip(rows, rngs, strict=True)):
                token, prob, *_ = _fast_pick(logits[r], s, rng)
                if not done[r]:
                    chosen[r].append(token)
                    probs[r].append(prob)
                    done[r] = token in eos
                nxt.append(token)
            if all(done):
                break
            batch = torch.tensor([[t] for t in nxt], device=dev)
    return [
        ExperimentRow(
            temperature=s.temperature,
            sample=i + 1,
            seed=seed + i,
            token_ids=tuple(ids),
            text=readable_decode(tokenizer, ids),
            mean_prob=sum(p) / len(p),
        )
        for (s, i), ids, p in zip(rows, chosen, probs, strict=True)
    ]
