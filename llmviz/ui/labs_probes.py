"""Two labs of the Labs tab that probe a real model: bias in the training data, and what the
examples of a few-shot prompt really teach (wrong labels, chain of thought).

Wires components to ``llmviz.bias`` / ``llmviz.icl`` (the scoring) and ``llmviz.plots.probes``
(figures). Every run is model work (MODEL queue) and its result is shared by every session that
asks the same (``lane.shared``). The ICL and chain-of-thought runs stream their results condition
by condition and batch by batch; Stop cancels them, and a generation in flight stops at its next
token (its ``threading.Event`` is set when the handler's generator is closed).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from llmviz import bias, config, icl, lane
from llmviz.plots.probes import BiasPanel, accuracy_figure, bias_figure
from llmviz.ui.common import (
    LIGHT,
    MODEL,
    Outputs,
    get_model,
    handler,
    model_choices,
    model_dropdown,
    skip,
)
from llmviz.ui.i18n import lang_of, t, text

PRECISION = "auto"
TUNED = "gemma-3-270m-sft"  # our own LoRA-tuned Gemma (the fine-tuning tab), shown beside its base
#: The template set a page opens with, per UI language.
OPENING_SET = {"en": "occupation-pronoun-en", "ja": "occupation-gender-ja"}


def _name(key: str) -> str:
    names = {k: lbl for lbl, k in model_choices()}
    return names.get(key, key).split(" (")[0]


# --- bias ----------------------------------------------------------------------------------------
@dataclasses.dataclass(slots=True)
class BiasScreen(Outputs):
    chart: Any = skip()
    table: Any = skip()
    summary: Any = skip()


def _probe(key: str, s: bias.TemplateSet, progress: Any) -> bias.Probe:
    lm = get_model(key, PRECISION, progress)
    return lane.shared(
        lm.model, ("bias", s.template, s.targets, s.fillers), lambda: bias.probe(lm.model, lm.tokenizer, s)
    )


def _pct(p: float) -> str:
    return f"{100 * p:.3g} %"


def _bias_summary(runs: list[tuple[str, bias.Probe]], s: bias.TemplateSet, lang: str) -> str:
    a, b = s.targets
    lines = []
    for name, pr in runs:
        shares = [r.share for r in pr.rows]
        most_a = max(pr.rows, key=lambda r: r.ratio)
        most_b = min(pr.rows, key=lambda r: r.ratio)
        lines.append(
            text(
                "labs.bias.summary_line", lang, name=name, a=a, b=b,
                share=f"{100 * float(np.mean(shares)):.0f}", lo=f"{100 * min(shares):.0f}", hi=f"{100 * max(shares):.0f}",
                fa=most_a.filler, ra=f"{most_a.ratio:.2g}", fb=most_b.filler, rb=f"{1 / most_b.ratio:.2g}",
            )  # fmt: skip
        )
    lines.append(text("labs.bias.fair", lang, a=a, b=b))
    return "\n\n".join(lines)


@handler
def _on_bias(template, targets, fillers, model_key, with_tuned, request: gr.Request, progress=gr.Progress()):  # noqa: B008
    lang = lang_of(request)
    s = bias.check_set(template, targets, fillers)
    keys = [model_key]
    if with_tuned is True and model_key != TUNED:
        keys.append(TUNED)
    runs = [(_name(k), _probe(k, s, progress)) for k in keys]
    a, b = s.targets
    panels = [
        BiasPanel(name, [r.filler for r in pr.rows], [r.probs[0] for r in pr.rows],
                  [r.probs[1] for r in pr.rows], [r.ratio for r in pr.rows])
        for name, pr in runs
    ]  # fmt: skip
    fig = bias_figure(
        panels, s.targets, text("labs.bias.chart_title", lang, template=s.template, a=a, b=b),
        text("labs.bias.x", lang), text("labs.bias.ratio", lang),
    )  # fmt: skip
    cols = [text("labs.bias.col_filler", lang)]
    for name, _pr in runs:
        cols += [f"{name}: P({a})", f"{name}: P({b})", f"{name}: {text('labs.bias.ratio', lang)}"]
    rows = []
    for i, f in enumerate(s.fillers):
        row = [f]
        for _, pr in runs:
            r = pr.rows[i]
            row += [_pct(r.probs[0]), _pct(r.probs[1]), f"{r.ratio:.3g}"]
        rows.append(row)
    table = gr.update(value=pd.DataFrame(rows, columns=cols), visible=True)
    return BiasScreen(chart=fig, table=table, summary=_bias_summary(runs, s, lang))


def _preset_values(key: object) -> tuple[str, str, str, str]:
    s = bias.template_set(key)
    return s.template, ", ".join(s.targets), "\n".join(s.fillers), s.note


@handler
def _on_bias_preset(key):
    return _preset_values(key)


@handler
def _on_bias_open(request: gr.Request):
    key = OPENING_SET.get(lang_of(request), OPENING_SET["en"])
    return key, *_preset_values(key)


def build_bias() -> None:
    gr.Markdown(t("labs.bias.explain"))
    sets = bias.template_sets()
    first = sets[OPENING_SET["en"]]
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            preset = gr.Dropdown([(s.title, k) for k, s in sets.items()], value=first.id,
                                 label=t("labs.bias.preset"), elem_id="labs-bias-preset")  # fmt: skip
            template = gr.Textbox(first.template, label=t("labs.bias.template"), info=t("labs.bias.template_info"),
                                  elem_id="labs-bias-template")  # fmt: skip
            targets = gr.Textbox(", ".join(first.targets), label=t("labs.bias.targets"),
                                 info=t("labs.bias.targets_info"), elem_id="labs-bias-targets")  # fmt: skip
        with gr.Column(scale=2, min_width=300):
            fillers = gr.Textbox("\n".join(first.fillers), lines=6, max_lines=12, label=t("labs.bias.fillers"),
                                 info=t("labs.bias.fillers_info"), elem_id="labs-bias-fillers")  # fmt: skip
    with gr.Row():
        model = model_dropdown(t("common.model"), config.DEFAULT_BASE, elem_id="labs-bias-model", scale=2)
        tuned = gr.Checkbox(True, label=t("labs.bias.with_tuned"), info=t("labs.bias.with_tuned_info"),
                            elem_id="labs-bias-tuned", scale=2)  # fmt: skip
        run = gr.Button(t("labs.bias.run"), variant="primary", elem_id="labs-bias-run", scale=1)
    note = gr.Markdown(first.note, elem_id="labs-bias-note")
    chart = gr.Plot(show_label=False, elem_id="labs-bias-chart")
    summary = gr.Markdown(elem_id="labs-bias-summary")
    table = gr.Dataframe(interactive=False, show_label=False, visible=False, elem_id="labs-bias-table")
    gr.Markdown(t("labs.bias.lesson"))

    inputs = [template, targets, fillers, model, tuned]
    screen = BiasScreen.wire(chart=chart, table=table, summary=summary)
    run.click(_on_bias, inputs, screen, api_name="labs_bias", **MODEL)
    preset.input(
        _on_bias_preset, [preset], [template, targets, fillers, note], api_name="labs_bias_preset", **LIGHT
    ).then(_on_bias, inputs, screen, api_name=False, **MODEL)
    root = gr.context.Context.root_block
    if root is not None:  # a Japanese page opens with a Japanese template set
        root.load(_on_bias_open, None, [preset, template, targets, fillers, note], api_name=False, **LIGHT)


# --- in-context learning -------------------------------------------------------------------------
@dataclasses.dataclass(slots=True)
class IclScreen(Outputs):
    chart: Any = skip()
    summary: Any = skip()
    table: Any = skip()
    prompts: Any = skip()


def _cond_name(c: str, lang: str) -> str:
    return text(f"labs.icl.cond.{c}", lang)


def _label_name(label: str, lang: str) -> str:
    return text(f"labs.icl.label.{label}", lang)


def _icl_screen(results: list[icl.Condition], set_lang: str, lang: str, done: bool) -> IclScreen:
    names = [_cond_name(r.condition, lang) for r in results]
    fig = accuracy_figure(
        names, [r.correct for r in results], [r.n for r in results],
        text("labs.icl.chart_title", lang, n=results[0].n), text("labs.icl.y", lang), text("labs.icl.chance", lang),
    )  # fmt: skip
    lines = [
        text("labs.icl.summary_line", lang, cond=n, correct=r.correct, n=r.n, acc=f"{100 * r.accuracy:.0f}",
             pos=f"{100 * r.positive_share:.0f}", a=r.words[0], b=r.words[1])  # fmt: skip
        for n, r in zip(names, results, strict=True)
    ]
    if done:
        lines.append(text("labs.icl.lesson_after", lang))
    _, items = icl.reviews(set_lang)
    cols = [text("labs.icl.col_review", lang), text("labs.icl.col_gold", lang), *names]
    rows = []
    for i, item in enumerate(items):
        row = [item.text, _label_name(item.label, lang)]
        for r in results:
            mark = "✓" if r.predicted[i] == r.gold[i] else "✗"
            row.append(f"{mark} {_label_name(r.predicted[i], lang)}")
        rows.append(row)
    shown = [f"## {n}\n{icl.prompt(set_lang, r.condition, items[0].text)}" for n, r in zip(names, results, strict=True)]
    return IclScreen(
        chart=fig, summary="\n\n".join(lines), table=gr.update(value=pd.DataFrame(rows, columns=cols), visible=True),
        prompts="\n\n".join(shown),
    )  # fmt: skip


def _classified(key: str, set_lang: str, condition: str, progress: Any) -> icl.Condition:
    lm = get_model(key, PRECISION, progress)
    return lane.shared(
        lm.model, ("icl", set_lang, condition), lambda: icl.classify(lm.model, lm.tokenizer, set_lang, condition)
    )


@handler
def _on_icl(set_lang, model_key, conditions, request: gr.Request, progress=gr.Progress()):  # noqa: B008
    lang = lang_of(request)
    set_lang = icl.check_lang(set_lang)
    conds = icl.check_conditions(conditions)
    results: list[icl.Condition] = []
    for i, c in enumerate(conds):
        progress(i / len(conds), desc=text("labs.icl.running", lang, cond=_cond_name(c, lang)))
        results.append(_classified(model_key, set_lang, c, progress))
        yield _icl_screen(results, set_lang, lang, done=i == len(conds) - 1)


# --- chain of thought ----------------------------------------------------------------------------
class _Stopped(Exception):
    """A generation stopped by its Stop button (its partial answers are dropped)."""


@dataclasses.dataclass(slots=True)
class CotScreen(Outputs):
    chart: Any = skip()
    summary: Any = skip()
    table: Any = skip()


def _waiting(fn: Callable[[], Any], stop: threading.Event, poll_s: float = 0.2) -> Iterator[Any]:
    """Run ``fn`` in a worker thread; yield ``None`` every ``poll_s`` while it runs, then its
    result (or raise its error). Closing this generator early sets ``stop`` (a cancel reaches
    the generation at its next token) and waits for the worker."""
    box: dict[str, Any] = {}
    ctx = contextvars.copy_context()

    def work() -> None:
        try:
            box["value"] = ctx.run(fn)
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = err

    worker = threading.Thread(target=work, name="llmviz-cot", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(poll_s)
            if worker.is_alive():
                yield None
    except BaseException:  # closed (a cancel) or failed: stop the generation, leave no thread
        stop.set()
        worker.join()
        raise
    if "error" in box:
        raise box["error"]
    yield box["value"]


def _cot_screen(direct: list[icl.Solved], worked: list[icl.Solved], lang: str, total: int) -> CotScreen:
    labels = [text("labs.cot.direct", lang), text("labs.cot.cot", lang)]
    fig = accuracy_figure(
        labels, [sum(s.correct for s in direct), sum(s.correct for s in worked)], [len(direct), len(worked)],
        text("labs.cot.chart_title", lang, n=total), text("labs.icl.y", lang), None,
    )  # fmt: skip
    rows = []
    for i in range(max(len(direct), len(worked))):
        p = (direct + worked)[i if i < len(direct) else i - len(direct)].problem
        row = [p.question, str(p.answer)]
        for col in (direct, worked):
            if i < len(col):
                s = col[i]
                row.append(f"{'✓' if s.correct else '✗'} {s.given if s.given is not None else '—'} · {s.reply}")
            else:
                row.append("…")
        rows.append(row)
    cols = [text("labs.cot.col_q", lang), text("labs.cot.col_answer", lang), *labels]
    summary = text(
        "labs.cot.summary", lang, d=sum(s.correct for s in direct), nd=len(direct),
        c=sum(s.correct for s in worked), nc=len(worked), total=total,
    )  # fmt: skip
    return CotScreen(chart=fig, summary=summary, table=gr.update(value=pd.DataFrame(rows, columns=cols), visible=True))


@handler
def _on_cot(set_lang, model_key, request: gr.Request, progress=gr.Progress()):  # noqa: B008
    lang = lang_of(request)
    set_lang = icl.check_lang(set_lang)
    lm = get_model(model_key, PRECISION, progress)
    _, items = icl.problems(set_lang)
    done: dict[bool, list[icl.Solved]] = {False: [], True: []}
    stop = threading.Event()
    size = config.ICL_COT_BATCH
    for cot in (False, True):
        for start in range(0, len(items), size):
            part = items[start : start + size]
            progress(None, desc=text("labs.cot.running", lang, kind=text(f"labs.cot.{'cot' if cot else 'direct'}", lang),
                                     a=start + 1, b=start + len(part), n=len(items)))  # fmt: skip

            def solve(part=part, cot=cot) -> list[icl.Solved]:
                solved = icl.solve(lm.model, lm.tokenizer, set_lang, cot, part, stop)
                if stop.is_set():  # cut short: never kept as the class's shared answer
                    raise _Stopped
                return solved

            def run(part=part, cot=cot, solve=solve) -> list[icl.Solved]:
                key = ("cot", set_lang, cot, tuple(p.question for p in part))
                return lane.shared(lm.model, key, solve)

            with contextlib.closing(_waiting(run, stop)) as waiting:
                for value in waiting:
                    if value is None:
                        yield CotScreen()  # nothing new: lets a Stop reach this generator
                    else:
                        done[cot].extend(value)
            if stop.is_set():
                return
            yield _cot_screen(done[False], done[True], lang, len(items))


@handler
def _on_stop() -> None:
    return None  # the cancel (cancels=[...]) closes the generator; a generation stops at its next token


def build_icl() -> None:
    gr.Markdown(t("labs.icl.explain"))
    with gr.Row():
        set_lang = gr.Dropdown([("English", "en"), ("日本語", "ja")], value="en", label=t("labs.icl.set"),
                               elem_id="labs-icl-set", scale=1)  # fmt: skip
        model = model_dropdown(t("common.model"), config.DEFAULT_BASE, elem_id="labs-icl-model", scale=2)
    conditions = gr.CheckboxGroup([(t(f"labs.icl.cond.{c}"), c) for c in icl.CONDITIONS], value=list(icl.CONDITIONS),
                                  label=t("labs.icl.conditions"), elem_id="labs-icl-conditions")  # fmt: skip
    with gr.Row():
        run = gr.Button(t("labs.icl.run"), variant="primary", elem_id="labs-icl-run")
        stop = gr.Button(t("common.stop"), variant="stop", elem_id="labs-icl-stop")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            chart = gr.Plot(show_label=False, elem_id="labs-icl-chart")
        with gr.Column(scale=2, min_width=300):
            summary = gr.Markdown(elem_id="labs-icl-summary")
    with gr.Accordion(t("labs.icl.prompts"), open=False):
        prompts = gr.Textbox(lines=14, max_lines=30, interactive=False, show_label=False, elem_id="labs-icl-prompts")
    table = gr.Dataframe(interactive=False, show_label=False, visible=False, max_height=420, elem_id="labs-icl-table")

    gr.Markdown(t("labs.cot.explain"))
    with gr.Row():
        cot_run = gr.Button(t("labs.cot.run"), variant="primary", elem_id="labs-cot-run")
        cot_stop = gr.Button(t("common.stop"), variant="stop", elem_id="labs-cot-stop")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            cot_chart = gr.Plot(show_label=False, elem_id="labs-cot-chart")
        with gr.Column(scale=2, min_width=300):
            cot_summary = gr.Markdown(elem_id="labs-cot-summary")
    cot_table = gr.Dataframe(interactive=False, show_label=False, visible=False, wrap=True, max_height=520,
                             elem_id="labs-cot-table")  # fmt: skip

    screen = IclScreen.wire(chart=chart, summary=summary, table=table, prompts=prompts)
    event = run.click(_on_icl, [set_lang, model, conditions], screen, api_name="labs_icl", **MODEL)
    stop.click(_on_stop, None, None, cancels=[event], api_name="labs_icl_stop", **LIGHT)
    cot_screen = CotScreen.wire(chart=cot_chart, summary=cot_summary, table=cot_table)
    cot_event = cot_run.click(_on_cot, [set_lang, model], cot_screen, api_name="labs_cot", **MODEL)
    cot_stop.click(_on_stop, None, None, cancels=[cot_event], api_name="labs_cot_stop", **LIGHT)
    root = gr.context.Context.root_block
    if root is not None:  # a Japanese page opens with the Japanese set
        root.load(_on_set_open, None, [set_lang], api_name=False, **LIGHT)


@handler
def _on_set_open(request: gr.Request):
    return "ja" if lang_of(request) == "ja" else "en"
