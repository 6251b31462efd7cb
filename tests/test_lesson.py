"""The guided lesson: the shipped steps (order, both languages, links that fit the real page)
and the loader's checks, one malformed file per rule."""

from __future__ import annotations

import copy
import json
import math
import re

import gradio as gr
import pytest

from llmviz import compare, config, generation, inside, lesson, memory, perplexity, token_stats
from llmviz.errors import UserError
from llmviz.models import CATALOG, load_tokenizer, offered_keys
from llmviz.sampling import SamplingSettings
from llmviz.ui.links_ui import LINKABLE, SUBTABS

#: Hiragana, katakana (full and half width) and kanji.
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]")

#: link key -> elem_id of the component it sets, per tab (labs' "sub" is a sub-tab, below).
ELEM_IDS = LINKABLE  # tab -> {link key: elem_id}: the page's own table
SUB_TABS = {tab: "sub" for tab in SUBTABS}  # tab -> the link key that picks one of its sub-tabs


def _steps() -> list[lesson.Step]:
    return list(lesson.load_lesson())


def _on(tab: str) -> list[lesson.Step]:
    return [s for s in _steps() if s.tab == tab]


# --- the shipped lesson -----------------------------------------------------------------------------
def test_the_shipped_lesson_loads_with_nine_to_eleven_unique_steps():
    course = lesson.load_lesson()
    assert 9 <= len(course) <= 11
    ids = [s.id for s in course]
    assert len(set(ids)) == len(ids)
    assert course is lesson.load_lesson()  # read once, not per click
    assert lesson.LESSON_FILE == config.ASSETS / "lesson" / "lesson.json"


def test_the_steps_follow_the_textbook_order():
    tabs = [s.tab for s in _steps()]
    assert tabs[0] == "tokenizer" and tabs[-1] == "labs"
    last = {tab: max(i for i, t in enumerate(tabs) if t == tab) for tab in tabs}
    first = {tab: min(i for i, t in enumerate(tabs) if t == tab) for tab in tabs}
    assert last["attention"] < first["sampling"]
    assert last["sampling"] < first["memory"]
    assert last["memory"] < first["finetune"]
    # every tab of the textbook's path, each one's steps together and in lesson.TABS's order
    assert set(tabs) == set(lesson.TABS)
    order = [lesson.TABS.index(t) for t in tabs]
    assert order == sorted(order), tabs


def test_every_step_has_both_languages_and_each_is_in_its_own_script():
    for step in _steps():
        assert set(lesson.LANGS) <= set(step.texts)
        for lang in lesson.LANGS:
            words = step.text(lang)
            for name in lesson.TEXT_FIELDS:
                value = getattr(words, name)
                assert value.strip(), (step.id, lang, name)
                has_japanese = JAPANESE.search(value) is not None
                assert has_japanese == (lang == "ja"), (step.id, lang, name, value)


def test_links_are_strings_with_the_tab_first_and_only_its_keys():
    for step in _steps():
        assert list(step.link)[0] == "tab" and step.link["tab"] in lesson.TABS
        assert all(isinstance(v, str) and v for v in step.link.values())
        assert set(step.link) - {"tab"} <= lesson.LINK_KEYS[step.tab], step.id
        with pytest.raises(TypeError):
            step.link["tab"] = "labs"  # type: ignore[index]


def test_every_model_in_a_link_is_packaged_and_offered_offline():
    models = [s.link["model"] for s in _steps() if "model" in s.link]
    assert models  # the lesson names its models (the test would pass on none)
    for key in models:
        assert key in offered_keys() and CATALOG[key].is_packaged, key


# --- the links against the real components --------------------------------------------------------
@pytest.fixture(scope="module")
def components():
    """tab -> {elem_id: component} of each tab built on its own, as the app builds it."""
    from llmviz.ui import (
        attention_tab,
        compare_tab,
        finetune_tab,
        inside_tab,
        labs_tab,
        memory_tab,
        sampling_tab,
        tokenizer_tab,
    )

    modules = {
        "tokenizer": tokenizer_tab,
        "attention": attention_tab,
        "sampling": sampling_tab,
        "inside": inside_tab,
        "memory": memory_tab,
        "compare": compare_tab,
        "finetune": finetune_tab,
        "labs": labs_tab,
    }
    out = {}
    for tab, module in modules.items():
        with gr.Blocks() as blocks:
            module.build()
        out[tab] = {b.elem_id: b for b in blocks.blocks.values() if getattr(b, "elem_id", None)}
    return out


def _choices(component) -> list[str]:
    return [str(c[1] if isinstance(c, (list, tuple)) else c) for c in component.choices]


def _check_against(component, value: str, where: str) -> None:
    """``value`` (a link string) is one the component itself accepts."""
    if isinstance(component, (gr.Slider, gr.Number)):
        number = float(value)
        assert math.isfinite(number), where
        if component.minimum is not None:
            assert number >= component.minimum, (where, number, component.minimum)
        if component.maximum is not None:
            assert number <= component.maximum, (where, number, component.maximum)
        whole_slider = isinstance(component, gr.Slider) and all(
            float(v).is_integer() for v in (component.minimum, component.step)
        )
        if whole_slider or getattr(component, "precision", None) == 0:
            assert number.is_integer(), (where, number)
    elif isinstance(component, gr.Dropdown):
        picks = value.split(",") if component.multiselect else [value]
        assert all(p in _choices(component) for p in picks), (where, picks, _choices(component))
        if component.multiselect and component.max_choices:
            assert len(picks) <= component.max_choices, where
    elif isinstance(component, gr.Textbox):
        assert value.strip(), where
        if component.max_length:
            assert len(value) <= component.max_length, where
    else:
        raise AssertionError(f"{where}: no check for {type(component).__name__}")


def test_every_link_key_sets_a_component_that_exists(components):
    for tab, keys in lesson.LINK_KEYS.items():
        for key in keys:
            if SUB_TABS.get(tab) == key:
                continue
            assert components[tab].get(ELEM_IDS[tab][key]) is not None, (tab, key)


def test_every_link_value_fits_its_component(components):
    checked = 0
    for step in _steps():
        comps = components[step.tab]
        for key, value in step.link.items():
            if key == "tab":
                continue
            where = f"{step.id}.{key}={value!r}"
            if SUB_TABS.get(step.tab) == key:
                sub = comps.get(f"{step.tab}-{value}")
                assert isinstance(sub, gr.Tab), where
            else:
                _check_against(comps[ELEM_IDS[step.tab][key]], value, where)
            checked += 1
    assert checked >= 2 * len(_steps())


def test_an_out_of_range_value_is_caught_by_the_component_check(components):
    """The check above can fail: past a slider's end, a model not offered, too many picks."""
    temperature = components["sampling"]["sampling-temperature"]
    with pytest.raises(AssertionError):
        _check_against(temperature, str(temperature.maximum + 0.05), "temperature")
    with pytest.raises(AssertionError):
        _check_against(components["finetune"]["ft-rank"], "2.5", "rank")
    with pytest.raises(AssertionError):
        _check_against(components["attention"]["attention-model"], "qwen2.5-0.5b", "model")
    picks = components["tokenizer"]["tok-picks"]
    with pytest.raises(AssertionError):
        _check_against(picks, ",".join(_choices(picks) * 2), "tokenizers")


def test_sampling_links_pass_the_core_checks():
    steps = _on("sampling")
    assert steps
    defaults = SamplingSettings()
    for step in steps:
        link = step.link
        SamplingSettings(
            temperature=float(link.get("temperature", defaults.temperature)),
            top_k=int(link.get("top_k", defaults.top_k)),
            top_p=float(link.get("top_p", defaults.top_p)),
            min_p=float(link.get("min_p", defaults.min_p)),
        )
        if "seed" in link:
            generation.check_seed(int(link["seed"]))


def test_memory_links_pass_the_core_checks():
    steps = _on("memory")
    assert steps
    for step in steps:
        link = step.link
        if "params" in link:
            memory.parse_param_count(link["params"])
        memory.check_context_batch(link.get("context", 8192), link.get("batch", 1))


def test_prompts_pass_their_tabs_checks():
    for step in _on("tokenizer"):
        assert len(step.link["prompt"]) <= config.MAX_TEXT_CHARS
        token_stats.check_picks(step.link["tokenizers"].split(","))
    for step in _on("compare"):
        compare.validate_question(step.link["prompt"])
    for step in _on("labs"):
        if "prompt" in step.link:
            assert step.link["sub"] == "ppl", step.id  # only the perplexity lab reads a prompt
            perplexity.check_text(step.link["prompt"])


def test_the_logit_lens_target_is_one_token_of_the_steps_model():
    steps = _on("inside")
    assert steps
    for step in steps:
        tokenizer = load_tokenizer(step.link.get("model", config.DEFAULT_BASE))
        inside.encode_prompt(tokenizer, step.link["prompt"])
        if "target" in step.link:
            assert len(step.link["target"]) <= config.INSIDE_MAX_WORD_CHARS
            _, pieces = inside.target_token(tokenizer, step.link["target"])
            assert pieces == 1, step.id


# --- the Lesson and Step objects --------------------------------------------------------------------
def test_step_clamps_to_the_first_and_last_step():
    course = lesson.load_lesson()
    assert course.step(99) is course.steps[-1]
    assert course.step(len(course)) is course.steps[-1]
    assert course.step(-3) is course.steps[0]
    assert course.step(1) is course.steps[1]


def test_a_missing_language_falls_back_to_english():
    step = lesson.load_lesson().step(0)
    assert step.text("fr") == step.text("en")
    assert step.text("ja") != step.text("en")


# --- malformed files, one rule each -----------------------------------------------------------------
def _valid() -> dict:
    def words(lang: str, n: int) -> dict:
        if lang == "ja":
            return {"title": f"題 {n}", "text": "本文です。", "question": "なぜでしょう？"}
        return {"title": f"Title {n}", "text": "Some text.", "question": "Why?"}

    return {
        "version": 1,
        "steps": [
            {"id": "first", "link": {"tab": "tokenizer", "prompt": "日本語"},
             "en": words("en", 1), "ja": words("ja", 1)},
            {"id": "second", "link": {"tab": "sampling", "temperature": "1.5"},
             "en": words("en", 2), "ja": words("ja", 2)},
        ],
    }  # fmt: skip


def _write(tmp_path, data) -> object:
    path = tmp_path / "lesson.json"
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data, ensure_ascii=False),
                        encoding="utf-8")  # fmt: skip
    return path


def _mutated(change) -> dict:
    data = copy.deepcopy(_valid())
    change(data)
    return data


def _set(d: dict, key, value) -> None:
    d[key] = value


def _second(data: dict) -> dict:
    return data["steps"][1]


CASES = [
    ("not_json", '{"version": 1, "steps": [', "lesson_not_json", ["line 1"]),
    ("not_utf8", b'{"version": 1, "steps": ["\xff"]}', "lesson_not_json", ["UTF-8"]),
    ("not_an_object", [1, 2], "lesson_not_object", ["one JSON object"]),
    ("wrong_version", _mutated(lambda d: _set(d, "version", 2)), "lesson_version", ["version"]),
    ("no_steps", _mutated(lambda d: _set(d, "steps", [])), "lesson_no_steps", ["steps"]),
    ("steps_missing", _mutated(lambda d: d.pop("steps")), "lesson_no_steps", ["steps"]),
    ("step_not_object", _mutated(lambda d: d["steps"].append("third")),
     "lesson_step_not_object", ["step 3"]),
    ("no_id", _mutated(lambda d: _second(d).pop("id")), "lesson_step_id", ["step 2", "id"]),
    ("bad_id", _mutated(lambda d: _set(_second(d), "id", "Second Step")), "lesson_step_id",
     ["step 2", "Second Step"]),
    ("duplicate_id", _mutated(lambda d: _set(_second(d), "id", "first")), "lesson_duplicate_id",
     ["step 2", "'first'"]),
    ("no_ja", _mutated(lambda d: _second(d).pop("ja")), "lesson_lang_missing", ["'second'", '"ja"']),
    ("no_en", _mutated(lambda d: _second(d).pop("en")), "lesson_lang_missing", ["'second'", '"en"']),
    ("ja_not_object", _mutated(lambda d: _set(_second(d), "ja", "テキスト")), "lesson_lang_missing",
     ["'second'", '"ja"']),
    ("empty_question", _mutated(lambda d: _set(_second(d)["ja"], "question", "  ")),
     "lesson_text_empty", ["'second'", '"ja"."question"']),
    ("no_title", _mutated(lambda d: _second(d)["en"].pop("title")), "lesson_text_empty",
     ["'second'", '"en"."title"']),
    ("text_not_string", _mutated(lambda d: _set(_second(d)["en"], "text", ["a", "b"])),
     "lesson_text_empty", ["'second'", '"en"."text"']),
    ("misspelt_text_field", _mutated(lambda d: _set(_second(d)["en"], "qestion", "Why?")),
     "lesson_text_unknown_field", ["'second'", "qestion"]),
    ("unknown_step_field", _mutated(lambda d: _set(_second(d), "links", {})),
     "lesson_step_unknown_field", ["'second'", "links"]),
    ("link_missing", _mutated(lambda d: _second(d).pop("link")), "lesson_link_not_object",
     ["'second'", "link"]),
    ("link_not_object", _mutated(lambda d: _set(_second(d), "link", "?tab=sampling")),
     "lesson_link_not_object", ["'second'", "link"]),
    ("link_number", _mutated(lambda d: _set(_second(d)["link"], "temperature", 1.5)),
     "lesson_link_not_string", ["'second'", "temperature", '"1.5"']),
    ("link_bool", _mutated(lambda d: _set(_second(d)["link"], "seed", True)),
     "lesson_link_not_string", ["'second'", "seed"]),
    ("link_empty_value", _mutated(lambda d: _set(_second(d)["link"], "prompt", " ")),
     "lesson_link_empty", ["'second'", "prompt"]),
    ("link_no_tab", _mutated(lambda d: _second(d)["link"].pop("tab")), "lesson_link_no_tab",
     ["'second'", "tab"]),
    ("link_unknown_tab", _mutated(lambda d: _set(_second(d)["link"], "tab", "chat")),
     "lesson_link_unknown_tab", ["'second'", "'chat'"]),
    ("link_key_of_another_tab", _mutated(lambda d: _set(d["steps"][0]["link"], "temperature", "1")),
     "lesson_link_unknown_key", ["'first'", "temperature", "tokenizer tab"]),
    ("link_too_long", _mutated(lambda d: _set(_second(d)["link"], "prompt", "あ" * 501)),
     "lesson_link_too_long", ["'second'", "prompt", "501"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "key", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_malformed_lesson_is_refused_naming_the_problem(tmp_path, data, key, words):
    path = _write(tmp_path, data)
    with pytest.raises(UserError) as caught:
        lesson.load_lesson(path)
    assert caught.value.key == key
    for word in words:
        assert word in caught.value.message, (word, caught.value.message)


def test_the_valid_base_of_those_cases_loads_and_its_limits_are_inclusive(tmp_path):
    data = _valid()
    _second(data)["link"]["prompt"] = "あ" * lesson.MAX_VALUE_CHARS
    course = lesson.load_lesson(_write(tmp_path, data))
    assert [s.id for s in course] == ["first", "second"]
    assert course.step(1).link["prompt"] == "あ" * lesson.MAX_VALUE_CHARS
    assert course.step(1).text("en") == lesson.StepText("Title 2", "Some text.", "Why?")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(UserError) as caught:
        lesson.load_lesson(tmp_path / "nowhere.json")
    assert caught.value.key == "lesson_missing" and "nowhere.json" in caught.value.message


def test_a_further_language_is_used_and_checked_like_the_others(tmp_path):
    data = _valid()
    data["steps"][0]["fr"] = {"title": "Titre", "text": "Du texte.", "question": "Pourquoi ?"}
    step = lesson.load_lesson(_write(tmp_path, data)).step(0)
    assert step.text("fr").title == "Titre" and step.text("de") == step.text("en")
    del data["steps"][0]["fr"]["question"]
    with pytest.raises(UserError) as caught:
        lesson.load_lesson(_write(tmp_path, data))
    assert caught.value.key == "lesson_text_empty" and '"fr"."question"' in caught.value.message


def test_an_edited_file_is_read_again(tmp_path):
    data = _valid()
    path = _write(tmp_path, data)
    assert lesson.load_lesson(path).step(0).text("en").title == "Title 1"
    data["steps"][0]["en"]["title"] = "A longer new title"
    _write(tmp_path, data)
    assert lesson.load_lesson(path).step(0).text("en").title == "A longer new title"
