"""The base-vs-instruct tab: one prompt, a base and an instruct model streaming side by side.

Wiring only: prompts come from ``llmviz.compare``, generation from ``llmviz.streams`` (two worker
threads merged into one queue; this handler is the gradio generator that drains it), figures from
``llmviz.plots.compare``. Per-user data is a ``StreamSlot`` in ``gr.State``: the Stop button and
a second click reach the running threads through it.
"""

from __future__ import annotations

import dataclasses
import functools
import html
from typing import Any

import gradio as gr

from llmviz import compare, config
from llmviz.compare import BuiltPrompt
from llmviz.errors import UserError
from llmviz.models import get_spec, load_tokenizer, offered_keys
from llmviz.plots.compare import BASE, INSTRUCT, Panel, first_token_figure
from llmviz.streams import ColumnResult, Job, Sampling, StreamSlot, stop_token_ids
from llmviz.ui import links_ui
from llmviz.ui.common import (
    GENERATE,
    LIGHT,
    Outputs,
    error_message,
    get_model,
    handler,
    limit_slider,
    model_dropdown,
    skip,
)
from llmviz.ui.i18n import lang_of, t, text

PRECISION = config.COMPARE_PRECISION
DEFAULT_PRESET = "capital_en"
JA_PRESET = "capital_ja"  # the default in the Japanese UI
SIDES = ("left", "right")
COLORS = (BASE, INSTRUCT)

SPECIAL_STYLE = (
    "background:#e0e7ff;color:#3730a3;border-radius:4px;padding:0 3px;font-weight:600;"
    "border:1px solid #a5b4fc"
)
NEWLINE_STYLE = "color:#f59e0b;font-weight:700"
BOX_STYLE = (
    "white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,'Noto Sans Mono CJK JP',"
    "monospace;font-size:15px;line-height:1.6;background:#f8fafc;border:1px solid #e2e8f0;"
    "border-radius:8px;padding:10px 12px;margin:4px 0"
)


# --- run-time text (translated on the server) -----------------------------------------------------
def _model_name(key: str) -> str:
    try:
        return get_spec(key).display
    except Exception:  # noqa: BLE001 - a bad name is reported when the user runs
        return str(key)[:80]


def _pair_note(left_key: str, right_key: str, lang: str) -> str:
    try:
        left, right = get_spec(left_key), get_spec(right_key)
    except Exception:  # noqa: BLE001
        return ""
    kind = compare.pair_kind(left, right)
    if kind == "same_model":
        return text("cmp.pair_note_same_model", lang)
    if kind == "same_family" and (left.key, right.key) == compare.resolve_pair("default"):
        return text("cmp.pair_note_default", lang)
    if kind == "same_family":
        return text("cmp.pair_note_same_family", lang, left=left.display, right=right.display)
    if left.is_packaged and right.is_packaged:
        return text("cmp.pair_note_cross", lang)
    return text(
        "cmp.pair_note_mixed",
        lang,
        left=left.display,
        right=right.display,
        lfam=left.family,
        rfam=right.family,
    )


def _column_head(side: int, key: str, lang: str) -> str:
    return text(
        "cmp.column_head", lang, side=text(f"cmp.side.{SIDES[side]}", lang), model=_model_name(key)
    )


def _prompt_html(built: BuiltPrompt, lang: str, shots: str | None = None) -> str:
    """The exact model input with special tokens highlighted and line breaks marked."""
    if built.template_used:
        how = text("cmp.how.template", lang)
    elif built.template_missing:
        how = text("cmp.how.no_template", lang)
    else:
        how = text("cmp.how.raw", lang)
    if shots and shots != "zero":
        how += " · " + text(
            "cmp.how.shots", lang, shots=text(f"cmp.shots.{shots}", lang), n=built.examples_used
        )
    parts = []
    for piece, special in built.segments:
        escaped = html.escape(piece)
        if special:
            parts.append(f'<span class="cmp-special" style="{SPECIAL_STYLE}">{escaped}</span>')
        else:
            parts.append(escaped.replace("\n", f'<span style="{NEWLINE_STYLE}">↵</span>\n'))
    head = html.escape(text("cmp.exact_heading", lang))
    count = text("cmp.prompt_head", lang, n=built.n_tokens, how=how).replace("**", "")
    return (
        f'<div class="cmp-exact"><div style="font-weight:600;margin-top:6px">{head}</div>'
        f'<div class="cmp-count" style="color:#475569">{html.escape(count)}</div>'
        f'<div class="cmp-prompt" style="{BOX_STYLE}">{"".join(parts)}</div>'
        f'<div style="color:#64748b;font-size:13px">{html.escape(text("cmp.prompt_legend", lang))}'
        "</div></div>"
    )


def _status(result: ColumnResult, lang: str) -> str:
    first = result.first_token_s or 0.0
    common = dict(n=result.n_tokens, first=first, tps=result.tokens_per_s)
    if result.finish == "eos":
        return text("cmp.status.eos", lang, token=f"`{result.stop_token}`", **common)
    if result.finish == "error":
        return text("cmp.status.error", lang, error=result.error)
    return text(f"cmp.status.{result.finish}", lang, **common)


@dataclasses.dataclass(slots=True)
class Screen(Outputs):
    """What one yield of a run shows; fields left at ``skip()`` stay as they are on screen."""

    left_text: Any = skip()
    right_text: Any = skip()
    left_status: Any = skip()
    right_status: Any = skip()
    left_prompt: Any = skip()
    right_prompt: Any = skip()
    plot: Any = skip()


def _figure(panels: dict[int, Panel], lang: str) -> Any:
    return first_token_figure(
        [panels[c] for c in sorted(panels)],
        text("cmp.plot_prob", lang),
        empty_text=text("cmp.plot_empty", lang),
    )


# --- handlers ---------------------------------------------------------------------------------
@handler
def _on_preset(key: str):
    preset = compare.get_preset(key)
    return preset.prompt, preset.examples_text, preset.task, preset.shots


@handler
def _on_page(request: gr.Request):
    """The default question in the reader's language (its preset fills the rest)."""
    if links_ui.claims(request, "compare", "prompt"):
        return gr.skip()  # a link's question wins over the language's default one
    return JA_PRESET if lang_of(request) == "ja" else gr.skip()


@handler
def _on_pair(pair: str, request: gr.Request):
    left, right = compare.resolve_pair(pair)
    lang = lang_of(request)
    offered = offered_keys()
    missing = [get_spec(k).display for k in (left, right) if k not in offered]
    if missing:  # a Hub pair where the Hub is not offered: say so once, keep the models
        note = text("cmp.pair_not_offered", lang, models=", ".join(dict.fromkeys(missing)))
        return gr.skip(), gr.skip(), gr.skip(), note, gr.skip(), gr.skip()
    # The same-model contrast is about the template: switch it on for the right-hand column.
    template = True if pair == compare.SAME_MODEL_PAIR else gr.skip()
    return left, right, template, _pair_note(left, right, lang), *_heads(left, right, lang)


def _heads(left: str, right: str, lang: str) -> tuple[str, str]:
    return _column_head(0, left, lang), _column_head(1, right, lang)


@handler
def _on_models(left: str, right: str, request: gr.Request):
    get_spec(left), get_spec(right)  # a path, a shell string or None is refused, never shown
    lang = lang_of(request)
    return _pair_note(left, right, lang), *_heads(left, right, lang)


@functools.lru_cache(maxsize=8)
def _tokenizer(key: str) -> Any:
    """Tokenizers for the live preview, kept (reading Gemma's 33 MB tokenizer takes ~1 s)."""
    return load_tokenizer(key)


def _warning_box(err: UserError, lang: str) -> str:
    message = html.escape(error_message(err, lang))
    return f'<div class="cmp-exact" style="color:#b45309">⚠️ {message}</div>'


def _preview_one(key: str, lang: str, label_shots: str | None, **kwargs: Any) -> str:
    try:
        built = compare.build_prompt(_tokenizer(get_spec(key).key), **kwargs)
    except UserError as err:  # half-typed input: say what is wrong in place, no pop-up
        return _warning_box(err, lang)
    return _prompt_html(built, lang, label_shots)


@handler
def _on_preview(
    prompt, left_key, right_key, use_template, shots, examples_text, task, cot, request: gr.Request
):
    lang = lang_of(request)
    try:
        req = compare.check_request(prompt, examples_text, shots, task, cot)
    except UserError as err:  # half-typed input: say what is wrong in place, no pop-up
        box = _warning_box(err, lang)
        return box, box
    common = dict(question=req.question, cot=req.cot)
    return (
        _preview_one(
            left_key, lang, req.shots, shots=req.shots, examples=req.examples, task=req.task,
            **common,
        ),
        _preview_one(right_key, lang, None, use_template=bool(use_template), **common),
    )  # fmt: skip


@handler
def _on_run(
    prompt: str,
    left_key: str,
    right_key: str,
    use_template: bool,
    shots: str,
    examples_text: str,
    task: str,
    cot: str,
    max_new_tokens: float,
    temperature: float,
    top_p: float,
    seed: float,
    slot: StreamSlot,
    request: gr.Request,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 - gradio's idiom
):
    lang = lang_of(request)
    # Everything a student can get wrong is checked before any model is loaded.
    req = compare.check_request(prompt, examples_text, shots, task, cot)
    sampling = Sampling(max_new_tokens, temperature, top_p, seed)
    if not isinstance(slot, StreamSlot):  # the API without a session state
        slot = StreamSlot()
    left = get_model(left_key, PRECISION, progress)
    right = get_model(right_key, PRECISION, progress)
    built = (
        compare.build_prompt(
            left.tokenizer, req.question, shots=req.shots, examples=req.examples, task=req.task,
            cot=req.cot,
        ),
        compare.build_prompt(
            right.tokenizer, req.question, use_template=bool(use_template), cot=req.cot
        ),
    )
    tokenizers = (left.tokenizer, right.tokenizer)
    jobs = [
        Job(m.model, m.tokenizer, b.input_ids, stop_token_ids(m.tokenizer, m.model))
        for m, b in zip((left, right), built, strict=True)
    ]
    texts: list[str] = ["", ""]
    panels: dict[int, Panel] = {}
    waiting = text("cmp.status.waiting", lang)
    # Built before the threads start: once two generations hold the GIL in turns, pure-Python
    # work here slows down ~10x (an empty plotly figure took ~2 s). The old chart is cleared
    # (None) rather than redrawn empty for the same reason.
    full = Screen(
        left_text="", right_text="", left_status=waiting, right_status=waiting,
        left_prompt=_prompt_html(built[0], lang, req.shots),
        right_prompt=_prompt_html(built[1], lang), plot=gr.update(value=None),
    )  # fmt: skip
    first_screen = full.values()
    stream = slot.start(jobs, sampling, config.COMPARE_THREADS_PER_STREAM)
    yield first_screen
    try:
        for ev in stream.events():
            if not slot.is_current(stream):
                return  # a second click restarted: the new run owns the outputs now
            changed = Screen()  # only what this event changes travels to the browser

            def put(name: str, value: Any, changed: Screen = changed) -> None:
                setattr(changed, name, value)
                setattr(full, name, value)

            side = SIDES[ev.column]
            if ev.kind == "first":
                cand = compare.top_candidates(
                    ev.first_logits, tokenizers[ev.column], config.COMPARE_TOP_K
                )
                title = text(
                    "cmp.plot_title",
                    lang,
                    side=text(f"cmp.side.{side}", lang),
                    model=(left, right)[ev.column].spec.display,
                )
                panels[ev.column] = Panel(title, cand.labels, cand.probs, COLORS[ev.column])
                if len(panels) == len(jobs):  # one figure for both: building one costs ~0.1 s
                    put("plot", _figure(panels, lang))
            elif ev.kind == "text":
                texts[ev.column] += ev.text
                put(f"{side}_text", texts[ev.column])
                put(
                    f"{side}_status",
                    text("cmp.status.running", lang, n=ev.n_tokens, s=ev.elapsed_s),
                )
            else:  # done: the decoded whole replaces the streamed pieces
                assert ev.result is not None
                final = ev.result.text
                if not final.strip() and ev.result.finish != "error":
                    final = text("cmp.empty_answer", lang)
                put(f"{side}_text", final)
                put(f"{side}_status", _status(ev.result, lang))
                if len(stream.results) == len(jobs) and len(panels) < len(jobs) and panels:
                    put("plot", _figure(panels, lang))  # a column failed before its first token
            yield changed
        yield full  # everything at the end: API callers get the whole picture
    finally:
        if slot.is_current(stream):
            stream.close()


@handler
def _on_stop(slot: StreamSlot, request: gr.Request):
    lang = lang_of(request)
    if isinstance(slot, StreamSlot) and slot.stop():
        msg = text("cmp.status.stop_pressed", lang)
        return msg, msg
    return gr.skip(), gr.skip()


# --- layout -----------------------------------------------------------------------------------
def build() -> None:
    preset = compare.PRESETS[DEFAULT_PRESET]
    left0, right0 = compare.resolve_pair("default")
    slot = gr.State(StreamSlot(), delete_callback=lambda s: s.stop())

    gr.Markdown(t("cmp.title"))
    gr.Markdown(t("cmp.intro"))
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            preset_dd = gr.Dropdown(
                choices=[(t(f"cmp.preset.{k}"), k) for k in compare.PRESETS],
                value=DEFAULT_PRESET,
                label=t("cmp.preset"),
                elem_id="cmp-preset",
            )
            prompt = gr.Textbox(
                value=preset.prompt,
                label=t("cmp.prompt"),
                info=t("cmp.prompt_info"),
                lines=2,
                max_lines=6,
                elem_id="cmp-prompt",
            )
            pair = gr.Radio(
                choices=[(t(f"cmp.pair.{k}"), k) for k in compare.PAIR_KEYS],
                value="default",
                label=t("cmp.pair"),
                info=t("cmp.pair_info"),
                elem_id="cmp-pair",
            )
            with gr.Row():
                # min_width: in a narrow column the boxes stack instead of clipping the names
                left_dd = model_dropdown(
                    t("cmp.left_model"), left0, elem_id="cmp-left-model", min_width=240
                )
                right_dd = model_dropdown(
                    t("cmp.right_model"), right0, elem_id="cmp-right-model", min_width=240
                )
            note = gr.Markdown(t("cmp.pair_note_default"), elem_id="cmp-pair-note")
        with gr.Column(scale=2):
            with gr.Accordion(t("cmp.settings"), open=True):
                template = gr.Checkbox(
                    value=True, label=t("cmp.template"), info=t("cmp.template_info"),
                    elem_id="cmp-template",
                )  # fmt: skip
                shots = gr.Radio(
                    choices=[(t(f"cmp.shots.{k}"), k) for k in compare.SHOTS],
                    value="zero",
                    label=t("cmp.shots"),
                    info=t("cmp.shots_info"),
                    elem_id="cmp-shots",
                )
                examples = gr.Textbox(
                    value=preset.examples_text,
                    label=t("cmp.examples"),
                    info=t("cmp.examples_info"),
                    lines=3,
                    max_lines=8,
                    elem_id="cmp-examples",
                )
                task = gr.Textbox(value=preset.task, label=t("cmp.task"), elem_id="cmp-task")
                cot = gr.Radio(
                    choices=[(t(f"cmp.cot.{k}"), k) for k in ("off", "en", "ja")],
                    value="off",
                    label=t("cmp.cot"),
                    elem_id="cmp-cot",
                )
                max_new = limit_slider(
                    1, config.MAX_NEW_TOKENS, value=config.COMPARE_DEFAULT_NEW_TOKENS, step=1,
                    label=t("cmp.max_tokens"), info=t("cmp.max_tokens_info"),
                    elem_id="cmp-max-new",
                )  # fmt: skip
                temperature = limit_slider(
                    0.0, 2.0, value=0.0, step=0.05,
                    label=t("cmp.temperature"), info=t("cmp.temperature_info"),
                    elem_id="cmp-temperature",
                )  # fmt: skip
                with gr.Row():
                    top_p = limit_slider(0.05, 1.0, value=1.0, step=0.05, label=t("cmp.top_p"))
                    seed = gr.Number(value=0, precision=0, label=t("cmp.seed"))
    with gr.Row():
        run_btn = gr.Button(t("cmp.run"), variant="primary", elem_id="cmp-run", scale=3)
        stop_btn = gr.Button(t("cmp.stop"), variant="stop", elem_id="cmp-stop", scale=1)

    heads, outs, statuses, prompts = [], [], [], []
    with gr.Row(equal_height=False):
        for side, key in zip(SIDES, (left0, right0), strict=True):
            with gr.Column(elem_id=f"cmp-col-{side}"):
                heads.append(gr.Markdown(f"### {_model_name(key)}"))
                outs.append(
                    gr.Textbox(
                        label=t("cmp.answer"),
                        lines=7,
                        max_lines=14,
                        interactive=False,
                        elem_id=f"cmp-out-{side}",
                    )
                )
                statuses.append(gr.Markdown(elem_id=f"cmp-status-{side}"))
                prompts.append(gr.HTML(elem_id=f"cmp-prompt-{side}"))
    gr.Markdown(t("cmp.dist_heading"))
    plot = gr.Plot(elem_id="cmp-plot", show_label=False)

    preset_dd.change(
        _on_preset, preset_dd, [prompt, examples, task, shots], api_name="compare_preset", **LIGHT
    )
    pair.change(
        _on_pair,
        pair,
        [left_dd, right_dd, template, note, *heads],
        api_name="compare_pair",
        **LIGHT,
    )
    root = gr.context.Context.root_block
    on_load = [root.load] if root is not None else []
    if root is not None:  # preset_dd.change then fills the question and its examples
        root.load(_on_page, None, preset_dd, api_name=False, **LIGHT)
    gr.on(
        [left_dd.change, right_dd.change, *on_load],
        _on_models,
        [left_dd, right_dd],
        [note, *heads],
        api_name="compare_models",
        **LIGHT,
    )
    # The exact prompts follow every edit at once (tokenizers only, no model): toggling the
    # template or the few-shot mode shows what changes before anything is generated.
    gr.on(
        [c.change for c in (prompt, left_dd, right_dd, template, shots, examples, task, cot)]
        + on_load,
        _on_preview,
        [prompt, left_dd, right_dd, template, shots, examples, task, cot],
        prompts,
        api_name="compare_preview",
        trigger_mode="always_last",
        **LIGHT,
    )
    run_event = run_btn.click(
        _on_run,
        [prompt, left_dd, right_dd, template, shots, examples, task, cot, max_new,
         temperature, top_p, seed, slot],
        Screen.wire(
            left_text=outs[0], right_text=outs[1], left_status=statuses[0],
            right_status=statuses[1], left_prompt=prompts[0], right_prompt=prompts[1], plot=plot,
        ),
        api_name="compare_run",
        trigger_mode="multiple",  # a second click restarts (StreamSlot stops the first run)
        **GENERATE,
    )  # fmt: skip
    stop_btn.click(_on_stop, slot, statuses, cancels=[run_event], api_name="compare_stop", **LIGHT)
