"""How likely a model finds given continuations: the scoring under the bias and ICL labs.

Both labs ask the same question many times: after this text, how probable is this next word?
The bias lab compares ``P(" he" | "The nurse said that")`` with ``P(" she" | ...)``; the
in-context-learning lab compares the two label words after each of 48 reviews that follow the
same few demonstrations. Here that is done in a few batched forward passes instead of one pass
per question:

* a shared **prefix** (the demonstrations) is run once; its KV cache is copied for each batch
  (``DynamicCache.batch_repeat_interleave``), so 48 queries do not pay 48 times for the same
  demonstrations;
* the rows of a batch are **right-padded**: with causal attention, pad tokens after a row's end
  cannot change the hidden states at its real positions, and positions count from the prefix,
  so each row's numbers equal its own unpadded pass (tested allclose against a direct
  ``model(ids)`` call);
* the LM head runs only at the positions asked for (the decoder's normed hidden states there,
  then the output embeddings and the model's logit soft-cap when it has one), not at every
  position of every row (48 × 30 × 262 144 logits would be 1.5 GB).

Everything runs while holding the compute lane (``lane.COMPUTE``): the decoder is called
directly, which skips the lane hooks ``lane.share`` puts on the top module.

This module does not load models and knows nothing about gradio.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np

from llmviz import config, lane
from llmviz.library import torch


def _pad_id(tokenizer: Any) -> int:
    for pad in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if pad is not None:
            return int(pad)
    return 0


def _soft_cap(model: Any) -> float | None:
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    cap = getattr(cfg, "final_logit_softcapping", None)
    return float(cap) if cap else None


def _log_probs(model: Any, hidden: Any) -> Any:
    """(n, V) float32 log-probabilities from normed final hidden states (n, d)."""
    logits = model.get_output_embeddings()(hidden).float()
    cap = _soft_cap(model)
    if cap is not None:
        logits = torch.tanh(logits / cap) * cap
    return torch.log_softmax(logits, dim=-1)


def _prefix_cache(model: Any, prefix: Sequence[int]) -> tuple[Any, Any]:
    """(KV cache, log-probs of the token after the prefix) of one pass over ``prefix``."""
    device = next(model.parameters()).device
    ids = torch.tensor([list(prefix)], dtype=torch.long, device=device)
    out = model.get_decoder()(input_ids=ids, use_cache=True)
    return out.past_key_values, _log_probs(model, out.last_hidden_state[0, -1:])[0]


def _rows_pass(
    model: Any, cache: Any, width_prefix: int, rows: Sequence[Sequence[int]], positions: Sequence[Sequence[int]], pad: int
) -> list[Any]:
    """One right-padded pass over ``rows`` after a prefix cache: for each row, the (k, V)
    log-probs predicted at its ``positions`` (indices into the row)."""
    device = next(model.parameters()).device
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long, device=device)
    mask = torch.zeros((len(rows), width_prefix + width), dtype=torch.long, device=device)
    mask[:, :width_prefix] = 1
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(list(r), dtype=torch.long)
        mask[i, width_prefix : width_prefix + len(r)] = 1
    kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "use_cache": cache is not None}
    if cache is not None:
        cache = copy.deepcopy(cache)
        cache.batch_repeat_interleave(len(rows))
        kwargs["past_key_values"] = cache
        kwargs["position_ids"] = (width_prefix + torch.arange(width, device=device))[None].expand(len(rows), -1)
    hidden = model.get_decoder()(**kwargs).last_hidden_state
    flat = [(i, p) for i, ps in enumerate(positions) for p in ps]
    picked = hidden[[i for i, _ in flat], [p for _, p in flat]]
    lp = _log_probs(model, picked)
    out, at = [], 0
    for ps in positions:
        out.append(lp[at : at + len(ps)])
        at += len(ps)
    return out


def _batches(n: int, size: int) -> list[range]:
    return [range(s, min(n, s + size)) for s in range(0, n, size)]


def next_token_log_probs(
    model: Any,
    tokenizer: Any,
    prefix: Sequence[int],
    contexts: Sequence[Sequence[int]],
    candidates: Sequence[int],
    batch: int = config.PROBE_BATCH,
) -> np.ndarray:
    """``out[i, k] = log P(candidates[k] | prefix + contexts[i])`` (natural log, full vocabulary
    softmax), float64 (n, K). ``prefix`` may be empty; every context must not be."""
    if any(not c for c in contexts):
        raise ValueError("every context needs at least one token")
    out = np.zeros((len(contexts), len(candidates)))
    cand = list(candidates)
    with lane.COMPUTE, torch.inference_mode():
        cache = _prefix_cache(model, prefix)[0] if prefix else None
        for part in _batches(len(contexts), batch):
            rows = [contexts[i] for i in part]
            lps = _rows_pass(model, cache, len(prefix), rows, [[len(r) - 1] for r in rows], _pad_id(tokenizer))
            for i, lp in zip(part, lps, strict=True):
                out[i] = lp[0, cand].double().cpu().numpy()
    return out


def continuation_log_probs(
    model: Any,
    tokenizer: Any,
    contexts: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    batch: int = config.PROBE_BATCH,
) -> list[np.ndarray]:
    """For each (context, target) pair, the log-probability of every target token given the
    context and the target tokens before it: ``out[i][j] = log P(t_j | c, t_<j)``; their sum is
    ``log P(target | context)``. Contexts and targets must not be empty."""
    if len(contexts) != len(targets) or any(not c for c in contexts) or any(not t for t in targets):
        raise ValueError("one non-empty target per non-empty context")
    rows = [list(c) + list(t)[:-1] for c, t in zip(contexts, targets, strict=True)]
    positions = [list(range(len(c) - 1, len(c) - 1 + len(t))) for c, t in zip(contexts, targets, strict=True)]
    out: list[np.ndarray] = []
    with lane.COMPUTE, torch.inference_mode():
        for part in _batches(len(rows), batch):
            lps = _rows_pass(
                model, None, 0, [rows[i] for i in part], [positions[i] for i in part], _pad_id(tokenizer)
            )
            for i, lp in zip(part, lps, strict=True):
                ids = torch.tensor(list(targets[i]), dtype=torch.long, device=lp.device)
                out.append(lp.gather(1, ids[:, None])[:, 0].double().cpu().numpy())
    return out
