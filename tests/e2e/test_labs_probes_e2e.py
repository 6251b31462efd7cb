"""The bias and in-context-learning labs in a real Chromium, English and Japanese: the paired
bars of a template set, the four ICL conditions with their counts, and chain of thought."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import open_tab

pytestmark = pytest.mark.e2e

WORDS = {
    "en-US": {"template": "The {X} said that", "filler": "nurse", "ratio": "ratio", "true": "true labels",
              "flipped": "flipped labels", "cot": "chain of thought", "prompt": "Sentiment:"},
    "ja-JP": {"template": "その{X}は", "filler": "看護師", "ratio": "比", "true": "正しいラベル",
              "flipped": "入れ替えたラベル", "cot": "思考の連鎖", "prompt": "評価："},
}  # fmt: skip


def _sub_tab(page, elem_id: str) -> None:
    page.locator(f"#{elem_id}-button").click()
    page.wait_for_selector(f"#{elem_id}", state="visible", timeout=10_000)


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_bias_lab_in_the_browser(open_app, shot_dir, locale):
    words = WORDS[locale]
    page = open_app(locale, height=1400)
    open_tab(page, "labs")
    _sub_tab(page, "labs-bias")
    page.wait_for_function(  # a Japanese page opens with a Japanese template set
        "t => document.querySelector('#labs-bias-template input, #labs-bias-template textarea').value === t",
        arg=words["template"],
        timeout=30_000,
    )
    page.locator("#labs-bias-run").click()
    page.wait_for_selector("#labs-bias-chart .js-plotly-plot", timeout=300_000)
    page.wait_for_selector("#labs-bias-table", state="visible", timeout=60_000)
    summary = page.locator("#labs-bias-summary").inner_text()
    assert "Gemma" in summary and "\ufffd" not in summary
    chart = page.locator("#labs-bias-chart").inner_text()
    assert words["filler"] in chart
    assert words["filler"] in page.locator("#labs-bias-table").inner_text()
    page.wait_for_timeout(800)
    page.screenshot(path=str(shot_dir / f"labs-bias-{locale[:2]}.png"), full_page=True)
    assert page.console_errors == []


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_icl_lab_in_the_browser(open_app, shot_dir, locale):
    words = WORDS[locale]
    page = open_app(locale, height=1600)
    open_tab(page, "labs")
    _sub_tab(page, "labs-icl")
    page.locator("#labs-icl-run").click()
    page.wait_for_function(  # all four conditions, each with its count out of 48
        "() => (document.querySelector('#labs-icl-summary').innerText.match(/\\/ 48/g) || []).length === 4",
        timeout=300_000,
    )
    summary = page.locator("#labs-icl-summary").inner_text()
    assert words["true"] in summary and words["flipped"] in summary
    assert "48" in page.locator("#labs-icl-chart").inner_text()
    page.locator("#labs-icl-table").wait_for(state="visible")
    assert "✓" in page.locator("#labs-icl-table").inner_text()
    if locale == "ja-JP":  # chain of thought on the Japanese problems (the set follows the page)
        page.locator("#labs-cot-run").click()
        page.wait_for_function(
            "() => /12 問）/.test(document.querySelector('#labs-cot-chart').innerText)"
            " && /思考の連鎖：\\*?\\*?\\d+ \\/ 12/.test(document.querySelector('#labs-cot-summary').innerText)",
            timeout=400_000,
        )
        assert "\ufffd" not in page.locator("#labs-cot-table").inner_text()
    page.wait_for_timeout(800)
    page.screenshot(path=str(shot_dir / f"labs-icl-{locale[:2]}.png"), full_page=True)
    assert page.console_errors == []
