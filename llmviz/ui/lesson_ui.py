"""The guided lesson: a side panel that walks the textbook's order, one step at a time.

Each step (``assets/lesson/lesson.json``, edited by teachers; ``llmviz.lesson`` reads and checks
it) has a short text, a question for the class and a link; "Open in its tab" applies that link
exactly as a deep link would (``links_ui.apply``), so a step and a slide's link are the same thing.
``?lesson=N`` opens the panel at step N (and, without a ``tab=``, opens that step's view).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from llmviz import lesson, links
from llmviz.ui import links_ui
from llmviz.ui.common import LIGHT, handler
from llmviz.ui.i18n import lang_of, t, text


def step_markdown(index: int, lang: str) -> str:
    course = lesson.load_lesson()
    step = course.step(index)
    words = step.text(lang)
    n = len(course)
    i = max(0, min(index, n - 1)) + 1
    return (
        f"### {i} / {n} · {words.title}\n\n{words.text}\n\n"
        f"**{text('lesson.question', lang)}** {words.question}"
    )


def _clamp(index: Any) -> int:
    try:
        value = int(index)
    except (TypeError, ValueError):
        value = 0
    return max(0, min(value, len(lesson.load_lesson()) - 1))


def build_panel() -> dict[str, Any]:
    with gr.Sidebar(open=False, label=t("lesson.title"), width=320, elem_id="llmviz-lesson") as bar:
        gr.Markdown(t("lesson.intro"), elem_id="lesson-intro")
        body = gr.Markdown(elem_id="lesson-step")
        index = gr.Number(0, visible=False, precision=0, elem_id="lesson-index")
        with gr.Row():
            prev = gr.Button(t("lesson.prev"), size="sm", elem_id="lesson-prev")
            nxt = gr.Button(t("lesson.next"), size="sm", elem_id="lesson-next")
        go = gr.Button(t("lesson.open_step"), variant="primary", elem_id="lesson-open")
    return {"sidebar": bar, "body": body, "index": index, "prev": prev, "next": nxt, "go": go}


def wire(root: gr.Blocks, panel: dict[str, Any], button: gr.Button,
         linked: links_ui.Linked) -> None:  # fmt: skip
    body, index = panel["body"], panel["index"]
    run_id = gr.Textbox(visible=False, elem_id="lesson-run")
    page = [*linked.run_outputs(), run_id]

    @handler
    def _on_page(request: gr.Request):
        query = links_ui.query_of(request)
        raw = query.get("lesson")
        opened = links.check_value(links.Field("lesson", "int", 1, 999), raw or "")[0]
        lang = lang_of(request)
        if opened is None:
            return gr.skip(), 0, step_markdown(0, lang)
        i = _clamp(int(opened) - 1)
        return gr.Sidebar(open=True), i, step_markdown(i, lang)

    root.load(_on_page, None, [panel["sidebar"], index, body], api_name=False,
              show_progress="hidden", **LIGHT)  # fmt: skip

    def _move(i: Any, delta: int, request: gr.Request | None):
        j = _clamp(_clamp(i) + delta)
        return j, step_markdown(j, lang_of(request))

    @handler
    def _on_prev(i: Any, request: gr.Request):
        return _move(i, -1, request)

    @handler
    def _on_next(i: Any, request: gr.Request):
        return _move(i, 1, request)

    for btn, fn in ((panel["prev"], _on_prev), (panel["next"], _on_next)):
        btn.click(fn, index, [index, body], api_name=False, show_progress="hidden", **LIGHT)

    @handler
    def _on_go(i: Any, request: gr.Request):
        return links_ui.apply(linked, links_ui.step_link(linked, _clamp(i)), lang_of(request))

    panel["go"].click(_on_go, index, page, api_name="lesson_open", show_progress="hidden",
                      **LIGHT).then(None, [run_id], None, js=links_ui.PRESS)  # fmt: skip
    button.click(lambda: gr.Sidebar(open=True), None, panel["sidebar"], api_name=False,
                 show_progress="hidden", **LIGHT)  # fmt: skip
