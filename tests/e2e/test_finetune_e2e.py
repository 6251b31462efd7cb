"""The fine-tuning lesson in a real Chromium, English and Japanese: the training text with its
trained tokens marked, the LoRA numbers, a short live run (loss curve, held-out answers, before
and after), asking the tuned model, Stop mid-run, the shipped tuning's evaluation."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import open_tab

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TEXTS = {
    "en-US": {"title": "Fine-tuning", "done": "Done", "stopped": "Stopped", "lora": "Trainable",
              "base": "Base model", "mine": "Your tuned model", "stops": "Stops"},
    "ja-JP": {"title": "ファインチューニング", "done": "完了", "stopped": "停止", "lora": "学習するパラメータ",
              "base": "ベースモデル", "mine": "あなたが調整したモデル", "stops": "止まる"},
}  # fmt: skip


def _set_number(page, elem: str, value: int) -> None:
    box = page.locator(f"#{elem} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


@pytest.mark.parametrize("locale", ["en-US", "ja-JP"])
def test_finetune_lesson_in_the_browser(open_app, shot_dir, locale):
    words = TEXTS[locale]
    page = open_app(locale, height=1400)
    open_tab(page, "finetune")
    tab = page.locator("#tab-finetune")
    assert words["title"] in tab.inner_text()
    # 1. the training text: answer tokens marked as trained, prompt tokens greyed
    page.wait_for_selector("#ft-view .ft-trained", timeout=60_000)
    assert page.locator("#ft-view .ft-masked").count() > 0
    view = page.locator("#ft-view").inner_text()
    assert "<start_of_turn>" in view and "<end_of_turn>" in view
    # 2. LoRA with the loaded model's numbers (1.9 M of 268 M at r = 8)
    page.wait_for_selector("#ft-lora :text('1,898,496')", timeout=30_000)
    assert words["lora"] in page.locator("#ft-lora").inner_text()
    # 4. the shipped tuning's evaluation is on the page before anything runs
    page.wait_for_selector(f"#ft-eval :text('{words['stops']}')", timeout=30_000)

    # 3. a short live run: loss curve, answers before / during / after
    _set_number(page, "ft-steps", 4)
    _set_number(page, "ft-batch", 2)
    _set_number(page, "ft-probe-every", 2)
    page.locator("#ft-start").click()
    page.wait_for_selector(f"#ft-status :text('{words['done']}')", timeout=300_000)
    page.wait_for_selector("#ft-plot .js-plotly-plot", timeout=30_000)
    rows = page.locator("#ft-probes tbody tr")
    assert rows.count() == 3  # before training, after step 2, after step 4
    assert "4" in page.locator("#ft-progress").inner_text()
    before_after = page.locator("#ft-before-after").inner_text()
    assert before_after.strip()
    page.wait_for_timeout(500)
    page.screenshot(path=str(shot_dir / f"finetune-{locale[:2]}.png"), full_page=True)

    # ask the tuned model (it lives in this session only), next to the base model
    page.locator("#tab-finetune").get_by_text(
        "Ask your tuned model" if locale == "en-US" else "調整したモデルに質問する"
    ).click()
    page.locator("#ft-ask").click()
    page.wait_for_selector(f"#ft-ask-out :text('{words['mine']}')", timeout=120_000)
    out = page.locator("#ft-ask-out").inner_text()
    assert words["base"] in out
    shown = tab.inner_text()
    assert "\ufffd" not in shown

    if locale == "en-US":  # Stop mid-run: the status says where it stopped; the app answers
        _set_number(page, "ft-steps", 200)
        _set_number(page, "ft-probe-every", 0)
        page.locator("#ft-start").click()
        page.wait_for_selector("#ft-status :text('Training')", timeout=120_000)
        page.locator("#ft-stop").click()
        page.wait_for_selector(f"#ft-status :text('{words['stopped']}')", timeout=60_000)
        progress = page.locator("#ft-progress").inner_text()
        assert "200" in progress
        page.locator("#ft-instruction textarea").fill("What is 2 + 3?")
        page.wait_for_selector("#ft-view :text('What')", timeout=30_000)
    assert page.console_errors == []


def test_finetune_lesson_at_800_px(open_app, shot_dir):
    page = open_app("ja-JP", width=800, height=1200)
    open_tab(page, "finetune")
    page.wait_for_selector("#ft-view .ft-trained", timeout=60_000)
    page.wait_for_selector("#ft-lora :text('1,898,496')", timeout=30_000)
    width = page.locator("#ft-view").bounding_box()["width"]
    assert width > 600, width  # the token view uses the width, not a squeezed column
    page.screenshot(path=str(shot_dir / "narrow-ja-finetune.png"), full_page=True)
    assert page.console_errors == []
