"""The fine-tuning lesson's figure: the training loss, step by step, as it arrives."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from llmviz.plots.axes import y_title_annotation
from llmviz.plots.compare import FONT

LOSS_COLOR = "#4f46e5"
PROBE_COLOR = "#f59e0b"


def loss_figure(
    steps: Sequence[int],
    losses: Sequence[float],
    total_steps: int,
    *,
    x_title: str,
    y_title: str,
    probe_steps: Sequence[int] = (),
    probe_label: str = "",
    empty_text: str = "",
) -> go.Figure:
    """Loss per step (a line with points), the x axis fixed to the whole run so the curve grows
    from left to right; dotted lines mark the steps where the probe question was answered."""
    fig = go.Figure()
    notes = [y_title_annotation(y_title)]
    if steps:
        fig.add_trace(
            go.Scatter(
                x=list(steps), y=list(losses), mode="lines+markers", name=y_title,
                line=dict(color=LOSS_COLOR, width=2), marker=dict(size=5),
                hovertemplate="step %{x}<br>loss %{y:.3f}<extra></extra>",
            )
        )  # fmt: skip
    elif empty_text:
        notes.append(dict(text=empty_text, showarrow=False, x=0.5, y=0.5, xref="paper",
                          yref="paper", font=dict(size=14, color="#6b7280")))  # fmt: skip
    shapes = [
        dict(type="line", x0=s, x1=s, y0=0, y1=1, yref="paper",
             line=dict(color=PROBE_COLOR, width=1, dash="dot"))
        for s in probe_steps
    ]  # fmt: skip
    if probe_steps and probe_label:
        notes.append(dict(text=probe_label, showarrow=False, x=1, y=1, xref="paper", yref="paper",
                          xanchor="right", yanchor="bottom", yshift=8,
                          font=dict(size=12, color=PROBE_COLOR)))  # fmt: skip
    fig.update_layout(
        height=320,
        margin=dict(l=60, r=30, t=50, b=50),
        font=FONT,
        plot_bgcolor="white",
        paper_bgcolor="white",
        showlegend=False,
        annotations=notes,
        shapes=shapes,
        xaxis=dict(title=x_title, range=[0, max(total_steps, 1) + 0.5], gridcolor="#eef2f7",
                   zeroline=False),
        yaxis=dict(rangemode="tozero", gridcolor="#eef2f7", zeroline=False),
    )  # fmt: skip
    return fig
