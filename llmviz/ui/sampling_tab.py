"""The sampling tab: a model's full next-token distribution, filtered, drawn one token at a time.

Wires components to ``llmviz.generation`` / ``llmviz.sampling`` (the maths) and
``llmviz.plots.sampling`` (the figures). Per-user state is one ``generation.Session`` in a
``gr.State`` (decoder with KV cache, seeded generator, history). Model work runs in the MODEL
queue, streaming and the experiment in GENERATE, re-filtering cached logits in LIGHT.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import gradio as gr
import pandas as pd

from llmviz import config, lane
from llmviz.generation import (
    Session,
    candidate_labels,
    check_seed,
    encode_prompt,
    temperature_experiment,
    text_groups,
)
from llmviz.models import load_model
from llmviz.plots.sampling import (
    CandidateBars,
    ColoredPiece,
    candidates_figure,
    colored_text_html,
    nucleus_figure,
    stat_cards_html,
)
from llmviz.sampling import SamplingSettings, SamplingStep
from llmviz.tokens import labels_of, readable_decode, tail_ids, token_pieces
from llmviz.ui.common import (
    GENERATE,
    LIGHT,
    MODEL,
    Outputs,
    get_model,
    handler,
    limit_slider,
    model_dropdown,
    skip,
    slider_changes,
    state_field,
)
from llmviz.ui.i18n import lang_of, t, text

PRESETS = [
    "こんにちは、",
    "昔々、あるところに",
    "日本の首都は",
    "The capital of France is",
    "Once upon a time, there was a",
    "My favourite food is",
]


@dataclasses.dataclass(slots=True)
class Screen(Outputs):
    """Every output of the step-by-step view (view, step, force, reset, refilter, generate)."""

    bars: Any = skip()
    curve: Any = skip()
    stats: Any = skip()
    summary: Any = skip()
    choices: Any = skip()
    text: Any = skip()
    history: Any = skip()
    state: Any = state_field()


#: The experiment's own prompt: at temperature 0 Gemma 3 270M repeats itself here (「懐かしい懐かしい…」,
#: the textbook's point about greedy decoding), while 「こんにちは、」 only gives markup (<strong>…).
EXPERIMENT_PROMPT = "昔々、あるところに"
DEFAULT_SEED = 42
DEFAULT_N_TOKENS = 30
PRECISION = config.SAMPLING_PRECISION


# --- rendering (no maths: formats what the core computed) -------------------------------------------
def _pct(p: float) -> str:
    return f"{p:.1%}" if p >= 0.001 else f"{p:.2e}"


def _settings(temperature: Any, top_k: Any, top_p: Any, min_p: Any) -> SamplingSettings:
    return SamplingSettings(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p)


def _top_n(value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = config.SAMPLING_TOP_N
    return min(max(n, 1), config.SAMPLING_MAX_TOP_N)


def _context(session: Session, chars: int = 18) -> str:
    tok = session.decoder.tokenizer
    tail = readable_decode(tok, tail_ids(tok, session.decoder.ids, 12))
    tail = tail.replace("\n", "↵")
    return tail if len(tail) <= chars else "…" + tail[-chars:]


def _charts(session: Session, view: SamplingStep, top_n: int, lang: str) -> Screen:
    ids = view.top_ids(top_n)
    labels = candidate_labels(session.decoder.tokenizer, session.decoder.ids, ids)
    removed = [text(f"sampling.removed.{r}", lang) if r else "" for r in view.removed_by(ids)]
    bars = CandidateBars(
        labels=labels,
        original=view.original_probs[ids].tolist(),
        tempered=view.tempered_probs[ids].tolist(),
        final=view.final_probs[ids].tolist(),
        removed_by=removed,
    )
    names = {
        k: text(f"sampling.legend.{k}", lang)
        for k in ("original", "tempered", "final", "removed", "probability")
    }
    title = text("sampling.chart_title", lang, context=_context(session))
    subtitle = text("sampling.chart_subtitle", lang, n=len(ids), vocab=view.vocab_size)
    bars_fig = candidates_figure(bars, names, title, subtitle)
    curve = view.nucleus_curve(config.SAMPLING_CURVE_N)
    curve_names = {
        k: text(f"sampling.curve.{k}", lang)
        for k in ("curve", "threshold", "nucleus", "rank", "cumulative")
    }
    curve_fig = nucleus_figure(
        curve,
        view.settings.top_p,
        view.nucleus_size,
        curve_names,
        text("sampling.curve.title", lang),
        text("sampling.curve.subtitle", lang),
    )
    top = int(ids[0])
    cards = [
        (
            text("sampling.stat.entropy", lang),
            f"{view.entropy_bits:.2f} bit",
            text("sampling.stat.entropy_hint", lang),
        ),
        (
            text("sampling.stat.choices", lang),
            f"{view.effective_choices:,.1f}",
            text("sampling.stat.choices_hint", lang),
        ),
        (
            text("sampling.stat.tempered", lang),
            f"{view.tempered_choices:,.1f}",
            text("sampling.stat.tempered_hint", lang, t=f"{view.settings.temperature:g}"),
        ),
        (
            text("sampling.stat.survivors", lang),
            f"{view.n_survivors:,}",
            text("sampling.stat.survivors_hint", lang, vocab=view.vocab_size),
        ),
        (
            text("sampling.stat.mass", lang),
            _pct(view.survivor_mass),
            text("sampling.stat.mass_hint", lang),
        ),
        (
            text("sampling.stat.top", lang),
            _pct(float(view.original_probs[top])),
            text("sampling.stat.top_hint", lang, token=f"「{labels[0]}」"),
        ),
    ]
    choices = [
        (f"{lbl}  ·  {_pct(float(view.original_probs[i]))}  ·  id {int(i)}", int(i))
        for lbl, i in zip(labels, ids, strict=True)
    ]
    return Screen(
        bars=bars_fig,
        curve=curve_fig,
        stats=stat_cards_html(cards),
        choices=gr.update(choices=choices, value=None),
    )


def _colored_text(session: Session, lang: str) -> str:
    dec = session.decoder
    out = [
        ColoredPiece(
            g.text,
            g.prob,
            g.rank,
            g.forced,
            " | ".join(
                text("sampling.text.tooltip", lang, step=j + 1, p=_pct(r.prob), rank=r.rank)
                for j, r in ((j, session.history[j]) for j in g.steps)
            ),
        )
        for g in text_groups(dec.tokenizer, dec.ids, len(dec.prompt_ids), session.history)
    ]
    return colored_text_html(
        dec.prompt, out, text("sampling.text.legend", lang), text("sampling.text.empty", lang)
    )


def _history(session: Session, lang: str) -> pd.DataFrame:
    dec = session.decoder
    labels = labels_of(token_pieces(dec.tokenizer, dec.ids))[len(dec.prompt_ids) :]
    cols = ["step", "token", "id", "p", "p_final", "rank", "survivors", "settings", "how", "seed"]
    rows = []
    for i, (h, label) in enumerate(zip(session.history, labels, strict=False)):
        s = h.settings
        how = "forced" if h.forced else ("greedy" if s.greedy else "sampled")
        rows.append(
            [
                i + 1,
                label,
                h.token_id,
                _pct(h.prob),
                _pct(h.final_prob),
                h.rank,
                h.survivors,
                f"{s.temperature:g} / {s.top_k} / {s.top_p:g} / {s.min_p:g}",
                text(f"sampling.how.{how}", lang),
                h.seed,
            ]
        )
    return pd.DataFrame(rows[::-1], columns=[text(f"sampling.col.{c}", lang) for c in cols])


def _summary(session: Session, lang: str, last: SamplingStep | None = None) -> str:
    if session.decoder.finished:
        return text("sampling.summary.ended", lang)
    if last is None or last.chosen is None or not session.history:
        return text("sampling.summary.view", lang, seed=session.seed, n=session.decoder.n_generated)
    h = session.history[-1]
    label = candidate_labels(session.decoder.tokenizer, session.decoder.ids[:-1], [h.token_id])[0]
    key = "sampling.summary.forced" if h.forced else "sampling.summary.step"
    return text(
        key,
        lang,
        step=len(session.history),
        seed=session.seed,
        token=f"「{label}」",
        p=_pct(h.prob),
        rank=h.rank,
        final=_pct(h.final_prob),
        survivors=h.survivors,
    )


def _screen(
    session: Session,
    settings: SamplingSettings,
    top_n: Any,
    lang: str,
    last: SamplingStep | None = None,
) -> Screen:
    """Every output of the step-by-step view."""
    screen = _charts(session, session.view(settings), _top_n(top_n), lang)
    screen.summary = _summary(session, lang, last)
    screen.text = _colored_text(session, lang)
    screen.history = _history(session, lang)
    screen.state = session
    return screen


def _session(
    state: Session | None, prompt: str, model_key: str, seed: Any, progress: Any
) -> Session:
    """The user's session if it still matches prompt, seed and model; otherwise a fresh one."""
    check_seed(seed)
    if isinstance(state, Session) and state.matches(prompt, seed, model_key):
        return state
    loaded = get_model(model_key, PRECISION, progress)
    return Session.start(loaded.model, loaded.tokenizer, prompt, seed, model_key=model_key)


# --- handlers ---------------------------------------------------------------------------------------
@handler
def _on_view(
    prompt,
    model_key,
    seed,
    temperature,
    top_k,
    top_p,
    min_p,
    top_n,
    state,
    request: gr.Request,
    progress=gr.Progress(),
):  # noqa: B008
    settings = _settings(temperature, top_k, top_p, min_p)
    session = _session(state, prompt, model_key, seed, progress)
    return _screen(session, settings, top_n, lang_of(request))


@handler
def _on_refilter(temperature, top_k, top_p, min_p, top_n, state, request: gr.Request):
    """Settings changed: re-filter the cached logits (no model call)."""
    settings = _settings(temperature, top_k, top_p, min_p)  # bad values are said even so
    if not isinstance(state, Session):
        return Screen()
    return _screen(state, settings, top_n, lang_of(request))


@handler
def _on_step(
    prompt,
    model_key,
    seed,
    temperature,
    top_k,
    top_p,
    min_p,
    top_n,
    state,
    request: gr.Request,
    progress=gr.Progress(),
):  # noqa: B008
    settings = _settings(temperature, top_k, top_p, min_p)
    session = _session(state, prompt, model_key, seed, progress)
    last = session.step(settings)
    return _screen(session, settings, top_n, lang_of(request), last)


@handler
def _on_force(
    prompt,
    model_key,
    seed,
    temperature,
    top_k,
    top_p,
    min_p,
    top_n,
    token_id,
    state,
    request: gr.Request,
    progress=gr.Progress(),
):  # noqa: B008
    settings = _settings(temperature, top_k, top_p, min_p)
    session = _session(state, prompt, model_key, seed, progress)
    last = session.step(settings, forced=token_id)
    return _screen(session, settings, top_n, lang_of(request), last)


@handler
def _on_reset(
    prompt,
    model_key,
    seed,
    temperature,
    top_k,
    top_p,
    min_p,
    top_n,
    request: gr.Request,
    progress=gr.Progress(),
):  # noqa: B008
    settings = _settings(temperature, top_k, top_p, min_p)
    session = _session(None, prompt, model_key, seed, progress)
    return _screen(session, settings, top_n, lang_of(request))


@handler
def _on_pick(token_id):
    return token_id


@handler
def _on_generate(
    prompt,
    model_key,
    seed,
    temperature,
    top_k,
    top_p,
    min_p,
    top_n,
    n_tokens,
    state,
    request: gr.Request,
    progress=gr.Progress(),
):  # noqa: B008
    """Stream tokens into the colored text; the charts follow at the end."""
    lang = lang_of(request)
    settings = _settings(temperature, top_k, top_p, min_p)
    session = _session(state, prompt, model_key, seed, progress)
    shown = 0.0  # when the page was last updated
    for count, _ in enumerate(session.stream(settings, n_tokens), start=1):
        # the colored text and the history are rebuilt whole on each update: a few per second
        # are what an eye follows, and what keeps a 200-token stream as fast as plain generate
        if time.monotonic() - shown < config.STREAM_UPDATE_S:
            continue
        note = text("sampling.summary.stream", lang, n=count, seed=session.seed)
        yield Screen(
            summary=note,
            text=_colored_text(session, lang),
            history=_history(session, lang),
            state=session,
        )
        shown = time.monotonic()
    yield _screen(session, settings, top_n, lang)


@handler
def _on_stop(state):
    if isinstance(state, Session):
        state.stop.set()


@handler
def _on_experiment(prompt, model_key, seed, request: gr.Request, progress=gr.Progress()):  # noqa: B008
    lang = lang_of(request)
    seed = check_seed(seed)
    loaded = get_model(model_key, PRECISION, progress)
    rows = lane.shared(  # the same prompt and seed give the same table: computed once per class
        loaded.model,
        ("experiment", str(prompt), seed),
        lambda: tuple(temperature_experiment(loaded.model, loaded.tokenizer, prompt, seed=seed)),
    )
    cols = ["temperature", "sample", "seed", "text", "mean_p"]
    data = [
        [f"{r.temperature:g}", r.sample, r.seed, r.text.replace("\n", " ↵ "), _pct(r.mean_prob)]
        for r in rows
    ]
    table = pd.DataFrame(data, columns=[text(f"sampling.col.{c}", lang) for c in cols])
    return gr.update(value=table, visible=True)


def warm_up() -> None:
    """Load the default model and compute the presets' first views (shared by every session),
    so the class's first clicks are answered at once. Called by ``app.warm_up``."""
    loaded = load_model(config.DEFAULT_BASE, PRECISION)
    for prompt in PRESETS:
        lane.last_logits(loaded.model, loaded.tokenizer, encode_prompt(loaded.tokenizer, prompt))


# --- layout -------------------------------------------------------------------------------------------
def build() -> None:
    gr.Markdown(t("sampling.intro"))
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(
                value=PRESETS[0],
                label=t("sampling.prompt"),
                info=t("sampling.prompt_info"),
                lines=2,
                elem_id="sampling-prompt",
            )
            gr.Examples([[p] for p in PRESETS], inputs=[prompt], label=t("sampling.presets"))
        with gr.Column(scale=2):
            model = model_dropdown(t("common.model"), config.DEFAULT_BASE, elem_id="sampling-model")
            seed = gr.Number(
                value=DEFAULT_SEED,
                label=t("common.seed"),
                info=t("sampling.seed_info"),
                elem_id="sampling-seed",
            )
            top_n = gr.Slider(
                5,
                config.SAMPLING_MAX_TOP_N,
                value=config.SAMPLING_TOP_N,
                step=1,
                label=t("sampling.top_n"),
            )
    with gr.Row(equal_height=True):
        temperature = limit_slider(
            0,
            config.SAMPLING_MAX_TEMPERATURE,
            value=1.0,
            step=0.05,
            label=t("sampling.temperature"),
            info=t("sampling.temperature_info"),
            elem_id="sampling-temperature",
        )
        top_k = gr.Number(
            value=config.SAMPLING_DEFAULT_TOP_K,
            label=t("sampling.top_k"),
            info=t("sampling.top_k_info"),
            elem_id="sampling-top-k",
        )
        top_p = limit_slider(
            0,
            1,
            value=1.0,
            step=0.01,
            label=t("sampling.top_p"),
            info=t("sampling.top_p_info"),
            elem_id="sampling-top-p",
        )
        min_p = limit_slider(
            0,
            1,
            value=0.0,
            step=0.01,
            label=t("sampling.min_p"),
            info=t("sampling.min_p_info"),
            elem_id="sampling-min-p",
        )
    gr.Markdown(t("sampling.order"), elem_id="sampling-order")
    with gr.Row():
        show_btn = gr.Button(t("sampling.show"), variant="secondary", elem_id="sampling-show")
        step_btn = gr.Button(t("sampling.step"), variant="primary", elem_id="sampling-step")
        reset_btn = gr.Button(t("sampling.reset"), variant="secondary", elem_id="sampling-reset")
    summary = gr.Markdown(elem_id="sampling-summary")
    stats = gr.HTML(elem_id="sampling-stats")
    with gr.Row():
        with gr.Column(scale=3, min_width=480):  # narrower: the charts stack
            bars = gr.Plot(show_label=False, elem_id="sampling-bars")
        with gr.Column(scale=2, min_width=360):
            curve = gr.Plot(show_label=False, elem_id="sampling-curve")
    with gr.Row(equal_height=True):
        force_choice = gr.Dropdown(
            choices=[], label=t("sampling.force_choice"), scale=3, elem_id="sampling-force-choice"
        )
        force_id = gr.Number(
            value=None,
            label=t("sampling.force_id"),
            info=t("sampling.force_id_info"),
            scale=2,
            elem_id="sampling-force-id",
        )
        force_btn = gr.Button(t("sampling.force"), scale=1, elem_id="sampling-force")
    gr.Markdown(t("sampling.text_title"))
    colored = gr.HTML(elem_id="sampling-text")
    with gr.Row(equal_height=True):
        n_tokens = gr.Number(
            value=DEFAULT_N_TOKENS,
            label=t("sampling.n_tokens"),
            info=t("sampling.n_tokens_info"),
            elem_id="sampling-n-tokens",
        )
        gen_btn = gr.Button(t("sampling.generate"), variant="primary", elem_id="sampling-generate")
        stop_btn = gr.Button(t("common.stop"), variant="stop", elem_id="sampling-stop")
    with gr.Accordion(t("sampling.history_title"), open=False):
        history = gr.Dataframe(interactive=False, wrap=True, elem_id="sampling-history")
    gr.Markdown(t("sampling.experiment_title"))
    gr.Markdown(t("sampling.experiment_intro"))
    with gr.Row(equal_height=True):
        exp_prompt = gr.Textbox(
            value=EXPERIMENT_PROMPT,
            label=t("sampling.experiment_prompt"),
            info=t("sampling.experiment_prompt_info"),
            scale=3,
            elem_id="sampling-experiment-prompt",
        )
        exp_btn = gr.Button(t("sampling.experiment_run"), scale=1, elem_id="sampling-experiment")
    exp_table = gr.Dataframe(
        interactive=False,
        wrap=True,
        label=t("sampling.experiment_table"),
        visible=False,  # until the first run: an empty table shows meaningless headers
        column_widths=["11%", "8%", "8%", "58%", "15%"],
        elem_id="sampling-experiment-table",
    )
    state = gr.State(None)

    knobs = [temperature, top_k, top_p, min_p, top_n]
    where = [prompt, model, seed, *knobs]
    view_outputs = Screen.wire(
        bars=bars,
        curve=curve,
        stats=stats,
        summary=summary,
        choices=force_choice,
        text=colored,
        history=history,
        state=state,
    )
    gr.on(
        [show_btn.click, prompt.submit],
        _on_view,
        [*where, state],
        view_outputs,
        api_name="sampling_view",
        **MODEL,
    )
    step_btn.click(_on_step, [*where, state], view_outputs, api_name="sampling_step", **MODEL)
    force_btn.click(
        _on_force, [*where, force_id, state], view_outputs, api_name="sampling_force", **MODEL
    )
    reset_btn.click(_on_reset, where, view_outputs, api_name="sampling_reset", **MODEL)
    force_choice.input(_on_pick, force_choice, force_id, api_name="sampling_pick", **LIGHT)
    gr.on(
        [*slider_changes(temperature, top_p, min_p, top_n), top_k.submit, top_k.blur],
        _on_refilter,
        [*knobs, state],
        view_outputs,
        api_name="sampling_refilter",
        trigger_mode="always_last",
        **LIGHT,
    )
    gen_event = gen_btn.click(
        _on_generate,
        [*where, n_tokens, state],
        view_outputs,
        api_name="sampling_generate",
        **GENERATE,
    )
    stop_btn.click(_on_stop, state, None, cancels=[gen_event], api_name="sampling_stop", **LIGHT)
    exp_btn.click(
        _on_experiment,
        [exp_prompt, model, seed],
        exp_table,
        api_name="sampling_experiment",
        **GENERATE,
    )
