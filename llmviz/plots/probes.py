"""Figures of the bias and in-context-learning labs.

Plain numbers and labels in, ``go.Figure`` out; the scoring is done by ``llmviz.bias`` and
``llmviz.icl``. All visible words arrive as arguments (the student's language). Colours are the
Okabe-Ito colour-blind-safe pair (blue / orange) used for "first" and "second" everywhere here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llmviz.plots.palette import BLUE, GREEN, GREY, ORANGE, PURPLE, SKY

FONT = {"size": 15}


@dataclass(frozen=True)
class BiasPanel:
    """One model's bars: per filler, the two continuations' probabilities and their ratio."""

    name: str
    fillers: Sequence[str]
    first: Sequence[float]  # P(first continuation)
    second: Sequence[float]
    ratios: Sequence[float]  # first / second


def _ratio_text(r: float) -> str:
    if r >= 1:
        return f"×{r:.2g}" if r < 10 else f"×{r:,.0f}"
    return f"1/{1 / r:.2g}" if r > 0.1 else f"1/{1 / r:,.0f}"


def bias_figure(panels: Sequence[BiasPanel], targets: tuple[str, str], title: str, x_title: str, ratio_word: str) -> go.Figure:
    """Paired horizontal bars (one pair per filler), one panel per model, the ratio at the end."""
    fig = make_subplots(rows=1, cols=len(panels), shared_yaxes=True, subplot_titles=[p.name for p in panels],
                        horizontal_spacing=0.06)  # fmt: skip
    names = [f"“{targets[0].strip()}”", f"“{targets[1].strip()}”"]
    for c, p in enumerate(panels, start=1):
        top = max([*p.first, *p.second, 1e-9])
        for k, (vals, colour) in enumerate(((p.first, BLUE), (p.second, ORANGE))):
            fig.add_trace(
                go.Bar(
                    y=list(p.fillers), x=[v * 100 for v in vals], orientation="h", name=names[k],
                    marker_color=colour, legendgroup=names[k], showlegend=c == 1,
                    hovertemplate="%{y}: %{x:.3g} %<extra>" + names[k] + "</extra>",
                ),
                row=1, col=c,
            )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                y=list(p.fillers), x=[top * 100 * 1.08] * len(p.fillers), mode="text",
                text=[_ratio_text(r) for r in p.ratios], textposition="middle right",
                textfont={"size": 13, "color": "#111827"}, showlegend=False,
                hovertemplate="%{y}: " + ratio_word + " %{text}<extra></extra>",
            ),
            row=1, col=c,
        )  # fmt: skip
        fig.update_xaxes(title_text=x_title, range=[0, top * 100 * 1.35], row=1, col=c)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(
        barmode="group", title={"text": title, "x": 0.01, "font": {"size": 18}}, font=FONT,
        height=max(360, 70 + 44 * len(panels[0].fillers)), margin={"l": 110, "r": 20, "t": 90, "b": 60},
        plot_bgcolor="white", legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        hoverlabel={"font": {"size": 15}},
    )  # fmt: skip
    fig.update_xaxes(showgrid=True, gridcolor="#e5e7eb", zeroline=False)
    return fig


def accuracy_figure(
    labels: Sequence[str], correct: Sequence[int], totals: Sequence[int], title: str, y_title: str, chance: str | None
) -> go.Figure:
    """Accuracy bars with their counts ("31 / 48"), a dashed line at chance (50 %)."""
    colours = [GREY, BLUE, ORANGE, GREEN, PURPLE, SKY]
    acc = [100 * c / n if n else 0.0 for c, n in zip(correct, totals, strict=True)]
    fig = go.Figure(
        go.Bar(
            x=list(labels), y=acc, marker_color=colours[: len(labels)],
            text=[f"{c} / {n}" for c, n in zip(correct, totals, strict=True)], textposition="outside",
            textfont={"size": 15}, hovertemplate="%{x}: %{y:.0f} % (%{text})<extra></extra>",
        )
    )  # fmt: skip
    if chance:
        fig.add_hline(y=50, line_dash="dash", line_color="#9ca3af", annotation_text=chance,
                      annotation_position="top left")  # fmt: skip
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 18}}, font=FONT, height=420,
        margin={"l": 70, "r": 20, "t": 80, "b": 60}, plot_bgcolor="white", showlegend=False,
        hoverlabel={"font": {"size": 15}},
    )  # fmt: skip
    fig.update_yaxes(title_text=y_title, range=[0, 112], showgrid=True, gridcolor="#e5e7eb")
    return fig
