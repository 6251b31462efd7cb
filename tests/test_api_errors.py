"""What gradio itself rejects (before a handler runs) still reaches an API caller as a message
that says what to do, in the caller's language: never ``error: null``."""

from __future__ import annotations

import httpx
import pytest

from benchmarks import harness

pytestmark = pytest.mark.slow  # the whole app


def _call(app_url, api, data, lang="en"):
    with httpx.Client(timeout=120, headers={"accept-language": lang}) as http:
        return harness.call(app_url, api, data, 120, client=http)


def test_a_string_for_a_slider_names_the_input(app_url):
    res = _call(app_url, "sampling_refilter", [1.0, 50, 1.0, 0.0, "ten"])
    assert res.status == "error"
    assert "“Candidates shown in the chart” cannot use the value ten" in res.message
    assert res.data["title"] == "Error"


def test_too_few_values_lists_what_is_needed(app_url):
    res = _call(app_url, "sampling_view", ["こんにちは、"])
    assert res.status == "error"
    assert "sent 1 value(s); this action needs 8" in res.message
    assert "Prompt, Model, Seed, Temperature" in res.message


def test_the_message_and_its_title_follow_the_callers_language(app_url):
    res = _call(app_url, "sampling_view", ["こんにちは、"], lang="ja-JP,ja;q=0.9")
    assert res.status == "error" and "この操作には次の順で 8 個必要です" in res.message
    assert "プロンプト" in res.message  # the inputs' labels, translated
    assert res.data["title"] == "エラー"


def test_a_list_where_a_number_goes(app_url):
    res = _call(app_url, "attention_view", [[1], 0, 0, False])
    assert res.status == "error" and res.message and "cannot use the value [1]" in res.message


def test_the_app_still_answers_afterwards(app_url):
    res = _call(app_url, "tokenizer_tokenize", ["猫", ["gpt2"], True, True])
    assert res.status == "complete"
