"""In-context learning: what a few examples in the prompt really teach a model.

Two experiments from the textbook, on the base model and this project's own labelled set
(``assets/labs/icl.json``, written for this lab, 48 reviews per language):

**Wrong labels.** A few-shot prompt shows six reviews with their sentiment, then asks for a new
one. The model's answer is the label word whose first token it finds more probable after
"Sentiment:" (the full-vocabulary softmax, compared between the two label words only). The
same reviews are classified under four conditions:

* ``zero``: no examples, only the instruction format;
* ``true``: the examples with their correct labels;
* ``flipped``: the same examples with every label swapped (positive ↔ negative);
* ``arbitrary``: the correct assignment, but with meaningless label words (foo / bar), scored
  as foo = positive, bar = negative.

Accuracy is counted from the model's own predictions. Min et al. (2022) found that the labels in
the examples matter less than one would think: the examples mostly show the format and the kind
of text. A model that followed the flipped labels would score far below chance.

**Chain of thought.** Word problems with a whole-number answer (the textbook's 23 apples − 20
+ 6), answered after three worked examples that either give the answer directly or reason
first. Each answer is generated greedily (batched ``model.generate``) and scored by its final
number only.

This module does not load models and knows nothing about gradio.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from llmviz import checks, config, library
from llmviz.continuations import next_token_log_probs
from llmviz.errors import UserError
from llmviz.library import torch
from llmviz.tokens import readable_decode

CONDITIONS = ("zero", "true", "flipped", "arbitrary")
LABELS = ("positive", "negative")
LANGS = ("en", "ja")


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    return json.loads((config.ASSETS / "labs" / "icl.json").read_text(encoding="utf-8"))


def check_lang(lang: object) -> str:
    return checks.one_of(
        lang, LANGS, key="labs_icl_lang", message="Pick the language of the set: {choices}; got {value}."
    )


def check_conditions(conditions: object) -> tuple[str, ...]:
    if isinstance(conditions, str):
        conditions = [conditions]
    if not isinstance(conditions, list | tuple) or not conditions:
        raise UserError("Tick at least one condition to run.", key="labs_icl_no_condition")
    out = []
    for c in conditions:
        out.append(
            checks.one_of(
                c, CONDITIONS, key="labs_icl_condition", message="Unknown condition {value}; choose from {choices}."
            )
        )
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class Review:
    text: str
    label: str  # "positive" | "negative"


def reviews(lang: str) -> tuple[tuple[Review, ...], tuple[Review, ...]]:
    """(demonstrations, evaluation items) of the shipped set in ``lang``."""
    d = _data()["sentiment"][check_lang(lang)]
    demos = tuple(Review(r["text"], r["label"]) for r in d["demos"])
    items = tuple(Review(r["text"], r["label"]) for r in d["items"])
    return demos, items[: config.ICL_MAX_ITEMS]


def label_words(lang: str, condition: str) -> dict[str, str]:
    """Label -> the word the prompt uses for it under ``condition``."""
    words = _data()["label_words"][lang]
    return dict(words["arbitrary" if condition == "arbitrary" else "true"])


def _template(lang: str) -> dict[str, str]:
    return _data()["template"][lang]


def demo_prefix(lang: str, condition: str) -> str:
    """The demonstrations as the prompt shows them under ``condition`` ("" for ``zero``)."""
    if condition == "zero":
        return ""
    tpl, words = _template(lang), label_words(lang, condition)
    demos, _ = reviews(lang)
    swap = {"positive": "negative", "negative": "positive"}
    lines = []
    for r in demos:
        label = swap[r.label] if condition == "flipped" else r.label
        lines.append(tpl["line"].format(text=r.text, label=words[label]))
    return tpl["sep"].join(lines) + tpl["sep"]


def query(lang: str, text: str) -> str:
    return _template(lang)["query"].format(text=text)


def prompt(lang: str, condition: str, text: str) -> str:
    """The whole prompt the model reads for one review."""
    return demo_prefix(lang, condition) + query(lang, text)


@dataclass(frozen=True)
class Condition:
    """One condition's predictions on the evaluation items."""

    condition: str
    words: tuple[str, str]  # the prompt's words for (positive, negative)
    gold: tuple[str, ...]
    predicted: tuple[str, ...]
    log_probs: np.ndarray  # (n, 2): log P(first token of each label word), full softmax

    @property
    def n(self) -> int:
        return len(self.gold)

    @property
    def correct(self) -> int:
        return sum(g == p for g, p in zip(self.gold, self.predicted, strict=True))

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def positive_share(self) -> float:
        """How often the model answered "positive" (a model that always says one word scores 50 %)."""
        return sum(p == "positive" for p in self.predicted) / self.n if self.n else 0.0


def _first_token(tokenizer: Any, before: str, word: str) -> int:
    """The first token of ``word`` as it is tokenized after ``before`` (in context)."""
    a = list(tokenizer(before, add_special_tokens=False)["input_ids"])
    b = list(tokenizer(before + word, add_special_tokens=False)["input_ids"])
    if b[: len(a)] == a and len(b) > len(a):
        return b[len(a)]
    return list(tokenizer(word, add_special_tokens=False)["input_ids"])[0]


def _with_specials(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text)["input_ids"])


def classify(model: Any, tokenizer: Any, lang: str, condition: str, items: Sequence[Review] | None = None) -> Condition:
    """Classify ``items`` (default: the shipped set) under ``condition``.

    The demonstrations are one shared prefix (run once); each review is scored after it. When
    a review's tokens would merge with the prefix's last token, that review is scored on its own
    whole prompt instead, so every prediction is the one for the exact prompt text."""
    lang, condition = check_lang(lang), check_conditions([condition])[0]
    if items is None:
        items = reviews(lang)[1]
    words = label_words(lang, condition)
    prefix_text = demo_prefix(lang, condition)
    sample = items[0].text if items else ""
    sample_query, tpl = query(lang, sample), _template(lang)
    # the label as the demonstrations write it after the query (" positive": with its space)
    after = [tpl["line"].format(text=sample, label=words[lbl])[len(sample_query) :] for lbl in LABELS]
    cands = [_first_token(tokenizer, sample_query, a) for a in after]
    if cands[0] == cands[1]:
        raise UserError(
            "Both label words start with the same token, so they cannot be told apart.",
            key="labs_icl_same_token",
        )
    prefix = _with_specials(tokenizer, prefix_text) if prefix_text else []
    contexts, alone = [], []
    for i, r in enumerate(items):
        whole = _with_specials(tokenizer, prefix_text + query(lang, r.text))
        if prefix and whole[: len(prefix)] == prefix and len(whole) > len(prefix):
            contexts.append(whole[len(prefix) :])
        elif not prefix:
            contexts.append(whole)
        else:
            alone.append((i, whole))
            contexts.append(None)
    lp = np.zeros((len(items), 2))
    shared = [i for i, c in enumerate(contexts) if c is not None]
    if shared:
        lp[shared] = next_token_log_probs(model, tokenizer, prefix, [contexts[i] for i in shared], cands)
    for i, whole in alone:
        lp[i] = next_token_log_probs(model, tokenizer, [], [whole], cands)[0]
    predicted = tuple(LABELS[int(k)] for k in np.argmax(lp, axis=1))
    return Condition(
        condition, (words["positive"], words["negative"]), tuple(r.label for r in items), predicted, lp
    )


# --- chain of thought ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    question: str
    answer: int
    reasoning: str = ""


def problems(lang: str) -> tuple[tuple[Problem, ...], tuple[Problem, ...]]:
    """(worked examples, problems to solve) of the shipped set in ``lang``."""
    d = _data()["arithmetic"][check_lang(lang)]
    demos = tuple(Problem(p["question"], int(p["answer"]), p.get("reasoning", "")) for p in d["demos"])
    items = tuple(Problem(p["question"], int(p["answer"])) for p in d["items"])
    return demos, items


def arithmetic_prompt(lang: str, cot: bool, question: str) -> str:
    tpl = _data()["cot_template"][lang]
    demos, _ = problems(lang)
    key = "cot" if cot else "direct"
    lines = [tpl[key].format(question=p.question, reasoning=p.reasoning, answer=p.answer) for p in demos]
    return tpl["sep"].join(lines) + tpl["sep"] + tpl["query"].format(question=question)


_ANSWER = re.compile(r"(?:answer is|答えは)\s*[:：]?\s*(-?[0-9０-９]+)")
_NUMBER = re.compile(r"-?[0-9０-９]+")


def answer_text(lang: str, generated: str) -> str:
    """The model's answer to this question only: the generated text up to the next question."""
    tpl = _data()["cot_template"][lang]
    cut = tpl["query"].split("{question}")[0].strip()  # "Q:" / "問："
    text = generated.lstrip()
    for stop in (tpl["sep"], "\n" + cut):  # every worked answer is one line
        text = text.split(stop)[0]
    return text.strip()


def final_number(text: str) -> int | None:
    """The answer a reply gives: the number after "The answer is" / 「答えは」, else its last number.

    >>> final_number("23 - 20 = 3, 3 + 6 = 9. The answer is 9."), final_number("答えは９個です。")
    (9, 9)
    >>> final_number("no idea") is None
    True
    """
    m = _ANSWER.findall(text)
    found = m[-1] if m else (_NUMBER.findall(text) or [None])[-1]
    if found is None:
        return None
    return int(found.translate(str.maketrans("０１２３４５６７８９", "0123456789")))


@dataclass(frozen=True)
class Solved:
    problem: Problem
    reply: str  # the model's answer text (up to the next question)

    @property
    def given(self) -> int | None:
        return final_number(self.reply)

    @property
    def correct(self) -> bool:
        return self.given == self.problem.answer


def _event_stop(event: threading.Event | None) -> Any:
    library.ready()
    from transformers import StoppingCriteria, StoppingCriteriaList

    class EventStop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            stop = event is not None and event.is_set()
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([EventStop()])


def generate_batch(
    model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int, stop: threading.Event | None = None
) -> list[str]:
    """Greedy continuations of ``prompts`` in one left-padded ``model.generate`` call (the way
    transformers batches prompts; each equals its own one-prompt run up to float rounding).
    ``stop`` ends it after the current step."""
    rows = [_with_specials(tokenizer, p) for p in prompts]
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    ids = torch.full((len(rows), width), int(pad), dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r) :] = 1
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
            pad_token_id=int(pad), stopping_criteria=_event_stop(stop),
            temperature=None, top_p=None, top_k=None,
        )  # fmt: skip
    return [readable_decode(tokenizer, o[width:].tolist()) for o in out]


def solve(
    model: Any, tokenizer: Any, lang: str, cot: bool, items: Sequence[Problem], stop: threading.Event | None = None
) -> list[Solved]:
    """Answer ``items`` after the worked examples (``cot``) or the direct ones."""
    n = config.ICL_COT_NEW_TOKENS if cot else config.ICL_DIRECT_NEW_TOKENS
    prompts = [arithmetic_prompt(lang, cot, p.question) for p in items]
    replies = generate_batch(model, tokenizer, prompts, n, stop)
    return [Solved(p, answer_text(lang, r)) for p, r in zip(items, replies, strict=True)]
