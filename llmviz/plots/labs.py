"""Figures and the coloured-text HTML for the labs tab (scaling laws; perplexity).

Plain numbers and labels in, ``go.Figure`` (or an HTML string) out; the maths is done by
``llmviz.scaling`` and ``llmviz.perplexity``. All visible words arrive as arguments so the
caller can pass them in the student's language.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from llmviz.memory import count_words
from llmviz.plots.axes import horizontal_y_title
from llmviz.plots.palette import OKABE_ITO

FONT = {"size": 15}
PALETTE = OKABE_ITO  # colour-blind safe (plots/palette.py)
#: How a count is written on the charts: ``count_words`` in the student's language
#: (``"70B"`` in English, ``"700 億"`` in Japanese); the caller passes it.
Count = Callable[[float], str]


def human(x: float) -> str:
    """The English short form: ``human(70e9) == "70B"``, ``human(1.4e12) == "1.4T"``."""
    return count_words(x, "en", short=True)


def sci(x: float) -> str:
    """``sci(3.15e23) == "3.15×10²³"`` (FLOPs read better with a real exponent)."""
    if x == 0 or not math.isfinite(x):
        return str(x)
    exp = math.floor(math.log10(abs(x)))
    mant = x / 10**exp
    sup = str(exp).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"{mant:.3g}×10{sup}"


def _log_ticks(
    lo: float, hi: float, count: Count, most: int | None = None
) -> tuple[list[float], list[str]]:
    """Powers of ten from ``lo`` to ``hi``; with ``most``, every k-th one so at most ``most``
    remain (labels such as "1,000 億" need room to stay horizontal)."""
    exps = list(range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1))
    step = math.ceil(len(exps) / most) if most else 1
    vals = [10.0**e for e in exps[::step]]
    return vals, [count(v) for v in vals]


def _wrap_unit(label: str) -> str:
    """A title over a narrow colour bar: the unit in brackets on its own line.

    >>> _wrap_unit("loss L (nats/token)"), _wrap_unit("損失 L（nats/トークン）")
    ('loss L<br>(nats/token)', '損失 L<br>（nats/トークン）')
    """
    for bracket in (" (", "（"):
        head, sep, tail = label.partition(bracket)
        if sep:
            return f"{head.rstrip()}<br>{sep.strip()}{tail}"
    return label


def _layout(fig: go.Figure, title: str, height: int = 560) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 18}},
        font=FONT,
        height=height,
        margin={"l": 70, "r": 30, "t": 90, "b": 60},
        plot_bgcolor="white",
        legend={"bgcolor": "rgba(255,255,255,0.85)", "font": {"size": 13}},
        hoverlabel={"font": {"size": 15}},
    )
    fig.update_xaxes(showgrid=True, gridcolor="#e5e7eb", zeroline=False)
    fig.update_yaxes(showgrid=True, gridcolor="#e5e7eb", zeroline=False)
    return fig


# --- scaling -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Point:
    """A model to mark: name, N, D, fitted loss, 6·N·D, and where its label goes."""

    name: str
    n: float
    d: float
    loss: float
    flops: float
    textpos: str = "top center"  # chosen by the caller so neighbouring labels do not overlap


@dataclass(frozen=True)
class Line:
    """A curve to draw: name, N values, D values, loss values."""

    name: str
    n: np.ndarray
    d: np.ndarray
    loss: np.ndarray


def _point_hover(p: Point, words: dict[str, str], count: Count) -> str:
    return (
        f"<b>{html.escape(p.name)}</b><br>N = {count(p.n)} {words['params']}<br>"
        f"D = {count(p.d)} {words['tokens']}<br>C = {sci(p.flops)} FLOPs<br>L = {p.loss:.3f}"
    )


def _labelled_points(
    fig: go.Figure, points: Sequence[Point], y_of, words: dict[str, str], count: Count
) -> None:
    for k, p in enumerate(points):
        fig.add_trace(
            go.Scatter(
                x=[p.n],
                y=[y_of(p)],
                mode="markers+text",
                marker={
                    "size": 12,
                    "color": PALETTE[k % len(PALETTE)],
                    "line": {"color": "white", "width": 2},
                },
                text=[p.name],
                textposition=p.textpos,
                textfont={"color": "white", "size": 14, "shadow": "1px 1px 3px black"},
                name=p.name,
                hovertext=_point_hover(p, words, count),
                hoverinfo="text",
                showlegend=False,
            )
        )


def _log_axis(fig: go.Figure, axis: str, lo: float, hi: float, title: str, count: Count) -> None:
    # x: few enough labels to stay horizontal (plotly turns crowded labels, Japanese sideways)
    ticks, labels = _log_ticks(lo, hi, count, most=4 if axis == "x" else None)
    update = fig.update_xaxes if axis == "x" else fig.update_yaxes
    update(type="log", range=[math.log10(lo), math.log10(hi)], tickvals=ticks, ticktext=labels)
    if axis == "x":
        fig.update_xaxes(title=title, tickangle=0)
    else:
        horizontal_y_title(fig, title)


def loss_landscape(
    n: np.ndarray,  # (P,)
    d: np.ndarray,  # (Q,)
    z: np.ndarray,  # (Q, P) loss at (d[i], n[j])
    iso: Sequence[Line],  # the last one is drawn thick (the student's budget)
    frontier: Line,
    points: Sequence[Point],
    you: Point | None,
    words: dict[str, str],
    count: Count = human,
) -> go.Figure:
    """Filled contours of L(N, D) on log axes, iso-compute lines, the optimal frontier, models."""
    n_lab = np.array([count(v) for v in n])
    d_lab = np.array([count(v) for v in d])
    custom = np.dstack(np.broadcast_arrays(n_lab[None, :], d_lab[:, None]))  # (Q, P, 2)
    fig = go.Figure()
    fig.add_trace(
        go.Contour(
            x=n,
            y=d,
            z=z,
            customdata=custom,
            colorscale="Viridis",
            # the interesting range: 1.9 (today's big models) to 3.5; higher losses saturate
            contours={
                "start": 1.9,
                "end": 3.5,
                "size": 0.1,
                "showlabels": True,
                "labelfont": {"size": 11, "color": "white"},
            },
            zmin=1.85,
            zmax=3.5,
            line={"width": 0.5, "color": "rgba(255,255,255,0.35)"},
            # the colour bar's title on top, horizontal (side="right" turns it 90°)
            colorbar={
                "title": {"text": _wrap_unit(words["loss"]), "side": "top", "font": {"size": 12}},
                "len": 0.9,
            },
            hovertemplate=(
                f"N = %{{customdata[0]}} {words['params']}<br>D = %{{customdata[1]}} "
                f"{words['tokens']}<br>L = %{{z:.3f}}<extra></extra>"
            ),
            name=words["loss"],
        )
    )
    for k, line in enumerate(iso):
        last = k == len(iso) - 1
        fig.add_trace(
            go.Scatter(
                x=line.n,
                y=line.d,
                mode="lines",
                line={"color": "white", "width": 3 if last else 1.2, "dash": "dash"},
                name=line.name,
                hovertemplate=f"{html.escape(line.name)}<extra></extra>",
                showlegend=last,
            )
        )
    fig.add_trace(
        go.Scatter(
            x=frontier.n,
            y=frontier.d,
            mode="lines",
            line={"color": "#f59e0b", "width": 3},
            name=frontier.name,
            hovertemplate=f"{html.escape(frontier.name)}<extra></extra>",
        )
    )
    _labelled_points(fig, points, lambda p: p.d, words, count)
    if you is not None:  # a ring around the student's own (N, D)
        fig.add_trace(
            go.Scatter(
                x=[you.n],
                y=[you.d],
                mode="markers",
                marker={
                    "size": 24,
                    "color": "rgba(0,0,0,0)",
                    "line": {"color": "#f43f5e", "width": 3},
                },
                name=you.name,
                hovertext=_point_hover(you, words, count),
                hoverinfo="text",
            )
        )
    _log_axis(fig, "x", n[0], n[-1], words["n_axis"], count)
    _log_axis(fig, "y", d[0], d[-1], words["d_axis"], count)
    fig.update_layout(legend={"orientation": "h", "y": -0.2, "x": 0})
    return _layout(fig, words["landscape_title"], height=620)


def isoflop_profiles(
    curves: Sequence[Line],
    optima: Sequence[Point],
    points: Sequence[Point],
    highlight: str,
    words: dict[str, str],
    count: Count = human,
) -> go.Figure:
    """Loss against N along fixed budgets (the Chinchilla paper's "IsoFLOP" profiles); the curve
    named ``highlight`` is drawn thicker."""
    fig = go.Figure()
    for k, (c, opt) in enumerate(zip(curves, optima, strict=True)):
        color = PALETTE[k % len(PALETTE)]
        fig.add_trace(
            go.Scatter(
                x=c.n,
                y=c.loss,
                customdata=np.column_stack([[count(v) for v in c.n], [count(v) for v in c.d]]),
                mode="lines",
                line={"color": color, "width": 4.5 if c.name == highlight else 2},
                name=c.name,
                hovertemplate=(
                    f"{html.escape(c.name)}<br>N = %{{customdata[0]}}<br>D = %{{customdata[1]}}"
                    "<br>L = %{y:.3f}<extra></extra>"
                ),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[opt.n],
                y=[opt.loss],
                mode="markers",
                marker={
                    "size": 14,
                    "color": color,
                    "symbol": "star",
                    "line": {"color": "black", "width": 1},
                },
                hovertext=_point_hover(opt, words, count),
                hoverinfo="text",
                showlegend=False,
            )
        )
    for p in points:
        fig.add_trace(
            go.Scatter(
                x=[p.n],
                y=[p.loss],
                mode="markers+text",
                marker={"size": 12, "color": "white", "line": {"color": "#111827", "width": 3}},
                text=[p.name],
                textposition=p.textpos,
                textfont={"size": 14, "color": "#111827"},
                cliponaxis=False,
                name=p.name,
                hovertext=_point_hover(p, words, count),
                hoverinfo="text",
                showlegend=False,
            )
        )
    lo = min(float(c.n.min()) for c in curves)
    hi = max(float(c.n.max()) for c in curves)
    _log_axis(fig, "x", lo, hi, words["n_axis"], count)
    lowest = min(float(c.loss.min()) for c in curves)
    fig.update_yaxes(range=[lowest - 0.08, max(lowest + 1.6, 3.6)])
    horizontal_y_title(fig, words["loss"])
    return _layout(fig, words["isoflop_title"])


# --- perplexity ----------------------------------------------------------------------------------
def cumulative_bits_figure(
    runs: Sequence[tuple[str, np.ndarray, np.ndarray, Sequence[str]]], words: dict[str, str]
) -> go.Figure:
    """Bits so far against characters so far, one line per scored text; slope = bits per char.

    ``runs``: (name, characters after each span, cumulative bits, hover text per span).
    """
    fig = go.Figure()
    for k, (name, x, y, hover) in enumerate(runs):
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([[0], x]),
                y=np.concatenate([[0.0], y]),
                mode="lines+markers" if len(x) <= 200 else "lines",
                marker={"size": 5},
                line={"color": PALETTE[k % len(PALETTE)], "width": 2.5, "shape": "hv"},
                name=name,
                hovertext=["", *hover],
                hoverinfo="text+name",
            )
        )
    fig.update_xaxes(title=words["chars_axis"], rangemode="tozero")
    fig.update_yaxes(rangemode="tozero")
    horizontal_y_title(fig, words["bits_axis"])
    fig.update_layout(
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"}
    )
    return _layout(fig, words["cum_title"], height=430)


# Light (predictable) to dark red (surprising); text turns white on dark backgrounds.
_STOPS = [
    (0.0, (240, 249, 255)),
    (0.15, (199, 233, 192)),
    (0.35, (254, 230, 150)),
    (0.6, (253, 141, 60)),
    (1.0, (165, 15, 21)),
]
MAX_BITS_COLOR = 16.0  # surprisal at which the colour saturates


def surprisal_color(bits: float) -> tuple[str, str]:
    """(background, text colour) for a surprisal in bits."""
    if not math.isfinite(bits):
        return "#e5e7eb", "#374151"
    f = min(max(bits / MAX_BITS_COLOR, 0.0), 1.0)
    for (f0, c0), (f1, c1) in zip(_STOPS, _STOPS[1:], strict=False):
        if f <= f1:
            t = (f - f0) / (f1 - f0)
            rgb = tuple(round(a + (b - a) * t) for a, b in zip(c0, c1, strict=True))
            return f"rgb{rgb}", "#ffffff" if f > 0.62 else "#111827"
    return f"rgb{_STOPS[-1][1]}", "#ffffff"


def _shown(text: str) -> str:
    # newlines stay line breaks (pre-wrap) but get a visible mark, like the tokenizer tab
    return html.escape(text).replace("\n", "↵\n")


def surprisal_html(
    title: str,
    stats: str,
    prefix: str | None,
    spans: Sequence[tuple[str, float, str]],
    legend: tuple[str, str],
) -> str:
    """The text coloured by surprisal. ``spans``: (text, bits, hover text); ``prefix``: the context
    token shown greyed (not scored); ``legend``: (low label, high label)."""
    parts = []
    if prefix:
        parts.append(
            '<span style="background:#e5e7eb;color:#6b7280;border-radius:4px;padding:0 3px;'
            f'font-size:0.8em" title="{html.escape(prefix)}">{html.escape(prefix)}</span>'
        )
    for text, bits, hover in spans:
        bg, fg = surprisal_color(bits)
        parts.append(
            f'<span class="labs-tok" style="background:{bg};color:{fg};border-radius:3px;'
            f'padding:1px 0;box-shadow:inset -1px 0 0 rgba(0,0,0,0.12)" title="{html.escape(hover)}">'
            f"{_shown(text)}</span>"
        )
    stops = ", ".join(f"rgb{c} {f * 100:.0f}%" for f, c in _STOPS)
    legend_html = (
        '<div style="display:flex;align-items:center;gap:8px;font-size:0.85em;margin-top:10px;color:#374151">'
        f"<span>{html.escape(legend[0])}</span>"
        f'<span style="flex:0 0 220px;height:12px;border-radius:6px;background:linear-gradient(90deg, {stops})"></span>'
        f"<span>{html.escape(legend[1])}</span></div>"
    )
    return (
        '<div class="labs-ppl-panel" style="border:1px solid #e5e7eb;border-radius:10px;padding:12px 14px;'
        'background:#ffffff;color:#111827">'
        f'<div style="font-weight:600;font-size:1.05em">{html.escape(title)}</div>'
        f'<div style="color:#4b5563;font-size:0.92em;margin:2px 0 10px">{html.escape(stats)}</div>'
        '<div style="white-space:pre-wrap;line-height:1.9;font-size:1.12em;max-height:420px;overflow-y:auto;'
        "font-family:'Noto Sans CJK JP','Noto Sans JP',system-ui,sans-serif\">"
        + "".join(parts)
        + "</div>"
        + legend_html
        + "</div>"
    )
