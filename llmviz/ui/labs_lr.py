"""The learning-rate lab (a sub-tab of the labs tab): θ ← θ − α∇L made visible, in three parts.

1. Gradient descent on a 2-D bowl for three preset α's (from the curvature) and the student's
   own (``llmviz.learning_rate.descend``; LIGHT queue, filled on page load).
2. A real character-bigram training run at three α's (``learning_rate.train``; MODEL queue, a
   generator that redraws the curves as they grow; Stop cancels it).
3. The warm-up + cosine schedule read from transformers' scheduler (LIGHT, filled on load).

Wires components to the core and ``llmviz.plots.learning_rate``; no maths here.
"""

from __future__ import annotations

import dataclasses
import html
import math
from typing import Any

import gradio as gr
import numpy as np

from llmviz import config
from llmviz import learning_rate as lr
from llmviz.plots import learning_rate as plots
from llmviz.ui.common import LIGHT, MODEL, Outputs, handler, limit_slider, skip, slider_changes
from llmviz.ui.i18n import lang_of, t, text

RUN_NAMES = ("α₁", "α₂", "α₃")
#: a run counts as converged within this fraction of the gap between ln V and the bound, and as
#: crawling while it has closed less than CRAWL_FRACTION of that gap
NEAR_FRACTION = 0.05
CRAWL_FRACTION = 0.25


def _num(x: float) -> str:
    """A learning rate or loss, short: 0.01, 0.15, 2.5e-04, 1e+06."""
    if x == 0 or not math.isfinite(x):
        return str(x)
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e5 else f"{x:.2e}"


def _words(lang: str, prefix: str, keys: tuple[str, ...], **values: Any) -> dict[str, str]:
    return {k: text(f"{prefix}.{k}", lang, **values) for k in keys}


# --- 1. the bowl ---------------------------------------------------------------------------------
@dataclasses.dataclass(slots=True)
class BowlScreen(Outputs):
    bowl: Any = skip()
    losses: Any = skip()
    summary: Any = skip()


def _verdict(path: lr.Path, bowl: lr.Bowl, lang: str) -> str:
    if path.diverged_at is not None:
        return text("labs.lr.gd.diverged", lang, k=path.diverged_at, bound=f"{path.bound:.3g}")
    dist = np.linalg.norm(path.points, axis=1)
    reached = np.flatnonzero(dist <= 0.01 * dist[0])
    if reached.size:
        out = text("labs.lr.gd.converged", lang, k=int(reached[0]))
    else:
        out = text("labs.lr.gd.slow", lang, pct=f"{dist[-1] / dist[0]:.0%}", n=path.steps)
    if path.alpha * bowl.lam_max > 1:
        out += text("labs.lr.gd.zigzag", lang, x=f"{path.alpha * bowl.lam_max:.2f}")
    return out


def _bowl_summary(bowl: lr.Bowl, paths: list[lr.Path], names: list[str], lang: str) -> str:
    rows = [text("labs.lr.gd.table_head", lang)]
    for name, p in zip(names, paths, strict=True):
        rows.append(
            f"| {name} | {_num(p.alpha)} | {p.steps} | {_num(float(p.losses[-1]))} | {_verdict(p, bowl, lang)} |"
        )
    mine = paths[-1].alpha
    rule = text(
        "labs.lr.gd.rule", lang, lmax=_num(bowl.lam_max), lmin=_num(bowl.lam_min),
        stable=_num(2 / bowl.lam_max), best=_num(lr.best_alpha(bowl)),
        f_max=_num(1 - mine * bowl.lam_max), f_min=_num(1 - mine * bowl.lam_min),
    )  # fmt: skip
    return "\n".join(rows) + "\n\n" + rule


@handler
def _on_descend(alpha, steps, lam1, lam2, angle, request: gr.Request):
    lang = lang_of(request)
    bowl = lr.make_bowl(lam1, lam2, angle)
    mine = lr.descend(bowl, alpha, steps)  # checks α and the steps first
    presets = lr.preset_alphas(bowl)
    paths = [lr.descend(bowl, a, steps) for a in presets] + [mine]
    names = [
        text("labs.lr.gd.path_preset", lang, alpha=_num(a), factor=f"{f:g}")
        for a, f in zip(presets, config.LR_PRESET_FACTORS, strict=True)
    ] + [text("labs.lr.gd.path_yours", lang, alpha=_num(mine.alpha))]
    half = 1.3 * float(np.linalg.norm(config.LR_START))
    grid = np.linspace(-half, half, 121)
    gx, gy = np.meshgrid(grid, grid)
    surface = bowl.loss(np.stack([gx, gy], axis=-1))  # (G, G), row = y
    curves = [
        plots.Curve(n, p.points[:, 0], p.points[:, 1]) for n, p in zip(names, paths, strict=True)
    ]
    words = _words(lang, "labs.lr.plot", ("x", "y", "loss", "start", "minimum", "step"))
    words["title"] = text(
        "labs.lr.plot.bowl_title", lang, l1=_num(bowl.curvatures[0]), l2=_num(bowl.curvatures[1]),
        angle=f"{bowl.angle_deg:g}",
    )  # fmt: skip
    per_step = [
        plots.Curve(n, np.arange(len(p.losses)), p.losses, end_mark=p.diverged_at is not None)
        for n, p in zip(names, paths, strict=True)
    ]
    step_words = _words(lang, "labs.lr.plot", ("steps_title",))
    step_words.update(x=text("labs.lr.plot.step", lang), y=text("labs.lr.plot.steps_y", lang),
                      title=step_words.pop("steps_title"))  # fmt: skip
    return BowlScreen(
        bowl=plots.bowl_figure(grid, surface, curves, words),
        losses=plots.loss_figure(per_step, step_words),
        summary=_bowl_summary(bowl, paths, names, lang),
    )


# --- 2. the bigram training run ------------------------------------------------------------------
@dataclasses.dataclass(slots=True)
class TrainScreen(Outputs):
    chart: Any = skip()
    summary: Any = skip()
    samples: Any = skip()


@dataclasses.dataclass(frozen=True)
class _References:
    uniform: float  # ln V
    bound: float  # H(next | previous)
    vocab: int
    pairs: int


def _references(corpus: lr.Corpus) -> _References:
    h = lr.conditional_entropy(lr.bigram_counts(corpus))
    return _References(lr.uniform_loss(corpus), h, corpus.vocab, corpus.pairs)


def _run_verdict(run: lr.RunView, ref: _References, lang: str) -> str:
    if run.diverged_at is not None:
        return text("labs.lr.train.diverged", lang, k=run.diverged_at)
    if run.final > ref.uniform:
        return text("labs.lr.train.worse", lang)
    tol = NEAR_FRACTION * (ref.uniform - ref.bound)
    if run.final - ref.bound <= tol:
        return text("labs.lr.train.near", lang, tol=f"{tol:.2f}")
    if (ref.uniform - run.final) < CRAWL_FRACTION * (ref.uniform - ref.bound):
        return text("labs.lr.train.crawls", lang)
    return text("labs.lr.train.learning", lang)


def _train_summary(snap: lr.Snapshot, ref: _References, lang: str) -> str:
    if snap.out_of_time:
        status = text("labs.lr.train.out_of_time", lang, step=snap.step, steps=snap.steps,
                      limit=f"{config.LR_TRAIN_SECONDS:g}")  # fmt: skip
    elif snap.done:
        status = text("labs.lr.train.done", lang, steps=snap.step, seconds=f"{snap.seconds:.1f}")
    else:
        status = text("labs.lr.train.running", lang, step=snap.step, steps=snap.steps)
    rows = [status, "", text("labs.lr.train.table_head", lang)]
    gap = ref.uniform - ref.bound
    for name, run in zip(RUN_NAMES, snap.runs, strict=False):
        closed = f"{(ref.uniform - run.final) / gap:.1%}" if run.final <= ref.uniform else "—"
        rows.append(
            f"| {name} | {_num(run.alpha)} | {run.losses[0]:.3f} | **{_num(run.final)}** | {closed}"
            f" | {_run_verdict(run, ref, lang)} |"
        )
    rows += ["", text("labs.lr.train.refs", lang, v=ref.vocab, n=f"{ref.pairs:,}",
                      lnv=f"{ref.uniform:.3f}", h=f"{ref.bound:.3f}")]  # fmt: skip
    return "\n".join(rows)


def _train_figure(snap: lr.Snapshot, ref: _References, lang: str) -> Any:
    curves = [
        plots.Curve(
            f"{name} = {_num(run.alpha)}",
            np.arange(len(run.losses)),
            run.losses,
            end_mark=run.diverged_at is not None,
        )  # fmt: skip
        for name, run in zip(RUN_NAMES, snap.runs, strict=False)
    ]
    refs = [(text("labs.lr.plot.ref_uniform", lang), ref.uniform),
            (text("labs.lr.plot.ref_bound", lang), ref.bound)]  # fmt: skip
    highest = max((float(r.losses.max()) for r in snap.runs if len(r.losses)), default=ref.uniform)
    top = min(max(highest, ref.uniform), 100 * ref.uniform)  # a blow-up is cut at 100 x ln V
    words = {"title": text("labs.lr.plot.train_title", lang), "x": text("labs.lr.plot.step", lang),
             "y": text("labs.lr.plot.train_y", lang)}  # fmt: skip
    return plots.training_figure(curves, refs, snap.steps, words, top)


def _shown(sample: str) -> str:
    return html.escape(sample).replace("\n", "↵")


def _samples_html(snap: lr.Snapshot, corpus: lr.Corpus, lang: str) -> str:
    start = corpus.chars[int(corpus.ids[0])]
    head = text("labs.lr.train.samples_head", lang, n=config.LR_SAMPLE_CHARS,
                start=start, seed=config.LR_SAMPLE_SEED)  # fmt: skip
    parts = [f'<div class="labs-lr-samples"><p style="margin:0 0 8px">{html.escape(head)}</p>']
    for k, (name, run) in enumerate(zip(RUN_NAMES, snap.runs, strict=False)):
        color = plots.OKABE_ITO[k % len(plots.OKABE_ITO)]
        if run.diverged_at is None:
            title = text("labs.lr.train.sample_title", lang, name=name, alpha=_num(run.alpha),
                         loss=f"{run.final:.3f}")  # fmt: skip
        else:
            title = f"{name} = {_num(run.alpha)}"
        body = (_shown(run.sample) if run.sample is not None
                else f"<i>{html.escape(text('labs.lr.train.no_sample', lang))}</i>")  # fmt: skip
        parts.append(
            f'<div class="labs-lr-sample" style="border-left:6px solid {color};padding:6px 12px;'
            'margin:6px 0;background:#f9fafb;color:#111827">'
            f"<b>{html.escape(title)}</b>"
            f'<div style="font-family:monospace;font-size:1.1em;white-space:pre-wrap;word-break:break-all">{body}</div></div>'
        )
    parts.append("</div>")
    return "".join(parts)


@handler
def _on_train(corpus_key, a1, a2, a3, steps, request: gr.Request):
    lang = lang_of(request)
    corpus = lr.load_corpus(corpus_key)
    events = lr.train(corpus, [a1, a2, a3], steps)  # every value checked before any work
    ref = _references(corpus)
    try:
        yield TrainScreen(summary=text("labs.lr.train.starting", lang), samples="")
        for snap in events:
            screen = TrainScreen(
                chart=_train_figure(snap, ref, lang), summary=_train_summary(snap, ref, lang)
            )
            if snap.done:
                screen.samples = _samples_html(snap, corpus, lang)
            yield screen
    finally:
        events.close()  # Stop (or a closed page) ends the run here, between two chunks


@handler
def _on_train_stop() -> None:
    return None  # the cancel (cancels=[...]) closes the training generator


@handler
def _on_corpus(corpus_key):
    return lr.presets(corpus_key)


# --- 3. the schedule -----------------------------------------------------------------------------
@dataclasses.dataclass(slots=True)
class ScheduleScreen(Outputs):
    chart: Any = skip()
    summary: Any = skip()


@handler
def _on_schedule(peak, warmup, total, final_ratio, request: gr.Request):
    lang = lang_of(request)
    s = lr.schedule(peak, warmup, total, final_ratio)
    final = s.peak * s.final_ratio
    words = _words(lang, "labs.lr.plot", ("sched_title", "step", "sched_y", "warmup", "lr"))
    words.update(title=words.pop("sched_title"), x=words.pop("step"), y=words.pop("sched_y"),
                 peak=text("labs.lr.plot.peak", lang, peak=_num(s.peak), step=f"{s.warmup:,}"),
                 final=text("labs.lr.plot.final", lang, final=_num(final)))  # fmt: skip
    fig = plots.schedule_figure(s.steps, s.lrs, s.warmup, s.peak, final, words)
    summary = text(
        "labs.lr.sched.summary", lang, peak=_num(s.peak), warmup=f"{s.warmup:,}",
        pct=f"{s.warmup / s.total:.0%}", final=_num(final), ratio=f"{s.final_ratio:.0%}",
        total=f"{s.total:,}", points=f"{len(s.steps):,}",
    )  # fmt: skip
    return ScheduleScreen(chart=fig, summary=summary)


# --- layout --------------------------------------------------------------------------------------
def _build_bowl() -> None:
    gr.Markdown(t("labs.lr.gd.explain"))
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            alpha = gr.Number(0.15, label=t("labs.lr.gd.alpha"), info=t("labs.lr.gd.alpha_info"),
                              elem_id="labs-lr-alpha")  # fmt: skip
            steps = limit_slider(1, config.LR_GD_MAX_STEPS, value=50, step=1, label=t("labs.lr.gd.steps"),
                                 info=t("labs.lr.gd.steps_info"), elem_id="labs-lr-steps")  # fmt: skip
            lo, hi = config.LR_CURVATURE_MIN, config.LR_CURVATURE_MAX
            lam1 = limit_slider(lo, hi, value=10, step=0.1, label=t("labs.lr.gd.lam1"),
                                info=t("labs.lr.gd.lam_info"), elem_id="labs-lr-lam1")  # fmt: skip
            lam2 = limit_slider(
                lo, hi, value=1, step=0.1, label=t("labs.lr.gd.lam2"), elem_id="labs-lr-lam2"
            )
            angle = limit_slider(
                0, 180, value=30, step=1, label=t("labs.lr.gd.angle"), elem_id="labs-lr-angle"
            )
            run = gr.Button(t("labs.lr.gd.run"), variant="primary", elem_id="labs-lr-run")
        with gr.Column(scale=2):
            bowl = gr.Plot(show_label=False, elem_id="labs-lr-bowl")
    with gr.Row(equal_height=False):
        losses = gr.Plot(show_label=False, elem_id="labs-lr-losses")
        summary = gr.Markdown(elem_id="labs-lr-summary")
    inputs = [alpha, steps, lam1, lam2, angle]
    outputs = BowlScreen.wire(bowl=bowl, losses=losses, summary=summary)
    root = gr.context.Context.root_block
    on_load = [root.load] if root is not None else []  # filled on page load, in the page's language
    gr.on([run.click, alpha.submit, *slider_changes(steps, lam1, lam2, angle), *on_load], _on_descend,
          inputs, outputs, api_name="labs_learning_rate", trigger_mode="always_last", **LIGHT)  # fmt: skip


def _build_training() -> None:
    gr.Markdown(t("labs.lr.train.explain"))
    small, good, large = config.LR_TRAIN_ALPHAS["en"]
    with gr.Row(equal_height=False):
        corpus = gr.Dropdown([(t("labs.lr.train.corpus_en"), "en"), (t("labs.lr.train.corpus_ja"), "ja")],
                             value="en", label=t("labs.lr.train.corpus"), elem_id="labs-lr-corpus")  # fmt: skip
        a1 = gr.Number(
            small,
            label=t("labs.lr.train.a1"),
            info=t("labs.lr.train.alpha_info"),
            elem_id="labs-lr-a1",
        )
        a2 = gr.Number(good, label=t("labs.lr.train.a2"), elem_id="labs-lr-a2")
        a3 = gr.Number(large, label=t("labs.lr.train.a3"), elem_id="labs-lr-a3")
        steps = limit_slider(1, config.LR_TRAIN_MAX_STEPS, value=config.LR_TRAIN_DEFAULT_STEPS, step=1,
                             label=t("labs.lr.train.steps"), info=t("labs.lr.train.steps_info"),
                             elem_id="labs-lr-train-steps")  # fmt: skip
    with gr.Row():
        run = gr.Button(t("labs.lr.train.run"), variant="primary", elem_id="labs-lr-train")
        stop = gr.Button(t("common.stop"), variant="stop", elem_id="labs-lr-train-stop")
    summary = gr.Markdown(t("labs.lr.train.empty"), elem_id="labs-lr-train-summary")
    chart = gr.Plot(show_label=False, elem_id="labs-lr-train-chart")
    samples = gr.HTML(elem_id="labs-lr-samples")
    corpus.input(_on_corpus, [corpus], [a1, a2, a3], api_name=False, **LIGHT)
    outputs = TrainScreen.wire(chart=chart, summary=summary, samples=samples)
    event = run.click(
        _on_train, [corpus, a1, a2, a3, steps], outputs, api_name="labs_lr_training", **MODEL
    )
    stop.click(
        _on_train_stop, None, None, cancels=[event], api_name="labs_lr_training_stop", **LIGHT
    )


def _build_schedule() -> None:
    gr.Markdown(t("labs.lr.sched.explain"))
    with gr.Row(equal_height=False):
        peak = limit_slider(1e-5, 1e-3, value=config.LR_SCHEDULE_PEAK, step=1e-5, label=t("labs.lr.sched.peak"),
                            info=t("labs.lr.sched.peak_info"), elem_id="labs-lr-peak")  # fmt: skip
        warmup = limit_slider(0, 10_000, value=2_000, step=100, label=t("labs.lr.sched.warmup"),
                              info=t("labs.lr.sched.warmup_info"), elem_id="labs-lr-warmup")  # fmt: skip
        total = gr.Number(20_000, label=t("labs.lr.sched.total"), info=t("labs.lr.sched.total_info"),
                          elem_id="labs-lr-total")  # fmt: skip
        final = limit_slider(0, 1, value=0.1, step=0.05, label=t("labs.lr.sched.final"),
                             info=t("labs.lr.sched.final_info"), elem_id="labs-lr-final")  # fmt: skip
    run = gr.Button(t("labs.lr.sched.run"), elem_id="labs-lr-sched-run")
    chart = gr.Plot(show_label=False, elem_id="labs-lr-sched-chart")
    summary = gr.Markdown(elem_id="labs-lr-sched-summary")
    outputs = ScheduleScreen.wire(chart=chart, summary=summary)
    root = gr.context.Context.root_block
    on_load = [root.load] if root is not None else []
    gr.on([run.click, total.submit, *slider_changes(peak, warmup, final), *on_load], _on_schedule,
          [peak, warmup, total, final], outputs, api_name="labs_lr_schedule", trigger_mode="always_last",
          **LIGHT)  # fmt: skip


def build() -> None:
    gr.Markdown(t("labs.lr.intro"))
    _build_bowl()
    _build_training()
    _build_schedule()
