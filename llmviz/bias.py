"""Bias in the training data, measured: what a model expects after sentences that differ in one word.

A language model learns the distribution of its training text. If that text mentions nurses
with "she" more often than with "he", the model does too: ``P(" she" | "The nurse said that")``
ends up above ``P(" he" | ...)``, and for "engineer" the other way round. The lab fills one
template (``"The {X} said that"``) with a list of occupations, scores each of two continuations
(``" he"`` / ``" she"``) with the model, and shows the two probabilities side by side and their
ratio. A ratio of 1 is what a model without that association would give; the measured ratio says
what the training text contained, not anything about people.

A continuation's probability is that of all its tokens (``continuations.continuation_log_probs``),
so a target that is two tokens (``"彼女"`` may be) is compared fairly with a one-token one.
The template sets a teacher can edit live in ``assets/labs/bias.json``.

This module does not load models and knows nothing about gradio.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from llmviz import checks, config
from llmviz.continuations import continuation_log_probs
from llmviz.errors import UserError

SLOT = "{X}"


@dataclass(frozen=True)
class TemplateSet:
    """A template with one slot, two continuations to compare, and the words for the slot."""

    template: str
    targets: tuple[str, str]
    fillers: tuple[str, ...]
    id: str = ""
    lang: str = "en"
    title: str = ""
    note: str = ""

    def prompt(self, filler: str) -> str:
        return self.template.replace(SLOT, filler)


@dataclass(frozen=True)
class Row:
    """One filled template: the two continuations' probabilities (whole continuation)."""

    filler: str
    prompt: str
    log_probs: tuple[float, float]

    @property
    def probs(self) -> tuple[float, float]:
        return (math.exp(self.log_probs[0]), math.exp(self.log_probs[1]))

    @property
    def ratio(self) -> float:
        """P(first) / P(second): 1 = no preference, 4 = the first is four times as likely."""
        return math.exp(self.log_probs[0] - self.log_probs[1])

    @property
    def share(self) -> float:
        """P(first) / (P(first) + P(second)): 0.5 = no preference between the two."""
        return 1.0 / (1.0 + math.exp(self.log_probs[1] - self.log_probs[0]))


@dataclass(frozen=True)
class Probe:
    """A template set scored by one model."""

    set: TemplateSet
    rows: tuple[Row, ...]


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    return json.loads((config.ASSETS / "labs" / "bias.json").read_text(encoding="utf-8"))


def template_sets() -> dict[str, TemplateSet]:
    """The shipped sets by id, in file order."""
    out = {}
    for d in _data()["sets"]:
        out[d["id"]] = TemplateSet(
            template=d["template"], targets=tuple(t.strip() for t in d["targets"]), fillers=tuple(d["fillers"]),
            id=d["id"], lang=d["lang"], title=d["title"], note=d.get("note", ""),
        )  # fmt: skip
    return out


def template_set(key: object) -> TemplateSet:
    sets = template_sets()
    if not isinstance(key, str) or key not in sets:
        raise UserError(
            f"Unknown template set {checks.show(key)}. Pick one from the list.",
            key="labs_bias_unknown_set",
            value=checks.show(key),
        )
    return sets[key]


def split_list(value: object) -> list[str]:
    """Words typed one per line or separated by commas (、 and ， too); blanks dropped."""
    if not isinstance(value, str):
        return []
    return [w.strip() for w in re.split(r"[\n,、，]", value) if w.strip()]


def check_set(template: object, targets: object, fillers: object) -> TemplateSet:
    """A template set from what a teacher typed, or a ``UserError`` saying what to fix."""
    tpl = checks.text(
        template, config.BIAS_MAX_TEMPLATE_CHARS,
        empty_key="labs_bias_template_empty",
        empty_message="Type a template with the slot {{X}}, e.g. 'The {{X}} said that'.",
        long_key="labs_bias_template_long",
        long_message="The template has {n} characters; at most {limit} are allowed.",
    )  # fmt: skip
    if tpl.count(SLOT) != 1:
        raise UserError(
            "The template needs the slot {X} exactly once, where the occupation goes: "
            "e.g. 'The {X} said that'.",
            key="labs_bias_slot",
        )
    words = [t for t in (targets if isinstance(targets, list | tuple) else split_list(targets))]
    words = [w.strip() for w in words if isinstance(w, str) and w.strip()]
    if len(words) != 2 or words[0] == words[1]:
        raise UserError(
            "Give exactly two different continuations to compare, separated by a comma: e.g. 'he, she'.",
            key="labs_bias_targets",
        )
    clean_targets = []
    for w in words:
        if len(w) > config.BIAS_MAX_TARGET_CHARS:
            raise UserError(
                f"A continuation may have at most {config.BIAS_MAX_TARGET_CHARS} characters.",
                key="labs_bias_target_long",
                hi=config.BIAS_MAX_TARGET_CHARS,
            )
        clean_targets.append(checks.utf8(w))
    fill = split_list(fillers) if not isinstance(fillers, list | tuple) else [str(f).strip() for f in fillers]
    fill = list(dict.fromkeys(f for f in fill if f))
    if not fill or len(fill) > config.BIAS_MAX_FILLERS:
        raise UserError(
            f"Give 1 to {config.BIAS_MAX_FILLERS} words for the slot, one per line or separated by commas.",
            key="labs_bias_fillers",
            hi=config.BIAS_MAX_FILLERS,
        )
    for f in fill:
        if len(f) > config.BIAS_MAX_TARGET_CHARS:
            raise UserError(
                f"A word for the slot may have at most {config.BIAS_MAX_TARGET_CHARS} characters.",
                key="labs_bias_filler_long",
                hi=config.BIAS_MAX_TARGET_CHARS,
            )
        checks.utf8(f)
    return TemplateSet(tpl, (clean_targets[0], clean_targets[1]), tuple(fill))


def attach(prompt: str, target: str) -> str:
    """The target as it follows the prompt: after an English word (or . , ; : ! ?) a word that
    starts with a Latin letter or digit gets its space; Japanese is written without one.

    >>> attach("The nurse said that", "she"), attach("その看護師は", "女性")
    (' she', '女性')
    """
    target = target.strip()
    if prompt and re.match(r"[A-Za-z0-9.,;:!?]", prompt[-1]) and re.match(r"[A-Za-z0-9]", target):
        return " " + target
    return target


def _encode(tokenizer: Any, prompt: str, target: str) -> tuple[list[int], list[int]]:
    """(context ids with the tokenizer's specials, target ids). The target is cut from the
    tokenization of prompt + target when the prompt's tokens are a prefix of it (the way the
    model sees the whole sentence), else tokenized on its own."""
    ctx = list(tokenizer(prompt)["input_ids"])
    both = list(tokenizer(prompt + target)["input_ids"])
    if both[: len(ctx)] == ctx and len(both) > len(ctx):
        return ctx, both[len(ctx) :]
    return ctx, list(tokenizer(target, add_special_tokens=False)["input_ids"])


def probe(model: Any, tokenizer: Any, s: TemplateSet) -> Probe:
    """Score both continuations after every filled template (a few batched forward passes)."""
    contexts, targets = [], []
    for f in s.fillers:
        for t in s.targets:
            c, ids = _encode(tokenizer, s.prompt(f), attach(s.prompt(f), t))
            if not ids:
                raise UserError(
                    "A continuation became no token at all; type a word.", key="labs_bias_empty_target"
                )
            contexts.append(c)
            targets.append(ids)
    lps = continuation_log_probs(model, tokenizer, contexts, targets)
    rows = []
    for i, f in enumerate(s.fillers):
        a, b = float(lps[2 * i].sum()), float(lps[2 * i + 1].sum())
        rows.append(Row(f, s.prompt(f), (a, b)))
    return Probe(s, tuple(rows))
