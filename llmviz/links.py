"""Deep links: a view's main inputs in the URL query, read back safely.

A link such as ``?tab=sampling&prompt=こんにちは、&temperature=1.5&lang=ja`` names a tab and the
values of its main inputs. This module knows nothing about gradio: the UI describes each linkable
input as a :class:`Field` (kind, bounds and choices taken from the very component, so a link can
never ask for more than the page allows) and :func:`parse` turns an untrusted query into clean
values plus notes for what it ignored. Nothing from a query is ever executed or echoed as markup:
a note names only the parameter (reduced to ``[a-z0-9_]``), never its value.

Page-wide parameters, valid with any tab: ``tab``, ``lang`` (en / ja), ``present`` (1 turns the
presenter mode on) and ``lesson`` (the guided lesson's step, 1-based).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlencode

#: The parameters each tab's link may carry besides the page-wide ones (the UI maps each to its
#: component: ``llmviz.ui.links_ui.LINKABLE``; the guided lesson's steps use the same names).
TAB_PARAMS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "tokenizer": ("prompt", "tokenizers"),
    "attention": ("prompt", "model"),
    "sampling": ("prompt", "model", "seed", "temperature", "top_k", "top_p", "min_p"),
    "inside": ("sub", "prompt", "model", "target"),
    "memory": ("preset", "context", "batch"),
    "compare": ("prompt", "temperature", "max_new"),
    "finetune": ("lr", "steps", "rank"),
    "labs": ("sub", "prompt"),
})  # fmt: skip
#: Page-wide parameters, handled by the page rather than by a tab.
PAGE_KEYS = ("tab", "lang", "present", "lesson")
LANGS = ("en", "ja")
#: The longest value a query parameter may carry (a prompt a teacher puts on a slide is shorter).
MAX_VALUE_CHARS = 2_000
#: At most this many notes are shown; a hostile query with 10 000 keys gets one summary note.
MAX_NOTES = 6
#: Query keys beyond this many are not even looked at.
MAX_KEYS = 64

_KINDS = ("text", "int", "float", "choice", "choices", "bool")
_SAFE_KEY = re.compile(r"[^a-z0-9_]")


@dataclass(frozen=True)
class Field:
    """One linkable input: ``kind`` is text / int / float / choice / choices (comma-separated) /
    bool; ``minimum``/``maximum`` bound numbers, ``choices`` the allowed values, ``max_chars``
    texts (never more than :data:`MAX_VALUE_CHARS`)."""

    name: str
    kind: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    max_chars: int = MAX_VALUE_CHARS
    max_items: int = 16

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown field kind {self.kind!r}")


@dataclass(frozen=True)
class Note:
    """Why part of a link was ignored: ``key`` names an ``links.note.<key>`` message, ``param``
    the (sanitised) parameter it is about."""

    key: str
    param: str = ""


@dataclass(frozen=True)
class Link:
    """What a query asks for, every value already checked against its field."""

    tab: str | None = None
    values: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    lang: str | None = None
    present: bool = False
    lesson: int | None = None
    notes: tuple[Note, ...] = ()


def safe_param(name: object) -> str:
    """A parameter name fit to show: lower-case ``[a-z0-9_]``, at most 24 characters."""
    cleaned = _SAFE_KEY.sub("", str(name).lower())[:24]
    return cleaned or "?"


def _number(raw: str, f: Field, integer: bool) -> float | int | None:
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    if integer:
        if value != int(value):
            return None
        value = int(value)
    if f.minimum is not None and value < f.minimum:
        return None
    if f.maximum is not None and value > f.maximum:
        return None
    return value


def check_value(f: Field, raw: str) -> tuple[object | None, str | None]:
    """``(value, None)`` when ``raw`` is a valid value of ``f``, else ``(None, note key)``."""
    if len(raw) > min(f.max_chars, MAX_VALUE_CHARS):
        return None, "too_long"
    if f.kind == "text":
        if "\x00" in raw:
            return None, "bad_value"
        return raw, None
    if f.kind in ("int", "float"):
        value = _number(raw, f, integer=f.kind == "int")
        return (value, None) if value is not None else (None, "bad_number")
    if f.kind == "bool":
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True, None
        if lowered in ("0", "false", "no", "off"):
            return False, None
        return None, "bad_value"
    if f.kind == "choice":
        return (raw, None) if raw in f.choices else (None, "unknown_choice")
    items = tuple(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))
    if not items or len(items) > f.max_items or any(i not in f.choices for i in items):
        return None, "unknown_choice"
    return items, None


def _first(query: Mapping[str, object], key: str) -> str | None:
    value = query.get(key)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return value if isinstance(value, str) else None


def parse(query: Mapping[str, object], tabs: Mapping[str, Sequence[Field]]) -> Link:
    """Read ``query`` (a page's query parameters: str values, or lists of them) for the tabs in
    ``tabs`` (tab name -> its linkable fields). Invalid parts are dropped with a :class:`Note`;
    this never raises for any query."""
    notes: list[Note] = []
    keys = list(query.keys())
    if len(keys) > MAX_KEYS:
        notes.append(Note("too_many"))
        keys = keys[:MAX_KEYS]
    present_keys = {k for k in keys if isinstance(k, str)}

    lang = _first(query, "lang") if "lang" in present_keys else None
    if lang is not None and lang not in LANGS:
        notes.append(Note("unknown_lang", "lang"))
        lang = None
    present = False
    if "present" in present_keys:
        raw = _first(query, "present") or ""
        value, problem = check_value(Field("present", "bool"), raw)
        present = bool(value) if problem is None else False
        if problem:
            notes.append(Note(problem, "present"))
    lesson = None
    if "lesson" in present_keys:
        value, problem = check_value(Field("lesson", "int", 1, 999), _first(query, "lesson") or "")
        lesson = value if problem is None else None  # type: ignore[assignment]
        if problem:
            notes.append(Note(problem, "lesson"))

    tab = _first(query, "tab") if "tab" in present_keys else None
    if tab is not None and tab not in tabs:
        notes.append(Note("unknown_tab", "tab"))
        tab = None
    fields = {f.name: f for f in tabs.get(tab, ())} if tab else {}
    values: dict[str, object] = {}
    for key in keys:
        if not isinstance(key, str) or key in PAGE_KEYS:
            continue
        if key not in fields:
            notes.append(Note("unknown_param" if tab else "needs_tab", safe_param(key)))
            continue
        raw = _first(query, key)
        if raw is None:
            notes.append(Note("bad_value", safe_param(key)))
            continue
        value, problem = check_value(fields[key], raw)
        if problem:
            notes.append(Note(problem, key))
        else:
            values[key] = value
    if len(notes) > MAX_NOTES:
        notes = [*notes[: MAX_NOTES - 1], Note("more_notes", str(len(notes) - MAX_NOTES + 1))]
    return Link(tab, MappingProxyType(values), lang, present, lesson, tuple(notes))


def encode(value: object) -> str:
    """How a value is written in a link (the inverse of :func:`check_value`)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def query_string(tab: str, values: Mapping[str, object], *, lang: str | None = None,
                 present: bool = False) -> str:  # fmt: skip
    """The query of a link to ``tab`` with ``values`` (``None`` values are left out)."""
    pairs: list[tuple[str, str]] = [("tab", tab)]
    pairs += [(k, encode(v)) for k, v in values.items() if v is not None and v != ""]
    if lang:
        pairs.append(("lang", lang))
    if present:
        pairs.append(("present", "1"))
    return urlencode(pairs)
