"""The attention tab: every layer's and head's attention map for a text, on a real model.

Wires components to ``llmviz.attention`` (the maths) and ``llmviz.plots.attention`` (figures).
"Show attention" runs the model once (MODEL queue) and keeps the result in a per-session
``gr.State``, which gradio holds on the server: the browser only ever receives the pictures it
shows (one head's map, the overview picture, the focus bars, the stats), never the full tensor.
Changing layer, head, token or the sink option re-draws from that state (LIGHT queue, no model).
Clicking a tile of the overview picture (``gr.Image.select`` reports the clicked pixel) opens it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np

from llmviz import config, lane
from llmviz.attention import (
    PATTERNS,
    AttentionResult,
    HeadStats,
    check_position,
    compute_attention,
    downsample,
    encode_text,
    focus,
    head_stats,
    hide_first_token,
    strongest_head,
)
from llmviz.errors import UserError
from llmviz.models import load_model
from llmviz.plots.attention import (
    focus_figure,
    head_figure,
    overview_geometry,
    overview_image,
    overview_tile_at,
    stats_figure,
)
from llmviz.ui.common import (
    LIGHT,
    MODEL,
    Outputs,
    get_model,
    handler,
    model_dropdown,
    skip,
    slider_changes,
    state_field,
)
from llmviz.ui.i18n import lang_of, t, text

PRESETS = [
    "The animal didn't cross the street because it was too tired.",
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。",
    "The cat sat on the mat. The cat sat on the mat.",
    "猫が好きな人は犬も好きだが、猫が苦手な人もいる。",
    "Alice gave Bob a book because Bob had lent Alice a pen.",
]

JA_PRESET = 1  # 吾輩は猫である: the default text in the Japanese UI


@dataclass(frozen=True)
class _Analysis:
    """What one session keeps on the server between clicks."""

    result: AttentionResult
    stats: HeadStats
    model: str  # display name


@dataclasses.dataclass(slots=True)
class Screen(Outputs):
    """Every output of the tab; a handler fills what it changes, the rest stays as it is."""

    state: Any = state_field()
    layer: Any = skip()
    head: Any = skip()
    token: Any = skip()
    summary: Any = skip()
    overview: Any = skip()
    head_map: Any = skip()
    head_info: Any = skip()
    focus: Any = skip()
    stats: Any = skip()


# --- drawing from the session state ------------------------------------------------------------
def _pct(x: float) -> str:
    return "–" if np.isnan(x) else f"{x:.0%}"


def _num(x: float) -> str:
    return "–" if np.isnan(x) else f"{x:.2f}"


def _head_info(a: _Analysis, layer: int, head: int, lang: str) -> str:
    s = a.stats.of(layer, head)
    layout = a.result.layout
    kind = "local" if layout.layer_types[layer] == "sliding_attention" else "global"
    return text(
        "att.head_info",
        lang,
        layer=layer,
        head=head,
        kind=text(f"att.kind_{kind}", lang),
        kv=layout.kv_head_of(head),
        entropy=_num(s["entropy"]),
        first=_pct(s["first_share"]),
        lookback=_num(s["lookback"]),
        prev=_pct(s["prev_share"]),
        self=_pct(s["self_share"]),
        same=_pct(s["same_token_share"]),
    )


def _check(a: _Analysis | None, layer: Any, head: Any, token: Any) -> tuple[int, int, int]:
    """A run exists in this session, and the selection is in it (the core's check)."""
    if a is None:
        raise UserError(
            "Press “Show attention” first: there is no text analysed yet in this session.",
            key="att_no_run",
        )
    return check_position(a.result.weights.shape, layer, head, token)


def _draw(a: _Analysis, layer: int, head: int, token: int, hide: bool, lang: str) -> Screen:
    """The pictures and numbers of one selection (the sliders are left as the user set them)."""
    result = a.result
    shown = hide_first_token(result.weights) if hide else result.weights
    layout = result.layout
    tile, _ = overview_geometry(layout.n_layers, layout.n_heads)
    # marking global layers only means something when some layers are local (Gemma 3)
    globals_ = [i for i in range(layout.n_layers) if i not in layout.sliding_layers]
    globals_ = globals_ if layout.sliding_layers else []
    overview = overview_image(downsample(shown, tile), globals_, (layer, head))
    title_key = "att.head_title_hidden" if hide else "att.head_title"
    head_map = head_figure(
        shown[layer, head],
        result.labels,
        text(title_key, lang, layer=layer, head=head),
        text("att.axis_query", lang),
        text("att.axis_key", lang),
        hide_first=hide,
    )
    f = focus(shown, layer, head, token)
    bars = focus_figure(
        result.labels[: token + 1],
        [
            (text("att.focus_head", lang, layer=layer, head=head), f.head),
            (text("att.focus_layer_mean", lang, layer=layer), f.layer_mean),
            (text("att.focus_model_mean", lang), f.model_mean),
        ],
        text("att.focus_fig_title", lang, token=result.labels[token], query=token),
        text("att.axis_key", lang),
        text("att.axis_weight", lang),
    )
    stats = stats_figure(
        [
            (text("att.stat.entropy", lang), a.stats.entropy, ".1f"),
            (text("att.stat.first_share", lang), a.stats.first_share, ".0%"),
            (text("att.stat.lookback", lang), a.stats.lookback, ".1f"),
        ],
        (layer, head),
        text("att.axis_layer", lang),
        text("att.axis_head", lang),
    )
    return Screen(
        overview=overview,
        head_map=head_map,
        head_info=_head_info(a, layer, head, lang),
        focus=bars,
        stats=stats,
    )


def _summary(a: _Analysis, lang: str) -> str:
    """What was analysed (text, model, layout); the open head is described in its own panel."""
    r, lay = a.result, a.result.layout
    n = r.n_tokens
    parts = [
        text(
            "att.summary",
            lang,
            n=n,
            model=a.model,
            layers=lay.n_layers,
            heads=lay.n_heads,
            maps=lay.n_layers * lay.n_heads,
        ),
        text(
            "att.summary_gqa" if lay.is_gqa else "att.summary_mha",
            lang,
            heads=lay.n_heads,
            kv=lay.n_kv_heads,
            group=lay.group_size,
        ),
    ]
    if lay.sliding_layers:
        key = "att.summary_window_cuts" if lay.window_visible(n) else "att.summary_window"
        parts.append(
            text(
                key,
                lang,
                local=len(lay.sliding_layers),
                layers=lay.n_layers,
                window=lay.sliding_window,
                n=n,
            )
        )
    tile, _ = overview_geometry(lay.n_layers, lay.n_heads)
    k = -(-n // tile)
    parts.append(
        text("att.summary_pooled", lang, k=k, n=n, tile=tile)
        if k > 1
        else text("att.summary_full", lang)
    )
    return "\n\n".join(parts)


# --- handlers ------------------------------------------------------------------------------------
def _analyse(model_key: str, precision: str, ids: tuple[int, ...]) -> _Analysis:
    """Run the model once per (model, precision, tokens), shared by every session.

    In a classroom most students press "Show attention" on the same preset: the first pays for
    the forward pass, the others get the result at once, including those who press while it is
    being computed (``lane.shared``). Safe to share: the result is immutable (frozen
    dataclasses, read-only arrays) and depends on nothing but the key. At most
    ``config.SHARED_RESULTS`` entries per model (each at most 30 × 9 × 256² float32 = 68 MB).
    """
    loaded = load_model(model_key, precision)  # already in memory: get_model loaded it

    def compute() -> _Analysis:
        result = compute_attention(loaded.model, loaded.tokenizer, ids)
        return _Analysis(result, head_stats(result.weights, result.token_ids), loaded.spec.display)

    return lane.shared(loaded.model, ("attention", ids), compute)


def warm_up() -> None:
    """The opening preset's analysis, computed before the first click (``app.warm_up``)."""
    loaded = load_model(config.DEFAULT_BASE, config.ATTENTION_PRECISION)
    _analyse(loaded.spec.key, loaded.precision, tuple(encode_text(loaded.tokenizer, PRESETS[0])))


@handler
def _on_run(txt, model_key, hide, request: gr.Request, progress=gr.Progress()):  # noqa: B008
    lang = lang_of(request)
    loaded = get_model(model_key, config.ATTENTION_PRECISION, progress)
    ids = encode_text(loaded.tokenizer, txt)
    a = _analyse(loaded.spec.key, loaded.precision, tuple(ids))
    result = a.result
    best = strongest_head(a.stats, "previous")
    layer, head = best[:2] if best else (0, 0)
    token = result.n_tokens - 1
    lay = result.layout
    choices = [(f"{i} · {label}", i) for i, label in enumerate(result.labels)]
    screen = _draw(a, layer, head, token, bool(hide), lang)
    screen.state = a
    screen.layer = gr.update(maximum=lay.n_layers - 1, value=layer)
    screen.head = gr.update(maximum=lay.n_heads - 1, value=head)
    screen.token = gr.update(choices=choices, value=token)
    screen.summary = _summary(a, lang)
    return screen


@handler
def _on_view(a, layer, head, token, hide, request: gr.Request):
    layer, head, token = _check(a, layer, head, token)
    return _draw(a, layer, head, token, bool(hide), lang_of(request))


@handler
def _on_pick(a, token, hide, evt: gr.SelectData, request: gr.Request):
    _, _, token = _check(a, 0, 0, token)
    lay = a.result.layout
    index = evt.index if isinstance(evt.index, (list, tuple)) else []
    try:  # a click on the picture gives pixel [x, y]; anything else (API callers) is ignored
        x, y = (int(v) for v in index[:2])
    except (TypeError, ValueError, OverflowError):
        return Screen()
    if len(index) < 2:
        return Screen()
    picked = overview_tile_at(x, y, lay.n_layers, lay.n_heads)
    if picked is None:  # a label or the gap between tiles
        return Screen()
    layer, head = picked
    screen = _draw(a, layer, head, token, bool(hide), lang_of(request))
    screen.layer, screen.head = layer, head
    return screen


@handler
def _on_find(a, pattern, token, hide, request: gr.Request):
    _, _, token = _check(a, 0, 0, token)
    lang = lang_of(request)
    if pattern not in PATTERNS:
        return Screen()
    best = strongest_head(a.stats, pattern)
    if best is None:
        gr.Warning(text("att.find_none", lang))
        return Screen()
    layer, head, _ = best
    screen = _draw(a, layer, head, token, bool(hide), lang)
    screen.layer, screen.head = layer, head
    return screen


@handler
def _on_page(request: gr.Request):
    """The default text in the reader's language (English readers keep the English classic)."""
    return PRESETS[JA_PRESET] if lang_of(request) == "ja" else gr.skip()


# --- layout ----------------------------------------------------------------------------------------
def build() -> None:
    gr.Markdown(t("att.intro"))
    state = gr.State(None)
    with gr.Row():
        with gr.Column(scale=3):
            txt = gr.Textbox(
                value=PRESETS[0],
                label=t("att.text"),
                info=t("att.text_info"),
                lines=2,
                max_lines=8,
                elem_id="attention-text",
            )
            gr.Examples([[p] for p in PRESETS], inputs=[txt], label=t("att.presets"))
        with gr.Column(scale=2):
            model = model_dropdown(
                t("common.model"), config.DEFAULT_BASE, elem_id="attention-model"
            )
            hide = gr.Checkbox(
                False,
                label=t("att.hide_sink"),
                info=t("att.hide_sink_info"),
                elem_id="attention-hide-sink",
            )
            run = gr.Button(t("att.run"), variant="primary", elem_id="attention-run")
    summary = gr.Markdown(elem_id="attention-summary")
    with gr.Row(equal_height=True):
        layer = gr.Slider(0, 17, value=0, step=1, label=t("att.layer"), elem_id="attention-layer")
        head = gr.Slider(0, 3, value=0, step=1, label=t("att.head"), elem_id="attention-head")
        find = gr.Dropdown(
            choices=[(t(f"att.pat.{p}"), p) for p in PATTERNS],
            value=None,
            label=t("att.find"),
            info=t("att.find_info"),
            elem_id="attention-find",
        )
    with gr.Row():
        with gr.Column(scale=3, min_width=560):  # narrower: the map goes full width
            head_plot = gr.Plot(show_label=False, elem_id="attention-head-map")
        with gr.Column(scale=2, min_width=320):
            head_md = gr.Markdown(elem_id="attention-head-info")
            with gr.Accordion(t("att.explain_title"), open=True):
                gr.Markdown(t("att.explain"))
    gr.Markdown(t("att.overview_title"))
    overview = gr.Image(
        type="pil",
        format="png",
        label=t("att.overview"),
        show_label=False,
        interactive=False,
        buttons=[],  # their icons would cover the last layer labels
        elem_id="attention-overview",
    )
    gr.Markdown(t("att.focus_title"))
    token = gr.Dropdown(
        choices=[],
        value=None,
        label=t("att.token"),
        info=t("att.token_info"),
        allow_custom_value=True,  # so a bad position reaches _check and gets its message
        elem_id="attention-token",
    )
    focus_plot = gr.Plot(show_label=False, elem_id="attention-focus")
    gr.Markdown(t("att.stats_title"))
    stats_plot = gr.Plot(show_label=False, elem_id="attention-stats")

    screen = Screen.wire(
        state=state,
        layer=layer,
        head=head,
        token=token,
        summary=summary,
        overview=overview,
        head_map=head_plot,
        head_info=head_md,
        focus=focus_plot,
        stats=stats_plot,
    )
    run.click(_on_run, [txt, model, hide], screen, api_name="attention_run", **MODEL)
    root = gr.context.Context.root_block
    if root is not None:
        root.load(_on_page, None, txt, api_name=False, **LIGHT)
    view_inputs = [state, layer, head, token, hide]
    for slider, api in ((layer, "attention_layer"), (head, "attention_head")):
        gr.on(slider_changes(slider), _on_view, view_inputs, screen, api_name=api,
              trigger_mode="always_last", **LIGHT)  # fmt: skip
    token.input(_on_view, view_inputs, screen, api_name="attention_token", **LIGHT)
    hide.input(_on_view, view_inputs, screen, api_name="attention_view", **LIGHT)
    overview.select(_on_pick, [state, token, hide], screen, api_name="attention_pick", **LIGHT)
    find.input(_on_find, [state, find, token, hide], screen, api_name="attention_find", **LIGHT)
