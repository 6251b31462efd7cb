"""The sampling tab through its API (the whole app, real Gemma-3-270M): views, steps, streaming,
the experiment, and every bad input of the issue answered with the core's message."""

from __future__ import annotations

import re

import pytest

from llmviz import config
from llmviz.ui.sampling_tab import Screen

pytestmark = pytest.mark.slow

BASE = {
    "prompt": "こんにちは、",
    "model": config.DEFAULT_BASE,
    "seed": 42,
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 0.9,
    "min_p": 0.0,
    "top_n": 10,
}


def call(client, api, **changes):
    """One step-by-step endpoint; its outputs by name (``sampling_tab.Screen``)."""
    args = {**BASE, **changes}
    extra = args.pop("extra", [])
    return Screen.named(client.predict(*args.values(), *extra, api_name=f"/{api}"))


def fresh(client):
    """A new client session (its own gr.State) on the same server."""
    from gradio_client import Client

    return Client(client.src, verbose=False)


def tokens_of(result) -> list[int]:
    rows = result["history"]["data"]
    return [row[2] for row in reversed(rows)]  # newest first in the table


def test_view_shows_the_full_distribution_numbers(client):
    out = call(client, "sampling_view")
    assert "Seed **42**" in out["summary"]
    assert "Entropy" in out["stats"] and "262,144" in out["stats"]
    survivors = re.search(r"Survivors.*?>([\d,]+)<", out["stats"]).group(1)
    assert 1 <= int(survivors.replace(",", "")) <= 50  # top-k 50, then top-p 0.9
    assert len(out["choices"]["choices"]) == 10


def test_same_seed_same_tokens_in_two_sessions(client):
    a = fresh(client)
    b = fresh(client)
    for _ in range(3):
        out_a = call(a, "sampling_step")
        out_b = call(b, "sampling_step")
    assert tokens_of(out_a) == tokens_of(out_b) and len(tokens_of(out_a)) == 3
    assert "Step 3 (seed **42**)" in out_a["summary"]


def test_force_then_stream_then_stop(client):
    c = fresh(client)
    view = call(c, "sampling_view")
    second_best = view["choices"]["choices"][1][1]
    forced = call(c, "sampling_force", extra=[second_best])
    assert tokens_of(forced) == [second_best]
    assert "forced" in forced["summary"]
    job = c.submit(*BASE.values(), 4, api_name="/sampling_generate")
    outs = list(job)
    final = Screen.named(outs[-1])
    assert len(tokens_of(final)) == 5 and tokens_of(final)[0] == second_best
    assert "<span" in final["text"]
    c.predict(api_name="/sampling_stop")  # nothing running: harmless


def test_refilter_uses_cached_logits(client):
    c = fresh(client)
    call(c, "sampling_view")
    greedy = Screen.named(c.predict(0, 50, 1.0, 0.0, 10, api_name="/sampling_refilter"))
    assert re.search(r"Survivors.*?>1<", greedy["stats"])


def test_experiment_table(client):
    out = client.predict("こんにちは、", config.DEFAULT_BASE, 7, api_name="/sampling_experiment")
    rows = out.get("value", out)["data"]  # the table arrives as an update that also shows it
    assert len(rows) == 15
    greedy = [r[3] for r in rows if r[0] == "0"]
    assert len(greedy) == 3 and len(set(greedy)) == 1
    assert [r[2] for r in rows[:3]] == [7, 8, 9]  # sample i uses seed + i - 1
    # (reproducibility of the whole table is tested on a tiny model in test_generation.py)


BAD = [
    ({"temperature": -1}, "between 0 and 5"),
    ({"temperature": "nan"}, "between 0 and 5"),
    ({"seed": "inf"}, "seed must be"),
    ({"top_k": "-inf"}, "whole number"),
    ({"temperature": 1e9}, "between 0 and 5"),
    ({"top_p": 0}, "greater than 0 and at most 1"),
    ({"top_p": 1.5}, "greater than 0 and at most 1"),
    ({"top_k": -1}, "whole number"),
    ({"top_k": 2.5}, "whole number"),
    ({"min_p": -0.1}, "between 0 and 1"),
    ({"min_p": 2}, "between 0 and 1"),
    ({"prompt": ""}, "prompt is empty"),
    ({"prompt": "猫が歩く。" * 200}, "limit is 256 tokens"),
    ({"seed": -5}, "seed must be"),
]


@pytest.mark.parametrize(("changes", "needle"), BAD, ids=[str(b[0])[:40] for b in BAD])
def test_bad_input_message_then_server_still_answers(client, changes, needle):
    with pytest.raises(Exception, match=re.escape(needle)):
        call(client, "sampling_view", **changes)
    assert "Seed **42**" in call(client, "sampling_view")["summary"]


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"prompt": "猫\ud83dです"}, "lone UTF-16 surrogate (U+D83D) at position 1"),
        ({"temperature": float("inf")}, "between 0 and 5"),
        ({"top_p": float("nan")}, "greater than 0 and at most 1"),
        ({"top_k": float("-inf")}, "whole number"),
    ],
)
def test_values_only_a_script_can_send_are_explained(app_url, changes, needle):
    """Half an emoji and non-finite numbers (gradio_client refuses to send them; raw HTTP can)."""
    from benchmarks import harness

    args = {**BASE, **changes}
    for api in ("sampling_view", "sampling_experiment"):
        data = list(args.values()) if api == "sampling_view" else [args["prompt"], args["model"], 42]
        if api == "sampling_experiment" and "prompt" not in changes:
            continue
        res = harness.call(app_url, api, data, 120)
        assert res.status == "error" and needle in (res.message or ""), (api, res.message)


@pytest.mark.parametrize("bad", [-1, 262144, 10**9, 3.5])
def test_forced_token_outside_vocabulary(client, bad):
    c = fresh(client)
    with pytest.raises(Exception, match="0 to 262143"):
        call(c, "sampling_force", extra=[bad])
    assert tokens_of(call(c, "sampling_force", extra=[5])) == [5]


@pytest.mark.parametrize("bad", [0, 10**9])
def test_max_tokens_out_of_range(client, bad):
    with pytest.raises(Exception, match="from 1 to 200"):
        client.predict(*BASE.values(), bad, api_name="/sampling_generate")
    outs = Screen.named(client.predict(*BASE.values(), 1, api_name="/sampling_generate"))
    assert "<span" in outs["text"]


def test_a_view_is_answered_while_another_student_generates(client):
    """Model requests run side by side and their forward passes take turns (llmviz.lane): a
    student's view does not wait for another student's 200-token generation to end."""
    import time

    student_a, student_b = fresh(client), fresh(client)
    long = {**BASE, "prompt": "昔々、あるところに", "temperature": 0.0}  # greedy: no early end
    job = student_a.submit(*long.values(), config.SAMPLING_MAX_NEW_TOKENS,
                           api_name="/sampling_generate")  # fmt: skip
    deadline = time.monotonic() + 120
    while len(job.outputs()) < 2 and time.monotonic() < deadline:  # tokens are streaming
        time.sleep(0.05)
    assert len(job.outputs()) >= 2 and not job.done()
    view = call(student_b, "sampling_view", prompt="The capital of France is")
    try:
        assert "Entropy" in view["stats"]
        assert not job.done()  # answered in between two tokens of the long generation
    finally:
        student_a.predict(api_name="/sampling_stop")
        job.result(timeout=60)
