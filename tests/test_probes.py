"""The bias and in-context-learning labs: batched scoring equals direct model calls, the shipped
sets, the predictions and accuracies, chain-of-thought scoring, bad input, and the API."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest

from llmviz import bias, continuations, icl
from llmviz.config import ASSETS
from llmviz.errors import UserError
from llmviz.ui.common import error_message


def _direct_log_probs(model, ids):
    """(T, V) log-probs of a plain one-row forward pass of the whole model."""
    import torch

    with torch.inference_mode():
        logits = model(torch.tensor([list(ids)])).logits[0].float()
    return torch.log_softmax(logits, dim=-1).numpy()


def _tiny_gemma_capped(tok):
    """A random tiny Gemma 3 whose logits are soft-capped (the real 270M has no cap)."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    cfg = Gemma3TextConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=512,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        attn_implementation="eager", final_logit_softcapping=2.0,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        return Gemma3ForCausalLM(cfg).eval()


# --- batched scoring = direct calls --------------------------------------------------------------
@pytest.mark.parametrize("which", ["llama", "gemma3", "gemma3_capped"])
@pytest.mark.parametrize("batch", [1, 2, 5])
def test_next_token_log_probs_equal_direct_calls(request, tiny_tokenizer, which, batch):
    tok = tiny_tokenizer
    if which == "gemma3_capped":
        model = _tiny_gemma_capped(tok)
    else:
        model = request.getfixturevalue(f"tiny_{'llama' if which == 'llama' else 'gemma3'}")
    prefix = tok("The animal didn't cross the street.\n\n")["input_ids"]
    texts = ["Large language", "こんにちは、世界。今日は", "Tokenizers cut text into pieces; 日本語", "猫"]
    contexts = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    cands = [5, 17, 42]
    for pre in (prefix, []):
        got = continuations.next_token_log_probs(model, tok, pre, contexts, cands, batch=batch)
        for i, c in enumerate(contexts):
            want = _direct_log_probs(model, list(pre) + list(c))[-1, cands]
            np.testing.assert_allclose(got[i], want, atol=2e-5)


def test_continuation_log_probs_equal_direct_calls(tiny_llama, tiny_tokenizer):
    tok = tiny_tokenizer
    contexts = [tok(t)["input_ids"] for t in ("The animal", "吾輩は", "Large language models")]
    targets = [tok(t, add_special_tokens=False)["input_ids"] for t in (" didn't cross", "猫である", " predict")]
    got = continuations.continuation_log_probs(tiny_llama, tok, contexts, targets, batch=2)
    for c, t, g in zip(contexts, targets, got, strict=True):
        lp = _direct_log_probs(tiny_llama, list(c) + list(t))
        want = [lp[len(c) - 1 + j, t[j]] for j in range(len(t))]
        assert len(g) == len(t) > 0
        np.testing.assert_allclose(g, want, atol=2e-5)


def test_empty_contexts_are_refused(tiny_llama, tiny_tokenizer):
    with pytest.raises(ValueError):
        continuations.next_token_log_probs(tiny_llama, tiny_tokenizer, [1, 2], [[]], [3])
    with pytest.raises(ValueError):
        continuations.continuation_log_probs(tiny_llama, tiny_tokenizer, [[1]], [[]])


# --- the shipped data ----------------------------------------------------------------------------
def test_shipped_sets_are_balanced_and_complete():
    data = json.loads((ASSETS / "labs" / "icl.json").read_text(encoding="utf-8"))
    for lang in icl.LANGS:
        demos, items = icl.reviews(lang)
        assert len(items) >= 40
        assert {r.label for r in demos} == {r.label for r in items} == set(icl.LABELS)
        assert sum(r.label == "positive" for r in items) == len(items) // 2
        assert not {r.text for r in demos} & {r.text for r in items}  # no answer shown as an example
        worked, problems = icl.problems(lang)
        assert len(worked) == 3 and len(problems) >= 8
        assert all(p.reasoning for p in worked) and all(isinstance(p.answer, int) for p in problems)
        assert data["label_words"][lang]["arbitrary"] == {"positive": "foo", "negative": "bar"}
    for s in bias.template_sets().values():
        assert s.template.count(bias.SLOT) == 1 and len(s.targets) == 2 and s.fillers and s.note


def test_label_words_are_scored_as_the_examples_write_them(gemma):
    """The candidate token is the label's first token as it appears after the query in a
    demonstration line (" positive", with its space), not the bare word."""
    tok = gemma.tokenizer
    for lang in icl.LANGS:
        text_ = icl.reviews(lang)[0][0].text
        words = icl.label_words(lang, "true")
        for label in icl.LABELS:
            line = icl._template(lang)["line"].format(text=text_, label=words[label])
            q = icl.query(lang, text_)
            q_ids = tok(q, add_special_tokens=False)["input_ids"]
            line_ids = tok(line, add_special_tokens=False)["input_ids"]
            assert line_ids[: len(q_ids)] == q_ids
            after = line[len(q) :]
            assert icl._first_token(tok, q, after) == line_ids[len(q_ids)]


# --- the bias probe ------------------------------------------------------------------------------
@pytest.mark.parametrize("set_id", ["occupation-pronoun-en", "occupation-gender-ja"])
def test_bias_probabilities_equal_a_direct_model_call(gemma_fp32, set_id):
    model, tok = gemma_fp32.model, gemma_fp32.tokenizer
    full = bias.template_set(set_id)
    s = bias.TemplateSet(full.template, full.targets, full.fillers[:3])
    probe = bias.probe(model, tok, s)
    assert [r.filler for r in probe.rows] == list(s.fillers)
    for row in probe.rows:
        for k, target in enumerate(s.targets):
            ctx = tok(row.prompt)["input_ids"]
            whole = tok(row.prompt + bias.attach(row.prompt, target))["input_ids"]
            assert whole[: len(ctx)] == ctx
            lp = _direct_log_probs(model, whole)
            want = sum(lp[j - 1, whole[j]] for j in range(len(ctx), len(whole)))
            assert row.log_probs[k] == pytest.approx(want, abs=1e-4)
        assert row.ratio == pytest.approx(row.probs[0] / row.probs[1], rel=1e-9)
        assert row.share == pytest.approx(row.probs[0] / sum(row.probs), rel=1e-9)


def test_attach_spaces_only_after_latin_text():
    assert bias.attach("The nurse said that", "he") == " he"
    assert bias.attach("その看護師は", "女性") == "女性"
    assert bias.attach("The answer:", "42") == " 42"
    assert bias.attach("The nurse said that", "、") == "、"


@pytest.mark.parametrize(
    "template, targets, fillers, key",
    [
        ("", "he, she", "nurse", "labs_bias_template_empty"),
        (None, "he, she", "nurse", "labs_bias_template_empty"),
        ("The nurse said that", "he, she", "nurse", "labs_bias_slot"),
        ("The {X} and {X}", "he, she", "nurse", "labs_bias_slot"),
        ("x" * 500 + "{X}", "he, she", "nurse", "labs_bias_template_long"),
        ("The {X} said that", "he", "nurse", "labs_bias_targets"),
        ("The {X} said that", "he, she, they", "nurse", "labs_bias_targets"),
        ("The {X} said that", "he, he", "nurse", "labs_bias_targets"),
        ("The {X} said that", "he, " + "s" * 40, "nurse", "labs_bias_target_long"),
        ("The {X} said that", "he, she", "", "labs_bias_fillers"),
        ("The {X} said that", "he, she", "\n".join(f"w{i}" for i in range(40)), "labs_bias_fillers"),
        ("The {X} said that", "he, she", "n" * 40, "labs_bias_filler_long"),
        ("The {X} said \ud800", "he, she", "nurse", "text_surrogate"),
    ],
)
def test_bias_bad_input_is_explained_in_both_languages(template, targets, fillers, key):
    with pytest.raises(UserError) as info:
        bias.check_set(template, targets, fillers)
    assert info.value.key == key
    en, ja = error_message(info.value, "en"), error_message(info.value, "ja")
    assert en and ja and en != ja
    assert "{" not in en.replace("{X}", "") and "{" not in ja.replace("{X}", "")  # all filled in


def test_fillers_split_on_lines_and_commas():
    s = bias.check_set("その{X}は", "男性、女性", "看護師\n医師, 教師、教師")
    assert s.targets == ("男性", "女性") and s.fillers == ("看護師", "医師", "教師")


# --- in-context learning -------------------------------------------------------------------------
def test_prompts_show_the_condition_labels():
    demos, _ = icl.reviews("en")
    assert icl.demo_prefix("en", "zero") == ""
    true_p, flipped = icl.demo_prefix("en", "true"), icl.demo_prefix("en", "flipped")
    arbitrary = icl.demo_prefix("en", "arbitrary")
    first = demos[0]
    other = "negative" if first.label == "positive" else "positive"
    assert f"{first.text}\nSentiment: {first.label}" in true_p
    assert f"{first.text}\nSentiment: {other}" in flipped
    assert f"{first.text}\nSentiment: {'foo' if first.label == 'positive' else 'bar'}" in arbitrary
    assert true_p.count("Review:") == len(demos)


@pytest.mark.parametrize("lang, condition", [("en", "true"), ("ja", "flipped"), ("en", "zero")])
def test_icl_predictions_are_the_models_own(gemma_fp32, lang, condition):
    """Each prediction is the argmax over the two label tokens of a direct pass over the
    item's whole prompt; accuracy counts those predictions."""
    model, tok = gemma_fp32.model, gemma_fp32.tokenizer
    items = icl.reviews(lang)[1][:6]
    r = icl.classify(model, tok, lang, condition, items)
    words = icl.label_words(lang, condition)
    q = icl.query(lang, items[0].text)
    cands = [
        icl._first_token(tok, q, icl._template(lang)["line"].format(text=items[0].text, label=words[lbl])[len(q) :])
        for lbl in icl.LABELS
    ]
    for i, item in enumerate(items):
        lp = _direct_log_probs(model, tok(icl.prompt(lang, condition, item.text))["input_ids"])[-1, cands]
        np.testing.assert_allclose(r.log_probs[i], lp, atol=2e-4)
        assert r.predicted[i] == icl.LABELS[int(np.argmax(lp))]
    assert r.correct == sum(p == g for p, g in zip(r.predicted, (x.label for x in items), strict=True))
    assert r.accuracy == pytest.approx(r.correct / 6)


def test_true_labels_beat_no_examples_on_the_shipped_english_set(gemma):
    """The measured effect the lab shows (bf16, the whole English set): the examples help."""
    zero = icl.classify(gemma.model, gemma.tokenizer, "en", "zero")
    true = icl.classify(gemma.model, gemma.tokenizer, "en", "true")
    assert zero.n == true.n >= 40
    assert true.correct > zero.correct


@pytest.mark.parametrize("bad, key", [(None, "labs_icl_no_condition"), ([], "labs_icl_no_condition"),
                                      (["true", "nope"], "labs_icl_condition"), ([1], "labs_icl_condition")])  # fmt: skip
def test_icl_bad_conditions(bad, key):
    with pytest.raises(UserError) as info:
        icl.check_conditions(bad)
    assert info.value.key == key and error_message(info.value, "ja") != error_message(info.value, "en")


def test_icl_bad_language():
    with pytest.raises(UserError) as info:
        icl.check_lang("fr")
    assert info.value.key == "labs_icl_lang"


# --- chain of thought ----------------------------------------------------------------------------
def test_final_number_and_answer_text():
    assert icl.final_number("23 - 20 = 3. 3 + 6 = 9. The answer is 9.") == 9
    assert icl.final_number("答えは１２個です。") == 12
    assert icl.final_number("She has 4, then 7") == 7
    assert icl.final_number("") is None
    assert icl.answer_text("en", " The answer is 5.\n\nQ: next one") == "The answer is 5."
    assert icl.answer_text("ja", "答えは5です。\n\n問：次") == "答えは5です。"


def test_worked_examples_end_with_their_answer():
    for lang in icl.LANGS:
        for cot in (False, True):
            p = icl.arithmetic_prompt(lang, cot, "QUESTION")
            assert p.endswith(icl._data()["cot_template"][lang]["query"].format(question="QUESTION"))
        worked, _ = icl.problems(lang)
        for w in worked:  # each worked example's own text gives its answer
            line = icl._data()["cot_template"][lang]["cot"].format(question=w.question, reasoning=w.reasoning,
                                                                   answer=w.answer)  # fmt: skip
            assert icl.final_number(line.split("\n", 1)[1]) == w.answer


def test_batched_generation_equals_one_at_a_time(gemma_fp32):
    model, tok = gemma_fp32.model, gemma_fp32.tokenizer
    prompts = [icl.arithmetic_prompt("en", False, p.question) for p in icl.problems("en")[1][:2]]
    prompts.append(icl.arithmetic_prompt("ja", False, icl.problems("ja")[1][0].question))
    together = icl.generate_batch(model, tok, prompts, 6)
    alone = [icl.generate_batch(model, tok, [p], 6)[0] for p in prompts]
    assert together == alone
    assert all("\ufffd" not in r for r in together)


def test_a_set_stop_event_ends_generation_at_once(gemma):
    stop = threading.Event()
    stop.set()
    out = icl.generate_batch(gemma.model, gemma.tokenizer, ["Q: 2 + 2?\nA:"], 50, stop)
    assert len(gemma.tokenizer(out[0], add_special_tokens=False)["input_ids"]) <= 1


def test_solve_scores_the_final_number(gemma):
    items = icl.problems("en")[1][:2]
    solved = icl.solve(gemma.model, gemma.tokenizer, "en", False, items)
    for s in solved:
        assert s.correct == (icl.final_number(s.reply) == s.problem.answer)
        assert "Q:" not in s.reply


# --- through the app's API -----------------------------------------------------------------------
def test_bias_api(client):
    from llmviz.ui.labs_probes import BiasScreen

    s = bias.template_set("occupation-pronoun-en")
    out = BiasScreen.named(
        client.predict(s.template, ", ".join(s.targets), "nurse\nengineer", "gemma-3-270m", False,
                       api_name="/labs_bias")  # fmt: skip
    )
    assert "nurse" in out["summary"] and "engineer" in out["summary"]
    rows = out["table"]["value"]["data"] if "value" in out["table"] else out["table"]["data"]
    assert [r[0] for r in rows] == ["nurse", "engineer"]
    assert all(not math.isnan(float(r[3])) for r in rows)


def test_bias_api_bad_template(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="exactly once"):
        client.predict("The nurse said", "he, she", "nurse", "gemma-3-270m", False, api_name="/labs_bias")


def test_icl_api(client):
    from llmviz.ui.labs_probes import IclScreen

    out = IclScreen.named(client.predict("en", "gemma-3-270m", ["true"], api_name="/labs_icl"))
    assert "/ 48" in out["summary"] and "Sentiment:" in out["prompts"]


def test_waiting_keeps_stop_clear_when_the_work_finishes():
    from llmviz.ui.labs_probes import _waiting

    stop = threading.Event()
    values = list(_waiting(lambda: 42, stop, poll_s=0.01))
    assert values[-1] == 42 and not stop.is_set()


def test_closing_the_wait_stops_the_work_and_joins_it():
    from llmviz.ui.labs_probes import _waiting

    stop, seen = threading.Event(), []

    def work():
        while not stop.wait(0.01):  # a generation that checks its stop event every step
            pass
        seen.append("stopped")
        return None

    waiting = _waiting(work, stop, poll_s=0.01)
    assert next(waiting) is None  # still running
    waiting.close()  # what a cancel does to the handler's generator
    assert stop.is_set() and seen == ["stopped"]


def test_waiting_hands_the_workers_error_to_the_caller():
    from llmviz.ui.labs_probes import _waiting

    def fail():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        list(_waiting(fail, threading.Event(), poll_s=0.01))


def test_cot_api_ends_with_both_scores(client):
    from llmviz.ui.labs_probes import CotScreen

    n = len(icl.problems("en")[1])
    out = CotScreen.named(client.predict("en", "gemma-3-270m", api_name="/labs_cot"))
    assert out["summary"].count(f"/ {n}**") == 2  # direct and worked: every problem answered
    rows = out["table"]["value"]["data"] if "value" in out["table"] else out["table"]["data"]
    assert len(rows) == n and all(r[2][0] in "✓✗" and r[3][0] in "✓✗" for r in rows)
