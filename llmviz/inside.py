"""Inside the model: the logit lens, the token embeddings and the KV cache of a real model.

* **Logit lens** (``logit_lens``): the hidden state after every layer, at every position, read
  out with the model's OWN final norm and LM head (Gemma 3's RMSNorm scales by ``1 + weight``,
  SmolLM2's Llama norm by ``weight``: we call the model's module, never a copy of its formula;
  Gemma 2-style final logit soft-capping is applied when the config has it). The states are
  caught with forward hooks on the embedding layer and on every decoder layer, not taken from
  ``output_hidden_states`` (transformers replaces its last entry by the already-normalised
  output). The last row therefore IS the model's output distribution (tested allclose). Per cell
  we keep the top 10 and the log-normaliser, plus the normalised states, so the curve of any
  target token across layers costs one small product instead of a second pass.
* **Token embeddings** (``neighbours``, ``word_map``, ``analogy``): rows of the input embedding
  matrix (Gemma 3: 262,144 x 640) compared by cosine similarity over the whole vocabulary, in
  float32 chunks (a float32 copy of the matrix would cost 671 MB). A word of several tokens is
  the mean of its pieces' rows, and the result says so.
* **KV cache** (``kv_layout``, ``cache_bytes``): the formula (``llmviz.memory.kv_cache_bytes``,
  the memory tab's own) next to the bytes of the tensors a real generation's cache holds.

Deliberately not here: loading models (``llmviz.models``), drawing (``llmviz.plots.inside``),
gradio. Every forward pass and every product with the LM head runs in the compute lane.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmviz import checks, config, lane, memory
from llmviz.errors import UserError
from llmviz.tokens import special_ids, token_labels

TOP_K = 10  # candidates kept per lens cell
_CHUNK_ROWS = 32_768  # vocabulary rows per float32 chunk in the similarity scans (84 MB for d=640)


# --- input ---------------------------------------------------------------------------------------
def encode_prompt(tokenizer: Any, prompt: object, max_tokens: int = config.INSIDE_MAX_TOKENS) -> list[int]:
    """Token ids of ``prompt`` with the model's usual special tokens (``<bos>``)."""
    prompt = checks.text(
        prompt,
        max_tokens * 16,
        empty_key="inside_prompt_empty",
        empty_message="The prompt is empty: type a sentence, e.g. 「富士山の高さは」 or "
        "'The capital of France is'.",
        long_key="inside_prompt_long_chars",
        long_message="The prompt is {n} characters long, far more than {limit} characters; the "
        "lens shows at most " + str(max_tokens) + " tokens. Shorten it.",
    )
    ids = list(tokenizer(prompt)["input_ids"])
    if len(ids) > max_tokens:
        raise UserError(
            f"The prompt is {len(ids)} tokens long; the lens shows at most {max_tokens} tokens "
            "(one column each). Shorten it.",
            key="inside_prompt_long",
            n=len(ids),
            limit=max_tokens,
        )
    return ids


@dataclass(frozen=True)
class Word:
    """A word as the embedding matrix sees it: its token ids and their labels."""

    text: str
    ids: tuple[int, ...]
    labels: tuple[str, ...]

    @property
    def pieces(self) -> int:
        return len(self.ids)


def encode_word(tokenizer: Any, word: object) -> Word:
    """The tokens of ``word`` without special tokens (leading/trailing spaces removed: type
    words as you would in a list; SentencePiece models mark an in-sentence word with "▁")."""
    word = checks.text(
        word,
        config.INSIDE_MAX_WORD_CHARS,
        empty_key="inside_word_empty",
        empty_message="Type a word first, e.g. 猫 or cat.",
        long_key="inside_word_long",
        long_message="A word here has at most {limit} characters; this one has {n}.",
    ).strip()
    ids = tuple(int(i) for i in tokenizer(word, add_special_tokens=False)["input_ids"])
    if not ids:
        raise UserError(
            f"'{checks.show(word)}' gives no tokens at all. Type a word, e.g. 猫 or cat.",
            key="inside_word_no_tokens",
            word=checks.show(word),
        )
    if len(ids) > config.INSIDE_MAX_WORD_TOKENS:
        raise UserError(
            f"'{checks.show(word)}' is {len(ids)} tokens; a word here may have at most "
            f"{config.INSIDE_MAX_WORD_TOKENS} (their mean is used). Type a shorter word.",
            key="inside_word_tokens",
            word=checks.show(word),
            n=len(ids),
            limit=config.INSIDE_MAX_WORD_TOKENS,
        )
    return Word(word, ids, tuple(token_labels(tokenizer, list(ids))))


def parse_words(text: object) -> list[str]:
    """A word set typed one per line or separated by commas (「、」 too), duplicates dropped."""
    if not isinstance(text, str):
        text = ""
    raw = text.replace("、", ",").replace("，", ",").replace("\n", ",").split(",")
    words = list(dict.fromkeys(w.strip() for w in raw if w.strip()))
    if len(words) < config.INSIDE_MIN_WORDS:
        raise UserError(
            f"A map needs at least {config.INSIDE_MIN_WORDS} different words, one per line or "
            f"separated by commas; got {len(words)}.",
            key="inside_words_few",
            n=len(words),
            limit=config.INSIDE_MIN_WORDS,
        )
    if len(words) > config.INSIDE_MAX_WORDS:
        raise UserError(
            f"A map shows at most {config.INSIDE_MAX_WORDS} words (labels would overlap); got "
            f"{len(words)}. Remove some.",
            key="inside_words_many",
            n=len(words),
            limit=config.INSIDE_MAX_WORDS,
        )
    return words


# --- the model's parts ---------------------------------------------------------------------------
def _decoder(model: Any) -> Any:
    inner = model.get_decoder() if hasattr(model, "get_decoder") else model.model
    return inner


def _readout(model: Any) -> tuple[Any, Any, float | None]:
    """(final norm, LM head, soft-cap) of a causal LM."""
    inner = _decoder(model)
    norm = getattr(inner, "norm", None)
    head = model.get_output_embeddings()
    if norm is None or head is None:
        raise UserError(
            f"{type(model).__name__} has no final norm / LM head this lens knows how to read.",
            key="inside_no_readout",
            kind=type(model).__name__,
        )
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    cap = getattr(cfg, "final_logit_softcapping", None)
    return norm, head, float(cap) if cap else None


def _logits(head: Any, cap: float | None, normed: Any) -> Any:
    import torch

    logits = head(normed).float()
    if cap is not None:
        logits = torch.tanh(logits / cap) * cap
    return logits


# --- the logit lens ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lens:
    """What every layer would predict at every position. ``layers`` rows: 0 = the embeddings
    (before any layer), ``i`` = after decoder layer ``i``; the last row is the model's output.
    Column ``t`` is the prediction for the token AFTER position ``t``."""

    token_ids: tuple[int, ...]
    labels: tuple[str, ...]  # one per position
    top_ids: np.ndarray  # (layers, T, TOP_K) int64, most likely first
    top_probs: np.ndarray  # (layers, T, TOP_K) float32
    top_labels: tuple[tuple[tuple[str, ...], ...], ...]  # (layers, T, TOP_K) readable labels
    normed: np.ndarray  # (layers, T, d) float32: final norm applied (what the LM head reads)
    log_z: np.ndarray  # (layers, T) float32: logsumexp of each cell's logits

    @property
    def n_layers(self) -> int:
        """Decoder layers (rows are one more: the embeddings)."""
        return int(self.top_ids.shape[0]) - 1

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    def first_layer_with(self, position: int, token_id: int) -> int | None:
        """The first row whose top token at ``position`` is ``token_id`` and stays so to the end."""
        col = self.top_ids[:, position, 0]
        first = None
        for row in range(len(col) - 1, -1, -1):
            if int(col[row]) != token_id:
                break
            first = row
        return first


def logit_lens(model: Any, tokenizer: Any, ids: Sequence[int]) -> Lens:
    """Run ``model`` once on ``ids`` and read every layer's state through its final norm and head."""
    import torch

    ids = [int(i) for i in ids]
    if not ids:
        raise UserError("The prompt is empty.", key="inside_prompt_empty")
    inner = _decoder(model)
    norm, head, cap = _readout(model)
    states: list[Any] = []
    hooks = [
        inner.embed_tokens.register_forward_hook(lambda m, a, out: states.append(out)),
        *(
            layer.register_forward_hook(
                lambda m, a, out: states.append(out[0] if isinstance(out, tuple) else out)
            )
            for layer in inner.layers
        ),
    ]
    device = next(model.parameters()).device
    try:
        with lane.COMPUTE, torch.inference_mode():  # the readout products belong to the lane too
            out = model(input_ids=torch.tensor([ids], device=device), use_cache=False)
            want = len(inner.layers) + 1
            if len(states) != want:
                raise RuntimeError(f"caught {len(states)} hidden states, expected {want}")
            tops, top_p, log_z, normed_all = [], [], [], []
            for state in states:
                normed = norm(state[0])
                logits = _logits(head, cap, normed)
                if not torch.isfinite(logits).all():
                    raise UserError(
                        "The model produced NaN or infinite numbers for this prompt at this "
                        "precision. Try another precision (fp32) or another prompt.",
                        key="inside_not_finite",
                    )
                lz = torch.logsumexp(logits, dim=-1)
                values, index = torch.topk(logits, TOP_K, dim=-1)
                tops.append(index)
                top_p.append(torch.exp(values - lz[:, None]))
                log_z.append(lz)
                normed_all.append(normed.float())
            del out  # its logits are the last row (tests check they are equal)
    finally:
        for h in hooks:
            h.remove()
    top_ids = torch.stack(tops).cpu().numpy()
    flat = sorted({int(i) for i in top_ids.reshape(-1)})
    label_of = dict(zip(flat, (token_labels(tokenizer, [i])[0] for i in flat), strict=True))
    top_labels = tuple(
        tuple(tuple(label_of[int(i)] for i in cell) for cell in row) for row in top_ids
    )
    arrays = [
        top_ids,
        torch.stack(top_p).cpu().numpy().astype(np.float32),
        torch.stack(normed_all).cpu().numpy(),
        torch.stack(log_z).cpu().numpy().astype(np.float32),
    ]
    for a in arrays:
        a.flags.writeable = False  # shared between sessions
    return Lens(
        tuple(ids), tuple(token_labels(tokenizer, ids)), arrays[0], arrays[1], top_labels,
        arrays[2], arrays[3],
    )  # fmt: skip


@dataclass(frozen=True)
class TargetCurve:
    """One token's probability and rank (1 = top) in every row of the lens at one position."""

    token_id: int
    label: str
    position: int
    probs: np.ndarray  # (layers,)
    ranks: np.ndarray  # (layers,)


def target_curve(
    model: Any, tokenizer: Any, lens: Lens, token_id: int, position: int
) -> TargetCurve:
    """``token_id`` through the layers at ``position``: one product of the LM head per row."""
    import torch

    _, head, cap = _readout(model)
    position = int(position)
    if not 0 <= position < lens.n_tokens:
        raise UserError(
            f"Position {position} is not in this prompt (0 to {lens.n_tokens - 1}).",
            key="inside_position",
            position=position,
            last=lens.n_tokens - 1,
        )
    dtype = next(head.parameters()).dtype
    states = torch.from_numpy(np.array(lens.normed[:, position, :])).to(dtype)
    with lane.COMPUTE, torch.inference_mode():
        logits = _logits(head, cap, states)  # (layers, V)
    target = logits[:, token_id]
    ranks = (logits > target[:, None]).sum(dim=-1) + 1
    probs = torch.exp(target - torch.logsumexp(logits, dim=-1))
    label = token_labels(tokenizer, [int(token_id)])[0]
    return TargetCurve(int(token_id), label, position, probs.numpy(), ranks.numpy())


def target_token(tokenizer: Any, text: object) -> tuple[int, int]:
    """(first token id, number of pieces) of a target the teacher typed; the lens follows the
    first piece (a prediction is one token at a time), and the UI says how many there were."""
    if not isinstance(text, str) or not text.strip():
        raise UserError(
            "Type a target token, e.g. 3776 or ' Paris', or leave it empty to follow the model's "
            "own prediction.",
            key="inside_target_empty",
        )
    checks.utf8(text)
    if len(text) > config.INSIDE_MAX_WORD_CHARS:
        raise UserError(
            f"A target is one token: type at most {config.INSIDE_MAX_WORD_CHARS} characters.",
            key="inside_target_long",
            limit=config.INSIDE_MAX_WORD_CHARS,
        )
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if not ids:
        raise UserError(
            f"'{checks.show(text)}' gives no tokens. Type a word or a number.",
            key="inside_word_no_tokens",
            word=checks.show(text),
        )
    return int(ids[0]), len(ids)


# --- token embeddings ----------------------------------------------------------------------------
def _embeddings(model: Any) -> Any:
    return model.get_input_embeddings().weight


def _row_norms(model: Any) -> Any:
    """|row| of every embedding row, float32 (1 MB for Gemma), computed once per model."""
    import torch

    def compute() -> Any:
        weight = _embeddings(model)
        out = torch.empty(weight.shape[0], dtype=torch.float32)
        with torch.inference_mode():
            for start in range(0, weight.shape[0], _CHUNK_ROWS):
                out[start : start + _CHUNK_ROWS] = weight[start : start + _CHUNK_ROWS].float().norm(dim=-1)
        return out

    return lane.shared(model, ("embedding-norms",), compute)


def word_vector(model: Any, word: Word) -> np.ndarray:
    """The mean of the word's token rows (float32)."""
    import torch

    with torch.inference_mode():
        rows = _embeddings(model)[list(word.ids)].float()
    return rows.mean(dim=0).numpy()


def similarities(model: Any, vector: np.ndarray) -> np.ndarray:
    """Cosine similarity of ``vector`` with every embedding row (V,), float32."""
    import torch

    weight = _embeddings(model)
    norms = _row_norms(model)
    v = torch.from_numpy(np.asarray(vector, dtype=np.float32))
    vn = float(v.norm())
    if not math.isfinite(vn) or vn == 0.0:
        raise UserError(
            "This vector is zero or not finite (the words cancel out exactly); try other words.",
            key="inside_zero_vector",
        )
    out = torch.empty(weight.shape[0], dtype=torch.float32)
    with torch.inference_mode():
        for start in range(0, weight.shape[0], _CHUNK_ROWS):
            out[start : start + _CHUNK_ROWS] = weight[start : start + _CHUNK_ROWS].float() @ v
    out /= norms.clamp_min(1e-12) * vn
    return out.numpy()


@dataclass(frozen=True)
class Neighbour:
    token_id: int
    label: str
    similarity: float


def _excluded(tokenizer: Any, vocab: int) -> np.ndarray:
    mask = np.zeros(vocab, dtype=bool)
    for i in special_ids(tokenizer):
        if 0 <= i < vocab:
            mask[i] = True
    return mask


def _top(tokenizer: Any, sims: np.ndarray, k: int, exclude: Sequence[int] = ()) -> list[Neighbour]:
    sims = np.array(sims, dtype=np.float32, copy=True)
    mask = _excluded(tokenizer, len(sims))
    mask[list(exclude)] = True
    sims[mask] = -np.inf
    idx = np.argpartition(-sims, k)[:k]
    idx = idx[np.argsort(-sims[idx], kind="stable")]
    labels = [token_labels(tokenizer, [int(i)])[0] for i in idx]  # each token on its own
    return [Neighbour(int(i), lab, float(sims[i])) for i, lab in zip(idx, labels, strict=True)]


def neighbours(model: Any, tokenizer: Any, word: Word, k: int = 10) -> list[Neighbour]:
    """The ``k`` tokens whose input embeddings point most nearly the same way as ``word``'s
    (special tokens left out). A one-token word finds itself first, at similarity 1."""
    return _top(tokenizer, similarities(model, word_vector(model, word)), k)


@dataclass(frozen=True)
class Analogy:
    words: tuple[Word, Word, Word]  # a - b + c
    found: tuple[Neighbour, ...]  # nearest to a - b + c, the three words' own tokens left out
    expected: Word | None
    expected_rank: int | None  # 1 = it was the answer; among tokens, the three words left out
    expected_similarity: float | None


def analogy(
    model: Any, tokenizer: Any, a: Word, b: Word, c: Word, expected: Word | None = None, k: int = 5
) -> Analogy:
    """``a - b + c`` (king - man + woman) and the tokens nearest to it. The three words' tokens
    are left out, as in the Word2Vec papers (else the answer is usually ``a`` itself)."""
    v = word_vector(model, a) - word_vector(model, b) + word_vector(model, c)
    sims = similarities(model, v)
    own = {*a.ids, *b.ids, *c.ids}
    found = tuple(_top(tokenizer, sims, k, exclude=sorted(own)))
    rank = sim = None
    if expected is not None:
        ev = word_vector(model, expected)
        sim = float(np.dot(ev, v) / (np.linalg.norm(ev) * np.linalg.norm(v)))
        masked = np.array(sims, copy=True)
        masked[_excluded(tokenizer, len(sims))] = -np.inf
        masked[sorted(own)] = -np.inf
        rank = int((masked > sim + 1e-6).sum()) + 1
    return Analogy((a, b, c), found, expected, rank, sim)


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first two principal components of ``vectors`` (n, d): (points (n, 2), the share of
    the variance each explains). Signs are fixed so the largest loading is positive (the same
    set always draws the same way)."""
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    comps = vt[:2]
    for i in range(len(comps)):
        if comps[i][np.argmax(np.abs(comps[i]))] < 0:
            comps[i] = -comps[i]
    points = x @ comps.T
    var = s**2
    share = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    if points.shape[1] < 2:  # two words: one direction only
        points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
        share = np.pad(share, (0, 2 - len(share)))
    return points.astype(np.float32), share.astype(np.float32)


@dataclass(frozen=True)
class WordMap:
    words: tuple[Word, ...]
    points: np.ndarray  # (n, 2)
    explained: np.ndarray  # (2,) share of variance


def word_map(model: Any, tokenizer: Any, words: Sequence[str]) -> WordMap:
    encoded = tuple(encode_word(tokenizer, w) for w in words)
    vectors = np.stack([word_vector(model, w) for w in encoded])
    points, share = pca_2d(vectors)
    return WordMap(encoded, points, share)


# --- the KV cache --------------------------------------------------------------------------------
@dataclass(frozen=True)
class KvLayout:
    """What one token costs in a model's KV cache, by the memory tab's formula."""

    arch: memory.Architecture
    dtype: str  # fp32 / bf16 / fp16

    @property
    def per_token(self) -> int:
        return self.bytes_for(1)

    def bytes_for(self, tokens: int) -> int:
        return memory.kv_cache_bytes(self.arch, tokens, 1, self.dtype)

    def bytes_without_gqa(self, tokens: int) -> int:
        """The same cache if every query head had its own key/value head (multi-head attention)."""
        mha = dataclasses.replace(self.arch, num_kv_heads=self.arch.num_heads)
        return memory.kv_cache_bytes(mha, tokens, 1, self.dtype)


_DTYPE_NAMES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def kv_layout(model: Any) -> KvLayout:
    from llmviz.models.hub_config import architecture_of

    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    return KvLayout(architecture_of(model.config), _DTYPE_NAMES.get(dtype, "fp32"))


def cache_bytes(cache: Any) -> int:
    """Bytes of every key and value tensor a transformers cache holds."""
    if cache is None:
        return 0
    total = 0
    for layer in getattr(cache, "layers", ()):
        for name in ("keys", "values"):
            t = getattr(layer, name, None)
            if t is not None and hasattr(t, "numel"):
                total += t.numel() * t.element_size()
    return total


def cache_tokens(cache: Any) -> int:
    return 0 if cache is None else int(cache.get_seq_length())
