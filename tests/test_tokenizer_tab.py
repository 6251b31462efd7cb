"""The tokenizer tab through the API of the whole app (gradio_client): answers and bad input.

Every bad request must come back as an error with the teaching message, and the next normal
request must still work.
"""

from __future__ import annotations

import json
import random
import time

import gradio as gr
import httpx
import psutil
import pytest
from gradio_client import Client, handle_file

from llmviz import config
from llmviz import tokenizer_training as training

PICKS = ["gpt2", "smollm2-135m-instruct", "janome"]


def _tokenize(client, text, picks=PICKS):
    return client.predict(text, picks, True, True, api_name="/tokenizer_tokenize")


def _ok(client):
    html, _ = _tokenize(client, "吾輩は猫である。")
    assert 'class="grp"' in html and "猫" in html  # byte-level pieces of 猫 grouped
    return html


def test_tokenize_shows_grouped_characters_and_specials(client):
    html, notes = client.predict(
        "<|im_start|>猫 😀", ["smollm2-135m-instruct", "gemma-3-270m"], True, True,
        api_name="/tokenizer_tokenize",
    )  # fmt: skip
    assert 'class="t sp"' in html  # the chat marker is a special token
    assert "&lt;bos&gt;" in html and "&lt;|im_start|&gt;" in html
    assert "\ufffd" not in html and "<script" not in html
    assert "E7 8C" in html or "E7" in html
    assert notes == ""


def test_html_is_escaped(client):
    html, _ = _tokenize(client, "<b>bold</b> {{x}} ${y}", ["gpt2"])
    assert ">bold<" in html and "<b>bold" not in html  # "<", "b", ">" are separate tokens
    assert ">&lt;</span>" in html and ">&gt;</span>" in html
    assert "{{" not in html and "${" not in html


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Type or paste some text"),
        ("x" * 1_000_000, "limit here is 20,000"),
    ],
)
def test_bad_text_then_recovers(client, text, message):
    with pytest.raises(Exception, match=message):
        _tokenize(client, text)
    _ok(client)


def test_lone_surrogate_through_the_raw_api(app_url):
    # gradio_client cannot even send a lone surrogate (httpx encodes UTF-8), so post raw JSON
    body = json.dumps({"data": ["x\ud800y", ["gpt2"], True, True]})  # ascii: "\\ud800"
    base = app_url.rstrip("/") + "/gradio_api/call/tokenizer_tokenize"
    r = httpx.post(base, content=body, headers={"content-type": "application/json"})
    events = httpx.get(f"{base}/{r.json()['event_id']}", timeout=60).text
    assert "event: error" in events and "lone UTF-16 surrogate (U+D800)" in events


@pytest.mark.parametrize(
    "text", ["bell\x07 and NUL\x00", "👨\u200d👩\u200d👧\u200d👦", "e\u0301 n\u0303"]
)
def test_unusual_text_is_shown_with_a_note(client, text):
    html, notes = _tokenize(client, text)
    assert notes and "\ufffd" not in html


def test_bad_selections(client):
    with pytest.raises(Exception, match="at least one tokenizer"):
        _tokenize(client, "hi", [])
    with pytest.raises(Exception, match="Unknown tokenizer"):
        _tokenize(client, "hi", ["nope"])
    with pytest.raises(Exception, match="at most 8"):
        _tokenize(client, "hi", ["gpt2"] * 9)
    _ok(client)


def test_decode_round_trip(client):
    text, html, verdict = client.predict("31373, 995", "gpt2", api_name="/tokenizer_decode")
    assert text == "hello world" and "same 2 ids" in verdict
    text, html, verdict = client.predict("71 68 75 75 78", "gpt2", api_name="/tokenizer_decode")
    assert text == "hello" and "different ids" in verdict and "31373" in verdict


@pytest.mark.parametrize(
    ("ids", "key", "message"),
    [
        ("12, abc", "gpt2", "'abc' is not a token id"),
        ("", "gpt2", "Type token ids"),
        ("50257", "gpt2", "not in GPT-2"),
        ("-3", "gpt2", "not in GPT-2"),
        ("1 2", "janome", "no token ids"),
    ],
)
def test_decode_bad_ids_then_recovers(client, ids, key, message):
    with pytest.raises(Exception, match=message):
        client.predict(ids, key, api_name="/tokenizer_decode")
    assert client.predict("31373, 995", "gpt2", api_name="/tokenizer_decode")[0] == "hello world"


def test_table_and_csv(client):
    table, path = client.predict(
        "猫 cat", ["gpt2", "o200k_base"], True, "gpt2", api_name="/tokenizer_table"
    )
    rows = table["value"]["data"] if "value" in table else table["data"]
    assert rows[0][:4] == [0, 163, "猫(1/3)", "E7"]
    with open(path, encoding="utf-8-sig") as f:
        csv = f.read()
    assert csv.splitlines()[0].startswith("tokenizer,index,id,token,text,bytes")
    assert "o200k_base," in csv and "gpt2,0,163,猫(1/3),猫,E7" in csv


def test_premium(client):
    fig, table = client.predict(
        "en: The cat sleeps.\nja: 猫が寝ている。", ["gpt2", "o200k_base"],
        api_name="/tokenizer_premium",
    )  # fmt: skip
    assert "| ja |" in table and "×1.0" in table
    with pytest.raises(Exception, match="Include the 'en'"):
        client.predict("ja: 猫", ["gpt2"], api_name="/tokenizer_premium")


def test_train_and_steps(client):
    summary, merges, seg, curve, *_ = client.predict(
        "builtin", "", None, "bpe", 1000, "今日は天気がいい。", api_name="/tokenizer_train"
    )
    assert "BPE 1000" in summary and 'class="row"' in seg
    steps = client.predict("low low low lower", 3, api_name="/tokenizer_bpe_steps")
    data = steps["value"]["data"] if "value" in steps else steps["data"]
    assert [r[2] for r in data] == ["lo", "low", "␣low"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("paste", "", None, "bpe", 1000), "corpus is empty"),
        (("upload", "", None, "bpe", 1000), "Upload a .txt file"),
        (("builtin", "", None, "unigram", 300), "different characters"),
        (("paste", "x" * (config.MAX_CORPUS_CHARS + 1), None, "bpe", 1000), "limit"),
    ],
)
def test_train_bad_input_then_recovers(client, args, message):
    with pytest.raises(Exception, match=message):
        client.predict(*args, "今日は", api_name="/tokenizer_train")
    _ok(client)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"\x00\x01\x02\xff\xfe binary" * 50, "not UTF-8")],
)
def test_bad_uploads_then_recovers(client, tmp_path, content, message):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    with pytest.raises(Exception, match=message):
        client.predict(
            "upload", "", handle_file(str(path)), "bpe", 1000, "今日は", api_name="/tokenizer_train"
        )
    _ok(client)


# --- the selection, the table pick -------------------------------------------------------------
def test_every_endpoint_refuses_more_tokenizers_than_the_view_shows(client):
    nine = ["gpt2"] * (config.TOK_MAX_SELECTED + 1)
    calls = {
        "/tokenizer_tokenize": ("hi", nine, True, True),
        "/tokenizer_table": ("hi", nine, True, "gpt2"),
        "/tokenizer_copy_ids": ("hi", nine, True),
        "/tokenizer_premium": ("en: Hi.\nja: こんにちは。", nine),
    }
    for api_name, args in calls.items():
        with pytest.raises(Exception, match="at most 8 tokenizers"):
            client.predict(*args, api_name=api_name)
    eight = client.predict("hi", nine[:8], True, api_name="/tokenizer_copy_ids")
    assert eight == ("5303", "gpt2")


def test_table_pick_must_be_one_of_the_selected_tokenizers(client):
    picks = ["gpt2", "o200k_base"]
    with pytest.raises(Exception, match="'llama3' is not one of the selected tokenizers; "
                       "choose one of: gpt2, o200k_base"):  # fmt: skip
        client.predict("猫 cat", picks, True, "llama3", api_name="/tokenizer_table")

    def first_row(pick):
        table, _ = client.predict("猫 cat", picks, True, pick, api_name="/tokenizer_table")
        return (table["value"]["data"] if "value" in table else table["data"])[0]

    assert first_row("gpt2")[:3] == [0, 163, "猫(1/3)"]  # GPT-2 cuts 猫 into bytes
    assert first_row("o200k_base")[2] == "猫"  # o200k has it whole: the pick is the one shown
    assert first_row(None) == first_row("gpt2")  # nothing chosen yet: the first


# --- typing: an emptied box is quiet; the API still explains ------------------------------------
def test_an_emptied_text_box_clears_the_view_without_an_error():
    from llmviz.ui import tokenizer_tab as tab

    assert tab._on_tokenize_live("", ["gpt2"], True, True, {}, None) == ("", "")
    html, _ = tab._on_tokenize_live(" ", ["gpt2"], True, True, {}, None)  # a space is text
    assert 'class="t' in html
    with pytest.raises(gr.Error, match="Type or paste some text"):
        tab._on_tokenize("", ["gpt2"], True, True, {}, None)


def test_typing_runs_the_quiet_handler_and_the_api_name_the_strict_one(app_url):
    import app

    box = next(b for b in app.demo.blocks.values() if getattr(b, "elem_id", None) == "tok-text")
    on_change = [f for f in app.demo.fns.values() if (box._id, "change") in f.targets]
    assert [f.fn.__name__ for f in on_change] == ["_on_tokenize_live"]
    named = [f for f in app.demo.fns.values() if f.api_name == "tokenizer_tokenize"]
    assert [f.fn.__name__ for f in named] == ["_on_tokenize"]


# --- messages in the right words ---------------------------------------------------------------
def _raw_call(app_url, api_name, data, lang="en"):
    """POST raw JSON (gradio_client cannot send a lone surrogate) and read the event stream."""
    base = app_url.rstrip("/") + f"/gradio_api/call/{api_name}"
    headers = {"content-type": "application/json", "accept-language": lang}
    r = httpx.post(base, content=json.dumps({"data": data}), headers=headers)
    return httpx.get(f"{base}/{r.json()['event_id']}", timeout=120).text


@pytest.mark.parametrize(
    ("lang", "says", "never"),
    [("en", "lone UTF-16 surrogate (U+D83D)", "uploaded"), ("ja", "サロゲート", "アップロード")],
)
def test_a_surrogate_in_a_pasted_corpus_is_not_called_an_upload(app_url, lang, says, never):
    data = ["paste", "pasted \ud83d corpus", None, "bpe", 1000, "今日は"]
    events = _raw_call(app_url, "tokenizer_train", data, lang)
    assert "event: error" in events
    message = json.loads(events.split("event: error\ndata: ", 1)[1].splitlines()[0])["error"]
    assert says in message and never not in message


def test_a_big_upload_shows_its_own_size_and_the_limit(client, tmp_path):
    path = tmp_path / "big.txt"
    with open(path, "wb") as f:
        f.truncate(9_100_000)
    with pytest.raises(Exception, match=r"9\.1 MB; the limit is 8\.0 MB"):
        client.predict(
            "upload", "", handle_file(str(path)), "bpe", 1000, "今日は", api_name="/tokenizer_train"
        )


def test_trained_tokenizers_are_named_in_the_readers_language(app_url):
    ja = Client(app_url, verbose=False, headers={"accept-language": "ja"})
    *_, picks, _ = ja.predict(
        "builtin", "", None, "bpe", 1000, "今日は", api_name="/tokenizer_train"
    )
    labels = [c[0] for c in picks["choices"]]
    assert "BPE 1000（自分で学習）" in labels and not any("yours" in x for x in labels)
    html, _ = ja.predict("猫", ["trained:BPE 1000"], True, True, api_name="/tokenizer_tokenize")
    assert "BPE 1000（自分で学習）" in html and "(yours)" not in html


# --- training is bounded -----------------------------------------------------------------------
def test_a_giant_word_gets_the_limit_quickly_then_recovers(client):
    start = time.monotonic()
    with pytest.raises(Exception, match="no space or line break in it"):
        client.predict(
            "paste", "x" * 1_000_000, None, "bpe", 2000, "今日は", api_name="/tokenizer_train"
        )
    assert time.monotonic() - start < 30  # the upload of 1 MB included, on a busy machine
    assert training.TrainingJob.live_pids() == []
    _ok(client)


def _gone(pids, within):
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not any(psutil.pid_exists(p) for p in pids) and not training.TrainingJob.live_pids():
            return True
        time.sleep(0.1)
    return False


def test_a_cancelled_training_stops_its_child_at_once(client):
    rng = random.Random(1)  # random 2,000-letter words: under the word cap, slow to train
    words = ("".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=2000)) for _ in range(500))
    corpus = "\n".join(words)
    job = client.submit(
        "paste", corpus, None, "bpe", config.MAX_VOCAB_SIZE, "今日は", api_name="/tokenizer_train"
    )
    end = time.monotonic() + 60
    while not training.TrainingJob.live_pids() and time.monotonic() < end:
        time.sleep(0.05)
    pids = training.TrainingJob.live_pids()  # the children this app started: only this one
    assert len(pids) == 1 and psutil.Process(pids[0]).is_running()
    time.sleep(1)  # well into the training (the sweep takes far longer than its budget)
    cancelled = time.monotonic()
    job.cancel()
    assert _gone(pids, within=10), "the training child outlived the cancel"
    assert time.monotonic() - cancelled < config.TOK_TRAIN_SECONDS  # not the budget's doing
    _ok(client)
