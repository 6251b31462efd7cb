"""The guided lesson: the app's tabs in the textbook's order, one short step at a time.

The steps live in ``assets/lesson/lesson.json`` (teachers edit it; ``assets/lesson/README.md``
says how). Each step has an ``id``, a ``link`` (the deep-link parameters that open its view:
``tab`` plus that tab's inputs, all strings) and, per language, a ``title``, a ``text`` of two or
three sentences and a ``question`` for the class. English and Japanese are required; another
two-letter language may be added and falls back to English where it is missing.

:func:`load_lesson` reads and checks the file: anything a teacher can get wrong raises
``UserError`` naming the step and the field, so a typo is found when the app starts (and by
``tests/test_lesson.py``), not in front of a class. Whether a link's *values* fit the page (a
slider's range, a model in the list) is for the link parser (``llmviz.links``) and the tests;
this module checks the shape: known tabs, keys a tab accepts, strings of sensible length.
No gradio here: the UI formats the steps (``llmviz.ui.lesson_ui``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from llmviz import config, links
from llmviz.errors import UserError

#: The file the app reads.
LESSON_FILE = config.ASSETS / "lesson" / "lesson.json"
VERSION = 1
#: Every step has these languages; ``Step.text`` falls back to the first.
LANGS = ("en", "ja")
FALLBACK_LANG = "en"
TEXT_FIELDS = ("title", "text", "question")
#: A link value is at most this long (a prompt on a slide is much shorter).
MAX_VALUE_CHARS = 500
MAX_ID_CHARS = 64

#: The tabs a step may open, in the textbook's order.
TABS = ("tokenizer", "attention", "sampling", "inside", "memory", "compare", "finetune", "labs")
#: The link keys each tab accepts besides ``tab`` (always allowed, and required).
LINK_KEYS: Mapping[str, frozenset[str]] = MappingProxyType(
    {tab: frozenset(params) for tab, params in links.TAB_PARAMS.items()}
)

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_LANG = re.compile(r"^[a-z]{2}$")  # a further language, e.g. "fr"
_STEP_FIELDS = ("id", "link")


@dataclass(frozen=True)
class StepText:
    """A step in one language."""

    title: str
    text: str
    question: str


@dataclass(frozen=True)
class Step:
    """One step: its id, its link (``tab`` first, then the tab's inputs) and its texts."""

    id: str
    link: Mapping[str, str]
    texts: Mapping[str, StepText]

    @property
    def tab(self) -> str:
        return self.link["tab"]

    def text(self, lang: str) -> StepText:
        """The step in ``lang``, or in English when the lesson has no such language."""
        return self.texts.get(lang) or self.texts[FALLBACK_LANG]


@dataclass(frozen=True)
class Lesson:
    steps: tuple[Step, ...]

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def step(self, index: int) -> Step:
        """Step ``index`` (0-based), clamped to the first and the last step."""
        return self.steps[max(0, min(int(index), len(self.steps) - 1))]


# --- reading and checking ---------------------------------------------------------------------------
def load_lesson(path: Path | None = None) -> Lesson:
    """The lesson in ``path`` (default: the packaged ``assets/lesson/lesson.json``), checked.

    Read once per file version: an edited file is read again on the next call (the cache key
    includes its modification time and size). Raises ``UserError`` for a missing file and for
    every problem :func:`parse_lesson` finds.
    """
    resolved = Path(path if path is not None else LESSON_FILE).resolve()
    try:
        stat = resolved.stat()
    except OSError:
        raise UserError(
            f"The lesson file {resolved.name} was not found (looked for {resolved}).",
            key="lesson_missing",
            file=resolved.name,
        ) from None
    return _load(str(resolved), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _load(path: str, _mtime_ns: int, _size: int) -> Lesson:
    file = Path(path)
    raw = file.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise UserError(
            f"{file.name} is not UTF-8 text (byte {e.start}). Save it as UTF-8.",
            key="lesson_not_json",
            file=file.name,
            where=f"byte {e.start}",
        ) from None
    except json.JSONDecodeError as e:
        raise UserError(
            f"{file.name} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}. "
            "A missing comma or quote is the usual cause.",
            key="lesson_not_json",
            file=file.name,
            where=f"line {e.lineno}, column {e.colno}",
        ) from None
    return parse_lesson(data, file.name)


def parse_lesson(data: Any, source: str = "lesson.json") -> Lesson:
    """Check parsed JSON and build the :class:`Lesson`; ``source`` names the file in messages."""
    if not isinstance(data, dict):
        raise UserError(
            f'{source}: the file must hold one JSON object: {{"version": 1, "steps": [...]}}.',
            key="lesson_not_object",
            file=source,
        )
    if data.get("version") != VERSION:
        raise UserError(
            f'{source}: "version" must be {VERSION} (got {_show(data.get("version"))}).',
            key="lesson_version",
            file=source,
            version=VERSION,
        )
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise UserError(
            f'{source}: "steps" must be a list with at least one step.',
            key="lesson_no_steps",
            file=source,
        )
    seen: set[str] = set()
    out = []
    for number, raw in enumerate(steps, start=1):
        step = _step(raw, number, source)
        if step.id in seen:
            raise UserError(
                f"{source}: step {number} has the id '{step.id}', like an earlier step. "
                "Every step needs its own id.",
                key="lesson_duplicate_id",
                file=source,
                step=step.id,
                number=number,
            )
        seen.add(step.id)
        out.append(step)
    return Lesson(tuple(out))


def _show(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _step(raw: Any, number: int, source: str) -> Step:
    if not isinstance(raw, dict):
        raise UserError(
            f"{source}: step {number} must be an object with an id, a link, en and ja.",
            key="lesson_step_not_object",
            file=source,
            number=number,
        )
    step_id = raw.get("id")
    if not isinstance(step_id, str) or not _ID.match(step_id) or len(step_id) > MAX_ID_CHARS:
        raise UserError(
            f'{source}: step {number} needs an "id": a short name of lower-case letters, digits '
            f"and '-' (at most {MAX_ID_CHARS} characters), e.g. \"tokens-cost\"; got "
            f"{_show(step_id)}.",
            key="lesson_step_id",
            file=source,
            number=number,
        )
    where = f"{source}: step '{step_id}'"
    extra = sorted(k for k in raw if k not in _STEP_FIELDS and k not in LANGS)
    for key in extra:
        if not _LANG.match(str(key)):
            raise UserError(
                f'{where} has an unknown field "{str(key)[:40]}". A step has "id", "link" '
                'and one object per language ("en", "ja").',
                key="lesson_step_unknown_field",
                file=source,
                step=step_id,
                field=str(key)[:40],
            )
    texts = {}
    for lang in (*LANGS, *extra):
        texts[lang] = _texts(raw.get(lang), lang, where, source, step_id)
    return Step(step_id, _link(raw.get("link"), where, source, step_id), MappingProxyType(texts))


def _texts(raw: Any, lang: str, where: str, source: str, step_id: str) -> StepText:
    if not isinstance(raw, dict):
        raise UserError(
            f'{where} has no "{lang}" texts: add "{lang}": {{"title": …, "text": …, '
            '"question": …}.',
            key="lesson_lang_missing",
            file=source,
            step=step_id,
            lang=lang,
        )
    for key in raw:
        if key not in TEXT_FIELDS:
            raise UserError(
                f'{where}: "{lang}" has an unknown field "{str(key)[:40]}" (the fields are '
                "title, text and question).",
                key="lesson_text_unknown_field",
                file=source,
                step=step_id,
                lang=lang,
                field=str(key)[:40],
            )
    values = {}
    for name in TEXT_FIELDS:
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            raise UserError(
                f'{where}: "{lang}"."{name}" is missing or empty; every step needs a title, '
                "a text and a question in each language.",
                key="lesson_text_empty",
                file=source,
                step=step_id,
                lang=lang,
                field=name,
            )
        values[name] = value.strip()
    return StepText(**values)


def _link(raw: Any, where: str, source: str, step_id: str) -> Mapping[str, str]:
    if not isinstance(raw, dict):
        raise UserError(
            f'{where}: "link" must be an object such as {{"tab": "sampling", "temperature": '
            f'"1.5"}} (got {_show(raw)}).',
            key="lesson_link_not_object",
            file=source,
            step=step_id,
        )
    for key, value in raw.items():
        if not isinstance(value, str):
            raise UserError(
                f'{where}: link "{str(key)[:40]}" must be a string in quotes (links are URL '
                f'parameters): write "{_plain(value)}" instead of {_show(value)}.',
                key="lesson_link_not_string",
                file=source,
                step=step_id,
                field=str(key)[:40],
            )
        if not value.strip():
            raise UserError(
                f'{where}: link "{str(key)[:40]}" is empty; give it a value or remove it.',
                key="lesson_link_empty",
                file=source,
                step=step_id,
                field=str(key)[:40],
            )
        if len(value) > MAX_VALUE_CHARS:
            raise UserError(
                f'{where}: link "{str(key)[:40]}" is {len(value)} characters long; the limit '
                f"is {MAX_VALUE_CHARS}.",
                key="lesson_link_too_long",
                file=source,
                step=step_id,
                field=str(key)[:40],
                limit=MAX_VALUE_CHARS,
            )
    tab = raw.get("tab")
    if tab is None:
        raise UserError(
            f'{where}: the link has no "tab". Add one of: {", ".join(TABS)}.',
            key="lesson_link_no_tab",
            file=source,
            step=step_id,
            choices=", ".join(TABS),
        )
    if tab not in LINK_KEYS:
        raise UserError(
            f"{where}: link tab '{tab[:40]}' is not a tab of the app. Use one of: "
            f"{', '.join(TABS)}.",
            key="lesson_link_unknown_tab",
            file=source,
            step=step_id,
            tab=tab[:40],
            choices=", ".join(TABS),
        )
    allowed = LINK_KEYS[tab]
    for key in raw:
        if key != "tab" and key not in allowed:
            raise UserError(
                f'{where}: link "{str(key)[:40]}" is not an input of the {tab} tab. Its link '
                f"keys are: tab, {', '.join(sorted(allowed))}.",
                key="lesson_link_unknown_key",
                file=source,
                step=step_id,
                field=str(key)[:40],
                tab=tab,
                choices=", ".join(sorted(allowed)),
            )
    ordered = {"tab": tab, **{k: v for k, v in raw.items() if k != "tab"}}
    return MappingProxyType(ordered)


def _plain(value: Any) -> str:
    """What a non-string JSON value looks like as the string the link needs ("1.5", "true")."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    return "…"
