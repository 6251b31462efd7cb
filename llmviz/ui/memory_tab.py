"""The quantization & memory tab: calculator, predicted vs measured, the weight lab, quality cost.

1. Calculator (light queue, filled on page load): a preset, a parameter count or a Hub id
   (config only) sized at several precisions with ``llmviz.memory``; stacked bars with GPU lines.
2. Predicted vs measured (model queue): real loads at fp32/bf16/int8/nf4, ``llmviz.measure``.
3. Lab (model queue): a real weight matrix through ``llmviz.quantize``.
4. Quality (model queue): ``llmviz.quant_quality`` for fp32 / int8 / nf4.
"""

from __future__ import annotations

import math
from typing import Any

import gradio as gr
import pandas as pd

from llmviz import config, measure, memory, quant_quality, quantize
from llmviz.memory_presets import PRESETS, TEXTBOOK_KEYS, get_preset
from llmviz.models import hub_config
from llmviz.plots import memory as plots
from llmviz.ui.common import LIGHT, MODEL, get_model, handler, model_dropdown, slider_changes
from llmviz.ui.i18n import lang_of, t, text

CALC_DEFAULT = ("fp32", "bf16", "int8", "nf4", "q4_k_m")
PVM_PRECISIONS = ("fp32", "bf16", "int8", "nf4")
QUALITY_PRECISIONS = ("fp32", "int8", "nf4")
LAB_MATRICES = (
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
)  # fmt: skip


@handler
def _show():
    return gr.update(visible=True)


def _count(n: int) -> str:
    return f"{n:,}"


# --- 1. calculator ------------------------------------------------------------------------------
def _preset_name(key: str, lang: str) -> str:
    """A preset's name in ``lang``: "GPT-3 175B (textbook)", 「GPT-3 175B（教科書）」."""
    return text(f"mem.preset.name.{key}", lang)


def _resolve(
    source: str, preset_key: str, params_text: str, hub_id: str, lang: str
) -> dict[str, Any]:
    """What to size: name, count, breakdown, attention shape (None when unknown) and whether it
    is a textbook case (a textbook preset, or a bare count sized by the textbook's formula)."""
    if source == "params":
        n = memory.parse_param_count(params_text)
        return dict(name=f"{n:,}", params=n, breakdown=None, arch=None, textbook=True)
    if source == "hub":
        counted = hub_config.count_model(hub_id)
        return dict(
            name=counted.name,
            params=counted.params,
            breakdown=counted.breakdown,
            arch=counted.arch,
            textbook=False,
        )
    preset = get_preset(preset_key)
    return dict(
        name=_preset_name(preset.key, lang),
        params=preset.params,
        breakdown=preset.breakdown,
        arch=preset.kv_arch,
        textbook=preset.textbook,
    )


def _summary(
    s: memory.Sizing, context: int, batch: int, kv_dtype: str, rest: str, lang: str
) -> str:
    a = s.arch
    lines = []
    if s.breakdown is not None and a is not None:
        moe = (
            text("mem.summary.moe", lang, experts=a.num_experts, active=a.experts_per_token)
            if a.num_experts
            else ""
        )
        lines.append(
            text(
                "mem.summary.arch",
                lang,
                name=s.name,
                params=_count(s.params),
                size=memory.count_words(s.params, lang),
                layers=a.num_layers,
                hidden=a.hidden_size,
                heads=a.num_heads,
                kv_heads=a.num_kv_heads,
                head_dim=a.head_dim,
                vocab=_count(a.vocab_size),
                tied=text("mem.summary.tied", lang) if a.tied_embeddings else "",
                moe=moe,
            )
        )
        note = text("mem.summary.experts_note", lang) if s.breakdown.experts else ""
        share = f"{s.breakdown.linear_share:.0%}"
        lines.append(text("mem.summary.bnb", lang, linear=share, experts_note=note, rest=rest))
    else:
        lines.append(
            text(
                "mem.summary.params_only",
                lang,
                name=s.name,
                params=_count(s.params),
                size=memory.count_words(s.params, lang),
            )
        )
    if s.kv_bytes is not None and a is not None:
        kv = text(
            "mem.summary.kv",
            lang,
            context=_count(context),
            batch=batch,
            dtype=kv_dtype,
            kv=f"{memory.gb_text(s.kv_bytes)} GB",
            mha=f"{memory.gb_text(s.kv_bytes_without_gqa or 0)} GB",
        )
        if s.beyond_trained_context:
            kv += text("mem.summary.beyond", lang, max=_count(a.max_context))
        if s.window_applies:
            kv += text(
                "mem.summary.kv_window",
                lang,
                sliding=a.sliding_layers,
                layers=a.num_layers,
                window=a.sliding_window,
            )
        lines.append(kv)
    else:
        lines.append(text("mem.summary.kv_unknown", lang))
    lines.append(text("mem.summary.overhead", lang, gb=config.MEMORY_CUDA_OVERHEAD_GB))
    lines.append(_gap(s, lang))
    return "\n\n".join(lines)


def _gap(s: memory.Sizing, lang: str) -> str:
    """Why the fit table may show more cards than the textbook (the KV cache and the overhead)."""
    g = memory.serving_gap(s)
    values = dict(
        precision=g.precision,
        card=g.card.label,
        weights=g.weights,
        with_kv=g.with_kv,
        serving=g.serving,
        overhead=config.MEMORY_CUDA_OVERHEAD_GB,
        kv=f"{memory.gb_text(g.kv_bytes or 0)} GB",
        context=_count(s.context),
        batch=s.batch,
    )
    key = "mem.summary.gap" if g.kv_bytes is not None else "mem.summary.gap_no_kv"
    counted = text(
        "mem.summary.counted_weights" if s.weights_only else "mem.summary.counted_serving", lang
    )
    return counted + "\n\n" + text(key, lang, **values)


def _breakdown_table(s: memory.Sizing, lang: str) -> pd.DataFrame:
    rows = []
    for key in s.component_keys:
        row = [text(f"mem.comp.{key}", lang)]
        for est in s.estimates:
            comp = est.component(key)
            row.append(
                ""
                if comp is None
                else f"{memory.gb_text(comp.bytes)} ({comp.dtype})"
                if comp.dtype != "-"
                else memory.gb_text(comp.bytes)
            )
        rows.append(row)
    rows.append(
        [text("mem.col.total", lang)] + [memory.gb_text(e.total_bytes) for e in s.estimates]
    )
    cols = [text("mem.col.component", lang)] + [
        memory.PRECISIONS[e.precision].label for e in s.estimates
    ]
    return pd.DataFrame(rows, columns=cols)


def _fit_table(s: memory.Sizing, lang: str) -> pd.DataFrame:
    rows = []
    for est in s.estimates:
        fits = memory.gpu_fit(est)
        rows.append(
            [memory.PRECISIONS[est.precision].label]
            + [
                text("mem.fit.one", lang)
                if f.fits_one
                else (str(f.cards) if f.cards else text("mem.fit.none", lang))
                for f in fits
            ]
        )
    return pd.DataFrame(
        rows, columns=[text("mem.col.precision", lang)] + [c.label for c in memory.CARD_SIZES]
    )


def _textbook_table(extra: memory.Sizing | None, lang: str) -> pd.DataFrame:
    rows = [memory.textbook_row(_preset_name(k, lang), PRESETS[k].params) for k in TEXTBOOK_KEYS]
    if extra is not None and extra.params not in {r.params for r in rows}:
        rows.append(memory.textbook_row(extra.name, extra.params))
    cols = [text("mem.col.model_name", lang), text("mem.col.params", lang)]
    cols += [text("mem.col.bits", lang, bits=b) for b in memory.TEXTBOOK_BITS] + [
        text("mem.col.cards16", lang)
    ]
    return pd.DataFrame(
        [
            [r.name, _count(r.params), *[f"{g:,.4g} GB" for g in r.gb], r.rtx4090_at_16bit]
            for r in rows
        ],
        columns=cols,
    )


def _bars(s: memory.Sizing, lang: str) -> Any:
    comps = [(key, text(f"mem.comp.{key}", lang), gb) for key, gb in s.stack_gb()]
    lines = [(c.label, c.gb) for c in memory.CARD_SIZES if c.gb in (24, 80)]
    return plots.memory_bars(
        [memory.PRECISIONS[e.precision].short for e in s.estimates],
        comps,
        lines,
        text("mem.plot.title", lang, name=s.name),
        text("mem.plot.y", lang),
    )


@handler
def _on_calculate(
    source,
    preset_key,
    params_text,
    hub_id,
    precisions,
    context,
    batch,
    kv_dtype,
    rest_dtype,
    scope,
    request: gr.Request,
):
    lang = lang_of(request)
    what = _resolve(source, preset_key, params_text, hub_id, lang)
    ctx, bsz = memory.check_context_batch(context, batch)
    weights_only = memory.counts_weights_only(scope, what["textbook"])
    s = memory.size_model(
        what["name"],
        precisions,
        params=what["params"],
        breakdown=what["breakdown"],
        arch=what["arch"],
        context=ctx,
        batch=bsz,
        kv_dtype=kv_dtype,
        rest_dtype=rest_dtype,
        weights_only=weights_only,
    )
    return (
        _summary(s, ctx, bsz, kv_dtype, rest_dtype, lang),
        _bars(s, lang),
        _breakdown_table(s, lang),
        _fit_table(s, lang),
        _textbook_table(s, lang),
    )


def _on_source(source):
    return (
        gr.update(visible=source == "preset"),
        gr.update(visible=source == "params"),
        gr.update(visible=source == "hub"),
    )


def _build_calculator() -> None:
    gr.Markdown(t("mem.calc.title"))
    gr.Markdown(t("mem.calc.explain"))
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            source = gr.Radio(
                [
                    (t("mem.source.preset"), "preset"),
                    (t("mem.source.params"), "params"),
                    (t("mem.source.hub"), "hub"),
                ],
                value="preset",
                label=t("mem.source"),
                elem_id="mem-source",
            )
            preset = gr.Dropdown(
                [(t(f"mem.preset.name.{k}"), k) for k in PRESETS],
                value="llama3-8b",
                label=t("mem.preset"),
                elem_id="mem-preset",
            )
            params = gr.Textbox(
                "1.5B",
                label=t("mem.params"),
                info=t("mem.params.info"),
                visible=False,
                elem_id="mem-params",
            )
            hub = gr.Textbox(
                "",
                label=t("mem.hub"),
                info=t("mem.hub.info"),
                placeholder="Qwen/Qwen2.5-7B",
                visible=False,
                elem_id="mem-hub",
            )
            precisions = gr.CheckboxGroup(
                [(p.label, k) for k, p in memory.PRECISIONS.items()],
                value=list(CALC_DEFAULT),
                label=t("mem.precisions"),
                elem_id="mem-precisions",
            )
            with gr.Row():
                # no precision=0: gradio would round 2.5 silently and fail on inf before the
                # handler (OverflowError); llmviz.checks says what a whole number is instead
                context = gr.Number(
                    8192, label=t("mem.context"), info=t("mem.context.info"), elem_id="mem-context"
                )
                batch = gr.Number(
                    1, label=t("mem.batch"), info=t("mem.batch.info"), elem_id="mem-batch"
                )
            with gr.Row():
                kv_dtype = gr.Dropdown(
                    ["fp16", "bf16", "fp32", "fp8"], value="fp16", label=t("mem.kv_dtype")
                )
                rest = gr.Dropdown(
                    ["fp16", "bf16", "fp32"],
                    value="fp16",
                    label=t("mem.rest_dtype"),
                    info=t("mem.rest_dtype.info"),
                )
            scope = gr.Radio(
                [(t(f"mem.scope.{k}"), k) for k in memory.SCOPES],
                value="auto",
                label=t("mem.scope"),
                info=t("mem.scope.info"),
                elem_id="mem-scope",
            )
            run = gr.Button(t("mem.calculate"), variant="primary", elem_id="mem-calculate")
        with gr.Column(scale=3):
            summary = gr.Markdown(elem_id="mem-summary")
            plot = gr.Plot(elem_id="mem-plot", show_label=False)
    gr.Markdown(t("mem.breakdown.title"))
    breakdown = gr.Dataframe(
        elem_id="mem-breakdown", wrap=True, interactive=False, show_label=False
    )
    gr.Markdown(t("mem.fit.title"))
    fit = gr.Dataframe(elem_id="mem-fit", interactive=False, show_label=False)
    gr.Markdown(t("mem.textbook.title"))
    textbook = gr.Dataframe(elem_id="mem-textbook", interactive=False, show_label=False)

    inputs = [source, preset, params, hub, precisions, context, batch, kv_dtype, rest, scope]
    outputs = [summary, plot, breakdown, fit, textbook]
    source.input(_on_source, [source], [preset, params, hub], api_name="memory_source", **LIGHT)
    run.click(_on_calculate, inputs, outputs, api_name="memory_calculate", **LIGHT)
    preset.input(_on_calculate, inputs, outputs, api_name=False, **LIGHT)
    root = gr.context.Context.root_block
    if root is not None:  # first paint: Llama 3 8B at five precisions, in the visitor's language
        root.load(_on_calculate, inputs, outputs, api_name=False, **LIGHT)


# --- 2. predicted vs measured -------------------------------------------------------------------
def _pvm_outputs(rows: list[dict], lang: str):
    if not rows:
        return pd.DataFrame(), None, text("mem.pvm.empty", lang)
    cols = ["model", "precision", "predicted", "measured", "error", "footprint", "state", "load"]
    table = pd.DataFrame(
        [
            [
                r["short"],
                r["precision"],
                memory.mb_text(r["predicted"]),
                memory.mb_text(r["measured"]),
                f"{r['error']:+.3f} %",
                memory.mb_text(r["footprint"]),
                memory.mb_text(r["state"]),
                f"{r['load']:.1f}",
            ]
            for r in rows
        ],
        columns=[text(f"mem.col.{c}", lang) for c in cols],
    )
    if any(r.get("peak") for r in rows):  # CUDA: the allocator's peak during each fresh load
        table[text("mem.col.peak", lang)] = [
            memory.mb_text(r["peak"]) if r.get("peak") else "" for r in rows
        ]
    fig = plots.predicted_vs_measured(
        [f"{r['short']}<br>{r['precision']}" for r in rows],
        [r["predicted"] for r in rows],
        [r["measured"] for r in rows],
        (text("mem.plot.predicted", lang), text("mem.plot.measured", lang)),
        text("mem.plot.pvm", lang),
        text("mem.plot.pvm_y", lang),
    )
    worst = rows[measure.largest_error([r["error"] for r in rows])]
    note = text(
        "mem.pvm.note",
        lang,
        worst=f"{worst['error']:+.3f} % ({worst['short']} {worst['precision']})",
    )
    return table, fig, note


@handler
def _on_measure(model_key, precisions, rows, request: gr.Request, progress=gr.Progress()):  # noqa: B008
    lang = lang_of(request)
    chosen = memory.check_precisions([p for p in precisions or [] if p in PVM_PRECISIONS])
    rows = [r for r in (rows or []) if not (r["key"] == model_key and r["precision"] in chosen)]
    for precision in chosen:
        loaded, peak = measure.cuda_load_peak(lambda p=precision: get_model(model_key, p, progress))
        c = measure.compare(loaded.spec.display, loaded.model, precision, loaded.device, peak)
        rows.append(
            dict(
                key=model_key,
                model=loaded.spec.display,
                short=loaded.spec.display.split(" (")[0],
                precision=precision,
                predicted=c.predicted_bytes,
                measured=c.measured.total,
                error=c.error_pct,
                footprint=loaded.footprint_bytes,
                state=c.measured.quant_state,
                load=loaded.load_seconds,
                peak=c.measured.allocator_peak,
            )
        )
    rows.sort(key=lambda r: (r["key"], PVM_PRECISIONS.index(r["precision"])))
    return (*_pvm_outputs(rows, lang), rows)


def _build_measured() -> None:
    gr.Markdown(t("mem.pvm.title"))
    gr.Markdown(t("mem.pvm.explain"))
    with gr.Row():
        model = model_dropdown(
            t("mem.pvm.model"), config.DEFAULT_INSTRUCT, elem_id="mem-pvm-model", scale=2
        )
        precisions = gr.CheckboxGroup(
            list(PVM_PRECISIONS), value=list(PVM_PRECISIONS), label=t("mem.pvm.precisions"), scale=2
        )
        run = gr.Button(t("mem.pvm.run"), variant="primary", elem_id="mem-pvm-run", scale=1)
    note = gr.Markdown(t("mem.pvm.empty"), elem_id="mem-pvm-note")
    with gr.Column(visible=False) as results:  # shown on the first click
        table = gr.Dataframe(
            elem_id="mem-pvm-table", interactive=False, show_label=False, wrap=True
        )
        plot = gr.Plot(elem_id="mem-pvm-plot", show_label=False)
    rows = gr.State([])
    run.click(_show, None, results, api_name=False, queue=False)
    run.click(
        _on_measure,
        [model, precisions, rows],
        [table, plot, note, rows],
        api_name="memory_measure",
        **MODEL,
    )


# --- 3. lab -------------------------------------------------------------------------------------
def _method_label(method: str, lang: str) -> str:
    return text(f"mem.method.{method}", lang)


@handler
def _on_lab(model_key, layer, matrix, bits, method, request: gr.Request, progress=gr.Progress()):  # noqa: B008
    lang = lang_of(request)
    bits = quantize.check_bits(bits)
    loaded = get_model(model_key, "bf16", progress)
    layer = quantize.check_layer(loaded.model, layer)
    w = quantize.weight_matrix(loaded.model, layer, matrix)
    results = quantize.quantize_all(w, bits)
    table = pd.DataFrame(
        [
            [
                _method_label(r.method, lang),
                r.bits,
                f"{r.rel_error:.3f}",
                "∞" if math.isinf(r.sqnr_db) else f"{r.sqnr_db:.1f}",
                f"{r.zero_share:.1%}",
                _count(r.distinct),
                f"{r.scale_bits_per_weight:.3g}",
            ]
            for r in results
        ],
        columns=[
            text(f"mem.col.{c}", lang)
            for c in ("method", "nbits", "rel_error", "sqnr", "zeros", "distinct", "scale_bits")
        ],
    )
    chosen = (
        next(r for r in results if r.method == method) if method in quantize.METHODS else results[3]
    )
    amax, typical = quantize.magnitudes(w)
    edges = quantize.histogram_edges(w)
    name = f"{loaded.spec.display.split(' (')[0]} · {matrix}"
    hist = plots.weight_histogram(
        edges,
        quantize.histogram(w, edges),
        quantize.histogram(chosen.dequantized, edges),
        (text("mem.plot.before", lang), text("mem.plot.after", lang)),
        text(
            "mem.plot.hist",
            lang,
            name=name,
            method=_method_label(chosen.method, lang),
            bits=chosen.bits,
        ),
        text("mem.plot.hist_x", lang),
        text("mem.plot.hist_y", lang),
    )
    heat = plots.weight_patches(
        quantize.patch(w),
        quantize.patch(chosen.dequantized),
        (
            text("mem.plot.before", lang),
            f"{text('mem.plot.after', lang)} · {_method_label(chosen.method, lang)}",
        ),
        text("mem.plot.patch", lang),
    )
    by = {r.method: r for r in results}
    summary = text(
        "mem.lab.summary",
        lang,
        name=name,
        layer=layer,
        rows=_count(w.shape[0]),
        cols=_count(w.shape[1]),
        amax=f"{amax:.3g}",
        typical=f"{typical:.3g}",
        bits=bits,
        naive=f"{by['naive'].zero_share:.0%}",
        block=f"{by['block'].zero_share:.0%}",
    )
    return summary, table, hist, heat


def _build_lab() -> None:
    gr.Markdown(t("mem.lab.title"))
    gr.Markdown(t("mem.lab.explain"))
    with gr.Row():
        model = model_dropdown(t("mem.lab.model"), config.DEFAULT_INSTRUCT, elem_id="mem-lab-model")
        layer = gr.Slider(0, 29, value=3, step=1, label=t("mem.lab.layer"), elem_id="mem-lab-layer")
        matrix = gr.Dropdown(list(LAB_MATRICES), value="mlp.down_proj", label=t("mem.lab.matrix"))
    with gr.Row():
        bits = gr.Slider(
            quantize.MIN_BITS,
            quantize.MAX_BITS,
            value=3,
            step=1,
            label=t("mem.lab.bits"),
            elem_id="mem-lab-bits",
        )
        method = gr.Dropdown(
            [(t(f"mem.method.{m}"), m) for m in quantize.METHODS],
            value="tensor",
            label=t("mem.lab.method"),
        )
        run = gr.Button(t("mem.lab.run"), variant="primary", elem_id="mem-lab-run")
    summary = gr.Markdown(elem_id="mem-lab-summary")
    with gr.Column(visible=False) as results:  # shown on the first click
        table = gr.Dataframe(elem_id="mem-lab-table", interactive=False, show_label=False)
        with gr.Row():
            hist = gr.Plot(elem_id="mem-lab-hist", show_label=False)
            heat = gr.Plot(elem_id="mem-lab-heat", show_label=False)
    run.click(_show, None, results, api_name=False, queue=False)
    inputs, outputs = [model, layer, matrix, bits, method], [summary, table, hist, heat]
    run.click(_on_lab, inputs, outputs, api_name="memory_lab", **MODEL)
    gr.on(slider_changes(bits, layer), _on_lab, inputs, outputs, api_name=False,
          trigger_mode="always_last", **MODEL)  # fmt: skip
    for control in (matrix, method):
        control.input(_on_lab, inputs, outputs, api_name=False, **MODEL)
    model.input(_on_lab_model, [model], [layer], api_name="memory_lab_model", **LIGHT)


@handler
def _on_lab_model(model_key, request: gr.Request):
    last, value = quantize.lab_layer_slider(hub_config.count_model(model_key).arch.num_layers)
    return gr.update(maximum=last, value=value)


# --- 4. quality ---------------------------------------------------------------------------------
@handler
def _on_quality(model_key, request: gr.Request, progress=gr.Progress()):  # noqa: B008
    """Generator: the quality table first, then the greedy samples one precision at a time."""
    lang = lang_of(request)
    loaded = {p: get_model(model_key, p, progress) for p in QUALITY_PRECISIONS}
    tokenizer = loaded["fp32"].tokenizer
    rows = quant_quality.compare_quality({p: m.model for p, m in loaded.items()}, tokenizer)
    table = pd.DataFrame(
        [[r.precision, f"{r.perplexity:.2f}", f"{r.agreement:.1%}", f"{r.kl:.4f}"] for r in rows],
        columns=[
            text(f"mem.col.{c}", lang) for c in ("precision", "perplexity", "agreement", "kl")
        ],
    )
    note = text(
        "mem.quality.note",
        lang,
        tokens=rows[0].tokens,
        new=config.MEMORY_SAMPLE_NEW_TOKENS,
        prompt=quant_quality.SAMPLE_PROMPT,
    )
    cols = [text("mem.col.precision", lang), text("mem.col.sample", lang)]
    samples = [[p, "…"] for p in QUALITY_PRECISIONS]
    yield note, table, pd.DataFrame(samples, columns=cols)
    for i, p in enumerate(QUALITY_PRECISIONS):
        samples[i][1] = quant_quality.greedy_sample(loaded[p].model, tokenizer).strip()
        yield note, table, pd.DataFrame(samples, columns=cols)


def _build_quality() -> None:
    gr.Markdown(t("mem.quality.title"))
    gr.Markdown(t("mem.quality.explain"))
    with gr.Row():
        model = model_dropdown(
            t("mem.quality.model"), config.DEFAULT_INSTRUCT, elem_id="mem-quality-model", scale=3
        )
        run = gr.Button(t("mem.quality.run"), variant="primary", elem_id="mem-quality-run", scale=1)
    note = gr.Markdown(elem_id="mem-quality-note")
    with gr.Column(visible=False) as results:  # shown on the first click
        table = gr.Dataframe(elem_id="mem-quality-table", interactive=False, show_label=False)
        gr.Markdown(t("mem.quality.samples"))
        samples = gr.Dataframe(
            elem_id="mem-quality-samples", interactive=False, show_label=False, wrap=True
        )
    run.click(_show, None, results, api_name=False, queue=False)
    run.click(_on_quality, [model], [note, table, samples], api_name="memory_quality", **MODEL)


def build() -> None:
    gr.Markdown(t("mem.intro"), elem_id="mem-intro")
    _build_calculator()
    _build_measured()
    _build_lab()
    _build_quality()
