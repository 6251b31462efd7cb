"""The "GPU vs CPU" lab of the Labs tab: the same squaring timed for growing lists, live.

Wires components to ``llmviz.speed_lab`` (timing, crossovers, the 百ます計算 grids) and
``llmviz.plots.speed`` (figures). "Run" is a generator on the MODEL queue: each measurement holds
the compute lane (so no model work runs while torch's thread count is changed) and the plot,
table and summary are yielded after every method x size, so the class sees the curves grow;
"Stop" cancels it. The 百ます picture is light work, drawn on page load and on "Draw".
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Any

import gradio as gr

from llmviz import config, speed_lab
from llmviz.models.device import pick
from llmviz.plots.speed import (
    Grid,
    Series,
    hyakumasu_figure,
    seconds_text,
    size_text,
    timing_figure,
)
from llmviz.speed_lab import Measurement
from llmviz.ui.common import LIGHT, MODEL, Outputs, handler, skip
from llmviz.ui.i18n import lang_of, t, text

HYAKUMASU_FIXED = (1, 2, 10, 100)


@dataclasses.dataclass(slots=True)
class Screen(Outputs):
    plot: Any = skip()
    table: Any = skip()
    summary: Any = skip()


@dataclasses.dataclass(slots=True)
class GridScreen(Outputs):
    figure: Any = skip()
    table: Any = skip()


def _name(method: str, lang: str) -> str:
    return text(f"labs.speed.name.{method}", lang, n=speed_lab.all_threads())


# --- the timing ----------------------------------------------------------------------------------
def _cell(r: speed_lab.Result | None, lang: str) -> str:
    if r is None:
        return text("labs.speed.pending", lang)
    if isinstance(r, Measurement):
        return seconds_text(r.seconds)
    est = "" if r.estimate_s is None else seconds_text(r.estimate_s)
    if r.reason == "time":
        return text("labs.speed.cell.time", lang, t=est)
    extra = text("labs.speed.cell.estimate", lang, t=est) if est else ""
    params = {
        "cap": {"limit": f"{config.SPEED_PYTHON_MAX_SIZE:,}"},
        "memory": {"mb": f"{r.bytes / 1e6:,.0f}", "cap": f"{config.SPEED_MAX_BYTES / 1e6:,.0f}"},
        "run_budget": {"s": f"{config.SPEED_RUN_BUDGET_S:g}"},
    }.get(r.reason, {})
    return text(f"labs.speed.cell.{r.reason}", lang, **params) + extra


def _table(results: list[speed_lab.Result], methods, sizes, lang: str) -> str:
    at = {(r.method, r.size): r for r in results}
    head = [text("labs.speed.col_size", lang), *(_name(m, lang) for m in methods)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for n in sizes:
        row = [at.get((m, n)) for m in methods]
        times = [r.seconds for r in row if isinstance(r, Measurement)]
        cells = []
        for r in row:
            cell = _cell(r, lang)
            best = isinstance(r, Measurement) and len(times) > 1 and r.seconds == min(times)
            cells.append(f"**{cell}**" if best else cell)
        lines.append(f"| {size_text(n)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _figure(results: list[speed_lab.Result], methods, mach: speed_lab.Machine, lang: str):
    series = []
    for m in methods:
        ms = [r for r in results if isinstance(r, Measurement) and r.method == m]
        if not ms:
            continue  # nothing measured (e.g. no GPU): no line, not even an estimate
        name = _name(m, lang)
        hover = [
            text(
                "labs.speed.hover", lang, name=name, size=size_text(r.size),
                time=seconds_text(r.seconds), per=seconds_text(r.seconds / r.size),
                repeats=r.repeats, loops=f"{r.loops:,}",
            )
            for r in ms
        ]  # fmt: skip
        series.append(Series(m, name, [r.size for r in ms], [r.seconds for r in ms], hover))
    gpu = (
        text("labs.speed.plot_gpu", lang, gpu=mach.gpu)
        if mach.gpu
        else text("labs.speed.plot_no_gpu", lang)
    )
    words = {
        "title": text("labs.speed.plot_title", lang),
        "subtitle": text("labs.speed.plot_subtitle", lang, cpu=mach.cpu, cores=mach.cores, gpu=gpu),
        "x": text("labs.speed.x", lang),
        "y": text("labs.speed.y", lang),
    }
    return timing_figure(series, words)


def _crossover_lines(results: list[speed_lab.Result], methods, lang: str) -> list[str]:
    lines = []
    if "python" not in methods and len(methods) > 1:
        lines.append(text("labs.speed.no_python", lang))
    for c in speed_lab.crossovers(results):
        if not c.compared:
            continue
        name, base = _name(c.method, lang), _name(c.baseline, lang)
        threads = c.baseline != speed_lab.BASELINE
        if c.size is not None:
            key = "labs.speed.cross_threads" if threads else "labs.speed.cross_python"
            lines.append(text(key, lang, name=name, base=base, size=size_text(c.size)))
        else:
            key = "labs.speed.cross_threads_never" if threads else "labs.speed.cross_never"
            lines.append(text(key, lang, name=name, base=base, size=size_text(c.compared[-1])))
    if speed_lab.all_threads() == 1 and "torch_all" in methods:
        lines.append(text("labs.speed.one_cpu", lang))
    for m in methods:
        s = speed_lab.speedup(results, m) if m != speed_lab.BASELINE else None
        if s is not None:
            lines.append(
                text(
                    "labs.speed.speedup", lang, size=size_text(s.size), name=_name(m, lang),
                    time=seconds_text(s.seconds), base_time=seconds_text(s.baseline_seconds),
                    ratio=f"{s.ratio:,.3g}",
                )
            )  # fmt: skip
    return lines


def _summary(results, methods, total: int, mach, lang: str, elapsed: float | None) -> str:
    done = sum(isinstance(r, Measurement) for r in results)
    if elapsed is None:
        last = results[-1]
        head = text(
            "labs.speed.progress", lang, done=len(results), total=total,
            name=_name(last.method, lang), size=size_text(last.size),
        )  # fmt: skip
    else:
        head = text("labs.speed.done", lang, done=done, total=total, s=f"{elapsed:.1f}")
    parts = [head, "\n".join(f"- {line}" for line in _crossover_lines(results, methods, lang))]
    parts.append(
        text(
            "labs.speed.machine", lang, cpu=mach.cpu, cores=mach.cores, numpy=mach.numpy,
            torch=mach.torch,
        )
        + (" " if lang == "en" else "")
        + (
            text("labs.speed.gpu_yes", lang, gpu=mach.gpu)
            if mach.gpu
            else text("labs.speed.gpu_no", lang)
        )
    )  # fmt: skip
    parts.append(
        text("labs.speed.note", lang, repeats=config.SPEED_REPEATS,
             ms=f"{config.SPEED_MIN_TIME_S * 1000:g}")
    )  # fmt: skip
    return "\n\n".join(p for p in parts if p)


@handler
def _on_run(methods, max_size, request: gr.Request, progress=gr.Progress()):
    lang = lang_of(request)
    chosen = speed_lab.check_methods(methods)
    sizes = speed_lab.sizes_up_to(speed_lab.check_max_size(max_size))
    mach = speed_lab.machine()
    total = len(chosen) * len(sizes)
    results: list[speed_lab.Result] = []
    started = time.monotonic()
    runs = speed_lab.measure(chosen, sizes, gpu=mach.gpu is not None)
    with contextlib.closing(runs):  # a Stop closes this generator, and so the measurement
        for r in runs:
            results.append(r)
            yield Screen(
                plot=_figure(results, chosen, mach, lang),
                table=_table(results, chosen, sizes, lang),
                summary=_summary(results, chosen, total, mach, lang, None),
            )
    yield Screen(  # complete, so an API caller's last result holds everything
        plot=_figure(results, chosen, mach, lang),
        table=_table(results, chosen, sizes, lang),
        summary=_summary(results, chosen, total, mach, lang, time.monotonic() - started),
    )


@handler
def _on_stop() -> None:
    return None  # the cancel (cancels=[...]) closes the generator between two measurements


# --- 百ます計算 --------------------------------------------------------------------------------
def _panel_title(h: speed_lab.Hyakumasu, lang: str) -> str:
    if h.workers == 1:
        return text("labs.speed.hm_panel_one", lang, s=h.steps)
    if h.steps == 1:
        return text("labs.speed.hm_panel_one_step", lang, n=h.workers)
    return text("labs.speed.hm_panel", lang, n=h.workers, s=h.steps)


def _grid(h: speed_lab.Hyakumasu, lang: str) -> Grid:
    hover = [
        [
            text(
                "labs.speed.hm_hover", lang, a=int(h.rows[i]), b=int(h.cols[j]),
                sum=int(h.sums[i, j]), step=int(h.done_at[i, j]), w=int(h.worker[i, j]) + 1,
            )
            for j in range(10)
        ]
        for i in range(10)
    ]  # fmt: skip
    return Grid(_panel_title(h, lang), h.done_at, hover, h.rows.tolist(), h.cols.tolist())


def _grid_row(h: speed_lab.Hyakumasu, lang: str) -> str:
    cells = h.done_at.size
    lo, hi = cells // h.workers, -(-cells // h.workers)
    per = f"{lo}" if lo == hi else f"{lo}–{hi}"
    busy = cells / (h.workers * h.steps)
    return text(
        "labs.speed.hm_row", lang, n=h.workers, s=h.steps, speedup=f"{h.speedup:.3g}",
        per=per, busy=f"{busy:.0%}",
    )  # fmt: skip


@handler
def _on_grid(workers, request: gr.Request):
    lang = lang_of(request)
    mine = speed_lab.check_workers(workers)
    grids = [speed_lab.hyakumasu(n) for n in sorted({*HYAKUMASU_FIXED, mine})]
    words = {
        "title": text("labs.speed.hm_title", lang),
        "legend": text("labs.speed.hm_legend", lang),
        "step_prefix": text("labs.speed.hm_step_prefix", lang),
        "step_suffix": text("labs.speed.hm_step_suffix", lang),
    }
    figure = hyakumasu_figure([_grid(h, lang) for h in grids], words)
    table = "\n".join(
        [text("labs.speed.hm_table_head", lang), *(_grid_row(h, lang) for h in grids)]
    )
    return GridScreen(figure=figure, table=table)


# --- layout --------------------------------------------------------------------------------------
def _method_choices() -> tuple[list[tuple[Any, str]], list[str]]:
    gpu = pick() == "cuda"  # without a GPU driver this needs no torch import at build time
    choices = [(t(f"labs.speed.method.{m}"), m) for m in speed_lab.CPU_METHODS]
    choices.append(
        (t("labs.speed.method.cuda" if gpu else "labs.speed.method.cuda_absent"), "cuda")
    )
    return choices, [*speed_lab.CPU_METHODS, *(["cuda"] if gpu else [])]


def build() -> None:
    gr.Markdown(t("labs.speed.explain"))
    choices, default = _method_choices()
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            methods = gr.CheckboxGroup(
                choices, value=default, label=t("labs.speed.methods"),
                info=t("labs.speed.methods_info"), elem_id="labs-speed-methods",
            )  # fmt: skip
            # no precision=0: gradio's rounding fails on inf before the handler (OverflowError)
            max_size = gr.Number(
                config.SPEED_DEFAULT_MAX_SIZE, label=t("labs.speed.max_size"),
                info=t("labs.speed.max_size_info"), elem_id="labs-speed-max-size",
            )  # fmt: skip
            with gr.Row():
                run = gr.Button(t("labs.speed.run"), variant="primary", elem_id="labs-speed-run")
                stop = gr.Button(t("labs.speed.stop"), variant="stop", elem_id="labs-speed-stop")
        with gr.Column(scale=2):
            summary = gr.Markdown(t("labs.speed.before"), elem_id="labs-speed-summary")
    plot = gr.Plot(label=t("labs.speed.plot"), elem_id="labs-speed-plot")
    table = gr.Markdown(elem_id="labs-speed-table")

    gr.Markdown(t("labs.speed.hm_explain"))
    with gr.Row(equal_height=False):
        workers = gr.Number(
            config.HYAKUMASU_DEFAULT_WORKERS, label=t("labs.speed.hm_workers"),
            info=t("labs.speed.hm_workers_info"), elem_id="labs-speed-workers", scale=1,
        )  # fmt: skip
        draw = gr.Button(t("labs.speed.hm_draw"), elem_id="labs-speed-draw", scale=0)
    grid_plot = gr.Plot(label=t("labs.speed.hm_plot"), elem_id="labs-speed-grid")
    grid_table = gr.Markdown(elem_id="labs-speed-grid-table")

    screen = Screen.wire(plot=plot, table=table, summary=summary)
    event = run.click(_on_run, [methods, max_size], screen, api_name="labs_gpu_cpu", **MODEL)
    stop.click(_on_stop, None, None, cancels=[event], api_name="labs_gpu_cpu_stop", **LIGHT)
    grid_screen = GridScreen.wire(figure=grid_plot, table=grid_table)
    draw.click(_on_grid, [workers], grid_screen, api_name="labs_hyakumasu", **LIGHT)
    root = gr.context.Context.root_block
    if root is not None:  # the 百ます picture on page load, in the visitor's language
        root.load(_on_grid, [workers], grid_screen, api_name=False, **LIGHT)
