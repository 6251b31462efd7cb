"""The quantization & memory tab in a real Chromium, in English and Japanese."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import open_tab

pytestmark = pytest.mark.e2e


def _wait_for_calculator(page) -> None:
    """The calculator fills itself on page load (Llama 3 8B at five precisions)."""
    page.wait_for_selector("#mem-plot .js-plotly-plot", timeout=180_000)
    page.wait_for_selector("#mem-summary :text('8,030,261,248')", timeout=90_000)


def test_memory_tab_english(open_app, shot_dir):
    page = open_app("en-US")
    open_tab(page, "memory")
    _wait_for_calculator(page)
    assert page.locator("#mem-plot .js-plotly-plot").is_visible()
    assert "8 KV heads" in page.inner_text("#mem-summary")
    assert "6 GB" in page.inner_text("#mem-textbook")

    # a bad parameter count: a clear message, and the app keeps working
    page.locator("#mem-source").get_by_text("Parameter count").click()
    page.locator("#mem-params textarea, #mem-params input").first.fill("1e15")
    page.locator("#mem-calculate").click()
    page.wait_for_selector("text=far beyond any model", timeout=90_000)
    page.locator("#mem-params textarea, #mem-params input").first.fill("175B")
    page.locator("#mem-calculate").click()
    page.wait_for_selector("#mem-summary :text('175,000,000,000')", timeout=90_000)

    # the lab on a real weight matrix (loads SmolLM2 in bf16)
    page.locator("#mem-lab-run").click()
    page.wait_for_selector("#mem-lab-hist .js-plotly-plot", timeout=400_000)
    page.wait_for_selector("#mem-lab-heat .js-plotly-plot", timeout=90_000)
    assert "naive rounding" in page.inner_text("#mem-lab-table")
    page.screenshot(path=str(shot_dir / "memory-en.png"), full_page=True)
    assert page.console_errors == []


def test_memory_tab_japanese(open_app, shot_dir):
    page = open_app("ja-JP")
    open_tab(page, "memory")
    _wait_for_calculator(page)
    assert "KV ヘッド" in page.inner_text("#mem-summary")
    assert "（80.3 億）" in page.inner_text("#mem-summary")  # not "8.03 十億"
    assert "量子化" in page.inner_text("#tab-memory")
    # the textbook's GPT-3: 15 RTX 4090s by default, and the page says why serving needs 17
    page.locator("#mem-preset input").first.click()
    page.get_by_role("option", name="GPT-3 175B（教科書）").click()
    page.wait_for_selector("#mem-summary :text('1,750 億')", timeout=90_000)
    summary = page.inner_text("#mem-summary")
    assert "重みだけなら 15 枚" in summary and "17 枚" in summary
    page.screenshot(path=str(shot_dir / "memory-ja-gpt3.png"), full_page=True)
    page.locator("#mem-preset input").first.click()
    page.get_by_role("option", name="Mixtral 8x7B（混合エキスパート）").click()
    page.wait_for_selector("#mem-summary :text('エキスパート')", timeout=90_000)
    page.screenshot(path=str(shot_dir / "memory-ja.png"), full_page=True)
    assert page.console_errors == []
