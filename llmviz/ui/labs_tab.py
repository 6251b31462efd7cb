"""The labs tab: two textbook labs, "Scaling & compute" and "Perplexity".

Scaling: 6·N·D training FLOPs, time and GPU-hours on real GPUs, the Chinchilla loss fit with
iso-compute curves and the compute-optimal model for a budget (``llmviz.scaling``; light queue,
filled on page load). Perplexity: a loaded model scores a text token by token
(``llmviz.perplexity``; model queue), the text coloured by surprisal, two models / precisions
side by side, the same content in English and Japanese.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from functools import lru_cache
from typing import Any

import gradio as gr
import numpy as np

from llmviz import config, lane, scaling
from llmviz.errors import UserError
from llmviz.memory import count_words, gb_text
from llmviz.models import PRECISIONS, get_spec, load_model
from llmviz.models.device import default_precision
from llmviz.perplexity import (
    TextScore,
    check_text,
    cumulative_bits,
    score_text,
    surprisal_spans,
)
from llmviz.plots import labs as plots
from llmviz.tokens import token_labels
from llmviz.ui import links_ui
from llmviz.ui.common import LIGHT, MODEL, get_model, handler, model_choices, model_dropdown
from llmviz.ui.i18n import lang_of, t, text

NONE = "none"  # "no second model"
ISO_BUDGETS = (1e19, 1e21, 1e23, 1e25)
LANDSCAPE_N = (1e7, 1e13)
LANDSCAPE_D = (1e8, 1e14)
TEXT_PRESETS = (
    "lm-en", "lm-ja", "day-en", "day-ja", "momotaro-en", "momotaro-ja",
    "repeat", "shuffled", "count", "code", "letters", "long",
)  # fmt: skip


# --- presets -------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _texts() -> dict[str, Any]:
    return json.loads((config.ASSETS / "labs" / "texts.json").read_text(encoding="utf-8"))


def preset_text(key: str) -> str:
    """The text of a preset (``"lm-en"``, ``"repeat"``, ``"long"``...)."""
    d = _texts()
    pair, _, lang = str(key).rpartition("-")
    if key not in TEXT_PRESETS and not (pair in d["pairs"] and lang in ("en", "ja")):
        raise UserError(
            f"Unknown example text '{str(key)[:40]}'. Pick one from the list.",
            key="labs_preset_unknown",
            name=str(key)[:40],
        )
    if key in d["single"]:
        return d["single"][key]
    if key == "repeat":
        r = d["repeat"]
        return "\n\n".join([d["pairs"][r["pair"]][r["lang"]]] * r["times"])
    if key == "long":
        r = d["long"]
        one = "\n\n".join(d["pairs"][p][lang] for lang in r["langs"] for p in r["pairs"])
        return "\n\n".join([one] * r["times"])
    return d["pairs"][pair][lang]


def _words(lang: str, prefix: str, keys: tuple[str, ...]) -> dict[str, str]:
    return {k: text(f"{prefix}.{k}", lang) for k in keys}


# --- scaling -------------------------------------------------------------------------------------
def _fmt_time(days: float, lang: str) -> str:
    value, unit = scaling.duration(days)
    return text(f"labs.sc.{unit}", lang, v=f"{value:,.{2 if unit == 'hours' else 1}f}")


def _count(lang: str):
    """How counts are written in ``lang``: "70B" in English, "700 億" in Japanese."""
    return functools.partial(count_words, lang=lang, short=True)


def _scaling_markdown(r: scaling.Report, lang: str) -> str:
    h, s = _count(lang), plots.sci
    tt, opt, terms = r.time, r.optimum, r.terms
    return text(
        "labs.sc.result", lang,
        n=h(r.n_params), d=h(r.n_tokens), c=s(r.flops), gpu=tt.gpu.name, n_gpus=f"{tt.n_gpus:,}",
        util=f"{tt.utilization:.0%}", time=_fmt_time(tt.days, lang), gpu_hours=h(tt.gpu_hours),
        peak=f"{tt.gpu.peak_tflops:,.1f}", inf=s(r.inference_flops), ratio=h(r.equivalent_tokens),
        compute_tps=f"{r.compute_tps:,.0f}", weights_gb=gb_text(r.weights_bytes),
        gpu_mem=f"{tt.gpu.memory_gb:g}", memory_tps=f"{r.memory_tps:,.0f}",
        term_n=f"{terms[0]:.3f}", term_d=f"{terms[1]:.3f}", l0=f"{terms[2]:.2f}",
        loss=f"{r.loss:.3f}", tpp=f"{r.tokens_per_param:,.1f}",
        budget=s(opt.flops), n_opt=h(opt.n_params), d_opt=h(opt.n_tokens),
        loss_opt=f"{opt.loss:.3f}", tpp_opt=f"{opt.tokens_per_param:,.0f}",
    )  # fmt: skip


def _presets_markdown(lang: str) -> str:
    rows = [text("labs.sc.table_head", lang)]
    h = _count(lang)
    for key in scaling.PRESETS:
        r = scaling.summarize(key)
        mark = "" if r.preset.tokens_published else " *"
        rows.append(
            f"| {r.preset.name} | {h(r.preset.n_params)} | {h(r.preset.n_tokens)}{mark}"
            f" | {r.tokens_per_param:,.{0 if r.tokens_per_param >= 10 else 1}f} | {plots.sci(r.flops)} | **{r.loss:.3f}**"
            f" | {h(r.optimum.n_params)} / {h(r.optimum.n_tokens)}"
            f" | {r.optimum.loss:.3f} |"
        )
    v = scaling.chinchilla_vs_gopher()
    rows.append("")
    rows.append(
        text(
            "labs.sc.verdict",
            lang,
            c_ch=plots.sci(v.chinchilla.flops),
            c_go=plots.sci(v.gopher.flops),
            l_ch=f"{v.chinchilla.loss:.3f}",
            l_go=f"{v.gopher.loss:.3f}",
            ratio=f"{v.flops_ratio:.2f}",
        )
    )
    return "\n".join(rows)


# label positions that keep neighbouring presets apart on both charts
_LANDSCAPE_POS = {
    "gpt2": "top right",
    "gpt3": "bottom left",
    "gopher": "bottom right",
    "chinchilla": "top left",
    "llama3-8b": "top center",
}
_PROFILE_POS = {"gopher": "middle right", "chinchilla": "top left"}


def _scaling_figures(n, d, budget, lang):
    keys = ("params", "tokens", "loss", "n_axis", "d_axis", "landscape_title", "isoflop_title")
    words = _words(lang, "labs.plot", keys)
    curves = scaling.iso_curves(sorted({*ISO_BUDGETS, float(budget)}))

    def name(c: float) -> str:
        label = text("labs.plot.iso", lang, c=plots.sci(c))
        return label + text("labs.plot.yours", lang) if c == float(budget) else label

    yours = name(float(budget))
    iso_lines = [plots.Line(name(cv.flops), cv.n_params, cv.n_tokens, cv.loss) for cv in curves]
    frontier = scaling.optimal_frontier((1e17, 1e27))
    front = plots.Line(
        text("labs.plot.frontier", lang),
        np.array([o.n_params for o in frontier]),
        np.array([o.n_tokens for o in frontier]),
        np.array([o.loss for o in frontier]),
    )
    marks = {}
    for k in scaling.PRESETS:
        r = scaling.summarize(k)
        short = r.preset.name.split(" (")[0]
        marks[k] = plots.Point(
            short, r.preset.n_params, r.preset.n_tokens, r.loss, r.flops, _LANDSCAPE_POS[k]
        )
    you = plots.Point(
        text("labs.plot.you", lang), n, d, scaling.loss(n, d), scaling.training_flops(n, d)
    )
    iso_land = sorted(iso_lines, key=lambda ln: ln.name == yours)  # the student's budget last
    grid = scaling.loss_grid(LANDSCAPE_N, LANDSCAPE_D)
    landscape = plots.loss_landscape(
        *grid, iso_land, front, list(marks.values()), you, words, count=_count(lang)
    )
    optimum = text("labs.plot.optimum", lang)
    optima = [
        plots.Point(optimum, cv.optimum.n_params, cv.optimum.n_tokens, cv.optimum.loss, cv.flops)
        for cv in curves
    ]
    on_curves = [dataclasses.replace(marks[k], textpos=pos) for k, pos in _PROFILE_POS.items()]
    profiles = plots.isoflop_profiles(
        iso_lines, optima, on_curves, yours, words, count=_count(lang)
    )
    return landscape, profiles


@handler
def _on_scaling(n, d, budget, gpu, n_gpus, util, request: gr.Request):
    lang = lang_of(request)
    r = scaling.report(n, d, budget, gpu, n_gpus, util)
    landscape, profiles = _scaling_figures(r.n_params, r.n_tokens, r.optimum.flops, lang)
    return _scaling_markdown(r, lang), landscape, profiles, _presets_markdown(lang)


@handler
def _on_scaling_preset(key):
    p = scaling.summarize(key)
    return p.preset.n_params, p.preset.n_tokens, p.flops


def _build_scaling() -> None:
    gr.Markdown(t("labs.sc.explain"))
    start = scaling.PRESETS["chinchilla"]
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            preset = gr.Dropdown(
                [(p.name, k) for k, p in scaling.PRESETS.items()], value="chinchilla",
                label=t("labs.sc.preset"), elem_id="labs-sc-preset",
            )  # fmt: skip
            n = gr.Number(
                start.n_params, label=t("labs.sc.n"), info=t("labs.sc.n_info"), elem_id="labs-sc-n"
            )
            d = gr.Number(
                start.n_tokens, label=t("labs.sc.d"), info=t("labs.sc.d_info"), elem_id="labs-sc-d"
            )
            budget = gr.Number(
                scaling.training_flops(start.n_params, start.n_tokens), label=t("labs.sc.budget"),
                info=t("labs.sc.budget_info"), elem_id="labs-sc-budget",
            )  # fmt: skip
            gpu = gr.Dropdown(
                [(g.name, k) for k, g in scaling.GPUS.items()], value=scaling.DEFAULT_GPU,
                label=t("labs.sc.gpu"), info=t("labs.sc.gpu_info"),
            )  # fmt: skip
            # no precision=0: gradio's rounding fails on inf before the handler (OverflowError)
            n_gpus = gr.Number(1024, label=t("labs.sc.n_gpus"), elem_id="labs-sc-n-gpus")
            util = gr.Slider(
                0.05,
                1.0,
                value=scaling.DEFAULT_UTILIZATION,
                step=0.05,
                label=t("labs.sc.util"),
                info=t("labs.sc.util_info"),
            )
            run = gr.Button(t("labs.sc.run"), variant="primary", elem_id="labs-sc-run")
        with gr.Column(scale=2):
            result = gr.Markdown(elem_id="labs-sc-result")
    with gr.Row():
        landscape = gr.Plot(label=t("labs.sc.landscape"), elem_id="labs-sc-landscape")
        profiles = gr.Plot(label=t("labs.sc.profiles"), elem_id="labs-sc-profiles")
    gr.Markdown(t("labs.sc.plots_help"))
    gr.Markdown(t("labs.sc.presets_title"))
    table = gr.Markdown(elem_id="labs-sc-table")
    gr.Markdown(t("labs.sc.caveat"))

    inputs = [n, d, budget, gpu, n_gpus, util]
    outputs = [result, landscape, profiles, table]
    run.click(_on_scaling, inputs, outputs, api_name="labs_scaling", **LIGHT)
    preset.input(
        _on_scaling_preset, [preset], [n, d, budget], api_name="labs_scaling_preset", **LIGHT
    ).then(_on_scaling, inputs, outputs, api_name=False, **LIGHT)
    root = gr.context.Context.root_block
    if root is not None:  # fill the lab on page load, in the visitor's language
        root.load(_on_scaling, inputs, outputs, api_name=False, **LIGHT)


# --- perplexity ----------------------------------------------------------------------------------
def _span_rows(
    score: TextScore, tokenizer: Any, lang: str
) -> tuple[list[tuple[str, float, str]], np.ndarray, np.ndarray]:
    spans = surprisal_spans(score, tokenizer)
    expected = token_labels(tokenizer, [max(i, 0) for i in score.predicted_ids])
    bits, probs = score.surprisal_bits, score.probabilities
    rows = []
    for sp in spans:
        parts = []
        for i in sp.token_indices:
            if math.isnan(bits[i]):
                parts.append(text("labs.ppl.unscored", lang))
            else:
                parts.append(
                    text(
                        "labs.ppl.hover",
                        lang,
                        bits=f"{bits[i]:.2f}",
                        p=f"{probs[i]:.3g}",
                        expected=expected[i],
                    )
                )
        rows.append((sp.text, sp.bits, " | ".join(parts)))
    x, y = cumulative_bits(spans)
    return rows, x, y


def _stats_line(s: TextScore, lang: str) -> str:
    return text(
        "labs.ppl.stats", lang, ppl=f"{s.perplexity:,.2f}", bpt=f"{s.bits_per_token:.2f}",
        bpc=f"{s.bits_per_char:.2f}", bpb=f"{s.bits_per_byte:.3f}", n=s.n_tokens,
    )  # fmt: skip


def _summary(runs: list[tuple[str, TextScore, Any]], lang: str) -> str:
    table = [text("labs.ppl.table_head", lang)]
    for name, s, _tok in runs:
        table.append(
            f"| {name} | {s.n_tokens:,} | {s.n_chars:,} | {s.n_bytes:,} | {s.nll_mean:.3f}"
            f" | **{s.perplexity:,.2f}** | {s.bits_per_token:.2f} | {s.bits_per_char:.3f}"
            f" | {s.bits_per_byte:.3f} | {s.total_bits:,.0f} |"
        )
    name, s, _tok = runs[0]
    paragraphs = [
        "\n".join(table),
        text(
            "labs.ppl.worked", lang, name=name, nll=f"{s.nll_mean:.3f}", ppl=f"{s.perplexity:,.2f}",
            bpt=f"{s.bits_per_token:.3f}", bits=f"{s.total_bits:,.1f}", chars=f"{s.n_chars:,}",
            bpc=f"{s.bits_per_char:.3f}", bytes=f"{s.n_bytes:,}", bpb=f"{s.bits_per_byte:.3f}",
        ),
    ]  # fmt: skip
    prefixes: dict[str, list[str]] = {}  # context token (as code, so "<bos>" is not read as HTML)
    for name, s, tok in runs:
        if s.prefix_id is not None:
            prefixes.setdefault(f"`{token_labels(tok, [s.prefix_id])[0]}`", []).append(name)
    if prefixes:
        if len(prefixes) == 1:
            shown = next(iter(prefixes))
        else:
            shown = ", ".join(f"{p} ({', '.join(names)})" for p, names in prefixes.items())
        paragraphs.append(text("labs.ppl.prefix_note", lang, prefix=shown))
    for name, s, _tok in runs:
        if s.sliding:
            paragraphs.append(
                text(
                    "labs.ppl.sliding_note",
                    lang,
                    name=name,
                    n=f"{s.n_tokens:,}",
                    window=s.window,
                    stride=s.stride,
                    windows=s.n_windows,
                    ctx=s.min_context,
                )  # fmt: skip
            )
    return "\n\n".join(paragraphs)


def _score_runs(jobs: list[tuple[str, str, str]], lang: str, progress: gr.Progress):
    """jobs: (display name, text, model key, precision) -> markdown, html A, html B, figure."""
    runs, panels, curves = [], [], []
    for name, txt, key, precision in jobs:
        lm = get_model(key, precision, progress)
        progress(0.9, desc=text("labs.ppl.scoring", lang, name=name))
        s = lane.shared(
            lm.model,
            ("perplexity", txt),
            lambda lm=lm, txt=txt: score_text(lm.model, lm.tokenizer, txt),
        )
        rows, x, y = _span_rows(s, lm.tokenizer, lang)
        prefix = token_labels(lm.tokenizer, [s.prefix_id])[0] if s.prefix_id is not None else None
        legend = (text("labs.ppl.legend_low", lang), text("labs.ppl.legend_high", lang))
        panels.append(plots.surprisal_html(name, _stats_line(s, lang), prefix, rows, legend))
        curves.append((name, x, y, [r[2] for r in rows]))
        runs.append((name, s, lm.tokenizer))
    words = _words(lang, "labs.plot", ("chars_axis", "bits_axis", "cum_title"))
    fig = plots.cumulative_bits_figure(curves, words)
    html_b = panels[1] if len(panels) > 1 else ""
    return _summary(runs, lang), panels[0], gr.update(value=html_b, visible=bool(html_b)), fig


def _run_name(key: object, precision: str) -> str:
    """ "Gemma 3 270M · bf16"; refuses a missing or malformed model name first (``get_spec``)."""
    spec = get_spec(key)  # type: ignore[arg-type]
    names = dict((k, lbl) for lbl, k in model_choices())
    return f"{names.get(spec.key, spec.display).split(' (')[0]} · {precision}"


@handler
def _on_score(txt, model_a, prec_a, model_b, prec_b, request: gr.Request, progress=gr.Progress()):
    lang = lang_of(request)
    check_text(txt)  # before any model loads: empty, too long, half an emoji
    jobs = [(_run_name(model_a, prec_a), txt, model_a, prec_a)]
    if model_b and model_b != NONE:
        if (model_b, prec_b) == (model_a, prec_a):
            raise gr.Error(text("labs.ppl.same_twice", lang))
        jobs.append((_run_name(model_b, prec_b), txt, model_b, prec_b))
    return _score_runs(jobs, lang, progress)


@handler
def _on_languages(pair, model_a, prec_a, request: gr.Request, progress=gr.Progress()):
    lang = lang_of(request)
    name = _run_name(model_a, prec_a)
    jobs = [
        (f"{text('labs.ppl.english', lang)} · {name}", preset_text(f"{pair}-en"), model_a, prec_a),
        (f"{text('labs.ppl.japanese', lang)} · {name}", preset_text(f"{pair}-ja"), model_a, prec_a),
    ]
    summary, html_a, html_b, fig = _score_runs(jobs, lang, progress)
    return summary + "\n\n" + text("labs.ppl.lang_note", lang), html_a, html_b, fig


@handler
def _on_text_preset(key):
    return preset_text(key)


def warm_up() -> None:
    """Score both opening texts with the default model (``app.warm_up``)."""
    lm = load_model(config.DEFAULT_BASE, default_precision())
    for key in OPENING_TEXT.values():
        txt = preset_text(key)
        lane.shared(
            lm.model, ("perplexity", txt), lambda txt=txt: score_text(lm.model, lm.tokenizer, txt)
        )


#: The example text a page opens with, in the visitor's language (the same content in both).
OPENING_TEXT = {"en": "lm-en", "ja": "lm-ja"}


@handler
def _on_open(request: gr.Request):
    key = OPENING_TEXT.get(lang_of(request), "lm-en")
    if links_ui.claims(request, "labs", "prompt"):
        return gr.skip(), gr.skip()  # a link's text wins over the language's default one
    return key, preset_text(key)


def _build_perplexity() -> None:
    gr.Markdown(t("labs.ppl.explain"))
    precisions = list(PRECISIONS)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            preset = gr.Dropdown(
                [(t(f"labs.ppl.preset.{k}"), k) for k in TEXT_PRESETS], value="lm-en",
                label=t("labs.ppl.preset"), elem_id="labs-ppl-preset",
            )  # fmt: skip
            txt = gr.Textbox(
                preset_text("lm-en"), lines=7, max_lines=14, label=t("labs.ppl.text"),
                info=t("labs.ppl.text_info"), elem_id="labs-ppl-text",
            )  # fmt: skip
        with gr.Column(scale=2, min_width=320):
            with gr.Row():
                model_a = model_dropdown(
                    t("labs.ppl.model_a"), config.DEFAULT_BASE, elem_id="labs-ppl-model-a"
                )
                prec_a = gr.Dropdown(
                    precisions,
                    value=default_precision(),
                    label=t("common.precision"),
                    min_width=110,
                    scale=0,
                )
            with gr.Row():
                model_b = gr.Dropdown(
                    [("—", NONE), *model_choices()], value=config.DEFAULT_INSTRUCT, label=t("labs.ppl.model_b"),
                    info=t("labs.ppl.model_b_info"), allow_custom_value=True, elem_id="labs-ppl-model-b",
                )  # fmt: skip
                prec_b = gr.Dropdown(
                    precisions,
                    value=default_precision(),
                    label=t("common.precision"),
                    min_width=110,
                    scale=0,
                )
            score = gr.Button(t("labs.ppl.run"), variant="primary", elem_id="labs-ppl-run")
            with gr.Group():
                pair = gr.Dropdown(
                    [(t(f"labs.ppl.pair.{k}"), k) for k in _texts()["pairs"]], value="lm",
                    label=t("labs.ppl.pair"), info=t("labs.ppl.pair_info"),
                )  # fmt: skip
                languages = gr.Button(t("labs.ppl.run_lang"), elem_id="labs-ppl-run-lang")
    summary = gr.Markdown(elem_id="labs-ppl-summary")
    with gr.Row(equal_height=False):
        html_a = gr.HTML(elem_id="labs-ppl-html-a")
        html_b = gr.HTML(elem_id="labs-ppl-html-b", visible=False)
    curve = gr.Plot(label=t("labs.ppl.curve"), elem_id="labs-ppl-curve")

    outputs = [summary, html_a, html_b, curve]
    preset.input(_on_text_preset, [preset], [txt], api_name="labs_text_preset", **LIGHT)
    root = gr.context.Context.root_block
    if root is not None:  # a Japanese page opens with the Japanese version of the example
        root.load(_on_open, None, [preset, txt], api_name=False, **LIGHT)
    score.click(
        _on_score,
        [txt, model_a, prec_a, model_b, prec_b],
        outputs,
        api_name="labs_perplexity",
        **MODEL,
    )
    languages.click(
        _on_languages,
        [pair, model_a, prec_a],
        outputs,
        api_name="labs_perplexity_languages",
        **MODEL,
    )


def build() -> None:
    gr.Markdown(t("labs.intro"))
    with gr.Tabs(overflow_behavior="wrap"):  # at 800 px a "…" menu hid sub-tabs
        with gr.Tab(t("labs.tab_scaling"), id="labs-scaling", elem_id="labs-scaling"):
            _build_scaling()
        with gr.Tab(t("labs.tab_ppl"), id="labs-ppl", elem_id="labs-ppl"):
            _build_perplexity()
        with gr.Tab(t("labs.lr.tab"), id="labs-lr", elem_id="labs-lr"):
            from llmviz.ui import labs_lr

            labs_lr.build()
        with gr.Tab(t("labs.speed.tab"), id="labs-speed", elem_id="labs-speed"):
            from llmviz.ui import labs_speed

            labs_speed.build()
        with gr.Tab(t("labs.bias.tab"), id="labs-bias", elem_id="labs-bias"):
            from llmviz.ui import labs_probes

            labs_probes.build_bias()
        with gr.Tab(t("labs.icl.tab"), id="labs-icl", elem_id="labs-icl"):
            labs_probes.build_icl()
