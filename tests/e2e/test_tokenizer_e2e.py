"""The tokenizer tab in real Chromium, English and Japanese: typing updates the view, split
Japanese characters are grouped, the training lab runs; full-page screenshots."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import open_tab

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_tokenizer_tab(open_app, shot_dir, locale):
    page = open_app(locale)
    open_tab(page, "tokenizer")
    view = page.locator("#tok-view .card")
    view.first.wait_for(timeout=120_000)
    assert view.count() == 4  # the four default tokenizers
    # split characters are grouped (SmolLM2 / GPT-2 cut Japanese into bytes) and never "�"
    assert page.locator("#tok-view .grp").count() > 5
    assert "\ufffd" not in page.locator("#tok-view").inner_text()

    # typing updates the view
    box = page.locator("#tok-text textarea")
    box.fill("猫")
    page.wait_for_function(
        "() => document.querySelectorAll('#tok-view .card').length === 4 && "
        "!document.querySelector('#tok-view').innerText.includes('吾')",
        timeout=30_000,
    )
    title = page.locator("#tok-view .grp").first.get_attribute("title")
    assert title.startswith("猫 = E7")  # hover shows the bytes
    # emptying the box clears the view quietly: no red error toast per deleted character
    box.fill("")
    page.wait_for_function(
        "() => document.querySelectorAll('#tok-view .card').length === 0", timeout=30_000
    )
    page.wait_for_timeout(1500)
    assert page.locator(".toast-body").count() == 0
    box.fill("吾輩は猫である。名前はまだ無い。\nTokenizers cut text into pieces.")
    page.wait_for_timeout(1500)
    page.locator("#tok-view .card").first.wait_for()
    expected = "hello world"
    assert page.locator("#tok-decoded textarea").input_value() == expected
    page.screenshot(
        path=str(shot_dir / f"tokenizer-{'en' if locale == 'en-US' else 'ja'}.png"), full_page=True
    )

    # the training lab
    page.locator("#tok-train-button").click()
    page.locator("#tok-train-btn").click()
    page.locator("#tok-seg .row").first.wait_for(timeout=120_000)
    assert page.locator("#tok-seg .row").count() >= 2
    page.locator("#tok-curve .js-plotly-plot").wait_for(timeout=30_000)
    suffix = "en" if locale == "en-US" else "ja"
    page.screenshot(path=str(shot_dir / f"tokenizer-train-{suffix}.png"), full_page=True)
    assert page.console_errors == []
