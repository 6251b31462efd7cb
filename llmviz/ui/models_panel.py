"""The "Models" panel above the tabs: see the catalog, and load a model before class.

Loading here is the same call the tabs make, so a teacher can warm up the models (the first use
of a packaged model converts it from GGUF, about a minute on a small CPU) and see what each one
costs: load time, memory footprint, device.
"""

from __future__ import annotations

import gradio as gr

from llmviz.models import CATALOG, PRECISIONS, offered_keys
from llmviz.ui.common import LIGHT, MODEL, get_model, handler
from llmviz.ui.i18n import lang_of, t, text


def catalog_rows(lang: str) -> list[list[str]]:
    """Every catalog entry: the offered ones first, then the Hub presets (loadable here by key)."""
    keys = offered_keys() + [k for k in CATALOG if k not in offered_keys()]
    rows = []
    for key in keys:
        s = CATALOG[key]
        rows.append(
            [
                s.display,
                key,
                text(f"models.role_{s.role}", lang),
                f"{s.params / 1e6:.0f} M" if s.params else "?",
                text("models.source_package", lang) if s.is_packaged else s.hub_id,
                "✓" if s.has_chat_template else "—",
                s.license,
            ]
        )
    return rows


@handler
def _on_load(name: str, precision: str, request: gr.Request, progress=gr.Progress()) -> str:
    lang = lang_of(request)
    item = get_model(name, precision, progress)
    return text(
        "models.loaded",
        lang,
        model=item.spec.display,
        precision=item.precision,
        device=item.device,
        mib=f"{item.footprint_bytes / 2**20:.0f}",
        seconds=f"{item.load_seconds:.1f}",
    )


HEADERS = ("model", "key", "role", "params", "source", "template", "license")


@handler
def _on_catalog(request: gr.Request) -> dict:
    lang = lang_of(request)
    return {"headers": [text(f"models.col_{h}", lang) for h in HEADERS], "data": catalog_rows(lang)}


def build() -> None:
    with gr.Accordion(t("models.title"), open=False, elem_id="models-panel"):
        gr.Markdown(t("models.intro"))
        table = gr.Dataframe(
            headers=[text(f"models.col_{h}", "en") for h in HEADERS],
            value=catalog_rows("en"),
            interactive=False,
            wrap=True,
            # without widths the short "✓" column shrank until its header ran one letter a line
            column_widths=["20%", "18%", "9%", "10%", "18%", "12%", "13%"],
            elem_id="models-table",
        )
        with gr.Row():
            name = gr.Dropdown(
                choices=[(s.display, k) for k, s in CATALOG.items()],
                value=offered_keys()[0],
                label=t("common.model"),
                info=t("models.any_hub_id"),
                allow_custom_value=True,
                scale=3,
            )
            precision = gr.Dropdown(
                choices=list(PRECISIONS), value="bf16", label=t("common.precision"), scale=1
            )
            load = gr.Button(t("models.load"), variant="primary", scale=1)
        status = gr.Markdown(elem_id="models-status")
        load.click(_on_load, [name, precision], status, api_name="models_load", **MODEL)
        # On page load: the table again, in the reader's language. LIGHT: a page load must not
        # wait in the model lane behind a class's generations (it reads the catalog only).
        gr.on(triggers=None, fn=_on_catalog, outputs=table, api_name="models_catalog", **LIGHT)
