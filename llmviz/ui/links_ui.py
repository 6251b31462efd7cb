"""Deep links, the language switch and presenter mode: the page-wide bar above the tabs.

Which inputs of which tab a link may set is the table :data:`LINKABLE` (URL parameter -> the
component's ``elem_id``); each :class:`links.Field` is read off the component itself, so a link
can never ask for more than the page allows. On page load :func:`wire` applies
``request.query_params`` (gradio sends the page's query with every event), selects the tab, sets
the inputs and presses the tab's main button, so the view is computed exactly as by a click.

Two things must happen before gradio's own script runs, so :class:`PageScript` (an ASGI
middleware) puts a small script at the top of the served page: ``?lang=`` overrides the browser
locale gradio's i18n reads, and ``?present=1`` sets the presenter class on ``<html>``. The same
script holds the client half of the links: building ``?tab=…`` from the current inputs for the
"copy link" button and the language switch (it never reads or writes HTML from a query).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from llmviz import lesson, links
from llmviz.ui.common import LIGHT, handler
from llmviz.ui.i18n import LANGS, lang_of, t, text

#: tab -> {URL parameter: elem_id of its component}. The order is the order of a copied link.
LINKABLE: dict[str, dict[str, str]] = {
    "tokenizer": {"prompt": "tok-text", "tokenizers": "tok-picks"},
    "attention": {"prompt": "attention-text", "model": "attention-model"},
    "sampling": {
        "prompt": "sampling-prompt",
        "model": "sampling-model",
        "seed": "sampling-seed",
        "temperature": "sampling-temperature",
        "top_k": "sampling-top-k",
        "top_p": "sampling-top-p",
        "min_p": "sampling-min-p",
    },
    "inside": {"prompt": "inside-prompt", "model": "inside-model", "target": "inside-target"},
    "memory": {"preset": "mem-preset", "context": "mem-context", "batch": "mem-batch"},
    "compare": {"prompt": "cmp-prompt", "temperature": "cmp-temperature", "max_new": "cmp-max-new"},
    "finetune": {"lr": "ft-lr", "steps": "ft-steps", "rank": "ft-rank"},
    "labs": {"prompt": "labs-ppl-text"},
}
#: The sub-tabs a link may open (``sub=``), by the elem_id of each gr.Tab.
SUBTABS: dict[str, dict[str, str]] = {
    "labs": {s: f"labs-{s}" for s in ("scaling", "ppl", "lr", "speed", "bias", "icl")},
    "inside": {"lens": "inside-lens-tab", "emb": "inside-emb-tab", "kv": "inside-kv-tab"},
}
#: The button a restored view presses (a tab without one is only filled in: a link never starts
#: a fine-tuning run by itself). For tabs with sub-tabs, per sub-tab.
RUN: dict[str, str | dict[str, str]] = {
    "attention": "attention-run",
    "sampling": "sampling-show",
    "inside": {"lens": "inside-run", "": "inside-run"},
    "memory": "mem-calculate",
    "compare": "cmp-run",
    "labs": {"ppl": "labs-ppl-run", "scaling": "labs-sc-run"},
}
#: A prompt in a link is at most this long (the tabs' own limits are checked when they run).
MAX_TEXT = links.MAX_VALUE_CHARS
#: A longer query is shortened before gradio sees it (gradio fails on addresses over 64 KiB, and
#: the browser sends the page's query with every event): see :func:`shorten_query`.
MAX_PAGE_QUERY = 8_000  # bytes as sent (percent-encoded); uvicorn refuses ~16 KiB request lines
#: What stands for a value too long to carry: ASCII, one character over the limit.
TOO_LONG = "~" * (links.MAX_VALUE_CHARS + 1)


def _choices(component: Any) -> tuple[str, ...]:
    out = []
    for choice in getattr(component, "choices", None) or ():
        value = choice[1] if isinstance(choice, (list, tuple)) else choice
        out.append(str(value))
    return tuple(out)


def field_for(name: str, component: Any) -> links.Field:
    """The link field of ``component``: its kind and bounds as the page itself has them."""
    if isinstance(component, gr.Dropdown):
        kind = "choices" if component.multiselect else "choice"
        return links.Field(name, kind, choices=_choices(component),
                           max_items=int(component.max_choices or 16))  # fmt: skip
    if isinstance(component, gr.Radio):
        return links.Field(name, "choice", choices=_choices(component))
    if isinstance(component, gr.Checkbox):
        return links.Field(name, "bool")
    if isinstance(component, gr.Slider):
        whole = all(float(v).is_integer() for v in (component.minimum, component.step))
        return links.Field(name, "int" if whole else "float", component.minimum, component.maximum)
    if isinstance(component, gr.Number):
        whole = component.precision == 0 or isinstance(component.value, int)
        return links.Field(name, "int" if whole else "float", component.minimum, component.maximum)
    if isinstance(component, gr.Textbox):
        limit = component.max_length or MAX_TEXT
        return links.Field(name, "text", max_chars=min(limit, MAX_TEXT))
    raise TypeError(f"no link field for {type(component).__name__} ({name})")


def _by_elem_id(root: gr.Blocks) -> dict[str, Any]:
    return {b.elem_id: b for b in root.blocks.values() if getattr(b, "elem_id", None)}


@dataclass
class Linked:
    """The linkable components of a built page, in one fixed order."""

    tabs: gr.Tabs
    subtabs: dict[str, gr.Tabs]
    sub_ids: dict[str, dict[str, Any]]  # tab -> {sub: the gr.Tab's id, what Tabs(selected=) takes}
    comps: list[tuple[str, str, Any]]  # (tab, param, component)
    fields: dict[str, list[links.Field]]
    note: Any = None  # the Markdown that shows what a link's parts were ignored for

    @property
    def inputs(self) -> list[Any]:
        return [comp for _tab, _param, comp in self.comps]

    @classmethod
    def find(cls, root: gr.Blocks, tabs: gr.Tabs) -> Linked:
        found = _by_elem_id(root)
        comps, fields = [], {}
        for tab, params in LINKABLE.items():
            fields[tab] = []
            for param, elem_id in params.items():
                comp = found.get(elem_id)
                if comp is None:
                    raise KeyError(f"linkable input {elem_id!r} of tab {tab!r} is not on the page")
                comps.append((tab, param, comp))
                fields[tab].append(field_for(param, comp))
        subtabs, sub_ids = {}, {}
        for tab, subs in SUBTABS.items():
            fields.setdefault(tab, []).append(links.Field("sub", "choice", choices=tuple(subs)))
            sub_ids[tab] = {sub: found[elem_id].id for sub, elem_id in subs.items()}
            subtabs[tab] = found[next(iter(subs.values()))].parent  # the gr.Tabs around them
        return cls(tabs, subtabs, sub_ids, comps, fields)

    def run_outputs(self) -> list[Any]:
        return [self.tabs, *self.subtabs.values(), self.note, *self.inputs]

    def run_button(self, tab: str | None, sub: str | None) -> str:
        run = RUN.get(tab or "", "")
        if isinstance(run, dict):
            return run.get(sub or "", "")
        return run


def query_of(request: gr.Request | None) -> dict[str, str]:
    """The page's query parameters as gradio forwards them with each event (empty for API calls)."""
    try:
        return dict(request.query_params) if request is not None else {}
    except (AttributeError, TypeError):
        return {}


def claims(request: gr.Request | None, tab: str, param: str) -> bool:
    """True when the page was opened with a link that sets ``param`` of ``tab``: a tab's own
    page-load defaults then leave that input alone (the link wins, whatever finishes first)."""
    query = query_of(request)
    return query.get("tab") == tab and param in query


def note_markdown(notes: Sequence[links.Note], lang: str) -> str:
    lines = [text(f"links.note.{n.key}", lang, param=n.param) for n in notes]
    return "\n".join(f"- {line}" for line in lines)


def apply(linked: Linked, link: links.Link, lang: str) -> list[Any]:
    """The outputs that put ``link`` on the page: [top tabs, sub-tabs…, note, inputs…, run]."""
    out: list[Any] = [gr.Tabs(selected=link.tab) if link.tab else gr.skip()]
    sub = link.values.get("sub") if link.tab else None
    for tab in linked.subtabs:
        chosen = linked.sub_ids[tab].get(str(sub)) if tab == link.tab and sub else None
        out.append(gr.Tabs(selected=chosen) if chosen is not None else gr.skip())
    notes = note_markdown(link.notes, lang)
    out.append(gr.update(value=notes, visible=bool(notes)))
    for tab, param, _comp in linked.comps:
        value = link.values.get(param) if tab == link.tab else None
        if value is None:
            out.append(gr.skip())
        else:
            out.append(gr.update(value=list(value) if isinstance(value, tuple) else value))
    out.append(linked.run_button(link.tab, sub) if link.tab else "")
    return out


PRESS = """(id) => { if (id) { setTimeout(() => {
  const b = document.getElementById(id); if (b) { b.click(); } }, 300); } return id; }"""


def _client_spec(linked: Linked) -> dict[str, Any]:
    spec: dict[str, Any] = {"tabs": {}, "subtabs": {}}
    for tab, param, comp in linked.comps:
        default = comp.value
        spec["tabs"].setdefault(tab, []).append([param, default])
    for tab, subs in SUBTABS.items():
        spec["subtabs"][tab] = {elem: sub for sub, elem in subs.items()}
    return spec


def build_bar() -> dict[str, Any]:
    """The bar under the title: copy link, language, presenter mode (built before the tabs)."""
    small = {"size": "sm", "scale": 0, "min_width": 60}
    with gr.Row(elem_id="llmviz-bar", equal_height=True):
        lesson_btn = gr.Button(t("lesson.open_panel"), elem_id="llmviz-lesson-btn", **small)
        copy = gr.Button(t("links.copy"), elem_id="llmviz-copy-link", **small)
        url = gr.Textbox(show_label=False, container=False, interactive=False, max_lines=1,
                         scale=4, min_width=160, placeholder=t("links.copy_hint"),
                         elem_id="llmviz-link")  # fmt: skip
        lang_en = gr.Button("English", elem_id="llmviz-lang-en", **small)
        lang_ja = gr.Button("日本語", elem_id="llmviz-lang-ja", **small)
        present = gr.Button(t("links.present"), elem_id="llmviz-present", **small)
    note = gr.Markdown(visible=False, elem_id="llmviz-link-note")
    return {"copy": copy, "url": url, "en": lang_en, "ja": lang_ja, "present": present,
            "note": note, "lesson": lesson_btn}  # fmt: skip


def step_link(linked: Linked, index: int) -> links.Link:
    """The link of the guided lesson's step ``index`` (0-based, clamped)."""
    return links.parse(dict(lesson.load_lesson().step(index).link), linked.fields)


def page_link(linked: Linked, query: Mapping[str, object]) -> links.Link:
    """What the page's query asks for; ``?lesson=N`` without a ``tab=`` opens step N's view."""
    link = links.parse(query, linked.fields)
    if link.tab is None and link.lesson is not None:
        step = step_link(linked, link.lesson - 1)
        return dataclasses.replace(step, lang=link.lang, present=link.present,
                                   lesson=link.lesson, notes=link.notes + step.notes)  # fmt: skip
    return link


def wire(root: gr.Blocks, tabs: gr.Tabs, bar: Mapping[str, Any]) -> Linked:
    """Connect the bar and the page-load link (after every tab is built)."""
    linked = Linked.find(root, tabs)
    linked.note = bar["note"]
    inputs = linked.inputs
    run_id = gr.Textbox(visible=False, elem_id="llmviz-link-run")

    @handler
    def _on_link(request: gr.Request):
        lang = lang_of(request)
        return apply(linked, page_link(linked, query_of(request)), lang)

    root.load(_on_link, None, [*linked.run_outputs(), run_id], api_name=False,
              show_progress="hidden", **LIGHT).then(None, [run_id], None, js=PRESS)  # fmt: skip
    bar["copy"].click(None, inputs, bar["url"], js="(...v) => window.llmviz.copyLink(v)")
    for lang in LANGS:
        bar[lang].click(None, inputs, None, js=f"(...v) => window.llmviz.switchLang(v, '{lang}')")
    bar["present"].click(None, None, None, js="() => window.llmviz.togglePresent()")
    PageScript.spec = _client_spec(linked)
    return linked


# --- the script at the top of the page ------------------------------------------------------------
_SCRIPT = """<script>(function () {
  var q = new URLSearchParams(location.search);
  if (location.search.length > __MAXQ__) {  // keep what every event re-sends short
    var short = new URLSearchParams(), size = 0;
    q.forEach(function (v, k) {
      k = k.slice(0, __MAXV__ + 1);
      if (v.length > __MAXV__) { v = "~".repeat(__MAXV__ + 1); }
      size += new URLSearchParams([[k, v]]).toString().length + 1;
      if (size <= __MAXQ__) { short.append(k, v); }
    });
    history.replaceState(null, "", location.pathname + "?" + short.toString());
    q = short;
  }
  var lang = q.get("lang");
  if (lang === "en" || lang === "ja") {
    try {
      Object.defineProperty(Navigator.prototype, "language", {get: function () { return lang; }, configurable: true});
      Object.defineProperty(Navigator.prototype, "languages", {get: function () { return [lang]; }, configurable: true});
    } catch (e) {}
    document.documentElement.lang = lang;
  }
  if (q.get("present") === "1") { document.documentElement.classList.add("llmviz-present"); }
  var spec = __SPEC__;
  function selected(prefix, ids) {
    for (var i = 0; i < ids.length; i++) {
      var b = document.getElementById(ids[i] + "-button");
      if (b && b.getAttribute("aria-selected") === "true") { return ids[i]; }
    }
    return null;
  }
  function currentTab() {
    var tabs = Object.keys(spec.tabs), ids = tabs.map(function (t) { return "tab-" + t; });
    var id = selected("tab-", ids);
    return id ? id.slice(4) : null;
  }
  function encode(v) {
    if (v === null || v === undefined || v === "") { return null; }
    if (Array.isArray(v)) { return v.length ? v.join(",") : null; }
    if (typeof v === "boolean") { return v ? "1" : "0"; }
    return String(v);
  }
  function same(a, b) { return JSON.stringify(a) === JSON.stringify(b); }
  function link(values, lang) {
    var out = new URLSearchParams(), tab = currentTab(), i = 0;
    Object.keys(spec.tabs).forEach(function (t) {
      spec.tabs[t].forEach(function (pair) {
        var v = values[i++];
        if (t === tab && !same(v, pair[1])) { var e = encode(v); if (e !== null) { out.set(pair[0], e); } }
      });
    });
    var params = new URLSearchParams();
    if (tab) { params.set("tab", tab); }
    var subs = tab && spec.subtabs[tab];
    if (subs) { var s = selected("", Object.keys(subs)); if (s) { params.set("sub", subs[s]); } }
    out.forEach(function (v, k) { params.set(k, v); });
    var l = lang || q.get("lang"); if (l) { params.set("lang", l); }
    if (document.documentElement.classList.contains("llmviz-present")) { params.set("present", "1"); }
    return location.origin + location.pathname + "?" + params.toString();
  }
  // every chart gets PNG / SVG buttons: plotly's own exporter (its camera button), told the format
  var ja = (lang || navigator.language || "").slice(0, 2) === "ja";
  function download(gd, fmt, name) {
    var ctx = gd._context, btn = gd.querySelector('.modebar-btn[data-title^="Download plot"]');
    if (!ctx || !btn) { return; }
    var old = ctx.toImageButtonOptions;
    ctx.toImageButtonOptions = {format: fmt, filename: name, scale: fmt === "png" ? 2 : 1};
    btn.dispatchEvent(new MouseEvent("click", {bubbles: true}));
    setTimeout(function () { ctx.toImageButtonOptions = old; }, 0);
  }
  function decorate() {
    document.querySelectorAll(".js-plotly-plot").forEach(function (gd) {
      // screen readers: the chart is an image named by its (already translated) title
      var t = gd.layout && gd.layout.title, title = t && (t.text || (typeof t === "string" ? t : ""));
      var label = (ja ? "グラフ：" : "Chart: ") + String(title || "").replace(/<[^>]*>/g, " ").trim();
      if (gd.getAttribute("aria-label") !== label) { gd.setAttribute("role", "img"); gd.setAttribute("aria-label", label); }
      if (gd.dataset.llmvizExport) { return; }
      gd.dataset.llmvizExport = "1";
      var host = gd.parentElement && gd.parentElement.closest("[id]");
      var name = "llmviz-" + (host && host.id ? host.id : "chart");
      var bar = document.createElement("div");
      bar.className = "llmviz-chart-export";
      ["png", "svg"].forEach(function (fmt) {
        var b = document.createElement("button");
        b.type = "button"; b.textContent = fmt.toUpperCase();
        b.title = ja ? "このグラフを " + fmt.toUpperCase() + " で保存" : "Download this chart as " + fmt.toUpperCase();
        b.setAttribute("aria-label", b.title);
        b.className = "llmviz-export-" + fmt;
        b.addEventListener("click", function () { download(gd, fmt, name); });
        bar.appendChild(b);
      });
      gd.insertAdjacentElement("afterend", bar);
    });
  }
  // keyboard: a dropdown opened by tabbing into it closes when the focus tabs on (gradio's closes
  // only on a click elsewhere, so its list stayed open over the next controls)
  var viaTab = false;  // only a Tab moves on: a click on an option must still select it
  document.addEventListener("keydown", function (e) { viaTab = e.key === "Tab"; }, true);
  document.addEventListener("mousedown", function () { viaTab = false; }, true);
  document.addEventListener("focusout", function (e) {
    var box = e.target;
    if (!viaTab) { return; }
    if (!box || !box.matches || !box.matches('input[role="combobox"]')) { return; }
    var list = document.getElementById(box.getAttribute("aria-controls") || "");
    if (e.relatedTarget && list && list.contains(e.relatedTarget)) { return; }
    setTimeout(function () {  // after gradio's own blur handling
      if (document.activeElement !== box) {
        box.dispatchEvent(new KeyboardEvent("keydown", {key: "Escape", bubbles: true}));
      }
    }, 50);
  }, true);
  var pending = false;
  new MutationObserver(function () {
    if (pending) { return; }
    pending = true;
    setTimeout(function () { pending = false; decorate(); }, 250);
  }).observe(document.documentElement, {childList: true, subtree: true});
  window.llmviz = {
    link: link,
    download: download,
    copyLink: function (values) {
      var url = link(values, null);
      try { navigator.clipboard.writeText(url).catch(function () {}); } catch (e) {}
      return url;
    },
    switchLang: function (values, lang) { location.href = link(values, lang); return []; },
    togglePresent: function () {
      var on = document.documentElement.classList.toggle("llmviz-present");
      var p = new URLSearchParams(location.search);
      if (on) { p.set("present", "1"); } else { p.delete("present"); }
      history.replaceState(null, "", location.pathname + (p.toString() ? "?" + p.toString() : ""));
      return [];
    }
  };
})();</script>"""


class PageScript:
    """ASGI middleware: the page script goes first into ``<head>`` of the served page ("/")."""

    spec: dict[str, Any] = {"tabs": {}, "subtabs": {}}

    def __init__(self, app: Any) -> None:
        self.app = app

    @classmethod
    def script(cls) -> bytes:
        spec = json.dumps(cls.spec, ensure_ascii=True).replace("</", "<\\/")
        script = _SCRIPT.replace("__MAXQ__", str(MAX_PAGE_QUERY))
        script = script.replace("__MAXV__", str(links.MAX_VALUE_CHARS))
        return script.replace("__SPEC__", spec).encode("utf-8")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and len(scope.get("query_string", b"")) > MAX_PAGE_QUERY:
            scope = {**scope, "query_string": shorten_query(scope["query_string"])}
        if scope.get("type") != "http" or scope.get("method") != "GET" or scope.get("path") != "/":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def _send(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            if b"text/html" in dict(headers).get(b"content-type", b"") and b"<head>" in body:
                body = body.replace(b"<head>", b"<head>" + self.script(), 1)
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, _send)


def shorten_query(raw: bytes) -> bytes:
    """``raw`` with every over-long value replaced by :data:`TOO_LONG` (so the parser still says
    it was too long) and at most :data:`MAX_PAGE_QUERY` bytes in all (parameters past that are
    dropped whole). The page script does the same in the browser before gradio reads the
    address, so that the query sent with every event stays short."""
    from urllib.parse import parse_qsl, urlencode

    keep, size = [], 0
    for key, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
        key = key[: links.MAX_VALUE_CHARS + 1]
        if len(value) > links.MAX_VALUE_CHARS:
            value = TOO_LONG  # short to send, and still too long for the parser to take
        size += len(urlencode([(key, value)])) + 1
        if size > MAX_PAGE_QUERY:
            break
        keep.append((key, value))
    return urlencode(keep).encode("ascii")


def middleware() -> list[Any]:
    from starlette.middleware import Middleware

    return [Middleware(PageScript)]

