"""The attention tab in a real Chromium, English and Japanese: run, the head map, a click on the
overview opens that head, the sink option, a jump to a pattern."""

from __future__ import annotations

import pytest

from llmviz.plots.attention import overview_tile_center
from tests.e2e.conftest import open_tab

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TEXTS = {
    "en-US": {"run": "Show attention", "title": "Layer 5 · head 1", "hidden": "first token hidden"},
    "ja-JP": {
        "run": "アテンションを表示",
        "title": "層 5・ヘッド 1",
        "hidden": "先頭トークンを非表示",
    },
}
PRESET = {"en-US": 0, "ja-JP": 1}  # the English classic, then 吾輩は猫である


def _title(page) -> str:
    return page.locator("#attention-head-map .gtitle").text_content()


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_attention_tab_in_the_browser(open_app, shot_dir, locale):
    words = TEXTS[locale]
    page = open_app(locale, height=1100)
    open_tab(page, "attention")
    tab = page.locator("#tab-attention")
    assert words["run"] in tab.inner_text()
    if locale == "ja-JP":  # the Japanese UI opens on a Japanese text
        page.wait_for_function(
            "() => document.querySelector('#attention-text textarea').value.startsWith('吾輩')",
            timeout=30_000,
        )
    if PRESET[locale]:
        tab.locator(".gallery-item, button.gallery-item").nth(PRESET[locale]).click()
        page.wait_for_function(
            "() => document.querySelector('#attention-text textarea').value.startsWith('吾輩')"
        )

    page.locator("#attention-run").click()
    page.wait_for_selector("#attention-head-map .js-plotly-plot .heatmaplayer", timeout=240_000)
    page.wait_for_selector("#attention-overview img", timeout=30_000)
    page.wait_for_selector("#attention-focus .js-plotly-plot", timeout=30_000)
    page.wait_for_selector("#attention-stats .js-plotly-plot", timeout=30_000)
    assert page.locator("#attention-summary").inner_text().strip() != ""
    labels = page.locator("#attention-head-map .ytick text").all_text_contents()
    assert labels[0] == "<bos>"
    if locale == "ja-JP":
        assert "猫" in labels and "吾" in labels

    # click tile (layer 5, head 1) of the overview picture: the head map and sliders follow
    img = page.locator("#attention-overview img")
    box = img.bounding_box()
    natural = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    scale = min(box["width"] / natural[0], box["height"] / natural[1], 1)
    x, y = overview_tile_center(5, 1, n_layers=18, n_heads=4)
    offset_x = (box["width"] - natural[0] * scale) / 2
    offset_y = (box["height"] - natural[1] * scale) / 2
    img.click(position={"x": offset_x + x * scale, "y": offset_y + y * scale})
    page.wait_for_function(
        "t => document.querySelector('#attention-head-map .gtitle')?.textContent === t",
        arg=words["title"],
        timeout=30_000,
    )
    assert page.locator("#attention-layer input[type=number]").input_value() == "5"
    assert page.locator("#attention-head input[type=number]").input_value() == "1"

    # hide the sink: the title says so and the overview is redrawn
    page.locator("#attention-hide-sink input").check()
    page.wait_for_function(
        "t => document.querySelector('#attention-head-map .gtitle')?.textContent.includes(t)",
        arg=words["hidden"],
        timeout=30_000,
    )
    page.wait_for_timeout(800)  # let the overview picture and bars settle before the shot
    assert page.locator("#attention-head-map .heatmaplayer").is_visible()
    assert page.locator("#attention-overview img").is_visible()
    tab.screenshot(path=str(shot_dir / f"attention-{locale[:2]}-tab.png"))
    page.screenshot(path=str(shot_dir / f"attention-{locale[:2]}.png"), full_page=True)
    assert "\ufffd" not in page.locator("#attention-head-info").inner_text()
    assert page.console_errors == []
