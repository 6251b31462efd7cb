"""Figures for the "GPU vs CPU" lab: time against list size (log-log), and the 百ます計算 grids.

Plain numbers and labels in, ``go.Figure`` out; the timing is done by ``llmviz.speed_lab``. Every
visible word arrives as an argument (the student's language). Colours are the Okabe-Ito
colour-blind-safe set, and each method also has its own marker shape.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llmviz.plots.axes import horizontal_y_title
from llmviz.plots.palette import BLUE, GREEN, LIGHT, ORANGE, PURPLE, VERMILLION

FONT = {"size": 15}
#: Okabe & Ito (2008): distinguishable with every common colour-vision deficiency.
COLOURS = {
    "python": VERMILLION,
    "numpy": BLUE,
    "torch_1": GREEN,
    "torch_all": PURPLE,
    "cuda": ORANGE,
}
SYMBOLS = {
    "python": "circle",
    "numpy": "square",
    "torch_1": "diamond",
    "torch_all": "triangle-up",
    "cuda": "star",
}
EMPTY, FILLED, NEW = LIGHT, BLUE, ORANGE  # grid cells: to do, done, done this step


def seconds_text(s: float) -> str:
    """A duration with an SI unit, 3 significant digits.

    >>> seconds_text(3.49e-7), seconds_text(0.0024), seconds_text(1.5), seconds_text(2e-10)
    ('349 ns', '2.4 ms', '1.5 s', '0.2 ns')
    """
    if not math.isfinite(s):
        return str(s)
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(s) >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def size_text(n: int) -> str:
    """``10⁶`` for a power of ten, else the number with separators (``5,000``)."""
    exp = round(math.log10(n)) if n > 0 else 0
    if n > 0 and 10**exp == n and exp > 1:
        return "10" + str(exp).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"{n:,}"


@dataclass(frozen=True)
class Series:
    """One method's measured points (never an estimate): sizes, seconds per call, hover lines."""

    key: str  # "python", "numpy", ... (picks the colour and the marker)
    name: str
    sizes: Sequence[int]
    seconds: Sequence[float]
    hover: Sequence[str]


def _time_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    exps = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    vals = [10.0**e for e in exps]
    return vals, [seconds_text(v) for v in vals]


def timing_figure(series: Sequence[Series], words: dict[str, str]) -> go.Figure:
    """Seconds per call against list size, both axes logarithmic. ``words``: "title",
    "subtitle" (the machine), "x", "y"."""
    fig = go.Figure()
    for s in series:
        fig.add_trace(
            go.Scatter(
                x=list(s.sizes),
                y=list(s.seconds),
                name=s.name,
                mode="lines+markers",
                line={"color": COLOURS.get(s.key, "#000000"), "width": 3},
                marker={"symbol": SYMBOLS.get(s.key, "circle"), "size": 11},
                text=[html.escape(h) for h in s.hover],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    times = [t for s in series for t in s.seconds if t > 0]
    sizes = [n for s in series for n in s.sizes]
    title = f"{html.escape(words['title'])}<br><sup>{html.escape(words['subtitle'])}</sup>"
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 18}},
        font=FONT,
        height=560,
        margin={"l": 80, "r": 30, "t": 110, "b": 60},
        plot_bgcolor="white",
        legend={"bgcolor": "rgba(255,255,255,0.85)", "font": {"size": 14}, "x": 0.01, "y": 0.99},
        hoverlabel={"font": {"size": 15}},
    )
    fig.update_xaxes(
        type="log", title=words["x"], showgrid=True, gridcolor="#e5e7eb", zeroline=False,
        exponentformat="power", dtick=1,
    )  # fmt: skip
    fig.update_yaxes(type="log", showgrid=True, gridcolor="#e5e7eb", zeroline=False)
    if times:
        vals, labels = _time_ticks(min(times), max(times))
        fig.update_yaxes(tickvals=vals, ticktext=labels)
    if sizes:
        fig.update_xaxes(range=[math.log10(min(sizes)) - 0.2, math.log10(max(sizes)) + 0.2])
    return horizontal_y_title(fig, words["y"])


@dataclass(frozen=True)
class Grid:
    """One 百ます panel: when each cell is filled (step, 1-based), who filled it, the sums."""

    title: str
    done_at: np.ndarray  # (10, 10) int
    hover: list[list[str]]  # (10, 10)
    rows: Sequence[int]  # the digit down the side
    cols: Sequence[int]  # the digit along the top


def _step_scale(step: int, top: int) -> list[list[float | str]]:
    """A colour scale over z = 0..top making cells with done_at < step blue, == step orange,
    > step grey (cells hold whole numbers, so the edges sit halfway between them)."""
    scale: list[list[float | str]] = []

    def band(a: float, b: float, colour: str) -> None:
        a, b = (round(max(0.0, min(1.0, v / top)), 5) for v in (a, b))
        if b > a:
            scale.extend([[a, colour], [b, colour]])

    band(0, step - 0.5, FILLED)
    band(step - 0.5, step + 0.5, NEW)
    band(step + 0.5, top, EMPTY)
    scale[0][0], scale[-1][0] = 0.0, 1.0
    return scale


def hyakumasu_figure(grids: Sequence[Grid], words: dict[str, str], start: int = 10) -> go.Figure:
    """The grids side by side with a slider "after step s" (0 to the slowest grid's steps):
    filled cells blue, the cells of step s orange, the rest grey. ``words``: "title", "legend"
    (what the colours mean), and "step_prefix" / "step_suffix" around the slider's number."""
    top = max(int(g.done_at.max()) for g in grids) + 1  # z range 0..top
    fig = make_subplots(
        rows=1, cols=len(grids), subplot_titles=[html.escape(g.title) for g in grids],
        horizontal_spacing=0.035,
    )  # fmt: skip
    start = max(0, min(start, top - 1))
    for k, g in enumerate(grids, start=1):
        fig.add_trace(
            go.Heatmap(
                z=g.done_at.tolist(),
                zmin=0,
                zmax=top,
                colorscale=_step_scale(start, top),
                showscale=False,
                xgap=2,
                ygap=2,
                text=[[html.escape(h) for h in row] for row in g.hover],
                hovertemplate="%{text}<extra></extra>",
            ),
            row=1,
            col=k,
        )
        fig.update_xaxes(
            tickvals=list(range(10)), ticktext=[str(c) for c in g.cols], side="top",
            showgrid=False, zeroline=False, constrain="domain", row=1, col=k,
        )  # fmt: skip
        fig.update_yaxes(
            tickvals=list(range(10)), ticktext=[str(r) for r in g.rows], autorange="reversed",
            showgrid=False, zeroline=False, scaleanchor=f"x{k if k > 1 else ''}", row=1, col=k,
        )  # fmt: skip
    n = len(grids)
    steps = [
        {
            "label": str(s),
            "method": "restyle",
            "args": [{"colorscale": [_step_scale(s, top)] * n}],
        }
        for s in range(top)
    ]
    fig.update_layout(
        title={
            "text": f"{html.escape(words['title'])}<br><sup>{html.escape(words['legend'])}</sup>",
            "x": 0.01,
            "font": {"size": 18},
        },
        font=FONT,
        height=450,
        margin={"l": 30, "r": 20, "t": 140, "b": 40},
        plot_bgcolor="white",
        hoverlabel={"font": {"size": 15}},
        sliders=[
            {
                "active": start,
                "steps": steps,
                "currentvalue": {
                    "prefix": words["step_prefix"],
                    "suffix": words["step_suffix"],
                    "font": {"size": 15},
                },
                "pad": {"t": 30},
                "len": 1.0,
            }
        ],
    )
    fig.update_annotations(font_size=14, yshift=24)  # the subplot titles, above the digits
    return fig
