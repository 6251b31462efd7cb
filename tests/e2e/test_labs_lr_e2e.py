"""The learning-rate lab in a real Chromium, English and Japanese: the bowl and the schedule are
drawn on page load, a training run streams to three loss curves and three samples, and choosing
the Japanese text sets its measured learning rates."""

from __future__ import annotations

import pytest

from llmviz import config
from tests.e2e.conftest import open_tab

pytestmark = pytest.mark.e2e

WORDS = {
    "en-US": {
        "diverged": "diverged after",
        "bottom": "reached the bottom",
        "schedule": "half a cosine",
        "done": "steps in",
        "converged": "converged",
        "corpus_ja": "Japanese (the tokenizer tab's corpus)",
    },
    "ja-JP": {
        "diverged": "ステップで発散",
        "bottom": "底に到達",
        "schedule": "半周期のコサイン",
        "done": "ステップを計算時間",
        "converged": "収束",
        "corpus_ja": "日本語（トークナイザータブのコーパス）",
    },
}


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_learning_rate_lab_in_the_browser(open_app, shot_dir, locale):
    words = WORDS[locale]
    page = open_app(locale, height=1300)
    open_tab(page, "labs")
    page.locator("#labs-lr-button").click()
    page.wait_for_selector("#labs-lr", state="visible", timeout=10_000)
    # filled on page load: the paths on the bowl, their losses and the schedule
    page.wait_for_selector("#labs-lr-bowl .js-plotly-plot", timeout=60_000)
    page.wait_for_selector("#labs-lr-losses .js-plotly-plot", timeout=30_000)
    summary = page.locator("#labs-lr-summary").inner_text()
    assert words["diverged"] in summary and words["bottom"] in summary
    page.wait_for_selector("#labs-lr-sched-chart .js-plotly-plot", timeout=60_000)
    assert words["schedule"] in page.locator("#labs-lr-sched-summary").inner_text()

    if locale == "ja-JP":  # the Japanese text brings its own measured learning rates
        page.locator("#labs-lr-corpus input").click()
        page.get_by_role("option", name=words["corpus_ja"], exact=True).click()
        good = config.LR_TRAIN_ALPHAS["ja"][1]
        page.wait_for_function(
            "v => Number(document.querySelector('#labs-lr-a2 input').value) === v",
            arg=good,
            timeout=15_000,
        )
    page.locator("#labs-lr-train").click()
    page.wait_for_selector("#labs-lr-train-chart .js-plotly-plot", timeout=120_000)
    page.wait_for_function(
        "n => document.querySelectorAll('#labs-lr-samples .labs-lr-sample').length === n",
        arg=3,
        timeout=120_000,
    )
    result = page.locator("#labs-lr-train-summary").inner_text()
    assert words["done"] in result and words["converged"] in result
    assert "\ufffd" not in page.locator("#labs-lr-samples").inner_text()
    page.wait_for_timeout(800)  # let plotly finish drawing
    page.screenshot(path=str(shot_dir / f"labs-lr-{locale[:2]}.png"), full_page=True)
    assert page.console_errors == []
