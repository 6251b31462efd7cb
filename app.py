"""llmviz: the Gradio app. Composes the tabs; all logic lives in the ``llmviz`` package.

Run ``python app.py`` (or see the README for the one-command start). ``demo`` is module-level so
Hugging Face Spaces and tests can import it; ``launch()`` runs only under ``__main__``.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a classroom

import gradio as gr  # noqa: E402

from llmviz.config import ASSETS  # noqa: E402
from llmviz.ui import (  # noqa: E402
    attention_tab,
    compare_tab,
    export_ui,
    finetune_tab,
    inside_tab,
    labs_tab,
    lesson_ui,
    links_ui,
    memory_tab,
    models_panel,
    sampling_tab,
    tokenizer_tab,
)
from llmviz.ui.common import Blocks  # noqa: E402
from llmviz.ui.i18n import I18N, t  # noqa: E402

TABS = (
    ("tokenizer", tokenizer_tab),
    ("attention", attention_tab),
    ("sampling", sampling_tab),
    ("inside", inside_tab),
    ("memory", memory_tab),
    ("compare", compare_tab),
    ("finetune", finetune_tab),
    ("labs", labs_tab),
)


def build() -> Blocks:
    with Blocks(title="llmviz") as blocks:
        with gr.Column(elem_id="llmviz-header"):
            gr.Markdown(t("common.title"), elem_id="llmviz-title")
            gr.Markdown(t("common.subtitle"))
        bar = links_ui.build_bar()
        models_panel.build()
        with gr.Tabs(overflow_behavior="wrap") as tabs:  # at 800 px a menu hid two lessons
            for name, module in TABS:
                with gr.Tab(t(f"tabs.{name}"), id=name, elem_id=f"tab-{name}") as tab:
                    module.build()
                    export_ui.build(name, tab)
        gr.Markdown(t("common.footer"), elem_id="llmviz-footer")
        panel = lesson_ui.build_panel()
        linked = links_ui.wire(blocks, tabs, bar)  # last: a link sets inputs every tab has built
        lesson_ui.wire(blocks, panel, bar["lesson"], linked)
    return blocks


#: What ``launch()`` needs besides the address: translations, theme, css (gradio 6 takes them here).
LAUNCH_KWARGS = {
    "i18n": I18N,
    "theme": gr.themes.Soft(primary_hue="indigo", secondary_hue="amber"),
    "css_paths": [ASSETS / "style.css"],
    # ?lang= and ?present=1 must act before gradio's own script reads the browser locale
    "app_kwargs": {"middleware": links_ui.middleware()},
}

demo = build()
# No demo.queue(...) here: every event names its queue (LIGHT / MODEL / GENERATE in
# llmviz/ui/common.py), and each queue() call rebuilds gradio's whole app config (seconds at start).


def warm_up() -> None:
    """Work worth doing before the first student clicks, once the page is already served: the
    default tokenizers, the default model, and the results of the opening presets (shared by
    every session). A failure here is only logged: the tab reports it when a student clicks."""
    # the default model first: it is what the first model click waits for (its tokenizer is one of
    # the tokenizer tab's defaults, so that tab's warm-up is quick after it)
    for step in (sampling_tab.warm_up, tokenizer_tab.warm_up, attention_tab.warm_up,
                 labs_tab.warm_up, finetune_tab.warm_up, inside_tab.warm_up):  # fmt: skip
        try:
            step()
        except Exception:  # noqa: BLE001
            logging.getLogger("llmviz").exception("warm-up step %s failed", step.__qualname__)


def serve(server_name: str, server_port: int, **launch: object) -> None:
    """Serve the page, then warm up, then serve until stopped: what ``python app.py`` does (the
    benchmark's server calls this too, so it measures the app as it ships)."""
    demo.launch(server_name=server_name, server_port=server_port, prevent_thread_lock=True,
                **LAUNCH_KWARGS, **launch)  # fmt: skip
    warm_up()  # on this (main) thread: see tokenizer_tab.warm_up for why not a background one
    demo.block_thread()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    serve(
        os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
    )
