"""English and Japanese strings for the whole UI.

Static text (labels, headings, Markdown written at build time) uses ``t("key")``: gradio's
``gr.I18n`` translates it in the browser, following the browser locale. Text that handlers make
at run time (messages, tables, summaries) cannot be translated by the browser, so handlers take a
``gr.Request``, ask ``lang_of(request)`` and format ``text("key", lang, **values)`` themselves.

Strings live in ``assets/i18n/<area>.json`` as ``{"en": {...}, "ja": {...}}``, one file per tab,
keys prefixed with the area (``"tok.title"``). All files are merged here at import.
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from llmviz.config import ASSETS

LANGS = ("en", "ja")


def _load() -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {lang: {} for lang in LANGS}
    for path in sorted((ASSETS / "i18n").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for lang in LANGS:
            for key, value in data.get(lang, {}).items():
                if key in merged[lang]:
                    raise ValueError(f"duplicate i18n key {key!r} in {path.name}")
                merged[lang][key] = value
    return merged


STRINGS = _load()
I18N = gr.I18n(**STRINGS)


def t(key: str) -> Any:
    """A translatable static string for a component (label, info, Markdown value...)."""
    if key not in STRINGS["en"]:
        raise KeyError(f"missing i18n key {key!r}: add it to assets/i18n/*.json")
    return I18N(key)


def text(key: str, lang: str = "en", /, **values: object) -> str:
    """The string ``key`` in ``lang`` (English when missing), formatted with ``values``."""
    template = STRINGS.get(lang, {}).get(key) or STRINGS["en"].get(key, key)
    try:
        return template.format(**values) if values else template
    except (KeyError, IndexError, ValueError):
        return template


def lang_of(request: gr.Request | None) -> str:
    """The page's ``?lang=`` when it names one of ours (the in-page language switch sets it),
    else "ja" when the browser prefers Japanese (Accept-Language), else "en"."""
    if request is None:
        return "en"
    try:
        chosen = request.query_params.get("lang")
    except (AttributeError, TypeError):
        chosen = None
    if chosen in LANGS:
        return chosen
    try:
        header = request.headers.get("accept-language", "") or ""
    except AttributeError:
        return "en"
    best, best_q = "en", -1.0
    for part in header.split(","):
        bits = part.strip().split(";q=")
        tag = bits[0].strip().lower()
        try:
            q = float(bits[1]) if len(bits) > 1 else 1.0
        except ValueError:
            q = 0.0
        lang = tag.split("-")[0]
        if lang in LANGS and q > best_q:
            best, best_q = lang, q
    return best
