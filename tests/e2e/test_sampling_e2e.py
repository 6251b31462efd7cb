"""The sampling tab in a real Chromium, English and Japanese: distribution, a seeded step, streaming."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import open_tab

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TEXTS = {
    "en-US": {"show": "Show next-token distribution", "step": "Sample next token", "seed": "Seed"},
    "ja-JP": {
        "show": "次のトークンの確率分布を表示",
        "step": "次のトークンをサンプリング",
        "seed": "シード",
    },
}


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_sampling_tab_in_the_browser(open_app, shot_dir, locale):
    words = TEXTS[locale]
    page = open_app(locale, height=1100)
    open_tab(page, "sampling")
    tab = page.locator("#tab-sampling")
    assert words["show"] in tab.inner_text()

    # top-p 0.9 so the nucleus cut is drawn, then the distribution
    top_p = page.locator("#sampling-top-p input[type=number]")
    top_p.fill("0.9")
    top_p.press("Enter")
    page.locator("#sampling-show").click()
    page.wait_for_selector("#sampling-bars .js-plotly-plot", timeout=180_000)
    page.wait_for_selector("#sampling-curve .js-plotly-plot", timeout=30_000)
    assert page.locator("#sampling-stats").inner_text().strip() != ""

    # a temperature typed into the slider's box (Enter, no mouse) re-draws the chart: at 0 one
    # token survives (greedy)
    survivors = "() => document.querySelector('#sampling-stats').innerText.match(/(Survivors|生き残り)\\s*([\\d,]+)/)[2]"
    assert int(page.evaluate(survivors).replace(",", "")) > 1  # top-p 0.9 keeps several
    temp = page.locator("#sampling-temperature input[type=number]")
    temp.fill("0")
    temp.press("Enter")
    page.wait_for_function(
        "() => /(Survivors|生き残り)\\s*1\\s/.test(document.querySelector('#sampling-stats').innerText)",
        timeout=60_000,
    )
    temp.fill("1")
    temp.press("Enter")

    # two seeded steps: the summary names the seed, the text grows
    for _ in range(2):
        page.locator("#sampling-step").click()
        page.wait_for_function(
            "() => document.querySelectorAll('#sampling-text span[title]').length >= 1",
            timeout=60_000,
        )
    page.wait_for_selector("#sampling-summary :text('42')", timeout=60_000)

    # stream a few tokens
    n = page.locator("#sampling-n-tokens input")
    n.fill("5")
    page.locator("#sampling-generate").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#sampling-text span[title]').length >= 5",
        timeout=120_000,
    )
    page.wait_for_timeout(1500)  # the charts follow the last token
    assert page.locator("#sampling-bars .js-plotly-plot").is_visible()

    if locale == "ja-JP":  # Stop ends a long stream: the text stops growing well before 150
        n.fill("150")
        page.locator("#sampling-generate").click()
        page.wait_for_function(
            "() => document.querySelectorAll('#sampling-text span[title]').length >= 9",
            timeout=120_000,
        )
        page.locator("#sampling-stop").click()
        page.wait_for_timeout(2000)
        count = page.locator("#sampling-text span[title]").count()
        page.wait_for_timeout(3000)
        assert page.locator("#sampling-text span[title]").count() == count < 100

    if locale == "en-US":  # the textbook table once (15 rows), shown only after the run
        assert not page.locator("#sampling-experiment-table").is_visible()
        page.locator("#sampling-experiment").click()
        page.wait_for_selector("#sampling-experiment-table", state="visible", timeout=600_000)
        page.wait_for_function(
            "() => document.querySelector('#sampling-experiment-table').innerText.includes('1.5')",
            timeout=60_000,
        )
    tab.screenshot(path=str(shot_dir / f"sampling-{locale[:2]}.png"))
    page.screenshot(path=str(shot_dir / f"sampling-{locale[:2]}-page.png"), full_page=True)
    assert "\ufffd" not in page.locator("#sampling-text").inner_text()
    assert page.console_errors == []
