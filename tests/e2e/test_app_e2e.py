"""The whole app in a real Chromium: every tab opens in English and Japanese, no console errors."""

import pytest

from tests.e2e.conftest import open_tab

pytestmark = pytest.mark.e2e

TABS = ["tokenizer", "attention", "sampling", "memory", "compare", "labs"]
TITLES = {"en-US": "see how large language models work", "ja-JP": "大規模言語モデルのしくみ"}
TAB_NAMES = {
    "en-US": ["Tokenizer", "Attention", "Sampling", "Quantization & memory", "Base vs instruct"],
    "ja-JP": ["トークナイザー", "アテンション", "サンプリング", "量子化とメモリ", "ベース vs インストラクト"],
}


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_every_tab_opens_in_both_languages(open_app, shot_dir, locale):
    page = open_app(locale)
    assert TITLES[locale] in page.inner_text("#llmviz-title")
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
