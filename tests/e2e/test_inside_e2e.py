"""The "inside the model" tab in a real Chromium, English and Japanese: the logit lens grid and a
clicked cell, the nearest neighbours and the word map, and the KV-cache meter of a generation."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import open_tab

pytestmark = pytest.mark.e2e

WORDS = {
    "en-US": {"emb": "Token embeddings", "kv": "KV cache", "output": "(output)", "equal": "(equal)",
              "top": "probability", "one": "is one token"},
    "ja-JP": {"emb": "トークン埋め込み", "kv": "KV キャッシュ", "output": "（出力）", "equal": "（一致）",
              "top": "確率", "one": "は 1 トークン"},
}  # fmt: skip


def _sub_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_inside_the_model_in_the_browser(open_app, shot_dir, locale):
    words = WORDS[locale]
    page = open_app(locale, height=1500)
    open_tab(page, "inside")

    # the logit lens of the opening preset: output row on top, one column per token
    page.locator("#inside-run").click()
    page.wait_for_selector("#inside-curve .js-plotly-plot", timeout=300_000)
    grid = page.locator("#inside-grid")
    assert words["output"] in grid.inner_text()
    assert "富士" in grid.inner_text() and "\ufffd" not in grid.inner_text()
    summary = page.locator("#inside-summary").inner_text()
    assert "18" in summary  # Gemma 3 270M's layers
    assert words["top"] in page.locator("#inside-cell").inner_text()
    # a click on a cell of an inner layer shows that cell's top 10
    before = page.locator("#inside-cell").inner_text()
    # (gradio 6 draws a Dataframe as a virtual grid: each cell is [data-testid=cell-<row>-<col>])
    grid.locator('[data-testid="cell-6-2"]').click()
    page.wait_for_function(
        "b => document.querySelector('#inside-cell').innerText !== b", arg=before, timeout=60_000
    )
    page.wait_for_timeout(800)
    page.screenshot(path=str(shot_dir / f"inside-lens-{locale[:2]}.png"), full_page=True)

    # embeddings: neighbours of 猫 (itself first, at similarity 1) and the 2-D map
    _sub_tab(page, words["emb"])
    page.locator("#inside-nb-run").click()
    page.wait_for_selector('#inside-nb-table [data-testid="cell-0-3"]', timeout=120_000)
    first_row = page.locator('#inside-nb-table [role="row"][data-index="0"]').inner_text()
    assert "猫" in first_row and "1.000" in first_row
    assert words["one"] in page.locator("#inside-nb-note").inner_text()
    page.locator("#inside-map-run").click()
    page.wait_for_selector("#inside-map .js-plotly-plot", timeout=120_000)
    assert "電車" in page.locator("#inside-map").inner_text()
    page.locator("#inside-an-run").click()
    page.wait_for_selector('#inside-an-table [data-testid="cell-0-1"]', timeout=120_000)
    page.wait_for_timeout(800)
    page.screenshot(path=str(shot_dir / f"inside-emb-{locale[:2]}.png"), full_page=True)

    # the KV cache: the meter grows with the generation and the formula equals the measurement
    _sub_tab(page, words["kv"])
    page.locator("#inside-kv-run").click()
    page.wait_for_function(
        "w => document.querySelector('#inside-kv-summary').innerText.includes(w)",
        arg=words["equal"], timeout=300_000,
    )  # fmt: skip
    page.wait_for_selector("#inside-kv-meter .js-plotly-plot", timeout=30_000)
    page.wait_for_function(  # the stream ends: the text has grown past the prompt
        "() => document.querySelector('#inside-kv-text textarea').value.length > 20", timeout=120_000
    )
    page.wait_for_timeout(1500)
    page.screenshot(path=str(shot_dir / f"inside-kv-{locale[:2]}.png"), full_page=True)
    assert page.console_errors == []


def test_inside_lens_at_800px(open_app, shot_dir):
    page = open_app("ja-JP", width=800, height=1400)
    open_tab(page, "inside")
    page.locator("#inside-run").click()
    page.wait_for_selector("#inside-curve .js-plotly-plot", timeout=300_000)
    # the grid scrolls inside its own box; the page itself does not get wider than the window
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
    page.wait_for_timeout(800)
    page.screenshot(path=str(shot_dir / "inside-lens-ja-800.png"), full_page=True)
    assert page.console_errors == []
