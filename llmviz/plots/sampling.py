"""Figures and HTML for the sampling tab: candidate bars, the top-p curve, the colored text.

Plain numbers and already-translated strings in, ``go.Figure`` / HTML out; no maths beyond
picking colors. Bars sit on integer positions with ``ticktext`` labels (plotly would merge two
candidates that look alike).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from llmviz.plots.axes import y_title_annotation

ORIGINAL = "#a5b4fc"  # indigo-300: the model's own probabilities (T = 1)
TEMPERED = "#4f46e5"  # indigo-600: after temperature
FINAL = "#f59e0b"  # amber-500: renormalized over the survivors (what is sampled from)
REMOVED = "#d1d5db"  # gray-300
CHOSEN = "#dc2626"  # red-600
FONT = dict(size=15, family="Noto Sans CJK JP, Noto Sans JP, system-ui, sans-serif")


@dataclass(frozen=True)
class CandidateBars:
    """One bar group per candidate, most likely first."""

    labels: Sequence[str]
    original: Sequence[float]
    tempered: Sequence[float]
    final: Sequence[float]
    removed_by: Sequence[str]  # "" for survivors, else the (translated) filter that removed it
    chosen: int | None = None  # position in the list of the chosen token, if shown


def _layout(title: str, subtitle: str, height: int, **extra: object) -> dict:
    """Shared look; built as one dict because every ``update_*`` call re-validates the figure."""
    return dict(
        title=dict(
            text=f"{html.escape(title)}<br><sup>{html.escape(subtitle)}</sup>",
            x=0.01,
            y=0.95,
            yref="container",
            yanchor="top",
            font=dict(size=17),
        ),
        height=height,
        margin=dict(l=60, r=20, t=130, b=90),
        font=FONT,
        plot_bgcolor="white",
        paper_bgcolor="white",
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0.0),
        **extra,
    )


def candidates_figure(
    bars: CandidateBars, names: dict[str, str], title: str, subtitle: str = ""
) -> go.Figure:
    """Grouped bars: original (T = 1), after temperature, final; removed candidates greyed.

    ``names`` gives the legend texts for keys ``original``, ``tempered``, ``final``, ``removed``
    and the y-axis title ``probability``.
    """
    n = len(bars.labels)
    x = list(range(n))
    removed = [bool(r) for r in bars.removed_by]
    labels = list(bars.labels)
    hover = "%{customdata}<br>p = %{y:.4f}<extra></extra>"
    top = max([*bars.original, *bars.tempered, *bars.final, 1e-9])
    data = [
        go.Bar(
            x=x,
            y=list(bars.original),
            name=names["original"],
            marker_color=ORIGINAL,
            hovertemplate=hover,
            customdata=labels,
        ),
        go.Bar(
            x=x,
            y=list(bars.tempered),
            name=names["tempered"],
            marker=dict(
                color=[REMOVED if r else TEMPERED for r in removed],
                line=dict(color=["#9ca3af" if r else TEMPERED for r in removed], width=1),
            ),
            # which filter removed the candidate, written above its bar
            text=[f"✕ {why}" if why else "" for why in bars.removed_by],
            textposition="outside",
            textangle=-90,
            textfont=dict(size=11, color="#6b7280"),
            constraintext="none",  # default "both" shrinks the label to the bar's width
            cliponaxis=False,
            hovertemplate=hover,
            customdata=labels,
        ),
        go.Bar(
            x=x,
            y=list(bars.final),
            name=names["final"],
            marker_color=FINAL,
            hovertemplate=hover,
            customdata=labels,
        ),
        # a grey legend entry explaining the grey bars
        go.Bar(x=[None], y=[None], name=names["removed"], marker_color=REMOVED),
    ]
    annotations = []
    if bars.chosen is not None and 0 <= bars.chosen < n:
        annotations.append(
            dict(
                x=bars.chosen,
                y=top * 1.18,
                text="▼",
                showarrow=False,
                font=dict(size=20, color=CHOSEN),
            )
        )
    ticktext = [
        f"<span style='color:{'#9ca3af' if r else '#111827'}'>{html.escape(lbl)}</span>"
        for lbl, r in zip(labels, removed, strict=True)
    ]
    layout = _layout(
        title,
        subtitle,
        480,
        bargap=0.25,
        bargroupgap=0.05,
        annotations=[*annotations, y_title_annotation(names["probability"])],
        xaxis=dict(tickmode="array", tickvals=x, ticktext=ticktext, tickangle=-45 if n > 12 else 0),
        yaxis=dict(range=[0, top * 1.3], tickformat=".0%", gridcolor="#eef2f7", zeroline=False),
    )
    # the y title (horizontal) takes the top left corner: the legend moves to the right
    layout["legend"] = dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1.0)
    return go.Figure(data=data, layout=layout)


def nucleus_figure(
    cumulative: Sequence[float],
    top_p: float,
    nucleus_size: int,
    names: dict[str, str],
    title: str,
    subtitle: str = "",
) -> go.Figure:
    """The cumulative probability of the candidates (most likely first) that top-p measures.

    Draws the ``top_p`` threshold and marks where the nucleus ends (``nucleus_size`` tokens).
    ``names``: ``curve``, ``threshold``, ``nucleus``, ``rank``, ``cumulative``.
    """
    ranks = list(range(1, len(cumulative) + 1))
    data = [
        go.Scatter(
            x=ranks,
            y=list(cumulative),
            mode="lines+markers",
            name=names["curve"],
            line=dict(color=TEMPERED, width=3),
            marker=dict(size=5),
            hovertemplate="%{x}: %{y:.3f}<extra></extra>",
        )
    ]
    shapes, annotations = [], []
    if top_p < 1.0:
        shapes.append(
            dict(
                type="line",
                xref="paper",
                x0=0,
                x1=1,
                y0=top_p,
                y1=top_p,
                line=dict(color=FINAL, dash="dash", width=2),
            )
        )
        annotations.append(
            dict(
                x=1,
                xref="paper",
                y=top_p,
                text=f"{names['threshold']} = {top_p:g}",
                showarrow=False,
                xanchor="right",
                yshift=10,
                font=dict(color="#b45309"),
            )
        )
    if 1 <= nucleus_size <= len(cumulative):
        shapes.append(
            dict(
                type="line",
                yref="paper",
                y0=0,
                y1=1,
                x0=nucleus_size,
                x1=nucleus_size,
                line=dict(color=CHOSEN, dash="dot", width=2),
            )
        )
        data.append(
            go.Scatter(
                x=[nucleus_size],
                y=[cumulative[nucleus_size - 1]],
                mode="markers",
                name=names["nucleus"],
                marker=dict(color=CHOSEN, size=13, symbol="diamond"),
                hovertemplate=f"{html.escape(names['nucleus'])}: %{{x}}<extra></extra>",
            )
        )
    xaxis: dict = dict(title=names["rank"])
    if len(cumulative) > 30:  # log ranks: the first few candidates matter most
        xaxis.update(type="log", dtick=1)
    layout = _layout(
        title,
        subtitle,
        480,
        shapes=shapes,
        annotations=annotations,
        xaxis=xaxis,
        yaxis=dict(
            title=names["cumulative"],
            range=[0, 1.05],
            tickformat=".0%",
            gridcolor="#eef2f7",
            zeroline=False,
        ),
    )
    return go.Figure(data=data, layout=layout)


# --- HTML ------------------------------------------------------------------------------------------
def prob_color(prob: float) -> str:
    """Background for a token: green when the model was sure, through yellow, to red when unlikely."""
    p = min(max(prob, 0.0), 1.0)
    # hue 0 (red) .. 130 (green) on a log scale: 1% and below is red, 50% and above is green
    t = 0.0 if p <= 0.01 else min(1.0, math.log10(p / 0.01) / math.log10(50))
    return f"hsl({int(130 * t)}, 75%, 82%)"


@dataclass(frozen=True)
class ColoredPiece:
    text: str
    prob: float
    rank: int
    forced: bool
    tooltip: str


def colored_text_html(prompt: str, pieces: Sequence[ColoredPiece], legend: str, empty: str) -> str:
    """The prompt in plain ink, then each generated token on a background colored by its probability."""
    spans = []
    for piece in pieces:
        border = "2px dashed #dc2626" if piece.forced else "1px solid rgba(0,0,0,0.08)"
        spans.append(
            f"<span title='{html.escape(piece.tooltip, quote=True)}' style='background:"
            f"{prob_color(piece.prob)};border:{border};border-radius:4px;padding:1px 2px;"
            f"margin:0 1px;white-space:pre-wrap'>{html.escape(piece.text.replace(chr(10), '↵'))}"
            f"<sub style='font-size:0.6em;color:#374151'>{piece.rank}</sub></span>"
            + "<br>"
            * piece.text.count("\n")  # a newline token shows as ↵ and breaks the line
        )
    body = "".join(spans) if spans else f"<span style='color:#9ca3af'>{html.escape(empty)}</span>"
    scale = "".join(
        f"<span style='background:{prob_color(p)};padding:1px 6px;border-radius:3px;margin-right:2px'>"
        f"{p:.0%}</span>"
        for p in (0.01, 0.05, 0.2, 0.5)
    )
    return (
        "<div style='font-size:1.35em;line-height:2.0;padding:10px 14px;border:1px solid #e5e7eb;"
        "border-radius:8px;background:white;color:#111827'>"
        f"<span style='white-space:pre-wrap'>{html.escape(prompt)}</span>{body}</div>"
        f"<div style='font-size:0.85em;color:#4b5563;margin-top:4px'>{html.escape(legend)} {scale}</div>"
    )


def stat_cards_html(cards: Sequence[tuple[str, str, str]]) -> str:
    """Big numbers for the projector: (label, value, one-line explanation) each."""
    items = "".join(
        "<div style='flex:1 1 160px;border:1px solid #e5e7eb;border-radius:10px;padding:10px 12px;"
        "background:#f8fafc'>"
        f"<div style='font-size:0.85em;color:#4b5563'>{html.escape(label)}</div>"
        f"<div style='font-size:1.8em;font-weight:700;color:#312e81'>{html.escape(value)}</div>"
        f"<div style='font-size:0.8em;color:#6b7280'>{html.escape(hint)}</div></div>"
        for label, value, hint in cards
    )
    return f"<div style='display:flex;gap:10px;flex-wrap:wrap'>{items}</div>"
