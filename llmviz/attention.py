"""Attention weights of a real causal language model, and the numbers a teacher points at.

``compute_attention`` runs the model once on a list of token ids with ``output_attentions`` and
returns every layer's and every head's attention matrix as one float32 array
``(layers, heads, T, T)``: row ``i`` is query token ``i``, column ``j`` the key token ``j`` it
reads from, each row a probability distribution (it sums to 1) and, because the model is causal,
zero above the diagonal. Everything else here is plain numpy on that array: per-head statistics
(entropy, share on the first token, distance looked back, ...), hiding the first token ("attention
sink") and renormalising, block-mean downsampling for overviews, and the facts about the model's
heads that explain what the student sees (grouped-query attention, sliding-window layers).

Deliberately not here: loading models (``llmviz.models``), drawing (``llmviz.plots.attention``),
and anything about gradio. The LM head is skipped: attention needs only the transformer body, and
for Gemma the 262k-word output layer would cost more than the whole body.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmviz import checks, config
from llmviz.errors import UserError
from llmviz.tokens import token_labels

# Characters per token are at most a few dozen; refusing huge strings before tokenizing them keeps a
# pasted book from costing seconds just to be told it is too long.
_MAX_CHARS_PER_TOKEN = 40


# --- the model's attention layout ----------------------------------------------------------------
@dataclass(frozen=True)
class HeadLayout:
    """How a model's attention is organised, read from its config.

    ``n_kv_heads < n_heads`` is grouped-query attention (GQA): query heads ``g*group .. (g+1)*group-1``
    share key/value head ``g``. ``layer_types`` holds "full_attention" or "sliding_attention" per
    layer; a sliding layer lets a token see only the last ``sliding_window`` tokens (itself included).
    """

    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    layer_types: tuple[str, ...]
    sliding_window: int | None

    @property
    def group_size(self) -> int:
        """Query heads per key/value head (1 = ordinary multi-head attention)."""
        return self.n_heads // self.n_kv_heads

    @property
    def is_gqa(self) -> bool:
        return self.n_kv_heads < self.n_heads

    def kv_head_of(self, head: int) -> int:
        """The key/value head that query ``head`` reads: ``kv_head_of(5) == 1`` for 9 heads / 3 KV."""
        return head // self.group_size

    @property
    def sliding_layers(self) -> tuple[int, ...]:
        return tuple(i for i, kind in enumerate(self.layer_types) if kind == "sliding_attention")

    def window_visible(self, n_tokens: int) -> bool:
        """True when some layer's window is shorter than the text, so its map shows a band."""
        return (
            bool(self.sliding_layers)
            and self.sliding_window is not None
            and (self.sliding_window < n_tokens)
        )


def head_layout(model: Any) -> HeadLayout:
    """The ``HeadLayout`` of a transformers causal LM (Gemma-3-270M: 18 layers, 4 heads, 1 KV head)."""
    cfg = (
        model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    )
    n_layers = int(cfg.num_hidden_layers)
    n_heads = int(cfg.num_attention_heads)
    n_kv = int(getattr(cfg, "num_key_value_heads", None) or n_heads)
    head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads)
    kinds = getattr(cfg, "layer_types", None) or ["full_attention"] * n_layers
    window = getattr(cfg, "sliding_window", None)
    if "sliding_attention" not in kinds:
        window = None  # e.g. Qwen2 carries a sliding_window value but does not use it
    return HeadLayout(n_layers, n_heads, n_kv, head_dim, tuple(kinds), window)


# --- input ---------------------------------------------------------------------------------------
def _too_long(n: int, limit: int, chars: bool = False) -> UserError:
    if chars:
        return UserError(
            f"The text is {n} characters long, far more than {limit} tokens; the attention view "
            f"shows at most {limit} tokens (one {limit}×{limit} map per head). Shorten the text "
            "and run again.",
            key="att_too_long_chars",
            n=n,
            limit=limit,
        )
    return UserError(
        f"The text is {n} tokens long; the attention view shows at most {limit} tokens "
        f"(one {limit}×{limit} map per head). Shorten the text and run again.",
        key="att_too_long",
        n=n,
        limit=limit,
    )


def encode_text(
    tokenizer: Any, text: object, max_tokens: int = config.MAX_ATTENTION_TOKENS
) -> list[int]:
    """Token ids of ``text`` as the model sees it (with its usual special tokens, e.g. ``<bos>``).

    Raises ``UserError`` for empty or whitespace-only text and for text over ``max_tokens``.
    """
    if not isinstance(text, str) or text == "":
        raise UserError("Type or pick a text first: the text box is empty.", key="att_empty")
    if not text.strip():
        raise UserError(
            "The text is only spaces or line breaks. Type a sentence to see its attention.",
            key="att_blank",
        )
    if len(text) > max_tokens * _MAX_CHARS_PER_TOKEN:
        raise _too_long(len(text), max_tokens, chars=True)
    checks.utf8(text)
    ids = list(tokenizer(text)["input_ids"])
    if len(ids) > max_tokens:
        raise _too_long(len(ids), max_tokens)
    return ids


# --- running the model ---------------------------------------------------------------------------
@dataclass(frozen=True)
class AttentionResult:
    """Every attention map of one text; small enough to keep per session (18×4×128² floats = 4.7 MB)."""

    weights: np.ndarray  # (layers, heads, T, T) float32; rows sum to 1, zero above the diagonal
    token_ids: tuple[int, ...]
    labels: tuple[str, ...]  # one readable label per token (llmviz.tokens.token_labels)
    layout: HeadLayout

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)


def compute_attention(
    model: Any, tokenizer: Any, ids: Sequence[int], max_tokens: int = config.MAX_ATTENTION_TOKENS
) -> AttentionResult:
    """Run ``model`` (eager attention) on ``ids`` and collect all attention maps."""
    import torch

    ids = [int(i) for i in ids]
    if not ids:
        raise UserError("Type or pick a text first: the text box is empty.", key="att_empty")
    if len(ids) > max_tokens:
        raise _too_long(len(ids), max_tokens)
    layout = head_layout(model)
    backbone = getattr(model, "base_model", model)
    device = next(model.parameters()).device
    with torch.inference_mode():
        out = backbone(
            input_ids=torch.tensor([ids], device=device), output_attentions=True, use_cache=False
        )
    maps = out.attentions
    if not maps or any(m is None for m in maps):
        # sdpa / flash kernels never materialise the weights; transformers then returns nothing.
        raise RuntimeError("the model returned no attention weights: load it with eager attention")
    weights = torch.stack([m[0] for m in maps]).float().cpu().numpy()
    weights.flags.writeable = False  # results may be shared between sessions: never edit in place
    expected = (layout.n_layers, layout.n_heads, len(ids), len(ids))
    if weights.shape != expected:
        raise RuntimeError(f"attention shape {weights.shape}, expected {expected}")
    return AttentionResult(weights, tuple(ids), tuple(token_labels(tokenizer, ids)), layout)


# --- transforms for display ----------------------------------------------------------------------
def hide_first_token(weights: np.ndarray) -> np.ndarray:
    """Zero the first key column and renormalise every row to sum to 1 again.

    Many heads park most of their attention on the first token (an "attention sink") when they have
    nothing useful to read; hiding it shows how the rest is shared out. Row 0 can only see token 0,
    so it becomes all zero, as does any row that had everything on the first token.
    ``[[1, 0], [0.8, 0.2]] -> [[0, 0], [0, 1]]``. Works on any leading shape; returns a new array.
    """
    out = np.array(weights, dtype=np.float32, copy=True)
    out[..., 0] = 0.0
    sums = out.sum(axis=-1, keepdims=True)
    np.divide(out, sums, out=out, where=sums > 0)
    return out


def downsample(weights: np.ndarray, size: int) -> np.ndarray:
    """Block-mean the last two axes (T, T) down to at most (size, size).

    Blocks are ``k = ceil(T / size)`` tokens wide; the last block may be narrower and is averaged
    over its real cells only. ``T <= size`` returns the maps unchanged (as float32).
    ``downsample([[1, 0, 0, 0], [.5, .5, 0, 0], [.2, .2, .6, 0], [.1, .1, .1, .7]], 2)``
    ``-> [[.5, 0], [.15, .35]]``.
    """
    w = np.asarray(weights, dtype=np.float32)
    t = w.shape[-1]
    if size < 1:
        raise ValueError("size must be >= 1")
    k = math.ceil(t / size)
    if k == 1:
        return w.copy()
    p = math.ceil(t / k)
    pad = p * k - t
    padded = np.pad(w, [(0, 0)] * (w.ndim - 2) + [(0, pad), (0, pad)])
    sums = padded.reshape(*w.shape[:-2], p, k, p, k).sum(axis=(-3, -1))
    counts = np.minimum(k, t - np.arange(p) * k).astype(np.float32)
    return sums / np.outer(counts, counts)


# --- per-head numbers ----------------------------------------------------------------------------
@dataclass(frozen=True)
class HeadStats:
    """Averages over query tokens 1..T-1 (token 0 can only look at itself), one value per head.

    entropy: bits; 0 = all attention on one token, log2(i+1) = spread evenly over all it can see.
    first_share: attention on the first token. lookback: tokens looked back, sum_j a[i,j]*(i-j).
    prev_share / self_share: attention on the token just before / on itself.
    same_token_share: attention on earlier copies of the same token, averaged over the queries
    that have one (NaN when no token repeats).
    """

    entropy: np.ndarray  # (layers, heads)
    first_share: np.ndarray  # (layers, heads)
    lookback: np.ndarray  # (layers, heads)
    prev_share: np.ndarray  # (layers, heads)
    self_share: np.ndarray  # (layers, heads)
    same_token_share: np.ndarray  # (layers, heads)

    def of(self, layer: int, head: int) -> dict[str, float]:
        return {name: float(getattr(self, name)[layer, head]) for name in STAT_NAMES}


STAT_NAMES = ("entropy", "first_share", "lookback", "prev_share", "self_share", "same_token_share")


def head_stats(weights: np.ndarray, token_ids: Sequence[int]) -> HeadStats:
    """``HeadStats`` for ``weights`` (layers, heads, T, T). With one token everything is NaN."""
    w = np.asarray(weights, dtype=np.float32)
    t = w.shape[-1]
    lead = w.shape[:-2]
    if t < 2:
        nan = np.full(lead, np.nan, dtype=np.float32)
        return HeadStats(nan, nan, nan, nan, nan, nan)
    rows = w[..., 1:, :]  # queries 1..T-1
    # 0 * log(tiny) == 0, so masked cells add nothing without a second pass over the tensor
    plogp = rows * np.log2(np.maximum(rows, np.float32(1e-30)))
    entropy = -plogp.sum(-1, dtype=np.float64).mean(-1)
    distance = (np.arange(1, t)[:, None] - np.arange(t)[None, :]).clip(0).astype(np.float32)
    lookback = np.einsum("...ij,ij->...i", rows, distance).mean(-1)
    idx = np.arange(1, t)
    prev = w[..., idx, idx - 1].mean(-1)
    self_ = w[..., idx, idx].mean(-1)
    ids = np.asarray(token_ids)
    same = (ids[:, None] == ids[None, :]) & (np.arange(t)[None, :] < np.arange(t)[:, None])
    has_copy = same.any(-1)
    if has_copy.any():
        mass = np.einsum("...ij,ij->...i", w, same.astype(np.float32))  # (..., T)
        same_share = mass[..., has_copy].mean(-1)
    else:
        same_share = np.full(lead, np.nan)
    f32 = np.float32
    return HeadStats(
        entropy.astype(f32),
        rows[..., 0].mean(-1).astype(f32),
        lookback.astype(f32),
        prev.astype(f32),
        self_.astype(f32),
        np.asarray(same_share, dtype=f32),
    )


#: Patterns a student can look for, and the statistic that finds the clearest head for each.
PATTERNS = {
    "previous": "prev_share",
    "first": "first_share",
    "same_token": "same_token_share",
    "self": "self_share",
    "broad": "entropy",
}


def strongest_head(stats: HeadStats, pattern: str) -> tuple[int, int, float] | None:
    """(layer, head, value) of the head that shows ``pattern`` most, or None if it cannot show here
    (e.g. "same_token" when no token repeats)."""
    values = getattr(stats, PATTERNS[pattern])
    if np.all(np.isnan(values)):
        return None
    layer, head = np.unravel_index(np.nanargmax(values), values.shape)
    return int(layer), int(head), float(values[layer, head])


# --- one query token -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Focus:
    """Where query token ``query`` looks: keys 0..query, for one head and averaged."""

    query: int
    head: np.ndarray  # (query+1,) the chosen layer and head
    layer_mean: np.ndarray  # (query+1,) mean over the heads of the chosen layer
    model_mean: np.ndarray  # (query+1,) mean over every layer and head


def check_position(shape: Sequence[int], layer: Any, head: Any, query: Any) -> tuple[int, int, int]:
    """``(layer, head, query)`` as ints when they exist in weights of ``shape`` (layers, heads, T, T).

    >>> check_position((18, 4, 7, 7), 2.0, "3", 6)
    (2, 3, 6)
    >>> check_position((18, 4, 7, 7), 2, 3, float("inf"))
    Traceback (most recent call last):
      ...
    llmviz.errors.UserError: Layer 2, head 3, token inf is outside this text (18 layers, 4 heads, 7 tokens).
    """
    n_layers, n_heads, t = (int(x) for x in shape[:3])
    shown = {"layer": checks.show(layer), "head": checks.show(head), "query": checks.show(query)}
    message = (
        "Layer {layer}, head {head}, token {query} is outside this text "
        f"({n_layers} layers, {n_heads} heads, {t} tokens)."
    )
    out = []
    for value, hi in ((layer, n_layers), (head, n_heads), (query, t)):
        out.append(checks.whole(value, 0, hi - 1, key="att_out_of_range", message=message, **shown))
    return out[0], out[1], out[2]


def focus(weights: np.ndarray, layer: Any, head: Any, query: Any) -> Focus:
    """The attention row of ``query`` (earlier tokens only: a causal model sees nothing later)."""
    layer, head, query = check_position(weights.shape, layer, head, query)
    rows = weights[..., query, : query + 1]
    return Focus(
        query,
        rows[layer, head].astype(np.float32),
        rows[layer].mean(0).astype(np.float32),
        rows.mean((0, 1)).astype(np.float32),
    )
