"""What quantization costs in quality: the same text through the same model at several precisions.

For a fixed text, against the fp32 model as reference:

* perplexity of the text: ``exp(mean -log p(next token))`` from the same forward pass (tested
  equal to ``llmviz.perplexity.score_text``, the labs tab's scorer);
* next-token agreement: at every position, does the quantized model's most likely next token
  equal the reference's? (1.0 = always);
* KL divergence ``KL(P_ref || P_q)`` of the next-token distributions, averaged over positions,
  in nats (0 = identical distributions);
* and one greedy sample per precision, to read side by side.

Models are passed in (``{precision: model}``); nothing is loaded here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llmviz import config
from llmviz.errors import UserError
from llmviz.library import torch
from llmviz.perplexity import check_text, prefix_token_id
from llmviz.tokens import readable_decode

#: The fixed text: plain English prose both default models read well (Gemma also reads Japanese).
QUALITY_TEXT = (
    "The sun rose slowly over the quiet harbour. Fishermen were already pulling their boats onto "
    "the sand, and the smell of salt and coffee drifted through the narrow streets. A small girl "
    "ran down to the water, holding her grandfather's hand, and asked him why the sea never "
    "stopped moving. He smiled and told her that the moon pulls the water toward it, a little "
    "every day, and that the tides are the sea's way of answering."
)
SAMPLE_PROMPT = "The three most important things to know about the ocean are"


@dataclass(frozen=True)
class QualityRow:
    precision: str
    perplexity: float
    agreement: float  # share of positions whose top-1 next token equals the reference's
    kl: float  # mean KL(P_ref || P_this), nats
    tokens: int  # positions compared


def _ids(tokenizer: Any, token_ids: list[int] | tuple[int, ...]) -> torch.Tensor:
    """The prefix token (BOS, as the perplexity scorer uses) + the text's tokens, shape (1, T)."""
    prefix = prefix_token_id(tokenizer)
    return torch.tensor([([prefix] if prefix is not None else []) + list(token_ids)])


def _log_probs(model: Any, ids: torch.Tensor) -> torch.Tensor:
    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(ids.to(device)).logits[0].float()  # (T, vocab)
        return torch.log_softmax(logits, dim=-1).cpu()


def compare_quality(
    models: Mapping[str, Any],
    tokenizer: Any,
    text: str = QUALITY_TEXT,
    reference: str = "fp32",
    max_tokens: int = config.MEMORY_QUALITY_TEXT_TOKENS,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[QualityRow, ...]:
    """One row per precision in ``models`` (the reference's row has agreement 1 and KL 0)."""
    if reference not in models:
        raise ValueError(f"the reference precision {reference!r} must be among the models")
    token_ids = tokenizer(check_text(text), add_special_tokens=False)["input_ids"]
    if not 1 <= len(token_ids) <= max_tokens:
        raise UserError(
            f"The text is {len(token_ids):,} tokens long; the limit is {max_tokens:,} tokens.",
            key="ppl_too_many_tokens",
            n=f"{len(token_ids):,}",
            limit=f"{max_tokens:,}",
        )
    ids = _ids(tokenizer, token_ids)
    targets = ids[0, 1:]  # lp[j] predicts ids[j + 1]
    ref = _log_probs(models[reference], ids)
    rows = []
    for i, (precision, model) in enumerate(models.items()):
        if progress:
            progress(i / len(models), f"Scoring the text at {precision}")
        lp = ref if precision == reference else _log_probs(model, ids)
        agreement = float((lp.argmax(-1) == ref.argmax(-1)).float().mean())
        kl = float((ref.exp() * (ref - lp)).sum(-1).mean())
        # perplexity from the same forward pass: exp(mean -log p(next token)), exactly what
        # llmviz.perplexity.score_text computes for a text that fits one window (tested equal)
        nll = -lp[:-1].gather(1, targets[:, None]).mean()
        rows.append(
            QualityRow(precision, float(torch.exp(nll)), agreement, max(kl, 0.0), int(ids.shape[1]))
        )
    return tuple(rows)


def greedy_sample(
    model: Any,
    tokenizer: Any,
    prompt: str = SAMPLE_PROMPT,
    max_new_tokens: int = config.MEMORY_SAMPLE_NEW_TOKENS,
) -> str:
    """The greedy continuation of ``prompt`` (deterministic, so precisions are comparable)."""
    ids = _ids(tokenizer, tokenizer(prompt, add_special_tokens=False)["input_ids"])
    device = next(model.parameters()).device
    with torch.inference_mode():
        out = model.generate(
            ids.to(device),
            attention_mask=torch.ones_like(ids).to(device),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id
            if tokenizer.pad_token_id is not None
            else tokenizer.eos_token_id,
        )
    return readable_decode(tokenizer, out[0, ids.shape[1] :].tolist())  # a cut character as bytes
