"""The base-vs-instruct tab in a real Chromium, English and Japanese: exact prompts, both columns
streaming, the first-token chart."""

from __future__ import annotations

import threading
import time

import pytest

from tests.e2e.conftest import open_tab

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TEXTS = {
    "en-US": {"run": "Ask both models", "few": "few-shot", "pair": "Same family, offline"},
    "ja-JP": {"run": "両方のモデルに聞く", "few": "フューショット", "pair": "同じファミリー、オフライン"},
}
DONE = "() => ['left', 'right'].every(s => /[✅⏹]/.test(document.querySelector('#cmp-status-' + s).innerText))"


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_compare_tab_in_the_browser(open_app, shot_dir, locale):
    words = TEXTS[locale]
    page = open_app(locale, height=1200)
    open_tab(page, "compare")
    tab = page.locator("#tab-compare")
    assert words["run"] in tab.inner_text()
    # the default pair is one family (base vs base + our tuning), said before anything runs,
    # and the exact prompts are there: the tuned model gets Gemma's turn format
    page.wait_for_selector(f"#cmp-pair-note :text('{words['pair']}')", timeout=30_000)
    page.wait_for_selector("#cmp-prompt-right .cmp-special", timeout=60_000)
    assert "<start_of_turn>" in page.locator("#cmp-prompt-right").inner_text()
    assert "<bos>" in page.locator("#cmp-prompt-left").inner_text()

    if locale == "ja-JP":  # Japanese question, few-shot for the base model
        # the Japanese UI opens on the Japanese question of the textbook
        page.wait_for_function(
            "() => document.querySelector('#cmp-prompt textarea').value === 'イギリスの首都は？'",
            timeout=30_000,
        )
        prompt = page.locator("#cmp-prompt textarea")
        prompt.fill("イギリスの首都は？")
        examples = page.locator("#cmp-examples textarea")
        examples.fill("フランスの首都は？ => パリ\nドイツの首都は？ => ベルリン")
        page.locator("#cmp-shots").get_by_text(words["few"], exact=True).click()
        page.wait_for_selector("#cmp-prompt-left :text('ベルリン')", timeout=30_000)
    n = page.locator("#cmp-max-new input[type=number]")
    n.fill("12")
    n.press("Enter")
    page.locator("#cmp-run").click()
    page.wait_for_function(DONE, timeout=240_000)
    page.wait_for_selector("#cmp-plot .js-plotly-plot", timeout=60_000)
    page.wait_for_timeout(1000)
    right = page.locator("#cmp-out-right textarea").input_value()
    left = page.locator("#cmp-out-left textarea").input_value()
    assert right.strip() and left.strip()
    if locale == "en-US":
        assert "London" in right
    assert "\ufffd" not in left + right
    page.screenshot(path=str(shot_dir / f"compare-{locale[:2]}.png"), full_page=True)
    assert page.locator("#cmp-plot .js-plotly-plot").is_visible()

    if locale == "en-US":  # a long run stopped mid-stream: the statuses say so, no thread is left
        n.fill("200")
        n.press("Enter")
        page.locator("#cmp-run").click()
        page.wait_for_function(
            "() => /⏳/.test(document.querySelector('#cmp-status-left').innerText)"
            " || /⏳/.test(document.querySelector('#cmp-status-right').innerText)",
            timeout=240_000,
        )
        page.locator("#cmp-stop").click()
        page.wait_for_selector("#cmp-status-left :text('Stopped')", timeout=30_000)
        deadline = time.monotonic() + 30
        while _stream_threads() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _stream_threads() == []
    assert page.console_errors == []


def _stream_threads():
    return [t for t in threading.enumerate() if t.name.startswith("llmviz-stream")]
