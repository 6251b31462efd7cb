"""Save this view: one offline HTML file per tab, and its tables as CSV.

A teacher saves what a tab shows and opens it later on a laptop with no network at all, so
the document carries everything inline: a small stylesheet, plotly.js (once, whatever the
number of charts), each chart as plotly's own interactive figure with its modebar (the camera
icon downloads a PNG), the inputs and the tables. Nothing is fetched: no CDN, no web font, and
a Content-Security-Policy that refuses any request should a chart ever try one.

Every string that came from a person (title, input labels and values, chart and table names,
table cells, the note) is HTML-escaped; plotly's own JSON escapes ``<``, ``>`` and ``/`` as
``\\u003c`` / ``\\u003e`` / ``\\u002f``, so text inside a chart cannot close its ``<script>``.

What this module does not do: build charts (``llmviz.plots``), read gradio components (the
``*_from_gradio`` helpers duck-type what gradio hands a handler, without importing it), or
write the HTML anywhere (the caller saves ``view_html(...)`` where gradio serves downloads).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.basedatatypes import BaseFigure

from llmviz.config import EXPORT_MAX_BYTES, EXPORT_MAX_INPUT_CHARS
from llmviz.errors import UserError

#: Fonts that have Japanese glyphs, tried in order; the page and every chart use them, so a
#: PNG downloaded from the saved file shows ひらがな instead of empty boxes.
JP_FONTS = ('"Noto Sans CJK JP"', '"Noto Sans JP"', '"Hiragino Sans"',
            '"Hiragino Kaku Gothic ProN"', '"Yu Gothic"', "Meiryo")  # fmt: skip
_GENERIC = {"sans-serif", "serif", "monospace", "system-ui", "cursive", "fantasy"}
FONT_STACK = ", ".join(("system-ui", "-apple-system", '"Segoe UI"', *JP_FONTS, "sans-serif"))

_WORDS = {
    "en": {"inputs": "Inputs", "charts": "Charts", "tables": "Tables", "saved": "Saved",
           "live": "Live view", "offline": "This file works offline. The camera icon above a "
           "chart downloads it as a PNG image."},
    "ja": {"inputs": "入力", "charts": "グラフ", "tables": "表", "saved": "保存日時",
           "live": "ライブ版", "offline": "このファイルはオフラインで開けます。グラフ右上の"
           "カメラのアイコンで PNG 画像として保存できます。"},
}  # fmt: skip

# No request may leave the file: scripts and styles are inline; PNG export draws through
# data:/blob: images; 'unsafe-eval' because plotly's WebGL traces compile shaders with Function.
_CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
        "style-src 'unsafe-inline'; img-src data: blob:; font-src data:")  # fmt: skip

_CSS = f"""
body {{ font-family: {FONT_STACK}; line-height: 1.6; color: #1f2937; background: #fff;
       margin: 0 auto; padding: 1.5rem; max-width: 72rem; }}
h1 {{ font-size: 1.6rem; margin: 0 0 .25rem; }}
h2 {{ font-size: 1.25rem; margin: 2rem 0 .5rem; border-bottom: 1px solid #e5e7eb; }}
h3 {{ font-size: 1.05rem; margin: 1.25rem 0 .25rem; }}
.meta, .offline {{ color: #6b7280; font-size: .9rem; margin: .25rem 0; }}
.note, dd {{ white-space: pre-wrap; overflow-wrap: anywhere; }}
dl {{ display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }}
dt {{ font-weight: 600; }}
dd {{ margin: 0; }}
figure {{ margin: 1rem 0; }}
figcaption {{ font-weight: 600; }}
.table-wrap {{ overflow-x: auto; }}
table {{ border-collapse: collapse; font-size: .9rem; }}
th, td {{ border: 1px solid #d1d5db; padding: .2rem .5rem; text-align: left;
         white-space: pre-wrap; }}
th {{ background: #f3f4f6; }}
"""


def _clean(s: object) -> str:
    """Text that can be written as UTF-8: a lone surrogate (half an emoji) becomes ``\\ud83d``.

    >>> _clean("a\\ud83db")
    'a\\\\ud83db'
    """
    return str(s).encode("utf-8", "backslashreplace").decode("utf-8")


def _esc(s: object, limit: int | None = None) -> str:
    """Escaped text, cut to at most ``limit`` characters (the last one "…") before escaping.

    >>> _esc('<b>"x"</b>', limit=5)
    '&lt;b&gt;&quot;…'
    """
    text = _clean(s)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=True)


class _Budget:
    """Adds up the document's UTF-8 size and refuses it as soon as it passes the limit."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used, self.parts = limit, 0, []

    def add(self, part: str) -> None:
        self.used += len(part.encode("utf-8", "backslashreplace"))
        if self.used > self.limit:
            mb, limit_mb = round(self.used / 1e6, 1), round(self.limit / 1e6, 1)
            raise UserError(
                f"This view is too large to save as one file (over {mb} MB; the limit is "
                f"{limit_mb} MB). Show fewer tokens, layers or rows and save again.",
                key="export_too_large",
                mb=mb,
                limit_mb=limit_mb,
            )
        self.parts.append(part)


def _link_html(link: str, words: Mapping[str, str]) -> str:
    """An ``<a href>`` for an http(s) address; anything else (``javascript:``...) as text."""
    clean = _clean(link)
    live = html.escape(words["live"])
    if re.fullmatch(r"https?://[^\s/?#]+[^\s]*", clean, flags=re.IGNORECASE):
        return f'{live}: <a href="{_esc(clean)}">{_esc(clean)}</a>'
    return f"{live}: {_esc(clean)}"


def _inputs_html(inputs: Sequence[tuple[str, str]]) -> str:
    rows = "".join(
        f"<dt>{_esc(label, EXPORT_MAX_INPUT_CHARS)}</dt>"
        f"<dd>{_esc(value, EXPORT_MAX_INPUT_CHARS)}</dd>\n"
        for label, value in inputs
    )
    return f"<dl>\n{rows}</dl>\n"


def _with_japanese_fonts(family: str | None) -> str:
    """A plotly font family that can draw Japanese: ours added before the generic fallback.

    >>> _with_japanese_fonts("Arial, sans-serif").startswith('Arial, "Noto Sans CJK JP"')
    True
    >>> _with_japanese_fonts("Noto Sans CJK JP, sans-serif")
    'Noto Sans CJK JP, sans-serif'
    """
    if not family:
        return FONT_STACK
    names = [f.strip() for f in family.split(",") if f.strip()]
    if any(n.strip("\"'") in {j.strip('"') for j in JP_FONTS} for n in names):
        return family
    own = [n for n in names if n.strip("\"'").lower() not in _GENERIC]
    generic = [n for n in names if n.strip("\"'").lower() in _GENERIC] or ["sans-serif"]
    return ", ".join((*own, *JP_FONTS, *generic))


def _figure_html(name: str, fig: BaseFigure, index: int, first: bool) -> str:
    fig = go.Figure(fig)  # a copy: the caller's figure keeps its font
    family = fig.layout.font.family or fig.layout.template.layout.font.family
    fig.update_layout(font_family=_with_japanese_fonts(family))
    config = {
        "displaylogo": False,
        # plotly.js 4 shows a "Share chart..." button by default that uploads the figure to
        # Plotly Cloud: a student's prompt must not leave the laptop.
        "showSendToCloud": False,
        # An ASCII stem: nothing in it can close the <script> (plotly writes the config with
        # json.dumps, which does not escape "</").
        "toImageButtonOptions": {"format": "png", "scale": 2,
                                 "filename": _ascii_stem(name) or f"chart-{index}"},
    }  # fmt: skip
    body = pio.to_html(fig, full_html=False, include_plotlyjs=first, include_mathjax=False,
                       config=config, div_id=f"llmviz-figure-{index}")  # fmt: skip
    caption = f"<figcaption>{_esc(name)}</figcaption>" if name else ""
    return f"<figure>{caption}\n{body}\n</figure>\n"


def _table_html(name: str, df: pd.DataFrame) -> str:
    table = _clean(df.to_html(escape=True, index=False, border=0, na_rep=""))
    heading = f"<h3>{_esc(name)}</h3>\n" if name else ""
    return f'{heading}<div class="table-wrap">\n{table}\n</div>\n'


def view_html(
    title: str,
    inputs: Sequence[tuple[str, str]],
    figures: Sequence[tuple[str, BaseFigure | None]],
    tables: Sequence[tuple[str, pd.DataFrame | None]],
    *,
    lang: str = "en",
    link: str | None = None,
    note: str | None = None,
    saved_at: str | None = None,
    max_bytes: int | None = None,
) -> str:
    """One self-contained HTML5 document showing a tab's inputs, charts and tables.

    ``lang`` is "en" or "ja" (anything else reads as "en"); a figure or table given as
    ``None`` (an empty component) is left out; ``saved_at`` is shown as given; ``link`` is a
    link only when it is http(s). Raises ``UserError`` (key ``export_too_large``) past
    ``max_bytes`` (default ``EXPORT_MAX_BYTES``).

    >>> doc = view_html("<b>Tokens</b>", [("Text", "こんにちは")], [], [])
    >>> "<h1>&lt;b&gt;Tokens&lt;/b&gt;</h1>" in doc, "<dd>こんにちは</dd>" in doc
    (True, True)
    """
    lang = lang if lang in _WORDS else "en"
    words = _WORDS[lang]
    out = _Budget(EXPORT_MAX_BYTES if max_bytes is None else max_bytes)
    out.add(f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="generator" content="llmviz">\n'
            f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
            f"<h1>{_esc(title)}</h1>\n")  # fmt: skip
    meta = [f"{html.escape(words['saved'])}: {_esc(saved_at)}"] if saved_at else []
    meta += [_link_html(link, words)] if link else []
    if meta:
        out.add(f'<p class="meta">{" · ".join(meta)}</p>\n')
    if note:
        out.add(f'<p class="note">{_esc(note)}</p>\n')
    if inputs:
        out.add(f"<section>\n<h2>{html.escape(words['inputs'])}</h2>\n{_inputs_html(inputs)}")
        out.add("</section>\n")
    shown = [(name, fig) for name, fig in figures if fig is not None]
    if shown:
        out.add(f"<section>\n<h2>{html.escape(words['charts'])}</h2>\n")
        out.add(f'<p class="offline">{html.escape(words["offline"])}</p>\n')
        for i, (name, fig) in enumerate(shown):
            out.add(_figure_html(name, fig, i + 1, first=i == 0))
        out.add("</section>\n")
    listed = [(name, df) for name, df in tables if df is not None]
    if listed:
        out.add(f"<section>\n<h2>{html.escape(words['tables'])}</h2>\n")
        for name, df in listed:
            out.add(_table_html(name, df))
        out.add("</section>\n")
    out.add("</main>\n</body>\n</html>\n")
    return "".join(out.parts)


def _field(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)


def figure_from_gradio(value: Any) -> go.Figure | None:
    """The plotly figure a ``gr.Plot`` input holds, or ``None`` (empty, or not plotly).

    gradio hands a handler the plot's ``PlotData`` (``type="plotly"``, ``plot`` = the
    figure's JSON string), or its dict form through the API; a ``Figure`` passes through.

    >>> figure_from_gradio({"type": "plotly", "plot": '{"data": [{"type": "bar", "y": [1]}]}'}).data[0].y
    (1,)
    >>> figure_from_gradio({"type": "matplotlib", "plot": "data:image/png;base64,..."}) is None
    True
    """
    if value is None or isinstance(value, go.Figure):
        return value
    if isinstance(value, BaseFigure):
        return go.Figure(value)
    kind, plot = _field(value, "type"), _field(value, "plot")
    if kind != "plotly" or plot in (None, "", {}):
        return None
    try:
        return pio.from_json(plot) if isinstance(plot, str | bytes) else go.Figure(plot)
    except ValueError as e:  # JSONDecodeError and plotly's validation errors are ValueErrors
        raise UserError(
            "This chart could not be read (its plotly JSON is not valid), so it cannot be "
            "saved. Draw the chart again and save the view.",
            key="export_bad_plot",
        ) from e


def table_from_gradio(value: Any) -> pd.DataFrame | None:
    """The table a ``gr.Dataframe`` input holds, or ``None`` when it is empty.

    gradio hands a handler a ``DataFrame`` (``type="pandas"``, its default); API callers and
    other types send ``{"headers": [...], "data": [[...], ...]}`` or rows.

    >>> table_from_gradio({"headers": ["token", "p"], "data": [["猫", 0.5]]}).iloc[0, 0]
    '猫'
    >>> table_from_gradio({"headers": ["token"], "data": [[]]}) is None
    True
    """
    if value is None:
        return None
    try:
        if isinstance(value, pd.DataFrame):
            df = value
        elif _field(value, "data") is not None:
            data, headers = _field(value, "data"), _field(value, "headers")
            rows = [] if data == [[]] else data
            df = pd.DataFrame(rows, columns=headers or None)
        elif isinstance(value, list | tuple):
            df = pd.DataFrame(list(value))
        else:
            raise ValueError(f"unexpected {type(value).__name__}")
    except (ValueError, TypeError) as e:
        raise UserError(
            "This table could not be read (its rows do not match its columns), so it cannot "
            "be saved. Show the table again and save the view.",
            key="export_bad_table",
        ) from e
    return None if df.empty else df


#: Excel runs a cell that starts with one of these as a formula ("-ing" shows #NAME?).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _excel_text(v: object) -> object:
    """``'-ing`` for ``-ing``: Excel shows the text instead of running it (OWASP's advice).

    >>> _excel_text("=1+1"), _excel_text("猫"), _excel_text(-3)
    ("'=1+1", '猫', -3)
    """
    return "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v


def table_csv(df: pd.DataFrame, path: Path, *, excel_safe: bool = True) -> Path:
    """Write ``df`` as CSV for Excel: UTF-8 with a BOM (Excel in Japan reads it as UTF-8 only
    then), no index; text cells that Excel would run as formulas get a leading ``'`` unless
    ``excel_safe=False``. Returns ``path``."""
    if excel_safe:
        df = df.map(_excel_text)
    df.to_csv(path, index=False, encoding="utf-8-sig", errors="backslashreplace")
    return path


_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                     *(f"LPT{i}" for i in range(1, 10))}  # fmt: skip


def _ascii_stem(s: str) -> str:
    """Letters, digits, ``-`` and ``_`` of ``s`` (accents dropped, other runs become one ``-``),
    at most 80 characters; ``""`` when nothing is left.

    >>> _ascii_stem("Café 12:30"), _ascii_stem("猫")
    ('Cafe-12-30', '')
    """
    ascii_only = unicodedata.normalize("NFKD", str(s)).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9_]+", "-", ascii_only).strip("-_")[:80].strip("-_")


def safe_filename(stem: str, suffix: str) -> str:
    """An ASCII file name: letters, digits, ``-`` and ``_`` only (no ``/``, no ``..``), at
    most 80 characters before the suffix; ``llmviz`` when nothing usable is left. Put the
    timestamp in the stem: ``safe_filename(f"{tab} {now:%Y-%m-%d %H%M%S}", ".html")``.

    >>> safe_filename("Tokenizer 2025-01-02 12:30:05", ".html")
    'Tokenizer-2025-01-02-12-30-05.html'
    >>> safe_filename("../../etc/passwd", "csv"), safe_filename("トークン", ".HTML")
    ('etc-passwd.csv', 'llmviz.html')
    >>> safe_filename("Café_naïve", "")
    'Cafe_naive'
    """
    clean = _ascii_stem(stem) or "llmviz"
    if clean.upper() in _WINDOWS_RESERVED:
        clean += "_"
    ext = re.sub(r"[^a-z0-9]", "", str(suffix).lower())[:10]
    return f"{clean}.{ext}" if ext else clean
