"""Prompt building for the base-vs-instruct lesson: templates, few-shot, CoT, limits, candidates."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from llmviz import compare, config
from llmviz.compare import Example
from llmviz.errors import UserError
from llmviz.models import CATALOG, get_spec

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def chatml_tokenizer(tiny_tokenizer):
    """The tiny byte-level BPE given ChatML special tokens and template (a copy: the fixture is shared)."""
    tok = copy.deepcopy(tiny_tokenizer)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = CHATML
    return tok


@pytest.fixture(scope="module")
def smollm_tok():
    from llmviz.models import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct")


@pytest.fixture(scope="module")
def gemma_tok():
    from llmviz.models import load_tokenizer

    return load_tokenizer("gemma-3-270m")


def _template_ids(tok, user_text):
    out = tok.apply_chat_template(
        [{"role": "user", "content": user_text}], tokenize=True, add_generation_prompt=True
    )
    ids = out["input_ids"] if hasattr(out, "keys") else out
    return [int(i) for i in (ids[0] if ids and isinstance(ids[0], list) else ids)]


# --- chat template -----------------------------------------------------------------------------
@pytest.mark.parametrize("question", ["What is the capital of England?", "イギリスの首都は？", "a\nb 🙂"])
def test_template_text_equals_tokenizer_chat_template_tiny(chatml_tokenizer, question):
    built = compare.build_prompt(chatml_tokenizer, question, use_template=True)
    expected = chatml_tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )
    assert built.text == expected
    assert built.text == f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    assert list(built.input_ids) == _template_ids(chatml_tokenizer, question)
    assert built.template_used and not built.template_missing
    specials = [p for p, s in built.segments if s]
    assert specials == ["<|im_start|>", "<|im_end|>", "<|im_start|>"]
    assert "".join(p for p, _ in built.segments) == built.shown == built.text


@pytest.mark.parametrize("question", ["What is the capital of England?", "富士山の高さは？"])
def test_template_text_equals_smollm2_chat_template(smollm_tok, question):
    built = compare.build_prompt(smollm_tok, question, use_template=True)
    expected = smollm_tok.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )
    assert built.text == expected
    assert built.text.startswith("<|im_start|>system\n")  # SmolLM2 adds its own system turn
    assert built.text.endswith(f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n")
    assert list(built.input_ids) == _template_ids(smollm_tok, question)
    assert built.n_tokens == len(built.input_ids) > 20
    assert ("<|im_end|>", True) in built.segments


def test_raw_prompt_shows_the_bos_the_tokenizer_adds(gemma_tok, smollm_tok):
    g = compare.build_prompt(gemma_tok, "イギリスの首都は？")
    assert g.text == "イギリスの首都は？"
    assert g.shown == "<bos>イギリスの首都は？"  # Gemma's tokenizer puts <bos> in front itself
    assert g.segments[0] == ("<bos>", True)
    assert list(g.input_ids) == gemma_tok("イギリスの首都は？")["input_ids"]
    s = compare.build_prompt(smollm_tok, "What is the capital of England?", use_template=False)
    assert s.shown == s.text == "What is the capital of England?"  # SmolLM2 adds nothing
    assert not s.template_used and not s.template_missing


def test_template_asked_for_a_base_model_without_one_falls_back_to_raw(gemma_tok):
    built = compare.build_prompt(gemma_tok, "Hello", use_template=True)
    assert built.template_missing and not built.template_used
    assert built.text == "Hello"


# --- few-shot ---------------------------------------------------------------------------------
def test_parse_examples_roundtrip_and_blank_lines():
    text = "sea otter => ラッコ\n\n  peppermint=>ペパーミント  \nplush giraffe => キリンのぬいぐるみ\n"
    ex = compare.parse_examples(text)
    assert ex == (
        Example("sea otter", "ラッコ"),
        Example("peppermint", "ペパーミント"),
        Example("plush giraffe", "キリンのぬいぐるみ"),
    )
    assert compare.parse_examples(compare.format_examples(ex)) == ex
    assert compare.parse_examples("") == ()


def test_few_shot_formats_like_the_gpt3_paper():
    p = compare.PRESETS["sea_otter"]
    zero = compare.few_shot_text(p.prompt, compare.select_shots(p.examples, "zero"), p.task)
    one = compare.few_shot_text(p.prompt, compare.select_shots(p.examples, "one"), p.task)
    few = compare.few_shot_text(p.prompt, compare.select_shots(p.examples, "few"), p.task)
    assert zero == "Translate English to Japanese:\ncheese =>"
    assert one == "Translate English to Japanese:\nsea otter => ラッコ\ncheese =>"
    assert few == (
        "Translate English to Japanese:\nsea otter => ラッコ\npeppermint => ペパーミント\n"
        "plush giraffe => キリンのぬいぐるみ\ncheese =>"
    )
    # no task and no examples: the question goes as it is
    assert compare.few_shot_text("イギリスの首都は？", ()) == "イギリスの首都は？"


def test_build_prompt_few_shot_counts_examples(tiny_tokenizer):
    p = compare.PRESETS["capital_ja"]
    built = compare.build_prompt(tiny_tokenizer, p.prompt, shots="few", examples=p.examples)
    assert built.examples_used == 3
    assert built.text.splitlines()[-1] == "イギリスの首都は？ =>"
    assert built.shown == built.text  # the tiny tokenizer adds no special tokens itself
    assert list(built.input_ids) == list(tiny_tokenizer(built.text)["input_ids"])


def test_cot_suffix_en_and_ja(smollm_tok):
    assert compare.few_shot_text("Q?", (), cot="en") == "Q? Let's think step by step."
    assert compare.few_shot_text("富士山の高さは？", (), cot="ja") == "富士山の高さは？ステップごとに考えよう。"
    ex = (Example("a", "b"),)
    assert compare.few_shot_text("c", ex, cot="en") == "a => b\nc => Let's think step by step."
    built = compare.build_prompt(smollm_tok, "Why?", use_template=True, cot="en")
    assert "<|im_start|>user\nWhy? Let's think step by step.<|im_end|>" in built.text


def test_presets_are_the_textbook_questions():
    prompts = {p.prompt for p in compare.PRESETS.values()}
    assert {"富士山の高さは？", "イギリスの首都は？", "The early bird catches the worm. を日本語に訳して"} <= prompts
    assert {"What is the capital of England?", "How high is Mount Fuji?"} <= prompts
    assert Example("sea otter", "ラッコ") in compare.PRESETS["sea_otter"].examples
    for p in compare.PRESETS.values():  # every preset works in every few-shot mode
        assert len(p.examples) >= 2
        for shots in compare.SHOTS:
            compare.few_shot_text(p.prompt, compare.select_shots(p.examples, shots), p.task)


# --- pairs ----------------------------------------------------------------------------------------
def test_pairs_come_from_the_catalog():
    # The offline default is one family: the packaged base and the same base + our LoRA tuning.
    assert compare.resolve_pair("default") == ("gemma-3-270m", "gemma-3-270m-sft")
    assert compare.resolve_pair("cross") == ("gemma-3-270m", "smollm2-135m-instruct")
    default = [get_spec(k) for k in compare.resolve_pair("default")]
    assert all(s.is_packaged for s in default)
    assert default[0].family == default[1].family and default[1].base == default[0].key
    left, right = compare.resolve_pair("same")
    assert left == right and CATALOG[left].has_chat_template
    for key in compare.PAIR_KEYS:
        base, inst = (get_spec(k) for k in compare.resolve_pair(key))
        if key not in ("cross", "same"):
            assert (base.role, inst.role) == ("base", "instruct")
            assert compare.pair_kind(base, inst) == "same_family"
    assert compare.pair_kind(get_spec("gemma-3-270m"), get_spec("smollm2-135m-instruct")) == "cross"
    assert compare.pair_kind(*(get_spec(k) for k in compare.resolve_pair("same"))) == "same_model"


# --- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("question", ["", "   \n ", None, 42])
def test_empty_prompt(tiny_tokenizer, question):
    with pytest.raises(UserError, match="prompt is empty") as info:
        compare.build_prompt(tiny_tokenizer, question)
    assert info.value.key == "compare_prompt_empty"


def test_over_long_prompt_chars_and_tokens(tiny_tokenizer):
    with pytest.raises(UserError, match="limit is 500") as info:
        compare.build_prompt(tiny_tokenizer, "x" * (config.COMPARE_MAX_PROMPT_CHARS + 1))
    assert info.value.key == "compare_prompt_too_long"
    # under the character limit but over the token limit: Japanese costs many byte-level tokens
    text = "吾輩は猫である。" * 50
    assert len(text) <= config.COMPARE_MAX_PROMPT_CHARS
    with pytest.raises(UserError, match="tokens long; the limit is 256") as info:
        compare.build_prompt(tiny_tokenizer, text)
    assert info.value.key == "compare_prompt_too_many_tokens"
    # examples count towards the limit too
    ex = tuple(Example("吾輩は猫である。" * 5, "名前はまだ無い。" * 5) for _ in range(8))
    with pytest.raises(UserError, match="fewer examples"):
        compare.build_prompt(tiny_tokenizer, "Q", shots="few", examples=ex)


@pytest.mark.parametrize(
    "text, match, key",
    [
        ("sea otter ラッコ", "has no '=>'", "compare_example_no_arrow"),
        ("sea otter =>", "both sides", "compare_example_empty_side"),
        (" => ラッコ", "both sides", "compare_example_empty_side"),
        ("a => b\n" + "x" * 300 + " => y", "line 2 is", "compare_example_too_long"),
        ("\n".join(f"q{i} => a{i}" for i in range(9)), "limit is 8", "compare_too_many_examples"),
    ],
)
def test_malformed_examples(text, match, key):
    with pytest.raises(UserError, match=match) as info:
        compare.parse_examples(text)
    assert info.value.key == key


def test_shots_need_enough_examples(tiny_tokenizer):
    with pytest.raises(UserError, match="One-shot needs an example"):
        compare.build_prompt(tiny_tokenizer, "Q", shots="one", examples=())
    with pytest.raises(UserError, match="at least two examples; 1 given"):
        compare.build_prompt(tiny_tokenizer, "Q", shots="few", examples=(Example("a", "b"),))
    with pytest.raises(UserError, match="Choose zero, one or few"):
        compare.build_prompt(tiny_tokenizer, "Q", shots="many")
    with pytest.raises(UserError, match="Choose off, en or ja"):
        compare.build_prompt(tiny_tokenizer, "Q", cot="fr")


def test_unknown_pair_preset_and_model():
    with pytest.raises(UserError, match="Unknown model pair") as info:
        compare.resolve_pair("llama")
    assert info.value.key == "compare_pair_unknown"
    with pytest.raises(UserError, match="Unknown preset"):
        compare.get_preset("nope")
    with pytest.raises(UserError, match="Unknown model 'no such model'"):
        get_spec("no such model")


# --- first-token candidates ----------------------------------------------------------------------
def test_top_candidates_matches_softmax(tiny_tokenizer):
    probs = np.array([0.3, 0.1, 0.1, 0.5] + [0.0] * (len(tiny_tokenizer) - 4))
    with np.errstate(divide="ignore"):
        logits = np.log(probs)
    cand = compare.top_candidates(logits, tiny_tokenizer, k=3)
    assert cand.ids[:2] == (3, 0)
    assert cand.probs == pytest.approx((0.5, 0.3, 0.1))
    assert len(cand.labels) == 3
    logits = np.random.default_rng(0).normal(size=len(tiny_tokenizer)).astype(np.float32)
    cand = compare.top_candidates(logits, tiny_tokenizer, k=10)
    import torch

    ref = torch.softmax(torch.tensor(logits, dtype=torch.float64), -1).topk(10)
    assert cand.ids == tuple(ref.indices.tolist())
    assert cand.probs == pytest.approx(ref.values.tolist())


def test_token_labels_make_spaces_visible(smollm_tok):
    ids = smollm_tok(" London\n", add_special_tokens=False)["input_ids"]
    labels = [compare.token_label(smollm_tok, i) for i in ids]
    assert labels[0] == "␣London"
    assert "↵" in labels[-1]


def test_first_token_figure_side_by_side_without_merging_labels():
    from llmviz.plots.compare import Panel, first_token_figure

    left = Panel("Left", ["␣the", "␣the", "↵"], [0.5, 0.3, 0.2], "#f59e0b")  # repeated label
    right = Panel("Right", ["The", "A"], [0.7, 0.1], "#4f46e5")
    fig = first_token_figure([left, right], "probability")
    assert [t.xaxis for t in fig.data] == ["x", "x2"]
    assert list(fig.data[0].y) == [0, 1, 2]  # integer positions: the two "␣the" stay two bars
    assert list(fig.layout.yaxis.ticktext) == ["␣the", "␣the", "↵"]
    assert list(fig.layout.yaxis2.ticktext) == ["The", "A"]
    assert fig.layout.xaxis.domain[1] < fig.layout.xaxis2.domain[0]  # side by side, no overlap
    assert [a.text for a in fig.layout.annotations] == ["Left", "Right"]
    empty = first_token_figure([], "probability", "Click run")
    assert len(empty.data) == 0 and empty.layout.annotations[0].text == "Click run"
