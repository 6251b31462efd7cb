"""Teacher features in a real Chromium: deep links per tab, the language switch, copy link, hostile
queries, the guided lesson, presenter mode, chart PNG/SVG downloads and "save this view"."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest

pytestmark = pytest.mark.e2e

# tab -> (link values, [(selector of an input, value it must show)], selector of the view's result)
CASES = {
    "tokenizer": ({"prompt": "猫が好きです。I like cats."},
                  [("#tok-text textarea", "猫が好きです。I like cats.")], "#tok-view"),
    "attention": ({"prompt": "The cat sat on the mat because it was tired."},
                  [("#attention-text textarea", "The cat sat on the mat because it was tired.")],
                  "#attention-summary"),
    "sampling": ({"prompt": "日本の首都は", "temperature": "1.5", "top_k": "40", "seed": "7"},
                 [("#sampling-prompt textarea", "日本の首都は"),
                  ("#sampling-temperature input[type=number]", "1.5"),
                  ("#sampling-top-k input", "40"), ("#sampling-seed input", "7")],
                 "#sampling-summary"),
    "inside": ({"prompt": "The capital of Japan is"},
               [("#inside-prompt textarea", "The capital of Japan is")], "#inside-summary"),
    "memory": ({"context": "4096", "batch": "2"},
               [("#mem-context input", "4096"), ("#mem-batch input", "2")], "#mem-summary"),
    "compare": ({"prompt": "Say hello in one word.", "max_new": "8"},
                [("#cmp-prompt textarea", "Say hello in one word.")], "#cmp-out-left textarea"),
    "finetune": ({"lr": "0.0005", "steps": "20", "rank": "4"},
                 [("#ft-steps input", "20"), ("#ft-rank input", "4")], None),
    "labs": ({"sub": "ppl", "prompt": "吾輩は猫である。名前はまだ無い。"},
             [("#labs-ppl-text textarea", "吾輩は猫である。名前はまだ無い。")], "#labs-ppl-summary"),
}  # fmt: skip


def _query(tab: str, values: dict[str, str], **page: str) -> str:
    return "?" + urlencode({"tab": tab, **values, **page}, quote_via=quote)


def _value(page, selector: str) -> str:
    return page.locator(selector).first.input_value()


def _wait_result(page, selector: str) -> None:
    page.wait_for_function(
        """(sel) => { const e = document.querySelector(sel); if (!e) return false;
           const v = (e.value !== undefined ? e.value : e.innerText) || "";
           return v.trim().length > 0 && !/processing|処理中/.test(v); }""",
        arg=selector, timeout=180_000,
    )  # fmt: skip


@pytest.mark.parametrize("tab", list(CASES))
def test_a_deep_link_restores_each_tab_and_runs_its_view(open_app, shot_dir, tab):
    values, checks, result = CASES[tab]
    lang = "ja" if list(CASES).index(tab) % 2 else "en"  # both languages, through ?lang=
    page = open_app("en-US", query=_query(tab, values, lang=lang))
    page.wait_for_selector(f"#tab-{tab}-button[aria-selected=true]", timeout=60_000)
    if values.get("sub"):
        page.wait_for_selector(f"#labs-{values['sub']}-button[aria-selected=true]", timeout=30_000)
    for selector, expected in checks:
        page.wait_for_function(
            "([s, v]) => { const e = document.querySelector(s); return e && e.value === v; }",
            arg=[selector, expected], timeout=60_000,
        )  # fmt: skip
    if result:
        _wait_result(page, result)
    assert page.evaluate("document.documentElement.lang") == lang
    assert not page.locator("#llmviz-link-note").is_visible()  # nothing was ignored
    page.screenshot(path=str(shot_dir / f"link-{tab}-{lang}.png"), full_page=False)
    assert page.console_errors == []


HOSTILE = {
    "tab": "sampling",
    "prompt": "<script>window.__pwned = 1</script>",
    "temperature": "NaN",
    "model": "attacker/remote-code-model",
    "seed": "1e400",
    "<img src=x onerror=window.__pwned=2>": "1",
    "top_p": "x" * 12_000,  # over a link's 2,000 characters (past ~16 KB uvicorn refuses the page)
}


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_hostile_queries_are_ignored_with_a_note_and_never_run(open_app, shot_dir, locale):
    page = open_app(locale, query="?" + urlencode(HOSTILE, quote_via=quote))
    note = page.locator("#llmviz-link-note")
    note.wait_for(state="visible", timeout=60_000)
    words = note.inner_text()
    for param in ("temperature", "model", "seed", "imgsrcxonerrorwindow", "top_p"):
        assert param in words, (param, words)
    assert ("ignored" in words) if locale == "en-US" else ("無視" in words)
    assert "<img" not in note.inner_html() and "onerror" not in note.inner_html().replace(
        "imgsrcxonerrorwindow", "")  # fmt: skip
    # the prompt is text: it lands in the text box as typed, and nothing ran
    page.wait_for_function(
        "() => document.querySelector('#sampling-prompt textarea')?.value?.startsWith('<script>')",
        timeout=30_000,
    )
    page.wait_for_timeout(1000)
    assert page.evaluate("window.__pwned") is None
    assert len(page.url) < 9_000  # the page script shortened what every event re-sends
    assert _value(page, "#sampling-temperature input[type=number]") != "NaN"
    page.screenshot(path=str(shot_dir / f"link-hostile-{locale[:2]}.png"), full_page=False)
    assert page.console_errors == []


def test_language_switch_keeps_the_view_and_copy_link_reopens_it(open_app, browser, app_url):
    page = open_app("en-US")
    page.locator("#tab-sampling-button").click()
    box = page.locator("#sampling-prompt textarea")
    box.fill("むかしむかし、")
    page.locator("#llmviz-lang-ja").click()
    page.wait_for_url("**lang=ja**", timeout=30_000)
    page.wait_for_selector("#llmviz-title", timeout=120_000)
    assert "大規模言語モデル" in page.inner_text("#llmviz-title")
    query = parse_qs(urlsplit(page.url).query)
    assert query["tab"] == ["sampling"] and query["prompt"] == ["むかしむかし、"]
    page.wait_for_function(
        "() => document.querySelector('#sampling-prompt textarea')?.value === 'むかしむかし、'",
        timeout=60_000,
    )
    page.locator("#sampling-temperature input[type=number]").fill("0.7")
    page.locator("#sampling-temperature input[type=number]").press("Enter")
    page.locator("#llmviz-copy-link").click()
    page.wait_for_function("() => document.querySelector('#llmviz-link input, #llmviz-link textarea')"
                           "?.value?.includes('temperature=0.7')", timeout=30_000)  # fmt: skip
    url = page.locator("#llmviz-link input, #llmviz-link textarea").first.input_value()
    assert url.startswith(app_url) and "lang=ja" in url
    again = browser.new_context(locale="en-US").new_page()
    try:
        again.goto(url, wait_until="domcontentloaded", timeout=120_000)
        again.wait_for_selector("#tab-sampling-button[aria-selected=true]", timeout=120_000)
        again.wait_for_function(
            "() => document.querySelector('#sampling-temperature input[type=number]')?.value === '0.7'",
            timeout=60_000,
        )
        assert _value(again, "#sampling-prompt textarea") == "むかしむかし、"
    finally:
        again.context.close()
    assert page.console_errors == []


def _steps() -> list[dict]:
    path = Path(__file__).parents[2] / "assets" / "lesson" / "lesson.json"
    return json.loads(path.read_text(encoding="utf-8"))["steps"]


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_the_lesson_path_walks_every_step(open_app, shot_dir, locale):
    steps = _steps()
    page = open_app(locale, query="?lesson=1")
    body = page.locator("#lesson-step")
    body.wait_for(state="visible", timeout=60_000)
    lang = locale[:2]
    for i, step in enumerate(steps):
        page.wait_for_function(
            "([t]) => document.querySelector('#lesson-step').innerText.includes(t)",
            arg=[step[lang]["title"]], timeout=30_000,
        )  # fmt: skip
        assert f"{i + 1} / {len(steps)}" in body.inner_text()
        assert step[lang]["question"][:20] in body.inner_text()
        page.locator("#lesson-open").click()
        page.wait_for_selector(f"#tab-{step['link']['tab']}-button[aria-selected=true]",
                               timeout=60_000)  # fmt: skip
        if i == 0:
            page.screenshot(path=str(shot_dir / f"lesson-{lang}.png"), full_page=False)
        page.locator("#lesson-next").click()
    page.locator("#lesson-next").click()  # past the end it stays on the last step
    page.wait_for_timeout(500)
    assert f"{len(steps)} / {len(steps)}" in body.inner_text()
    assert page.console_errors == []


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_presenter_mode_is_big_and_clean_at_1280x720(open_app, shot_dir, locale):
    normal = open_app(locale, width=1280, height=720, query="?tab=sampling")
    normal.wait_for_selector("#tab-sampling-button[aria-selected=true]", timeout=60_000)
    size = "(s) => parseFloat(getComputedStyle(document.querySelector(s)).fontSize)"
    base = normal.evaluate(size, "#sampling-prompt textarea")
    page = open_app(locale, width=1280, height=720, query="?tab=sampling&present=1")
    page.wait_for_selector("#tab-sampling-button[aria-selected=true]", timeout=60_000)
    assert "llmviz-present" in page.evaluate("document.documentElement.className")
    assert page.evaluate(size, "#sampling-prompt textarea") >= 1.2 * base
    assert not page.locator("#llmviz-footer").is_visible()
    page.screenshot(path=str(shot_dir / f"present-{locale[:2]}.png"), full_page=False)
    page.locator("#llmviz-present").click()  # the toggle turns it off and updates the address
    page.wait_for_function("() => !document.documentElement.classList.contains('llmviz-present')")
    assert "present=1" not in page.url
    assert page.console_errors == []


def _cjk_font_renders(page, family: str) -> bool:
    """Real glyphs of two different kana differ; the tofu box of a missing font does not."""
    return page.evaluate(
        """(family) => { const pixels = (ch) => { const c = document.createElement('canvas');
             c.width = c.height = 48; const g = c.getContext('2d'); g.font = '40px ' + family;
             g.fillText(ch, 2, 40); return Array.from(g.getImageData(0, 0, 48, 48).data).join(); };
           const a = pixels('あ'), i = pixels('い');
           return a !== pixels(' ') && a !== i; }""",
        family,
    )


def test_a_japanese_chart_downloads_as_svg_and_png_with_glyphs(open_app, shot_dir):
    page = open_app("ja-JP", query="?tab=memory")
    svg_button = page.locator("#mem-plot .llmviz-export-svg")
    svg_button.wait_for(state="visible", timeout=120_000)
    with page.expect_download(timeout=60_000) as got:
        svg_button.click()
    svg = Path(got.value.path()).read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<svg") and "Noto Sans CJK JP" in svg
    kana = [c for c in svg if "\u3040" <= c <= "\u30ff" or "\u4e00" <= c <= "\u9fff"]
    assert len(kana) > 5, "the chart's Japanese labels are in the SVG as text"
    assert _cjk_font_renders(page, "'Noto Sans CJK JP', sans-serif")
    with page.expect_download(timeout=60_000) as got:
        page.locator("#mem-plot .llmviz-export-png").click()
    png = Path(got.value.path()).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert got.value.suggested_filename.endswith(".png")
    assert page.console_errors == []


def test_save_this_view_gives_an_offline_html_and_csv(open_app, shot_dir):
    page = open_app("ja-JP", query="?tab=memory")
    page.wait_for_selector("#mem-plot .js-plotly-plot", timeout=120_000)
    page.locator("#memory-save").click()
    page.locator("#memory-saved a").first.wait_for(timeout=60_000)
    hrefs = [a.get_attribute("href") or "" for a in page.locator("#memory-saved a").all()]
    assert any(".html" in h for h in hrefs) and any(".csv" in h for h in hrefs), hrefs
    html_link = page.locator('#memory-saved a[href*=".html"]').first
    with page.expect_download(timeout=60_000) as got:
        html_link.click()
    doc = Path(got.value.path()).read_text(encoding="utf-8")
    assert '<html lang="ja">' in doc and "量子化とメモリ" in doc
    assert "Plotly" in doc and 'src="http' not in doc
    assert "tab=memory" in doc  # the link back to the live view
    page.screenshot(path=str(shot_dir / "save-view-ja.png"), full_page=False)
    assert page.console_errors == []


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_tabbing_through_a_dropdown_leaves_no_list_open(open_app, locale):
    """Tab into the attention model box (its list opens), Tab on: the list closes; the keyboard
    still picks an option (ArrowDown + Enter)."""
    page = open_app(locale, query="?tab=attention")
    page.wait_for_selector("#tab-attention-button[aria-selected=true]", timeout=60_000)
    open_lists = """() => [...document.querySelectorAll('[role=listbox], ul.options')]
                       .filter(u => u.offsetParent !== null).length"""
    page.locator("#attention-text textarea").focus()
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('#attention-model') !== null"):
            break
    else:
        pytest.fail("the model box is not reachable with Tab")
    page.wait_for_function(f"({open_lists})() > 0", timeout=10_000)
    page.keyboard.press("Tab")
    page.wait_for_function(f"({open_lists})() === 0", timeout=10_000)
    assert page.evaluate("document.activeElement.closest('#attention-model')") is None
    page.keyboard.press("Shift+Tab")  # back into the box: choose the next model by keyboard
    before = page.locator("#attention-model input").input_value()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(b) => document.querySelector('#attention-model input').value !== b", arg=before,
        timeout=10_000,
    )  # fmt: skip
    assert page.console_errors == []
