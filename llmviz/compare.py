"""Base vs instruct: the exact text each model receives.

A base model only continues text; an instruction-tuned model was trained on conversations wrapped
in a *chat template* and learned to answer and then stop. This module builds, for one question,
the prompt each column of the lesson sends to its model:

* **raw**: the question as it is (what a base model sees; also the instruct model with its
  template switched off);
* **chat template**: ``tokenizer.apply_chat_template(..., tokenize=False,
  add_generation_prompt=True)``, exactly what the tokenizer renders;
* **few-shot**: zero / one / few example pairs before the question (in-context learning, the
  GPT-3 paper's ``sea otter => loutre de mer`` format);
* an optional **chain-of-thought** suffix ("Let's think step by step." / 「ステップごとに考えよう。」).

It also makes special tokens visible (``<|im_start|>``, ``<bos>``: including the ones the
tokenizer adds by itself), counts tokens, and turns a first-step logit vector into the top
candidates a model "wants" to say.

It deliberately does not load models, generate text or draw anything (see ``streams`` and
``plots.compare``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmviz import checks, config
from llmviz.errors import UserError
from llmviz.models.catalog import PAIRS, ModelSpec
from llmviz.tokens import token_labels

SHOTS = ("zero", "one", "few")
COT_SUFFIXES = {"en": "Let's think step by step.", "ja": "ステップごとに考えよう。"}
PAIR_SEPARATOR = "=>"


# --- model pairs ------------------------------------------------------------------------------
#: Pair choices of the lesson: the catalog's (base, instruct) pairs plus one model with and
#: without its template (the only same-model contrast that works offline).
SAME_MODEL_PAIR = "same"
PAIR_KEYS: tuple[str, ...] = ("default", SAME_MODEL_PAIR, *(k for k in PAIRS if k != "default"))


def resolve_pair(key: str) -> tuple[str, str]:
    """(left model key, right model key) of a pair choice.

    >>> resolve_pair("same")
    ('gemma-3-270m-sft', 'gemma-3-270m-sft')
    """
    key = key if isinstance(key, str) else repr(key)
    if key == SAME_MODEL_PAIR:
        instruct = PAIRS["default"][1]
        return instruct, instruct
    if key not in PAIRS:
        raise UserError(
            f"Unknown model pair '{str(key)[:40]}'. Choose one of: {', '.join(PAIR_KEYS)}.",
            key="compare_pair_unknown",
            name=str(key)[:40],
        )
    return PAIRS[key]


def pair_kind(left: ModelSpec, right: ModelSpec) -> str:
    """ "same_model", "same_family" or "cross" (say so: differences are not only tuning)."""
    if left.hub_id == right.hub_id and left.adapter == right.adapter:  # an adapter makes a new model
        return "same_model"
    return "same_family" if left.family == right.family else "cross"


# --- examples and presets ---------------------------------------------------------------------
@dataclass(frozen=True)
class Example:
    """One few-shot example: an input and the output we want the model to imitate."""

    input: str
    output: str


@dataclass(frozen=True)
class Preset:
    """A question from the textbook, with few-shot examples written in the same style."""

    key: str
    lang: str  # "en" | "ja"
    prompt: str
    examples: tuple[Example, ...]
    task: str = ""  # optional instruction line above the examples
    shots: str = "zero"  # the few-shot mode the lesson runs this preset with

    @property
    def examples_text(self) -> str:
        return format_examples(self.examples)


def _ex(*pairs: tuple[str, str]) -> tuple[Example, ...]:
    return tuple(Example(a, b) for a, b in pairs)


PRESETS: dict[str, Preset] = {
    p.key: p
    for p in (
        Preset(
            "capital_en",
            "en",
            "What is the capital of England?",
            _ex(
                ("What is the capital of France?", "Paris"),
                ("What is the capital of Germany?", "Berlin"),
                ("What is the capital of Italy?", "Rome"),
            ),
        ),
        Preset(
            "capital_ja",
            "ja",
            "イギリスの首都は？",
            _ex(
                ("フランスの首都は？", "パリ"),
                ("ドイツの首都は？", "ベルリン"),
                ("イタリアの首都は？", "ローマ"),
            ),
        ),
        Preset(
            "fuji_en",
            "en",
            "How high is Mount Fuji?",
            _ex(
                ("How high is Tokyo Tower?", "333 metres"),
                ("How high is Tokyo Skytree?", "634 metres"),
                ("How high is Mount Everest?", "8,849 metres"),
            ),
        ),
        Preset(
            "fuji_ja",
            "ja",
            "富士山の高さは？",
            _ex(
                ("東京タワーの高さは？", "333メートル"),
                ("東京スカイツリーの高さは？", "634メートル"),
                ("エベレストの高さは？", "8849メートル"),
            ),
        ),
        Preset(
            "proverb_en",
            "en",
            "Translate into Japanese: The early bird catches the worm.",
            _ex(
                ("Translate into Japanese: Good morning.", "おはようございます。"),
                ("Translate into Japanese: Thank you very much.", "どうもありがとうございます。"),
                ("Translate into Japanese: Time is money.", "時は金なり。"),
            ),
        ),
        Preset(
            "proverb_ja",
            "ja",
            "The early bird catches the worm. を日本語に訳して",
            _ex(
                ("Good morning. を日本語に訳して", "おはようございます。"),
                ("Thank you very much. を日本語に訳して", "どうもありがとうございます。"),
                ("Time is money. を日本語に訳して", "時は金なり。"),
            ),
        ),
        Preset(
            "sea_otter",
            "en",
            "cheese",
            _ex(
                ("sea otter", "ラッコ"),
                ("peppermint", "ペパーミント"),
                ("plush giraffe", "キリンのぬいぐるみ"),
            ),
            task="Translate English to Japanese:",
            shots="few",  # the lesson is in-context learning: it runs with its examples
        ),
    )
}


def get_preset(key: str) -> Preset:
    if not isinstance(key, str) or key not in PRESETS:
        raise UserError(
            f"Unknown preset '{str(key)[:40]}'. Choose one of: {', '.join(PRESETS)}.",
            key="compare_preset_unknown",
            name=str(key)[:40],
        )
    return PRESETS[key]


# --- few-shot examples --------------------------------------------------------------------------
def format_examples(examples: tuple[Example, ...] | list[Example]) -> str:
    """The editable text of example pairs, one ``input => output`` per line.

    >>> format_examples([Example("sea otter", "ラッコ")])
    'sea otter => ラッコ'
    """
    return "\n".join(f"{e.input} {PAIR_SEPARATOR} {e.output}" for e in examples)


def parse_examples(text: str) -> tuple[Example, ...]:
    """Parse ``input => output`` lines (blank lines ignored) into examples.

    >>> parse_examples("sea otter => ラッコ\\n\\npeppermint => ペパーミント")[1]
    Example(input='peppermint', output='ペパーミント')

    Raises ``UserError`` naming the line for a line without ``=>``, with an empty side, or too
    long, and for more than ``config.COMPARE_MAX_EXAMPLES`` examples.
    """
    text = checks.utf8(text) if isinstance(text, str) else ""
    examples: list[Example] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(line) > config.COMPARE_MAX_EXAMPLE_CHARS:
            raise UserError(
                f"Example line {number} is {len(line)} characters long; the limit is "
                f"{config.COMPARE_MAX_EXAMPLE_CHARS}. Shorten it.",
                key="compare_example_too_long",
                line=number,
                limit=config.COMPARE_MAX_EXAMPLE_CHARS,
            )
        if PAIR_SEPARATOR not in line:
            raise UserError(
                f"Example line {number} ('{line.strip()[:40]}') has no '=>'. Write each example "
                "as 'input => output', e.g. 'sea otter => ラッコ'.",
                key="compare_example_no_arrow",
                line=number,
                text=line.strip()[:40],
            )
        left, _, right = line.partition(PAIR_SEPARATOR)
        if not left.strip() or not right.strip():
            raise UserError(
                f"Example line {number} needs text on both sides of '=>' (input => output).",
                key="compare_example_empty_side",
                line=number,
            )
        examples.append(Example(left.strip(), right.strip()))
    if len(examples) > config.COMPARE_MAX_EXAMPLES:
        raise UserError(
            f"{len(examples)} examples given; the limit is {config.COMPARE_MAX_EXAMPLES}. "
            "A few good examples are enough for in-context learning.",
            key="compare_too_many_examples",
            n=len(examples),
            limit=config.COMPARE_MAX_EXAMPLES,
        )
    return tuple(examples)


def select_shots(examples: tuple[Example, ...], shots: str) -> tuple[Example, ...]:
    """The examples used by ``shots``: none ("zero"), the first ("one"), all ("few", two or more)."""
    if shots not in SHOTS:
        raise UserError(
            f"Unknown few-shot mode '{str(shots)[:20]}'. Choose zero, one or few.",
            key="compare_shots_unknown",
            shots=str(shots)[:20],
        )
    if shots == "zero":
        return ()
    if shots == "one":
        if not examples:
            raise UserError(
                "One-shot needs an example: write one line 'input => output' in the examples box.",
                key="compare_one_shot_empty",
            )
        return examples[:1]
    if len(examples) < 2:
        raise UserError(
            f"Few-shot needs at least two examples; {len(examples)} given. Add lines "
            "'input => output' in the examples box, or choose one-shot.",
            key="compare_few_shot_short",
            n=len(examples),
        )
    return examples


def cot_suffix(cot: str | None) -> str:
    """The chain-of-thought trigger for ``cot`` ("en" / "ja"), or "" for None / "off"."""
    if cot in (None, "", "off"):
        return ""
    if cot not in COT_SUFFIXES:
        raise UserError(
            f"Unknown chain-of-thought option '{str(cot)[:20]}'. Choose off, en or ja.",
            key="compare_cot_unknown",
            cot=str(cot)[:20],
        )
    return COT_SUFFIXES[cot]


def _join(question: str, suffix: str) -> str:
    if not suffix:
        return question
    # Japanese does not put a space between sentences.
    return question + ("" if suffix == COT_SUFFIXES["ja"] else " ") + suffix


def few_shot_text(
    question: str, examples: tuple[Example, ...], task: str = "", cot: str = ""
) -> str:
    """The plain-text prompt of a base model: optional task line, examples, then the question.

    With no examples and no task line the question is sent as it is (zero-shot, raw):

    >>> few_shot_text("cheese", (Example("sea otter", "ラッコ"),), "Translate English to Japanese:")
    'Translate English to Japanese:\\nsea otter => ラッコ\\ncheese =>'
    >>> few_shot_text("What is the capital of England?", ())
    'What is the capital of England?'

    The chain-of-thought suffix goes after the arrow, where the answer starts (Kojima et al.).
    """
    suffix = cot_suffix(cot)
    if not examples and not task.strip():
        return _join(question, suffix)
    lines = [task.strip()] if task.strip() else []
    lines += [f"{e.input} {PAIR_SEPARATOR} {e.output}" for e in examples]
    lines.append(f"{question} {PAIR_SEPARATOR}" + (f" {suffix}" if suffix else ""))
    return "\n".join(lines)


# --- chat template ---------------------------------------------------------------------------
def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_chat(tokenizer: Any, user_text: str) -> str:
    """One user turn rendered with the tokenizer's own chat template, ready for the answer."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": user_text}], tokenize=False, add_generation_prompt=True
    )


# --- the prompt a model receives -------------------------------------------------------------
@dataclass(frozen=True)
class BuiltPrompt:
    """The exact input of one model.

    ``text`` is the string given to the tokenizer; ``shown`` adds the special tokens the tokenizer
    inserts by itself (Gemma's ``<bos>``), so ``shown`` is everything the model receives.
    ``segments`` splits ``shown`` into (piece, is_special) for display.
    """

    text: str
    shown: str
    segments: tuple[tuple[str, bool], ...]
    input_ids: tuple[int, ...]
    add_special_tokens: bool
    template_used: bool
    template_missing: bool  # the template was asked for but this tokenizer has none
    examples_used: int

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)


def validate_question(question: object) -> str:
    """The question, stripped; refused when empty, too long or not valid UTF-8."""
    return checks.text(
        question,
        config.COMPARE_MAX_PROMPT_CHARS,
        empty_key="compare_prompt_empty",
        empty_message="The prompt is empty. Type a question, or pick a preset such as "
        "'What is the capital of England?'.",
        long_key="compare_prompt_too_long",
        long_message="The prompt is {n} characters long; the limit is {limit}. Ask a shorter "
        "question.",
    ).strip()


@dataclass(frozen=True)
class Request:
    """Everything a student typed for one comparison, checked (before any model is loaded)."""

    question: str
    examples: tuple[Example, ...]
    shots: str
    task: str
    cot: str | None


def check_request(question: object, examples_text: object, shots: object, task: object,
                  cot: object) -> Request:  # fmt: skip
    """One check for the live preview and for the run, so both refuse the same inputs."""
    question = validate_question(question)
    examples = parse_examples(examples_text)  # type: ignore[arg-type]
    select_shots(examples, shots)  # type: ignore[arg-type]
    cot_suffix(cot)  # type: ignore[arg-type]
    task = checks.utf8(task) if isinstance(task, str) else ""
    return Request(question, examples, str(shots), task[: config.COMPARE_MAX_PROMPT_CHARS], cot)  # type: ignore[arg-type]


def special_token_strings(tokenizer: Any) -> tuple[str, ...]:
    """Every special token string of ``tokenizer``, longest first (for splitting text)."""
    found = set(getattr(tokenizer, "all_special_tokens", []) or [])
    for added in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).values():
        if getattr(added, "special", False):
            found.add(str(added.content))
    return tuple(sorted((s for s in found if s), key=lambda s: (-len(s), s)))


def split_special(text: str, specials: tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    """Split ``text`` into (piece, is_special) runs.

    >>> split_special("<|im_start|>user\\nHi<|im_end|>", ("<|im_start|>", "<|im_end|>"))
    (('<|im_start|>', True), ('user\\nHi', False), ('<|im_end|>', True))
    """
    present = [s for s in specials if s in text]  # Gemma has ~6000 special tokens
    if not present:
        return ((text, False),) if text else ()
    pattern = re.compile("(" + "|".join(re.escape(s) for s in present) + ")")
    marked = set(present)
    return tuple((p, p in marked) for p in pattern.split(text) if p)


def _auto_added(tokenizer: Any, text: str) -> tuple[list[int], list[int], list[int]]:
    """(ids as the model gets them, ids the tokenizer put before the text, ... after it)."""
    with_special = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    plain = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    n = len(plain)
    for start in range(len(with_special) - n + 1):
        if with_special[start : start + n] == plain:
            return with_special, with_special[:start], with_special[start + n :]
    return with_special, [], []  # a tokenizer that changes the text itself: show text as is


def build_prompt(
    tokenizer: Any,
    question: str,
    *,
    use_template: bool = False,
    shots: str = "zero",
    examples: tuple[Example, ...] = (),
    task: str = "",
    cot: str | None = None,
    max_tokens: int | None = None,
) -> BuiltPrompt:
    """Build what one model receives for ``question``.

    With ``use_template`` and a tokenizer that has a chat template, the (question + CoT suffix)
    becomes the user turn of the template and is tokenized without adding special tokens again
    (the template already holds them, e.g. Gemma's ``<bos>``). Otherwise the few-shot text is
    tokenized normally. Raises ``UserError`` when the result is longer than ``max_tokens``
    (default ``config.MAX_PROMPT_TOKENS``).
    """
    question = validate_question(question)
    chosen = select_shots(tuple(examples), shots)
    templated = bool(use_template) and has_chat_template(tokenizer)
    if templated:
        text = render_chat(tokenizer, _join(question, cot_suffix(cot)))
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        before: list[int] = []
        after: list[int] = []
        # A template is for answering one user turn: examples belong to the base model's text.
        chosen = ()
    else:
        text = few_shot_text(question, chosen, task, cot or "")
        ids, before, after = _auto_added(tokenizer, text)
    limit = config.MAX_PROMPT_TOKENS if max_tokens is None else max_tokens
    if len(ids) > limit:
        raise UserError(
            f"This prompt is {len(ids)} tokens long; the limit is {limit}. "
            "Shorten the question or use fewer examples.",
            key="compare_prompt_too_many_tokens",
            n=len(ids),
            limit=limit,
        )
    shown = (
        "".join(tokenizer.convert_ids_to_tokens(before))
        + text
        + "".join(tokenizer.convert_ids_to_tokens(after))
    )
    return BuiltPrompt(
        text=text,
        shown=shown,
        segments=split_special(shown, special_token_strings(tokenizer)),
        input_ids=tuple(int(i) for i in ids),
        add_special_tokens=not templated,
        template_used=templated,
        template_missing=bool(use_template) and not templated,
        examples_used=len(chosen),
    )


# --- what the model wants to say first ---------------------------------------------------------
@dataclass(frozen=True)
class Candidates:
    """The most likely next tokens: ids, readable labels and probabilities (softmax at T=1)."""

    ids: tuple[int, ...]
    labels: tuple[str, ...]
    probs: tuple[float, ...]


def token_label(tokenizer: Any, token_id: int) -> str:
    """A readable label for one candidate token (``tokens.token_labels``: spaces as ``␣``, line
    breaks as ``↵``, a piece of a multi-byte character as its hex bytes such as ``<E3 81>``).
    Each candidate is an alternative, so it is labelled alone, never grouped with its neighbours.
    """
    return token_labels(tokenizer, [int(token_id)])[0]


def top_candidates(logits: np.ndarray, tokenizer: Any, k: int = 10) -> Candidates:
    """Top ``k`` of softmax(``logits``)  # logits: (vocab,)

    >>> # top_candidates(np.log([0.1, 0.6, 0.3]), tok, 2).probs -> (0.6, 0.3)
    """
    x = np.asarray(logits, dtype=np.float64).reshape(-1)
    x = x - x[np.isfinite(x)].max()
    p = np.exp(x)
    p /= p.sum()
    k = max(1, min(int(k), p.size))
    idx = np.argpartition(-p, k - 1)[:k]
    idx = idx[np.argsort(-p[idx], kind="stable")]
    return Candidates(
        ids=tuple(int(i) for i in idx),
        labels=tuple(token_label(tokenizer, int(i)) for i in idx),
        probs=tuple(float(p[i]) for i in idx),
    )
