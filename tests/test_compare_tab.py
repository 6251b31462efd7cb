"""The base-vs-instruct tab through its API (the whole app, real packaged models)."""

from __future__ import annotations

import threading
import time

import pytest

from llmviz.compare import PRESETS
from llmviz.ui.compare_tab import Screen

pytestmark = pytest.mark.slow

SAME = ("smollm2-135m-instruct", "smollm2-135m-instruct")
DEFAULT = ("gemma-3-270m", "gemma-3-270m-sft")
CROSS = ("gemma-3-270m", "smollm2-135m-instruct")
CAPITAL = PRESETS["capital_en"]


def _args(prompt=CAPITAL.prompt, models=SAME, template=True, shots="zero",
          examples=CAPITAL.examples_text, task="", cot="off", max_new=8, temperature=0.0,
          top_p=1.0, seed=0):  # fmt: skip
    return (prompt, *models, template, shots, examples, task, cot, max_new, temperature, top_p, seed)


def _run(client, **kw):
    """A whole run; its outputs by name (``compare_tab.Screen``)."""
    return Screen.named(client.predict(*_args(**kw), api_name="/compare_run"))


def _stream_threads():
    return [t for t in threading.enumerate() if t.name.startswith("llmviz-stream")]


def _no_stream_threads(timeout=30.0):
    deadline = time.monotonic() + timeout
    while _stream_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _stream_threads()


def test_default_pair_tuned_side_stops_by_itself_in_japanese(client):
    out = _run(client, models=DEFAULT, max_new=24, prompt="イギリスの首都は？")
    right, right_status = out["right_text"], out["right_status"]
    assert "<end_of_turn>" in right_status  # our LoRA tuning taught it Gemma's end of turn
    assert right.strip() and "\ufffd" not in right
    assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in right)
    assert "&lt;start_of_turn&gt;</span>user" in out["right_prompt"]
    assert "24" in out["left_status"]  # the base ran to the limit


def test_cross_pair_answers_and_shows_exact_prompts(client):
    out = _run(client, models=CROSS, max_new=12)
    right, left_status, right_status = out["right_text"], out["left_status"], out["right_status"]
    left_prompt, right_prompt, plot = out["left_prompt"], out["right_prompt"], out["plot"]
    assert "London" in right  # SmolLM2-Instruct with its template answers...
    assert "<|im_end|>" in right_status  # ...and stops at its end-of-turn token
    assert "12" in left_status  # Gemma base ran to the limit
    # the exact inputs: Gemma's <bos> added by its tokenizer, SmolLM2's ChatML turns
    assert "&lt;bos&gt;</span>What is the capital of England?" in left_prompt
    assert "&lt;|im_start|&gt;</span>user" in right_prompt and "37 tokens" in right_prompt
    assert "8 tokens" in left_prompt
    assert plot is not None
    assert _no_stream_threads()


def test_same_model_without_template_and_few_shot(client):
    out = _run(client, template=False, shots="few", max_new=4)
    left_prompt, right_prompt = out["left_prompt"], out["right_prompt"]
    assert "=&gt; Paris" in left_prompt and "England? =&gt;" in left_prompt
    assert "im_start" not in right_prompt and "raw text" in right_prompt


def test_preview_and_pair_and_preset_endpoints(client):
    left, right = client.predict(
        CAPITAL.prompt, *CROSS, True, "one", CAPITAL.examples_text, "", "ja",
        api_name="/compare_preview",
    )  # fmt: skip
    assert "France? =&gt; Paris" in left and "ステップごとに考えよう" in left
    assert "ステップごとに考えよう。&lt;|im_end|&gt;" not in right  # special token in its own span
    assert "ステップごとに考えよう。" in right
    # a half-typed example is reported in place, without an error pop-up
    left, _right = client.predict(
        CAPITAL.prompt, *CROSS, True, "few", "a => b\nc", "", "off", api_name="/compare_preview"
    )
    assert "line 2" in left
    out = client.predict("same", api_name="/compare_pair")
    assert out[0] == out[1] == "gemma-3-270m-sft" and out[2] is True
    assert "chat template" in out[3]
    prompt, examples, task, shots = client.predict("sea_otter", api_name="/compare_preset")
    assert prompt == "cheese" and "sea otter => ラッコ" in examples and task
    assert shots == "few"  # the in-context lesson runs with its examples selected
    assert client.predict("capital_en", api_name="/compare_preset")[3] == "zero"


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "$(rm -rf ~)", None, ""])
def test_models_endpoint_refuses_what_is_not_a_model(client, bad):
    with pytest.raises(Exception, match="path|Unknown model|empty|Choose a model"):
        client.predict(bad, "smollm2-135m-instruct", api_name="/compare_models")


def test_offline_hub_pair_says_so_once_and_keeps_the_models(client):
    left, right, template, note, *_heads = client.predict("qwen2.5", api_name="/compare_pair")
    assert "Hugging Face Hub" in note and "Qwen2.5" in note
    assert left is None or "qwen" not in str(left)  # the model boxes are left as they were


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(prompt=""), "prompt is empty"),
        (dict(prompt="x" * 600), "the limit is 500"),
        (dict(prompt="吾輩は猫である。" * 70), "limit is 500"),
        (dict(prompt="吾輩は猫である。" * 50), "tokens long; the limit is 256"),
        (dict(shots="few", examples="sea otter ラッコ"), "has no '=>'"),
        (dict(shots="few", examples="sea otter =>"), "both sides"),
        (dict(shots="few", examples="a => b"), "at least two examples"),
        (dict(models=("no-such-model", "smollm2-135m-instruct")), "Unknown model 'no-such-model'"),
        (dict(models=("gemma-3-270m", "../etc/passwd")), "looks like a file path"),
        (dict(max_new=0), "from 1 to 200"),
        (dict(max_new=500), "from 1 to 200"),
        (dict(temperature=6), "between 0 and 5"),

    ],
)
def test_bad_input_is_explained_then_next_request_works(client, kw, message):
    with pytest.raises(Exception) as info:
        _run(client, **kw)
    assert message in str(info.value)
    assert _no_stream_threads()


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(seed=float("inf")), "“Seed (same for both columns)” cannot use the value inf"),
        (dict(max_new=float("-inf")), "whole number from 1 to 200"),
        (dict(prompt="イギリス\ud83dの首都は？"), "lone UTF-16 surrogate"),
        (dict(shots="few", examples="a => b\nc\udfff => d"), "lone UTF-16 surrogate"),
    ],
)
def test_values_only_a_script_can_send_are_explained(app_url, kw, message):
    """inf and half an emoji (gradio_client refuses to send them; raw HTTP can)."""
    from benchmarks import harness

    res = harness.call(app_url, "compare_run", _args(**kw), 120)
    assert res.status == "error" and message in (res.message or "")
    res = harness.call(app_url, "compare_preview", _args(**kw)[:8], 60)
    if "seed" not in kw and "max_new" not in kw:  # the preview shows text problems in place
        assert res.status == "complete" and message in str(res.data)


def test_hub_pair_offline_gives_the_hub_error(client):
    with pytest.raises(Exception) as info:
        _run(client, models=("smollm2-135m", "smollm2-135m-instruct-hub"))
    text = str(info.value)
    assert "Hub" in text and "offline" in text.lower()
    assert _run(client, max_new=2)["right_text"]  # and the next request works


def test_stop_mid_stream_ends_the_threads(client):
    job = client.submit(*_args(template=False, max_new=200), api_name="/compare_run")
    deadline = time.monotonic() + 120
    while not _stream_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _stream_threads(), "generation never started"
    time.sleep(0.5)
    client.predict(api_name="/compare_stop")
    assert _no_stream_threads(20)
    try:
        job.result(timeout=30)
    except Exception:  # noqa: BLE001 - a cancelled job may end with a cancellation
        pass
    assert _run(client, max_new=2)["right_text"]


def test_second_click_restarts_without_leaking(client):
    first = client.submit(*_args(template=False, max_new=200), api_name="/compare_run")
    deadline = time.monotonic() + 120
    while not _stream_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _stream_threads(), "generation never started"
    second = client.submit(*_args(max_new=6), api_name="/compare_run")
    out = Screen.named(second.result(timeout=180))
    assert "London" in out["right_text"]
    first.result(timeout=60)  # the first run ended quietly when the second took over
    assert _no_stream_threads()
