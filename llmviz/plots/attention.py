"""Figures for the attention tab: one head's map, the all-heads overview, token focus, head stats.

Arrays and already-translated strings in, ``go.Figure`` (or a PNG-ready ``PIL.Image`` for the
overview) out; no attention maths here beyond mapping values to colours.

Payload matters (a class of 30 browsers): heatmaps send float32 arrays, which plotly 7 encodes as
base64 (4 bytes per cell); the overview of every head is a single picture, not hundreds of
plotly subplots, so 30 layers × 9 heads cost one small PNG and the browser can report which tile
was clicked. Cells the model cannot see (the future, or a hidden first token) are NaN: drawn in
the background grey, never as "zero attention".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

from llmviz.plots.axes import y_title_annotation

FONT = dict(size=15, family="Noto Sans CJK JP, Noto Sans JP, system-ui, sans-serif")
MASKED = "#e5e7eb"  # gray-200: cells a causal model cannot see
SELECTED = "#f59e0b"  # amber-500: the head shown in detail
GLOBAL = "#4f46e5"  # indigo-600: marks full-attention (global) layers in the overview
#: white -> indigo; dense stops at the bottom so 5-10 % attention is still visible next to 90 %.
SCALE = [
    (0.0, "#ffffff"),
    (0.03, "#e0e7ff"),
    (0.12, "#a5b4fc"),
    (0.3, "#6366f1"),
    (0.6, "#3730a3"),
    (1.0, "#1e1b4b"),
]
MAX_TICKS = 48  # more token labels than this overlap: label every k-th token


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def colorize(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to RGB uint8 with ``SCALE``; NaN becomes ``MASKED``. (..., 3) out."""
    v = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0)
    stops = [s for s, _ in SCALE]
    rgb = np.stack(
        [np.interp(v, stops, [_rgb(c)[ch] for _, c in SCALE]) for ch in range(3)], axis=-1
    )
    rgb[np.isnan(values)] = _rgb(MASKED)
    return rgb.round().astype(np.uint8)


def _ticks(labels: Sequence[str]) -> tuple[list[int], list[str], int]:
    """Every token's label when they fit, else every k-th (hover still names the exact cell)."""
    n = len(labels)
    step = max(1, -(-n // MAX_TICKS))
    vals = list(range(0, n, step))
    size = 14 if n <= 24 else 12 if n <= 48 else 10
    return vals, [labels[i] for i in vals], size


def _title(text: str) -> dict:
    return dict(text=text, x=0.01, font=dict(size=17))


def _token_axis(title: str, labels: Sequence[str], **extra: object) -> dict:
    vals, text, size = _ticks(labels)
    return dict(
        title=dict(text=title),
        tickmode="array",
        tickvals=vals,
        ticktext=text,
        tickfont=dict(size=size),
        tickangle=-60,
        showgrid=False,
        zeroline=False,
        **extra,
    )


# Each figure is built from one layout dict: plotly validates every update call separately, and
# per-call relayouts made the stats figure alone cost more than a forward pass of 16 tokens.
def head_figure(
    matrix: np.ndarray,  # (T, T)
    labels: Sequence[str],
    title: str,
    axis_query: str,
    axis_key: str,
    hide_first: bool = False,
    height: int = 640,
) -> go.Figure:
    """One head: query tokens on rows (top to bottom), key tokens on columns, on integer
    positions so repeated tokens keep their own row; ticks carry the token text. The future
    (above the diagonal) and, with ``hide_first``, the first column are drawn as masked."""
    t = len(labels)
    z = np.array(matrix, dtype=np.float32, copy=True)
    z[np.triu_indices(t, 1)] = np.nan
    if hide_first:
        z[:, 0] = np.nan
    heatmap = go.Heatmap(
        z=z,
        x=np.arange(t, dtype=np.int16),
        y=np.arange(t, dtype=np.int16),
        zmin=0.0,
        zmax=1.0,
        colorscale=[list(s) for s in SCALE],
        colorbar=dict(thickness=14, len=0.8, tickformat=".0%"),
        hoverongaps=False,
        hovertemplate=f"{axis_query}: %{{y}}<br>{axis_key}: %{{x}}<br>%{{z:.1%}}<extra></extra>",
    )
    layout = dict(
        title=_title(title),
        height=height,
        margin=dict(l=20, r=10, t=80, b=20),
        font=FONT,
        plot_bgcolor=MASKED,
        paper_bgcolor="white",
        xaxis=_token_axis(axis_key, labels, side="bottom"),
        yaxis=_token_axis(
            axis_query, labels, autorange="reversed", scaleanchor="x", constrain="domain"
        ),
        annotations=[y_title_annotation(axis_query)],  # horizontal, not turned 90°
    )
    layout["yaxis"]["tickangle"] = 0
    layout["yaxis"]["title"] = None
    return go.Figure(heatmap, layout)


def focus_figure(
    labels: Sequence[str],  # keys 0..query
    series: Sequence[tuple[str, np.ndarray]],  # (legend name, weights over the keys)
    title: str,
    axis_key: str,
    axis_weight: str,
    height: int = 360,
) -> go.Figure:
    """Grouped bars: how much one query token reads from each earlier token."""
    n = len(labels)
    x = np.arange(n, dtype=np.int16)
    colors = ("#4f46e5", "#a5b4fc", "#f59e0b")
    bars = [
        go.Bar(
            x=x,
            y=np.asarray(w, dtype=np.float32),
            name=name,
            marker_color=colors[i % 3],
            hovertemplate=f"%{{x}}: %{{y:.1%}}<extra>{name}</extra>",
        )
        for i, (name, w) in enumerate(series)
    ]
    layout = dict(
        title=_title(title),
        height=height,
        margin=dict(l=60, r=20, t=60, b=20),
        font=FONT,
        plot_bgcolor="white",
        paper_bgcolor="white",
        barmode="group",
        bargap=0.2,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
        xaxis=_token_axis(axis_key, labels, range=[-1, n]),  # room for the first rotated label
        yaxis=dict(tickformat=".0%", rangemode="tozero", gridcolor="#eef2f7"),
        annotations=[y_title_annotation(axis_weight)],  # horizontal, not turned 90°
    )
    return go.Figure(bars, layout)


def stats_figure(
    panels: Sequence[tuple[str, np.ndarray, str]],  # (title, (layers, heads) values, number format)
    selected: tuple[int, int],
    axis_layer: str,
    axis_head: str,
) -> go.Figure:
    """One heatmap per statistic, stacked, layers across and heads down (like the overview), each
    cell printed, the selected head outlined."""
    n_layers, n_heads = panels[0][1].shape
    rows = len(panels)
    layer, head = selected
    panel_px, gap_px, top_px, bottom_px = n_heads * 26 + 40, 56, 40, 50
    height = rows * panel_px + (rows - 1) * gap_px + top_px + bottom_px
    plot_h = height - top_px - bottom_px
    traces, shapes, annotations = [], [], []
    layout: dict = dict(
        height=height,
        margin=dict(l=60, r=20, t=top_px, b=bottom_px),
        font=FONT,
        paper_bgcolor="white",
        plot_bgcolor="white",
    )
    for i, (title, values, fmt) in enumerate(panels):
        suffix = "" if i == 0 else str(i + 1)
        top = 1 - i * (panel_px + gap_px) / plot_h
        bottom = top - panel_px / plot_h
        traces.append(
            go.Heatmap(
                z=np.asarray(values, dtype=np.float32).T,  # (heads, layers)
                x=np.arange(n_layers, dtype=np.int16),
                y=np.arange(n_heads, dtype=np.int16),
                xaxis=f"x{suffix}",
                yaxis=f"y{suffix}",
                colorscale="Purples",
                showscale=False,
                texttemplate=f"%{{z:{fmt}}}",
                textfont=dict(size=11 if n_layers <= 20 else 9),
                xgap=1,
                ygap=1,
                hovertemplate=f"{axis_layer} %{{x}} · {axis_head} %{{y}}: %{{z:{fmt}}}<extra></extra>",
            )
        )
        layout[f"xaxis{suffix}"] = dict(
            anchor=f"y{suffix}",
            dtick=1,
            showgrid=False,
            zeroline=False,
            tickfont=dict(size=11),
            title=dict(text=axis_layer) if i == rows - 1 else None,
        )
        layout[f"yaxis{suffix}"] = dict(
            anchor=f"x{suffix}",
            domain=[max(0.0, bottom), min(1.0, top)],
            autorange="reversed",
            dtick=1,
            showgrid=False,
            zeroline=False,
            title=dict(text=axis_head),
        )
        shapes.append(
            dict(
                type="rect",
                xref=f"x{suffix}",
                yref=f"y{suffix}",
                x0=layer - 0.5,
                x1=layer + 0.5,
                y0=head - 0.5,
                y1=head + 0.5,
                line=dict(color=SELECTED, width=3),
            )
        )
        annotations.append(
            dict(
                text=title,
                xref="paper",
                yref="paper",
                x=0.5,
                y=min(1.0, top),
                yanchor="bottom",
                showarrow=False,
                font=dict(size=15),
            )
        )
    layout.update(shapes=shapes, annotations=annotations)
    return go.Figure(traces, layout)


# --- the overview picture ----------------------------------------------------------------------
OVERVIEW_WIDTH = 1200  # natural pixels: about the width of the tab, so clicks map 1:1
_LEFT, _TOP, _GAP = 40, 28, 4


def overview_geometry(n_layers: int, n_heads: int) -> tuple[int, int]:
    """(tile size, pitch) in pixels for an overview ``OVERVIEW_WIDTH`` wide (pitch = tile + gap)."""
    tile = max(8, min(96, (OVERVIEW_WIDTH - _LEFT) // n_layers - _GAP))
    return tile, tile + _GAP


def overview_tile_center(layer: int, head: int, n_layers: int, n_heads: int) -> tuple[float, float]:
    """Pixel (x, y) at the centre of tile (layer, head): where a test clicks."""
    tile, pitch = overview_geometry(n_layers, n_heads)
    return _LEFT + layer * pitch + tile / 2, _TOP + head * pitch + tile / 2


def overview_tile_at(x: int, y: int, n_layers: int, n_heads: int) -> tuple[int, int] | None:
    """(layer, head) of the tile under pixel (x, y) of ``overview_image``, or None (a gap/label)."""
    tile, pitch = overview_geometry(n_layers, n_heads)
    col, dx = divmod(x - _LEFT, pitch)
    row, dy = divmod(y - _TOP, pitch)
    if x < _LEFT or y < _TOP or dx >= tile or dy >= tile or col >= n_layers or row >= n_heads:
        return None
    return int(col), int(row)


def overview_image(
    pooled: np.ndarray,  # (layers, heads, P, P), NaN where hidden
    global_layers: Sequence[int],
    selected: tuple[int, int],
) -> Image.Image:
    """Every head as a tile: layers left to right, heads top to bottom. Each tile is scaled to its
    own maximum (the shape of the pattern matters here, not its strength); whole blocks above the
    diagonal are masked grey. Global (full-attention) layers get an indigo label."""
    n_layers, n_heads, p, _ = pooled.shape
    tile, pitch = overview_geometry(n_layers, n_heads)
    width = _LEFT + n_layers * pitch
    height = _TOP + n_heads * pitch
    img = Image.new("RGB", (width, height), "white")
    peak = np.nanmax(np.where(np.isnan(pooled), 0.0, pooled), axis=(-2, -1), keepdims=True)
    scaled = np.divide(pooled, peak, out=np.zeros_like(pooled), where=peak > 0)
    scaled = np.where(np.isnan(pooled), np.nan, scaled)
    scaled[..., np.triu_indices(p, 1)[0], np.triu_indices(p, 1)[1]] = np.nan
    colors = colorize(scaled)  # (layers, heads, P, P, 3)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=13)
    for layer in range(n_layers):
        x0 = _LEFT + layer * pitch
        color = GLOBAL if layer in global_layers else "#374151"
        draw.text((x0 + tile / 2, _TOP - 8), f"L{layer}", fill=color, font=font, anchor="ms")
        if layer in global_layers:  # colour alone is easy to miss on a projector
            draw.line(
                [(x0 + tile / 4, _TOP - 4), (x0 + 3 * tile / 4, _TOP - 4)], fill=GLOBAL, width=3
            )
        for head in range(n_heads):
            y0 = _TOP + head * pitch
            piece = Image.fromarray(colors[layer, head]).resize((tile, tile), Image.NEAREST)
            img.paste(piece, (x0, y0))
    for head in range(n_heads):
        draw.text(
            (_LEFT - 6, _TOP + head * pitch + tile / 2),
            f"H{head}",
            fill="#374151",
            font=font,
            anchor="rm",
        )
    layer, head = selected
    x0, y0 = _LEFT + layer * pitch, _TOP + head * pitch
    draw.rectangle([x0 - 2, y0 - 2, x0 + tile + 1, y0 + tile + 1], outline=SELECTED, width=3)
    return img
