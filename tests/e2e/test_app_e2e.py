"""The whole app in a real Chromium: every tab opens in English and Japanese, no console errors."""

import pytest

from tests.e2e.conftest import open_tab

pytestmark = pytest.mark.e2e

TABS = ["tokenizer", "attention", "sampling", "memory", "compare", "finetune", "labs"]
TITLES = {"en-US": "see how large language models work", "ja-JP": "大規模言語モデルのしくみ"}
TAB_NAMES = {
    "en-US": ["Tokenizer", "Attention", "Sampling", "Quantization & memory", "Base vs instruct",
              "Fine-tuning"],
    "ja-JP": ["トークナイザー", "アテンション", "サンプリング", "量子化とメモリ", "ベース vs インストラクト",
              "ファインチューニング"],
}


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_every_tab_opens_in_both_languages(open_app, shot_dir, locale):
    page = open_app(locale)
    assert TITLES[locale] in page.inner_text("#llmviz-title")
    page.wait_for_selector("button[role=tab]#tab-labs-button", timeout=30_000)  # laid out
    buttons = page.locator("button[role=tab]").all_inner_texts()
    for name in TAB_NAMES[locale]:
        assert name in buttons, (name, buttons)
    short = locale[:2]
    page.screenshot(path=str(shot_dir / f"app-{short}.png"), full_page=True)
    for tab in TABS:
        open_tab(page, tab)
        page.wait_for_timeout(300)
        assert page.locator(f"#tab-{tab}").is_visible()
        page.screenshot(path=str(shot_dir / f"app-{short}-{tab}.png"), full_page=True)
    assert page.console_errors == []


def test_japanese_renders_with_a_cjk_font(open_app):
    """Boxes instead of kana mean no CJK font: the width of a kana string must be glyph-like."""
    page = open_app("ja-JP")
    width = page.evaluate(
        """() => { const c = document.createElement('canvas').getContext('2d');
                   c.font = '16px sans-serif'; return [c.measureText('あいう').width,
                   c.measureText('\\u{10FFFD}\\u{10FFFD}\\u{10FFFD}').width]; }"""
    )
    kana, missing = width
    assert kana > 0 and abs(kana - missing) > 1, width  # real glyphs differ from the tofu box


def test_models_panel_loads_in_the_browser(open_app, shot_dir):
    page = open_app("ja-JP")
    page.locator("#models-panel").get_by_text("モデル: 使えるモデル").click()
    page.get_by_role("button", name="読み込む").click()
    page.wait_for_selector("#models-status :text('準備しました')", timeout=120_000)
    page.screenshot(path=str(shot_dir / "models-panel-ja.png"), full_page=True)
    assert page.console_errors == []


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_an_800_px_screen_shows_every_lesson_and_full_width_charts(open_app, shot_dir, locale):
    """A classroom laptop or a half-screen window: no lesson hidden behind a "…" menu, the
    attention map not squeezed beside its explanation, model names not clipped."""
    page = open_app(locale, width=800, height=1000)
    page.wait_for_selector("button[role=tab]#tab-labs-button", timeout=30_000)
    for tab in TABS:  # every tab button is on screen (the row wraps), none in an overflow menu
        assert page.locator(f"button[role=tab]#tab-{tab}-button").is_visible(), tab
    assert page.locator("button[aria-label='More tabs']:visible").count() == 0
    short = locale[:2]
    open_tab(page, "attention")
    page.locator("#attention-run").click()
    page.wait_for_selector("#attention-head-map .js-plotly-plot .heatmaplayer", timeout=240_000)
    box = page.locator("#attention-head-map .js-plotly-plot").bounding_box()
    assert box["width"] > 600, box  # was ~370 px beside the explanation
    page.screenshot(path=str(shot_dir / f"narrow-{short}-attention.png"), full_page=True)
    open_tab(page, "compare")
    for side in ("left", "right"):  # the model box is wide enough for "Gemma 3 270M (base, …)"
        width = page.locator(f"#cmp-{side}-model").bounding_box()["width"]
        assert width > 230, (side, width)
    page.screenshot(path=str(shot_dir / f"narrow-{short}-compare.png"), full_page=True)
    for tab in ("tokenizer", "sampling", "memory", "labs"):
        open_tab(page, tab)
        page.wait_for_timeout(300)
        page.screenshot(path=str(shot_dir / f"narrow-{short}-{tab}.png"), full_page=True)
    # the labs' six sub-tabs wrap too (a "…" menu hid two of them at 800 px)
    for sub in ("scaling", "ppl", "lr", "speed", "bias", "icl"):
        assert page.locator(f"button[role=tab]#labs-{sub}-button").is_visible(), sub
    assert page.locator("button[aria-label='More tabs']:visible").count() == 0
    for sub in ("lr", "speed", "bias", "icl"):
        page.locator(f"#labs-{sub}-button").click()
        page.wait_for_timeout(300)
        page.screenshot(path=str(shot_dir / f"narrow-{short}-labs-{sub}.png"), full_page=True)
    assert page.console_errors == []
