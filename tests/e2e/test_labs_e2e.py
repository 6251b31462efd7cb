"""The labs tab in a real Chromium, English and Japanese: the scaling lab fills itself on load and
follows a preset; the perplexity lab colours a text by surprisal (two models / two languages)."""

from __future__ import annotations

import pytest

from llmviz.ui import labs_tab
from tests.e2e.conftest import open_tab

pytestmark = pytest.mark.e2e

WORDS = {
    "en-US": {
        "ppl_tab": "Perplexity",
        "verdict": "Chinchilla beats Gopher",
        "days": "days",
        "ppl": "perplexity",
    },
    "ja-JP": {
        "ppl_tab": "パープレキシティ",
        "verdict": "Chinchilla が Gopher に勝つ",
        "days": "日",
        "ppl": "パープレキシティ",
    },
}


def choose(page, elem_id: str, option: str) -> None:
    """Pick an option of a gradio dropdown by its visible text."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_scaling_lab_in_the_browser(open_app, shot_dir, locale):
    words = WORDS[locale]
    page = open_app(locale, height=1100)
    open_tab(page, "labs")
    # filled on page load: both charts and the Chinchilla vs Gopher verdict
    page.wait_for_selector("#labs-sc-landscape .js-plotly-plot", timeout=60_000)
    page.wait_for_selector("#labs-sc-profiles .js-plotly-plot", timeout=30_000)
    assert words["verdict"] in page.locator("#labs-sc-table").inner_text()
    result = page.locator("#labs-sc-result")
    assert "5.88×10²³" in result.inner_text() and words["days"] in result.inner_text()

    choose(page, "labs-sc-preset", "Gopher 280B (2021)")
    page.wait_for_function(
        "() => document.querySelector('#labs-sc-result').innerText.includes('5.04×10²³')",
        timeout=30_000,
    )
    assert page.locator("#labs-sc-n input").input_value() in ("280000000000", "280000000000.0")
    page.wait_for_timeout(800)  # let plotly finish redrawing
    page.screenshot(path=str(shot_dir / f"labs-{locale[:2]}.png"), full_page=True)
    assert page.console_errors == []


@pytest.mark.slow
@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_perplexity_lab_in_the_browser(open_app, shot_dir, locale):
    words = WORDS[locale]
    page = open_app(locale, height=1200)
    open_tab(page, "labs")
    page.locator("#labs-ppl-button").click()
    page.wait_for_selector("#labs-ppl", state="visible", timeout=10_000)
    opening = labs_tab.preset_text("lm-en" if locale == "en-US" else "lm-ja")
    page.wait_for_function(  # a Japanese page opens with the Japanese example text
        "t => document.querySelector('#labs-ppl-text textarea').value === t",
        arg=opening,
        timeout=30_000,
    )
    if locale == "en-US":  # the default: Gemma vs SmolLM2 on the same English text
        page.locator("#labs-ppl-run").click()
    else:  # the same content in English and in Japanese, with Gemma
        page.locator("#labs-ppl-run-lang").click()
    page.wait_for_selector("#labs-ppl-html-a .labs-tok", timeout=400_000)
    page.wait_for_selector("#labs-ppl-html-b .labs-tok", timeout=60_000)
    page.wait_for_selector("#labs-ppl-curve .js-plotly-plot", timeout=30_000)
    summary = page.locator("#labs-ppl-summary").inner_text()
    assert words["ppl"] in summary and "exp(" in summary
    first = page.locator("#labs-ppl-html-a .labs-tok").first
    assert "p = " in first.get_attribute("title")
    assert "\ufffd" not in page.locator("#labs-ppl-html-b").inner_text()
    page.wait_for_timeout(800)
    page.screenshot(path=str(shot_dir / f"labs-ppl-{locale[:2]}.png"), full_page=True)
    assert page.console_errors == []
