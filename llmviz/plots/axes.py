"""Axis titles shared by every lesson's figures.

Plotly turns a y axis's title 90°: Japanese (and any long title) then runs sideways. These put
it horizontally above the axis instead, as an annotation, so it reads left to right.
"""

from __future__ import annotations

import plotly.graph_objects as go


def y_title_annotation(title: str) -> dict:
    """The annotation for a horizontal y title (for figures built from one layout dict)."""
    return dict(
        text=title,
        xref="paper",
        yref="paper",
        x=0,
        y=1,
        xanchor="left",
        yanchor="bottom",
        yshift=8,
        showarrow=False,
        textangle=0,
        font=dict(size=13, color="#374151"),
        name="y-title",
    )


def horizontal_y_title(fig: go.Figure, title: str) -> go.Figure:
    """``fig`` with its y title written horizontally above the axis (see the module docstring)."""
    fig.update_yaxes(title=None)
    fig.add_annotation(**y_title_annotation(title))
    return fig
