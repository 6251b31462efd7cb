"""Sampling: from a model's next-token scores to one chosen token, keeping every step visible.

A language model outputs one score (logit) per vocabulary entry. ``sample_next`` turns those
scores into a token in the same stages, and in the same order, as transformers' ``generate()``
(``GenerationMixin._get_logits_processor``, transformers 5.23)::

    logits --/T--> tempered --top-k--> --top-p--> --min-p--> final probabilities --draw--> token

Each filter sees the output of the previous one: top-p measures the nucleus on the distribution
that top-k left (renormalized), min-p compares with the top probability after top-p. The maths
mirrors ``TemperatureLogitsWarper``, ``TopKLogitsWarper``, ``TopPLogitsWarper`` and
``MinPLogitsWarper`` line by line (tests prove the masks equal theirs), and the draw is the same
``torch.multinomial`` call on the same float32 tensor, so with the same seed the chosen tokens
equal ``generate(do_sample=True)``'s. Temperature 0 means greedy: the argmax, as
``generate(do_sample=False)``.

Deliberately not here: models and tokenizers (``generation.py``), plotting, any global RNG.
Every random draw takes an explicit ``torch.Generator``.

Worked example (probabilities 0.5, 0.3, 0.1, 0.1; top-p 0.8 keeps the smallest set reaching 0.8)::

    >>> import torch
    >>> step = sample_next(torch.tensor([0.5, 0.3, 0.1, 0.1]).log(),
    ...                    SamplingSettings(top_k=0, top_p=0.8), forced=0)
    >>> step.kept_top_p.tolist(), round(float(step.final_probs[0]), 3)
    ([True, True, False, False], 0.625)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmviz import checks, config
from llmviz.errors import UserError
from llmviz.library import torch

#: The order generate() applies the filters in (stated in the UI).
FILTER_ORDER = ("temperature", "top_k", "top_p", "min_p")
#: top-k past any vocabulary (0 = off); only here so a huge number is refused, not overflowed.
MAX_TOP_K = 10**9


@dataclass(frozen=True)
class SamplingSettings:
    """The four knobs of ``generate(do_sample=True)``; constructing one validates it.

    ``temperature`` 0 = greedy; ``top_k`` 0 = off (generate's default is 50); ``top_p`` 1 = off;
    ``min_p`` 0 = off.
    """

    temperature: float = 1.0
    top_k: int = config.SAMPLING_DEFAULT_TOP_K
    top_p: float = 1.0
    min_p: float = 0.0

    def __post_init__(self) -> None:
        t = checks.real(
            self.temperature,
            0,
            config.SAMPLING_MAX_TEMPERATURE,
            key="sampling_temperature_range",
            message="temperature must be a number between 0 and {max} (0 = greedy, always the "
            "most likely token); got {value}.",
            max=f"{config.SAMPLING_MAX_TEMPERATURE:g}",
        )
        if 0 < t < config.SAMPLING_MIN_TEMPERATURE:
            raise UserError(
                f"temperature {t:g} is so small that the scores overflow; use 0 for greedy "
                f"decoding or at least {config.SAMPLING_MIN_TEMPERATURE:g}.",
                key="sampling_temperature_tiny",
                min=f"{config.SAMPLING_MIN_TEMPERATURE:g}",
                value=f"{t:g}",
            )
        k = checks.whole(
            self.top_k,
            0,
            MAX_TOP_K,
            key="sampling_top_k",
            message="top_k must be a whole number >= 0 (0 = off, generate's default is 50); "
            "got {value}.",
        )
        p = checks.real(
            self.top_p,
            0,
            1,
            lo_open=True,
            key="sampling_top_p",
            message="top_p must be a number greater than 0 and at most 1 (1 = off); got {value}.",
        )
        m = checks.real(
            self.min_p,
            0,
            1,
            key="sampling_min_p",
            message="min_p must be a number between 0 and 1 (0 = off); got {value}.",
        )
        object.__setattr__(self, "temperature", t)
        object.__setattr__(self, "top_k", int(k))
        object.__setattr__(self, "top_p", p)
        object.__setattr__(self, "min_p", m)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def generate_kwargs(self) -> dict[str, object]:
        """The ``model.generate`` arguments that mean the same thing."""
        if self.greedy:
            return {"do_sample": False}
        return {
            "do_sample": True,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "min_p": self.min_p if self.min_p > 0 else None,
        }


# --- the filters, each returning a keep-mask (True = the token survives) ------------------------
def top_k_keep(scores: torch.Tensor, top_k: int, min_keep: int = 1) -> torch.Tensor:
    """Keep the ``top_k`` highest scores (ties at the border all survive); 0 = off.

    ``[1., 3., 2., 0.]``, k=2 -> ``[False, True, True, False]``
    """
    return ~_top_k_drop(scores, top_k, min_keep)


def _top_k_drop(scores: torch.Tensor, top_k: int, min_keep: int = 1) -> torch.Tensor:
    if top_k == 0:
        return torch.zeros_like(scores, dtype=torch.bool)
    k = min(max(top_k, min_keep), scores.size(-1))
    kth = torch.topk(scores, k)[0][..., -1, None]
    return scores < kth


def top_p_keep(scores: torch.Tensor, top_p: float, min_keep: int = 1) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probabilities add up to ``top_p``.

    Sorted from least to most likely, a token is dropped while the running total up to and
    including it is still <= 1 - top_p (so the nucleus reaches at least top_p). 1 = off.
    ``log([0.3, 0.1, 0.1, 0.5])``, p=0.8 -> ``[True, False, False, True]``
    """
    return ~_top_p_drop(scores, top_p, min_keep)


def _top_p_drop(scores: torch.Tensor, top_p: float, min_keep: int = 1) -> torch.Tensor:
    if top_p >= 1.0:
        return torch.zeros_like(scores, dtype=torch.bool)
    sorted_scores, order = torch.sort(scores, descending=False)
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    drop_sorted = cumulative <= (1 - top_p)
    drop_sorted[..., -min_keep:] = False
    return drop_sorted.scatter(-1, order, drop_sorted)


def min_p_keep(scores: torch.Tensor, min_p: float, min_keep: int = 1) -> torch.Tensor:
    """Keep tokens at least ``min_p`` times as likely as the most likely one; 0 = off.

    ``log([0.9, 0.0274, 0.047, 0.0274])``, min_p=0.05 (threshold 0.045) ->
    ``[True, False, True, False]``
    """
    return ~_min_p_drop(scores, min_p, min_keep)


def _min_p_drop(scores: torch.Tensor, min_p: float, min_keep: int = 1) -> torch.Tensor:
    probs = torch.softmax(scores, dim=-1)
    drop = probs < min_p * probs.amax(dim=-1, keepdim=True)
    k = min(min_keep, probs.shape[-1])
    drop.scatter_(-1, torch.topk(probs, k, dim=-1).indices, False)
    return drop


def _masked(scores: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    return scores.masked_fill(~keep, -float("inf"))


def _dropped(scores: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    # the per-token path works on "drop" masks, exactly the tensors the library fills with -inf
    return scores.masked_fill(drop, -float("inf"))


@dataclass(frozen=True)
class FilteredScores:
    """The torch tensors of each stage (what ``generate`` computes), for the fast path."""

    tempered: torch.Tensor  # (V,) logits / T (T=0: 0 at the argmax, -inf elsewhere)
    after_top_k: torch.Tensor  # (V,)
    after_top_p: torch.Tensor  # (V,)
    final: torch.Tensor  # (V,) after min-p: softmax of this is what is sampled from


def filter_scores(logits: torch.Tensor, settings: SamplingSettings) -> FilteredScores:
    """Apply temperature -> top-k -> top-p -> min-p to float32 ``logits`` (V,), as generate does."""
    if settings.greedy:
        onehot = torch.zeros_like(logits, dtype=torch.bool)
        onehot[int(torch.argmax(logits))] = True
        s = _masked(torch.zeros_like(logits), onehot)
        return FilteredScores(s, s, s, s)
    # A filter that is off is skipped, as generate skips it (no processor is added): that
    # saves passes over the whole vocabulary for every generated token.
    tempered = logits if settings.temperature == 1.0 else logits / settings.temperature
    after_k = tempered
    if settings.top_k:
        after_k = _dropped(tempered, _top_k_drop(tempered, settings.top_k))
    after_p = after_k
    if settings.top_p < 1.0:
        after_p = _dropped(after_k, _top_p_drop(after_k, settings.top_p))
    final = after_p
    if settings.min_p > 0:  # min_p = 0 removes nothing
        final = _dropped(after_p, _min_p_drop(after_p, settings.min_p))
    return FilteredScores(tempered, after_k, after_p, final)


def draw(final_scores: torch.Tensor, rng: torch.Generator | None, greedy: bool) -> int:
    """One token from ``softmax(final_scores)``: the same call generate makes (argmax if greedy)."""
    return draw_with_prob(final_scores, rng, greedy)[0]


def draw_with_prob(
    final_scores: torch.Tensor, rng: torch.Generator | None, greedy: bool
) -> tuple[int, float]:
    """``draw`` plus the probability the drawn token had in the distribution it was drawn from."""
    if greedy:
        return int(torch.argmax(final_scores)), 1.0
    probs = torch.softmax(final_scores[None, :], dim=-1)
    token = int(torch.multinomial(probs, num_samples=1, generator=rng)[0, 0])
    return token, float(probs[0, token])


def rank_of(logits: torch.Tensor, token_id: int) -> int:
    """1 + how many tokens the model scored strictly higher (1 = the model's favourite)."""
    return int(torch.count_nonzero(logits > logits[token_id])) + 1


def entropy_bits(probs: np.ndarray) -> float:
    """Shannon entropy in bits; ``[0.5, 0.5]`` -> 1.0, ``[1, 0]`` -> 0.0."""
    p = probs[probs > 0].astype(np.float64)
    return float(-(p * np.log2(p)).sum()) + 0.0


@dataclass(frozen=True)
class SamplingStep:
    """Everything a teacher may point at for one next-token decision (arrays over the vocabulary)."""

    settings: SamplingSettings
    original_probs: np.ndarray  # (V,) softmax(logits), T = 1
    tempered_probs: np.ndarray  # (V,) softmax(logits / T); one-hot when greedy
    top_p_input_probs: np.ndarray  # (V,) what top-p measures: renormalized after top-k
    kept_top_k: np.ndarray  # (V,) bool, after temperature + top-k
    kept_top_p: np.ndarray  # (V,) bool, after ... + top-p (subset of kept_top_k)
    kept_min_p: np.ndarray  # (V,) bool, after every filter = the survivors
    final_probs: np.ndarray  # (V,) renormalized over the survivors: what is sampled from
    entropy_bits: float  # of the original distribution
    tempered_entropy_bits: float
    final_entropy_bits: float
    effective_choices: float  # 2 ** entropy_bits ("as uncertain as a fair die with N sides")
    n_survivors: int
    survivor_mass: float  # total ORIGINAL probability of the survivors
    chosen: int | None  # the drawn (or forced) token id; None when nothing was drawn
    chosen_rank: int | None  # 1 = the model's favourite
    forced: bool

    @property
    def vocab_size(self) -> int:
        return int(self.original_probs.shape[0])

    @property
    def nucleus_size(self) -> int:
        """Tokens inside the top-p nucleus (greedy keeps one: the favourite)."""
        return 1 if self.settings.greedy else int(self.kept_top_p.sum())

    @property
    def tempered_choices(self) -> float:
        """``2 ** tempered_entropy_bits``: as uncertain as a fair die with this many sides,
        after temperature (the same measure as ``effective_choices``)."""
        return float(2.0**self.tempered_entropy_bits)

    def top_ids(self, n: int) -> np.ndarray:
        """The ``n`` most likely token ids under the original distribution, most likely first."""
        n = min(n, self.vocab_size)
        part = np.argpartition(-self.original_probs, n - 1)[:n]
        return part[np.argsort(-self.original_probs[part], kind="stable")]

    def removed_by(self, ids: np.ndarray | list[int]) -> list[str]:
        """Which stage removed each token: "" (survived), "greedy", "top_k", "top_p" or "min_p"."""
        out = []
        for i in ids:
            if self.kept_min_p[i]:
                out.append("")
            elif self.settings.greedy:
                out.append("greedy")
            elif not self.kept_top_k[i]:
                out.append("top_k")
            elif not self.kept_top_p[i]:
                out.append("top_p")
            else:
                out.append("min_p")
        return out

    def nucleus_curve(self, n: int) -> np.ndarray:
        """Cumulative probability of the top-p input, sorted most likely first, first ``n`` values."""
        p = self.top_p_input_probs
        n = min(n, p.shape[0])
        part = np.argpartition(-p, n - 1)[:n]
        return np.cumsum(np.sort(p[part])[::-1].astype(np.float64))


def check_token_id(token_id: object, vocab_size: int) -> int:
    """A forced token id must be a whole number in [0, vocab_size)."""
    return checks.whole(
        token_id,
        0,
        vocab_size - 1,
        key="sampling_token_id",
        message="token id must be a whole number from 0 to {max} (the vocabulary has {vocab} "
        "entries); got {value}.",
        max=vocab_size - 1,
        vocab=vocab_size,
    )


def sample_next(
    logits: torch.Tensor,
    settings: SamplingSettings,
    rng: torch.Generator | None = None,
    forced: int | None = None,
    draw_token: bool = True,
) -> SamplingStep:
    """Filter ``logits`` (V,) with ``settings`` and draw one token with ``rng`` (or take ``forced``).

    ``draw_token=False`` only computes the distribution (the next-token view), consuming no
    randomness. Every intermediate is returned as numpy arrays.
    """
    logits = torch.as_tensor(logits).detach().to(torch.float32).reshape(-1)
    if forced is not None:
        forced = check_token_id(forced, logits.shape[0])
    stages = filter_scores(logits, settings)
    chosen: int | None = forced
    if chosen is None and draw_token:
        chosen = draw(stages.final, rng, settings.greedy)
    keep = _numpy(torch.isfinite(stages.final))
    original = _numpy(torch.softmax(logits, dim=-1))
    tempered = _numpy(torch.softmax(stages.tempered, dim=-1))
    final = _numpy(torch.softmax(stages.final, dim=-1))
    entropy = entropy_bits(original)
    return SamplingStep(
        settings=settings,
        original_probs=original,
        tempered_probs=tempered,
        top_p_input_probs=_numpy(torch.softmax(stages.after_top_k, dim=-1)),
        kept_top_k=_numpy(torch.isfinite(stages.after_top_k)),
        kept_top_p=_numpy(torch.isfinite(stages.after_top_p)),
        kept_min_p=keep,
        final_probs=final,
        entropy_bits=entropy,
        tempered_entropy_bits=entropy_bits(tempered),
        final_entropy_bits=entropy_bits(final),
        effective_choices=float(2.0**entropy),
        n_survivors=int(keep.sum()),
        survivor_mass=float(original[keep].astype(np.float64).sum()),
        chosen=chosen,
        chosen_rank=None if chosen is None else rank_of(logits, chosen),
        forced=forced is not None,
    )


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()
