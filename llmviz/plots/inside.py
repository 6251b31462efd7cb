"""Figures for the "inside the model" tab: a token's path through the layers, the word map, the
KV-cache meter; and the colours of the logit-lens grid (a table, so a cell can be clicked).

Plain numbers and already-translated strings in, ``go.Figure`` / CSS out.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from llmviz.plots.axes import y_title_annotation

FONT = dict(size=15, family="Noto Sans CJK JP, Noto Sans JP, system-ui, sans-serif")
PROB = "#4f46e5"  # indigo-600
RANK = "#f59e0b"  # amber-500
MEASURED = "#dc2626"  # red-600
FORMULA = "#4f46e5"
MHA = "#9ca3af"  # gray-400


def _layout(title: str, subtitle: str, height: int, **extra: object) -> dict:
    return dict(
        title=dict(
            text=f"{html.escape(title)}<br><sup>{html.escape(subtitle)}</sup>",
            x=0.01, y=0.96, yref="container", yanchor="top", font=dict(size=17),
        ),
        height=height,
        margin=dict(l=60, r=60, t=110, b=110),
        font=FONT,
        plot_bgcolor="white",
        paper_bgcolor="white",
        # below the x title: above the plot it ran into the horizontal y title
        legend=dict(orientation="h", yanchor="top", y=-0.3, xanchor="left", x=0.0),
        **extra,
    )  # fmt: skip


def lens_cell_style(prob: float) -> str:
    """CSS of one lens cell: white (unsure) to deep indigo (sure), readable ink on both; a
    colour-blind-safe single-hue ramp (lightness only)."""
    p = float(np.clip(prob, 0.0, 1.0)) if np.isfinite(prob) else 0.0
    lightness = 97 - 62 * p**0.6  # 97 % (white-ish) .. 35 %
    ink = "#ffffff" if lightness < 58 else "#111827"
    return f"background-color: hsl(239, 70%, {lightness:.0f}%); color: {ink}"


def target_figure(
    layer_names: Sequence[str],
    probs: Sequence[float],
    ranks: Sequence[int],
    title: str,
    subtitle: str,
    prob_name: str,
    rank_name: str,
    x_title: str,
) -> go.Figure:
    """A token's probability (left axis) and rank (right axis, log, 1 at the top) per layer."""
    x = list(range(len(layer_names)))
    hover_p = [f"{n}: {p:.2%}" for n, p in zip(layer_names, probs, strict=True)]
    hover_r = [f"{n}: #{int(r):,}" for n, r in zip(layer_names, ranks, strict=True)]
    data = [
        go.Scatter(x=x, y=[float(p) for p in probs], name=prob_name, mode="lines+markers",
                   line=dict(color=PROB, width=3), hovertext=hover_p, hoverinfo="text"),
        go.Scatter(x=x, y=[int(r) for r in ranks], name=rank_name, mode="lines+markers", yaxis="y2",
                   line=dict(color=RANK, width=2, dash="dot"), marker=dict(symbol="diamond"),
                   hovertext=hover_r, hoverinfo="text"),
    ]  # fmt: skip
    layout = _layout(
        title, subtitle, 440,
        # x = the layer number, 0 = the embeddings (the x title says so; full names in the hover);
        # plotly thins the ticks to the width (narrow screens)
        xaxis=dict(title=x_title, showgrid=False, rangemode="tozero"),
        yaxis=dict(range=[0, 1.02], tickformat=".0%", gridcolor="#eef2ff", title=None),
        yaxis2=dict(overlaying="y", side="right", type="log", autorange="reversed", dtick=1,
                    title=None, showgrid=False, tickfont=dict(color=RANK)),
        annotations=[y_title_annotation(prob_name)],
    )  # fmt: skip
    return go.Figure(data=data, layout=layout)


def word_map_figure(
    labels: Sequence[str], points: np.ndarray, title: str, subtitle: str, x_title: str, y_title: str
) -> go.Figure:
    """The words at their first two principal components, each labelled."""
    pts = np.asarray(points, dtype=float)
    data = [
        go.Scatter(
            x=pts[:, 0], y=pts[:, 1], mode="markers+text", text=list(labels),
            textposition="top center", marker=dict(size=11, color=PROB, opacity=0.85),
            hovertext=list(labels), hoverinfo="text", textfont=dict(size=15),
        )
    ]  # fmt: skip
    pad_x = max(float(np.ptp(pts[:, 0])) * 0.12, 1e-3)
    pad_y = max(float(np.ptp(pts[:, 1])) * 0.15, 1e-3)
    layout = _layout(
        title, subtitle, 520, showlegend=False,
        xaxis=dict(title=x_title, zeroline=True, zerolinecolor="#e5e7eb", showgrid=False,
                   range=[pts[:, 0].min() - pad_x, pts[:, 0].max() + pad_x]),
        yaxis=dict(title=None, zeroline=True, zerolinecolor="#e5e7eb", showgrid=False,
                   range=[pts[:, 1].min() - pad_y, pts[:, 1].max() + pad_y * 1.5]),
        annotations=[y_title_annotation(y_title)],
    )  # fmt: skip
    return go.Figure(data=data, layout=layout)


def kv_figure(
    tokens: Sequence[int],
    measured: Sequence[int],
    formula: Sequence[int],
    without_gqa: Sequence[int],
    names: tuple[str, str, str],
    title: str,
    subtitle: str,
    x_title: str,
    y_title: str,
) -> go.Figure:
    """Cache bytes (as KB) against tokens held: measured tensors, the formula, and the same
    model without grouped-query attention."""
    kb = lambda values: [v / 1024 for v in values]  # noqa: E731
    data = [
        go.Scatter(x=list(tokens), y=kb(without_gqa), name=names[2], mode="lines",
                   line=dict(color=MHA, width=2, dash="dash")),
        go.Scatter(x=list(tokens), y=kb(formula), name=names[1], mode="lines",
                   line=dict(color=FORMULA, width=3)),
        go.Scatter(x=list(tokens), y=kb(measured), name=names[0], mode="markers",
                   marker=dict(color=MEASURED, size=6)),
    ]  # fmt: skip
    layout = _layout(
        title, subtitle, 420,
        xaxis=dict(title=x_title, showgrid=False, rangemode="tozero"),
        yaxis=dict(title=None, gridcolor="#f3f4f6", rangemode="tozero"),
        annotations=[y_title_annotation(y_title)],
    )  # fmt: skip
    return go.Figure(data=data, layout=layout)
