"""The saved view: one offline HTML file (escaped, plotly.js once, nothing fetched) and CSV."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pandas as pd
import plotly.graph_objects as go
import pytest

from llmviz.errors import UserError
from llmviz.plots import export
from llmviz.plots.export import (
    figure_from_gradio,
    safe_filename,
    table_csv,
    table_from_gradio,
    view_html,
)

HOSTILE = "</script><script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'
JA = "こんにちは、世界"
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr"}
#: Every tag the document may contain; a hostile string that became markup shows up outside it.
ALLOWED = {"html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "h3", "p", "a",
           "section", "dl", "dt", "dd", "figure", "figcaption", "div", "script", "table",
           "thead", "tbody", "tr", "th", "td"}  # fmt: skip


class Page(HTMLParser):
    """The document as the browser's tokenizer sees it: tags, scripts, and text per tag."""

    def __init__(self, doc: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self.text: dict[str, list[str]] = {}
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.doctype = None
        self.feed(doc)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed {self.stack}")

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "script":
            self.scripts.append((dict(attrs), ""))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        where = self.stack[-1] if self.stack else ""
        if where == "script":
            attrs, body = self.scripts[-1]
            self.scripts[-1] = (attrs, body + data)
        self.text.setdefault(where, []).append(data)

    def texts(self, tag: str) -> list[str]:
        return [t.strip() for t in self.text.get(tag, []) if t.strip()]

    def named(self, tag: str) -> list[dict]:
        return [attrs for t, attrs in self.tags if t == tag]


def _bar(title: str = "Next token", name: str = "p") -> go.Figure:
    fig = go.Figure(go.Bar(x=["猫", HOSTILE, "dog"], y=[0.5, 0.3, 0.2], name=name))
    return fig.update_layout(title=title)


def _view(**kw) -> str:
    args = dict(
        title="Tokenizer",
        inputs=[("Text", JA), ("Model", "gemma-3-270m")],
        figures=[("Bars", _bar()), ("Line", go.Figure(go.Scatter(y=[1, 2], name="loss")))],
        tables=[("Tokens", pd.DataFrame({"token": ["猫", "は"], "id": [1, 2]}))],
    )
    return view_html(**{**args, **kw})


def _plots(doc: str) -> list[tuple[list, dict, dict]]:
    """(data, layout, config) of every Plotly.newPlot call, decoded as JSON."""
    decoder, found = json.JSONDecoder(), []
    for m in re.finditer(r'Plotly\.newPlot\(\s*"llmviz-figure-\d+",\s*', doc):
        parts, pos = [], m.end()
        for _ in range(3):
            value, pos = decoder.raw_decode(doc, pos)
            parts.append(value)
            pos = re.compile(r"\s*,?\s*").match(doc, pos).end()
        found.append(tuple(parts))
    return found


def test_document_is_well_formed_html5():
    doc = _view(lang="ja")
    page = Page(doc)
    assert page.errors == []
    assert page.doctype == "DOCTYPE html"
    assert page.named("html") == [{"lang": "ja"}]
    assert {"charset": "utf-8"} in page.named("meta")
    assert page.texts("title") == ["Tokenizer"] and page.texts("h1") == ["Tokenizer"]
    assert {t for t, _ in page.tags} <= ALLOWED
    css = "".join(page.texts("style"))
    assert '"Noto Sans CJK JP"' in css and "Meiryo" in css and "sans-serif" in css


def test_inputs_and_japanese_text_appear_verbatim():
    page = Page(_view())
    assert page.texts("dt") == ["Text", "Model"]
    assert page.texts("dd") == [JA, "gemma-3-270m"]
    assert ["猫", "は"] == page.texts("td")[::2]


def test_plotly_is_embedded_once_and_nothing_is_fetched():
    doc = _view()
    page = Page(doc)
    bundles = [body for _, body in page.scripts if "plotly.js v" in body[:200]]
    assert len(bundles) == 1 and len(bundles[0]) > 1_000_000
    assert doc.count("* plotly.js v") == 1
    assert all("src" not in attrs for attrs, _ in page.scripts)
    assert not re.search(r"<script[^>]*\bsrc\s*=", doc, flags=re.IGNORECASE)
    assert not re.search(r"<link\b|@import|url\(\s*['\"]?https?:", doc, flags=re.IGNORECASE)
    csp = [m["content"] for m in page.named("meta") if m.get("http-equiv")]
    assert csp and "default-src 'none'" in csp[0] and "connect-src" not in csp[0]
    assert len(_plots(doc)) == 2


def test_a_view_without_charts_carries_no_script():
    page = Page(_view(figures=[("Empty", None)]))
    assert page.scripts == [] and page.errors == []
    assert "Charts" not in page.texts("h2") and "Tables" in page.texts("h2")


def test_figures_round_trip_with_modebar_png_and_japanese_fonts():
    fig = _bar(title=HOSTILE, name="確率")
    doc = _view(figures=[("Bars", fig)])
    [(data, layout, config)] = _plots(doc)
    assert data[0]["name"] == "確率" and data[0]["x"] == ["猫", HOSTILE, "dog"]
    assert data[0]["y"] == [0.5, 0.3, 0.2]
    assert layout["title"]["text"] == HOSTILE
    assert "Noto Sans CJK JP" in layout["font"]["family"] and "Meiryo" in layout["font"]["family"]
    assert config["displaylogo"] is False and config["showSendToCloud"] is False
    assert config["toImageButtonOptions"] == {"format": "png", "scale": 2, "filename": "Bars"}
    [(*_, unnamed), (*_, japanese)] = _plots(_view(figures=[("", fig), ("棒グラフ", fig)]))
    assert unnamed["toImageButtonOptions"]["filename"] == "chart-1"
    assert japanese["toImageButtonOptions"]["filename"] == "chart-2"
    assert fig.layout.font.family is None  # the caller's figure is left as it was


def test_a_figure_font_keeps_its_own_family_and_gains_japanese():
    fig = go.Figure(go.Bar(y=[1])).update_layout(font_family="Arial, sans-serif")
    [(_, layout, _)] = _plots(_view(figures=[("f", fig)]))
    family = layout["font"]["family"]
    assert family.startswith("Arial, ") and family.endswith("sans-serif")
    assert "Hiragino Sans" in family


def test_hostile_strings_stay_text_everywhere():
    doc = view_html(
        HOSTILE,
        [(IMG, HOSTILE), ("Prompt", '<b>bold</b> & "quotes"')],
        [(HOSTILE, _bar(title=HOSTILE, name=IMG))],
        [(IMG, pd.DataFrame({IMG: [HOSTILE, "<i>x</i>"]}))],
        note=HOSTILE,
        saved_at=IMG,
        link=HOSTILE,
    )
    page = Page(doc)
    assert page.errors == []
    assert {t for t, _ in page.tags} <= ALLOWED
    assert not any(k.startswith("on") for _, attrs in page.tags for k in attrs)
    assert "<script>alert(1)" not in doc and "<img" not in doc and "<b>bold" not in doc
    # 1 plotly config + 1 bundle + 1 figure; none of them is the hostile one
    assert len(page.scripts) == 3
    assert not any(body.lstrip().startswith("alert") for _, body in page.scripts)
    assert page.texts("title") == [HOSTILE] and page.texts("h1") == [HOSTILE]
    assert page.texts("dt") == [IMG, "Prompt"]
    assert page.texts("dd") == [HOSTILE, '<b>bold</b> & "quotes"']
    assert page.texts("th") == [IMG] and page.texts("td") == [HOSTILE, "<i>x</i>"]
    assert page.texts("figcaption") == [HOSTILE] and page.texts("h3") == [IMG]
    assert HOSTILE in page.texts("p")
    assert page.named("a") == []


def test_an_http_link_is_a_link_and_other_schemes_are_text():
    page = Page(_view(link="https://example.org/llmviz?tab=tokens&x=1"))
    assert page.named("a") == [{"href": "https://example.org/llmviz?tab=tokens&x=1"}]
    for bad in ("javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<b>x</b>",
                " https://example.org", "//example.org", "https://"):  # fmt: skip
        page = Page(_view(link=bad))
        assert page.named("a") == [], bad
        assert any(bad.strip() in t for t in page.texts("p")), bad


def test_a_quote_in_a_link_cannot_add_an_attribute():
    page = Page(_view(link='https://example.org/"onclick="alert(1)'))
    [a] = page.named("a")
    assert set(a) == {"href"} and a["href"] == 'https://example.org/"onclick="alert(1)'
    assert Page(_view(link='https://example.org/" onclick="x')).named("a") == []  # a space


def test_japanese_headings_and_unknown_languages():
    ja = Page(_view(lang="ja", saved_at="2025-04-01 09:00"))
    assert ja.texts("h2") == ["入力", "グラフ", "表"]
    assert any("保存日時: 2025-04-01 09:00" in t for t in ja.texts("p"))
    other = Page(_view(lang='x" onload="alert(1)'))
    assert other.named("html") == [{"lang": "en"}] and other.texts("h2")[0] == "Inputs"


def test_long_inputs_are_cut_with_an_ellipsis():
    page = Page(view_html("t", [("Prompt", "a" * 20_000), ("Short", "b" * 10_000)], [], []))
    long, short = page.texts("dd")
    assert len(long) == export.EXPORT_MAX_INPUT_CHARS == 10_000
    assert long.endswith("a…") and short == "b" * 10_000


def test_half_an_emoji_still_encodes_as_utf8():
    doc = view_html("t", [("Prompt", "猫\ud83d")], [], [("t", pd.DataFrame({"a": ["\udc31"]}))])
    doc.encode("utf-8")
    assert "猫\\ud83d" in doc and "\\udc31" in doc


def test_the_size_cap_refuses_a_large_view():
    with pytest.raises(UserError) as e:
        _view(max_bytes=2_000_000)  # plotly.js alone is larger
    assert e.value.key == "export_too_large" and e.value.params["limit_mb"] == 2.0
    big = pd.DataFrame({"text": ["x" * 50_000] * 900})  # 45 MB of cells
    with pytest.raises(UserError) as e:
        view_html("t", [], [], [("big", big)])
    assert e.value.key == "export_too_large"
    assert e.value.params["limit_mb"] == export.EXPORT_MAX_BYTES / 1e6 == 40.0
    assert len(_view().encode()) < export.EXPORT_MAX_BYTES  # an ordinary view fits


def test_figure_from_gradio_accepts_every_form():
    import gradio as gr

    fig = _bar(title="確率")
    plot = gr.Plot()
    data = plot.preprocess(plot.postprocess(fig))
    assert type(data).__name__ == "PlotData" and data.type == "plotly"
    for value in (data, data.model_dump(), fig, json.loads(data.model_dump_json())):
        got = figure_from_gradio(value)
        assert isinstance(got, go.Figure), type(value)
        assert got.layout.title.text == "確率" and list(got.data[0].x) == ["猫", HOSTILE, "dog"]
    assert figure_from_gradio(None) is None
    assert figure_from_gradio({"type": "plotly", "plot": ""}) is None
    assert figure_from_gradio({"type": "matplotlib", "plot": "data:image/webp;base64,AAAA"}) is None
    assert figure_from_gradio({"plot": data.plot}) is None
    with pytest.raises(UserError) as e:
        figure_from_gradio({"type": "plotly", "plot": "{not json"})
    assert e.value.key == "export_bad_plot"


def test_table_from_gradio_accepts_every_form():
    import gradio as gr
    from gradio.components.dataframe import DataframeData

    component = gr.Dataframe()
    payload = DataframeData(headers=["token", "p"], data=[["猫", 0.5], ["犬", 0.25]])
    arrived = component.preprocess(payload)
    assert isinstance(arrived, pd.DataFrame)
    for value in (arrived, payload, payload.model_dump()):
        got = table_from_gradio(value)
        assert list(got.columns) == ["token", "p"], type(value)
        assert got["token"].tolist() == ["猫", "犬"] and got["p"].tolist() == [0.5, 0.25]
    assert table_from_gradio([["a", 1]]).shape == (1, 2)
    empty = component.preprocess(DataframeData(headers=["token"], data=[[]]))
    for value in (None, empty, pd.DataFrame(), {"headers": ["a"], "data": [[]]}):
        assert table_from_gradio(value) is None
    with pytest.raises(UserError) as e:
        table_from_gradio({"headers": ["a", "b"], "data": [[1, 2, 3]]})
    assert e.value.key == "export_bad_table"


def test_table_csv_writes_a_bom_and_reads_back(tmp_path):
    df = pd.DataFrame({"トークン": ["猫", "は", "こんにちは、世界"], "確率": [0.5, 0.25, 0.125]})
    path = table_csv(df, tmp_path / "tokens.csv")
    assert path == tmp_path / "tokens.csv"
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and not raw.startswith(b"\xef\xbb\xbf" * 2)
    back = pd.read_csv(path, encoding="utf-8-sig")
    pd.testing.assert_frame_equal(back, df)
    assert raw[3:].decode("utf-8").splitlines()[0] == "トークン,確率"


def test_table_csv_keeps_excel_from_running_cells(tmp_path):
    df = pd.DataFrame({"token": ["=1+1", "-ing", "@SUM(A1)", "ok"], "n": [-1, 2, 3, 4]})
    back = pd.read_csv(table_csv(df, tmp_path / "a.csv"), encoding="utf-8-sig")
    assert back["token"].tolist() == ["'=1+1", "'-ing", "'@SUM(A1)", "ok"]
    assert back["n"].tolist() == [-1, 2, 3, 4]  # numbers are not text and stay numbers
    raw = pd.read_csv(table_csv(df, tmp_path / "b.csv", excel_safe=False), encoding="utf-8-sig")
    assert raw["token"].tolist() == df["token"].tolist()


@pytest.mark.parametrize(
    "stem,suffix,expected",
    [
        ("tokenizer 2025-01-02 12:30:05", ".html", "tokenizer-2025-01-02-12-30-05.html"),
        ("../../etc/passwd", ".csv", "etc-passwd.csv"),
        ("..\\..\\windows\\system32", "csv", "windows-system32.csv"),
        ("トークナイザー", ".html", "llmviz.html"),
        ("サンプリング sampling", ".HTML", "sampling.html"),
        ("Café", "", "Cafe"),
        ("", ".html", "llmviz.html"),
        ("CON", ".csv", "CON_.csv"),
        ("a", "../html", "a.html"),
    ],
)
def test_safe_filename(stem, suffix, expected):
    assert safe_filename(stem, suffix) == expected


def test_safe_filename_is_always_plain_ascii():
    for stem in ("../" * 50, "a" * 500, '\x00/\\:*?"<>|', "😀" * 10, "..", "x\u202ey"):
        name = safe_filename(stem, ".html")
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,81}\.html", name), name
        assert ".." not in name and "/" not in name and "\\" not in name
