"""Figures for the base-vs-instruct tab: the first answer token's top candidates, side by side.

Plain labels and probabilities in (``compare.Candidates``), ``go.Figure`` out. Bars sit on integer
positions with ``ticktext`` labels, so two candidates that look alike are never merged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

BASE = "#f59e0b"  # amber-500: the base model (left column)
INSTRUCT = "#4f46e5"  # indigo-600: the instruct model (right column)
FONT = dict(size=15, family="Noto Sans CJK JP, Noto Sans JP, system-ui, sans-serif")
MAX_LABEL = 14


@dataclass(frozen=True)
class Panel:
    title: str
    labels: Sequence[str]
    probs: Sequence[float]
    color: str


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def first_token_figure(panels: Sequence[Panel], x_title: str, empty_text: str = "") -> go.Figure:
    """One horizontal bar chart per panel (most likely on top), sharing the probability axis."""
    panels = list(panels)
    cols = max(1, len(panels))
    fig = make_subplots(
        rows=1,
        cols=cols,
        subplot_titles=[p.title for p in panels] or [""],
        horizontal_spacing=0.18,
    )
    top = max((max(p.probs) for p in panels if len(p.probs)), default=1.0)
    for col, panel in enumerate(panels, start=1):
        n = len(panel.labels)
        y = list(range(n))
        fig.add_bar(
            x=list(panel.probs),
            y=y,
            orientation="h",
            marker_color=panel.color,
            text=[f"{p:.0%}" if p >= 0.01 else f"{p:.1%}" for p in panel.probs],
            textposition="outside",
            cliponaxis=False,
            customdata=list(panel.labels),
            hovertemplate="%{customdata}<br>p = %{x:.4f}<extra></extra>",
            showlegend=False,
            row=1,
            col=col,
        )
        fig.update_yaxes(
            tickvals=y,
            ticktext=[_short(lab) for lab in panel.labels],
            autorange="reversed",
            tickfont=dict(size=15),
            row=1,
            col=col,
        )
        fig.update_xaxes(
            range=[0, min(1.0, top * 1.25)],
            tickformat=".0%",
            title_text=x_title,
            gridcolor="#eef2f7",
            row=1,
            col=col,
        )
    if not panels and empty_text:
        fig.add_annotation(
            text=empty_text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper"
        )
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
    fig.update_layout(
        height=360,
        margin=dict(l=110, r=40, t=60, b=50),
        font=FONT,
        plot_bgcolor="white",
        paper_bgcolor="white",
        bargap=0.3,
    )
    fig.update_annotations(font=dict(size=16))
    return fig
