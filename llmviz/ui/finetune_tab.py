"""The fine-tuning tab: instruction tuning with LoRA, shown step by step and run live.

Wiring and display only; the training itself is ``llmviz.finetune``. A live run trains a private
copy of the packaged base (LoRA layers are injected in place, so the copy every other tab shares
is never touched), one run at a time: a second request waits and says so. A run's results
(losses, answers, the LoRA weights) live in that user's ``gr.State``; the shipped adapter in
``assets/`` is never written by the app.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import json
import threading
import time
from typing import Any

import gradio as gr

from llmviz import compare, config, finetune, lane, library, memory
from llmviz.errors import UserError
from llmviz.models import device, hub_config, load_tokenizer
from llmviz.models.loading import LoadedModel, load_private
from llmviz.plots.finetune import loss_figure
from llmviz.ui.common import LIGHT, Outputs, handler, limit_slider, skip, state_field
from llmviz.ui.i18n import lang_of, t, text

BASE = "gemma-3-270m"
TUNED = "gemma-3-270m-sft"
#: One live run at a time (two would halve each other's speed); others wait for this lock.
TRAIN = {"concurrency_id": "finetune", "concurrency_limit": 4}
_RUN_LOCK = threading.Lock()
_bench: dict[str, LoadedModel] = {}
_bench_lock = threading.Lock()

TRAINED_STYLE = "background:#dcfce7;color:#14532d;border-bottom:2px solid #16a34a"
MASKED_STYLE = "background:#f1f5f9;color:#94a3b8"
SPECIAL_STYLE = "font-weight:600"
TOKEN_STYLE = (
    "display:inline-block;margin:2px 1px;padding:1px 4px;border-radius:4px;font-family:"
    "ui-monospace,'Noto Sans Mono CJK JP',monospace;font-size:14px;white-space:pre"
)
BOX_STYLE = (
    "background:#f8fafc;border:1px solid #e2e8f0;border-radius:8px;padding:10px 12px;"
    "line-height:1.9;word-break:break-word"
)


# --- data shipped with the lesson ---------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def train_pairs() -> tuple[finetune.Pair, ...]:
    return finetune.read_pairs(finetune.TRAIN_FILE)


@functools.lru_cache(maxsize=1)
def heldout_pairs() -> tuple[finetune.Pair, ...]:
    return finetune.read_pairs(finetune.HELDOUT_FILE)


def default_probe(lang: str) -> str:
    """The held-out question a run answers as it learns: a textbook question in Japanese."""
    items = heldout_pairs()
    wanted = "イギリスの首都は？" if lang == "ja" else None
    for p in items:
        if p.instruction == wanted or (wanted is None and p.lang == "en" and p.accept):
            return p.instruction
    return items[0].instruction


def _example_choices() -> list[tuple[str, str]]:
    return [(f"{p.id} · {p.instruction[:60]}", p.id) for p in train_pairs()[:400]]


def _probe_choices() -> list[str]:
    return [p.instruction for p in heldout_pairs()]


# --- 1. the training text ------------------------------------------------------------------------
def _tokens_html(shown: tuple[finetune.ShownToken, ...], lang: str) -> str:
    spans = []
    for tok in shown:
        style = TOKEN_STYLE + ";" + (TRAINED_STYLE if tok.trained else MASKED_STYLE)
        if tok.special:
            style += ";" + SPECIAL_STYLE
        cls = "ft-trained" if tok.trained else "ft-masked"
        spans.append(f'<span class="{cls}" style="{style}">{html.escape(tok.label)}</span>')
        if tok.label in ("↵",):
            spans.append("<br>")
    trained = sum(t.trained for t in shown)
    legend = text("ft.view.legend", lang, n=len(shown), trained=trained, masked=len(shown) - trained)
    return (
        f'<div class="ft-legend" style="margin-bottom:6px">{legend}</div>'
        f'<div class="ft-tokens" style="{BOX_STYLE}">{"".join(spans)}</div>'
    )


@handler
def _on_example(example_id: str):
    for p in train_pairs():
        if p.id == example_id:
            return p.instruction, p.answer
    return gr.skip(), gr.skip()


@handler
def _on_view(instruction: str, answer: str, request: gr.Request):
    lang = lang_of(request)
    instruction = compare.validate_question(instruction)
    answer = finetune.parse_pairs(
        json.dumps({"instruction": instruction, "answer": answer}), text("ft.view.source", lang)
    )[0].answer
    tok = load_tokenizer(BASE)
    example = finetune.format_pair(tok, finetune.Pair(instruction, answer))
    return _tokens_html(finetune.shown_tokens(tok, example), lang)


# --- 2. LoRA in numbers, and memory --------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _breakdown() -> memory.ParamBreakdown:
    return hub_config.count_from_config(hub_config.read_config(BASE))[1]


def _mb(nbytes: float) -> str:
    return memory.mb_text(nbytes) if nbytes < 10**9 else memory.gb_text(nbytes)


def lora_markdown(rank: object, alpha: object, lang: str) -> str:
    settings = finetune.TrainSettings(rank=rank, alpha=alpha)  # the same checks as a run
    n = finetune.lora_numbers(_breakdown(), settings.rank, settings.alpha)
    rows = finetune.memory_table(n.total, n.trainable, 16)
    table = "\n".join(
        f"| {text(f'ft.mem.{r.method}', lang)} | {_mb(r.weights)} | {_mb(r.gradients)} | "
        f"{_mb(r.optimizer)} | **{_mb(r.total)}** |"
        for r in rows
    )
    return text(
        "ft.lora.numbers",
        lang,
        r=n.rank,
        alpha=n.alpha,
        scale=f"{n.scaling:g}",
        layers=n.layers,
        trainable=memory.count_words(n.trainable, lang),
        total=memory.count_words(n.total, lang),
        share=f"{n.share:.2%}",
        trainable_exact=f"{n.trainable:,}",
        total_exact=f"{n.total:,}",
    ) + "\n\n" + text("ft.mem.head", lang) + "\n" + table + "\n\n" + text("ft.mem.note", lang)


@handler
def _on_lora(rank: float, alpha: float, request: gr.Request):
    return lora_markdown(rank, alpha, lang_of(request))


# --- 3. the live run -----------------------------------------------------------------------------
@dataclasses.dataclass
class Run:
    """One user's fine-tuning results, kept in their session (never written to disk)."""

    settings: finetune.TrainSettings | None = None
    steps: list[int] = dataclasses.field(default_factory=list)
    losses: list[float] = dataclasses.field(default_factory=list)
    probes: list[finetune.ProbeEvent] = dataclasses.field(default_factory=list)
    lora: dict[str, Any] | None = None  # the trained LoRA weights (CPU tensors)
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    seconds: float = 0.0
    tokens: int = 0


@dataclasses.dataclass(slots=True)
class Screen(Outputs):
    progress: Any = skip()
    plot: Any = skip()
    probes: Any = skip()
    before_after: Any = skip()
    status: Any = skip()
    run: Any = state_field()


def _precision() -> str:
    if device.pick() == "cuda":
        return "nf4"  # QLoRA: the frozen base in 4-bit, LoRA layers in full precision
    return device.default_precision() if config.FT_PRECISION == "auto" else config.FT_PRECISION


def bench() -> LoadedModel:
    """The private base a live run trains (loaded once; only ever used under ``_RUN_LOCK``)."""
    with _bench_lock:
        precision = _precision()
        if precision not in _bench:
            loaded = load_private(BASE, precision)
            if precision == "nf4":
                library.ready("peft")
                from peft import prepare_model_for_kbit_training

                prepare_model_for_kbit_training(loaded.model, use_gradient_checkpointing=False)
            _bench.clear()
            _bench[precision] = loaded
        return _bench[precision]


def _progress_html(run: Run, total: int, lang: str, done: bool = False) -> str:
    step = run.steps[-1] if run.steps else 0
    pct = 100 * step / max(total, 1)
    loss = f"{run.losses[-1]:.3f}" if run.losses else "–"
    rate = run.tokens / run.seconds if run.seconds else 0.0
    label = text(
        "ft.progress", lang, step=step, total=total, loss=loss, sec=f"{run.seconds:.0f}",
        rate=f"{rate:.0f}",
    )  # fmt: skip
    color = "#16a34a" if done else "#4f46e5"
    return (
        '<div class="ft-progress" role="progressbar" aria-valuemin="0" '
        f'aria-valuemax="{total}" aria-valuenow="{step}" style="margin:4px 0">'
        f'<div style="background:#e5e7eb;border-radius:6px;height:14px;overflow:hidden">'
        f'<div style="width:{pct:.1f}%;background:{color};height:14px"></div></div>'
        f'<div style="margin-top:4px;font-size:14px">{html.escape(label)}</div></div>'
    )


def _figure(run: Run, total: int, lang: str):
    return loss_figure(
        run.steps,
        run.losses,
        total,
        x_title=text("ft.plot.x", lang),
        y_title=text("ft.plot.y", lang),
        probe_steps=sorted({p.step for p in run.probes if p.step > 0}),
        probe_label=text("ft.plot.probes", lang),
        empty_text=text("ft.plot.empty", lang),
    )


def _answer_cell(p: finetune.ProbeEvent, lang: str) -> str:
    mark = text("ft.probe.stopped" if p.stopped else "ft.probe.cut", lang)
    return (
        f'<div style="white-space:pre-wrap">{html.escape(p.answer) or "∅"}</div>'
        f'<div style="font-size:12px;color:{"#16a34a" if p.stopped else "#b45309"}">{mark}</div>'
    )


def _probes_html(run: Run, lang: str) -> str:
    if not run.probes:
        return ""
    head = text("ft.probe.head", lang, question=html.escape(run.probes[0].question))
    rows = "".join(
        f'<tr><td style="padding:4px 8px;vertical-align:top">{p.step}</td>'
        f'<td style="padding:4px 8px">{_answer_cell(p, lang)}</td></tr>'
        for p in run.probes
    )
    return (
        f'<div class="ft-probes"><div style="margin-bottom:4px">{head}</div>'
        f'<table style="width:100%;border-collapse:collapse"><thead><tr>'
        f'<th style="text-align:left;padding:4px 8px">{text("ft.probe.step", lang)}</th>'
        f'<th style="text-align:left;padding:4px 8px">{text("ft.probe.answer", lang)}</th>'
        f"</tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _before_after_html(run: Run, lang: str) -> str:
    if len(run.probes) < 2:
        return ""
    first, last = run.probes[0], run.probes[-1]
    cols = []
    for title, p in ((text("ft.before", lang), first), (text("ft.after", lang, step=last.step), last)):
        cols.append(
            f'<div style="flex:1;min-width:220px;{BOX_STYLE}"><div style="font-weight:600">'
            f"{html.escape(title)}</div>{_answer_cell(p, lang)}</div>"
        )
    return f'<div class="ft-before-after" style="display:flex;gap:12px;flex-wrap:wrap">{"".join(cols)}</div>'


def _pairs_for(upload: Any, which: str, lang: str) -> tuple[finetune.Pair, ...]:
    pairs = finetune.read_pairs(upload) if upload else train_pairs()
    chosen = finetune.subset(pairs, which)
    if not chosen:
        raise UserError(
            f"The subset '{which}' of this data is empty: choose 'all' or check the 'lang' fields.",
            key="ft_subset_empty",
            subset=which,
        )
    return chosen


def _wait_for_turn(run: Run, lang: str):
    """Wait for the run in progress (another user's, or this user's previous one) to end,
    yielding a message each second (each yield is also where a cancel lands)."""
    waited = 0
    while not _RUN_LOCK.acquire(timeout=1.0):
        waited += 1
        if run.stop.is_set():
            return False
        yield text("ft.status.waiting", lang, sec=waited)
    return True


@handler
def _on_run(which, steps, lr, rank, alpha, batch, seed, probe, probe_every, upload, run,
            request: gr.Request):  # fmt: skip
    lang = lang_of(request)
    settings = finetune.TrainSettings(
        steps=steps, learning_rate=lr, rank=rank, alpha=alpha, batch_size=batch, seed=seed,
        probe_every=probe_every, probe_tokens=config.FT_PROBE_TOKENS,
    )  # fmt: skip
    question = compare.validate_question(probe)
    pairs = _pairs_for(upload, which, lang)
    if isinstance(run, Run):
        run.stop.set()  # a second click of this user's: the first run stops, this one waits
    run = Run(settings=settings)  # a new run replaces this session's previous results
    waiting = _wait_for_turn(run, lang)
    try:
        while True:
            yield Screen(status=next(waiting), run=run)
    except StopIteration as done:
        got_turn = done.value
    if not got_turn:
        yield Screen(status=text("ft.status.stopped", lang, step=0), run=run)
        return
    try:
        yield Screen(status=text("ft.status.loading", lang), progress=_progress_html(run, settings.steps, lang), run=run)
        loaded = bench()
        start = time.perf_counter()
        why = "done"
        with finetune.attached(loaded.model, settings) as model:
            yield Screen(status=text("ft.status.probing", lang), run=run)
            events = finetune.train(model, loaded.tokenizer, pairs, settings, probes=[question])
            try:
                while True:
                    with lane.COMPUTE:  # a step (or an answer) takes its turn with the class's views
                        event = next(events, None)
                    if event is None:
                        break
                    if isinstance(event, finetune.StepEvent):
                        run.steps.append(event.step)
                        run.losses.append(event.loss)
                        run.seconds = event.seconds
                        run.tokens += event.tokens
                        status = text("ft.status.training", lang, step=event.step, total=event.steps)
                        yield Screen(
                            progress=_progress_html(run, settings.steps, lang),
                            plot=_figure(run, settings.steps, lang), status=status, run=run,
                        )  # fmt: skip
                    else:
                        run.probes.append(event)
                        yield Screen(
                            probes=_probes_html(run, lang), before_after=_before_after_html(run, lang),
                            run=run,
                        )  # fmt: skip
                    if run.stop.is_set():
                        why = "stopped"
                        break
                    if time.perf_counter() - start > config.FT_SECONDS:
                        why = "budget"
                        break
            finally:
                events.close()
            library.ready("peft")
            from peft import get_peft_model_state_dict

            run.lora = {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(model).items()}
        step = run.steps[-1] if run.steps else 0
        status = {
            "done": text("ft.status.done", lang, steps=step, sec=f"{run.seconds:.0f}"),
            "stopped": text("ft.status.stopped", lang, step=step),
            "budget": text("ft.status.budget", lang, step=step, limit=config.FT_SECONDS),
        }[why]
        yield Screen(
            progress=_progress_html(run, settings.steps, lang, done=True),
            plot=_figure(run, settings.steps, lang), probes=_probes_html(run, lang),
            before_after=_before_after_html(run, lang), status=status, run=run,
        )  # fmt: skip
    finally:
        _RUN_LOCK.release()


@handler
def _on_stop(run: Any, request: gr.Request):
    if isinstance(run, Run):
        run.stop.set()
    return text("ft.status.stop_pressed", lang_of(request))


# --- ask your own tuned model ----------------------------------------------------------------------
@handler
def _on_ask(question: str, run: Any, request: gr.Request):
    lang = lang_of(request)
    question = compare.validate_question(question)
    if not isinstance(run, Run) or run.lora is None or run.settings is None:
        raise UserError("Train a model first (press Start above), then ask it.", key="ft_no_run")
    got_turn = yield from _wait_for_turn(Run(), lang)
    if not got_turn:
        return
    try:
        library.ready("peft")
        from peft import set_peft_model_state_dict

        loaded = bench()
        base_answer = finetune.generate_answers(loaded.model, loaded.tokenizer, [question],
                                                config.FT_ASK_TOKENS)[0]  # fmt: skip
        with finetune.attached(loaded.model, run.settings) as model:
            set_peft_model_state_dict(model, run.lora)
            mine = finetune.generate_answers(model, loaded.tokenizer, [question],
                                             config.FT_ASK_TOKENS)[0]  # fmt: skip
    finally:
        _RUN_LOCK.release()
    cells = []
    for title, (answer, stopped, _) in (
        (text("ft.ask.base", lang), base_answer),
        (text("ft.ask.mine", lang), mine),
    ):
        p = finetune.ProbeEvent(0, question, answer, stopped, 0.0)
        cells.append(
            f'<div style="flex:1;min-width:220px;{BOX_STYLE}"><div style="font-weight:600">'
            f"{html.escape(title)}</div>{_answer_cell(p, lang)}</div>"
        )
    yield f'<div style="display:flex;gap:12px;flex-wrap:wrap">{"".join(cells)}</div>'


# --- 4. the shipped tuning, evaluated ------------------------------------------------------------
def eval_markdown(lang: str) -> str:
    try:
        data = json.loads(finetune.EVAL_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return text("ft.eval.missing", lang)
    lines = [
        text("ft.eval.intro", lang, n=data.get("n", "?"), tokens=data.get("max_new_tokens", 64)),
        "",
        "| " + " | ".join(text(f"ft.eval.col.{c}", lang) for c in
                         ("model", "stops", "language", "accuracy", "tokens")) + " |",
        "|---|---:|---:|---:|---:|",
    ]  # fmt: skip
    for row in data.get("rows", []):
        s = row["summary"]
        lines.append(
            f"| {text('ft.eval.row.' + row['key'], lang)} | {s['stops']:.0%} | {s['language']:.0%} "
            f"| {s['accuracy']:.0%} ({round(s['accuracy'] * s['scored'])}/{s['scored']}) "
            f"| {s['mean_new_tokens']:.1f} |"
        )
    return "\n".join(lines)


def eval_answers_html(lang: str) -> str:
    try:
        data = json.loads(finetune.EVAL_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    rows = {r["key"]: r for r in data.get("rows", [])}
    if "base_raw" not in rows or "tuned" not in rows:
        return ""
    cells = []
    head = "".join(
        f'<th style="text-align:left;padding:4px 8px">{html.escape(text(k, lang))}</th>'
        for k in ("ft.eval.col.question", "ft.eval.row.base_raw", "ft.eval.row.tuned")
    )
    for base, tuned in zip(rows["base_raw"]["answers"], rows["tuned"]["answers"], strict=False):
        cells.append(
            f'<tr><td style="padding:4px 8px;vertical-align:top">{html.escape(tuned["q"])}</td>'
            f'<td style="padding:4px 8px;vertical-align:top;white-space:pre-wrap;color:#6b7280">'
            f'{html.escape(base["a"])}</td><td style="padding:4px 8px;vertical-align:top;'
            f'white-space:pre-wrap">{html.escape(tuned["a"])}</td></tr>'
        )
    return (
        f'<table class="ft-eval-answers" style="width:100%;border-collapse:collapse;font-size:14px">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(cells)}</tbody></table>"
    )


@handler
def _on_page(request: gr.Request):
    lang = lang_of(request)
    return (
        default_probe(lang),
        lora_markdown(8, 16, lang),
        eval_markdown(lang),
        eval_answers_html(lang),
    )


# --- layout -----------------------------------------------------------------------------------
def warm_up() -> None:
    """Import peft before the first click (its import takes ~3 s), on the main thread."""
    try:
        library.ready("peft")
    except ImportError:
        pass


def build() -> None:
    first = train_pairs()[0]
    run_state = gr.State(None, delete_callback=lambda r: r.stop.set() if isinstance(r, Run) else None)

    gr.Markdown(t("ft.title"))
    gr.Markdown(t("ft.intro"))

    with gr.Accordion(t("ft.view.title"), open=True):
        gr.Markdown(t("ft.view.intro"))
        with gr.Row():
            example = gr.Dropdown(
                choices=_example_choices(), value=first.id, label=t("ft.view.example"),
                elem_id="ft-example", scale=1,
            )  # fmt: skip
            instruction = gr.Textbox(value=first.instruction, label=t("ft.view.instruction"),
                                     elem_id="ft-instruction", scale=2)  # fmt: skip
            answer = gr.Textbox(value=first.answer, label=t("ft.view.answer"),
                                elem_id="ft-answer", scale=2)  # fmt: skip
        view = gr.HTML(elem_id="ft-view")

    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=440):
            gr.Markdown(t("ft.lora.title"))
            gr.Markdown(t("ft.lora.intro"))
            lora_md = gr.Markdown(elem_id="ft-lora")
        with gr.Column(scale=2, min_width=440):
            gr.Markdown(t("ft.run.title"))
            with gr.Row():
                rank = limit_slider(1, 64, value=8, step=1, label=t("ft.rank"),
                                     info=t("ft.rank_info"), elem_id="ft-rank")  # fmt: skip
                alpha = limit_slider(1, 128, value=16, step=1, label=t("ft.alpha"),
                                      info=t("ft.alpha_info"), elem_id="ft-alpha")  # fmt: skip
            lr = limit_slider(0.0001, 0.01, value=0.001, step=0.0001, label=t("ft.lr"),
                               info=t("ft.lr_info"), elem_id="ft-lr")  # fmt: skip
            with gr.Row():
                steps = limit_slider(1, 200, value=config.FT_DEFAULT_STEPS, step=1,
                                      label=t("ft.steps"), info=t("ft.steps_info"),
                                      elem_id="ft-steps")  # fmt: skip
                batch = limit_slider(1, config.FT_MAX_BATCH, value=4, step=1, label=t("ft.batch"),
                                      elem_id="ft-batch")  # fmt: skip
            with gr.Row():
                which = gr.Radio(choices=[(t(f"ft.subset.{k}"), k) for k in finetune.SUBSETS],
                                 value="all", label=t("ft.subset"), elem_id="ft-subset")  # fmt: skip
                seed = gr.Number(value=0, precision=0, label=t("ft.seed"), elem_id="ft-seed")
            probe = gr.Dropdown(choices=_probe_choices(), value=default_probe("en"),
                                allow_custom_value=True, label=t("ft.probe"),
                                info=t("ft.probe_info"), elem_id="ft-probe")  # fmt: skip
            probe_every = limit_slider(0, 50, value=config.FT_DEFAULT_PROBE_EVERY, step=1,
                                        label=t("ft.probe_every"), elem_id="ft-probe-every")  # fmt: skip
            with gr.Accordion(t("ft.upload.title"), open=False):
                gr.Markdown(t("ft.upload.intro"))
                upload = gr.File(label=t("ft.upload"), file_types=[".jsonl", ".json", ".txt"],
                                 type="filepath", elem_id="ft-upload")  # fmt: skip
            with gr.Row():
                start_btn = gr.Button(t("ft.start"), variant="primary", elem_id="ft-start", scale=3)
                stop_btn = gr.Button(t("ft.stop"), variant="stop", elem_id="ft-stop", scale=1)
    status = gr.Markdown(elem_id="ft-status")
    progress = gr.HTML(elem_id="ft-progress")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=440):
            plot = gr.Plot(elem_id="ft-plot", show_label=False)
        with gr.Column(scale=2, min_width=360):
            probes = gr.HTML(elem_id="ft-probes")
    gr.Markdown(t("ft.before_after"))
    before_after = gr.HTML(elem_id="ft-before-after")

    with gr.Accordion(t("ft.ask.title"), open=False):
        with gr.Row():
            ask_q = gr.Textbox(label=t("ft.ask.question"), value="日本で一番高い山は？",
                               elem_id="ft-ask-question", scale=4)  # fmt: skip
            ask_btn = gr.Button(t("ft.ask.button"), elem_id="ft-ask", scale=1)
        ask_out = gr.HTML(elem_id="ft-ask-out")

    gr.Markdown(t("ft.eval.title"))
    eval_md = gr.Markdown(elem_id="ft-eval")
    with gr.Accordion(t("ft.eval.answers"), open=False):
        eval_html = gr.HTML(elem_id="ft-eval-answers")

    example.change(_on_example, example, [instruction, answer], api_name="finetune_example",
                   **LIGHT)  # fmt: skip
    root = gr.context.Context.root_block
    on_load = [root.load] if root is not None else []
    gr.on([instruction.change, answer.change, *on_load], _on_view, [instruction, answer], view,
          api_name="finetune_view", trigger_mode="always_last", **LIGHT)  # fmt: skip
    gr.on([rank.release, rank.input, alpha.release, alpha.input], _on_lora, [rank, alpha],
          lora_md, api_name="finetune_lora", trigger_mode="always_last", **LIGHT)  # fmt: skip
    if root is not None:
        root.load(_on_page, None, [probe, lora_md, eval_md, eval_html], api_name=False, **LIGHT)
    run_event = start_btn.click(
        _on_run,
        [which, steps, lr, rank, alpha, batch, seed, probe, probe_every, upload, run_state],
        Screen.wire(progress=progress, plot=plot, probes=probes, before_after=before_after,
                    status=status, run=run_state),
        api_name="finetune_run", **TRAIN,
    )  # fmt: skip
    stop_btn.click(_on_stop, run_state, status, api_name="finetune_stop", **LIGHT)
    ask_btn.click(_on_ask, [ask_q, run_state], ask_out, api_name="finetune_ask", **TRAIN)
    del run_event
