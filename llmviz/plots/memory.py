"""Figures for the quantization & memory tab.

Plain numbers and already-translated labels in, ``go.Figure`` out: the stacked memory bar with
GPU lines, predicted vs measured bars, the weight histogram before/after, and the pixel view of a
weight patch. Categories are plotted on integer positions with tick labels (plotly merges repeated
category labels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llmviz.plots.axes import horizontal_y_title
from llmviz.plots.palette import BLACK, BLUE, GREEN, LIGHT, ORANGE, PURPLE, SKY, VERMILLION, YELLOW

FONT = dict(size=15, family="Noto Sans CJK JP, Noto Sans JP, system-ui, sans-serif")
#: one colour per component key, stable across figures
COLORS = {
    "weights": BLUE,
    "linear": BLUE,
    "embeddings": SKY,
    "lm_head": GREEN,
    "experts": PURPLE,
    "norms_bias": YELLOW,
    "constants": ORANGE,
    "buffers": BLACK,
    "kv_cache": VERMILLION,
    "overhead": LIGHT,
}


def _layout(fig: go.Figure, title: str, height: int, legend_below: bool = False) -> go.Figure:
    legend = (
        dict(orientation="h", yanchor="top", y=-0.12, x=0.0, font=dict(size=13))
        if legend_below
        else dict(
            orientation="h", yanchor="bottom", y=1.0, x=1.0, xanchor="right", font=dict(size=13)
        )
    )
    fig.update_layout(
        title=dict(text=title, x=0.01, font=dict(size=17)),
        font=FONT,
        height=height,
        margin=dict(l=60, r=20, t=84, b=50),
        plot_bgcolor="white",
        legend=legend,
    )
    fig.update_yaxes(gridcolor="#e5e7eb", zeroline=False)
    return fig


def memory_bars(
    columns: Sequence[str],
    components: Sequence[tuple[str, str, Sequence[float]]],
    gpu_lines: Sequence[tuple[str, float]],
    title: str,
    y_label: str,
) -> go.Figure:
    """Stacked bars: one column per precision; ``components`` = (key, label, GB per column).

    ``gpu_lines`` = (label, GB) drawn as dashed lines (a card holds what is below its line).
    """
    fig = go.Figure()
    x = list(range(len(columns)))
    totals = np.zeros(len(columns))
    for key, label, values in components:
        vals = np.asarray(values, dtype=float)
        if not np.any(vals > 0):
            continue
        totals += vals
        fig.add_bar(
            x=x,
            y=vals,
            name=label,
            marker=dict(color=COLORS.get(key, "#64748b"), line=dict(width=0)),
            hovertemplate=f"{label}: %{{y:.3g}} GB<extra></extra>",
        )
    top = float(totals.max()) if len(totals) else 1.0
    shown = [(label, gb) for label, gb in gpu_lines if gb <= top * 1.6]  # lines near the bars only
    ceiling = max([top * 1.18] + [gb * 1.08 for _, gb in shown]) if top else 1.0
    for label, gb in shown:
        fig.add_hline(
            y=gb,
            line=dict(color="#dc2626", dash="dash", width=1.5),
            annotation=dict(text=label, font=dict(size=12, color="#b91c1c")),
            annotation_position="top right",
        )
    fig.add_scatter(
        x=x,
        y=totals,
        mode="text",
        text=[f"{t:.3g} GB" for t in totals],
        textposition="top center",
        showlegend=False,
        hoverinfo="skip",
        textfont=dict(size=14),
    )
    fig.update_layout(barmode="stack", bargap=0.35)
    fig.update_xaxes(tickmode="array", tickvals=x, ticktext=list(columns))
    fig.update_yaxes(rangemode="tozero", range=[0, ceiling])
    horizontal_y_title(fig, y_label)
    return _layout(fig, title, 560, legend_below=True)


def predicted_vs_measured(
    labels: Sequence[str],
    predicted_bytes: Sequence[float],
    measured_bytes: Sequence[float],
    names: tuple[str, str],
    title: str,
    y_label: str,
) -> go.Figure:
    """Predicted and measured bytes side by side, drawn in decimal MB (``y_label`` says so)."""
    x = list(range(len(labels)))
    predicted_mb = np.asarray(predicted_bytes, dtype=float) / 1e6
    measured_mb = np.asarray(measured_bytes, dtype=float) / 1e6
    fig = go.Figure()
    fig.add_bar(
        x=x,
        y=predicted_mb,
        name=names[0],
        marker_color="#a5b4fc",
        hovertemplate="%{y:.1f} MB<extra></extra>",
    )
    fig.add_bar(
        x=x,
        y=measured_mb,
        name=names[1],
        marker_color="#4338ca",
        hovertemplate="%{y:.1f} MB<extra></extra>",
    )
    fig.update_layout(barmode="group", bargap=0.3)
    fig.update_xaxes(tickmode="array", tickvals=x, ticktext=list(labels))
    fig.update_yaxes(rangemode="tozero")
    horizontal_y_title(fig, y_label)
    return _layout(fig, title, 380)


def weight_histogram(
    edges: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    names: tuple[str, str],
    title: str,
    x_label: str,
    y_label: str,
) -> go.Figure:
    """Counts per bin of the original and the quantized weights (log scale: spikes and tails both show)."""
    centers = (edges[:-1] + edges[1:]) / 2
    width = float(edges[1] - edges[0])
    fig = go.Figure()
    fig.add_bar(
        x=centers,
        y=before,
        width=width,
        name=names[0],
        marker_color="rgba(100,116,139,0.55)",
        hovertemplate="%{x:.4f}: %{y}<extra></extra>",
    )
    fig.add_bar(
        x=centers,
        y=after,
        width=width,
        name=names[1],
        marker_color="rgba(79,70,229,0.75)",
        hovertemplate="%{x:.4f}: %{y}<extra></extra>",
    )
    fig.update_layout(barmode="overlay", bargap=0)
    fig.update_xaxes(title=x_label)
    fig.update_yaxes(type="log")
    horizontal_y_title(fig, y_label)
    fig = _layout(fig, title, 400)
    fig.update_layout(
        title=dict(font=dict(size=15)),
        margin=dict(t=112),  # two title lines, then the horizontal y title
        legend=dict(
            orientation="v",
            x=0.99,
            xanchor="right",
            y=0.98,
            yanchor="top",
            bgcolor="rgba(255,255,255,0.8)",
        ),
    )
    return fig


def weight_patches(
    before: np.ndarray, after: np.ndarray, titles: tuple[str, str], title: str
) -> go.Figure:
    """The same patch of weights before and after, as pixels on one shared blue-white-red scale."""
    # the scale of the original: quantized values beyond it saturate (that is part of the lesson)
    limit = float(max(np.abs(before).max(), 1e-12))
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.06)
    for col, data in ((1, before), (2, after)):
        fig.add_heatmap(
            z=data.astype(np.float32),
            zmin=-limit,
            zmax=limit,
            colorscale="RdBu_r",
            zmid=0,
            showscale=col == 2,
            row=1,
            col=col,
            hovertemplate="row %{y}, col %{x}: %{z:.4f}<extra></extra>",
        )
        fig.update_yaxes(autorange="reversed", showticklabels=False, row=1, col=col)
        fig.update_xaxes(showticklabels=False, row=1, col=col)
    return _layout(fig, title, 330)
