"""The "inside the model" tab: the logit lens, token embeddings and the KV cache, live.

Wires components to ``llmviz.inside`` (the maths) and ``llmviz.plots.inside`` (figures).
"Show the lens" runs the model once (MODEL queue; the result is shared by every session asking
for the same prompt and model, ``lane.shared``) and keeps it in a per-session ``gr.State``;
clicking a cell of the grid (a ``gr.Dataframe``, so a click reports its row and column) or
typing another target token re-reads that state (LIGHT queue for the cell, MODEL for a target:
one product with the LM head per layer). Embedding searches and the KV-cache generation run in
the MODEL queue; the generation streams, and Stop cancels it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from llmviz import config, generation, inside, lane
from llmviz.errors import UserError
from llmviz.models import load_model
from llmviz.plots.inside import kv_figure, lens_cell_style, target_figure, word_map_figure
from llmviz.sampling import SamplingSettings
from llmviz.tokens import readable_decode, token_labels
from llmviz.ui.common import (
    LIGHT,
    MODEL,
    Outputs,
    get_model,
    handler,
    limit_slider,
    model_dropdown,
    skip,
    state_field,
)
from llmviz.ui.i18n import lang_of, t, text

PRECISION = config.INSIDE_PRECISION

#: Lens prompts: (prompt, target) — facts a class knows the answer to, in both languages.
LENS_PRESETS = [
    ("富士山の高さは", "3"),
    ("The capital of France is", " Paris"),
    ("日本の首都は", "東京"),
    ("One, two, three, four,", " five"),
    ("猫は英語で", "cat"),
]
#: Word sets for the 2-D map, written for this tab.
WORD_SETS = {
    "animals": "cat, dog, horse, cow, lion, tiger, 猫, 犬, 馬, 牛",
    "capitals": "Japan, Tokyo, France, Paris, Italy, Rome, Germany, Berlin, Egypt, Cairo",
    "numbers": "one, two, three, four, five, 一, 二, 三, 四, 五, 1, 2, 3",
    "vehicles": "猫, 犬, 鳥, 魚, 車, 電車, バス, 自転車, 飛行機, 船",
}
ANALOGY_PRESETS = [
    ("king", "man", "woman", "queen"),
    ("Paris", "France", "Japan", "Tokyo"),
    ("東京", "日本", "フランス", "パリ"),
    ("walked", "walk", "swim", "swam"),
]
KV_PRESET = "むかしむかし、ある山の村に"


@dataclass(frozen=True)
class _Lens:
    """What one session keeps between clicks: the shared lens and what it was asked."""

    lens: inside.Lens
    model_key: str
    precision: str
    display: str


@dataclasses.dataclass(slots=True)
class LensScreen(Outputs):
    state: Any = state_field()
    summary: Any = skip()
    grid: Any = skip()
    cell: Any = skip()
    curve: Any = skip()


# --- the lens ------------------------------------------------------------------------------------
def _row_names(lens: inside.Lens, lang: str) -> list[str]:
    names = [text("inside.row_embed", lang)]
    names += [text("inside.row_layer", lang, n=i) for i in range(1, lens.n_layers)]
    names.append(text("inside.row_output", lang, n=lens.n_layers))
    return names


def _grid(lens: inside.Lens, lang: str) -> Any:
    """Rows top to bottom: the output first, the embeddings last (as the model is drawn, data
    flowing upward); one column per position; each cell "top token  probability"."""
    names = _row_names(lens, lang)
    columns = [text("inside.col_layer", lang)] + [
        f"{i} · {label}" for i, label in enumerate(lens.labels)
    ]
    rows, styles = [], []
    for row in range(lens.n_layers, -1, -1):
        cells = [f"{lens.top_labels[row][p][0]}  {lens.top_probs[row, p, 0]:.0%}" for p in range(lens.n_tokens)]
        rows.append([names[row], *cells])
        styles.append(["font-weight: 600"] + [lens_cell_style(lens.top_probs[row, p, 0]) for p in range(lens.n_tokens)])
    frame = pd.DataFrame(rows, columns=columns)
    style = pd.DataFrame(styles, columns=columns)
    return frame.style.apply(lambda _: style, axis=None)


def _lens_row(display_row: int, lens: inside.Lens) -> int:
    return lens.n_layers - display_row


def _cell_table(lens: inside.Lens, row: int, pos: int, lang: str) -> pd.DataFrame:
    cols = [text(f"inside.cell_col.{c}", lang) for c in ("rank", "token", "prob")]
    data = [
        [k + 1, lens.top_labels[row][pos][k], f"{lens.top_probs[row, pos, k]:.2%}"]
        for k in range(inside.TOP_K)
    ]
    return pd.DataFrame(data, columns=cols)


def _curve(model: Any, tokenizer: Any, a: _Lens, token_id: int, pos: int, lang: str) -> Any:
    lens = a.lens
    c = inside.target_curve(model, tokenizer, lens, token_id, pos)
    names = _row_names(lens, lang)
    first = next((r for r in range(len(c.ranks)) if all(c.ranks[r:] == 1)), None)
    sub = (
        text("inside.curve_sub_top", lang, layer=names[first])
        if first is not None
        else text("inside.curve_sub_never", lang, rank=int(c.ranks[-1]))
    )
    fig = target_figure(
        names, c.probs, c.ranks,
        text("inside.curve_title", lang, token=c.label, pos=pos, at=lens.labels[pos]), sub,
        text("inside.curve_prob", lang), text("inside.curve_rank", lang), text("inside.curve_x", lang),
    )  # fmt: skip
    return fig


def _lens_summary(a: _Lens, lang: str) -> str:
    lens = a.lens
    pos = lens.n_tokens - 1
    final = int(lens.top_ids[-1, pos, 0])
    first = lens.first_layer_with(pos, final)
    names = _row_names(lens, lang)
    parts = [
        text(
            "inside.summary", lang, n=lens.n_tokens, model=a.display, layers=lens.n_layers,
            token=lens.top_labels[-1][pos][0], prob=f"{lens.top_probs[-1, pos, 0]:.0%}",
            first=names[first] if first is not None else "–",
        )
    ]  # fmt: skip
    return "\n\n".join(parts)


def _lens_of(loaded: Any, ids: tuple[int, ...]) -> inside.Lens:
    return lane.shared(
        loaded.model, ("lens", ids), lambda: inside.logit_lens(loaded.model, loaded.tokenizer, ids)
    )


def _target(tokenizer: Any, target: object, a: _Lens) -> tuple[int, int, str]:
    """(token id, pieces, text) of the target; the model's own final prediction when empty."""
    if not isinstance(target, str) or not target.strip():
        lens = a.lens
        tid = int(lens.top_ids[-1, lens.n_tokens - 1, 0])
        return tid, 1, lens.top_labels[-1][lens.n_tokens - 1][0]
    tid, pieces = inside.target_token(tokenizer, target)
    return tid, pieces, target


@handler
def _on_lens(prompt, model_key, target, request: gr.Request, progress=gr.Progress()):  # noqa: B008
    lang = lang_of(request)
    loaded = get_model(model_key, PRECISION, progress)
    ids = tuple(inside.encode_prompt(loaded.tokenizer, prompt))
    lens = _lens_of(loaded, ids)
    a = _Lens(lens, loaded.spec.key, loaded.precision, loaded.spec.display)
    tid, pieces, shown = _target(loaded.tokenizer, target, a)
    pos = lens.n_tokens - 1
    summary = _lens_summary(a, lang)
    if pieces > 1:
        summary += "\n\n" + text(
            "inside.target_pieces", lang, target=shown, n=pieces,
            first=token_labels(loaded.tokenizer, [tid])[0],
        )  # fmt: skip
    return LensScreen(
        state=a,
        summary=summary,
        grid=_grid(lens, lang),
        cell=gr.Dataframe(_cell_table(lens, lens.n_layers, pos, lang), visible=True),
        curve=_curve(loaded.model, loaded.tokenizer, a, tid, pos, lang),
    )


def _loaded_for(a: _Lens) -> Any:
    return load_model(a.model_key, a.precision)


@handler
def _on_cell(a, target, evt: gr.SelectData, request: gr.Request):
    lang = lang_of(request)
    if not isinstance(a, _Lens):
        raise UserError("Press “Show the lens” first.", key="inside_no_lens")
    index = evt.index if isinstance(evt.index, (list, tuple)) else []
    try:
        display_row, col = (int(v) for v in index[:2])
    except (TypeError, ValueError, OverflowError):
        return LensScreen()
    lens = a.lens
    pos = col - 1  # column 0 is the layer name
    if len(index) < 2 or not (0 <= pos < lens.n_tokens and 0 <= display_row <= lens.n_layers):
        return LensScreen()
    row = _lens_row(display_row, lens)
    loaded = _loaded_for(a)
    if isinstance(target, str) and target.strip():
        tid, _ = inside.target_token(loaded.tokenizer, target)
    else:
        tid = int(lens.top_ids[-1, pos, 0])  # what the model finally predicts at that position
    return LensScreen(
        cell=gr.Dataframe(_cell_table(lens, row, pos, lang), visible=True),
        curve=_curve(loaded.model, loaded.tokenizer, a, tid, pos, lang),
    )


# --- embeddings ------------------------------------------------------------------------------------
def _pieces_note(word: inside.Word, lang: str) -> str:
    if word.pieces == 1:
        return text("inside.word_one", lang, word=word.text, token=word.labels[0])
    return text(
        "inside.word_many", lang, word=word.text, n=word.pieces, pieces=" + ".join(word.labels)
    )


@handler
def _on_neighbours(word, model_key, request: gr.Request, progress=gr.Progress()):  # noqa: B008
    lang = lang_of(request)
    loaded = get_model(model_key, PRECISION, progress)
    w = inside.encode_word(loaded.tokenizer, word)
    found = inside.neighbours(loaded.model, loaded.tokenizer, w, k=config.INSIDE_NEIGHBOURS)
    cols = [text(f"inside.nb_col.{c}", lang) for c in ("rank", "token", "id", "similarity")]
    table = pd.DataFrame(
        [[i + 1, n.label, n.token_id, f"{n.similarity:.3f}"] for i, n in enumerate(found)],
        columns=cols,
    )
    vocab = loaded.model.get_input_embeddings().weight.shape
    note = _pieces_note(w, lang) + "\n\n" + text(
        "inside.nb_note", lang, vocab=f"{vocab[0]:,}", dim=vocab[1], model=loaded.spec.display
    )
    return note, gr.Dataframe(table, visible=True)


@handler
def _on_map(words, model_key, request: gr.Request, progress=gr.Progress()):  # noqa: B008
    lang = lang_of(request)
    listed = inside.parse_words(words)
    loaded = get_model(model_key, PRECISION, progress)
    m = inside.word_map(loaded.model, loaded.tokenizer, listed)
    split = [w for w in m.words if w.pieces > 1]
    fig = word_map_figure(
        [w.text for w in m.words], m.points,
        text("inside.map_title", lang, n=len(m.words), model=loaded.spec.display),
        text("inside.map_sub", lang, a=f"{m.explained[0]:.0%}", b=f"{m.explained[1]:.0%}"),
        text("inside.map_x", lang), text("inside.map_y", lang),
    )  # fmt: skip
    note = text("inside.map_note", lang)
    if split:
        note += "\n\n" + text(
            "inside.map_split", lang, words="、".join(f"{w.text} ({w.pieces})" for w in split)
        )
    return fig, note


@handler
def _on_analogy(a, b, c, expected, model_key, request: gr.Request, progress=gr.Progress()):  # noqa: B008
    lang = lang_of(request)
    loaded = get_model(model_key, PRECISION, progress)
    tok = loaded.tokenizer
    wa, wb, wc = (inside.encode_word(tok, w) for w in (a, b, c))
    we = inside.encode_word(tok, expected) if isinstance(expected, str) and expected.strip() else None
    r = inside.analogy(loaded.model, tok, wa, wb, wc, expected=we)
    cols = [text(f"inside.nb_col.{k}", lang) for k in ("rank", "token", "id", "similarity")]
    table = pd.DataFrame(
        [[i + 1, n.label, n.token_id, f"{n.similarity:.3f}"] for i, n in enumerate(r.found)],
        columns=cols,
    )
    head = text("inside.analogy_head", lang, a=wa.text, b=wb.text, c=wc.text, top=r.found[0].label)
    if we is None:
        verdict = ""
    elif r.expected_rank == 1:
        verdict = text("inside.analogy_hit", lang, word=we.text)
    else:
        verdict = text(
            "inside.analogy_miss", lang, word=we.text, rank=f"{r.expected_rank:,}",
            sim=f"{r.expected_similarity:.3f}",
        )  # fmt: skip
    notes = [head, verdict] + [_pieces_note(w, lang) for w in (wa, wb, wc) if w.pieces > 1]
    notes.append(text("inside.analogy_note", lang))
    return "\n\n".join(n for n in notes if n), gr.Dataframe(table, visible=True)


# --- the KV cache ----------------------------------------------------------------------------------
@dataclasses.dataclass(slots=True)
class KvScreen(Outputs):
    text: Any = skip()
    meter: Any = skip()
    summary: Any = skip()


def _kv_summary(layout: inside.KvLayout, tokens: int, measured: int, lang: str) -> str:
    arch = layout.arch
    formula = layout.bytes_for(tokens)
    mha = layout.bytes_without_gqa(tokens)
    return text(
        "inside.kv_summary", lang,
        layers=arch.num_layers, kv=arch.num_kv_heads, heads=arch.num_heads, dim=arch.head_dim,
        bytes=memory_bytes(layout), dtype=layout.dtype, per_token=f"{layout.per_token:,}",
        tokens=tokens, measured=f"{measured / 1024:,.1f}", formula=f"{formula / 1024:,.1f}",
        mha=f"{mha / 1024:,.1f}", saved=f"{1 - formula / mha:.0%}" if mha else "0%",
        same=text("inside.kv_same" if measured == formula else "inside.kv_differs", lang),
    )  # fmt: skip


def memory_bytes(layout: inside.KvLayout) -> int:
    from llmviz.memory import DTYPE_BYTES

    return DTYPE_BYTES[layout.dtype]


def _kv_screen(decoder: Any, layout: inside.KvLayout, trace: dict[str, list[int]], lang: str) -> KvScreen:
    names = (text("inside.kv_measured", lang), text("inside.kv_formula", lang), text("inside.kv_mha", lang))
    fig = kv_figure(
        trace["tokens"], trace["measured"],
        [layout.bytes_for(n) for n in trace["tokens"]],
        [layout.bytes_without_gqa(n) for n in trace["tokens"]],
        names, text("inside.kv_title", lang), text("inside.kv_sub", lang, per=f"{layout.per_token:,}"),
        text("inside.kv_x", lang), text("inside.kv_y", lang),
    )  # fmt: skip
    shown = readable_decode(decoder.tokenizer, decoder.ids[len(decoder.prompt_ids):])
    return KvScreen(
        text=decoder.prompt + shown,
        meter=fig,
        summary=_kv_summary(layout, trace["tokens"][-1], trace["measured"][-1], lang),
    )


@handler
def _on_kv(prompt, model_key, n_tokens, request: gr.Request, progress=gr.Progress()):  # noqa: B008
    """Greedy generation, the cache measured after every token (summing its tensors' bytes)."""
    lang = lang_of(request)
    n = generation.check_max_new_tokens(n_tokens, limit=config.INSIDE_KV_MAX_NEW_TOKENS)
    loaded = get_model(model_key, PRECISION, progress)
    decoder = generation.Decoder(loaded.model, loaded.tokenizer, prompt)
    layout = inside.kv_layout(loaded.model)
    trace: dict[str, list[int]] = {"tokens": [], "measured": []}
    shown = 0.0
    for _ in generation.stream(decoder, SamplingSettings(temperature=0.0), n, rng=None):
        trace["tokens"].append(inside.cache_tokens(decoder.cache))
        trace["measured"].append(inside.cache_bytes(decoder.cache))
        if time.monotonic() - shown >= config.STREAM_UPDATE_S:
            yield _kv_screen(decoder, layout, trace, lang)
            shown = time.monotonic()
    if trace["tokens"]:
        yield _kv_screen(decoder, layout, trace, lang)


@handler
def _on_stop() -> None:
    return None  # the cancel (cancels=[...]) closes the generator: its loop ends at once


@handler
def _on_preset(choice, request: gr.Request):
    for prompt, target in LENS_PRESETS:
        if choice == prompt:
            return prompt, target
    return gr.skip(), gr.skip()


@handler
def _on_word_set(choice):
    return WORD_SETS.get(choice, gr.skip())


@handler
def _on_analogy_preset(choice):
    for row in ANALOGY_PRESETS:
        if choice == " − ".join(row[:2]) + " + " + row[2]:
            return row
    return gr.skip(), gr.skip(), gr.skip(), gr.skip()


def warm_up() -> None:
    """The opening lens preset, computed before the first click (``app.warm_up``)."""
    loaded = load_model(config.DEFAULT_BASE, PRECISION)
    _lens_of(loaded, tuple(inside.encode_prompt(loaded.tokenizer, LENS_PRESETS[0][0])))


# --- layout ------------------------------------------------------------------------------------------
def build() -> None:
    gr.Markdown(t("inside.intro"))
    model = model_dropdown(t("common.model"), config.DEFAULT_BASE, elem_id="inside-model")
    with gr.Tabs(overflow_behavior="wrap"):  # at 800 px a "…" menu hid sub-tabs
        with gr.Tab(t("inside.lens_tab"), id="inside-lens", elem_id="inside-lens-tab"):
            gr.Markdown(t("inside.lens_intro"))
            with gr.Row():
                prompt = gr.Textbox(LENS_PRESETS[0][0], label=t("inside.prompt"), lines=1, scale=3,
                                    elem_id="inside-prompt")  # fmt: skip
                target = gr.Textbox(LENS_PRESETS[0][1], label=t("inside.target"),
                                    info=t("inside.target_info"), scale=2, elem_id="inside-target")  # fmt: skip
            with gr.Row():
                preset = gr.Dropdown([p for p, _ in LENS_PRESETS], value=None, label=t("inside.presets"),
                                     scale=3, elem_id="inside-presets")  # fmt: skip
                run = gr.Button(t("inside.run"), variant="primary", scale=1, elem_id="inside-run")
            summary = gr.Markdown(elem_id="inside-summary")
            grid = gr.Dataframe(interactive=False, show_label=False, max_height=900,
                                elem_id="inside-grid")  # fmt: skip
            gr.Markdown(t("inside.grid_help"))
            with gr.Row():
                with gr.Column(scale=2, min_width=280):
                    cell = gr.Dataframe(interactive=False, label=t("inside.cell"), visible=False,
                                        elem_id="inside-cell")  # fmt: skip
                with gr.Column(scale=3, min_width=360):
                    curve = gr.Plot(show_label=False, elem_id="inside-curve")
            state = gr.State(None)
        with gr.Tab(t("inside.emb_tab"), id="inside-emb", elem_id="inside-emb-tab"):
            gr.Markdown(t("inside.emb_intro"))
            with gr.Row():
                word = gr.Textbox("猫", label=t("inside.word"), scale=3, elem_id="inside-word")
                nb_run = gr.Button(t("inside.nb_run"), variant="primary", scale=1, elem_id="inside-nb-run")
            nb_note = gr.Markdown(elem_id="inside-nb-note")
            nb_table = gr.Dataframe(interactive=False, show_label=False, visible=False,
                                    elem_id="inside-nb-table")  # fmt: skip
            gr.Markdown(t("inside.map_head"))
            with gr.Row():
                words = gr.Textbox(WORD_SETS["vehicles"], label=t("inside.words"), lines=2, scale=3,
                                   info=t("inside.words_info"), elem_id="inside-words")  # fmt: skip
                with gr.Column(scale=1):
                    word_set = gr.Dropdown([(t(f"inside.set.{k}"), k) for k in WORD_SETS], value=None,
                                           label=t("inside.word_sets"), elem_id="inside-word-sets")  # fmt: skip
                    map_run = gr.Button(t("inside.map_run"), variant="primary", elem_id="inside-map-run")
            map_plot = gr.Plot(show_label=False, elem_id="inside-map")
            map_note = gr.Markdown(elem_id="inside-map-note")
            gr.Markdown(t("inside.analogy_head_md"))
            with gr.Row():
                wa = gr.Textbox(ANALOGY_PRESETS[0][0], label="A", elem_id="inside-an-a")
                wb = gr.Textbox(ANALOGY_PRESETS[0][1], label=t("inside.minus"), elem_id="inside-an-b")
                wc = gr.Textbox(ANALOGY_PRESETS[0][2], label=t("inside.plus"), elem_id="inside-an-c")
                we = gr.Textbox(ANALOGY_PRESETS[0][3], label=t("inside.expected"), elem_id="inside-an-expected")
            with gr.Row():
                an_preset = gr.Dropdown(
                    [" − ".join(r[:2]) + " + " + r[2] for r in ANALOGY_PRESETS], value=None,
                    label=t("inside.presets"), scale=3, elem_id="inside-an-presets",
                )  # fmt: skip
                an_run = gr.Button(t("inside.analogy_run"), variant="primary", scale=1, elem_id="inside-an-run")
            an_note = gr.Markdown(elem_id="inside-an-note")
            an_table = gr.Dataframe(interactive=False, show_label=False, visible=False,
                                    elem_id="inside-an-table")  # fmt: skip
        with gr.Tab(t("inside.kv_tab"), id="inside-kv", elem_id="inside-kv-tab"):
            gr.Markdown(t("inside.kv_intro"))
            with gr.Row():
                kv_prompt = gr.Textbox(KV_PRESET, label=t("inside.prompt"), scale=3, elem_id="inside-kv-prompt")
                kv_n = limit_slider(1, config.INSIDE_KV_MAX_NEW_TOKENS, value=60, step=1,
                                    label=t("inside.kv_n"), scale=2, elem_id="inside-kv-n")  # fmt: skip
            with gr.Row():
                kv_run = gr.Button(t("inside.kv_run"), variant="primary", elem_id="inside-kv-run")
                kv_stop = gr.Button(t("common.stop"), variant="stop", elem_id="inside-kv-stop")
            kv_summary = gr.Markdown(elem_id="inside-kv-summary")
            kv_meter = gr.Plot(show_label=False, elem_id="inside-kv-meter")
            kv_text = gr.Textbox(label=t("inside.kv_text"), lines=3, interactive=False, elem_id="inside-kv-text")

    lens_screen = LensScreen.wire(state=state, summary=summary, grid=grid, cell=cell, curve=curve)
    run.click(_on_lens, [prompt, model, target], lens_screen, api_name="inside_lens", **MODEL)
    prompt.submit(_on_lens, [prompt, model, target], lens_screen, api_name=False, **MODEL)
    preset.input(_on_preset, preset, [prompt, target], api_name="inside_preset", **LIGHT).then(
        _on_lens, [prompt, model, target], lens_screen, api_name=False, **MODEL
    )
    grid.select(_on_cell, [state, target], lens_screen, api_name="inside_cell", **MODEL)
    nb_run.click(_on_neighbours, [word, model], [nb_note, nb_table], api_name="inside_neighbours", **MODEL)
    word.submit(_on_neighbours, [word, model], [nb_note, nb_table], api_name=False, **MODEL)
    word_set.input(_on_word_set, word_set, words, api_name="inside_word_set", **LIGHT).then(
        _on_map, [words, model], [map_plot, map_note], api_name=False, **MODEL
    )
    map_run.click(_on_map, [words, model], [map_plot, map_note], api_name="inside_map", **MODEL)
    an_preset.input(_on_analogy_preset, an_preset, [wa, wb, wc, we], api_name="inside_analogy_preset",
                    **LIGHT).then(_on_analogy, [wa, wb, wc, we, model], [an_note, an_table],
                                  api_name=False, **MODEL)  # fmt: skip
    an_run.click(_on_analogy, [wa, wb, wc, we, model], [an_note, an_table], api_name="inside_analogy", **MODEL)
    kv_screen = KvScreen.wire(text=kv_text, meter=kv_meter, summary=kv_summary)
    kv_event = kv_run.click(_on_kv, [kv_prompt, model, kv_n], kv_screen, api_name="inside_kv", **MODEL)
    kv_stop.click(_on_stop, None, None, cancels=[kv_event], api_name="inside_kv_stop", **LIGHT)
