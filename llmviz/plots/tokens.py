"""Drawing tokens: colored HTML spans (for ``gr.HTML``) and plotly charts for the tokenizer tab.

Everything user-typed is HTML-escaped; ``{``, ``}`` and ``$`` are written as entities too, because
gradio's HTML component fills its template with them. No ``<script>`` anywhere. Pieces of a split
character are drawn inside one bracket with the character above them, so students see which
tokens must be read together; hovering a token shows its id and bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from llmviz.token_stats import Premium, Tokenized
from llmviz.tokens import TokenPiece, hex_bytes, visible

PALETTE = ("#fde68a", "#bbf7d0", "#bfdbfe", "#fbcfe8", "#ddd6fe", "#fed7aa", "#a5f3fc")

#: CSS for the token views (pass as ``css_template`` to the gr.HTML that shows them).
TOKEN_CSS = """
.tokviz { font-size: 1.15rem; line-height: 2.3; color: #111827; }
.tokviz .card { border: 1px solid #e5e7eb; border-radius: 10px; padding: 8px 12px; margin: 8px 0;
  background: #ffffff; }
.tokviz .head { display: flex; flex-wrap: wrap; gap: 4px 16px; align-items: baseline;
  font-size: 0.95rem; line-height: 1.6; margin-bottom: 4px; }
.tokviz .name { font-weight: 700; font-size: 1.05rem; }
.tokviz .kind { color: #6b7280; }
.tokviz .stat b { font-size: 1.1rem; }
.tokviz .body { white-space: pre-wrap; word-break: break-word; }
.tokviz .t { border-radius: 4px; padding: 1px 1px; margin: 0 1px; color: #111827;
  box-shadow: inset 0 -2px 0 rgba(0,0,0,0.12); }
.tokviz .c0 { background: #fde68a; } .tokviz .c1 { background: #bbf7d0; }
.tokviz .c2 { background: #bfdbfe; } .tokviz .c3 { background: #fbcfe8; }
.tokviz .c4 { background: #ddd6fe; } .tokviz .c5 { background: #fed7aa; }
.tokviz .c6 { background: #a5f3fc; }
.tokviz .sp { background: #1f2937; color: #f9fafb; font-family: ui-monospace, monospace;
  font-size: 0.8em; padding: 2px 4px; }
.tokviz .ws { color: #9ca3af; }
.tokviz .grp { display: inline-flex; flex-direction: column; align-items: center;
  vertical-align: bottom; margin: 0 2px; line-height: 1.2; }
.tokviz .grp .ch { font-size: 1.05em; border-bottom: 2px solid #ef4444; padding: 0 2px;
  white-space: pre; }
.tokviz .grp .parts { display: inline-flex; gap: 1px; }
.tokviz .grp .parts .t { font-family: ui-monospace, monospace; font-size: 0.6em; padding: 0 2px; }
.tokviz .bad { outline: 2px dashed #ef4444; font-family: ui-monospace, monospace; font-size: 0.7em; }
.tokviz .more { color: #6b7280; font-style: italic; }
.tokviz .ids { font-family: ui-monospace, monospace; font-size: 0.85rem; color: #374151;
  line-height: 1.5; max-height: 6em; overflow: auto; }
.tokviz .row { display: flex; gap: 12px; align-items: baseline; }
.tokviz .row .lbl { min-width: 9em; font-weight: 600; font-size: 0.95rem; }
"""


_ESC = {
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    ord("'"): "&#x27;",
    ord("{"): "&#123;",
    ord("}"): "&#125;",
    ord("$"): "&#36;",
}
_INVISIBLE = {
    c: f'<span class="ws">{esc_ch}</span>'
    for c, esc_ch in (
        *((i, chr(0x2400 + i)) for i in range(32) if i not in (9, 10, 13)),
        (0x7F, "␡"),
        (0x200D, "[ZWJ]"),
        (0x200C, "[ZWNJ]"),
        (0xFEFF, "[BOM]"),
        (0x200B, "[ZWSP]"),
    )
}
_WS_SHOWN = {
    ord(" "): '<span class="ws">␣</span>',
    ord("\t"): '<span class="ws">⇥</span>',
    ord("\u3000"): '<span class="ws">□</span>',
    ord("\r"): '<span class="ws">␍</span>',
    ord("\n"): '<span class="ws">↵</span>\n',
}
_TABLE_PLAIN = {**_ESC, **_INVISIBLE}
_TABLE_WS = {**_ESC, **_INVISIBLE, **_WS_SHOWN}


def esc(text: str) -> str:
    """HTML-escape, plus the characters gradio's template engine would interpret."""
    return text.translate(_ESC)


def _shown(text: str, show_ws: bool) -> str:
    """Token text for the body, escaped; whitespace visible (newlines kept) when asked."""
    return text.translate(_TABLE_WS if show_ws else _TABLE_PLAIN)


def _title(p: TokenPiece, note: str | None) -> str:
    title = (
        f"#{p.index} · id {p.id} · bytes {p.raw.hex(' ').upper()}"
        if p.id >= 0
        else (f"#{p.index} · bytes {p.raw.hex(' ').upper()}")
    )
    if p.partial:
        title += f" · part of {visible(p.text)}" if p.text else " · not a whole character"
    if note:
        title += f" · {note}"
    return title.translate(_ESC)


def _group_html(group: list[TokenPiece], show_ws: bool, notes: dict[int, str]) -> str:
    """A split character: the character once, its byte pieces under one bracket."""
    chars = group[0].text
    if not chars:  # bytes that never complete a character
        return "".join(
            f'<span class="t bad c{p.index % 7}" title="{_title(p, notes.get(p.index))}">'
            f"{esc(hex_bytes(p.raw))}</span>"
            for p in group
        )
    parts = "".join(
        f'<span class="t c{p.index % 7}" title="{_title(p, notes.get(p.index))}">'
        f"{esc(hex_bytes(p.raw))}</span>"
        for p in group
    )
    whole = esc(" + ".join(hex_bytes(p.raw) for p in group))
    return (
        f'<span class="grp" title="{esc(visible(chars))} = {whole}">'
        f'<span class="ch">{_shown(chars, show_ws)}</span><span class="parts">{parts}</span></span>'
    )


def pieces_html(
    pieces: Sequence[TokenPiece],
    show_ws: bool = True,
    annotations: Sequence[str] | None = None,
) -> str:
    """The body of one tokenizer's view: one span per token, split characters grouped."""
    notes = dict(enumerate(annotations)) if annotations else {}
    out: list[str] = []
    i = 0
    while i < len(pieces):
        p = pieces[i]
        if p.special:
            out.append(
                f'<span class="t sp" title="{_title(p, "special token")}">{esc(p.text)}</span>'
            )
            i += 1
        elif p.partial:
            j = i
            while j < len(pieces) and pieces[j].group == p.group:
                j += 1
            out.append(_group_html(list(pieces[i:j]), show_ws, notes))
            i = j
        elif notes:
            body = _shown(p.text, show_ws) if p.text else "∅"
            out.append(
                f'<span class="t c{p.index % 7}" title="{_title(p, notes.get(p.index))}">{body}</span>'
            )
            i += 1
        else:  # the common case: a whole token; its markup is memoized (text repeats tokens)
            memo = _SPANS.get((p.id, p.raw, show_ws))
            if memo is None:
                body = _shown(p.text, show_ws) if p.text else "∅"
                memo = (f'" title="id {p.id} · bytes {p.raw.hex(" ").upper()}">', body + "</span>")
                if len(_SPANS) > 200_000:
                    _SPANS.clear()
                _SPANS[(p.id, p.raw, show_ws)] = memo
            out.append(f'<span class="t c{p.index % 7}{memo[0]}{memo[1]}')
            i += 1
    return "".join(out)


# (id, bytes, show_ws) -> (title attribute tail, body): pure function of its key, shared safely
_SPANS: dict[tuple[int, bytes, bool], tuple[str, str]] = {}


def tokenized_html(
    results: Sequence[Tokenized],
    labels: dict[str, str],
    show_ws: bool = True,
    max_tokens: int = 1500,
) -> str:
    """Cards, one per tokenizer: name, counts, then the colored tokens (first ``max_tokens``).

    ``labels`` holds the translated words: tokens, chars_per_token, bytes_per_token, split,
    truncated (with ``{shown}`` and ``{total}``), no_ids, vocab.
    """
    cards = []
    for r in results:
        shown = r.pieces[:max_tokens]
        more = ""
        if r.n_pieces > len(shown):
            more = (
                '<span class="more"> … '
                + esc(labels["truncated"].format(shown=f"{len(shown):,}", total=f"{r.n_pieces:,}"))
                + "</span>"
            )
        vocab = f"{r.vocab_size:,}" if r.vocab_size else "—"
        stats = [
            f'<span class="stat"><b>{r.n_tokens:,}</b> {esc(labels["tokens"])}</span>',
            f'<span class="stat"><b>{r.chars_per_token:.2f}</b> {esc(labels["chars_per_token"])}</span>',
            f'<span class="stat"><b>{r.bytes_per_token:.2f}</b> {esc(labels["bytes_per_token"])}</span>',
        ]
        if r.n_split_tokens:
            stats.append(
                f'<span class="stat"><b>{r.n_split_tokens:,}</b> {esc(labels["split"])}</span>'
            )
        if not r.has_ids:
            stats.append(f'<span class="kind">{esc(labels["no_ids"])}</span>')
        cards.append(
            f'<div class="card" data-tokenizer="{esc(r.key)}"><div class="head">'
            f'<span class="name">{esc(r.display)}</span>'
            f'<span class="kind">{esc(r.kind)} · {esc(labels["vocab"])} {vocab}</span>'
            + "".join(stats)
            + f'</div><div class="body">{pieces_html(shown, show_ws, r.annotations)}{more}</div></div>'
        )
    return '<div class="tokviz">' + "".join(cards) + "</div>"


def ids_html(pieces: Sequence[TokenPiece], show_ws: bool = True) -> str:
    """Decoded ids as colored spans (the decode box's view)."""
    return '<div class="tokviz"><div class="body">' + pieces_html(pieces, show_ws) + "</div></div>"


def rows_html(rows: Sequence[tuple[str, Sequence[TokenPiece]]], show_ws: bool = True) -> str:
    """Labelled rows of tokens, e.g. one sentence cut by vocabularies of several sizes."""
    body = "".join(
        f'<div class="row"><span class="lbl">{esc(label)}</span>'
        f'<span class="body">{pieces_html(p, show_ws)}</span></div>'
        for label, p in rows
    )
    return f'<div class="tokviz"><div class="card">{body}</div></div>'


# --- charts ------------------------------------------------------------------------------------
def premium_figure(
    premium: Premium, title: str, ratio_label: str, y_label: str = "tokens"
) -> go.Figure:
    """Grouped bars: token count per language, one bar per tokenizer, ratio to the base on top."""
    fig = go.Figure()
    ratios = premium.ratios()
    x = list(range(len(premium.langs)))
    for j, name in enumerate(premium.tokenizers):
        fig.add_bar(
            x=x,
            y=[row[j] for row in premium.counts],
            name=name,
            marker_color=_strong(j),
            text=[f"×{r[j]:.1f}" for r in ratios],
            textposition="outside",
            hovertemplate=f"{name}<br>%{{customdata}}: %{{y}} tokens<br>{ratio_label} %{{text}}<extra></extra>",
            customdata=premium.langs,
        )
    fig.update_layout(
        title=title,
        barmode="group",
        xaxis=dict(tickvals=x, ticktext=premium.langs, title=None),
        yaxis=dict(title=y_label),
        legend=dict(orientation="h", y=-0.18),
        margin=dict(l=50, r=20, t=60, b=40),
        height=460,
        template="plotly_white",
        font=dict(size=15),
    )
    return fig


def vocab_curve_figure(
    sizes: Sequence[int], counts: Sequence[int], title: str, x_label: str, y_label: str
) -> go.Figure:
    """Token count of the test sentence against vocabulary size (log x axis)."""
    fig = go.Figure(
        go.Scatter(
            x=list(sizes),
            y=list(counts),
            mode="lines+markers+text",
            text=[str(c) for c in counts],
            textposition="top center",
            line=dict(color=_strong(2), width=3),
            marker=dict(size=10),
            hovertemplate="vocab %{x:,}: %{y} tokens<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        xaxis=dict(
            title=x_label, type="log", tickvals=list(sizes), ticktext=[f"{s:,}" for s in sizes]
        ),
        yaxis=dict(title=y_label, range=[0, max(counts, default=1) * 1.2]),
        margin=dict(l=50, r=20, t=60, b=50),
        height=380,
        template="plotly_white",
        font=dict(size=15),
    )
    return fig


def _strong(i: int) -> str:
    return ("#4f46e5", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#dc2626", "#65a30d")[
        i % 8
    ]
