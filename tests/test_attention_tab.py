"""The attention tab through its API (the whole app, gradio_client): run, re-draw from the
session state, jump to a head, and every bad input answered with its message."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from PIL import Image

from llmviz.models import load_tokenizer
from llmviz.tokens import token_labels
from llmviz.ui.attention_tab import PRESETS, Screen

pytestmark = pytest.mark.slow  # the first run loads Gemma 3 270M


def _run(client, text=PRESETS[0], model="gemma-3-270m", hide=False):
    return Screen.named(client.predict(text, model, hide, api_name="/attention_run"))


def _call(client, *args, api):
    """Any attention endpoint; its outputs by name (``attention_tab.Screen``)."""
    return Screen.named(client.predict(*args, api_name=f"/{api}"))


def _plot(value: dict) -> dict:
    assert value["type"] == "plotly"
    return json.loads(value["plot"])


@pytest.fixture(scope="module")
def session(app_url):
    """A client with its own session that has already run the default text."""
    from gradio_client import Client

    c = Client(app_url, verbose=False)
    return c, _run(c)


def test_run_shows_the_previous_token_head_with_real_token_labels(session):
    _, out = session
    layer, head, token, summary = out["layer"], out["head"], out["token"], out["summary"]
    head_map, info = out["head_map"], out["head_info"]
    tok = load_tokenizer("gemma-3-270m")
    ids = tok(PRESETS[0])["input_ids"]
    labels = token_labels(tok, ids)
    assert layer["maximum"] == 17 and head["maximum"] == 3
    assert [c[0] for c in token["choices"]] == [f"{i} · {x}" for i, x in enumerate(labels)]
    assert token["value"] == len(ids) - 1
    assert f"**{len(ids)} tokens**" in summary and "72 attention maps" in summary
    assert "4 query heads share 1 key/value head" in summary
    assert "sliding window of 512 tokens" in summary
    fig = _plot(head_map)
    assert fig["data"][0]["type"] == "heatmap"
    assert fig["layout"]["yaxis"]["ticktext"] == labels
    assert fig["layout"]["title"]["text"] == f"Layer {layer['value']} · head {head['value']}"
    assert f"**Layer {layer['value']} · head {head['value']}**" in info
    assert "previous token" in info
    with Image.open(out["overview"]) as img:
        assert img.size[0] <= 1240 and img.size[1] > 100
    assert len(_plot(out["focus"])["data"]) == 3
    assert len(_plot(out["stats"])["data"]) == 3


def test_changing_the_view_reuses_the_state(session):
    c, _ = session
    out = _call(c, 5, 1, 3, True, api="attention_view")
    fig = _plot(out["head_map"])
    assert fig["layout"]["title"]["text"] == "Layer 5 · head 1 · first token hidden"
    assert "**Layer 5 · head 1** (global layer" in out["head_info"]
    assert len(_plot(out["focus"])["data"][0]["x"]["bdata"]) > 0
    out = _call(c, 2, 0, 4, False, api="attention_layer")
    assert _plot(out["head_map"])["layout"]["title"]["text"] == "Layer 2 · head 0"


def test_summary_describes_the_run_not_a_head_that_may_be_closed(session):
    """The summary stays true after another head is opened: it names no layer or head (the
    head panel does, and it follows the selection)."""
    c, first = session
    assert not re.search(r"layer \d+, head \d+", first["summary"], re.IGNORECASE)
    out = _call(c, 3, 2, 4, False, api="attention_head")
    assert "**Layer 3 · head 2**" in out["head_info"]


def test_find_jumps_to_a_sink_head(session):
    c, _ = session
    out = _call(c, "first", 14, False, api="attention_find")
    layer, head = out["layer"], out["head"]
    assert 0 <= layer < 18 and 0 <= head < 4
    share = float(out["head_info"].split("first token **")[1].split("%")[0])
    assert share > 90


def test_japanese_text_gets_japanese_labels(app_url):
    from gradio_client import Client

    c = Client(app_url, verbose=False)
    out = _run(c, PRESETS[1])
    labels = _plot(out["head_map"])["layout"]["yaxis"]["ticktext"]
    assert labels[0] == "<bos>" and "猫" in labels and "吾" in labels
    assert all("\ufffd" not in x for x in labels)


@pytest.mark.parametrize(
    ("text", "model", "needle"),
    [
        ("", "gemma-3-270m", "text box is empty"),
        ("   \n  ", "gemma-3-270m", "only spaces"),
        ("the street " * 200, "gemma-3-270m", "at most 256 tokens"),
        ("x" * 20_000, "gemma-3-270m", "characters long"),
        (PRESETS[0], "no-such-model", "Unknown model"),
        (PRESETS[0], "", "model name is empty"),
    ],
)
def test_bad_input_gets_a_clear_message_and_the_tab_keeps_working(client, text, model, needle):
    with pytest.raises(Exception, match=needle):
        _run(client, text, model)
    out = _run(client, "Hello world")
    assert "tokens**" in out["summary"]


def test_view_before_any_run_asks_to_run_first(app_url):
    from gradio_client import Client

    fresh = Client(app_url, verbose=False)
    with pytest.raises(Exception, match="Show attention"):
        fresh.predict(0, 0, 0, False, api_name="/attention_view")


def test_out_of_range_selection_is_refused(session):
    c, _ = session
    with pytest.raises(Exception, match="token 99 is not in this text"):
        c.predict(1, 1, 99, False, api_name="/attention_view")
    from benchmarks import harness  # gradio_client cannot send inf; a script over HTTP can

    res = harness.call(c.src, "attention_view", [1, 1, float("inf"), False], 60, c.session_hash)
    assert res.status == "error" and "token inf is not in this text" in res.message
    with pytest.raises(Exception, match="greater than maximum value 17"):  # gradio's own check
        c.predict(40, 0, 0, False, api_name="/attention_view")
    assert _plot(_call(c, 1, 1, 1, False, api="attention_view")["head_map"])["data"]


def test_state_stays_on_the_server(app_url):
    """The session's attention tensor is never sent: the state output arrives as null and the
    whole answer is small."""
    base = app_url.rstrip("/") + "/gradio_api"
    r = httpx.post(f"{base}/call/attention_run", json={"data": [PRESETS[0], "gemma-3-270m", False]})
    event = r.json()["event_id"]
    with httpx.stream("GET", f"{base}/call/attention_run/{event}", timeout=300) as s:
        body = b"".join(s.iter_bytes())
    complete = [line for line in body.decode().splitlines() if line.startswith("data: [")]
    data = json.loads(complete[-1][len("data: ") :])
    assert data[0] is None  # gr.State
    assert len(body) < 200_000
