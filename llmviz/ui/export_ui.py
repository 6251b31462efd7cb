"""'Save this view' at the foot of every tab: its inputs, charts and tables as one offline HTML file
(``llmviz.plots.export.view_html``), and each table as a CSV that Excel opens in Japanese too.

The button gathers what the tab shows right now: the tab's linkable inputs (``links_ui.LINKABLE``,
with their labels in the reader's language), every chart (``gr.Plot``) and every table
(``gr.Dataframe``) inside the tab, empty ones left out. The link to the live view is the one the
"copy link" button would make, so the saved file leads back to the same view.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import gradio as gr

from llmviz import links
from llmviz.plots import export
from llmviz.ui import links_ui
from llmviz.ui.common import LIGHT, handler
from llmviz.ui.i18n import lang_of, t, text

#: Saved files live here until the server stops (gradio serves them from its cache).
_OUT = Path(tempfile.gettempdir()) / "llmviz-exports"


def _descendants(block: Any) -> list[Any]:
    out = []
    for child in getattr(block, "children", None) or ():
        out.append(child)
        out.extend(_descendants(child))
    return out


def _label(block: Any, lang: str, fallback: str) -> str:
    label = getattr(block, "label", None)
    key = getattr(label, "key", None)
    if isinstance(key, str):
        return text(key, lang)
    return str(label) if label else fallback


def _plain(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def build(tab_name: str, tab: gr.Tab) -> None:
    """The save row at the foot of ``tab`` (call inside the tab, after its own build)."""
    inside = _descendants(tab)
    plots = [b for b in inside if isinstance(b, gr.Plot)]
    tables = [b for b in inside if isinstance(b, gr.Dataframe)]
    wanted = set(links_ui.LINKABLE.get(tab_name, {}).values())
    params = {elem: param for param, elem in links_ui.LINKABLE.get(tab_name, {}).items()}
    inputs = [b for b in inside if getattr(b, "elem_id", None) in wanted]
    with gr.Row(elem_classes=["llmviz-save-row"]):
        save = gr.Button(t("export.save"), size="sm", scale=0, min_width=160,
                         elem_id=f"{tab_name}-save")  # fmt: skip
        files = gr.File(label=t("export.files"), file_count="multiple", interactive=False,
                        visible=False, scale=3, elem_id=f"{tab_name}-saved")  # fmt: skip

    n_in, n_plots = len(inputs), len(plots)

    @handler
    def _on_save(request: gr.Request, *values: Any):  # gradio puts the request first
        lang = lang_of(request)
        in_values = values[:n_in]
        plot_values = values[n_in : n_in + n_plots]
        table_values = values[n_in + n_plots :]
        shown_inputs = [(_label(b, lang, params[b.elem_id]), _plain(v))
                        for b, v in zip(inputs, in_values, strict=True)]  # fmt: skip
        figures = [(_label(b, lang, ""), export.figure_from_gradio(v))
                   for b, v in zip(plots, plot_values, strict=True)]  # fmt: skip
        frames = [(_label(b, lang, ""), export.table_from_gradio(v))
                  for b, v in zip(tables, table_values, strict=True)]  # fmt: skip
        link = _live_link(request, tab_name, {params[b.elem_id]: v for b, v in zip(inputs, in_values, strict=True)})
        stamp = time.strftime("%Y-%m-%d %H:%M")
        doc = export.view_html(text(f"tabs.{tab_name}", lang), shown_inputs, figures, frames,
                               lang=lang, link=link, saved_at=stamp)  # fmt: skip
        folder = Path(tempfile.mkdtemp(prefix="view-", dir=_ensure_out()))
        page = folder / export.safe_filename(f"llmviz-{tab_name}", ".html")
        page.write_text(doc, encoding="utf-8")
        out = [str(page)]
        for i, (_name, df) in enumerate(frames):
            if df is not None:
                path = folder / export.safe_filename(f"llmviz-{tab_name}-table{i + 1}", ".csv")
                out.append(str(export.table_csv(df, path)))
        return gr.update(value=out, visible=True)

    save.click(_on_save, [*inputs, *plots, *tables], files, api_name=f"{tab_name}_save_view",
               **LIGHT)  # fmt: skip


#: A saved view is kept this long (gradio has copied it to its own cache by then).
KEEP_S = 3600


def _ensure_out() -> Path:
    """The export folder, with saves older than :data:`KEEP_S` removed (bounded on disk)."""
    _OUT.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - KEEP_S
    for old in _OUT.glob("view-*"):
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return _OUT


def _live_link(request: gr.Request | None, tab: str, values: dict[str, Any]) -> str | None:
    """The page's own address with this view's query (from the Referer the browser sent)."""
    try:
        referer = request.headers.get("referer") if request is not None else None
    except AttributeError:
        referer = None
    if not referer or not referer.startswith(("http://", "https://")):
        return None
    base = referer.split("?", 1)[0].split("#", 1)[0]
    lang = links_ui.query_of(request).get("lang")
    query = links.query_string(tab, values, lang=lang if lang in links.LANGS else None)
    return f"{base}?{query}"
