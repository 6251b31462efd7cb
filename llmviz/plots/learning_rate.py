"""Figures for the learning-rate lab: descent paths on a bowl, loss per step, the bigram training
curves with their reference lines, and the warm-up + cosine schedule.

Plain arrays and labels in, ``go.Figure`` out; the maths is in ``llmviz.learning_rate``. Every
visible word arrives as an argument (the caller passes the student's language). Colours are the
Okabe-Ito palette (distinguishable with the common colour-vision deficiencies), and each curve
also has its own dash and marker, so colour is never the only cue.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from llmviz.plots.axes import horizontal_y_title
from llmviz.plots.palette import OKABE_ITO

FONT = {"size": 15}
DASHES = ["solid", "dash", "dot", "dashdot", "longdash"]
SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x"]


@dataclass(frozen=True)
class Curve:
    """One line: its legend name, x and y values, and an optional mark at its end (a run that
    diverged or left the chart)."""

    name: str
    x: np.ndarray
    y: np.ndarray
    end_mark: bool = False


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 18}},
        font=FONT,
        height=height,
        margin={"l": 70, "r": 30, "t": 90, "b": 60},
        plot_bgcolor="white",
        legend={"bgcolor": "rgba(255,255,255,0.85)", "font": {"size": 14}},
        hoverlabel={"font": {"size": 15}},
    )
    fig.update_xaxes(showgrid=True, gridcolor="#e5e7eb", zeroline=False)
    fig.update_yaxes(showgrid=True, gridcolor="#e5e7eb", zeroline=False)
    return fig


def _style(k: int) -> dict:
    return {
        "line": {
            "color": OKABE_ITO[k % len(OKABE_ITO)],
            "width": 3,
            "dash": DASHES[k % len(DASHES)],
        },
        "marker": {
            "symbol": SYMBOLS[k % len(SYMBOLS)],
            "size": 8,
            "line": {"color": "white", "width": 1},
        },
    }


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Readable ticks for a log axis from ``lo`` to ``hi`` (> 0): more per decade when it spans
    few decades, every k-th power of ten when it spans many.

    >>> log_ticks(2.0, 29.0)[1]
    ['2', '3', '5', '10', '20']
    """
    span = math.log10(hi / lo)
    if span <= 0.7:
        mantissas: tuple[float, ...] = (1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9)
    elif span <= 1.5:
        mantissas = (1, 2, 3, 5)
    elif span <= 3:
        mantissas = (1, 2, 5)
    else:
        mantissas = (1,)
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    every = max(1, math.ceil(span / 8))
    vals = [
        m * 10.0**e for e in decades if e % every == 0 for m in mantissas if lo <= m * 10.0**e <= hi
    ]
    return vals, [f"{v:g}" for v in vals]


def _log_axis(fig: go.Figure, lo: float, hi: float) -> None:
    vals, labels = log_ticks(lo, hi)
    fig.update_yaxes(
        type="log", range=[math.log10(lo), math.log10(hi)], tickvals=vals, ticktext=labels
    )


def _finite(c: Curve) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(c.y)
    return c.x[keep], c.y[keep]


def bowl_figure(
    grid: np.ndarray,  # (G,) coordinates of the square drawn, both axes
    loss: np.ndarray,  # (G, G) the loss at (grid[j], grid[i]) (row i = y)
    paths: Sequence[Curve],  # x, y = θ's coordinates, one point per step
    words: dict[str, str],  # title, x, y, loss, start, minimum, step
) -> go.Figure:
    """Contour lines of the bowl (log-spaced levels) and each descent path drawn on top; the
    axes are fixed to ``grid``, so a path that leaves it is clipped at its edge."""
    levels = np.log10(np.maximum(loss, 1e-12))
    lo, hi = (
        max(float(levels.min()), math.log10(max(float(loss.max()), 1e-9)) - 4),
        float(levels.max()),
    )
    ticks = np.arange(math.ceil(lo), math.floor(hi) + 1)
    fig = go.Figure(
        go.Contour(
            x=grid, y=grid, z=levels, customdata=loss, colorscale="Viridis",
            contours={"coloring": "lines", "start": lo, "end": hi, "size": (hi - lo) / 14},
            line={"width": 1.6}, zmin=lo, zmax=hi,
            colorbar={"title": {"text": words["loss"], "side": "top", "font": {"size": 13}},
                      "tickvals": ticks, "ticktext": [f"{10.0**t:g}" for t in ticks], "len": 0.85},
            hovertemplate="θ = (%{x:.2f}, %{y:.2f})<br>L = %{customdata:.3g}<extra></extra>",
            name=words["loss"], showlegend=False,
        )
    )  # fmt: skip
    step = html.escape(words["step"])
    for k, p in enumerate(paths):
        name = html.escape(p.name)
        fig.add_trace(
            go.Scatter(
                x=p.x, y=p.y, mode="lines+markers", name=p.name, **_style(k),
                customdata=np.arange(len(p.x)), cliponaxis=True,
                hovertemplate=f"{name}<br>{step} %{{customdata}}: θ = (%{{x:.3g}}, %{{y:.3g}})<extra></extra>",
            )
        )  # fmt: skip
    if paths:
        first = paths[0]
        fig.add_trace(go.Scatter(
            x=[first.x[0]], y=[first.y[0]], mode="markers+text", text=[words["start"]],
            textposition="top center", name=words["start"], showlegend=False, hoverinfo="skip",
            marker={"size": 16, "color": "white", "line": {"color": "#111827", "width": 3}},
        ))  # fmt: skip
    fig.add_trace(go.Scatter(
        x=[0], y=[0], mode="markers+text", text=[words["minimum"]], textposition="bottom center",
        marker={"size": 16, "symbol": "star", "color": "#111827"}, name=words["minimum"],
        showlegend=False, hoverinfo="skip",
    ))  # fmt: skip
    edge = [float(grid[0]), float(grid[-1])]
    fig.update_xaxes(range=edge, title=words["x"], constrain="domain")
    fig.update_yaxes(range=edge, scaleanchor="x", scaleratio=1, constrain="domain")
    horizontal_y_title(fig, words["y"])
    fig.update_layout(legend={"orientation": "h", "y": -0.14, "x": 0})
    return _layout(fig, words["title"], height=640)


def loss_figure(curves: Sequence[Curve], words: dict[str, str], log_y: bool = True) -> go.Figure:
    """Loss against step, one line per curve (log y: a crawl and a blow-up on one chart); a
    curve with ``end_mark`` ends in a cross."""
    fig = go.Figure()
    drawn = []
    for k, c in enumerate(curves):
        x, y = _finite(c)
        if log_y:
            keep = y > 0
            x, y = x[keep], y[keep]
        drawn.append(y)
        style = _style(k)
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="lines+markers" if len(x) <= 60 else "lines", name=c.name, **style,
            hovertemplate=f"{html.escape(c.name)}<br>{html.escape(words['x'])} %{{x}}: %{{y:.4g}}<extra></extra>",
        ))  # fmt: skip
        if c.end_mark and len(x):
            fig.add_trace(go.Scatter(
                x=[x[-1]], y=[y[-1]], mode="markers", showlegend=False, hoverinfo="skip",
                marker={"symbol": "x", "size": 16, "color": style["line"]["color"],
                        "line": {"color": "#111827", "width": 1}},
            ))  # fmt: skip
    fig.update_xaxes(title=words["x"], rangemode="tozero")
    values = np.concatenate(drawn) if drawn else np.array([])
    if log_y and values.size:
        lo, hi = float(values.min()), float(values.max())
        _log_axis(fig, lo / 1.3, max(hi, lo * 1.5) * 1.3)
    horizontal_y_title(fig, words["y"])
    fig.update_layout(legend={"orientation": "h", "y": -0.22, "yanchor": "top", "x": 0})
    return _layout(fig, words["title"], height=500)


def training_figure(
    curves: Sequence[Curve],
    references: Sequence[tuple[str, float]],  # (label, loss): ln V, the bigram bound
    steps: int,
    words: dict[str, str],  # title, x, y
    top: float,  # the highest loss drawn (a blow-up is clipped there)
) -> go.Figure:
    """The training runs' losses on a log axis, with horizontal reference lines."""
    fig = loss_figure(curves, words)
    for k, (label, value) in enumerate(references):
        fig.add_trace(go.Scatter(
            x=[0, steps], y=[value, value], mode="lines", name=f"{label} = {value:.3f}",
            line={"color": "#4b5563" if k == 0 else "#111827", "width": 2, "dash": "dot" if k == 0 else "longdashdot"},
            hovertemplate=f"{html.escape(label)} = {value:.4f}<extra></extra>",
        ))  # fmt: skip
    lows = [v for _, v in references] + [
        float(np.nanmin(c.y)) for c in curves if len(_finite(c)[1])
    ]
    low = max(min(lows), 1e-3)
    fig.update_xaxes(range=[0, steps])
    _log_axis(fig, low * 0.9, max(top, low * 1.5) * 1.1)
    return fig


def schedule_figure(
    steps: np.ndarray,
    lrs: np.ndarray,
    warmup: int,
    peak: float,
    final: float,
    words: dict[str, str],  # title, x, y, warmup, peak, final, lr
) -> go.Figure:
    """The learning rate over a run: the warm-up shaded, the peak and the final value marked."""
    fig = go.Figure()
    if warmup > 0:
        fig.add_vrect(x0=0, x1=warmup, fillcolor="#E69F00", opacity=0.15, line_width=0,
                      annotation_text=words["warmup"], annotation_position="top left")  # fmt: skip
    fig.add_trace(go.Scatter(
        x=steps, y=lrs, mode="lines", name=words["lr"], line={"color": OKABE_ITO[0], "width": 3.5},
        hovertemplate=f"{html.escape(words['x'])} %{{x:,}}<br>{html.escape(words['lr'])} = %{{y:.4g}}<extra></extra>",
    ))  # fmt: skip
    fig.add_trace(go.Scatter(
        x=[warmup], y=[peak], mode="markers+text", text=[words["peak"]], textposition="top right",
        marker={"size": 14, "symbol": "diamond", "color": OKABE_ITO[3], "line": {"color": "white", "width": 1}},
        name=words["peak"], hovertemplate=f"{html.escape(words['peak'])}<extra></extra>",
    ))  # fmt: skip
    fig.add_trace(go.Scatter(
        x=[steps[0], steps[-1]], y=[final, final], mode="lines", name=words["final"],
        line={"color": OKABE_ITO[2], "width": 2, "dash": "dot"},
        hovertemplate=f"{html.escape(words['final'])}<extra></extra>",
    ))  # fmt: skip
    fig.update_xaxes(title=words["x"], range=[0, float(steps[-1])], tickformat=",")
    fig.update_yaxes(rangemode="tozero", range=[0, peak * 1.18], exponentformat="e")
    horizontal_y_title(fig, words["y"])
    fig.update_layout(legend={"orientation": "h", "y": -0.2, "x": 0})
    return _layout(fig, words["title"], height=440)
